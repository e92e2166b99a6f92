//! The model's parameters (or their gradients): every scalar in one flat `Vec<f32>`, with named,
//! typed views into it.
//!
//! llm.c keeps all of a model's parameters in one allocation and finds each tensor by offsets kept
//! by hand. Here the offsets are derived once per config ([`ParamLayout::new`]) by walking the one
//! list that also names every tensor and gives its shape, in the one order of parameters (that of
//! `safetensors` files and of the optimizer's state, see [`Params::map`]). A [`ModelWeights`] is that
//! layout, shared, plus the buffer. So:
//! - a gradient buffer ([`ModelWeights::zeros_like`]) is one allocation, and zeroing it in place
//!   ([`ModelWeights::fill_zero`]) is none;
//! - an optimizer walks parameters and gradients as matching slices of two buffers
//!   ([`ModelWeights::for_each_pair_mut`]), building nothing;
//! - the transformer's views of a layer or of the head ([`ModelWeights::layer`],
//!   [`ModelWeights::head_mut`], ...) are slices cut at stored ranges: no names, no allocation.
//!
//! Linear weights are `[out_features, in_features]` row-major, exactly as `torch.nn.Linear` stores
//! them, so loading and saving never transposes.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use selfplay_tensor::{Shape, TensorError, TensorView};

use crate::config::ModelConfig;
pub use crate::param_name::ParamName;
use crate::transformer::params::{HeadParams, LayerParams, Params};

/// One parameter tensor's name, shape and place in the flat buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamEntry {
    pub name: ParamName,
    pub shape: Shape,
    /// Its elements in the flat buffer, row-major.
    pub range: Range<usize>,
}

impl ParamEntry {
    /// The tensor's dimensions.
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// The tensor's number of elements.
    pub fn numel(&self) -> usize {
        self.range.len()
    }
}

/// Where every parameter a config calls for lives in the flat buffer: the entries in order, each
/// tensor's range by field, and the total. Built once per config and shared (`Arc`) by the weights,
/// their gradients and copies.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamLayout {
    /// Every tensor, in [`Params::map`] order; the ranges tile `0..len` in that order.
    entries: Vec<ParamEntry>,
    /// Each tensor's range, by field.
    slots: Params<Range<usize>>,
    len: usize,
}

/// Every tensor `cfg` calls for, with its Hugging Face name and shape: the one list the layout, the
/// checks on loaded weights and the names in files all come from. Fails if a size overflows.
fn spec(cfg: &ModelConfig) -> Result<Params<(ParamName, Shape)>, TensorError> {
    let (v, h, i) = (cfg.vocab_size, cfg.hidden_size, cfg.intermediate_size);
    let product = |a: usize, b: usize| a.checked_mul(b).ok_or_else(|| TensorError::TooLarge(vec![a, b]));
    let q = product(cfg.num_attention_heads, cfg.head_dim)?;
    let kv = product(cfg.num_key_value_heads, cfg.head_dim)?;
    let top = |name, dims: &[usize]| Ok::<_, TensorError>((ParamName::top(name), Shape::new(dims)?));
    let layer = |l: usize| {
        let t = |name, dims: &[usize]| Ok::<_, TensorError>((ParamName::layer(l, name), Shape::new(dims)?));
        let qkv_bias = |name, n: usize| if cfg.attention_bias { t(name, &[n]).map(Some) } else { Ok(None) };
        Ok::<_, TensorError>(LayerParams {
            input_layernorm: t("input_layernorm.weight", &[h])?,
            q_proj: t("self_attn.q_proj.weight", &[q, h])?,
            k_proj: t("self_attn.k_proj.weight", &[kv, h])?,
            v_proj: t("self_attn.v_proj.weight", &[kv, h])?,
            q_bias: qkv_bias("self_attn.q_proj.bias", q)?,
            k_bias: qkv_bias("self_attn.k_proj.bias", kv)?,
            v_bias: qkv_bias("self_attn.v_proj.bias", kv)?,
            o_proj: t("self_attn.o_proj.weight", &[h, q])?,
            o_bias: if cfg.o_proj_bias { Some(t("self_attn.o_proj.bias", &[h])?) } else { None },
            post_attention_layernorm: t("post_attention_layernorm.weight", &[h])?,
            gate_proj: t("mlp.gate_proj.weight", &[i, h])?,
            up_proj: t("mlp.up_proj.weight", &[i, h])?,
            down_proj: t("mlp.down_proj.weight", &[h, i])?,
        })
    };
    Ok(Params {
        embed_tokens: top("model.embed_tokens.weight", &[v, h])?,
        layers: (0..cfg.num_hidden_layers).map(layer).collect::<Result<_, _>>()?,
        norm: top("model.norm.weight", &[h])?,
        lm_head: if cfg.tie_word_embeddings { None } else { Some(top("lm_head.weight", &[v, h])?) },
        value_head: top("value_head.weight", &[1, h])?,
        value_bias: top("value_head.bias", &[1])?,
    })
}

