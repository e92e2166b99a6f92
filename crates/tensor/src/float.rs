//! [`Float`]: the one floating-point trait of the workspace, implemented for `f32` (real work) and `f64`
//! (gradient checks). The model's kernels and the learning crate's losses are generic over it.
//!
//! Two flavours of `exp` and `ln`, because the platform's math library and `libm` do not round alike: on x86-64
//! Linux (glibc) `f32::exp` and `libm::expf` differ in the last bit on 19,194,594 of the 2^32 `f32` inputs, and
//! `f32::ln` and `libm::logf` on 13,575,147 (`exhaustive_f32_flavour_disagreements` counts them); the f64
//! functions differ too. Before the trait was shared the model used the former and the losses the latter, and
//! each keeps its own numbers:
//! * [`Float::exp`] / [`Float::ln`] are the standard library's (`f32::exp`: the platform's libm) with the
//!   `std` feature, `libm`'s without it. The model's kernels use these.
//! * [`Float::exp_portable`] / [`Float::ln_portable`] are always `libm`'s (pure Rust): the same bits on every
//!   platform, with or without `std`. The losses of `selfplay-learn` use these (and so do the provided
//!   [`Float::log_sigmoid`] and [`Float::sigmoid`]).
//!
//! `sqrt` is correctly rounded (IEEE 754) and `abs` is exact, so those have one flavour. `max`/`min` follow
//! `f32::max`/`f32::min`: a NaN argument is ignored.

use core::fmt::Debug;
use core::iter::Sum;
use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// `f32` or `f64`: the arithmetic, constants and elementary functions the kernels and losses need.
pub trait Float:
    Copy
    + Default
    + Debug
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + Sum
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// -∞.
    const NEG_INFINITY: Self;
    /// Converts from f64 (rounding to nearest for f32).
    fn from_f64(x: f64) -> Self;
    /// Widens to f64 (exact).
    fn to_f64(self) -> f64;
    /// Converts a count (through f64).
    fn from_usize(n: usize) -> Self {
        Self::from_f64(n as f64)
    }
    /// e^x: the standard library's with the `std` feature (the platform's libm), `libm`'s without.
    fn exp(self) -> Self;
    /// Natural logarithm: the standard library's with the `std` feature, `libm`'s without.
    fn ln(self) -> Self;
    /// e^x from `libm`: the same bits on every platform, with or without `std`.
    fn exp_portable(self) -> Self;
    /// Natural logarithm from `libm`: the same bits on every platform, with or without `std`.
    fn ln_portable(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// |x|.
    fn abs(self) -> Self;
    /// Not NaN and not infinite.
    fn is_finite(self) -> bool;
    /// The larger of two; a NaN argument is ignored (`f32::max`).
    fn max(self, other: Self) -> Self;
    /// The smaller of two; a NaN argument is ignored (`f32::min`).
    fn min(self, other: Self) -> Self;
    /// `self` limited to `[lo, hi]` (`max(lo)` then `min(hi)`: never panics, unlike `f32::clamp`).
    fn clamp(self, lo: Self, hi: Self) -> Self {
        self.max(lo).min(hi)
    }
    /// log(sigmoid(x)), without overflow for large |x|: `min(x, 0) - ln(1 + e^{-|x|})` (portable flavour).
    fn log_sigmoid(self) -> Self {
        self.min(Self::ZERO) - (Self::ONE + (-self.abs()).exp_portable()).ln_portable()
    }
    /// sigmoid(x), without overflow for large |x| (portable flavour).
    fn sigmoid(self) -> Self {
        if self >= Self::ZERO {
            Self::ONE / (Self::ONE + (-self).exp_portable())
        } else {
            let e = self.exp_portable();
            e / (Self::ONE + e)
        }
    }
}

macro_rules! impl_float {
    ($t:ty, $exp:path, $ln:path, $sqrt:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                #[cfg(feature = "std")]
                return <$t>::exp(self);
                #[cfg(not(feature = "std"))]
                return $exp(self);
            }
            #[inline]
            fn ln(self) -> Self {
                #[cfg(feature = "std")]
                return <$t>::ln(self);
                #[cfg(not(feature = "std"))]
                return $ln(self);
            }
            #[inline]
            fn exp_portable(self) -> Self {
                $exp(self)
            }
            #[inline]
            fn ln_portable(self) -> Self {
                $ln(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                #[cfg(feature = "std")]
                return <$t>::sqrt(self);
                #[cfg(not(feature = "std"))]
                return $sqrt(self);
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline]
            fn min(self, other: Self) -> Self {
                <$t>::min(self, other)
            }
        }
    };
}

