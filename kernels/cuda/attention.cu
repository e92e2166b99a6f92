// Causal attention with grouped-query heads (GQA), online softmax (flash-style), f32 accumulation.
//
// Keys and values are reached through an addressing policy, so one prefill kernel serves both a plain
// variable-length batch (contiguous K/V, e.g. training) and a prefill that continues a paged cache (a
// prompt whose prefix came from the prefix cache). Decode reads the paged cache through block tables and
// splits long contexts across CTAs (flash-decoding), merging the partial softmax states afterwards.
//
// Layouts (elements): q [tokens, n_heads, head_dim] with `q_stride` between tokens; out [tokens, n_heads *
// head_dim]; contiguous K/V [tokens, n_kv_heads, head_dim] with `kv_stride` between tokens; the paged cache
// [num_blocks, block_size, n_kv_heads, head_dim] per layer, block_tables [batch, max_blocks] of i32.
// spans [batch, 4] of i32: (q_start, q_len, kv_start, kv_len); query i of a span sits at absolute position
// kv_len - q_len + i and sees keys 0..=that (kv_start is ignored by the paged kernels).

#define MAX_HEAD_DIM 128
#define DIMS_PER_LANE (MAX_HEAD_DIM / 32)
#define KV_TILE 32
#define WARPS 4
#define Q_PER_WARP 4
#define Q_TILE (WARPS * Q_PER_WARP)
#define MAX_GROUP 8

template <typename D>
struct ContiguousKv {
    const typename D::T* k;
    const typename D::T* v;
    const int* spans;
    int stride;
    __device__ int len(int b) const { return spans[4 * b + 3]; }
    __device__ size_t row(int b, int j) const { return (size_t)(spans[4 * b + 2] + j) * stride; }
};

template <typename D>
struct PagedKv {
    const typename D::T* k;
    const typename D::T* v;
    const int* spans;  // (q_start, q_len, kv_start, kv_len) per sequence; kv_len is the context
    const int* block_tables;
    int max_blocks;
    int block_size;
    int stride;  // n_kv_heads * head_dim: elements per slot
    __device__ int len(int b) const { return spans[4 * b + 3]; }
    __device__ size_t row(int b, int j) const {
        int block = block_tables[(size_t)b * max_blocks + j / block_size];
        return ((size_t)block * block_size + j % block_size) * stride;
    }
};

// One online-softmax step for one query held by a warp: `s` is this lane's score (-inf when masked);
// `p_out` receives this lane's unnormalised probability. Returns the rescale factor for the old state.
__device__ __forceinline__ float online_softmax_step(float s, float& m, float& l, float& p_out) {
    float m_new = fmaxf(m, warp_max(s));
    if (m_new == NEG_INF) {
        p_out = 0.0f;
        return 1.0f;
    }
    float p = expf(s - m_new);
    float alpha = expf(m - m_new);
    l = l * alpha + warp_sum(p);
    m = m_new;
    p_out = p;
    return alpha;
}

