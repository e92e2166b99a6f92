//! Model weights in and out of safetensors files, by Hugging Face name.
//!
//! Loading accepts a single `model.safetensors` or a sharded `model.safetensors.index.json`, with
//! tensors stored as F32, F16 or BF16 (widened exactly to f32). Policy on names:
//! - every tensor the config implies must be present with the config's shape;
//! - `lm_head.weight` in a tied checkpoint is ignored, as transformers ignores it (tying wins);
//! - `value_head.weight` and `value_head.bias` are ours: real Hugging Face checkpoints lack them, so
//!   when both are absent the value head starts at zero (a value of 0 for every state), and the weights say so
//!   ([`ModelWeights::has_value_head`] is false, until training updates the head), so that a method ranking
//!   by the head can refuse; such weights save without the head;
//! - `*.rotary_emb.inv_freq` buffers (older Llama checkpoints) are derived from `rope_theta` and ignored;
//! - any other tensor is an [`IoError::UnexpectedTensor`]: an extra tensor means the config and the
//!   weights disagree (say, biases the config does not declare), which would silently change the model.
//!   Biases follow the config: q/k/v (`*.self_attn.{q,k,v}_proj.bias`) when it has attention biases,
//!   and `*.self_attn.o_proj.bias` when it has an o_proj bias (Llama's `attention_bias`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path};

use safetensors::{Dtype, SafeTensors};
use selfplay_tensor::{AnyTensor, DType, Tensor};
use serde::Deserialize;

use crate::atomic::write_file_atomic;
use crate::config::ModelConfig;
use crate::io_error::{IoError, IoResult};
use crate::weights::ModelWeights;

/// The single-file weights name transformers uses.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The shard index name transformers uses.
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";

const VALUE_HEAD_NAMES: [&str; 2] = ["value_head.weight", "value_head.bias"];

/// Reads every tensor of one safetensors file, widened to f32.
pub fn read_safetensors(path: &Path) -> IoResult<BTreeMap<String, Tensor<f32>>> {
    let bytes = std::fs::read(path).map_err(|e| IoError::file(path, e))?;
    let mut out = BTreeMap::new();
    read_into(path, &bytes, &mut out)?;
    Ok(out)
}

/// Writes `tensors` to `path` atomically, each narrowed to `dtype`, with the `{"format": "pt"}`
/// metadata transformers expects.
pub fn write_safetensors<'a>(
    path: &Path,
    tensors: impl IntoIterator<Item = (String, &'a Tensor<f32>)>,
    dtype: DType,
) -> IoResult<()> {
    write_file_atomic(path, &serialize(tensors, dtype)?)
}

/// The bytes of a safetensors file holding `tensors` narrowed to `dtype`.
pub fn serialize<'a>(tensors: impl IntoIterator<Item = (String, &'a Tensor<f32>)>, dtype: DType) -> IoResult<Vec<u8>> {
    serialize_slices(tensors.into_iter().map(|(name, t)| (name, t.dims(), t.data())), dtype)
}

/// The bytes of a safetensors file holding `weights` (every tensor by its Hugging Face name, in
/// [`ModelWeights::iter`] order) narrowed to `dtype`; without `value_head.*` when the weights have no value
/// head ([`ModelWeights::has_value_head`]), so that a loaded Hugging Face checkpoint saves as one.
pub fn serialize_weights(weights: &ModelWeights, dtype: DType) -> IoResult<Vec<u8>> {
    let stored = weights.iter().map(|(e, t)| (e.name.to_string(), e.dims(), t));
    let stored = stored.filter(|(name, _, _)| weights.has_value_head() || !VALUE_HEAD_NAMES.contains(&name.as_str()));
    serialize_slices(stored, dtype)
}

/// [`serialize`] over `(name, dims, row-major elements)`.
fn serialize_slices<'a>(
    tensors: impl IntoIterator<Item = (String, &'a [usize], &'a [f32])>,
    dtype: DType,
) -> IoResult<Vec<u8>> {
    let stored = tensors
        .into_iter()
        .map(|(name, dims, data)| {
            let t = Tensor::from_vec(dims.to_vec(), data.to_vec())?;
            Ok((name, if dtype == DType::F32 { AnyTensor::F32(t) } else { AnyTensor::from_f32(&t, dtype) }))
        })
        .collect::<IoResult<Vec<(String, AnyTensor)>>>()?;
    let views = stored
        .iter()
        .map(|(name, t)| {
            let view =
                safetensors::tensor::TensorView::new(to_st_dtype(dtype), t.shape().dims().to_vec(), t.as_bytes())?;
            Ok((name.as_str(), view))
        })
        .collect::<IoResult<Vec<_>>>()?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    Ok(safetensors::serialize(views, Some(metadata))?)
}

