//! Writes model directories for the transformers round-trip check:
//! `cargo run -p selfplay-model --example export_model -- OUT_ROOT` creates
//! `OUT_ROOT/{llama_f32,qwen2_bf16}/`, each a random model with the built-in character tokenizer,
//! saved by [`ModelDir::save`], plus `tokens.json` (a text and our tokenizer's ids for it) and
//! `ours.safetensors` (`logits` [tokens, vocab] from our forward on the directory as reloaded).
//! Then `python3 tools/make_model_fixtures.py verify OUT_ROOT/*` loads each directory in
//! transformers and compares.

use std::path::{Path, PathBuf};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use selfplay_model::init::{init_weights, standard_normal};
use selfplay_model::safetensors_io::write_safetensors;
use selfplay_model::{Architecture, CharTokenizer, Model, ModelConfig, ModelDir};
use selfplay_tensor::{DType, Tensor};

type Error = Box<dyn std::error::Error>;

const TEXT: &str = "12+7=19\n19*3=57\n<answer>(12+7)*3</answer><eos>";

fn config(architecture: Architecture) -> ModelConfig {
    ModelConfig {
        architecture,
        vocab_size: 100,
        hidden_size: 32,
        intermediate_size: 48,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 16,
        rms_norm_eps: 1e-6,
        rope_theta: 10_000.0,
        max_position_embeddings: 128,
        tie_word_embeddings: architecture == Architecture::Qwen2,
        attention_bias: architecture == Architecture::Qwen2,
        o_proj_bias: false,
        bos_token_id: Some(1),
        eos_token_id: Some(2),
    }
}

fn export(dir: &Path, architecture: Architecture, dtype: DType, seed: u64) -> Result<(), Error> {
    let config = config(architecture);
    let mut weights = init_weights(&config, 0.3, seed)?;
    // Make norms and biases non-trivial too, so the check covers every parameter.
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1);
    for (e, t) in weights.iter_mut() {
        let name = e.name.name;
        let (base, scale) = if name.ends_with("norm.weight") { (1.0, 0.2) } else { (0.0, 0.3) };
        if name.ends_with("norm.weight") || name.ends_with(".bias") {
            t.iter_mut().for_each(|x| *x = base + scale * standard_normal(&mut rng));
        }
    }
    let tokenizer = CharTokenizer::ascii();
    ModelDir { config, weights, tokenizer: Some(Box::new(tokenizer)) }.save(dir, dtype)?;

    let reloaded = ModelDir::load(dir)?;
    let tokenizer = reloaded.tokenizer.as_ref().ok_or("tokenizer.json was not written")?;
    let ids = tokenizer.encode(TEXT)?;
    let model = Model::new(reloaded.config, reloaded.weights)?;
    let logits: Tensor<f32> = model.forward(&[ids.as_slice()])?.remove(0).logits;
    write_safetensors(&dir.join("ours.safetensors"), [("logits".to_string(), &logits)], DType::F32)?;
    let record = serde_json::json!({ "text": TEXT, "ids": ids });
    std::fs::write(dir.join("tokens.json"), serde_json::to_string_pretty(&record)? + "\n")?;
    println!("{}: {} tokens, logits {:?}", dir.display(), ids.len(), logits.dims());
    Ok(())
}

fn main() -> Result<(), Error> {
    let root = PathBuf::from(std::env::args().nth(1).ok_or("usage: export_model OUT_ROOT")?);
    std::fs::create_dir_all(&root)?;
    export(&root.join("llama_f32"), Architecture::Llama, DType::F32, 7)?;
    export(&root.join("qwen2_bf16"), Architecture::Qwen2, DType::BF16, 8)?;
    Ok(())
}