// grid (ceil(max_q_len / Q_TILE), n_heads, batch), block WARPS * 32. When `lse` is non-null it receives
// each query row's per-head log-sum-exp of the scaled scores ([q_rows, n_heads]) for the backward pass.
template <typename D, typename Kv>
__device__ void attention_prefill(const typename D::T* q, typename D::T* out, float* lse, const int* spans, Kv kv,
                                  int n_heads, int n_kv_heads, int head_dim, int q_stride, float scale) {
    __shared__ float qs[Q_TILE][MAX_HEAD_DIM];
    __shared__ float ks[KV_TILE][MAX_HEAD_DIM + 1];  // +1: lanes read different rows conflict-free
    __shared__ float vs[KV_TILE][MAX_HEAD_DIM];
    int b = blockIdx.z, h = blockIdx.y;
    int kvh = h / (n_heads / n_kv_heads);
    int q_start = spans[4 * b], q_len = spans[4 * b + 1];
    int tile0 = blockIdx.x * Q_TILE;
    if (tile0 >= q_len) return;
    int kv_len = kv.len(b);
    int offset = kv_len - q_len;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;

    for (int idx = threadIdx.x; idx < Q_TILE * head_dim; idx += blockDim.x) {
        int r = idx / head_dim, c = idx % head_dim, qi = tile0 + r;
        qs[r][c] = qi < q_len ? D::load(q[(size_t)(q_start + qi) * q_stride + (size_t)h * head_dim + c]) * scale : 0.0f;
    }
    int last_query = min(tile0 + Q_TILE, q_len) - 1;
    int n_keys = min(kv_len, offset + last_query + 1);

    float m[Q_PER_WARP], l[Q_PER_WARP], o[Q_PER_WARP][DIMS_PER_LANE];
#pragma unroll
    for (int i = 0; i < Q_PER_WARP; ++i) {
        m[i] = NEG_INF;
        l[i] = 0.0f;
#pragma unroll
        for (int t = 0; t < DIMS_PER_LANE; ++t) o[i][t] = 0.0f;
    }

    for (int kt = 0; kt < n_keys; kt += KV_TILE) {
        __syncthreads();
        for (int idx = threadIdx.x; idx < KV_TILE * head_dim; idx += blockDim.x) {
            int j = idx / head_dim, c = idx % head_dim, key = kt + j;
            bool ok = key < n_keys;
            size_t at = ok ? kv.row(b, key) + (size_t)kvh * head_dim + c : 0;
            ks[j][c] = ok ? D::load(kv.k[at]) : 0.0f;
            vs[j][c] = ok ? D::load(kv.v[at]) : 0.0f;
        }
        __syncthreads();
        int key = kt + lane;
        float s[Q_PER_WARP];
#pragma unroll
        for (int i = 0; i < Q_PER_WARP; ++i) s[i] = 0.0f;
        for (int c = 0; c < head_dim; ++c) {
            float kc = ks[lane][c];
#pragma unroll
            for (int i = 0; i < Q_PER_WARP; ++i) s[i] += qs[warp * Q_PER_WARP + i][c] * kc;
        }
#pragma unroll
        for (int i = 0; i < Q_PER_WARP; ++i) {
            int qi = tile0 + warp * Q_PER_WARP + i;
            bool visible = qi < q_len && key < n_keys && key <= offset + qi;
            float p;
            float alpha = online_softmax_step(visible ? s[i] : NEG_INF, m[i], l[i], p);
#pragma unroll
            for (int t = 0; t < DIMS_PER_LANE; ++t) o[i][t] *= alpha;
            for (int j = 0; j < KV_TILE; ++j) {
                float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
                for (int t = 0; t < DIMS_PER_LANE; ++t) {
                    int c = lane + 32 * t;
                    if (c < head_dim) o[i][t] += pj * vs[j][c];
                }
            }
        }
    }

#pragma unroll
    for (int i = 0; i < Q_PER_WARP; ++i) {
        int qi = tile0 + warp * Q_PER_WARP + i;
        if (qi >= q_len) continue;
        float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
        if (lse != 0 && lane == 0) lse[(size_t)(q_start + qi) * n_heads + h] = m[i] + logf(l[i]);
        typename D::T* dst = out + (size_t)(q_start + qi) * n_heads * head_dim + (size_t)h * head_dim;
#pragma unroll
        for (int t = 0; t < DIMS_PER_LANE; ++t) {
            int c = lane + 32 * t;
            if (c < head_dim) dst[c] = D::store(o[i][t] * inv);
        }
    }
}

