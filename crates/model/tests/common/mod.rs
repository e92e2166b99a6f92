//! Shared helpers of the model crate's integration tests: fixture paths, the references that
//! `tools/make_model_fixtures.py` recorded, and scratch directories.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use selfplay_tensor::Tensor;

/// The checkpoints the fixture script writes with a full `expected.safetensors`.
pub const PARITY_FIXTURES: [&str; 4] = ["llama_gqa", "qwen2_tied", "llama_bf16", "llama_bias"];

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

/// A fresh empty directory under the system temp dir, unique per test and process.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("selfplay-model-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One reference sequence: its tokens, per-position loss weights and transformers' logits.
#[derive(Debug)]
pub struct RefSequence {
    pub tokens: Vec<u32>,
    pub ce_weights: Vec<f32>,
    pub logits: Tensor<f32>,
}

/// Everything in `<fixture>/expected.safetensors`.
#[derive(Debug)]
pub struct Expected {
    pub sequences: Vec<RefSequence>,
    /// PyTorch gradients by Hugging Face parameter name.
    pub grads: BTreeMap<String, Tensor<f32>>,
}

pub fn expected(name: &str) -> Expected {
    let bytes = std::fs::read(fixture(name).join("expected.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let f32_tensor = |key: &str| {
        let view = file.tensor(key).unwrap();
        assert_eq!(view.dtype(), Dtype::F32, "{key}");
        Tensor::<f32>::from_bytes(view.shape().to_vec(), view.data()).unwrap()
    };
    let mut sequences = Vec::new();
    while let Ok(view) = file.tensor(&format!("tokens.{}", sequences.len())) {
        assert_eq!(view.dtype(), Dtype::I32);
        let s = sequences.len();
        let tokens = view.data().chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        sequences.push(RefSequence {
            tokens,
            ce_weights: f32_tensor(&format!("ce_weights.{s}")).into_data(),
            logits: f32_tensor(&format!("logits.{s}")),
        });
    }
    let grads = file
        .names()
        .into_iter()
        .filter_map(|n| n.strip_prefix("grad.").map(|p| (p.to_string(), f32_tensor(n))))
        .collect();
    Expected { sequences, grads }
}
