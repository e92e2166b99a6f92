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
    for (e, t) in w.iter_mut() {
        let name = e.name.name;
        if name.ends_with("norm.weight") || name.ends_with(".bias") {
            let base = if name.ends_with(".bias") { 0.0 } else { 1.0 };
            t.iter_mut().for_each(|x| *x = base + 0.3 * standard_normal(&mut rng));
        }
    }
    w
}

const BATCH: [&[u32]; 3] = [&[1, 5, 2, 6, 0, 3], &[4, 4, 1], &[2, 6]];

/// Coefficients of the test loss `L = Σ c·logp + Σ e·H + Σ u·value` for every packed row, plus
/// optional terms in the whole logits: linear `Σ lin·logits`, and soft-target cross-entropy
/// `Σ_r w_r · (−Σ_a π_ra · log softmax(logits_r)_a)` (AlphaZero's policy loss), both over every row.
struct LossCoefs {
    targets: Vec<u32>,
    c: Vec<f64>,
    e: Vec<f64>,
    u: Vec<f64>,
    /// `[rows, vocab]`.
    lin: Option<Vec<f64>>,
    /// `π` (`[rows, vocab]`, rows summing to one) and `w` (`[rows]`).
    soft: Option<(Vec<f64>, Vec<f64>)>,
}

/// [`coefs`] with the logit terms: a linear one and soft-target cross-entropy (last rows included).
fn coefs_with_logits(batch: &PackedBatch, vocab: usize) -> LossCoefs {
    let rows = batch.rows();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut draw = |n| (0..n).map(|_| f64::from(standard_normal(&mut rng))).collect::<Vec<f64>>();
    let lin = draw(rows * vocab);
    let mut pi: Vec<f64> = draw(rows * vocab).iter().map(|x| x.exp()).collect();
    for row in pi.chunks_mut(vocab) {
        let total: f64 = row.iter().sum();
        row.iter_mut().for_each(|x| *x /= total);
    }
    let w = draw(rows).iter().map(|x| 0.5 + x.abs()).collect();
    LossCoefs { lin: Some(lin), soft: Some((pi, w)), ..coefs(batch) }
}

/// `dL/dlogits` of the logit terms at the current logits (`None` when the loss has none).
fn d_logits(k: &LossCoefs, logits: &[f64], lse: &[f64], vocab: usize) -> Option<Vec<f64>> {
    if k.lin.is_none() && k.soft.is_none() {
        return None;
    }
    let mut d = k.lin.clone().unwrap_or_else(|| vec![0.0; logits.len()]);
    if let Some((pi, w)) = &k.soft {
        for (r, (d, (z, pi))) in d.chunks_mut(vocab).zip(logits.chunks(vocab).zip(pi.chunks(vocab))).enumerate() {
            for a in 0..vocab {
                d[a] += w[r] * ((z[a] - lse[r]).exp() - pi[a]);
            }
        }
    }
    Some(d)
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
    LossCoefs { targets, c, e, u, lin: None, soft: None }
}

fn loss(cfg: &ModelConfig, p: &Params<Vec<f64>>, batch: &PackedBatch, k: &LossCoefs) -> f64 {
    let view = p.each_ref().map(|v| v.as_slice());
    let mut acts = Activations::new(&CpuBackend, cfg, batch.rows(), false).unwrap();
    forward(&CpuBackend, cfg, &view, batch, &mut acts, None).unwrap();
    let h = &acts.head;
    let v = cfg.vocab_size;
    (0..batch.rows())
        .map(|r| {
            let (z, lse) = (&h.logits[r * v..(r + 1) * v], h.lse[r]);
            let logp = z[k.targets[r] as usize] - lse;
            let lin = k.lin.as_ref().map_or(0.0, |lin| (0..v).map(|a| lin[r * v + a] * z[a]).sum::<f64>());
            let soft = k
                .soft
                .as_ref()
                .map_or(0.0, |(pi, w)| -w[r] * (0..v).map(|a| pi[r * v + a] * (z[a] - lse)).sum::<f64>());
            k.c[r] * logp + k.e[r] * h.entropy[r] + k.u[r] * h.values[r] + lin + soft
        })
        .sum()
}

