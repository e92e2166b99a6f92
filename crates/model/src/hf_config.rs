//! Reading and writing Hugging Face `config.json` for `LlamaForCausalLM` and `Qwen2ForCausalLM`.
//!
//! We read the fields our forward pass depends on and refuse, with [`IoError::UnsupportedOption`],
//! every option that would change the maths in a way we do not implement (RoPE scaling, sliding
//! windows, other activations, MLP biases). Fields that only matter to training in PyTorch
//! (`attention_dropout`, `initializer_range`, `pretraining_tp`, `use_cache`, ...) are ignored.
//! Defaults follow the transformers config classes.

use std::path::Path;

use selfplay_tensor::DType;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{Architecture, ModelConfig};
use crate::io_error::{IoError, IoResult};

/// The subset of `config.json` we read. Unknown fields are ignored: real configs carry many.
#[derive(Debug, Deserialize)]
struct RawConfig {
    architectures: Option<Vec<String>>,
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_parameters: Option<Value>,
    rope_scaling: Option<Value>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    hidden_act: Option<String>,
    use_sliding_window: Option<bool>,
    layer_types: Option<Vec<String>>,
    bos_token_id: Option<TokenIds>,
    eos_token_id: Option<TokenIds>,
}

/// `bos_token_id` / `eos_token_id` may be one id or a list (Llama 3 lists several end tokens).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    /// The first id: `ModelConfig` keeps one of each (generation stops on it).
    fn first(self) -> Option<u32> {
        match self {
            TokenIds::One(id) => Some(id),
            TokenIds::Many(ids) => ids.first().copied(),
        }
    }
}

const DEFAULT_ROPE_THETA: f64 = 10_000.0;
const DEFAULT_RMS_NORM_EPS: f64 = 1e-6;

impl Architecture {
    /// The `architectures` entry transformers writes.
    pub fn hf_class(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
        }
    }

    /// The `model_type` transformers writes.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
        }
    }

    fn from_hf_class(name: &str) -> IoResult<Self> {
        match name {
            "LlamaForCausalLM" => Ok(Architecture::Llama),
            "Qwen2ForCausalLM" => Ok(Architecture::Qwen2),
            other => Err(IoError::UnsupportedArchitecture(other.to_string())),
        }
    }

    fn from_model_type(name: &str) -> IoResult<Self> {
        match name {
            "llama" => Ok(Architecture::Llama),
            "qwen2" => Ok(Architecture::Qwen2),
            other => Err(IoError::UnsupportedArchitecture(other.to_string())),
        }
    }
}

impl ModelConfig {
    /// Parses the text of a Hugging Face `config.json` and validates it.
    pub fn from_hf_json(text: &str) -> IoResult<Self> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| IoError::json("config.json", e))?;
        let config = raw.into_config()?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses `path` (a `config.json`).
    pub fn from_hf_file(path: &Path) -> IoResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| IoError::file(path, e))?;
        Self::from_hf_json(&text)
    }

    /// The `config.json` transformers needs to rebuild this model; `dtype` is the dtype the weights
    /// are saved in. RoPE theta is written both top level (transformers 4.x) and in
    /// `rope_parameters` (transformers 5.x), and the dtype as both `torch_dtype` and `dtype`, so
    /// either generation of transformers loads it.
    pub fn to_hf_json(&self, dtype: DType) -> Value {
        let dtype_name = match dtype {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
        };
        let mut value = json!({
            "architectures": [self.architecture.hf_class()],
            "model_type": self.architecture.model_type(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta},
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "torch_dtype": dtype_name,
            "dtype": dtype_name,
            "use_cache": true,
        });
        match self.architecture {
            Architecture::Llama => {
                value["attention_bias"] = Value::Bool(self.attention_bias);
                value["mlp_bias"] = Value::Bool(false);
            }
            Architecture::Qwen2 => {
                value["use_sliding_window"] = Value::Bool(false);
                value["sliding_window"] = Value::Null;
                value["max_window_layers"] = self.num_hidden_layers.into();
            }
        }
        value
    }

    /// Writes [`ModelConfig::to_hf_json`] to `path` (not atomically: see `checkpoint` for that).
    pub fn write_hf_file(&self, path: &Path, dtype: DType) -> IoResult<()> {
        let text =
            serde_json::to_string_pretty(&self.to_hf_json(dtype)).map_err(|e| IoError::json("config.json", e))?;
        std::fs::write(path, text + "\n").map_err(|e| IoError::file(path, e))
    }
}