impl ParamLayout {
    /// The layout of `cfg`'s parameters: each tensor placed right after the previous one, in
    /// [`Params::map`] order. Fails if a size or the total overflows.
    pub fn new(cfg: &ModelConfig) -> Result<Self, TensorError> {
        let mut next = 0usize;
        let placed = spec(cfg)?.try_map(|(name, shape)| {
            let end = next.checked_add(shape.numel()).ok_or_else(|| TensorError::TooLarge(shape.dims().to_vec()))?;
            let range = next..end;
            next = end;
            Ok::<_, TensorError>(ParamEntry { name, shape, range })
        })?;
        let slots = placed.each_ref().map(|e| e.range.clone());
        Ok(ParamLayout { entries: placed.into_list(), slots, len: next })
    }

    /// Every tensor in order (the order of `safetensors` files and of the optimizer's state).
    pub fn entries(&self) -> &[ParamEntry] {
        &self.entries
    }

    /// Each tensor's range in the flat buffer, by field.
    pub fn slots(&self) -> &Params<Range<usize>> {
        &self.slots
    }

    /// The tensor `name` names, if the layout has it.
    pub fn find(&self, name: ParamName) -> Option<&ParamEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Total number of scalars.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no scalars (never, for a valid config).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of decoder layers.
    pub fn num_layers(&self) -> usize {
        self.slots.layers.len()
    }
}

/// Cuts disjoint mutable slices off a buffer at ranges taken in ascending order (the layout's): how
/// several tensors of one flat buffer are borrowed mutably at once, with no `unsafe`.
struct Carver<'a> {
    rest: &'a mut [f32],
    /// The offset of `rest` in the whole buffer.
    at: usize,
}

impl<'a> Carver<'a> {
    fn new(rest: &'a mut [f32], at: usize) -> Self {
        Carver { rest, at }
    }

    /// The elements at `r`, which must start at or after the end of the previous range taken.
    fn take(&mut self, r: &Range<usize>) -> &'a mut [f32] {
        debug_assert!(r.start >= self.at, "ranges taken out of order");
        let rest = std::mem::take(&mut self.rest);
        let skip = r.start.saturating_sub(self.at).min(rest.len());
        let rest = rest.split_at_mut(skip).1;
        let (mine, rest) = rest.split_at_mut(r.len().min(rest.len()));
        self.rest = rest;
        self.at = r.end;
        mine
    }
}

/// All of a model's parameters (or gradients), including the scalar value head: one flat buffer and
/// the layout that names its parts (see the module docs).
#[derive(Clone, PartialEq)]
pub struct ModelWeights {
    layout: Arc<ParamLayout>,
    /// `layout.len()` scalars.
    data: Vec<f32>,
    /// False when these weights were loaded from a file without `value_head.*` (any Hugging Face checkpoint) and
    /// no training step has updated the head since: the head is then zeros that stand in for a head nobody
    /// trained, and whatever ranks by it must refuse rather than rank by a constant. Saving leaves such a head
    /// out, so the file still says it has none.
    has_value_head: bool,
}

