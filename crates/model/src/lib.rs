//! Llama/Qwen2 transformer on CPU: Hugging Face config and safetensors, the [`Backend`] seam,
//! forward and hand-written backward, KV cache, sampling and tokenizers.
//!
//! The crate owns the network every recipe trains: its hyper-parameters ([`ModelConfig`], read from and
//! written to a Hugging Face `config.json`), its parameters ([`ModelWeights`]: one flat buffer with a named,
//! typed view per Hugging Face tensor, in and out of `model.safetensors`), the [`Model`] that checks the two
//! against each other and runs them (forward, training pass and backward, value head, paged [`KvCache`], batched
//! [`Model::generate`] with seeded [`SamplingParams`]) and the [`Tokenizer`]s. Every op goes through the
//! [`Backend`] trait; [`CpuBackend`] is the reference the GPU backend is tested against. A model on disk
//! is a [`ModelDir`] (`config.json`, `model.safetensors`, `tokenizer.json`), loaded with
//! [`ModelDir::load`] and written with [`save_model_dir`].
//!
//! [`Model`] runs on the CPU ([`CpuBackend`]); `Model::with_backend(config, weights, backend)` runs
//! the same forward, cached decode and backward on any other [`Backend`] that implements
//! [`HostAccess`] (`selfplay-kernels`' `CudaBackend` on a GPU).
//!
//! A tiny random model built in memory, run forward and decoded greedily:
//!
//! ```
//! use selfplay_model::{
//!     Architecture, CharTokenizer, DEFAULT_INIT_STD, FinishReason, GenerationConfig, Model, ModelConfig,
//!     SamplingParams, Tokenizer, init_weights,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tokenizer = CharTokenizer::ascii(); // one token per character, 99 ids
//! let config = ModelConfig {
//!     architecture: Architecture::Qwen2,
//!     vocab_size: tokenizer.vocab_size(),
//!     hidden_size: 32,
//!     intermediate_size: 64,
//!     num_hidden_layers: 2,
//!     num_attention_heads: 4,
//!     num_key_value_heads: 2, // grouped-query attention: two query heads per key/value head
//!     head_dim: 8,
//!     rms_norm_eps: 1e-6,
//!     rope_theta: 10_000.0,
//!     max_position_embeddings: 64,
//!     tie_word_embeddings: true,
//!     attention_bias: true, // Qwen2 biases q/k/v ...
//!     o_proj_bias: false,   // ... but not o_proj
//!     bos_token_id: tokenizer.bos_id(),
//!     eos_token_id: None, // so every row below runs to max_new_tokens
//! };
//! let weights = init_weights(&config, DEFAULT_INIT_STD, 0)?; // seeded, Hugging Face style
//! let model = Model::new(config, weights)?; // every tensor checked against the config
//!
//! // Forward: logits [len, vocab] and one value per position, for each sequence of the batch.
//! let prompt = tokenizer.encode("12+7=")?;
//! let out = model.forward(&[&prompt, &prompt[..2]])?;
//! assert_eq!(out[0].logits.dims(), [5, 99]);
//! assert_eq!(out[1].logits.dims(), [2, 99]);
//! assert_eq!(out[0].values.len(), 5);
//!
//! // Greedy generation through the paged KV cache: deterministic whatever the row's seed, and its
//! // first token is the argmax of the forward pass's last row.
//! let greedy = GenerationConfig { max_new_tokens: 4, sampling: SamplingParams::greedy(), stop_tokens: vec![] };
//! let rows = model.generate(&[&prompt, &prompt], &greedy, &[1, 2])?;
//! assert_eq!(rows[0].tokens.len(), 4);
//! assert_eq!(rows[0].finish, FinishReason::MaxTokens);
//! assert_eq!(rows[0].tokens, rows[1].tokens);
//! let last = out[0].logits.row(4)?;
//! let argmax = (0..last.len()).max_by(|&a, &b| last[a].total_cmp(&last[b])).map(|i| i as u32);
//! assert_eq!(rows[0].tokens.first().copied(), argmax);
//! assert!(rows[0].logprobs.iter().all(|&lp| lp <= 0.0));
//! println!("{:?}", tokenizer.decode(&rows[0].tokens)?);
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
pub mod loss;
pub mod model;
mod param_name;
pub mod rng;
pub mod safetensors_io;
pub mod sampler;
pub mod token_stats;
pub mod tokenizer;
pub mod transformer;
mod validate;
pub mod weights;

pub use atomic::write_file_atomic;
pub use backend::{Backend, CountingBackend, CpuBackend, HostAccess};
pub use checkpoint::{ModelDir, model_dir_files, save_model_dir, save_model_dir_with};
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
pub use weights::{ModelWeights, ParamEntry, ParamLayout, ParamName};
