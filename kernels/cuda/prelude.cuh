// Shared by every kernel source: prepended by the host before NVRTC compiles a program, because NVRTC
// cannot be relied on to find toolkit headers. bf16 and f16 are raw 16-bit patterns converted by hand.

typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned long long u64;

#define NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float bf16_to_f32(u16 bits) { return __uint_as_float(((u32)bits) << 16); }

// Round to nearest even; NaN stays a (quiet) NaN.
__device__ __forceinline__ u16 f32_to_bf16(float x) {
    u32 bits = __float_as_uint(x);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (u16)((bits >> 16) | 0x40u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (u16)(bits >> 16);
}

__device__ __forceinline__ float f16_to_f32(u16 h) {
    u32 sign = ((u32)h & 0x8000u) << 16;
    u32 exp = ((u32)h >> 10) & 0x1fu;
    u32 man = (u32)h & 0x3ffu;
    if (exp == 0x1fu) return __uint_as_float(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        // Zero or subnormal: value = man * 2^-24, exact in f32.
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return __uint_as_float(sign | ((exp + 112u) << 23) | (man << 13));
}

// Round to nearest even, with overflow to infinity and gradual underflow.
__device__ __forceinline__ u16 f32_to_f16(float x) {
    u32 bits = __float_as_uint(x);
    u32 sign = (bits >> 16) & 0x8000u;
    u32 abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u) return (u16)(sign | 0x7e00u);
    if (abs >= 0x477ff000u) return (u16)(sign | 0x7c00u);  // rounds to >= 65520: infinity
    if (abs < 0x38800000u) {
        // Subnormal or zero in f16: scale so the f16 subnormal step is one integer unit, round to even.
        float v = __uint_as_float(abs) * 16777216.0f;  // 2^24
        u32 r = (u32)__float2int_rn(v);
        return (u16)(sign | r);
    }
    u32 rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return (u16)(sign | ((rounded - 0x38000000u) >> 13));
}

// Storage types: each kernel is a template over one of these and loads/stores through it, computing in f32.
struct F32 {
    typedef float T;
    static __device__ __forceinline__ float load(float x) { return x; }
    static __device__ __forceinline__ float store(float x) { return x; }
};
struct BF16 {
    typedef u16 T;
    static __device__ __forceinline__ float load(u16 x) { return bf16_to_f32(x); }
    static __device__ __forceinline__ u16 store(float x) { return f32_to_bf16(x); }
};
struct F16 {
    typedef u16 T;
    static __device__ __forceinline__ float load(u16 x) { return f16_to_f32(x); }
    static __device__ __forceinline__ u16 store(float x) { return f32_to_f16(x); }
};

// Instantiates X once per storage type with its suffix.
#define FOR_EACH_DTYPE(X) X(f32, F32) X(bf16, BF16) X(f16, F16)

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Block-wide sum for blockDim.x a multiple of 32 (<= 1024). Every thread gets the result.
__device__ float block_sum(float v) {
    __shared__ float partial[32];
    __shared__ float total;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float w = lane < (int)(blockDim.x >> 5) ? partial[lane] : 0.0f;
        w = warp_sum(w);
        if (lane == 0) total = w;
    }
    __syncthreads();
    float result = total;
    __syncthreads();
    return result;
}

__device__ float block_max(float v) {
    __shared__ float partial[32];
    __shared__ float total;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_max(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float w = lane < (int)(blockDim.x >> 5) ? partial[lane] : NEG_INF;
        w = warp_max(w);
        if (lane == 0) total = w;
    }
    __syncthreads();
    float result = total;
    __syncthreads();
    return result;
}