impl fmt::Debug for ModelWeights {
    /// The layout's size, not millions of numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelWeights")
            .field("tensors", &self.layout.entries.len())
            .field("params", &self.data.len())
            .finish_non_exhaustive()
    }
}

impl ModelWeights {
    /// All-zero parameters of the config's shapes (the starting point of a gradient buffer).
    pub fn zeros(cfg: &ModelConfig) -> Result<Self, TensorError> {
        Ok(Self::zeros_for(Arc::new(ParamLayout::new(cfg)?)))
    }

    /// All-zero parameters laid out as `layout`.
    pub fn zeros_for(layout: Arc<ParamLayout>) -> Self {
        let data = vec![0.0; layout.len];
        ModelWeights { layout, data, has_value_head: true }
    }

    /// Parameters laid out as `layout` with the values `data` (`layout.len()` of them).
    pub fn from_flat(layout: Arc<ParamLayout>, data: Vec<f32>) -> Result<Self, TensorError> {
        if data.len() != layout.len {
            return Err(TensorError::LengthMismatch { shape: vec![layout.len], expected: layout.len, got: data.len() });
        }
        Ok(ModelWeights { layout, data, has_value_head: true })
    }

    /// Zeros shaped like `self` (a gradient buffer for these parameters): one allocation.
    pub fn zeros_like(&self) -> Self {
        Self::zeros_for(Arc::clone(&self.layout))
    }

    /// Sets every value to zero in place (a gradient buffer reused from step to step; allocates
    /// nothing, unlike [`ModelWeights::zeros_like`]).
    pub fn fill_zero(&mut self) {
        self.data.fill(0.0);
    }

    /// Whether the value head is a real one, not the zeros standing in for one a loaded file lacked.
    pub fn has_value_head(&self) -> bool {
        self.has_value_head
    }

    /// Marks the value head as missing from the file these weights were loaded from.
    pub(crate) fn mark_value_head_missing(&mut self) {
        self.has_value_head = false;
    }

    /// Marks the value head as real: a training step has updated it.
    pub fn mark_value_head_trained(&mut self) {
        self.has_value_head = true;
    }

    /// Where each tensor lives in [`ModelWeights::as_flat`].
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// The layout, shared (to lay out another buffer the same way, or compare layouts cheaply).
    pub fn shared_layout(&self) -> &Arc<ParamLayout> {
        &self.layout
    }

    /// Every scalar, tensor after tensor in [`ParamLayout::entries`] order.
    pub fn as_flat(&self) -> &[f32] {
        &self.data
    }

    /// Every scalar, mutably.
    pub fn as_flat_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Total number of scalars.
    pub fn num_params(&self) -> usize {
        self.data.len()
    }

    /// Number of decoder layers.
    pub fn num_layers(&self) -> usize {
        self.layout.num_layers()
    }

    /// The elements at `r` (empty if `r` were outside the buffer, which a layout never makes).
    fn slice(&self, r: &Range<usize>) -> &[f32] {
        self.data.get(r.clone()).unwrap_or_default()
    }

    /// Every tensor with its entry, in order (the order of `safetensors` files and of the
    /// optimizer's state). Allocates nothing.
    pub fn iter(&self) -> impl Iterator<Item = (&ParamEntry, &[f32])> {
        self.layout.entries.iter().map(|e| (e, self.slice(&e.range)))
    }