/// Loads the weights in `dir` (`model.safetensors`, or the shards an index names) for `config`.
pub fn load_weights(dir: &Path, config: &ModelConfig) -> IoResult<ModelWeights> {
    let single = dir.join(WEIGHTS_FILE);
    let index = dir.join(WEIGHTS_INDEX_FILE);
    let tensors = if single.is_file() {
        read_safetensors(&single)?
    } else if index.is_file() {
        read_sharded(dir, &index)?
    } else {
        return Err(IoError::NoWeights(dir.to_path_buf()));
    };
    weights_from_tensors(config, tensors)
}

/// Writes `weights` to `path` as one safetensors file in `dtype` (atomically).
pub fn save_weights(path: &Path, weights: &ModelWeights, dtype: DType) -> IoResult<()> {
    write_file_atomic(path, &serialize_weights(weights, dtype)?)
}

/// Builds [`ModelWeights`] for `config` from tensors by name, applying the policy in the module docs.
pub fn weights_from_tensors(
    config: &ModelConfig,
    mut tensors: BTreeMap<String, Tensor<f32>>,
) -> IoResult<ModelWeights> {
    let mut weights = ModelWeights::zeros(config)?;
    let value_head_stored = VALUE_HEAD_NAMES.iter().any(|name| tensors.contains_key(*name));
    for (entry, slot) in weights.iter_mut() {
        let name = entry.name.to_string();
        let optional = !value_head_stored && VALUE_HEAD_NAMES.contains(&name.as_str());
        let tensor = match tensors.remove(&name) {
            Some(t) => t,
            None if optional => continue,
            None => return Err(IoError::MissingTensor(name)),
        };
        if tensor.dims() != entry.dims() {
            return Err(IoError::WrongShape { name, expected: entry.dims().to_vec(), got: tensor.dims().to_vec() });
        }
        slot.copy_from_slice(tensor.data());
    }
    if config.tie_word_embeddings {
        tensors.remove("lm_head.weight");
    }
    if !value_head_stored {
        weights.mark_value_head_missing();
    }
    match tensors.into_keys().find(|name| !name.ends_with(".rotary_emb.inv_freq")) {
        Some(extra) => Err(IoError::UnexpectedTensor(extra)),
        None => Ok(weights),
    }
}

/// `model.safetensors.index.json`: which shard holds each tensor.
#[derive(Debug, Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

fn read_sharded(dir: &Path, index_path: &Path) -> IoResult<BTreeMap<String, Tensor<f32>>> {
    let text = std::fs::read_to_string(index_path).map_err(|e| IoError::file(index_path, e))?;
    let index: ShardIndex = serde_json::from_str(&text).map_err(|e| IoError::json(WEIGHTS_INDEX_FILE, e))?;
    let shards: BTreeSet<&str> = index.weight_map.values().map(String::as_str).collect();
    let mut out = BTreeMap::new();
    for shard in shards {
        // A shard is a plain file name inside the model directory, never a path out of it.
        let mut components = Path::new(shard).components();
        if !matches!((components.next(), components.next()), (Some(Component::Normal(_)), None)) {
            return Err(IoError::BadShardIndex(format!("shard name {shard:?} is not a file in the model directory")));
        }
        let path = dir.join(shard);
        if !path.is_file() {
            return Err(IoError::BadShardIndex(format!("names shard {shard:?}, which does not exist")));
        }
        let bytes = std::fs::read(&path).map_err(|e| IoError::file(&path, e))?;
        read_into(&path, &bytes, &mut out)?;
    }
    if let Some((name, shard)) = index.weight_map.iter().find(|(name, _)| !out.contains_key(*name)) {
        return Err(IoError::BadShardIndex(format!("places {name:?} in {shard:?}, but no shard holds it")));
    }
    Ok(out)
}

/// Parses `bytes` (the contents of `path`) and adds its tensors to `out`, widened to f32.
fn read_into(path: &Path, bytes: &[u8], out: &mut BTreeMap<String, Tensor<f32>>) -> IoResult<()> {
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| IoError::CorruptSafetensors { path: path.to_path_buf(), reason: e.to_string() })?;
    for (name, view) in file.iter() {
        let dtype = from_st_dtype(view.dtype())
            .ok_or_else(|| IoError::WrongDtype { name: name.to_string(), dtype: view.dtype().to_string() })?;
        let tensor = match dtype {
            // Skip the intermediate copy for the common f32 case.
            DType::F32 => Tensor::from_bytes(view.shape().to_vec(), view.data())?,
            _ => AnyTensor::from_bytes(dtype, view.shape().to_vec(), view.data())?.to_f32(),
        };
        if out.insert(name.to_string(), tensor).is_some() {
            return Err(IoError::DuplicateTensor(name.to_string()));
        }
    }
    Ok(())
}

fn from_st_dtype(dtype: Dtype) -> Option<DType> {
    match dtype {
        Dtype::F32 => Some(DType::F32),
        Dtype::F16 => Some(DType::F16),
        Dtype::BF16 => Some(DType::BF16),
        _ => None,
    }
}

fn to_st_dtype(dtype: DType) -> Dtype {
    match dtype {
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
    }
}
