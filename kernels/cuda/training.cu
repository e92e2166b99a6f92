// Backward passes and loss statistics for training on the GPU (f32 only, as the model's Backend<f32>).
// These favour simplicity over speed: rollouts (forward + sampling) are the hot path, not these.

// d_table[ids[t], :] += d_out[t, :]. grid (n_tokens).
extern "C" __global__ void embedding_backward_f32(const float* d_out, const u32* ids, float* d_table, int n_tokens,
                                                  int dim, int vocab) {
    int t = blockIdx.x;
    if (t >= n_tokens || ids[t] >= (u32)vocab) return;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) atomicAdd(&d_table[(size_t)ids[t] * dim + c], d_out[(size_t)t * dim + c]);
}

// y = x * inv * w, with g = d_out * w: d_x += inv * (g - x * inv^2 * mean(g * x)); d_w += d_out * x * inv.
// grid (rows).
extern "C" __global__ void rms_norm_backward_f32(const float* d_out, const float* x, const float* w, const float* inv_rms,
                                                 int rows, int dim, float* d_x, float* d_w) {
    int r = blockIdx.x;
    if (r >= rows) return;
    const float* xr = x + (size_t)r * dim;
    const float* dr = d_out + (size_t)r * dim;
    float inv = inv_rms[r];
    float dot = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) dot += dr[c] * w[c] * xr[c];
    float mean = block_sum(dot) / (float)dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float g = dr[c] * w[c];
        d_x[(size_t)r * dim + c] += inv * (g - xr[c] * inv * inv * mean);
        atomicAdd(&d_w[c], dr[c] * xr[c] * inv);
    }
}

// out = silu(g) * u: d_up = d_out * silu(g); d_gate = d_out * u * s * (1 + g * (1 - s)), s = sigmoid(g). Written.
extern "C" __global__ void swiglu_backward_f32(const float* gate, const float* up, const float* d_out, float* d_gate,
                                               float* d_up, unsigned long long n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float g = gate[i], s = 1.0f / (1.0f + expf(-g));
        d_up[i] = d_out[i] * g * s;
        d_gate[i] = d_out[i] * up[i] * s * (1.0f + g * (1.0f - s));
    }
}

// d_bias[c] += sum over rows of d_y[r, c]. grid (ceil(cols / blockDim)).
extern "C" __global__ void bias_backward_f32(const float* d_y, int rows, int cols, float* d_bias) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) return;
    float s = 0.0f;
    for (int r = 0; r < rows; ++r) s += d_y[(size_t)r * cols + c];
    d_bias[c] += s;
}

// Per row: lse = log sum exp(z), entropy = lse - sum p z. grid (rows).
extern "C" __global__ void log_softmax_stats_f32(const float* logits, int rows, int vocab, float* lse, float* entropy) {
    int r = blockIdx.x;
    if (r >= rows) return;
    const float* z = logits + (size_t)r * vocab;
    float m = NEG_INF;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) m = fmaxf(m, z[i]);
    m = block_max(m);
    float s = 0.0f, sz = 0.0f;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        float e = expf(z[i] - m);
        s += e;
        sz += e * (z[i] - m);
    }
    s = block_sum(s);
    sz = block_sum(sz);
    if (threadIdx.x == 0) {
        lse[r] = m + logf(s);
        entropy[r] = logf(s) - sz / s;
    }
}

// d_logits = d_logprob * (onehot(target) - p) - d_entropy * p * (log p + H). Written. grid (rows).
extern "C" __global__ void log_softmax_backward_f32(const float* logits, const float* lse, const float* entropy,
                                                    const u32* targets, const float* d_logprob, const float* d_entropy,
                                                    int rows, int vocab, float* d_logits) {
    int r = blockIdx.x;
    if (r >= rows) return;
    const float* z = logits + (size_t)r * vocab;
    float a = d_logprob[r], b = d_entropy[r], l = lse[r], h = entropy[r];
    u32 target = targets[r];
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        float logp = z[i] - l, p = expf(logp);
        d_logits[(size_t)r * vocab + i] = a * (((u32)i == target ? 1.0f : 0.0f) - p) - b * p * (logp + h);
    }
}

#define DIMS_PER_LANE_BWD 4  // head_dim <= 128

// Attention backward, one warp per (query row, head), recomputing probabilities from the saved lse:
// P = exp(scale q.k - lse); dV_j += P dO; dS = P (dO.v_j - dO.O); dQ += scale dS k_j; dK_j += scale dS q.
// dK/dV use atomics (keys are shared by queries and by the heads of a GQA group). All gradients add.
// grid (ceil(q_rows_max * n_heads / 4), batch), block 128; spans as in attention.cu.
extern "C" __global__ void attention_backward_f32(const float* q, const float* k, const float* v, const float* out,
                                                  const float* d_out, const float* lse, const int* spans, int n_heads,
                                                  int n_kv_heads, int head_dim, float scale, float* d_q, float* d_k,
                                                  float* d_v) {
    int b = blockIdx.y, lane = threadIdx.x & 31;
    int item = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    int q_start = spans[4 * b], q_len = spans[4 * b + 1], kv_start = spans[4 * b + 2], kv_len = spans[4 * b + 3];
    if (item >= q_len * n_heads) return;
    int i = item / n_heads, h = item % n_heads, kvh = h / (n_heads / n_kv_heads);
    int pos = kv_len - q_len + i;
    size_t qrow = ((size_t)(q_start + i) * n_heads + h) * head_dim;
    float row_lse = lse[(size_t)(q_start + i) * n_heads + h];
    float qv[DIMS_PER_LANE_BWD], dov[DIMS_PER_LANE_BWD], dq[DIMS_PER_LANE_BWD];
    float delta = 0.0f;
#pragma unroll
    for (int t = 0; t < DIMS_PER_LANE_BWD; ++t) {
        int c = lane + 32 * t;
        qv[t] = c < head_dim ? q[qrow + c] : 0.0f;
        dov[t] = c < head_dim ? d_out[qrow + c] : 0.0f;
        delta += c < head_dim ? dov[t] * out[qrow + c] : 0.0f;
        dq[t] = 0.0f;
    }
    delta = warp_sum(delta);
    for (int j = 0; j <= pos && j < kv_len; ++j) {
        size_t krow = ((size_t)(kv_start + j) * n_kv_heads + kvh) * head_dim;
        float s = 0.0f, dp = 0.0f;
#pragma unroll
        for (int t = 0; t < DIMS_PER_LANE_BWD; ++t) {
            int c = lane + 32 * t;
            if (c < head_dim) {
                s += qv[t] * k[krow + c];
                dp += dov[t] * v[krow + c];
            }
        }
        s = warp_sum(s);
        dp = warp_sum(dp);
        float p = expf(s * scale - row_lse);
        float ds = p * (dp - delta);
#pragma unroll
        for (int t = 0; t < DIMS_PER_LANE_BWD; ++t) {
            int c = lane + 32 * t;
            if (c < head_dim) {
                dq[t] += scale * ds * k[krow + c];
                atomicAdd(&d_k[krow + c], scale * ds * qv[t]);
                atomicAdd(&d_v[krow + c], p * dov[t]);
            }
        }
    }
#pragma unroll
    for (int t = 0; t < DIMS_PER_LANE_BWD; ++t) {
        int c = lane + 32 * t;
        if (c < head_dim) d_q[qrow + c] += dq[t];
    }
}
