//! The GPU forward and generation loop against the CPU model (`selfplay_model::Model`): logits of
//! prefill and decode steps through the paged cache, and greedy completions token for token.
//! `SKIP (no GPU)` without a GPU, a failure under `SELFPLAY_REQUIRE_GPU=1`.

use selfplay_kvcache::{KvCacheConfig, PagedKvCache};
use selfplay_model::config::Architecture;
use selfplay_model::{Model, ModelConfig, SamplingParams, init_weights};

use crate::GpuContext;
use crate::blas::Blas;
use crate::engine::{GenerationRequest, GpuGenerator, GpuModel, SeqStep};
use crate::ops::DeviceKvPool;

fn tiny_config() -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Qwen2,
        vocab_size: 97,
        hidden_size: 64,
        intermediate_size: 96,
        num_hidden_layers: 2,
        num_attention_heads: 8,
        num_key_value_heads: 2,
        head_dim: 8,
        rms_norm_eps: 1e-6,
        rope_theta: 10_000.0,
        max_position_embeddings: 512,
        tie_word_embeddings: true,
        attention_bias: true,
        o_proj_bias: false,
        bos_token_id: None,
        eos_token_id: None,
    }
}

fn gpu() -> Option<GpuContext> {
    let required = std::env::var("SELFPLAY_REQUIRE_GPU").is_ok_and(|v| v == "1");
    match GpuContext::new(0) {
        Ok(g) => Some(g),
        Err(err) => {
            assert!(!required, "SELFPLAY_REQUIRE_GPU=1 but the GPU is unusable: {err}");
            println!("SKIP (no GPU): {err}");
            None
        }
    }
}

fn cpu_last_logits(model: &Model, seq: &[u32]) -> Vec<f32> {
    let out = model.forward(&[seq]).unwrap();
    out[0].logits.row(seq.len() - 1).unwrap().to_vec()
}

fn prompts() -> Vec<Vec<u32>> {
    vec![vec![5], (0..17).map(|i| (i * 7 + 3) % 97).collect(), (0..40).map(|i| (i * 13 + 1) % 97).collect()]
}

#[test]
fn paged_forward_matches_cpu_logits() {
    let Some(gpu) = gpu() else { return };
    let cfg = tiny_config();
    let weights = init_weights(&cfg, 0.2, 7).unwrap();
    let cpu = Model::new(cfg.clone(), weights.clone()).unwrap();
    let blas = Blas::new(&gpu).unwrap();
    let model = GpuModel::<f32>::new(&gpu, &cfg, &weights).unwrap();
    let kv = KvCacheConfig { num_blocks: 64, block_size: 16, prefix_caching: true };
    let mut cache = PagedKvCache::new(kv).unwrap();
    let mut pool = DeviceKvPool::new(&gpu, model.kv_geometry(64, 16)).unwrap();
    let mut seqs: Vec<Vec<u32>> = prompts();
    let ids: Vec<_> = seqs.iter().map(|p| cache.admit(p).unwrap()).collect();
    let mut pending: Vec<Vec<u32>> = seqs.clone();
    let mut reserved: Vec<(usize, Vec<u32>)> =
        ids.iter().map(|a| (a.cached_tokens, a.reservation.slots.clone())).collect();
    for step in 0..4 {
        let tables: Vec<Vec<_>> = ids.iter().map(|a| cache.block_table(a.seq).unwrap().to_vec()).collect();
        let steps: Vec<SeqStep<'_>> = (0..ids.len())
            .map(|i| SeqStep {
                tokens: &pending[i],
                context: reserved[i].0,
                slots: &reserved[i].1,
                block_table: &tables[i],
            })
            .collect();
        let logits = gpu.stream().clone_dtoh(&model.forward(&gpu, &blas, &mut pool, &steps).unwrap()).unwrap();
        for (i, seq) in seqs.iter().enumerate() {
            let want = cpu_last_logits(&cpu, seq);
            let got = &logits[i * cfg.vocab_size..(i + 1) * cfg.vocab_size];
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "step {step} seq {i}: {g} vs {w}");
            }
        }
        for (i, a) in ids.iter().enumerate() {
            cache.commit(a.seq).unwrap();
            let next = (step as u32 * 31 + i as u32) % 97;
            let context = cache.len(a.seq).unwrap();
            let r = cache.append(a.seq, &[next]).unwrap();
            gpu.kv_copy_blocks(&mut pool, &r.copies).unwrap();
            seqs[i].push(next);
            pending[i] = vec![next];
            reserved[i] = (context, r.slots);
        }
    }
}

fn cpu_greedy(model: &Model, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut seq = prompt.to_vec();
    for _ in 0..n {
        let logits = cpu_last_logits(model, &seq);
        let best = logits.iter().enumerate().fold(0, |b, (i, &x)| if x > logits[b] { i } else { b });
        seq.push(best as u32);
    }
    seq[prompt.len()..].to_vec()
}

#[test]
fn greedy_generation_matches_cpu_and_survives_preemption() {
    if gpu().is_none() {
        return;
    }
    let cfg = tiny_config();
    let weights = init_weights(&cfg, 0.2, 9).unwrap();
    let cpu = Model::new(cfg.clone(), weights.clone()).unwrap();
    let requests: Vec<GenerationRequest> = prompts()
        .into_iter()
        .cycle()
        .take(7)
        .enumerate()
        .map(|(i, prompt)| GenerationRequest {
            prompt,
            params: SamplingParams::greedy(),
            seed: i as u64,
            max_new_tokens: 12,
        })
        .collect();
    let want: Vec<Vec<u32>> = requests.iter().map(|r| cpu_greedy(&cpu, &r.prompt, 12)).collect();
    // A roomy pool, and one so small that sequences are preempted and redone.
    for (num_blocks, max_batch) in [(128, 8), (9, 8)] {
        let kv = KvCacheConfig { num_blocks, block_size: 16, prefix_caching: true };
        let mut generator = GpuGenerator::<f32>::new(0, &cfg, &weights, kv).unwrap();
        let done = generator.generate(&requests, max_batch, None).unwrap();
        for (i, (c, w)) in done.iter().zip(&want).enumerate() {
            assert_eq!(&c.tokens, w, "request {i} with {num_blocks} blocks");
            assert!(c.logprobs.iter().all(|&l| l == 0.0));
        }
    }
    // Sampled generation is reproducible and stops at EOS.
    let sampled: Vec<GenerationRequest> = requests
        .iter()
        .map(|r| GenerationRequest {
            params: SamplingParams { temperature: 0.9, top_p: 0.95, ..Default::default() },
            ..r.clone()
        })
        .collect();
    // (A fresh generator each time: a warm prefix cache or another batch size may change GEMM shapes
    // and so bf16 rounding.)
    let run = || {
        GpuGenerator::<half::bf16>::new(0, &cfg, &weights, KvCacheConfig::with_blocks(128))
            .unwrap()
            .generate(&sampled, 3, Some(0))
            .unwrap()
    };
    let a = run();
    assert_eq!(a, run(), "same seeds, different draws");
    for c in &a {
        let eos_at = c.tokens.iter().position(|&t| t == 0);
        assert_eq!(c.stopped_by_eos, eos_at.is_some());
        assert!(eos_at.is_none_or(|p| p + 1 == c.tokens.len()));
    }
}
