// Batched sampling: one CTA per row of f32 logits, every row with its own parameters, in one launch.
//
// Row r: temperature t (0 = greedy, lowest id on ties), top_k (0 = off), top_p (1 = off), min_p (0 = off),
// and a Philox4x32-10 stream keyed by seeds[r] at counter steps[r], so a row's draw depends on nothing else
// in the batch. Filters follow selfplay-model's sampler (Hugging Face order) and its tie rule: top-k, then
// top-p on the mass top-k kept, then min-p (exp(x) >= min_p with x = (logit - max) / t, i.e.
// p >= min_p * p_max). Top-k and top-p are thresholds on the raw logit, so tokens with equal logits are kept
// or dropped together (all ties with the k-th largest stay), exactly as on the CPU. Thresholds are found
// without sorting, by bisection over the order-preserving integer image of the logit (32 block-wide passes
// give the exact k-th value). The draw walks the kept mass in index order.
// Outputs per row: the token, `logprobs` (under the truncated, renormalised distribution sampled from; 0 for
// greedy) and `model_logprobs` (log_softmax(logits) at temperature 1). A row holding NaN or +inf, or only
// -inf, gets token = vocab (the host reports it as an error).

#define SAMPLE_THREADS 1024

__device__ __forceinline__ u32 mulhi32(u32 a, u32 b) { return __umulhi(a, b); }

