//! Llama/Qwen2 transformer on CPU: Hugging Face config and safetensors, the [`Backend`] seam,
//! forward and hand-written backward, KV cache, sampling and tokenizers.
//!
//! [`Model`] runs on the CPU ([`CpuBackend`]); `Model::with_backend(config, weights, backend)` runs
//! the same forward, cached decode and backward on any other [`Backend`] that implements
//! [`HostAccess`] (`selfplay-kernels`' `CudaBackend` on a GPU).
//!
//! ```no_run
//! use selfplay_model::{GenerationConfig, Model, ModelDir, SamplingParams};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = ModelDir::load("path/to/model".as_ref())?; // config.json, model.safetensors, tokenizer.json
//! let model = Model::new(dir.config, dir.weights)?; // every tensor checked against the config
//! let logits = &model.forward(&[&[1, 2, 3]])?[0].logits; // [3, vocab]
//! assert_eq!(logits.dims()[0], 3);
//! let config = GenerationConfig { max_new_tokens: 32, sampling: SamplingParams::greedy(), stop_tokens: vec![] };
//! let out = model.generate(&[&[1, 2, 3]], &config, &[0])?; // tokens, logprobs, finish reason per row
//! println!("{:?}", out[0].tokens);
//! # Ok(())
//! # }
//! ```

mod atomic;
pub mod backend;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod generate;
pub mod hf_config;
pub mod init;
pub mod io_error;
pub mod kv_cache;
pub mod model;
pub mod rng;
pub mod safetensors_io;
pub mod sampler;
pub mod tokenizer;
pub mod transformer;
mod validate;
pub mod weights;

pub use atomic::write_file_atomic;
pub use backend::{Backend, CountingBackend, CpuBackend, HostAccess};
pub use checkpoint::{ModelDir, save_model_dir, save_model_dir_with};
pub use config::{Architecture, ModelConfig};
pub use error::ModelError;
pub use generate::{FinishReason, Generation, GenerationConfig};
pub use init::{DEFAULT_INIT_STD, init_weights};
pub use io_error::IoError;
pub use kv_cache::{DEFAULT_BLOCK_SIZE, KvCache};
pub use model::{CpuKvCache, ForwardOutput, LastOutputs, Model, SequenceGrads, StepOutputs, TokenStats, TrainPass};
pub use sampler::{Sampled, SamplingParams};
pub use selfplay_kvcache::SeqId;
pub use tokenizer::{CharTokenizer, SpecialIds, Tokenizer};
pub use weights::{LayerWeights, ModelWeights, ParamName};
