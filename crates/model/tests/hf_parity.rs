//! Parity with Hugging Face transformers and PyTorch autograd on the committed tiny checkpoints
//! (`tools/make_model_fixtures.py` wrote them and their references): Llama with GQA, Qwen2 with
//! q/k/v biases, Llama in bf16, and Llama with `attention_bias` (q/k/v and o_proj biases).
//!
//! Logits: every sequence alone and all of them in one ragged batch match transformers within 1e-4.
//! Gradients: for the loss the script states,
//!   `L = Σ_s Σ_{t=0}^{T_s−2} w_{s,t} · (−log softmax(logits_s[t])[tokens_s[t+1]])`,
//! i.e. `dL/dlogprob_{s,t} = −w_{s,t}`, the gradient of every parameter matches PyTorch's within
//! 1e-4 of that tensor's largest PyTorch gradient.

mod common;

use common::{Expected, PARITY_FIXTURES, expected, fixture};
use selfplay_model::{CpuBackend, KvCache, Model, ModelDir, SeqId, SequenceGrads};
use selfplay_tensor::Tensor;

const LOGIT_TOL: f32 = 1e-4;
const GRAD_REL_TOL: f32 = 1e-4;

fn model(name: &str) -> (Model, Expected) {
    let dir = ModelDir::load(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let model = Model::new(dir.config, dir.weights).unwrap_or_else(|e| panic!("{name}: {e}"));
    (model, expected(name))
}

fn max_abs_diff(a: &[f32], b: &Tensor<f32>) -> f32 {
    assert_eq!(a.len(), b.numel());
    a.iter().zip(b.data()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn logits_match_transformers() {
    for name in PARITY_FIXTURES {
        let (model, exp) = model(name);
        let seqs: Vec<&[u32]> = exp.sequences.iter().map(|s| s.tokens.as_slice()).collect();
        let lengths: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        assert!(lengths.windows(2).all(|w| w[0] != w[1]), "{name}: references cover several lengths");
        let batched = model.forward(&seqs).unwrap();
        let mut worst = 0.0f32;
        for (s, reference) in exp.sequences.iter().enumerate() {
            let alone = model.forward(&[reference.tokens.as_slice()]).unwrap();
            let spread = reference.logits.data().iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert!(spread > 1.0, "{name}: logits are not trivially flat ({spread})");
            for (how, out) in [("alone", &alone[0]), ("batched", &batched[s])] {
                let diff = max_abs_diff(out.logits.data(), &reference.logits);
                assert!(diff <= LOGIT_TOL, "{name} sequence {s} ({how}): max |ours - HF| = {diff:e}");
                worst = worst.max(diff);
            }
        }
        println!("{name}: logits max |ours - transformers| = {worst:.2e} over lengths {lengths:?}");
    }
}

/// Decoding through the paged KV cache gives transformers' logits at every position: all sequences
/// as one batch (lengths 1 and up), a prefill of up to two tokens then one token per step, blocks of 3 so keys cross block
/// boundaries, and each sequence continued by a fork (copy-on-write of its partly filled block).
#[test]
fn paged_decode_matches_transformers() {
    for name in PARITY_FIXTURES {
        let (model, exp) = model(name);
        let mut cache = KvCache::new(&CpuBackend, model.config(), 64, 3).unwrap();
        let seqs: Vec<&[u32]> = exp.sequences.iter().map(|s| s.tokens.as_slice()).collect();
        let prompts: Vec<&[u32]> = seqs.iter().map(|s| &s[..s.len().min(2)]).collect();
        let parents: Vec<SeqId> = seqs.iter().map(|_| cache.add_sequence().unwrap()).collect();
        let prefill = model.forward_cached(&mut cache, &parents, &prompts).unwrap();
        let ids: Vec<SeqId> = parents.iter().map(|&p| cache.fork(p).unwrap()).collect();
        let vocab = model.config().vocab_size;
        let mut worst = 0.0f32;
        let mut check = |s: usize, t: usize, got: &[f32]| {
            let want = &exp.sequences[s].logits.data()[t * vocab..(t + 1) * vocab];
            let diff = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(diff <= LOGIT_TOL, "{name} sequence {s} position {t}: max |ours - HF| = {diff:e}");
            worst = worst.max(diff);
        };
        for (s, out) in prefill.iter().enumerate() {
            (0..prompts[s].len()).for_each(|t| check(s, t, &out.logits.data()[t * vocab..(t + 1) * vocab]));
        }
        for t in 2..seqs.iter().map(|s| s.len()).max().unwrap_or(0) {
            let live: Vec<usize> = (0..seqs.len()).filter(|&s| t < seqs[s].len()).collect();
            let tokens: Vec<&[u32]> = live.iter().map(|&s| &seqs[s][t..=t]).collect();
            let live_ids: Vec<SeqId> = live.iter().map(|&s| ids[s]).collect();
            let out = model.forward_cached(&mut cache, &live_ids, &tokens).unwrap();
            live.iter().zip(&out).for_each(|(&s, o)| check(s, t, o.logits.data()));
        }
        println!("{name}: paged decode logits max |ours - transformers| = {worst:.2e}");
    }
}

#[test]
fn gradients_match_pytorch_autograd() {
    for name in PARITY_FIXTURES {
        let (model, exp) = model(name);
        let seqs: Vec<&[u32]> = exp.sequences.iter().map(|s| s.tokens.as_slice()).collect();
        let d_logprobs: Vec<Vec<f32>> =
            exp.sequences.iter().map(|s| s.ce_weights.iter().map(|w| -w).collect()).collect();
        let grads: Vec<SequenceGrads<'_>> = d_logprobs
            .iter()
            .map(|d| SequenceGrads { d_logprobs: d, d_entropies: None, d_values: None, d_logits: None })
            .collect();
        let pass = model.forward_train(&seqs).unwrap();
        let mut ours = model.weights().zeros_like();
        model.backward(&pass, &grads, &mut ours).unwrap();

        let (mut compared, mut worst) = (0, 0.0f32);
        for (param, grad) in ours.named() {
            match exp.grads.get(&param) {
                Some(reference) => {
                    let scale = reference.data().iter().fold(0.0f32, |m, x| m.max(x.abs()));
                    assert!(scale > 0.0, "{name} {param}: PyTorch gradient is all zero");
                    let rel = max_abs_diff(grad.data(), reference) / scale;
                    assert!(rel <= GRAD_REL_TOL, "{name} {param}: max |ours - torch| / max |torch| = {rel:e}");
                    compared += 1;
                    worst = worst.max(rel);
                }
                // Ours alone: the value head plays no part in this loss.
                None => {
                    assert!(param.starts_with("value_head."), "{name}: no PyTorch gradient for {param}");
                    assert!(grad.data().iter().all(|&g| g == 0.0), "{name} {param}");
                }
            }
        }
        assert_eq!(compared, exp.grads.len(), "{name}: every PyTorch parameter was compared");
        println!("{name}: {compared} gradients, worst max |ours - torch| / max |torch| = {worst:.2e}");
    }
}
