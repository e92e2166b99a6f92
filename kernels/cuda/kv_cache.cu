// Device side of the paged KV cache: write new tokens' keys and values into their slots, and copy whole
// blocks for copy-on-write forks. Which slot and which copy is decided on the host (selfplay-kvcache).
// Cache layout per layer: [num_blocks, block_size, n_kv_heads * head_dim]; a slot is block * block_size + offset.

// grid (n_tokens), block any: k_cache[slots[t]] = k[t], v_cache[slots[t]] = v[t]. `row` = n_kv_heads * head_dim
// elements; the inputs' rows are `in_stride` apart (so K and V can be views into a fused QKV buffer).
template <typename D>
__device__ void kv_append(const typename D::T* k, const typename D::T* v, typename D::T* k_cache,
                          typename D::T* v_cache, const u32* slots, int n_tokens, int row, int in_stride) {
    int t = blockIdx.x;
    if (t >= n_tokens) return;
    size_t dst = (size_t)slots[t] * row, src = (size_t)t * in_stride;
    for (int c = threadIdx.x; c < row; c += blockDim.x) {
        k_cache[dst + c] = k[src + c];
        v_cache[dst + c] = v[src + c];
    }
}

// grid (n_copies, n_layers), block any: copies block pairs[2i] to block pairs[2i + 1] in every layer's K and V.
// `block_elems` = block_size * n_kv_heads * head_dim; `layer_stride` = elements between layers' caches.
template <typename D>
__device__ void kv_copy_blocks(typename D::T* k_cache, typename D::T* v_cache, const u32* pairs, int n_copies,
                               int block_elems, size_t layer_stride) {
    int i = blockIdx.x;
    if (i >= n_copies) return;
    size_t layer = (size_t)blockIdx.y * layer_stride;
    size_t src = layer + (size_t)pairs[2 * i] * block_elems, dst = layer + (size_t)pairs[2 * i + 1] * block_elems;
    for (int c = threadIdx.x; c < block_elems; c += blockDim.x) {
        k_cache[dst + c] = k_cache[src + c];
        v_cache[dst + c] = v_cache[src + c];
    }
}

#define KV_CACHE_KERNELS(S, D)                                                                                  \
    extern "C" __global__ void kv_append_##S(const D::T* k, const D::T* v, D::T* k_cache, D::T* v_cache,        \
                                             const u32* slots, int n_tokens, int row, int in_stride) {          \
        kv_append<D>(k, v, k_cache, v_cache, slots, n_tokens, row, in_stride);                                  \
    }                                                                                                           \
    extern "C" __global__ void kv_copy_blocks_##S(D::T* k_cache, D::T* v_cache, const u32* pairs, int n_copies, \
                                                  int block_elems, unsigned long long layer_stride) {           \
        kv_copy_blocks<D>(k_cache, v_cache, pairs, n_copies, block_elems, (size_t)layer_stride);                \
    }

FOR_EACH_DTYPE(KV_CACHE_KERNELS)