// Philox4x32-10 (Salmon et al. 2011), first output word.
__device__ u32 philox4x32_10_first(u64 counter, u64 key) {
    u32 c0 = (u32)counter, c1 = (u32)(counter >> 32), c2 = 0, c3 = 0;
    u32 k0 = (u32)key, k1 = (u32)(key >> 32);
    for (int round = 0; round < 10; ++round) {
        u32 hi0 = mulhi32(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        u32 hi1 = mulhi32(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        u32 n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return c0;
}

// Order-preserving map float -> u32 (larger float, larger key).
__device__ __forceinline__ u32 order_key(float x) {
    u32 f = __float_as_uint(x);
    return (f & 0x80000000u) ? ~f : (f | 0x80000000u);
}

struct RowView {
    const float* logits;
    int begin, end;  // this thread's contiguous index range
    float max, inv_t;
    __device__ float x(int i) const {
        float l = logits[i];
        return l != l ? NEG_INF : (l - max) * inv_t;  // NaN logits never win
    }
    // The threshold key: the raw logit's order image, so ties are ties of the logit itself.
    __device__ u32 key(int i) const { return order_key(logits[i]); }
};

// Count (as f32, exact below 2^24) and mass of elements with key >= k.
__device__ void count_mass_at_least(const RowView& row, u32 k, float* count, float* mass) {
    float c = 0.0f, m = 0.0f;
    for (int i = row.begin; i < row.end; ++i) {
        if (row.key(i) >= k) {
            c += 1.0f;
            m += expf(row.x(i));
        }
    }
    *count = block_sum(c);
    *mass = block_sum(m);
}

extern "C" __global__ void sample_rows(const float* logits, int vocab, const float* temperatures, const int* top_ks,
                                       const float* top_ps, const float* min_ps, const u64* seeds, const u64* steps,
                                       u32* tokens, float* logprobs, float* model_logprobs) {
    __shared__ float best_val[SAMPLE_THREADS];
    __shared__ int best_idx[SAMPLE_THREADS];
    __shared__ float incl[SAMPLE_THREADS];
    __shared__ int chosen;
    int r = blockIdx.x, tid = threadIdx.x;
    const float* row_logits = logits + (size_t)r * vocab;
    int chunk = (vocab + blockDim.x - 1) / blockDim.x;
    RowView row = {row_logits, min(vocab, tid * chunk), min(vocab, (tid + 1) * chunk), 0.0f, 1.0f};

    // Max and argmax (lowest index among ties); count invalid entries.
    float bv = NEG_INF, bad = 0.0f;
    int bi = vocab;
    for (int i = row.begin; i < row.end; ++i) {
        float l = row_logits[i];
        if (l != l || l == -NEG_INF) bad += 1.0f;
        if (l > bv) {
            bv = l;
            bi = i;
        }
    }
    bad = block_sum(bad);
    best_val[tid] = bv;
    best_idx[tid] = bi;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (tid < s) {
            float ov = best_val[tid + s];
            int oi = best_idx[tid + s];
            if (ov > best_val[tid] || (ov == best_val[tid] && oi < best_idx[tid])) {
                best_val[tid] = ov;
                best_idx[tid] = oi;
            }
        }
        __syncthreads();
    }
    int argmax = best_idx[0];
    if (bad > 0.0f || argmax >= vocab) {
        if (tid == 0) {
            tokens[r] = (u32)vocab;
            logprobs[r] = NEG_INF;
            model_logprobs[r] = NEG_INF;
        }
        return;
    }
    row.max = best_val[0];

    // log_softmax at temperature 1 (row.inv_t is 1 here).
    float z1 = 0.0f;
    for (int i = row.begin; i < row.end; ++i) z1 += expf(row.x(i));
    float log_z1 = logf(block_sum(z1));

    float t = temperatures[r];
    if (!(t > 0.0f)) {
        if (tid == 0) {
            tokens[r] = (u32)argmax;
            logprobs[r] = 0.0f;
            model_logprobs[r] = row.x(argmax) - log_z1;
        }
        return;
    }
    row.inv_t = 1.0f / t;

    // Thresholds as order keys; an element is kept iff its key >= keep.
    u32 keep = 0;
    int k = top_ks[r];
    if (k > 0 && k < vocab) {
        u32 lo = 0, hi = 0xffffffffu;  // invariant: count(>= lo) >= k; count(> hi) < k
        while (lo < hi) {
            u32 mid = (u32)(((u64)lo + hi + 1) / 2);
            float c, m;
            count_mass_at_least(row, mid, &c, &m);
            if (c >= (float)k) lo = mid; else hi = mid - 1;
        }
        keep = lo;
    }
    float p = top_ps[r];
    if (p < 1.0f) {
        float c, kept_mass;
        count_mass_at_least(row, keep, &c, &kept_mass);
        float need = p * kept_mass;
        u32 lo = keep, hi = 0xffffffffu;  // invariant: mass(>= lo) >= need as evaluated
        while (lo < hi) {
            u32 mid = (u32)(((u64)lo + hi + 1) / 2);
            float m;
            count_mass_at_least(row, mid, &c, &m);
            if (m >= need) lo = mid; else hi = mid - 1;
        }
        keep = lo;
    }
    float min_p = min_ps[r];

    // Inverse CDF over kept mass in index order. Thread intervals [incl[tid-1], incl[tid]) chain from 0 to the
    // total, so some thread always claims the target even if float rounding makes the scan non-monotonic;
    // the lowest claimer wins.
    float own = 0.0f;
    for (int i = row.begin; i < row.end; ++i) {
        float e = expf(row.x(i));
        if (row.key(i) >= keep && e >= min_p) own += e;
    }
    incl[tid] = own;
    __syncthreads();
    for (int off = 1; off < (int)blockDim.x; off <<= 1) {
        float add = tid >= off ? incl[tid - off] : 0.0f;
        __syncthreads();
        incl[tid] += add;
        __syncthreads();
    }
    if (tid == 0) chosen = vocab;
    __syncthreads();
    float total = incl[blockDim.x - 1];
    float u = (float)(philox4x32_10_first(steps[r], seeds[r]) >> 8) * 5.9604644775390625e-8f;
    float target = u * total;
    float lo_edge = tid == 0 ? 0.0f : incl[tid - 1];
    if (lo_edge <= target && target < incl[tid]) {
        float acc = lo_edge;
        int pick = -1;
        for (int i = row.begin; i < row.end; ++i) {
            float e = expf(row.x(i));
            if (row.key(i) < keep || e < min_p || e <= 0.0f) continue;
            pick = i;
            acc += e;
            if (acc > target) break;
        }
        if (pick >= 0) atomicMin(&chosen, pick);
    }
    __syncthreads();
    if (tid == 0) {
        int token = chosen < vocab ? chosen : argmax;
        tokens[r] = (u32)token;
        logprobs[r] = row.x(token) - logf(total);
        model_logprobs[r] = (row_logits[token] - row.max) - log_z1;
    }
}