// Decode: one query per sequence, at row spans[4b] of q and out. grid (n_kv_heads * group_chunks, batch,
// n_splits), block WARPS * 32.
// A CTA serves up to MAX_GROUP query heads sharing one KV head, so each key is read once for the group.
// With n_splits == 1 it writes `out`; otherwise it writes its partial state (unnormalised o, max m, sum l)
// to `partial` and attention_decode_merge finishes.
template <typename D>
__device__ void attention_decode(const typename D::T* q, typename D::T* out, float* partial, PagedKv<D> kv,
                                 int n_heads, int n_kv_heads, int head_dim, int q_stride, float scale) {
    __shared__ float qs[MAX_GROUP][MAX_HEAD_DIM];
    __shared__ float wm[WARPS][MAX_GROUP], wl[WARPS][MAX_GROUP];
    __shared__ float wo[WARPS][MAX_GROUP][MAX_HEAD_DIM];
    int group = n_heads / n_kv_heads;
    int chunks = (group + MAX_GROUP - 1) / MAX_GROUP;
    int kvh = blockIdx.x / chunks, g0 = (blockIdx.x % chunks) * MAX_GROUP;
    int gn = min(MAX_GROUP, group - g0);
    int h0 = kvh * group + g0;
    int b = blockIdx.y, split = blockIdx.z, n_splits = gridDim.z;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int ctx = kv.len(b);
    size_t q_row = (size_t)kv.spans[4 * b];
    int per_split = ((ctx + n_splits - 1) / n_splits + KV_TILE - 1) / KV_TILE * KV_TILE;
    int begin = split * per_split, end = min(ctx, begin + per_split);

    for (int idx = threadIdx.x; idx < gn * head_dim; idx += blockDim.x) {
        int g = idx / head_dim, c = idx % head_dim;
        qs[g][c] = D::load(q[q_row * q_stride + (size_t)(h0 + g) * head_dim + c]) * scale;
    }
    __syncthreads();

    float m[MAX_GROUP], l[MAX_GROUP], o[MAX_GROUP][DIMS_PER_LANE];
#pragma unroll
    for (int g = 0; g < MAX_GROUP; ++g) {
        m[g] = NEG_INF;
        l[g] = 0.0f;
#pragma unroll
        for (int t = 0; t < DIMS_PER_LANE; ++t) o[g][t] = 0.0f;
    }

    for (int kt = begin + warp * KV_TILE; kt < end; kt += WARPS * KV_TILE) {
        int key = kt + lane;
        bool valid = key < end;
        size_t row = valid ? kv.row(b, key) + (size_t)kvh * head_dim : 0;
        float s[MAX_GROUP];
#pragma unroll
        for (int g = 0; g < MAX_GROUP; ++g) s[g] = 0.0f;
        if (valid) {
            for (int c = 0; c < head_dim; ++c) {
                float kc = D::load(kv.k[row + c]);
#pragma unroll
                for (int g = 0; g < MAX_GROUP; ++g) {
                    if (g < gn) s[g] += qs[g][c] * kc;
                }
            }
        }
        int n_valid = min(KV_TILE, end - kt);
#pragma unroll
        for (int g = 0; g < MAX_GROUP; ++g) {
            if (g >= gn) break;
            float p;
            float alpha = online_softmax_step(valid ? s[g] : NEG_INF, m[g], l[g], p);
#pragma unroll
            for (int t = 0; t < DIMS_PER_LANE; ++t) o[g][t] *= alpha;
            s[g] = p;
        }
        for (int j = 0; j < n_valid; ++j) {
            size_t vrow = __shfl_sync(0xffffffffu, row, j);
            float vc[DIMS_PER_LANE];
#pragma unroll
            for (int t = 0; t < DIMS_PER_LANE; ++t) {
                int c = lane + 32 * t;
                vc[t] = c < head_dim ? D::load(kv.v[vrow + c]) : 0.0f;
            }
#pragma unroll
            for (int g = 0; g < MAX_GROUP; ++g) {
                if (g >= gn) break;
                float pj = __shfl_sync(0xffffffffu, s[g], j);
#pragma unroll
                for (int t = 0; t < DIMS_PER_LANE; ++t) o[g][t] += pj * vc[t];
            }
        }
    }

    // Merge the warps' states.
#pragma unroll
    for (int g = 0; g < MAX_GROUP; ++g) {
        if (lane == 0) {
            wm[warp][g] = m[g];
            wl[warp][g] = l[g];
        }
#pragma unroll
        for (int t = 0; t < DIMS_PER_LANE; ++t) {
            int c = lane + 32 * t;
            if (c < head_dim) wo[warp][g][c] = o[g][t];
        }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < gn * head_dim; idx += blockDim.x) {
        int g = idx / head_dim, c = idx % head_dim;
        float mx = NEG_INF;
        for (int w = 0; w < WARPS; ++w) mx = fmaxf(mx, wm[w][g]);
        float sum = 0.0f, acc = 0.0f;
        if (mx != NEG_INF) {
            for (int w = 0; w < WARPS; ++w) {
                float f = expf(wm[w][g] - mx);
                sum += wl[w][g] * f;
                acc += wo[w][g][c] * f;
            }
        }
        int h = h0 + g;
        if (n_splits == 1) {
            out[q_row * n_heads * head_dim + (size_t)h * head_dim + c] = D::store(sum > 0.0f ? acc / sum : 0.0f);
        } else {
            size_t base = (((size_t)b * n_heads + h) * n_splits + split) * (head_dim + 2);
            partial[base + c] = acc;
            if (c == 0) {
                partial[base + head_dim] = mx;
                partial[base + head_dim + 1] = sum;
            }
        }
    }
}

