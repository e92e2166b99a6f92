//! Lean tensor types shared by every selfplay crate.
//!
//! A [`Tensor`] is a [`Shape`] plus a row-major `Vec` of a plain-old-data element type; a
//! [`TensorView`] borrows the same thing. There is deliberately no autograd, no device enum and no
//! broadcasting: the model crate writes its forward and backward passes by hand over flat buffers,
//! and these types only make shapes explicit and checked. Elements are `f32`, [`half::f16`] or
//! [`half::bf16`]; [`AnyTensor`] holds whichever a file contained. [`Float`] is the workspace's one float trait
//! (`f32`, `f64`), which the model's kernels and the learning crate's losses are generic over.
//!
//! The crate owns the shape arithmetic (element counts checked for overflow once, at construction;
//! row-major strides; the "all leading axes times the last" matrix view), the [`Element`] trait every
//! stored float implements, the [`DType`] names safetensors uses, the byte conversions a safetensors
//! reader and writer need, and the [`Float`] arithmetic (with its platform and portable `exp`/`ln`).
//! It is `no_std` + `alloc` (the `std` feature is on by default).
//!
//! ```
//! use selfplay_tensor::{AnyTensor, DType, Float, Tensor, TensorError, bf16};
//!
//! # fn main() -> Result<(), TensorError> {
//! // A [2, 3] matrix: the length is checked against the shape.
//! let t = Tensor::<f32>::from_vec([2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
//! assert_eq!(t.shape().strides(), [3, 1]);
//! assert_eq!(t.row(1)?, &[4.0, 5.0, 6.0]);
//! assert!(Tensor::<f32>::from_vec([2, 3], vec![0.0; 5]).is_err());
//!
//! // Reshape keeps the elements; a [3, 2] matrix has three rows of two.
//! let t = t.reshape([3, 2])?;
//! assert_eq!(t.row(2)?, &[5.0, 6.0]);
//!
//! // Narrow to bf16 for storage and back: these small integers are exact.
//! let stored: Tensor<bf16> = t.cast();
//! assert_eq!(stored.as_bytes().len(), 6 * DType::BF16.size_bytes());
//! assert_eq!(stored.cast::<f32>(), t);
//!
//! // What a safetensors reader does with a dtype name and raw little-endian bytes.
//! let any = AnyTensor::from_bytes(DType::BF16, [3, 2], stored.as_bytes())?;
//! assert_eq!(any.dtype(), DType::BF16);
//! assert_eq!(any.to_f32().data(), t.data());
//!
//! // Code generic over `Float` runs in f32 for training and in f64 to check gradients.
//! fn log_softmax_at<T: Float>(logits: &[T], i: usize) -> T {
//!     let max = logits.iter().fold(T::NEG_INFINITY, |m, &x| m.max(x));
//!     let sum: T = logits.iter().map(|&x| (x - max).exp()).sum();
//!     logits[i] - max - sum.ln()
//! }
//! let (lp32, lp64) = (log_softmax_at(&[1.0f32, 2.0, 3.0], 2), log_softmax_at(&[1.0f64, 2.0, 3.0], 2));
//! assert!((f64::from(lp32) - lp64).abs() < 1e-6 && lp64 < 0.0);
//! # Ok(())
//! # }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;

mod dtype;
mod error;
mod float;
mod shape;
mod tensor;

pub use dtype::{DType, Element};
pub use error::TensorError;
pub use float::Float;
pub use half::{bf16, f16};
pub use shape::Shape;
pub use tensor::{AnyTensor, Tensor, TensorView};
