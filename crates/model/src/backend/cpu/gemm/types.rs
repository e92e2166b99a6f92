//! The data every path of a product shares: operands, the product in flight, its chunking, the kernel.

/// A read-only strided matrix operand: element `(i, j)` lives at `ptr + i*rs + j*cs`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<T> {
    pub ptr: *const T,
    pub rs: isize,
    pub cs: isize,
}

impl<T> MatRef<T> {
    /// Element `(i, j)`.
    ///
    /// # Safety
    /// The element must be readable.
    #[inline(always)]
    pub(super) unsafe fn at(self, i: usize, j: usize) -> T
    where
        T: Copy,
    {
        // SAFETY: the caller's contract.
        unsafe { *self.ptr.offset(i as isize * self.rs + j as isize * self.cs) }
    }
}

/// Whether a product may spread over rayon's pool (never changes its result).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threads {
    /// On the calling thread only (the caller is already one of many parallel tasks).
    One,
    /// Over the current rayon pool when the product is large enough.
    Pool,
}

/// The instruction set a product runs with. Ordered: a forced kernel is capped at the best the CPU has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kernel {
    /// `mul_add` in plain Rust: any target.
    Portable,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// x86-64 with AVX-512F (and AVX2, FMA).
    Avx512,
}

/// Which operand is scaled by β before it is multiplied (only the vector paths scale an operand; the
/// others scale the sum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    A,
    B,
}

/// How the depth is cut in the blocked path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunks {
    /// 512, 512, …, the rest.
    Fixed512,
    /// `⌈k/⌈k/1024⌉⌉` each, the last one shorter.
    Balanced1024,
}

impl Chunks {
    /// The length of every chunk but the last.
    pub(super) fn size(self, k: usize) -> usize {
        match self {
            Chunks::Fixed512 => k.min(512),
            Chunks::Balanced1024 => {
                let kc = k.min(1024);
                k.div_ceil(k.div_ceil(kc.max(1)))
            }
        }
    }
}

/// One product in flight: `dst[m, n] (+)= beta · a[m, k] · b[k, n]`, `dst` rows `dst_rs` apart.
#[derive(Debug, Clone, Copy)]
pub(super) struct Prod<F> {
    pub(super) m: usize,
    pub(super) n: usize,
    pub(super) k: usize,
    pub(super) dst: *mut F,
    pub(super) dst_rs: isize,
    pub(super) accumulate: bool,
    pub(super) a: MatRef<F>,
    pub(super) b: MatRef<F>,
    pub(super) beta: F,
}

// SAFETY: a `Prod` is only a description; whoever runs one upholds `gemm_strided`'s contract (its
// elements readable, its output written by this product alone), and the parallel blocked path gives
// every output tile to exactly one task.
unsafe impl<F: Send> Send for Prod<F> {}
// SAFETY: as above.
unsafe impl<F: Sync> Sync for Prod<F> {}

impl<F> Prod<F> {
    /// The output element `(i, j)`.
    #[inline(always)]
    pub(super) fn out(&self, i: usize, j: usize) -> *mut F {
        self.dst.wrapping_offset(i as isize * self.dst_rs + j as isize)
    }
}
