//! Llama/Qwen2 transformer on CPU: Hugging Face config and safetensors, the [`Backend`] seam,
//! forward and hand-written backward, KV cache, sampling and tokenizers.

pub mod config;
pub mod weights;

pub use config::{Architecture, ModelConfig};
pub use weights::{LayerWeights, ModelWeights};
