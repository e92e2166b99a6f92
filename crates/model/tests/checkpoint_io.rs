//! Model directories in and out: the checkpoints transformers wrote load with the right config and
//! weights, what we save loads back exactly, and every kind of bad input is a typed error.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use common::{fixture, scratch};
use selfplay_model::safetensors_io::{WEIGHTS_FILE, read_safetensors, serialize, weights_from_tensors};
use selfplay_model::tokenizer::load_tokenizer;
use selfplay_model::{Architecture, CharTokenizer, IoError, ModelDir, ModelWeights, ParamName, SpecialIds, Tokenizer};
use selfplay_tensor::{DType, Tensor, bf16};

fn load(name: &str) -> ModelDir {
    ModelDir::load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A copy of a fixture's `config.json` in a scratch directory, with `tensors` as its weights.
fn dir_with_tensors(test: &str, from: &str, tensors: &BTreeMap<String, Tensor<f32>>) -> std::path::PathBuf {
    let dir = scratch(test);
    fs::copy(fixture(from).join("config.json"), dir.join("config.json")).unwrap();
    let bytes = serialize(tensors.iter().map(|(n, t)| (n.clone(), t)), DType::F32).unwrap();
    fs::write(dir.join(WEIGHTS_FILE), bytes).unwrap();
    dir
}

fn fixture_tensors(name: &str) -> BTreeMap<String, Tensor<f32>> {
    read_safetensors(&fixture(name).join(WEIGHTS_FILE)).unwrap()
}

#[test]
fn reads_the_configs_transformers_wrote() {
    let gqa = load("llama_gqa").config;
    assert_eq!(gqa.architecture, Architecture::Llama);
    assert_eq!((gqa.num_attention_heads, gqa.num_key_value_heads, gqa.head_dim, gqa.hidden_size), (4, 2, 8, 16));
    assert_eq!((gqa.rope_theta, gqa.rms_norm_eps), (500000.0, 1e-5));
    assert!(!gqa.tie_word_embeddings && !gqa.attention_bias && !gqa.o_proj_bias);

    let qwen = load("qwen2_tied");
    assert_eq!(qwen.config.architecture, Architecture::Qwen2);
    assert!(qwen.config.tie_word_embeddings && qwen.config.attention_bias);
    assert!(qwen.weights.lm_head().is_none(), "tied: no lm_head.weight");
    assert!(layers(&qwen.weights).iter().all(|l| l.q_bias.is_some() && l.k_bias.is_some() && l.v_bias.is_some()));
    assert!(!qwen.config.o_proj_bias && layers(&qwen.weights).iter().all(|l| l.o_bias.is_none()), "Qwen2: no o bias");

    // Llama's `attention_bias` biases o_proj as well as q/k/v.
    let biased = load("llama_bias");
    assert!(biased.config.attention_bias && biased.config.o_proj_bias);
    assert!(layers(&biased.weights).iter().all(|l| l.q_bias.is_some() && l.o_bias.is_some_and(|b| b.len() == 16)));

    let bf = load("llama_bf16");
    assert_eq!((bf.config.num_attention_heads, bf.config.num_key_value_heads, bf.config.head_dim), (2, 2, 8));
    assert!(bf.tokenizer.is_none(), "fixtures carry no tokenizer.json");
}

/// Every decoder layer's tensors.
fn layers(w: &ModelWeights) -> Vec<selfplay_model::transformer::params::LayerParams<&[f32]>> {
    (0..w.num_layers()).map(|l| w.layer(l).unwrap()).collect()
}

/// A checkpoint without `value_head.*` loads (everything but the value head works), with zeros in its place, and
/// says that it has none, so that whatever ranks by the head can refuse; saved, it still has none.
#[test]
fn absent_value_head_loads_as_zeros_and_says_so() {
    let dir = load("llama_gqa");
    let w = &dir.weights;
    assert_eq!(w.layout().find(ParamName::top("value_head.weight")).unwrap().dims(), &[1, 16]);
    assert!(w.value_head().iter().chain(w.value_bias()).all(|&x| x == 0.0));
    assert!(!w.has_value_head());
    let out = scratch("absent-value-head").join("model");
    dir.save(&out, DType::F32).unwrap();
    let bytes = fs::read(out.join(WEIGHTS_FILE)).unwrap();
    let saved = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(saved.names().iter().all(|name| !name.starts_with("value_head.")), "{:?}", saved.names());
    assert_eq!(ModelDir::load(&out).unwrap().weights, dir.weights);
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
}

#[test]
fn bf16_weights_widen_exactly() {
    let bytes = fs::read(fixture("llama_bf16").join(WEIGHTS_FILE)).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let stored = file.tensor("model.layers.1.mlp.down_proj.weight").unwrap();
    assert_eq!(stored.dtype(), safetensors::Dtype::BF16);
    let raw = Tensor::<bf16>::from_bytes(stored.shape().to_vec(), stored.data()).unwrap();
    let loaded = load("llama_bf16").weights;
    let ours = loaded.layer(1).unwrap().down_proj;
    assert_eq!(ours.len(), raw.numel());
    assert!(ours.iter().zip(raw.data()).all(|(a, b)| *a == b.to_f32()));
}

#[test]
fn sharded_checkpoint_equals_single_file() {
    let index = fs::read_to_string(fixture("llama_sharded").join("model.safetensors.index.json")).unwrap();
    assert!(index.contains("model-00003-of-00003.safetensors"), "the fixture really is sharded");
    let sharded = load("llama_sharded");
    let single = load("llama_gqa");
    assert_eq!(sharded.config, single.config);
    assert_eq!(sharded.weights, single.weights);
}

#[test]
fn save_then_load_is_exact() {
    for name in common::PARITY_FIXTURES {
        let mut model = load(name);
        model.tokenizer = Some(Box::new(CharTokenizer::ascii()));
        model.config.vocab_size = 99; // room for the tokenizer's ids: zero embeddings of the new size
        let mut resized = ModelWeights::zeros(&model.config).unwrap();
        resized.for_each_pair_mut(&model.weights, |dst, src| {
            if dst.len() == src.len() {
                dst.copy_from_slice(src);
            }
        });
        model.weights = resized;
        // A non-zero value head must survive the trip too.
        let head = model.weights.head_mut();
        head.value_head.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32 * 0.25 - 1.0);
        head.value_bias[0] = 0.5;
        let dir = scratch(&format!("roundtrip-{name}"));
        let out = dir.join("model");
        model.save(&out, DType::F32).unwrap();
        let back = ModelDir::load(&out).unwrap();
        assert_eq!(back.config, model.config, "{name}");
        assert_eq!(back.weights, model.weights, "{name}");
        let tok = back.tokenizer.expect("tokenizer saved");
        assert_eq!(tok.special_ids(), CharTokenizer::ascii().special_ids());
        assert_eq!(
            tok.encode("12+7=19\n<answer>").unwrap(),
            CharTokenizer::ascii().encode("12+7=19\n<answer>").unwrap()
        );

        // Saving again over the same directory replaces it whole.
        model.tokenizer = None;
        model.save(&out, DType::F32).unwrap();
        assert!(!out.join("tokenizer.json").exists(), "no stale files from the previous save");
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn bf16_save_round_trips_bf16_weights_bit_exactly() {
    let model = load("llama_bf16");
    let dir = scratch("bf16-save");
    model.save(&dir.join("m"), DType::BF16).unwrap();
    assert_eq!(ModelDir::load(&dir.join("m")).unwrap().weights, model.weights);
    let ours = fs::read(dir.join("m").join(WEIGHTS_FILE)).unwrap();
    let ours = safetensors::SafeTensors::deserialize(&ours).unwrap();
    let theirs = fs::read(fixture("llama_bf16").join(WEIGHTS_FILE)).unwrap();
    let theirs = safetensors::SafeTensors::deserialize(&theirs).unwrap();
    for (name, view) in theirs.iter() {
        let mine = ours.tensor(name).unwrap();
        assert_eq!((mine.dtype(), mine.shape(), mine.data()), (view.dtype(), view.shape(), view.data()), "{name}");
    }
    let config = fs::read_to_string(dir.join("m").join("config.json")).unwrap();
    assert!(config.contains("\"dtype\": \"bfloat16\""));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn truncated_and_corrupt_files_are_typed_errors() {
    let good = fs::read(fixture("llama_gqa").join(WEIGHTS_FILE)).unwrap();
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut corrupt_header = good.clone();
    corrupt_header[8 + header_len / 2] = b'\x07';
    let mut huge_header = good.clone();
    huge_header[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let cases: [(&str, Vec<u8>); 5] = [
        ("truncated-data", good[..good.len() - 100].to_vec()),
        ("truncated-header", good[..8 + header_len / 2].to_vec()),
        ("corrupt-header", corrupt_header),
        ("header-length", huge_header),
        ("empty", Vec::new()),
    ];
    for (case, bytes) in cases {
        let dir = scratch(&format!("corrupt-{case}"));
        fs::copy(fixture("llama_gqa").join("config.json"), dir.join("config.json")).unwrap();
        fs::write(dir.join(WEIGHTS_FILE), bytes).unwrap();
        let err = ModelDir::load(&dir).unwrap_err();
        assert!(matches!(err, IoError::CorruptSafetensors { .. }), "{case}: {err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn missing_wrong_shape_and_extra_tensors_are_typed_errors() {
    let config = load("llama_gqa").config;
    let mut missing = fixture_tensors("llama_gqa");
    missing.remove("model.layers.1.self_attn.k_proj.weight");
    let err = weights_from_tensors(&config, missing).unwrap_err();
    assert!(matches!(&err, IoError::MissingTensor(n) if n == "model.layers.1.self_attn.k_proj.weight"), "{err}");

    let mut reshaped = fixture_tensors("llama_gqa");
    let k = reshaped.remove("model.layers.0.self_attn.k_proj.weight").unwrap();
    reshaped.insert("model.layers.0.self_attn.k_proj.weight".into(), k.reshape([8, 32]).unwrap());
    let dir = dir_with_tensors("wrong-shape", "llama_gqa", &reshaped);
    let err = ModelDir::load(&dir).unwrap_err();
    assert!(matches!(&err, IoError::WrongShape { expected, got, .. } if expected == &[16, 16] && got == &[8, 32]));
    fs::remove_dir_all(&dir).unwrap();

    // Biases the Llama config does not declare: refusing them beats silently dropping them.
    let mut extra = fixture_tensors("llama_gqa");
    extra.insert("model.layers.0.self_attn.q_proj.bias".into(), Tensor::zeros([32]).unwrap());
    let err = weights_from_tensors(&config, extra).unwrap_err();
    assert!(matches!(&err, IoError::UnexpectedTensor(n) if n.ends_with("q_proj.bias")), "{err}");

    // An o_proj bias the Llama config does not declare is refused too, and one it declares is required.
    let mut extra_o = fixture_tensors("llama_gqa");
    extra_o.insert("model.layers.1.self_attn.o_proj.bias".into(), Tensor::zeros([16]).unwrap());
    let err = weights_from_tensors(&config, extra_o).unwrap_err();
    assert!(matches!(&err, IoError::UnexpectedTensor(n) if n.ends_with("o_proj.bias")), "{err}");
    let biased = load("llama_bias").config;
    let mut no_o = fixture_tensors("llama_bias");
    no_o.remove("model.layers.1.self_attn.o_proj.bias");
    let err = weights_from_tensors(&biased, no_o).unwrap_err();
    assert!(matches!(&err, IoError::MissingTensor(n) if n == "model.layers.1.self_attn.o_proj.bias"), "{err}");

    // Half a value head is an error, not zeros.
    let mut half_head = fixture_tensors("llama_gqa");
    half_head.insert("value_head.bias".into(), Tensor::zeros([1]).unwrap());
    assert!(
        matches!(weights_from_tensors(&config, half_head), Err(IoError::MissingTensor(n)) if n == "value_head.weight")
    );

    // Tolerated as transformers tolerates them: rotary buffers, and lm_head in a tied checkpoint.
    let mut harmless = fixture_tensors("llama_gqa");
    harmless.insert("model.layers.0.self_attn.rotary_emb.inv_freq".into(), Tensor::zeros([4]).unwrap());
    assert!(weights_from_tensors(&config, harmless).is_ok());
    let qwen = load("qwen2_tied").config;
    let mut tied = fixture_tensors("qwen2_tied");
    tied.insert("lm_head.weight".into(), Tensor::zeros([48, 16]).unwrap());
    assert!(weights_from_tensors(&qwen, tied).unwrap().lm_head().is_none());
}

#[test]
fn wrong_dtype_is_a_typed_error() {
    let dir = scratch("wrong-dtype");
    fs::copy(fixture("llama_gqa").join("config.json"), dir.join("config.json")).unwrap();
    let ints = vec![0u8; 16 * 8];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![16], &ints).unwrap();
    let bytes = safetensors::serialize([("model.norm.weight", view)], None::<HashMap<String, String>>).unwrap();
    fs::write(dir.join(WEIGHTS_FILE), bytes).unwrap();
    let err = ModelDir::load(&dir).unwrap_err();
    assert!(
        matches!(&err, IoError::WrongDtype { name, dtype } if name == "model.norm.weight" && dtype == "I64"),
        "{err}"
    );
    fs::remove_dir_all(&dir).unwrap();
}

/// A copy of `llama_sharded` whose index has been edited by `edit`.
fn sharded_with_index(test: &str, edit: impl Fn(&str) -> String) -> std::path::PathBuf {
    let dir = scratch(test);
    for entry in fs::read_dir(fixture("llama_sharded")).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let index = dir.join("model.safetensors.index.json");
    fs::write(&index, edit(&fs::read_to_string(&index).unwrap())).unwrap();
    dir
}

#[test]
fn bad_shard_indexes_are_typed_errors() {
    type Edit = fn(&str) -> String;
    let cases: [(&str, Edit); 3] = [
        ("missing-shard", |s| s.replacen("model-00002-of-00003", "model-00009-of-00009", 1)),
        ("escaping-shard", |s| s.replacen("\"model-00002-of-00003", "\"../model-00002-of-00003", 1)),
        ("phantom-tensor", |s| {
            s.replacen("\"weight_map\": {", "\"weight_map\": {\"ghost\": \"model-00001-of-00003.safetensors\",", 1)
        }),
    ];
    for (case, edit) in cases {
        let dir = sharded_with_index(case, edit);
        let err = ModelDir::load(&dir).unwrap_err();
        assert!(matches!(err, IoError::BadShardIndex(_)), "{case}: {err}");
        fs::remove_dir_all(&dir).unwrap();
    }
    let dir = sharded_with_index("no-weights", |s| s.to_string());
    fs::remove_file(dir.join("model.safetensors.index.json")).unwrap();
    assert!(matches!(ModelDir::load(&dir), Err(IoError::NoWeights(_))));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unsupported_config_in_a_directory_is_a_typed_error() {
    let dir = scratch("bad-config");
    fs::copy(fixture("llama_gqa").join(WEIGHTS_FILE), dir.join(WEIGHTS_FILE)).unwrap();
    let config = fs::read_to_string(fixture("llama_gqa").join("config.json")).unwrap();
    let scaled = config.replace("\"rope_type\": \"default\"", "\"rope_type\": \"yarn\"");
    fs::write(dir.join("config.json"), scaled).unwrap();
    assert!(matches!(ModelDir::load(&dir), Err(IoError::UnsupportedOption(_))));
    fs::write(dir.join("config.json"), config.replace("LlamaForCausalLM", "GPT2LMHeadModel")).unwrap();
    assert!(matches!(ModelDir::load(&dir), Err(IoError::UnsupportedArchitecture(_))));
    fs::remove_file(dir.join("config.json")).unwrap();
    assert!(matches!(ModelDir::load(&dir), Err(IoError::File { .. })));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tokenizer_larger_than_the_vocabulary_is_refused() {
    let model = load("llama_gqa"); // vocabulary of 48 < the 99 character ids
    let dir = scratch("tokenizer-too-big");
    let out = dir.join("m");
    selfplay_model::save_model_dir(&out, &model.config, &model.weights, Some(&CharTokenizer::ascii()), DType::F32)
        .unwrap();
    assert!(matches!(ModelDir::load(&out), Err(IoError::Tokenizer(_))));
    fs::remove_dir_all(&dir).unwrap();
}

/// The byte-level BPE the fixture script trained with the Python `tokenizers` library gives the
/// same ids through our `hf-tokenizers` loader.
#[cfg(feature = "hf-tokenizers")]
#[test]
fn hf_bpe_tokenizer_matches_python_tokenizers() {
    let dir = fixture("bpe_tokenizer");
    let expected: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let tok = load_tokenizer(&dir, SpecialIds { bos: Some(0), eos: Some(1), pad: None }).unwrap();
    assert_eq!(tok.vocab_size() as u64, expected["vocab_size"].as_u64().unwrap());
    for case in expected["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ids: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(tok.encode(text).unwrap(), ids, "{text:?}");
        assert_eq!(tok.decode(&ids).unwrap(), text);
    }
    assert!(matches!(tok.decode(&[300]), Err(IoError::TokenOutOfRange { id: 300, .. })));
}

/// Without the feature, a non-character tokenizer is a clear error rather than a wrong tokenizer.
#[cfg(not(feature = "hf-tokenizers"))]
#[test]
fn general_tokenizer_needs_the_feature() {
    let err = load_tokenizer(&fixture("bpe_tokenizer"), SpecialIds::default()).unwrap_err();
    assert!(matches!(&err, IoError::Tokenizer(msg) if msg.contains("hf-tokenizers")), "{err}");
}

#[test]
fn char_tokenizer_dir_round_trip_uses_tokenizer_config_names() {
    let dir = scratch("char-tokenizer");
    let tok = CharTokenizer::ascii();
    fs::write(dir.join("tokenizer.json"), tok.to_hf_json().unwrap()).unwrap();
    // Without tokenizer_config.json the fallback ids apply.
    let fallback = SpecialIds { bos: Some(2), eos: Some(1), pad: None };
    assert_eq!(load_tokenizer(&dir, fallback).unwrap().special_ids(), fallback);
    let names = selfplay_model::tokenizer::hf_tokenizer_config(&tok);
    fs::write(dir.join("tokenizer_config.json"), names.to_string()).unwrap();
    assert_eq!(load_tokenizer(&dir, fallback).unwrap().special_ids(), tok.special_ids());
    fs::write(dir.join("tokenizer_config.json"), r#"{"eos_token": "<nope>"}"#).unwrap();
    assert!(matches!(load_tokenizer(&dir, fallback), Err(IoError::Tokenizer(_))));
    assert!(Path::new(&dir).exists());
    fs::remove_dir_all(&dir).unwrap();
}

/// Seeded random damage (byte flips anywhere, truncation at any length) never panics: every load
/// either succeeds (a flipped data byte is just another weight) or returns a typed error.
#[test]
fn random_damage_never_panics() {
    use rand_chacha::ChaCha8Rng;
    use rand_core::{Rng, SeedableRng};

    let good = fs::read(fixture("qwen2_tied").join(WEIGHTS_FILE)).unwrap();
    let config = load("qwen2_tied").config;
    let dir = scratch("random-damage");
    let path = dir.join(WEIGHTS_FILE);
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let (mut ok, mut failed) = (0, 0);
    for case in 0..200 {
        let mut bytes = good.clone();
        if case % 2 == 0 {
            // Flips concentrated in the header, where the structure lives.
            let limit = if case % 4 == 0 { 200 } else { bytes.len() };
            for _ in 0..1 + rng.next_u32() % 3 {
                let i = rng.next_u32() as usize % limit;
                bytes[i] ^= 1 << (rng.next_u32() % 8);
            }
        } else {
            bytes.truncate(rng.next_u32() as usize % bytes.len());
        }
        fs::write(&path, &bytes).unwrap();
        match read_safetensors(&path).and_then(|t| weights_from_tensors(&config, t)) {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    assert!(ok > 0 && failed > 0, "both outcomes occur ({ok} loaded, {failed} refused)");
    fs::remove_dir_all(&dir).unwrap();
}

/// The `tokenizers` engine (what transformers runs) reads our character tokenizer's JSON and
/// gives the same ids and text.
#[cfg(feature = "hf-tokenizers")]
#[test]
fn char_tokenizer_json_runs_in_the_tokenizers_engine() {
    let ours = CharTokenizer::ascii();
    let engine =
        selfplay_model::tokenizer::HfTokenizer::from_json_with_ids(&ours.to_hf_json().unwrap(), ours.special_ids())
            .unwrap();
    assert_eq!(engine.vocab_size(), ours.vocab_size());
    for text in ["12+7=19\n<answer>(12+7)*3</answer>", "<bos> a  b\n\n~<eos>", ""] {
        let ids = ours.encode(text).unwrap();
        assert_eq!(engine.encode(text).unwrap(), ids, "{text:?}");
        assert_eq!(engine.decode(&ids).unwrap(), text);
    }
}