    /// Like [`ModelWeights::iter`], mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&ParamEntry, &mut [f32])> {
        let mut carver = Carver::new(&mut self.data, 0);
        self.layout.entries.iter().map(move |e| (e, carver.take(&e.range)))
    }

    /// Calls `f` on every tensor with its entry, in [`ModelWeights::iter`] order. Allocates nothing.
    pub fn for_each<'a>(&'a self, mut f: impl FnMut(&'a ParamEntry, &'a [f32])) {
        self.iter().for_each(|(e, t)| f(e, t));
    }

    /// Like [`ModelWeights::for_each`], mutably.
    pub fn for_each_mut<'a>(&'a mut self, mut f: impl FnMut(&'a ParamEntry, &'a mut [f32])) {
        self.iter_mut().for_each(|(e, t)| f(e, t));
    }

    /// The tensor `name` names, if the model has it.
    pub fn get(&self, name: ParamName) -> Option<&[f32]> {
        let e = self.layout.find(name)?;
        self.data.get(e.range.clone())
    }

    /// Like [`ModelWeights::get`], mutably.
    pub fn get_mut(&mut self, name: ParamName) -> Option<&mut [f32]> {
        let e = self.layout.find(name)?;
        self.data.get_mut(e.range.clone())
    }

    /// Calls `f` on every tensor of `self` (mutably) with the same-named one of `other`, in
    /// [`ModelWeights::iter`] order: an optimizer walks weights and gradients together this way,
    /// allocating nothing. Tensors `other` lacks are skipped (the caller's count shows it).
    pub fn for_each_pair_mut(&mut self, other: &ModelWeights, mut f: impl FnMut(&mut [f32], &[f32])) {
        if Arc::ptr_eq(&self.layout, &other.layout) || self.layout == other.layout {
            self.iter_mut().zip(other.iter()).for_each(|((_, p), (_, g))| f(p, g));
        } else {
            for (e, p) in self.iter_mut() {
                if let Some(g) = other.get(e.name) {
                    f(p, g);
                }
            }
        }
    }

    /// Every tensor with its Hugging Face name, in [`ModelWeights::iter`] order (builds the names:
    /// for files and tests, not for a training step).
    pub fn named(&self) -> Vec<(String, TensorView<'_, f32>)> {
        // `TensorView::new` checks each range's length against its shape, which the layout made
        // equal (see the tests), so no tensor is left out.
        self.iter().filter_map(|(e, t)| Some((e.name.to_string(), TensorView::new(&e.shape, t).ok()?))).collect()
    }

    /// Every tensor as a field of [`Params`] (allocates the list of layers; a pass takes one layer at
    /// a time with [`ModelWeights::layer`] instead).
    pub fn params(&self) -> Params<&[f32]> {
        self.layout.slots.each_ref().map(|r| self.slice(r))
    }

    /// Like [`ModelWeights::params`], mutably.
    pub fn params_mut(&mut self) -> Params<&mut [f32]> {
        let mut carver = Carver::new(&mut self.data, 0);
        self.layout.slots.each_ref().map(|r| carver.take(r))
    }

    /// `[vocab, hidden]`.
    pub fn embed_tokens(&self) -> &[f32] {
        self.slice(&self.layout.slots.embed_tokens)
    }

    /// Like [`ModelWeights::embed_tokens`], mutably.
    pub fn embed_tokens_mut(&mut self) -> &mut [f32] {
        let r = self.layout.slots.embed_tokens.clone();
        self.data.get_mut(r).unwrap_or_default()
    }

    /// Decoder layer `l`'s tensors, if there is such a layer. Allocates nothing.
    pub fn layer(&self, l: usize) -> Option<LayerParams<&[f32]>> {
        Some(self.layout.slots.layers.get(l)?.each_ref().map(|r| self.slice(r)))
    }

    /// Like [`ModelWeights::layer`], mutably.
    pub fn layer_mut(&mut self, l: usize) -> Option<LayerParams<&mut [f32]>> {
        let slots = self.layout.slots.layers.get(l)?;
        let mut carver = Carver::new(&mut self.data, 0);
        Some(slots.each_ref().map(|r| carver.take(r)))
    }

    /// The final norm, the output projection (`lm_head`, or the embeddings when tied) and the value
    /// head. Allocates nothing.
    pub fn head(&self) -> HeadParams<&[f32]> {
        let s = &self.layout.slots;
        HeadParams {
            norm: self.slice(&s.norm),
            output: self.slice(s.lm_head.as_ref().unwrap_or(&s.embed_tokens)),
            value_head: self.slice(&s.value_head),
            value_bias: self.slice(&s.value_bias),
        }
    }

    /// Like [`ModelWeights::head`], mutably (`output` is the embeddings' gradient when tied).
    pub fn head_mut(&mut self) -> HeadParams<&mut [f32]> {
        let s = &self.layout.slots;
        // The head's own tensors follow the layers; the embeddings (a tied output) come first.
        let split = s.norm.start.min(self.data.len());
        let (front, back) = self.data.split_at_mut(split);
        let mut carver = Carver::new(back, split);
        let norm = carver.take(&s.norm);
        let output = match &s.lm_head {
            Some(r) => carver.take(r),
            None => front.get_mut(s.embed_tokens.clone()).unwrap_or_default(),
        };
        HeadParams { norm, output, value_head: carver.take(&s.value_head), value_bias: carver.take(&s.value_bias) }
    }

    /// The final norm, `[hidden]`.
    pub fn norm(&self) -> &[f32] {
        self.slice(&self.layout.slots.norm)
    }

    /// `[vocab, hidden]`; `None` when the embeddings are tied.
    pub fn lm_head(&self) -> Option<&[f32]> {
        self.layout.slots.lm_head.as_ref().map(|r| self.slice(r))
    }

    /// The value head, `[1, hidden]`.
    pub fn value_head(&self) -> &[f32] {
        self.slice(&self.layout.slots.value_head)
    }

    /// The value head's bias, `[1]`.
    pub fn value_bias(&self) -> &[f32] {
        self.slice(&self.layout.slots.value_bias)
    }

    /// The output projection: `lm_head`, or the embeddings when tied.
    pub fn output_projection(&self) -> &[f32] {
        self.head().output
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Architecture;

    fn cfg(tied: bool, bias: bool) -> ModelConfig {
        ModelConfig {
            architecture: Architecture::Llama,
            vocab_size: 11,
            hidden_size: 8,
            intermediate_size: 12,
            num_hidden_layers: 3,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            head_dim: 4,
            rms_norm_eps: 1e-6,
            rope_theta: 10000.0,
            max_position_embeddings: 16,
            tie_word_embeddings: tied,
            attention_bias: bias,
            o_proj_bias: bias,
            bos_token_id: None,
            eos_token_id: None,
        }
    }

    /// Whether `inner` lies inside `outer`'s memory.
    fn inside(inner: &[f32], outer: &[f32]) -> bool {
        let (o, i) = (outer.as_ptr_range(), inner.as_ptr_range());
        o.start <= i.start && i.end <= o.end
    }

    /// One allocation: the entries tile the flat buffer in order, and every view (by entry, layer,
    /// head, field) points into it, at its entry's range.
    #[test]
    fn one_buffer_tiled_by_the_layout() {
        for (tied, bias) in [(false, false), (false, true), (true, false), (true, true)] {
            let mut w = ModelWeights::zeros(&cfg(tied, bias)).unwrap();
            w.as_flat_mut().iter_mut().enumerate().for_each(|(i, x)| *x = i as f32);
            let layout = w.layout().clone();
            assert_eq!(w.as_flat().len(), w.num_params());
            assert_eq!(layout.len(), w.num_params());
            let mut next = 0;
            for (e, t) in w.iter() {
                assert_eq!(e.range.start, next, "{}", e.name);
                assert_eq!(e.numel(), e.shape.numel());
                assert!(inside(t, w.as_flat()) && t.len() == e.numel());
                assert_eq!(t.first().copied(), Some(e.range.start as f32));
                next = e.range.end;
            }
            assert_eq!(next, w.num_params());
            assert_eq!(w.named().len(), layout.entries().len());
            // The typed views are the same slices as the entries.
            let by_field = w.params().into_list();
            assert_eq!(by_field.len(), layout.entries().len());
            for ((e, t), v) in w.iter().zip(&by_field) {
                assert_eq!(t.as_ptr_range(), v.as_ptr_range(), "{}", e.name);
            }
            let layer1 = w.layer(1).unwrap().into_list();
            let named1: Vec<&[f32]> = w.iter().filter(|(e, _)| e.name.layer == Some(1)).map(|(_, t)| t).collect();
            assert_eq!(layer1, named1);
            assert!(w.layer(3).is_none());
            let head = w.head();
            assert_eq!(head.output.as_ptr(), if tied { w.embed_tokens() } else { w.lm_head().unwrap() }.as_ptr());
            assert_eq!(head.norm, w.get(ParamName::top("model.norm.weight")).unwrap());
            // Mutable views cut the same ranges.
            let flat = w.as_flat().to_vec();
            let starts: Vec<f32> = w.params_mut().into_list().iter().map(|t| t[0]).collect();
            assert_eq!(starts, layout.entries().iter().map(|e| flat[e.range.start]).collect::<Vec<_>>());
            let l2 = w.layer_mut(2).unwrap().into_list().iter().map(|t| t[0]).collect::<Vec<_>>();
            assert_eq!(l2, w.layer(2).unwrap().into_list().iter().map(|t| t[0]).collect::<Vec<_>>());
            let h = w.head_mut();
            let got = [h.norm[0], h.output[0], h.value_head[0], h.value_bias[0]];
            let h = w.head();
            assert_eq!(got, [h.norm[0], h.output[0], h.value_head[0], h.value_bias[0]]);
            // A gradient buffer shares the layout and is one fresh buffer of zeros.
            let g = w.zeros_like();
            assert!(Arc::ptr_eq(g.shared_layout(), w.shared_layout()));
            assert!(g.as_flat().iter().all(|&x| x == 0.0) && g.num_params() == w.num_params());
        }
    }

    /// The layout's order, names and shapes are Hugging Face's (the order of our safetensors files and
    /// of the optimizer's state).
    #[test]
    fn hf_names_shapes_and_order() {
        let c = ModelConfig { num_hidden_layers: 1, ..cfg(false, true) };
        let layout = ParamLayout::new(&c).unwrap();
        let got: Vec<(String, Vec<usize>)> =
            layout.entries().iter().map(|e| (e.name.to_string(), e.dims().to_vec())).collect();
        let want: Vec<(String, Vec<usize>)> = [
            ("model.embed_tokens.weight", vec![11, 8]),
            ("model.layers.0.input_layernorm.weight", vec![8]),
            ("model.layers.0.self_attn.q_proj.weight", vec![8, 8]),
            ("model.layers.0.self_attn.k_proj.weight", vec![4, 8]),
            ("model.layers.0.self_attn.v_proj.weight", vec![4, 8]),
            ("model.layers.0.self_attn.q_proj.bias", vec![8]),
            ("model.layers.0.self_attn.k_proj.bias", vec![4]),
            ("model.layers.0.self_attn.v_proj.bias", vec![4]),
            ("model.layers.0.self_attn.o_proj.weight", vec![8, 8]),
            ("model.layers.0.self_attn.o_proj.bias", vec![8]),
            ("model.layers.0.post_attention_layernorm.weight", vec![8]),
            ("model.layers.0.mlp.gate_proj.weight", vec![12, 8]),
            ("model.layers.0.mlp.up_proj.weight", vec![12, 8]),
            ("model.layers.0.mlp.down_proj.weight", vec![8, 12]),
            ("model.norm.weight", vec![8]),
            ("lm_head.weight", vec![11, 8]),
            ("value_head.weight", vec![1, 8]),
            ("value_head.bias", vec![1]),
        ]
        .into_iter()
        .map(|(n, d)| (n.to_string(), d))
        .collect();
        assert_eq!(got, want);
        let tied = ParamLayout::new(&ModelConfig { tie_word_embeddings: true, ..c }).unwrap();
        assert!(tied.entries().iter().all(|e| e.name.name != "lm_head.weight"));
        assert_eq!(tied.len(), layout.len() - 11 * 8);
    }

    #[test]
    fn overflowing_sizes_are_errors() {
        let huge = ModelConfig { hidden_size: usize::MAX / 2, vocab_size: 1 << 20, ..cfg(false, false) };
        assert!(ParamLayout::new(&huge).is_err());
        let layout = Arc::new(ParamLayout::new(&cfg(false, false)).unwrap());
        assert!(ModelWeights::from_flat(Arc::clone(&layout), vec![0.0; 3]).is_err());
        assert!(ModelWeights::from_flat(layout, vec![0.0; 1]).is_err());
    }
}
