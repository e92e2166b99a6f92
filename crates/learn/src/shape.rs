//! The padded `[batch, len]` layout every token-level input shares, and the checks run on each input.

use crate::error::{LearnError, Result};
use selfplay_tensor::Float;

/// A batch of `batch` sequences padded to `len` tokens, stored row-major in flat slices: token `t` of
/// sequence `i` is at `i * len + t`. A boolean mask of the same layout marks the tokens that count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqShape {
    /// Number of sequences.
    pub batch: usize,
    /// Padded length of each sequence.
    pub len: usize,
}

impl SeqShape {
    /// `batch` sequences of `len` tokens.
    pub fn new(batch: usize, len: usize) -> Self {
        Self { batch, len }
    }

    /// Number of token slots, `batch * len`; an error when zero or overflowing.
    pub fn numel(&self) -> Result<usize> {
        if self.batch == 0 {
            return Err(LearnError::Empty { name: "batch" });
        }
        if self.len == 0 {
            return Err(LearnError::Empty { name: "len" });
        }
        self.batch
            .checked_mul(self.len)
            .ok_or(LearnError::InvalidConfig { name: "shape", reason: "batch * len overflows" })
    }

    /// Checks that a token-level input has `batch * len` elements.
    pub(crate) fn check_len<X>(&self, name: &'static str, xs: &[X]) -> Result<()> {
        let expected = self.numel()?;
        if xs.len() != expected {
            return Err(LearnError::LengthMismatch { name, expected, got: xs.len() });
        }
        Ok(())
    }

    /// Checks a token-level float input: length, and finite at every slot (masked or not, since a NaN in
    /// padding usually means a bug upstream).
    pub(crate) fn check<T: Float>(&self, name: &'static str, xs: &[T]) -> Result<()> {
        self.check_len(name, xs)?;
        check_finite(name, xs)
    }

    /// Number of unmasked tokens in each sequence.
    pub(crate) fn seq_counts<'m>(&self, mask: &'m [bool]) -> impl Iterator<Item = usize> + 'm {
        mask.chunks_exact(self.len.max(1)).map(|row| row.iter().filter(|&&m| m).count())
    }
}

/// Checks a float input is free of NaN and infinities.
pub(crate) fn check_finite<T: Float>(name: &'static str, xs: &[T]) -> Result<()> {
    match xs.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(LearnError::NonFinite { name, index }),
        None => Ok(()),
    }
}

/// Checks a per-sequence input has `expected` elements, all finite.
pub(crate) fn check_seq<T: Float>(name: &'static str, xs: &[T], expected: usize) -> Result<()> {
    if xs.len() != expected {
        return Err(LearnError::LengthMismatch { name, expected, got: xs.len() });
    }
    check_finite(name, xs)
}

/// Checks a hyper-parameter is finite and at least `min`.
pub(crate) fn check_param(name: &'static str, x: f64, min: f64) -> Result<()> {
    if !(x.is_finite() && x >= min) {
        return Err(LearnError::InvalidConfig { name, reason: "out of range or not finite" });
    }
    Ok(())
}
