use alloc::vec::Vec;

/// Everything that can go wrong when building or reshaping a tensor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    /// The number of elements does not match the product of the dimensions.
    #[error("shape {shape:?} holds {expected} elements but {got} were given")]
    LengthMismatch { shape: Vec<usize>, expected: usize, got: usize },
    /// Two shapes that must agree do not.
    #[error("shape mismatch: expected {expected:?}, got {got:?}")]
    ShapeMismatch { expected: Vec<usize>, got: Vec<usize> },
    /// The product of the dimensions does not fit in `usize`.
    #[error("shape {0:?} has more elements than fit in memory")]
    TooLarge(Vec<usize>),
    /// A byte buffer is not a whole number of elements of the dtype.
    #[error("{len} bytes is not a whole number of {dtype} elements")]
    ByteLength { len: usize, dtype: &'static str },
    /// A row or axis index is outside the tensor.
    #[error("index {index} out of range for axis of length {len}")]
    IndexOutOfRange { index: usize, len: usize },
}
