//! End-to-end tests of `selfplay logits` and `selfplay generate` through the real binary, on the
//! Hugging Face fixtures of the model crate (references from transformers) and on a model directory
//! with the character tokenizer written by the library.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use selfplay_tensor::Tensor;
use serde_json::Value;

mod common;
use common::char_model;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures").join(name)
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("selfplay-cli-model-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn selfplay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_selfplay")).args(args).output().expect("spawn selfplay")
}

fn success(args: &[&str]) -> String {
    let out = selfplay(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts failure with exactly one `error: ...` line on stderr containing `needle`.
fn one_line_error(args: &[&str], needle: &str) {
    let out = selfplay(args);
    assert!(!out.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains(needle), "{args:?}: {stderr}");
}

/// Sequence 2 of a fixture's references: its tokens and transformers' logits.
fn reference(name: &str) -> (Vec<u32>, Tensor<f32>) {
    let bytes = std::fs::read(fixture(name).join("expected.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tokens = file.tensor("tokens.2").unwrap();
    let tokens = tokens.data().chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let logits = file.tensor("logits.2").unwrap();
    (tokens, Tensor::from_bytes(logits.shape().to_vec(), logits.data()).unwrap())
}

#[test]
fn logits_match_transformers_through_the_cli() {
    let dir = scratch("logits");
    for name in ["qwen2_tied", "llama_bf16"] {
        let (tokens, expected) = reference(name);
        let list: Vec<String> = tokens.iter().map(u32::to_string).collect();
        let out = dir.join(format!("{name}.safetensors"));
        let model = fixture(name);
        success(&[
            "logits",
            "--model",
            model.to_str().unwrap(),
            "--tokens",
            &list.join(","),
            "--out",
            out.to_str().unwrap(),
        ]);
        let ours = selfplay_model::safetensors_io::read_safetensors(&out).unwrap();
        assert_eq!(ours.keys().collect::<Vec<_>>(), ["logits"]);
        let logits = &ours["logits"];
        assert_eq!(logits.dims(), expected.dims());
        let diff = logits.data().iter().zip(expected.data()).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff <= 1e-4, "{name}: max |cli - transformers| = {diff:e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn generate_from_tokens_is_seeded_and_bounded() {
    let model = fixture("llama_gqa");
    let args = |seed: &str, temperature: &str| {
        let m = model.to_str().unwrap().to_string();
        vec![
            "generate".to_string(),
            "--model".into(),
            m,
            "--tokens".into(),
            "5,7,9".into(),
            "--max-new-tokens".into(),
            "6".into(),
            "--temperature".into(),
            temperature.into(),
            "--top-p".into(),
            "0.9".into(),
            "--seed".into(),
            seed.into(),
        ]
    };
    let run = |seed: &str, t: &str| -> Value {
        let a = args(seed, t);
        serde_json::from_str(&success(&a.iter().map(String::as_str).collect::<Vec<_>>())).unwrap()
    };
    let first = run("3", "1.0");
    assert_eq!(first, run("3", "1.0"), "same seed, same completion");
    assert_eq!(first["prompt_tokens"], serde_json::json!([5, 7, 9]));
    let tokens = first["tokens"].as_array().unwrap();
    assert!(!tokens.is_empty() && tokens.len() <= 6);
    assert!(tokens.iter().all(|t| t.as_u64().unwrap() < 48));
    assert!(first.get("text").is_none(), "the fixture has no tokenizer");
    let greedy = run("1", "0");
    assert_eq!(greedy["tokens"], run("2", "0")["tokens"], "greedy ignores the seed");
}

#[test]
fn generate_from_text_with_the_char_tokenizer() {
    let dir = scratch("generate-text");
    let model = char_model(&dir);
    let m = model.to_str().unwrap();
    let out: Value = serde_json::from_str(&success(&[
        "generate",
        "--model",
        m,
        "--prompt",
        "12+7=",
        "--max-new-tokens",
        "5",
        "--temperature",
        "0.7",
        "--seed",
        "4",
    ]))
    .unwrap();
    assert_eq!(out["prompt_tokens"].as_array().unwrap().len(), 6, "BOS + 5 characters");
    let text = out["text"].as_str().unwrap();
    let n = out["tokens"].as_array().unwrap().len();
    assert!((1..=5).contains(&n));
    if out["finish"] != "stop" {
        assert_eq!(text.len(), n, "one character per token");
    }
    one_line_error(&["generate", "--model", m, "--prompt", "naïve"], "not in the tokenizer's vocabulary");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_runs_every_method_deterministically() {
    let dir = scratch("eval");
    let model = char_model(&dir);
    let m = model.to_str().unwrap();
    for method in ["greedy", "sample", "majority", "best_of_n", "best_of_n_value", "beam", "mcts", "gumbel"] {
        let args =
            ["eval", "--model", m, "--method", method, "--budget", "2", "--problems", "3", "--max-new-tokens", "12"];
        let first = success(&args);
        assert_eq!(first, success(&args), "{method} is not deterministic");
        let out: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(out["method"], method);
        assert_eq!(out["problems"], 3);
        let accuracy = out["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy));
        assert!(out["tokens"].as_f64().unwrap() > 0.0 && out["flops"].as_f64().unwrap() > 0.0, "{out}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_one_line_and_a_failure() {
    let dir = scratch("errors");
    let out = dir.join("x.safetensors");
    let (o, gqa) = (out.to_str().unwrap(), fixture("llama_gqa"));
    let g = gqa.to_str().unwrap();
    one_line_error(&["logits", "--model", "/nonexistent/model", "--tokens", "1", "--out", o], "config.json");
    one_line_error(&["logits", "--model", g, "--tokens", "3,x", "--out", o], "\"x\" is not a token id");
    one_line_error(&["logits", "--model", g, "--tokens", "3,48", "--out", o], "out of range");
    one_line_error(&["generate", "--model", g, "--prompt", "hi"], "needs a tokenizer.json");
    let corrupt = dir.join("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::copy(gqa.join("config.json"), corrupt.join("config.json")).unwrap();
    std::fs::write(corrupt.join("model.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}").unwrap();
    one_line_error(
        &["logits", "--model", corrupt.to_str().unwrap(), "--tokens", "1", "--out", o],
        "corrupt safetensors",
    );
    assert!(!out.exists(), "no output file after a failure");
    std::fs::remove_dir_all(&dir).unwrap();
}
