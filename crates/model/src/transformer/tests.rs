//! Finite-difference gradient checks in `f64` through the real forward and backward code, for
//! every element of every parameter tensor, on tiny configs with GQA, q/k/v biases, an o_proj bias, and both tied
//! and untied embeddings; the loss mixes chosen-token log-probabilities, entropies and values so
//! every path of the head's backward pass is exercised.

use super::batch::PackedBatch;
use super::head::HeadGrads;
use super::params::Params;
use super::{Activations, backward, forward};
use crate::backend::CpuBackend;
use crate::config::{Architecture, ModelConfig};
use crate::init::init_weights;
use crate::model::{Model, SequenceGrads};
use crate::rng::standard_normal;
use crate::weights::ModelWeights;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

pub(crate) fn tiny_config(tied: bool, bias: bool) -> ModelConfig {
    ModelConfig {
        architecture: if bias { Architecture::Qwen2 } else { Architecture::Llama },
        vocab_size: 7,
        hidden_size: 8,
        intermediate_size: 12,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        // q_dim 24 ≠ hidden 8: catches any transposition confusion in o_proj and the q/k/v projections.
        head_dim: 6,
        rms_norm_eps: 1e-5,
        rope_theta: 50.0,
        max_position_embeddings: 32,
        tie_word_embeddings: tied,
        attention_bias: bias,
        o_proj_bias: false,
        bos_token_id: None,
        eos_token_id: None,
    }
}

/// Random weights with every tensor (norms and biases included) away from its special init value.
pub(crate) fn random_weights(cfg: &ModelConfig, seed: u64) -> ModelWeights {
    let mut w = init_weights(cfg, 0.4, seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xabc);
    w.visit_mut(|name, t| {
        if name.ends_with("norm.weight") || name.ends_with(".bias") {
            let base = if name.ends_with(".bias") { 0.0 } else { 1.0 };
            t.data_mut().iter_mut().for_each(|x| *x = base + 0.3 * standard_normal(&mut rng));
        }
    });
    w
}

const BATCH: [&[u32]; 3] = [&[1, 5, 2, 6, 0, 3], &[4, 4, 1], &[2, 6]];

/// Coefficients of the test loss `L = Σ c·logp + Σ e·H + Σ u·value` for every packed row.
struct LossCoefs {
    targets: Vec<u32>,
    c: Vec<f64>,
    e: Vec<f64>,
    u: Vec<f64>,
}

fn coefs(batch: &PackedBatch) -> LossCoefs {
    let rows = batch.rows();
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut draw = |n| (0..n).map(|_| f64::from(standard_normal(&mut rng))).collect::<Vec<f64>>();
    let (mut c, e, u) = (draw(rows), draw(rows), draw(rows));
    let mut e = e;
    let mut targets = vec![0; rows];
    for s in &batch.spans {
        let last = s.q_start + s.q_len - 1;
        (c[last], e[last]) = (0.0, 0.0);
        targets[s.q_start..last].copy_from_slice(&batch.ids[s.q_start + 1..=last]);
    }
    LossCoefs { targets, c, e, u }
}

fn loss(cfg: &ModelConfig, p: &Params<Vec<f64>>, batch: &PackedBatch, k: &LossCoefs) -> f64 {
    let view = p.each_ref().map(|v| v.as_slice());
    let mut acts = Activations::new(&CpuBackend, cfg, batch.rows(), false).unwrap();
    forward(&CpuBackend, cfg, &view, batch, &mut acts, None).unwrap();
    let h = &acts.head;
    let v = cfg.vocab_size;
    (0..batch.rows())
        .map(|r| {
            let logp = h.logits[r * v + k.targets[r] as usize] - h.lse[r];
            k.c[r] * logp + k.e[r] * h.entropy[r] + k.u[r] * h.values[r]
        })
        .sum()
}

fn analytic(cfg: &ModelConfig, p: &Params<Vec<f64>>, batch: &PackedBatch, k: &LossCoefs) -> Params<Vec<f64>> {
    let view = p.each_ref().map(|v| v.as_slice());
    let mut acts = Activations::new(&CpuBackend, cfg, batch.rows(), true).unwrap();
    forward(&CpuBackend, cfg, &view, batch, &mut acts, None).unwrap();
    let mut grads = p.clone().map(|v| vec![0.0; v.len()]);
    let mut g = grads.each_mut().map(|v| v.as_mut_slice());
    let d = HeadGrads { targets: &k.targets, d_logprob: &k.c[..], d_entropy: &k.e[..], d_value: &k.u[..] };
    backward(&CpuBackend, cfg, &view, batch, &acts, d, &mut g).unwrap();
    grads
}

/// Llama with `attention_bias`: q/k/v and o_proj biases.
fn tiny_llama_with_o_bias(tied: bool) -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Llama,
        attention_bias: true,
        o_proj_bias: true,
        ..tiny_config(tied, true)
    }
}

