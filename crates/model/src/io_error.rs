//! The one error type of the model's input/output half: Hugging Face `config.json`, safetensors
//! weights, tokenizers and model directories.
//!
//! Every way a file on disk can be wrong has its own variant, so a caller (or a test) can tell a
//! truncated checkpoint from a config we cannot honour without parsing messages.

use std::path::PathBuf;

use selfplay_tensor::TensorError;

/// Why loading or saving a model, its config, weights or tokenizer failed.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// Reading or writing a file failed at the operating-system level. (Causes are left to
    /// `source()`, not repeated in messages, so an error chain prints each once.)
    #[error("cannot access {path}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A JSON file (`config.json`, `tokenizer.json`, a shard index) is not valid JSON of the expected shape.
    #[error("{what}: invalid JSON")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// `architectures` / `model_type` names a model we do not implement.
    #[error("unsupported architecture {0:?} (supported: LlamaForCausalLM, Qwen2ForCausalLM)")]
    UnsupportedArchitecture(String),
    /// The config asks for something our forward pass does not do (and would silently get wrong).
    #[error("unsupported config option: {0}")]
    UnsupportedOption(String),
    /// The config's sizes are zero or contradict one another.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// A safetensors file's header or layout is corrupt, or the file is truncated.
    #[error("{path}: corrupt safetensors file: {reason}")]
    CorruptSafetensors { path: PathBuf, reason: String },
    /// Serialising tensors into the safetensors format failed.
    #[error("cannot serialise tensors as safetensors")]
    Serialize(#[from] safetensors::SafeTensorError),
    /// A tensor the config requires is not in the checkpoint.
    #[error("missing tensor {0:?}")]
    MissingTensor(String),
    /// A tensor the config does not account for is in the checkpoint (a sign the config and weights disagree).
    #[error("unexpected tensor {0:?} (the config does not account for it)")]
    UnexpectedTensor(String),
    /// A tensor has the wrong shape for the config.
    #[error("tensor {name:?} has shape {got:?}, expected {expected:?}")]
    WrongShape { name: String, expected: Vec<usize>, got: Vec<usize> },
    /// A tensor is stored in a dtype other than F32, F16 or BF16.
    #[error("tensor {name:?} has dtype {dtype}, expected F32, F16 or BF16")]
    WrongDtype { name: String, dtype: String },
    /// A tensor name appears in more than one shard.
    #[error("tensor {0:?} appears more than once")]
    DuplicateTensor(String),
    /// A shard index names a file outside the model directory or one that does not exist.
    #[error("shard index: {0}")]
    BadShardIndex(String),
    /// A directory holds neither `model.safetensors` nor `model.safetensors.index.json`.
    #[error("{0}: no model.safetensors or model.safetensors.index.json")]
    NoWeights(PathBuf),
    /// Building a tensor from file data failed.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A character the character-level tokenizer has no id for.
    #[error("character {0:?} is not in the tokenizer's vocabulary")]
    UnknownChar(char),
    /// A token id at or beyond the vocabulary size.
    #[error("token id {id} is out of range for a vocabulary of {vocab_size}")]
    TokenOutOfRange { id: u32, vocab_size: usize },
    /// A `tokenizer.json` that is not one we can load (or needs the `hf-tokenizers` feature).
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

/// Shorthand for this module family's results.
pub type IoResult<T> = Result<T, IoError>;

impl IoError {
    /// Wraps an `std::io::Error` with the path it concerns.
    pub(crate) fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IoError::File { path: path.into(), source }
    }

    /// Wraps a JSON error with a description of what was being parsed.
    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        IoError::Json { what: what.into(), source }
    }
}