impl RawConfig {
    fn into_config(self) -> IoResult<ModelConfig> {
        let architecture = self.architecture()?;
        let unsupported = |msg: String| Err(IoError::UnsupportedOption(msg));
        if let Some(act) = &self.hidden_act
            && act != "silu"
        {
            return unsupported(format!("hidden_act {act:?} (only \"silu\")"));
        }
        if self.mlp_bias == Some(true) {
            return unsupported("mlp_bias: true".into());
        }
        if architecture == Architecture::Qwen2 && self.use_sliding_window == Some(true) {
            return unsupported("use_sliding_window: true".into());
        }
        if let Some(kind) = self.layer_types.iter().flatten().find(|t| t.as_str() != "full_attention") {
            return unsupported(format!("layer type {kind:?} (only \"full_attention\")"));
        }
        let rope_theta = self.rope_theta()?;
        let num_key_value_heads = self.num_key_value_heads.unwrap_or(self.num_attention_heads);
        let head_dim = match self.head_dim {
            Some(d) => d,
            None if self.num_attention_heads > 0 && self.hidden_size.is_multiple_of(self.num_attention_heads) => {
                self.hidden_size / self.num_attention_heads
            }
            None => {
                return Err(IoError::InvalidConfig(format!(
                    "hidden_size ({}) is not a multiple of num_attention_heads ({}) and no head_dim is given",
                    self.hidden_size, self.num_attention_heads
                )));
            }
        };
        let llama_bias = architecture == Architecture::Llama && self.attention_bias.unwrap_or(false);
        let default_max_positions = match architecture {
            Architecture::Llama => 2048,
            Architecture::Qwen2 => 32768,
        };
        Ok(ModelConfig {
            architecture,
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: self.rms_norm_eps.unwrap_or(DEFAULT_RMS_NORM_EPS),
            rope_theta,
            max_position_embeddings: self.max_position_embeddings.unwrap_or(default_max_positions),
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
            // Qwen2 always has q/k/v biases (and never an o_proj bias); Llama's `attention_bias`
            // biases all four attention projections.
            attention_bias: architecture == Architecture::Qwen2 || llama_bias,
            o_proj_bias: llama_bias,
            bos_token_id: self.bos_token_id.and_then(TokenIds::first),
            eos_token_id: self.eos_token_id.and_then(TokenIds::first),
        })
    }

    /// From `architectures` (preferred) or `model_type`; both present must agree.
    fn architecture(&self) -> IoResult<Architecture> {
        let from_class = match self.architectures.as_deref() {
            Some([name]) => Some(Architecture::from_hf_class(name)?),
            Some([]) | None => None,
            Some(names) => return Err(IoError::UnsupportedArchitecture(names.join(", "))),
        };
        let from_type = self.model_type.as_deref().map(Architecture::from_model_type).transpose()?;
        match (from_class, from_type) {
            (Some(a), Some(b)) if a != b => Err(IoError::InvalidConfig(format!(
                "architectures says {} but model_type says {}",
                a.hf_class(),
                b.model_type()
            ))),
            (Some(a), _) | (None, Some(a)) => Ok(a),
            (None, None) => Err(IoError::UnsupportedArchitecture("<none given>".into())),
        }
    }