fn check_every_parameter(cfg: ModelConfig) {
    let w = random_weights(&cfg, 3);
    let names: Vec<String> = w.named().into_iter().map(|(n, _)| n).collect();
    let mut p = Params::from_weights(&w).map(|s| s.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>());
    let batch = PackedBatch::new(&BATCH, cfg.vocab_size, cfg.max_position_embeddings).unwrap();
    let k = coefs(&batch);
    let grads = analytic(&cfg, &p, &batch, &k).into_list();
    assert_eq!(grads.len(), names.len());
    let step = 1e-5;
    let mut worst = 0.0f64;
    for (t, name) in names.iter().enumerate() {
        let len = grads[t].len();
        let mut nonzero = 0;
        for (i, &an) in grads[t].iter().enumerate() {
            let original = p.each_mut().into_list()[t][i];
            p.each_mut().into_list()[t][i] = original + step;
            let up = loss(&cfg, &p, &batch, &k);
            p.each_mut().into_list()[t][i] = original - step;
            let down = loss(&cfg, &p, &batch, &k);
            p.each_mut().into_list()[t][i] = original;
            let fd = (up - down) / (2.0 * step);
            let err = (fd - an).abs() / (1e-4 + an.abs());
            worst = worst.max(err);
            assert!((fd - an).abs() <= 1e-7 + 1e-5 * an.abs(), "{name}[{i}]: finite difference {fd}, backward {an}");
            nonzero += usize::from(an.abs() > 1e-9);
        }
        // Every tensor must actually receive gradient (except embedding rows of unused ids).
        assert!(nonzero * 2 >= len, "{name}: only {nonzero} of {len} gradient entries are non-zero");
    }
    assert!(worst < 1e-3, "worst relative error {worst}");
}

#[test]
fn finite_differences_untied_with_biases() {
    check_every_parameter(tiny_config(false, true));
}

#[test]
fn finite_differences_tied_without_biases() {
    check_every_parameter(tiny_config(true, false));
}

#[test]
fn finite_differences_llama_with_o_proj_bias() {
    let cfg = tiny_llama_with_o_bias(false);
    assert!(random_weights(&cfg, 3).named().iter().any(|(n, _)| n.ends_with("o_proj.bias")));
    check_every_parameter(cfg);
}

/// The `f32` model entry point (`Model::backward` with per-sequence gradients) agrees with the
/// `f64` analytic gradient that the finite-difference checks validated.
#[test]
fn model_backward_matches_f64_reference() {
    let cfg = tiny_llama_with_o_bias(true);
    let w = random_weights(&cfg, 5);
    let model = Model::new(cfg.clone(), w.clone()).unwrap();
    let batch = PackedBatch::new(&BATCH, cfg.vocab_size, cfg.max_position_embeddings).unwrap();
    let k = coefs(&batch);
    let p = Params::from_weights(&w).map(|s| s.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>());
    let reference = analytic(&cfg, &p, &batch, &k).into_list();

    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let per_seq: Vec<[Vec<f32>; 3]> = batch
        .spans
        .iter()
        .map(|s| {
            let (a, b) = (s.q_start, s.q_start + s.q_len);
            [f32s(&k.c[a..b - 1]), f32s(&k.e[a..b - 1]), f32s(&k.u[a..b])]
        })
        .collect();
    let grads: Vec<SequenceGrads<'_>> = per_seq
        .iter()
        .map(|[c, e, u]| SequenceGrads { d_logprobs: c, d_entropies: Some(e), d_values: Some(u) })
        .collect();
    let pass = model.forward_train(&BATCH).unwrap();
    let mut out = model.weights().zeros_like();
    model.backward(&pass, &grads, &mut out).unwrap();
    for ((name, got), want) in out.named().into_iter().zip(reference) {
        for (i, (&g, &r)) in got.data().iter().zip(&want).enumerate() {
            assert!((f64::from(g) - r).abs() <= 1e-4 + 1e-3 * r.abs(), "{name}[{i}]: f32 {g}, f64 {r}");
        }
    }
}

/// Backward over an inference pass (one reused layer of activations) is a typed error, not a panic.
#[test]
fn backward_refuses_an_inference_pass() {
    let cfg = tiny_config(false, true);
    let w = random_weights(&cfg, 2);
    let p = Params::from_weights(&w);
    let batch = PackedBatch::new(&BATCH, cfg.vocab_size, cfg.max_position_embeddings).unwrap();
    let mut acts = Activations::new(&CpuBackend, &cfg, batch.rows(), false).unwrap();
    forward(&CpuBackend, &cfg, &p, &batch, &mut acts, None).unwrap();
    let rows = batch.rows();
    let (targets, zeros) = (vec![0u32; rows], vec![0.0f32; rows]);
    let d = HeadGrads { targets: &targets, d_logprob: &zeros[..], d_entropy: &zeros[..], d_value: &zeros[..] };
    let mut grads = w.zeros_like();
    let mut g = Params::from_weights_mut(&mut grads);
    let err = backward(&CpuBackend, &cfg, &p, &batch, &acts, d, &mut g).unwrap_err();
    assert!(matches!(err, crate::error::ModelError::NoActivations), "{err}");
}
