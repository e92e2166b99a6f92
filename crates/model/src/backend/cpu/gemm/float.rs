//! The two element types the products run on, with the one operation the fixed order needs beyond
//! `+` and `*`: a fused multiply-add (one rounding), and per-thread scratch for packed operands.

use core::cell::RefCell;
use core::ops::{Add, Mul};
use std::thread::LocalKey;

/// `f32` or `f64`.
pub(super) trait Float:
    Copy + Send + Sync + 'static + PartialEq + Add<Output = Self> + Mul<Output = Self>
{
    const ZERO: Self;
    /// `self · b + c` rounded once (IEEE 754 fusedMultiplyAdd). Compiled inside an FMA-enabled
    /// function it is one instruction; elsewhere a correctly rounded library call. Either way the
    /// same bits.
    fn fma(self, b: Self, c: Self) -> Self;
    /// This thread's scratch vectors (one per [`Slot`]).
    fn scratch(slot: Slot) -> &'static LocalKey<RefCell<Vec<Self>>>;
}

/// Which scratch vector: packed right operands are held by the calling thread while it (or a pool
/// thread) packs left operands, so they need separate vectors.
#[derive(Debug, Clone, Copy)]
pub(super) enum Slot {
    A,
    B,
}

macro_rules! impl_float {
    ($t:ty) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            #[inline(always)]
            fn fma(self, b: Self, c: Self) -> Self {
                self.mul_add(b, c)
            }
            fn scratch(slot: Slot) -> &'static LocalKey<RefCell<Vec<Self>>> {
                thread_local! {
                    static A: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
                    static B: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) };
                }
                match slot {
                    Slot::A => &A,
                    Slot::B => &B,
                }
            }
        }
    };
}

impl_float!(f32);
impl_float!(f64);

/// Runs `f` on `len` elements of this thread's scratch vector `slot` (contents unspecified), or on a
/// fresh vector when that one is in use further up this thread's stack (a rayon thread can start
/// another product while it waits inside one).
pub(super) fn with_scratch<F: Float, R>(slot: Slot, len: usize, f: impl FnOnce(&mut [F]) -> R) -> R {
    F::scratch(slot).with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < len {
                v.resize(len, F::ZERO);
            }
            f(&mut v[..len])
        }
        Err(_) => f(&mut vec![F::ZERO; len]),
    })
}
