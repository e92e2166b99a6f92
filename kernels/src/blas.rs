//! Matrix products through cuBLAS (f32, and bf16/f16 storage with f32 accumulation).

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{CudaBlas, Gemm as BlasGemm, GemmConfig};
use cudarc::driver::CudaSlice;
use selfplay_model::backend::Gemm;

use crate::device::GpuContext;
use crate::error::{KernelError, Result};
use crate::ops::{Element, need, to_i32};

/// A cuBLAS handle bound to a context's stream.
#[derive(Debug)]
pub struct Blas {
    handle: CudaBlas,
}

impl Blas {
    /// Creates the handle; fails with [`KernelError::Invalid`] when libcublas cannot be loaded.
    pub fn new(gpu: &GpuContext) -> Result<Self> {
        // SAFETY: only tries to dlopen libcublas's candidate names.
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err(crate::error::invalid("Blas::new", "libcublas cannot be loaded"));
        }
        Ok(Self { handle: CudaBlas::new(gpu.stream().clone()).map_err(KernelError::Blas)? })
    }

    /// `c (+)= op(a) · op(b)` with the row-major conventions of [`Gemm`].
    ///
    /// cuBLAS is column-major, and a row-major `[r, c]` matrix is a column-major `[c, r]` one, so the
    /// row-major product `C = A·B` is computed as the column-major `Cᵀ = Bᵀ·Aᵀ`: operands swap places
    /// and keep their transpose flags.
    pub fn gemm<E: Element>(&self, g: Gemm, a: &CudaSlice<E>, b: &CudaSlice<E>, c: &mut CudaSlice<E>) -> Result<()>
    where
        CudaBlas: BlasGemm<E>,
    {
        const OP: &str = "gemm";
        need(OP, "a", a.len(), g.m * g.k)?;
        need(OP, "b", b.len(), g.k * g.n)?;
        need(OP, "c", c.len(), g.m * g.n)?;
        if g.m == 0 || g.n == 0 {
            return Ok(());
        }
        let op = |t: bool| if t { cublasOperation_t::CUBLAS_OP_T } else { cublasOperation_t::CUBLAS_OP_N };
        let lda = if g.trans_a { g.m } else { g.k };
        let ldb = if g.trans_b { g.k } else { g.n };
        let cfg = GemmConfig {
            transa: op(g.trans_b),
            transb: op(g.trans_a),
            m: to_i32(OP, "n", g.n)?,
            n: to_i32(OP, "m", g.m)?,
            k: to_i32(OP, "k", g.k)?,
            alpha: E::from_f32(1.0),
            lda: to_i32(OP, "ldb", ldb.max(1))?,
            ldb: to_i32(OP, "lda", lda.max(1))?,
            beta: E::from_f32(if g.accumulate { 1.0 } else { 0.0 }),
            ldc: to_i32(OP, "n", g.n)?,
        };
        // SAFETY: the operands hold at least m·k, k·n and m·n elements (checked above), which is what the
        // leading dimensions and sizes in `cfg` address.
        unsafe { self.handle.gemm(cfg, b, a, c) }?;
        Ok(())
    }
}