    /// Theta from `rope_parameters.rope_theta`, top-level `rope_theta`, or the default; any RoPE
    /// type other than `default` (linear, dynamic, yarn, llama3, ...) is refused.
    fn rope_theta(&self) -> IoResult<f64> {
        let mut nested_theta = None;
        for (field, value) in [("rope_parameters", &self.rope_parameters), ("rope_scaling", &self.rope_scaling)] {
            let Some(value) = value.as_ref().filter(|v| !v.is_null()) else { continue };
            let Some(params) = value.as_object() else {
                return Err(IoError::InvalidConfig(format!("{field} is not an object")));
            };
            let kind = params.get("rope_type").or_else(|| params.get("type")).and_then(Value::as_str);
            // `rope_parameters` without a type is the default; a `rope_scaling` object always names one.
            match kind {
                Some("default") => {}
                None if field == "rope_parameters" => {}
                other => {
                    return Err(IoError::UnsupportedOption(format!(
                        "{field} with rope type {} (only \"default\")",
                        other.unwrap_or("<none>")
                    )));
                }
            }
            if let Some(factor) = params.get("partial_rotary_factor").and_then(Value::as_f64)
                && factor != 1.0
            {
                return Err(IoError::UnsupportedOption(format!("partial_rotary_factor {factor}")));
            }
            if let Some(theta) = params.get("rope_theta") {
                let theta = theta
                    .as_f64()
                    .ok_or_else(|| IoError::InvalidConfig(format!("{field}.rope_theta is not a number")))?;
                nested_theta = Some(theta);
            }
        }
        match (nested_theta, self.rope_theta) {
            (Some(a), Some(b)) if a != b => {
                Err(IoError::InvalidConfig(format!("rope_theta {b} disagrees with rope_parameters.rope_theta {a}")))
            }
            (Some(theta), _) | (None, Some(theta)) => Ok(theta),
            (None, None) => Ok(DEFAULT_ROPE_THETA),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llama_json() -> Value {
        json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 64, "hidden_size": 32,
            "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": 16, "rms_norm_eps": 1e-5, "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0},
            "hidden_act": "silu", "mlp_bias": false, "attention_bias": false, "tie_word_embeddings": false,
            "bos_token_id": 1, "eos_token_id": [2, 3], "max_position_embeddings": 128
        })
    }

    fn parse(v: &Value) -> IoResult<ModelConfig> {
        ModelConfig::from_hf_json(&v.to_string())
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v[key] = value;
        v
    }

    #[test]
    fn reads_llama_with_gqa_and_nested_rope() {
        let c = parse(&llama_json()).unwrap();
        assert_eq!(c.architecture, Architecture::Llama);
        assert_eq!((c.num_attention_heads, c.num_key_value_heads, c.head_dim), (4, 2, 16));
        assert_eq!(c.rope_theta, 500000.0);
        assert_eq!(c.rms_norm_eps, 1e-5);
        assert_eq!((c.bos_token_id, c.eos_token_id), (Some(1), Some(2)));
        assert!(!c.attention_bias);
    }

    #[test]
    fn top_level_theta_and_defaults() {
        let v = json!({"model_type": "qwen2", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 4,
            "num_hidden_layers": 1, "num_attention_heads": 2, "rope_theta": 1e6, "rope_scaling": null});
        let c = parse(&v).unwrap();
        assert_eq!(c.architecture, Architecture::Qwen2);
        assert_eq!((c.num_key_value_heads, c.head_dim, c.rope_theta), (2, 4, 1e6));
        assert!(c.attention_bias, "Qwen2 always has q/k/v biases");
        assert_eq!(c.rms_norm_eps, DEFAULT_RMS_NORM_EPS);
    }

    #[test]
    fn write_then_read_is_identity() {
        let c = parse(&llama_json()).unwrap();
        for arch in [Architecture::Llama, Architecture::Qwen2] {
            let c = ModelConfig { architecture: arch, attention_bias: arch == Architecture::Qwen2, ..c.clone() };
            let back = parse(&c.to_hf_json(DType::BF16)).unwrap();
            assert_eq!(back, c);
        }
        let biased = ModelConfig { attention_bias: true, o_proj_bias: true, ..c };
        let json = biased.to_hf_json(DType::F32);
        assert_eq!(json["attention_bias"], json!(true));
        assert_eq!(parse(&json).unwrap(), biased);
    }

