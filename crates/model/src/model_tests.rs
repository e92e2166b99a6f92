//! Tests of the [`Model`] entry points: batching, KV-cache decoding and input validation.

use selfplay_kvcache::{BlockId, KvCacheError, SeqId};

use crate::backend::CpuBackend;
use crate::error::ModelError;
use crate::kv_cache::KvCache;
use crate::model::{CpuKvCache, Model, SequenceGrads};
use crate::transformer::tests::{random_weights, tiny_config};

fn model(tied: bool) -> Model {
    let cfg = tiny_config(tied, true);
    Model::new(cfg.clone(), random_weights(&cfg, 11)).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn a_sequence_gives_the_same_outputs_alone_or_in_a_batch() {
    let m = model(false);
    let seqs: [&[u32]; 3] = [&[1, 2, 3, 4, 5, 6, 0], &[3], &[6, 5, 4, 3]];
    let together = m.forward(&seqs).unwrap();
    for (seq, out) in seqs.iter().zip(&together) {
        let alone = m.forward(&[seq]).unwrap().remove(0);
        assert_eq!(out.logits.dims(), &[seq.len(), 7]);
        assert!(max_diff(alone.logits.data(), out.logits.data()) < 1e-5);
        assert!(max_diff(&alone.values, &out.values) < 1e-5);
    }
    // Causality: a prefix's outputs do not depend on what follows it.
    let prefix = m.forward(&[&seqs[0][..3]]).unwrap().remove(0);
    assert!(max_diff(prefix.logits.data(), &together[0].logits.data()[..3 * 7]) < 1e-5);
}

/// A paged cache of `blocks` blocks of `block_size` tokens for `m`.
fn paged(m: &Model, blocks: usize, block_size: usize) -> CpuKvCache {
    KvCache::new(&CpuBackend, m.config(), blocks, block_size).unwrap()
}

#[test]
fn prefill_then_decode_matches_a_full_forward() {
    for tied in [false, true] {
        let m = model(tied);
        let seqs: [&[u32]; 3] = [&[1, 2, 3, 4, 5, 6, 0, 2, 2, 1], &[3, 1, 4, 1, 5], &[6, 5, 4, 3, 2, 1, 0, 1]];
        let full = m.forward(&seqs).unwrap();
        // Block sizes below, at and above the prompt lengths: keys cross block boundaries mid-step.
        for (prompt_len, block_size) in [(1, 1), (2, 3), (4, 3), (4, 16)] {
            let mut cache = paged(&m, seqs.iter().map(|s| s.len().div_ceil(block_size)).sum(), block_size);
            let ids: Vec<SeqId> = (0..3).map(|_| cache.add_sequence().unwrap()).collect();
            let prompts: Vec<&[u32]> = seqs.iter().map(|s| &s[..prompt_len]).collect();
            let pre = m.forward_cached(&mut cache, &ids, &prompts).unwrap();
            for (p, f) in pre.iter().zip(&full) {
                assert!(max_diff(p.logits.data(), &f.logits.data()[..prompt_len * 7]) < 1e-5);
            }
            // Decode token by token; sequences drop out as they end (batch shrinks, order shuffled).
            for t in prompt_len..10 {
                let live: Vec<usize> = (0..3).rev().filter(|&i| t < seqs[i].len()).collect();
                let tokens: Vec<&[u32]> = live.iter().map(|&i| &seqs[i][t..=t]).collect();
                let live_ids: Vec<SeqId> = live.iter().map(|&i| ids[i]).collect();
                let out = m.forward_cached(&mut cache, &live_ids, &tokens).unwrap();
                for (&i, o) in live.iter().zip(&out) {
                    let want = &full[i].logits.data()[t * 7..(t + 1) * 7];
                    assert!(max_diff(o.logits.data(), want) < 1e-5, "seq {i} pos {t} block {block_size}");
                    assert!((o.values[0] - full[i].values[t]).abs() < 1e-5);
                }
            }
            assert_eq!(cache.len(ids[0]).unwrap(), 10);
            assert_eq!(cache.free_blocks(), 0, "the cache was sized to the tokens");
            // No block left: one more token is a typed error that leaves the sequence as it was.
            let one_more = m.forward_cached(&mut cache, &[ids[1]], &[&[1]]);
            if 5 % block_size == 0 {
                assert!(matches!(one_more, Err(ModelError::KvCache(KvCacheError::OutOfBlocks { .. }))));
                assert_eq!(cache.len(ids[1]).unwrap(), 5);
            }
        }
    }
}

/// Forks share their parent's blocks; the first append to the shared, partly filled last block
/// copies it, so each fork's continuation sees its own keys (compared with full forwards).
#[test]
fn forks_share_the_prompt_and_copy_on_write() {
    let m = model(false);
    let prompt = [1u32, 2, 3, 4, 5];
    let tails: [[u32; 4]; 3] = [[6, 0, 2, 2], [3, 3, 1, 0], [5, 4, 6, 1]];
    let mut cache = paged(&m, 2 + 3 * 3, 3);
    let parent = cache.add_sequence().unwrap();
    m.forward_cached(&mut cache, &[parent], &[&prompt]).unwrap();
    let free_after_prompt = cache.free_blocks();
    let ids = [parent, cache.fork(parent).unwrap(), cache.fork(parent).unwrap()];
    assert_eq!(cache.free_blocks(), free_after_prompt, "forking copies nothing");
    assert!(ids.iter().all(|&s| cache.block_table(s).unwrap() == cache.block_table(parent).unwrap()));
    for t in 0..4 {
        let tokens: Vec<&[u32]> = tails.iter().map(|tail| &tail[t..=t]).collect();
        let out = m.forward_cached(&mut cache, &ids, &tokens).unwrap();
        for (i, o) in out.iter().enumerate() {
            let whole: Vec<u32> = prompt.iter().chain(&tails[i][..=t]).copied().collect();
            let full = m.forward(&[&whole]).unwrap().remove(0);
            let want = &full.logits.data()[(whole.len() - 1) * 7..];
            assert!(max_diff(o.logits.data(), want) < 1e-5, "fork {i} step {t}");
        }
    }
    // The full first block stays shared; the partly filled one was copied for two of the three.
    let tables: Vec<&[BlockId]> = ids.iter().map(|&s| cache.block_table(s).unwrap()).collect();
    assert!(tables.iter().all(|t| t[0] == tables[0][0]));
    assert_ne!(tables[0][1], tables[1][1]);
    assert_ne!(tables[1][1], tables[2][1]);
    for id in ids {
        cache.release(id).unwrap();
    }
    assert_eq!(cache.free_blocks(), 2 + 3 * 3, "every block comes back");
}

#[test]
fn bad_inputs_are_typed_errors() {
    let m = model(true);
    assert!(matches!(m.forward(&[]), Err(ModelError::EmptyInput(_))));
    assert!(matches!(m.forward(&[&[1], &[]]), Err(ModelError::EmptySequence(1))));
    assert!(matches!(m.forward(&[&[1, 7]]), Err(ModelError::TokenOutOfRange { id: 7, vocab_size: 7 })));
    let big =
        crate::config::ModelConfig { vocab_size: 1 << 31, max_position_embeddings: 1 << 20, ..m.config().clone() };
    let huge = Model { config: big, ..m.clone() };
    let tokens = vec![1u32; 1 << 10];
    assert!(matches!(huge.forward(&[&tokens]), Err(ModelError::BatchTooLarge { .. })));
    let long = vec![1u32; 33];
    assert!(matches!(m.forward(&[&long]), Err(ModelError::SequenceTooLong { len: 33, limit: 32 })));
    let mut cache = m.new_cache(4).unwrap();
    let (seq, gone) = (cache.add_sequence().unwrap(), cache.add_sequence().unwrap());
    cache.release(gone).unwrap();
    let unknown = m.forward_cached(&mut cache, &[gone], &[&[1]]);
    assert!(matches!(unknown, Err(ModelError::KvCache(KvCacheError::UnknownSequence(_)))));
    assert!(matches!(m.forward_cached(&mut cache, &[seq, seq], &[&[1], &[2]]), Err(ModelError::InvalidValue { .. })));
    assert!(matches!(m.forward_cached(&mut cache, &[seq], &[&[1, 7]]), Err(ModelError::TokenOutOfRange { .. })));
    assert!(matches!(m.forward_cached(&mut cache, &[seq], &[&long]), Err(ModelError::SequenceTooLong { .. })));
    assert!(matches!(m.forward_cached(&mut cache, &[seq], &[]), Err(ModelError::LengthMismatch { .. })));
    assert_eq!(cache.len(seq).unwrap(), 0, "refused steps change nothing");
    assert!(matches!(m.new_cache(usize::MAX), Err(ModelError::CacheTooLarge { .. })));
    // A cache built for another model shape is refused before it is indexed.
    let other = crate::config::ModelConfig { num_hidden_layers: 1, ..m.config().clone() };
    let mut foreign = KvCache::<f32, CpuBackend>::new(&CpuBackend, &other, 4, 16).unwrap();
    let s = foreign.add_sequence().unwrap();
    let err = m.forward_cached(&mut foreign, &[s], &[&[1]]).unwrap_err();
    assert!(matches!(err, ModelError::CacheMismatch { what: "layers", expected: 2, got: 1 }), "{err}");
    let other = crate::config::ModelConfig { num_key_value_heads: 4, ..m.config().clone() };
    let mut foreign = KvCache::<f32, CpuBackend>::new(&CpuBackend, &other, 4, 16).unwrap();
    let s = foreign.add_sequence().unwrap();
    assert!(matches!(m.forward_cached(&mut foreign, &[s], &[&[1]]), Err(ModelError::CacheMismatch { .. })));
    assert!(matches!(m.new_cache(0), Err(ModelError::KvCache(KvCacheError::InvalidConfig(_)))));

    let pass = m.forward_train(&[&[1, 2, 3]]).unwrap();
    let mut g = m.weights().zeros_like();
    let ok = [0.5f32, 0.5];
    let short = [0.5f32];
    let nan = [f32::NAN, 0.0];
    let grads =
        |d: &'static [f32]| vec![SequenceGrads { d_logprobs: d, d_entropies: None, d_values: None, d_logits: None }];
    assert!(m.backward(&pass, &grads(&[]), &mut g).is_err());
    assert!(matches!(
        m.backward(
            &pass,
            &[SequenceGrads { d_logprobs: &short, d_entropies: None, d_values: None, d_logits: None }],
            &mut g
        ),
        Err(ModelError::LengthMismatch { what: "d_logprobs", seq: Some(0), expected: 2, got: 1 })
    ));
    let err = m.backward(
        &pass,
        &[SequenceGrads { d_logprobs: &nan, d_entropies: None, d_values: None, d_logits: None }],
        &mut g,
    );
    let err = err.unwrap_err();
    assert!(matches!(err, ModelError::InvalidValue { what: "d_logprobs", seq: Some(0), .. }));
    assert_eq!(err.to_string(), "invalid value for d_logprobs of sequence 0: holds NaN or infinity");
    // A gradient buffer of another shape (here with an untied lm_head) names the extra tensor.
    let mut wrong = model(false).weights().zeros_like();
    assert!(matches!(
        m.backward(
            &pass,
            &[SequenceGrads { d_logprobs: &ok, d_entropies: None, d_values: None, d_logits: None }],
            &mut wrong
        ),
        Err(ModelError::WrongShape { .. })
    ));
    // A pass of a model with another config is refused.
    let other = model(false);
    let foreign = other.forward_train(&[&[1, 2, 3]]).unwrap();
    let grads_ok = [SequenceGrads { d_logprobs: &ok, d_entropies: None, d_values: None, d_logits: None }];
    assert!(matches!(m.backward(&foreign, &grads_ok, &mut g), Err(ModelError::ForeignPass)));
    assert!(m.sft_loss_and_grads(&[&[1, 2, 3]], &[&[0.0, 0.0]]).is_err());
    assert!(m.sft_loss_and_grads(&[&[1, 2, 3]], &[&[1.0]]).is_err());
}

#[test]
fn model_new_checks_every_tensor() {
    let cfg = tiny_config(false, true);
    let good = random_weights(&cfg, 1);
    assert!(Model::new(cfg.clone(), good.clone()).is_ok());
    // Weights laid out for another config are reported by the first tensor that differs, by its HF
    // name: a wrong shape, a missing tensor (no shape), an extra one (no expected shape).
    let other = |c: crate::config::ModelConfig| random_weights(&c, 1);
    let llama = crate::config::Architecture::Llama; // whose biases the config chooses freely
    let err = Model::new(cfg.clone(), other(crate::config::ModelConfig { intermediate_size: 13, ..cfg.clone() }))
        .unwrap_err();
    assert_eq!(err.to_string(), "parameter model.layers.0.mlp.gate_proj.weight has shape [13, 8], expected [12, 8]");
    let mut w = good.clone();
    w.layer_mut(1).unwrap().up_proj[3] = f32::NAN;
    assert!(
        matches!(Model::new(cfg.clone(), w), Err(ModelError::NonFiniteParameter(n)) if n.to_string() == "model.layers.1.mlp.up_proj.weight")
    );
    let err = Model::new(cfg.clone(), other(crate::config::ModelConfig { tie_word_embeddings: true, ..cfg.clone() }))
        .unwrap_err();
    assert!(matches!(&err, ModelError::WrongShape { got, .. } if got.is_empty()), "{err}");
    assert_eq!(err.to_string(), "parameter lm_head.weight has shape [], expected [7, 8]");
    let err = Model::new(
        cfg.clone(),
        other(crate::config::ModelConfig { architecture: llama, attention_bias: false, ..cfg.clone() }),
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("parameter model.layers.0.self_attn.q_proj.bias has shape []"), "{err}");
    let err = Model::new(
        cfg.clone(),
        other(crate::config::ModelConfig { architecture: llama, o_proj_bias: true, ..cfg.clone() }),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("parameter model.layers.0.self_attn.o_proj.bias has shape [8], expected []"),
        "{err}"
    );
    let w = other(crate::config::ModelConfig { num_hidden_layers: 1, ..cfg.clone() });
    assert!(matches!(Model::new(cfg.clone(), w), Err(ModelError::LengthMismatch { .. })));
    for broken in [
        crate::config::ModelConfig { num_key_value_heads: 3, ..cfg.clone() },
        crate::config::ModelConfig { head_dim: 5, ..cfg.clone() },
        crate::config::ModelConfig { rms_norm_eps: f64::NAN, ..cfg.clone() },
        crate::config::ModelConfig { vocab_size: 0, ..cfg.clone() },
        crate::config::ModelConfig { hidden_size: usize::MAX / 2, vocab_size: 1 << 20, ..cfg.clone() },
    ] {
        assert!(matches!(Model::new(broken.clone(), good.clone()), Err(ModelError::InvalidConfig(_))), "{broken:?}");
        assert!(crate::init::init_weights(&broken, 0.02, 0).is_err());
    }
}

/// The SFT convenience equals the weighted-mean cross-entropy computed from token log-probabilities,
/// and its gradient equals `backward` driven by `−w/Σw`.
#[test]
fn sft_loss_is_weighted_mean_cross_entropy() {
    let m = model(false);
    let batch: [&[u32]; 2] = [&[1, 2, 3, 4], &[5, 6, 0]];
    let weights: [&[f32]; 2] = [&[1.0, 0.0, 2.0], &[1.0, 1.0]];
    let (loss, grads) = m.sft_loss_and_grads(&batch, &weights).unwrap();
    // A second call runs in the recycled buffers and gives bit-identical results.
    let (loss2, grads2) = m.sft_loss_and_grads(&batch, &weights).unwrap();
    assert!(m.spare.lock().unwrap().pass.is_some());
    assert_eq!((loss, &grads), (loss2, &grads2));
    let stats = m.token_logprobs(&batch).unwrap();
    let want: f32 =
        -(stats[0].logprobs[0] + 2.0 * stats[0].logprobs[2] + stats[1].logprobs[0] + stats[1].logprobs[1]) / 5.0;
    assert!((loss - want).abs() < 1e-6);
    // Logprobs are log-softmax of the logits at the next token.
    let out = m.forward(&batch).unwrap();
    let row = &out[0].logits.data()[7..14];
    let lse = row.iter().map(|x| x.exp()).sum::<f32>().ln();
    assert!((stats[0].logprobs[1] - (row[3] - lse)).abs() < 1e-5);
    let pass = m.forward_train(&batch).unwrap();
    let d: [Vec<f32>; 2] = [vec![-0.2, 0.0, -0.4], vec![-0.2, -0.2]];
    let sg: Vec<SequenceGrads<'_>> =
        d.iter().map(|d| SequenceGrads { d_logprobs: d, d_entropies: None, d_values: None, d_logits: None }).collect();
    let mut g = m.weights().zeros_like();
    m.backward(&pass, &sg, &mut g).unwrap();
    for ((name, a), (_, b)) in grads.named().into_iter().zip(g.named()) {
        assert!(max_diff(a.data(), b.data()) < 1e-6, "{name}");
    }
}

/// `forward_cached_last` runs the same step as `forward_cached` and returns the logits and values
/// of each sequence's last new position (the head on those rows only), leaving the cache in the same
/// state: prefill then decode, sequences of different lengths, a fork.
#[test]
fn last_row_steps_match_full_steps() {
    let m = model(false);
    let seqs: [&[u32]; 3] = [&[1, 2, 3, 4, 5, 6, 0, 2], &[3, 1, 4], &[6, 5, 4, 3, 2]];
    let (mut full, mut last) = (paged(&m, 16, 3), paged(&m, 16, 3));
    let ids: Vec<SeqId> = (0..3).map(|_| full.add_sequence().unwrap()).collect();
    let ids_last: Vec<SeqId> = (0..3).map(|_| last.add_sequence().unwrap()).collect();
    assert_eq!(ids, ids_last);
    let check = |full: &[crate::model::ForwardOutput], got: &crate::model::LastOutputs<Vec<f32>>| {
        for (i, f) in full.iter().enumerate() {
            let rows = f.values.len();
            assert!(max_diff(&got.logits[i * 7..(i + 1) * 7], &f.logits.data()[(rows - 1) * 7..]) < 1e-5);
            assert!((got.values[i] - f.values[rows - 1]).abs() < 1e-5);
        }
    };
    let prompts: Vec<&[u32]> = seqs.iter().map(|s| &s[..s.len() - 2]).collect();
    check(
        &m.forward_cached(&mut full, &ids, &prompts).unwrap(),
        &m.forward_cached_last(&mut last, &ids, &prompts).unwrap(),
    );
    let forks = [full.fork(ids[0]).unwrap(), last.fork(ids[0]).unwrap()];
    assert_eq!(forks[0], forks[1]);
    for t in [2usize, 1] {
        let tokens: Vec<&[u32]> = seqs.iter().map(|s| &s[s.len() - t..s.len() - t + 1]).collect();
        let (mut all, mut all_ids) = (tokens.clone(), ids.clone());
        all.push(&[5]);
        all_ids.push(forks[0]);
        check(
            &m.forward_cached(&mut full, &all_ids, &all).unwrap(),
            &m.forward_cached_last(&mut last, &all_ids, &all).unwrap(),
        );
    }
    for &id in ids.iter().chain(&forks[..1]) {
        assert_eq!(full.len(id).unwrap(), last.len(id).unwrap());
    }
    assert_eq!(full.free_blocks(), last.free_blocks());
    assert!(m.forward_cached_last(&mut last, &ids, &[]).is_err());
}