fn analytic(cfg: &ModelConfig, p: &Params<Vec<f64>>, batch: &PackedBatch, k: &LossCoefs) -> Params<Vec<f64>> {
    let view = p.each_ref().map(|v| v.as_slice());
    let mut acts = Activations::new(&CpuBackend, cfg, batch.rows(), true).unwrap();
    forward(&CpuBackend, cfg, &view, batch, &mut acts, None).unwrap();
    let mut grads = p.clone().map(|v| vec![0.0; v.len()]);
    let mut g = grads.each_mut().map(|v| v.as_mut_slice());
    let d_logits = d_logits(k, &acts.head.logits, &acts.head.lse, cfg.vocab_size);
    let d = HeadGrads {
        targets: &k.targets,
        d_logprob: &k.c[..],
        d_entropy: &k.e[..],
        d_value: &k.u[..],
        d_logits: d_logits.as_deref(),
    };
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
    check_every_parameter_for(cfg, coefs);
}

fn check_every_parameter_for(cfg: ModelConfig, loss_coefs: impl Fn(&PackedBatch) -> LossCoefs) {
    let w = random_weights(&cfg, 3);
    let names: Vec<String> = w.named().into_iter().map(|(n, _)| n).collect();
    let mut p = w.params().map(|s| s.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>());
    let batch = PackedBatch::new(&BATCH, cfg.vocab_size, cfg.max_position_embeddings).unwrap();
    let k = loss_coefs(&batch);
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

/// Gradients with respect to the whole logits (`HeadGrads::d_logits`), for a linear term and
/// soft-target cross-entropy over every row including each sequence's last, added to the
/// chosen-token, entropy and value terms, match finite differences through the LM head (untied, and
/// tied to the embeddings) into every parameter.
#[test]
fn finite_differences_with_logit_gradients() {
    check_every_parameter_for(tiny_config(false, true), |b| coefs_with_logits(b, 7));
    check_every_parameter_for(tiny_config(true, false), |b| coefs_with_logits(b, 7));
}

/// `SequenceGrads::d_logits` through the `f32` model: per-sequence rows land on their packed rows
/// (last rows included) and agree with the `f64` analytic gradient of the same loss.
#[test]
fn model_backward_with_logit_gradients_matches_f64_reference() {
    let cfg = tiny_config(false, true);
    let w = random_weights(&cfg, 6);
    let model = Model::new(cfg.clone(), w.clone()).unwrap();
    let batch = PackedBatch::new(&BATCH, cfg.vocab_size, cfg.max_position_embeddings).unwrap();
    // The linear logit term only: its gradient does not depend on the logits, so f32 and f64 get
    // the very same d_logits.
    let k = LossCoefs { soft: None, ..coefs_with_logits(&batch, cfg.vocab_size) };
    let p = w.params().map(|s| s.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>());
    let reference = analytic(&cfg, &p, &batch, &k).into_list();
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let v = cfg.vocab_size;
    let per_seq: Vec<[Vec<f32>; 4]> = batch
        .spans
        .iter()
        .map(|s| {
            let (a, b) = (s.q_start, s.q_start + s.q_len);
            let lin = k.lin.as_ref().unwrap();
            [f32s(&k.c[a..b - 1]), f32s(&k.e[a..b - 1]), f32s(&k.u[a..b]), f32s(&lin[a * v..b * v])]
        })
        .collect();
    let grads: Vec<SequenceGrads<'_>> = per_seq
        .iter()
        .map(|[c, e, u, z]| SequenceGrads { d_logprobs: c, d_entropies: Some(e), d_values: Some(u), d_logits: Some(z) })
        .collect();
    let pass = model.forward_train(&BATCH).unwrap();
    let mut out = model.weights().zeros_like();
    model.backward(&pass, &grads, &mut out).unwrap();
    for ((name, got), want) in out.named().into_iter().zip(reference) {
        for (i, (&g, &r)) in got.data().iter().zip(&want).enumerate() {
            assert!((f64::from(g) - r).abs() <= 1e-4 + 1e-3 * r.abs(), "{name}[{i}]: f32 {g}, f64 {r}");
        }
    }
    // A wrong-sized or non-finite d_logits is a typed error naming the sequence.
    let mut bad = grads.clone();
    bad[1].d_logits = Some(&per_seq[1][3][..v]);
    let err = model.backward(&pass, &bad, &mut out).unwrap_err();
    assert!(matches!(err, crate::error::ModelError::LengthMismatch { what: "d_logits", seq: Some(1), .. }), "{err}");
}

/// The chosen-token path and the whole-logits path are one gradient: `d_logits[t] =
/// g_t·(onehot(token[t+1]) − softmax(logits[t]))` gives what `d_logprobs[t] = g_t` gives, and the two
/// add (both together give what `2·g` gives).
#[test]
fn one_hot_logit_gradients_reproduce_the_logprob_path() {
    let cfg = tiny_config(true, true);
    let model = Model::new(cfg.clone(), random_weights(&cfg, 8)).unwrap();
    let v = cfg.vocab_size;
    let pass = model.forward_train(&BATCH).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let g: Vec<Vec<f32>> = BATCH.iter().map(|s| (1..s.len()).map(|_| standard_normal(&mut rng)).collect()).collect();
    let twice: Vec<Vec<f32>> = g.iter().map(|g| g.iter().map(|x| 2.0 * x).collect()).collect();
    let zeros: Vec<Vec<f32>> = g.iter().map(|g| vec![0.0; g.len()]).collect();
    let one_hot: Vec<Vec<f32>> = BATCH
        .iter()
        .enumerate()
        .map(|(i, seq)| {
            let z = pass.seq_logits(i).unwrap();
            let mut d = vec![0.0f32; seq.len() * v];
            for t in 0..seq.len() - 1 {
                let row = &z[t * v..(t + 1) * v];
                let lse = row.iter().map(|&x| f64::from(x).exp()).sum::<f64>().ln();
                for a in 0..v {
                    let p = (f64::from(row[a]) - lse).exp();
                    let hot = if a == seq[t + 1] as usize { 1.0 } else { 0.0 };
                    d[t * v + a] = (f64::from(g[i][t]) * (hot - p)) as f32;
                }
            }
            d
        })
        .collect();
    let run = |lp: &[Vec<f32>], logits: Option<&[Vec<f32>]>| {
        let grads: Vec<SequenceGrads<'_>> = (0..BATCH.len())
            .map(|i| SequenceGrads {
                d_logprobs: &lp[i],
                d_entropies: None,
                d_values: None,
                d_logits: logits.map(|d| d[i].as_slice()),
            })
            .collect();
        let mut out = model.weights().zeros_like();
        model.backward(&pass, &grads, &mut out).unwrap();
        out
    };
    for (a, b) in [(run(&g, None), run(&zeros, Some(&one_hot))), (run(&twice, None), run(&g, Some(&one_hot)))] {
        for ((name, x), (_, y)) in a.named().into_iter().zip(b.named()) {
            let scale = x.data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (i, (p, q)) in x.data().iter().zip(y.data()).enumerate() {
                assert!((p - q).abs() <= 1e-5 * (1.0 + scale), "{name}[{i}]: {p} vs {q}");
            }
        }
    }
    // All-zero d_logits change nothing, bit for bit.
    assert_eq!(run(&g, None), run(&g, Some(&zeros.iter().map(|z| vec![0.0; (z.len() + 1) * v]).collect::<Vec<_>>())));
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
    let p = w.params().map(|s| s.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>());
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
        .map(|[c, e, u]| SequenceGrads { d_logprobs: c, d_entropies: Some(e), d_values: Some(u), d_logits: None })
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
    let p = w.params();
    let batch = PackedBatch::new(&BATCH, cfg.vocab_size, cfg.max_position_embeddings).unwrap();
    let mut acts = Activations::new(&CpuBackend, &cfg, batch.rows(), false).unwrap();
    forward(&CpuBackend, &cfg, &p, &batch, &mut acts, None).unwrap();
    let rows = batch.rows();
    let (targets, zeros) = (vec![0u32; rows], vec![0.0f32; rows]);
    let d = HeadGrads {
        targets: &targets,
        d_logprob: &zeros[..],
        d_entropy: &zeros[..],
        d_value: &zeros[..],
        d_logits: None,
    };
    let mut grads = w.zeros_like();
    let mut g = grads.params_mut();
    let err = backward(&CpuBackend, &cfg, &p, &batch, &acts, d, &mut g).unwrap_err();
    assert!(matches!(err, crate::error::ModelError::NoActivations), "{err}");
}
