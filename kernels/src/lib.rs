//! CUDA backend for selfplay-model: custom kernels compiled at run time by NVRTC, cuBLAS GEMMs.
//!
//! The crate builds and its CPU-side tests run on machines with no CUDA at all: cudarc loads libcuda,
//! libnvrtc and libcublas dynamically on first use, and every entry point checks for them first.
//! Kernels are `.cu` files under `kernels/cuda/`, embedded with `include_str!` and compiled for the
//! device's compute capability the first time a context needs them.
//!
//! What it owns:
//! * [`CudaBackend`]: the model's `Backend` seam on one GPU (f32), built from these kernels and cuBLAS
//!   ([`Blas`]). `selfplay_model::Model::with_backend(config, weights, CudaBackend::new(0)?)` runs the
//!   model's own forward, cached decode and backward on it; the model's `CpuBackend` is its reference in
//!   every test.
//! * [`GpuContext`]: one device, its stream and every kernel of [`SOURCES`] compiled ([`compile()`]) for its
//!   [`Arch`]; [`driver_available`] and [`nvrtc_available`] say whether the libraries load at all.
//! * [`GpuGenerator`]: rollouts on the GPU, continuous-batching generation over `Model<CudaBackend>` and its
//!   paged KV cache, with the sampler on the device. [`GpuModel`] is a second forward kept only for bf16/f16
//!   storage (see its module).
//! * [`ops`]: the individual kernels (norms, RoPE, paged attention, KV append and copy, batched sampling).
//!
//! Detect a device and fall back to the CPU model when there is none. Without a GPU (no driver, no NVRTC
//! or no device) this prints `SKIP (no GPU)` and runs the CPU reference only; with one, it also checks the
//! GPU's logits against the CPU's and its greedy completion token for token. `SELFPLAY_REQUIRE_GPU=1` turns
//! the fallback into a failure, as in the crate's tests.
//!
//! ```
//! use selfplay_kernels::{
//!     Arch, CudaBackend, GenerationRequest, GpuGenerator, SOURCES, driver_available, nvrtc_version,
//! };
//! use selfplay_model::{
//!     Architecture, GenerationConfig, HostAccess, Model, ModelConfig, ModelError, SamplingParams, init_weights,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // What a context compiles: every embedded `.cu` file and the kernels its module must export.
//! let kernels: Vec<String> = SOURCES.iter().flat_map(|source| source.kernel_names()).collect();
//! assert!(kernels.iter().any(|name| name == "attention_decode_bf16"));
//! assert_eq!(Arch::SM90.to_string(), "compute_90"); // the target NVRTC is given for an H100
//! println!("libcuda: {}, NVRTC: {:?}", driver_available(), nvrtc_version());
//!
//! let config = ModelConfig {
//!     architecture: Architecture::Qwen2,
//!     vocab_size: 97,
//!     hidden_size: 64,
//!     intermediate_size: 96,
//!     num_hidden_layers: 2,
//!     num_attention_heads: 8,
//!     num_key_value_heads: 2,
//!     head_dim: 8,
//!     rms_norm_eps: 1e-6,
//!     rope_theta: 10_000.0,
//!     max_position_embeddings: 512,
//!     tie_word_embeddings: true,
//!     attention_bias: true,
//!     o_proj_bias: false,
//!     bos_token_id: None,
//!     eos_token_id: None,
//! };
//! let weights = init_weights(&config, 0.2, 9)?;
//! let prompt: Vec<u32> = (0..17).map(|i| (i * 7 + 3) % 97).collect();
//!
//! // Code written against `Model<B>` runs on either backend.
//! fn last_logits<B: HostAccess>(model: &Model<B>, prompt: &[u32]) -> Result<Vec<f32>, ModelError> {
//!     Ok(model.forward(&[prompt])?[0].logits.row(prompt.len() - 1)?.to_vec())
//! }
//!
//! // The CPU model is the reference and the fallback.
//! let cpu = Model::new(config.clone(), weights.clone())?;
//! let greedy = GenerationConfig { max_new_tokens: 8, sampling: SamplingParams::greedy(), stop_tokens: vec![] };
//! let want = cpu.generate(&[&prompt], &greedy, &[0])?.remove(0).tokens;
//! assert_eq!(want.len(), 8);
//!
//! match CudaBackend::new(0) {
//!     Ok(backend) => {
//!         println!("GPU: {}", backend.gpu().describe());
//!         let gpu = Model::with_backend(config, weights, backend)?;
//!         for (g, c) in last_logits(&gpu, &prompt)?.iter().zip(last_logits(&cpu, &prompt)?) {
//!             assert!((g - c).abs() <= 1e-4 * (1.0 + c.abs()), "gpu {g}, cpu {c}");
//!         }
//!         let mut generator = GpuGenerator::from_model(gpu, 64, 16)?; // 64 KV blocks of 16 tokens
//!         let request = GenerationRequest { prompt, params: SamplingParams::greedy(), seed: 0, max_new_tokens: 8 };
//!         assert_eq!(generator.generate(&[request], 1, None)?.remove(0).tokens, want);
//!     }
//!     Err(err) if std::env::var("SELFPLAY_REQUIRE_GPU").is_ok_and(|v| v == "1") => return Err(err.into()),
//!     Err(err) => println!("SKIP (no GPU): {err}; the CPU backend's completion is {want:?}"),
//! }
//! # Ok(())
//! # }
//! ```

pub mod backend;
pub mod blas;
pub mod compile;
pub mod device;
pub mod engine;
mod error;
pub mod gpu_model;
#[cfg(feature = "nccl")]
pub mod nccl;
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
#[cfg(feature = "nccl")]
pub use nccl::{NcclCollective, nccl_available};
pub use ops::{DeviceKvPool, Element, KvGeometry, PagedBatch, SampleRequest};
pub use sources::{KernelSource, SOURCES};