// grid (n_heads, batch), block >= head_dim threads: merges the split partial states into `out`.
template <typename D>
__device__ void attention_decode_merge(const float* partial, typename D::T* out, const int* spans, int n_heads,
                                       int head_dim, int n_splits) {
    int h = blockIdx.x, b = blockIdx.y;
    size_t q_row = (size_t)spans[4 * b];
    size_t base = ((size_t)b * n_heads + h) * n_splits * (head_dim + 2);
    for (int c = threadIdx.x; c < head_dim; c += blockDim.x) {
        float mx = NEG_INF;
        for (int s = 0; s < n_splits; ++s) mx = fmaxf(mx, partial[base + s * (head_dim + 2) + head_dim]);
        float sum = 0.0f, acc = 0.0f;
        if (mx != NEG_INF) {
            for (int s = 0; s < n_splits; ++s) {
                const float* p = partial + base + s * (head_dim + 2);
                float f = expf(p[head_dim] - mx);
                sum += p[head_dim + 1] * f;
                acc += p[c] * f;
            }
        }
        out[q_row * n_heads * head_dim + (size_t)h * head_dim + c] = D::store(sum > 0.0f ? acc / sum : 0.0f);
    }
}

#define ATTENTION_KERNELS(S, D)                                                                                     \
    extern "C" __global__ void attention_prefill_##S(const D::T* q, const D::T* k, const D::T* v, D::T* out,          \
                                                     float* lse, const int* spans, int n_heads, int n_kv_heads,       \
                                                     int head_dim, int q_stride, int kv_stride, float scale) {        \
        ContiguousKv<D> kv = {k, v, spans, kv_stride};                                                              \
        attention_prefill<D>(q, out, lse, spans, kv, n_heads, n_kv_heads, head_dim, q_stride, scale);               \
    }                                                                                                               \
    extern "C" __global__ void attention_prefill_paged_##S(                                                          \
        const D::T* q, const D::T* k_cache, const D::T* v_cache, D::T* out, const int* spans,                        \
        const int* block_tables, int max_blocks, int block_size, int n_heads, int n_kv_heads, int head_dim,         \
        int q_stride, float scale) {                                                                                \
        PagedKv<D> kv = {k_cache, v_cache, spans, block_tables, max_blocks, block_size, n_kv_heads * head_dim};     \
        attention_prefill<D>(q, out, 0, spans, kv, n_heads, n_kv_heads, head_dim, q_stride, scale);                 \
    }                                                                                                               \
    extern "C" __global__ void attention_decode_##S(                                                                 \
        const D::T* q, const D::T* k_cache, const D::T* v_cache, D::T* out, float* partial, const int* spans,        \
        const int* block_tables, int max_blocks, int block_size, int n_heads, int n_kv_heads, int head_dim,         \
        int q_stride, float scale) {                                                                                \
        PagedKv<D> kv = {k_cache, v_cache, spans, block_tables, max_blocks, block_size, n_kv_heads * head_dim};     \
        attention_decode<D>(q, out, partial, kv, n_heads, n_kv_heads, head_dim, q_stride, scale);                   \
    }                                                                                                               \
    extern "C" __global__ void attention_decode_merge_##S(const float* partial, D::T* out, const int* spans,         \
                                                          int n_heads, int head_dim, int n_splits) {                 \
        attention_decode_merge<D>(partial, out, spans, n_heads, head_dim, n_splits);                                \
    }

FOR_EACH_DTYPE(ATTENTION_KERNELS)
