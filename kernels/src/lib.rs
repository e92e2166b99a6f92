//! CUDA backend for selfplay-model: custom kernels compiled at run time by NVRTC, cuBLAS GEMMs.
//!
//! The crate builds and its CPU-side tests run on machines with no CUDA at all: cudarc loads libcuda,
//! libnvrtc and libcublas dynamically on first use, and every entry point checks for them first.
//! Kernels are `.cu` files under `kernels/cuda/`, embedded with `include_str!` and compiled for the
//! device's compute capability the first time a context needs them.

pub mod backend;
pub mod blas;
pub mod compile;
pub mod device;
pub mod engine;
mod error;
pub mod gpu_model;
pub mod ops;
pub mod sources;
mod training;

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod gpu_tests;
#[cfg(test)]
mod reference;

pub use backend::CudaBackend;
pub use blas::Blas;
pub use compile::{Arch, compile, nvrtc_available, nvrtc_version};
pub use device::{GpuContext, driver_available};
pub use engine::{Completion, GenerationRequest, GpuGenerator};
pub use error::{KernelError, Result};
pub use gpu_model::{GpuModel, SeqStep};
/// The 16-bit float types the kernels store (`half::bf16`, `half::f16`), re-exported for callers.
pub use half;
pub use ops::{DeviceKvPool, Element, KvGeometry, PagedBatch, SampleRequest};
pub use sources::{KernelSource, SOURCES};
