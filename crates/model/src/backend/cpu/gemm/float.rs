//! The two element types the products run on, with the one operation the fixed order needs beyond
//! `+` and `*`: a fused multiply-add (one rounding).

use core::ops::{Add, Mul};

/// `f32` or `f64`.
pub(super) trait Float:
    Copy + Default + Send + Sync + 'static + PartialEq + Add<Output = Self> + Mul<Output = Self>
{
    const ZERO: Self;
    /// `self · b + c` rounded once (IEEE 754 fusedMultiplyAdd). Compiled inside an FMA-enabled
    /// function it is one instruction; elsewhere a correctly rounded library call. Either way the
    /// same bits.
    fn fma(self, b: Self, c: Self) -> Self;
}

macro_rules! impl_float {
    ($t:ty) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            #[inline(always)]
            fn fma(self, b: Self, c: Self) -> Self {
                self.mul_add(b, c)
            }
        }
    };
}

impl_float!(f32);
impl_float!(f64);
