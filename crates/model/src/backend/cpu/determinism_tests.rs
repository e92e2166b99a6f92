//! The whole model on the CPU backend gives the same bits at any rayon thread count and on any GEMM
//! kernel: forward logits and values, and every parameter gradient of a loss with log-probability,
//! entropy and value terms.

use super::gemm::{Kernel, force_kernel};
use crate::{Architecture, Model, ModelConfig, SequenceGrads, init_weights};

fn small_model() -> Model {
    let cfg = ModelConfig {
        architecture: Architecture::Llama,
        vocab_size: 40,
        hidden_size: 64,
        intermediate_size: 176,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 16,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        max_position_embeddings: 160,
        tie_word_embeddings: false,
        attention_bias: true,
        o_proj_bias: true,
        bos_token_id: None,
        eos_token_id: None,
    };
    let weights = init_weights(&cfg, 0.05, 3).expect("valid config");
    Model::new(cfg, weights).expect("weights match config")
}

/// Eleven sequences of 41..151 tokens: 1 056 rows, so weight gradients (k = rows) take two chunks.
fn batch() -> Vec<Vec<u32>> {
    (0..11).map(|s| (0..41 + 11 * s).map(|t| ((s * 31 + t * t * 7 + t) % 40) as u32).collect()).collect()
}

/// Every logit, value and gradient element of one forward + backward, as bits.
fn run(model: &Model) -> Vec<u32> {
    let seqs = batch();
    let batch: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let mut out: Vec<u32> = Vec::new();
    for f in model.forward(&batch).expect("forward") {
        out.extend(f.logits.data().iter().map(|x| x.to_bits()));
        out.extend(f.values.iter().map(|x| x.to_bits()));
    }
    let pass = model.forward_train(&batch).expect("forward_train");
    let grads: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = seqs
        .iter()
        .map(|s| {
            let n = s.len();
            let lp = (0..n - 1).map(|t| -1.0 / (1.0 + t as f32)).collect();
            let ent = (0..n - 1).map(|t| 0.01 * (t % 3) as f32).collect();
            let val = (0..n).map(|t| 0.1 - 0.002 * t as f32).collect();
            (lp, ent, val)
        })
        .collect();
    let grads: Vec<SequenceGrads<'_>> = grads
        .iter()
        .map(|(lp, ent, val)| SequenceGrads {
            d_logprobs: lp,
            d_entropies: Some(ent),
            d_values: Some(val),
            d_logits: None,
        })
        .collect();
    let mut g = model.weights().zeros_like();
    model.backward(&pass, &grads, &mut g).expect("backward");
    for (_, t) in g.named() {
        out.extend(t.data().iter().map(|x| x.to_bits()));
    }
    out
}

fn on_threads(model: &Model, threads: usize) -> Vec<u32> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
    pool.install(|| run(model))
}

#[test]
fn forward_and_backward_identical_at_1_and_3_threads() {
    let model = small_model();
    let one = on_threads(&model, 1);
    assert!(one == on_threads(&model, 3), "3 threads differ from 1");
    assert!(one == on_threads(&model, 2), "2 threads differ from 1");
}

#[test]
fn forward_and_backward_identical_on_every_kernel() {
    let model = small_model();
    let default = on_threads(&model, 2);
    for kernel in [Kernel::Portable, Kernel::Avx2, Kernel::Avx512] {
        force_kernel(Some(kernel));
        let got = on_threads(&model, 2);
        force_kernel(None);
        assert!(got == default, "{kernel:?} differs from the default kernel");
    }
}
