//! Per-thread scratch memory for the CPU kernels, so that an op allocates nothing once warm.
//!
//! A kernel that needs working memory (packed GEMM operands, one task's attention scores, the
//! partial column sums of a reduction, a RoPE table for decode rows) borrows it here instead of
//! allocating a `Vec` on every call. Each thread keeps one vector per [`Slot`], grown to the largest
//! length it has been asked for and never shrunk: after the first steps of a run have shown every
//! shape once (the warm-up), no op allocates. Borrowing costs a thread-local lookup, a `RefCell` flag
//! and a type check, once per op or per parallel task, never per element. The price is memory kept
//! per thread: the largest request of each slot (a GEMM's packed operand, a query block's scores
//! against the longest context seen), as the packing buffers were kept before every kernel used them.
//!
//! Why slots rather than one arena: a kernel holds one scratch vector while a callee borrows another
//! (an attention task keeps its scores while its GEMM packs operands), and the borrows are scoped
//! closures, so distinct slots make nesting explicit and cheap. Why `dyn Any`: the kernels are
//! generic over the element type (`f32` in production, `f64` in gradient checks) and a thread-local
//! cannot be generic; a slot holds a `Vec` of whichever type last used it and is replaced (one
//! allocation) when another type asks, which only tests that mix precisions ever do.
//!
//! Scratch never carries data from one call to the next: its contents on entry are unspecified
//! (whatever the previous borrower left), and every kernel writes each element before reading it.
//! So results are the same bits as with fresh buffers, on any thread, at any thread count.

use std::any::Any;
use std::cell::RefCell;

/// The scratch vectors a thread keeps; each is borrowed by one kind of kernel work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// The blocked GEMM's packed left operand.
    GemmA,
    /// The blocked GEMM's packed right operand.
    GemmB,
    /// A right operand transposed before a small-path product (see `gemm_dense`).
    GemmTransposed,
    /// The first task of each span of an attention call (a flat task list without the list).
    TaskStarts,
    /// One attention task's score (or probability) matrix.
    Scores,
    /// One attention-backward task's score gradients.
    ScoreGrads,
    /// The per-chunk partial sums of a column reduction.
    Partials,
    /// RoPE: the inverse frequencies of a call.
    RopeFreqs,
    /// RoPE: per-row `(cos, sin)` pairs of a call whose positions the cached table does not cover.
    RopeRows,
}

const SLOTS: usize = 9;

thread_local! {
    /// One vector per [`Slot`], type-erased (see the module docs).
    static SCRATCH: [RefCell<Option<Box<dyn Any>>>; SLOTS] = const { [const { RefCell::new(None) }; SLOTS] };
}

/// Runs `f` on `len` elements of this thread's scratch vector `slot`, growing the vector first if it
/// is shorter. The contents are unspecified: `f` must write every element it reads.
///
/// If this thread already holds `slot` further up its stack (a rayon worker that, waiting inside a
/// parallel loop, runs another task that borrows the same slot), `f` gets a fresh vector instead:
/// correct, only not free. The kernels avoid this by never holding a slot across a parallel loop that
/// borrows the same slot.
pub(super) fn with_scratch<T: Copy + Default + 'static, R>(slot: Slot, len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    SCRATCH.with(|slots| match slots[slot as usize].try_borrow_mut() {
        Ok(mut held) => {
            if !held.as_ref().is_some_and(|v| v.is::<Vec<T>>()) {
                *held = Some(Box::new(Vec::<T>::new()));
            }
            match held.as_mut().and_then(|v| v.downcast_mut::<Vec<T>>()) {
                Some(v) => {
                    if v.len() < len {
                        v.resize(len, T::default());
                    }
                    f(&mut v[..len])
                }
                // Unreachable: the slot was just set to a `Vec<T>`.
                None => f(&mut vec![T::default(); len]),
            }
        }
        Err(_) => f(&mut vec![T::default(); len]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_grows_keeps_its_memory_and_changes_type() {
        let first = with_scratch::<f32, _>(Slot::Scores, 10, |s| {
            s.fill(1.0);
            s.as_ptr() as usize
        });
        // Shorter requests reuse the same memory.
        let again = with_scratch::<f32, _>(Slot::Scores, 4, |s| {
            assert_eq!(s.len(), 4);
            s.as_ptr() as usize
        });
        assert_eq!(first, again);
        // Nested use of one slot gets a separate vector; other slots are independent.
        with_scratch::<f32, _>(Slot::Scores, 3, |outer| {
            outer.fill(2.0);
            with_scratch::<f32, _>(Slot::Scores, 3, |inner| inner.fill(3.0));
            with_scratch::<f32, _>(Slot::ScoreGrads, 3, |other| other.fill(4.0));
            assert_eq!(outer, [2.0; 3]);
        });
        // Another element type replaces the vector.
        with_scratch::<f64, _>(Slot::Scores, 5, |s| assert_eq!(s.len(), 5));
    }
}
