//! Which micro-kernel a blocked product runs: the x86-64 ones when the CPU has them, else the portable one.

use super::blocked::{Micro, PORTABLE_MR, PORTABLE_NR, micro_portable};
use super::float::Float;
use super::types::Kernel;

/// The micro-kernel for `F` on `kernel`.
pub(super) fn micro<F: Float>(kernel: Kernel) -> Micro<F> {
    #[cfg(target_arch = "x86_64")]
    if let Some(m) = super::x86::micro::<F>(kernel) {
        return m;
    }
    let _ = kernel;
    Micro { mr: PORTABLE_MR, nr: PORTABLE_NR, run: micro_portable::<F, PORTABLE_MR, PORTABLE_NR>, pack_bt: None }
}