impl_float!(f32, libm::expf, libm::logf, libm::sqrtf);
impl_float!(f64, libm::exp, libm::log, libm::sqrt);

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::Float;

    /// `f32` inputs spread over every binade (both signs), plus the special values and the ranges softmax and
    /// log-probabilities live in.
    fn sample_f32() -> impl Iterator<Item = f32> {
        let specials = [0.0, -0.0, 1.0, -1.0, f32::MIN_POSITIVE, f32::MAX, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
        let spread = (0u32..20_000).map(|i| f32::from_bits(i.wrapping_mul(214_748_357)));
        let near_one = (0u32..4_000).map(|i| 1.0 + (i as f32 - 2000.0) * 1e-4);
        let softmax_range = (0u32..4_000).map(|i| -88.0 + i as f32 * 0.044);
        specials.into_iter().chain(spread).chain(near_one).chain(softmax_range)
    }

    fn sample_f64() -> impl Iterator<Item = f64> {
        let spread = (0u64..20_000).map(|i| f64::from_bits(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        let dense = (0u64..20_000).map(|i| -700.0 + i as f64 * 0.07);
        spread.chain(dense)
    }

    fn same_f32(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    fn same_f64(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    /// Each flavour is bit for bit the function it documents: the model's kernels keep `f32::exp` & co., the
    /// losses keep `libm` (both were so before the trait was shared).
    #[test]
    fn each_flavour_is_its_documented_function() {
        for x in sample_f32() {
            assert!(same_f32(Float::exp(x), f32::exp(x)), "exp({x:e})");
            assert!(same_f32(Float::ln(x), f32::ln(x)), "ln({x:e})");
            assert!(same_f32(Float::sqrt(x), f32::sqrt(x)), "sqrt({x:e})");
            assert!(same_f32(Float::exp_portable(x), libm::expf(x)), "exp_portable({x:e})");
            assert!(same_f32(Float::ln_portable(x), libm::logf(x)), "ln_portable({x:e})");
            assert!(same_f32(Float::sqrt(x), libm::sqrtf(x)), "sqrt is correctly rounded in both: {x:e}");
            assert!(same_f32(Float::abs(x), libm::fabsf(x)), "abs({x:e})");
            assert!(same_f32(Float::max(x, 0.5), f32::max(x, 0.5)) && same_f32(Float::min(x, 0.5), f32::min(x, 0.5)));
        }
        for x in sample_f64() {
            assert!(same_f64(Float::exp(x), f64::exp(x)), "exp({x:e})");
            assert!(same_f64(Float::ln(x), f64::ln(x)), "ln({x:e})");
            assert!(same_f64(Float::exp_portable(x), libm::exp(x)), "exp_portable({x:e})");
            assert!(same_f64(Float::ln_portable(x), libm::log(x)), "ln_portable({x:e})");
            assert!(same_f64(Float::sqrt(x), libm::sqrt(x)), "sqrt is correctly rounded in both: {x:e}");
        }
    }

    /// How often the platform's `f32` exp/ln and `libm`'s disagree over all 2^32 inputs (prints the counts;
    /// the reason the trait has two flavours): `cargo test -p selfplay-tensor --release -- --ignored --nocapture`.
    #[test]
    #[ignore = "exhaustive: 2^32 inputs"]
    fn exhaustive_f32_flavour_disagreements() {
        let (mut exp, mut ln) = (0u64, 0u64);
        for bits in 0..=u32::MAX {
            let x = f32::from_bits(bits);
            exp += u64::from(!same_f32(Float::exp(x), Float::exp_portable(x)));
            ln += u64::from(!same_f32(Float::ln(x), Float::ln_portable(x)));
        }
        println!("f32 inputs where std and libm differ: exp {exp}, ln {ln}");
    }

    #[test]
    fn max_min_ignore_nan_and_clamp_never_panics() {
        assert_eq!(Float::max(f32::NAN, 1.0f32), 1.0);
        assert_eq!(Float::min(2.0f32, f32::NAN), 2.0);
        assert_eq!(Float::clamp(5.0f32, 1.0, 0.0), 0.0, "lo > hi: no panic");
        assert_eq!(<f64 as Float>::from_usize(7), 7.0);
        assert!(((-40.0f32).log_sigmoid() + 40.0).abs() < 1e-6);
        assert!((Float::sigmoid(0.0f64) - 0.5).abs() < 1e-15);
    }
}
