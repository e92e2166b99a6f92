// Row-wise and element-wise ops of the transformer: embedding gather, RMSNorm, rotary embedding, SwiGLU,
// residual add and bias add. Forward ops are templated over the storage type and compute in f32.

// out[t, :] = table[ids[t], :], one block per token. Ids are validated on the host; an out-of-range id
// still writes zeros rather than reading out of bounds.
template <typename D>
__device__ void embedding(const u32* ids, const typename D::T* table, typename D::T* out, int n_tokens, int dim,
                          int vocab) {
    int t = blockIdx.x;
    if (t >= n_tokens) return;
    u32 id = ids[t];
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float v = id < (u32)vocab ? D::load(table[(size_t)id * dim + c]) : 0.0f;
        out[(size_t)t * dim + c] = D::store(v);
    }
}

// out = x * rsqrt(mean(x^2) + eps) * weight, one block per row; inv_rms[row] saved when non-null.
template <typename D>
__device__ void rms_norm(const typename D::T* x, const typename D::T* weight, typename D::T* out, float* inv_rms,
                         int rows, int dim, float eps) {
    int r = blockIdx.x;
    if (r >= rows) return;
    const typename D::T* row = x + (size_t)r * dim;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float v = D::load(row[c]);
        ss += v * v;
    }
    float inv = rsqrtf(block_sum(ss) / (float)dim + eps);
    if (inv_rms != 0 && threadIdx.x == 0) inv_rms[r] = inv;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        out[(size_t)r * dim + c] = D::store(D::load(row[c]) * inv * D::load(weight[c]));
    }
}

// In-place rotary embedding, "rotate half" pairing (i, i + head_dim/2) as in Llama/Qwen2.
// x: [n_tokens, n_heads, head_dim] with `token_stride` elements between tokens; positions[t] per token.
// sign = +1 rotates forward, -1 applies the inverse rotation (the gradient).
template <typename D>
__device__ void rope(typename D::T* x, const u32* positions, int n_tokens, int n_heads, int head_dim,
                     int token_stride, float theta, float sign) {
    int t = blockIdx.x;
    if (t >= n_tokens) return;
    int half = head_dim / 2;
    double pos = (double)positions[t];
    for (int i = threadIdx.x; i < n_heads * half; i += blockDim.x) {
        int h = i / half, j = i % half;
        // Angles in f64: positions reach 1e5 and more, where an f32 angle would lose the phase.
        double angle = pos * pow((double)theta, -(double)(2 * j) / (double)head_dim);
        double s, c;
        sincos(angle, &s, &c);
        float sf = (float)s * sign, cf = (float)c;
        typename D::T* head = x + (size_t)t * token_stride + (size_t)h * head_dim;
        float a = D::load(head[j]), b = D::load(head[j + half]);
        head[j] = D::store(a * cf - b * sf);
        head[j + half] = D::store(b * cf + a * sf);
    }
}

// out[r, c] = silu(gate[r, c]) * up[r, c]; gate and up rows are `in_stride` apart (fused or separate).
template <typename D>
__device__ void swiglu(const typename D::T* gate, const typename D::T* up, typename D::T* out, int rows, int cols,
                       int in_stride) {
    size_t n = (size_t)rows * cols;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / cols, c = i % cols;
        float g = D::load(gate[r * in_stride + c]);
        float u = D::load(up[r * in_stride + c]);
        out[i] = D::store(g / (1.0f + expf(-g)) * u);
    }
}

// x += y (residual connections).
template <typename D>
__device__ void add_assign(typename D::T* x, const typename D::T* y, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        x[i] = D::store(D::load(x[i]) + D::load(y[i]));
    }
}

// x[r, c] += bias[c].
template <typename D>
__device__ void add_bias(typename D::T* x, const typename D::T* bias, size_t n, int cols) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        x[i] = D::store(D::load(x[i]) + D::load(bias[i % cols]));
    }
}

// out = (f32) x: logits leave the model in f32 for sampling whatever the storage type.
template <typename D>
__device__ void to_f32(const typename D::T* x, float* out, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        out[i] = D::load(x[i]);
    }
}

#define ELEMENTWISE_KERNELS(S, D)                                                                                \
    extern "C" __global__ void embedding_##S(const u32* ids, const D::T* table, D::T* out, int n, int dim,       \
                                             int vocab) {                                                        \
        embedding<D>(ids, table, out, n, dim, vocab);                                                            \
    }                                                                                                            \
    extern "C" __global__ void rms_norm_##S(const D::T* x, const D::T* w, D::T* out, float* inv_rms, int rows,    \
                                            int dim, float eps) {                                                \
        rms_norm<D>(x, w, out, inv_rms, rows, dim, eps);                                                         \
    }                                                                                                            \
    extern "C" __global__ void rope_##S(D::T* x, const u32* pos, int n, int heads, int hd, int stride,            \
                                        float theta, float sign) {                                               \
        rope<D>(x, pos, n, heads, hd, stride, theta, sign);                                                      \
    }                                                                                                            \
    extern "C" __global__ void swiglu_##S(const D::T* g, const D::T* u, D::T* out, int rows, int cols,            \
                                          int stride) {                                                          \
        swiglu<D>(g, u, out, rows, cols, stride);                                                                \
    }                                                                                                            \
    extern "C" __global__ void add_assign_##S(D::T* x, const D::T* y, unsigned long long n) {                     \
        add_assign<D>(x, y, (size_t)n);                                                                          \
    }                                                                                                            \
    extern "C" __global__ void add_bias_##S(D::T* x, const D::T* bias, unsigned long long n, int cols) {          \
        add_bias<D>(x, bias, (size_t)n, cols);                                                                   \
    }                                                                                                            \
    extern "C" __global__ void to_f32_##S(const D::T* x, float* out, unsigned long long n) { to_f32<D>(x, out, (size_t)n); }

FOR_EACH_DTYPE(ELEMENTWISE_KERNELS)
