//! Optimisation: AdamW and global gradient-norm clipping over lists of flat f32 tensors.

mod adamw;
mod clip;

pub use adamw::{AdamW, AdamWConfig, AdamWState};
pub use clip::{clip_grad_norm, clip_grad_norm_with, global_grad_norm};

/// Square root that LLVM can vectorise: the std method lowers to the `sqrt` intrinsic; `no_std` falls back to libm.
#[inline(always)]
pub(crate) fn sqrt_f32(x: f32) -> f32 {
    #[cfg(feature = "std")]
    {
        x.sqrt()
    }
    #[cfg(not(feature = "std"))]
    {
        libm::sqrtf(x)
    }
}

/// The first NaN/infinite element of `xs`, scanning in cache-sized chunks with a branch-free OR so the check
/// vectorises (it runs over every gradient each optimizer step).
pub(crate) fn first_non_finite(xs: &[f32]) -> Option<usize> {
    const CHUNK: usize = 4096;
    for (c, chunk) in xs.chunks(CHUNK).enumerate() {
        let bad = chunk.iter().fold(false, |acc, x| acc | !x.is_finite());
        if bad {
            return chunk.iter().position(|x| !x.is_finite()).map(|i| c * CHUNK + i);
        }
    }
    None
}