    #[test]
    fn llama_attention_bias_biases_o_proj_too() {
        let c = parse(&with(llama_json(), "attention_bias", json!(true))).unwrap();
        assert!(c.attention_bias && c.o_proj_bias);
        assert!(!parse(&llama_json()).unwrap().o_proj_bias);
        // Qwen2 ignores the flag: q/k/v biases always, o_proj never.
        let qwen = with(with(llama_json(), "model_type", json!("qwen2")), "architectures", json!(["Qwen2ForCausalLM"]));
        for flag in [true, false] {
            let q = parse(&with(qwen.clone(), "attention_bias", json!(flag))).unwrap();
            assert!(q.attention_bias && !q.o_proj_bias, "attention_bias {flag}");
        }
    }

    /// Bias layouts no Hugging Face config can express are refused when built in code.
    #[test]
    fn refuses_bias_layouts_hf_cannot_express() {
        let llama = parse(&llama_json()).unwrap();
        let qwen = ModelConfig { architecture: Architecture::Qwen2, attention_bias: true, ..llama.clone() };
        let bad = [
            ModelConfig { attention_bias: true, ..llama.clone() },
            ModelConfig { o_proj_bias: true, ..llama },
            ModelConfig { o_proj_bias: true, ..qwen.clone() },
            ModelConfig { attention_bias: false, ..qwen },
        ];
        for c in bad {
            assert!(matches!(c.validate(), Err(IoError::InvalidConfig(_))), "{c:?}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let unsupported = [
            with(llama_json(), "rope_parameters", json!({"rope_type": "llama3", "rope_theta": 1e4, "factor": 8.0})),
            with(llama_json(), "rope_scaling", json!({"type": "linear", "factor": 2.0})),
            with(llama_json(), "hidden_act", json!("gelu")),
            with(llama_json(), "mlp_bias", json!(true)),
            with(with(llama_json(), "model_type", json!("qwen2")), "architectures", json!(["Qwen2ForCausalLM"]))
                .as_object()
                .map(|m| {
                    let mut m = m.clone();
                    m.insert("use_sliding_window".into(), json!(true));
                    Value::Object(m)
                })
                .unwrap(),
            with(llama_json(), "layer_types", json!(["full_attention", "sliding_attention"])),
        ];
        for v in unsupported {
            assert!(matches!(parse(&v), Err(IoError::UnsupportedOption(_))), "{v}");
        }
        let arch = with(llama_json(), "architectures", json!(["MistralForCausalLM"]));
        assert!(matches!(parse(&arch), Err(IoError::UnsupportedArchitecture(_))));
    }

    #[test]
    fn refuses_inconsistent_sizes() {
        let invalid = [
            with(llama_json(), "num_key_value_heads", json!(3)),
            with(llama_json(), "hidden_size", json!(0)),
            with(llama_json(), "head_dim", json!(15)),
            with(with(llama_json(), "head_dim", Value::Null), "hidden_size", json!(30)),
            with(llama_json(), "vocab_size", json!(1usize << 40)),
            with(llama_json(), "rms_norm_eps", json!(-1.0)),
            with(llama_json(), "rope_theta", json!(10000.0)),
            with(llama_json(), "model_type", json!("qwen2")),
            with(llama_json(), "bos_token_id", json!(64)),
        ];
        for v in invalid {
            assert!(matches!(parse(&v), Err(IoError::InvalidConfig(_))), "{v}: {:?}", parse(&v));
        }
        assert!(matches!(ModelConfig::from_hf_json("{"), Err(IoError::Json { .. })));
        assert!(matches!(ModelConfig::from_hf_json("{\"vocab_size\": 3}"), Err(IoError::Json { .. })));
    }
}
