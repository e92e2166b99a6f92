//! Lean tensor types shared by every selfplay crate.
//!
//! A [`Tensor`] is a [`Shape`] plus a row-major `Vec` of a plain-old-data element type; a
//! [`TensorView`] borrows the same thing. There is deliberately no autograd, no device enum and no
//! broadcasting: the model crate writes its forward and backward passes by hand over flat buffers,
//! and these types only make shapes explicit and checked. Elements are `f32`, [`half::f16`] or
//! [`half::bf16`]; [`AnyTensor`] holds whichever a file contained. [`Float`] is the workspace's one float trait
//! (`f32`, `f64`), which the model's kernels and the learning crate's losses are generic over.
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
