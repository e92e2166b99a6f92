//! The GPU against the CPU model (`selfplay_model::Model`): `Model<CudaBackend>` through every entry
//! point (forward, cached prefill/fork/decode, last-row steps, training statistics, backward,
//! generation), the storage-precision `GpuModel` forward through the paged cache, and the generator's
//! greedy completions token for token. `SKIP (no GPU)` without a GPU, a failure under
//! `SELFPLAY_REQUIRE_GPU=1`.

use selfplay_kvcache::{KvCacheConfig, PagedKvCache, SeqId};
use selfplay_model::config::Architecture;
use selfplay_model::{GenerationConfig, KvCache, Model, ModelConfig, SamplingParams, SequenceGrads, init_weights};

use crate::blas::Blas;
use crate::engine::{GenerationRequest, GpuGenerator};
use crate::gpu_model::{GpuModel, SeqStep};
use crate::ops::DeviceKvPool;
use crate::{CudaBackend, GpuContext};

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
        let mut generator = GpuGenerator::new(0, &cfg, &weights, num_blocks, 16).unwrap();
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
    // (A fresh generator each time: another batch composition may change GEMM shapes and so rounding.)
    let run = || GpuGenerator::new(0, &cfg, &weights, 128, 16).unwrap().generate(&sampled, 3, Some(0)).unwrap();
    let a = run();
    assert_eq!(a, run(), "same seeds, different draws");
    for c in &a {
        let eos_at = c.tokens.iter().position(|&t| t == 0);
        assert_eq!(c.stopped_by_eos, eos_at.is_some());
        assert!(eos_at.is_none_or(|p| p + 1 == c.tokens.len()));
    }
}

fn cuda_model(cfg: &ModelConfig, seed: u64) -> Option<(Model, Model<CudaBackend>)> {
    let required = std::env::var("SELFPLAY_REQUIRE_GPU").is_ok_and(|v| v == "1");
    let backend = match CudaBackend::new(0) {
        Ok(b) => b,
        Err(err) => {
            assert!(!required, "SELFPLAY_REQUIRE_GPU=1 but the GPU is unusable: {err}");
            println!("SKIP (no GPU): {err}");
            return None;
        }
    };
    let weights = init_weights(cfg, 0.2, seed).unwrap();
    let cpu = Model::new(cfg.clone(), weights.clone()).unwrap();
    Some((cpu, Model::with_backend(cfg.clone(), weights, backend).unwrap()))
}

fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: gpu {g}, cpu {w}");
    }
}

/// `Model<CudaBackend>` (the model's own forward, cached decode and backward, every op on the GPU)
/// against the CPU model.
#[test]
fn the_model_on_the_gpu_matches_the_cpu() {
    let cfg = tiny_config();
    let Some((cpu, gpu)) = cuda_model(&cfg, 5) else { return };
    let owned = prompts();
    let seqs: Vec<&[u32]> = owned.iter().map(|p| p.as_slice()).collect();
    for (c, g) in cpu.forward(&seqs).unwrap().iter().zip(gpu.forward(&seqs).unwrap()) {
        assert_close("forward logits", g.logits.data(), c.logits.data(), 1e-4);
        assert_close("forward values", &g.values, &c.values, 1e-4);
    }
    // Prefill, fork, decode through each model's paged cache (blocks of 16: keys cross blocks).
    let mut caches =
        (KvCache::new(cpu.backend(), &cfg, 64, 16).unwrap(), KvCache::new(gpu.backend(), &cfg, 64, 16).unwrap());
    let ids: Vec<SeqId> = seqs.iter().map(|_| caches.0.add_sequence().unwrap()).collect();
    assert_eq!(ids, seqs.iter().map(|_| caches.1.add_sequence().unwrap()).collect::<Vec<_>>());
    let (c, g) = (
        cpu.forward_cached(&mut caches.0, &ids, &seqs).unwrap(),
        gpu.forward_cached(&mut caches.1, &ids, &seqs).unwrap(),
    );
    c.iter().zip(&g).for_each(|(c, g)| assert_close("prefill logits", g.logits.data(), c.logits.data(), 1e-4));
    let fork = (caches.0.fork(ids[1]).unwrap(), caches.1.fork(ids[1]).unwrap());
    let mut live = ids.clone();
    live.push(fork.0);
    let mut live_gpu = ids.clone();
    live_gpu.push(fork.1);
    for step in 0..5u32 {
        let tokens: Vec<[u32; 1]> = (0..live.len() as u32).map(|i| [(step * 31 + i * 7) % 97]).collect();
        let tokens: Vec<&[u32]> = tokens.iter().map(|t| t.as_slice()).collect();
        let c = cpu.forward_cached(&mut caches.0, &live, &tokens).unwrap();
        let g = gpu.forward_cached_last(&mut caches.1, &live_gpu, &tokens).unwrap();
        let logits = gpu.backend().gpu().stream().clone_dtoh(&g.logits).unwrap();
        let want: Vec<f32> = c.iter().flat_map(|o| o.logits.data().to_vec()).collect();
        assert_close(&format!("decode step {step}"), &logits, &want, 1e-4);
    }
    // A multi-token step continuing the cache (the paged prefill kernel).
    let tokens: Vec<Vec<u32>> = (0..live.len() as u32).map(|i| vec![i + 1, 2 * i + 3, 40]).collect();
    let tokens: Vec<&[u32]> = tokens.iter().map(|t| t.as_slice()).collect();
    let c = cpu.forward_cached(&mut caches.0, &live, &tokens).unwrap();
    let g = gpu.forward_cached(&mut caches.1, &live_gpu, &tokens).unwrap();
    c.iter().zip(&g).for_each(|(c, g)| assert_close("continued prefill", g.logits.data(), c.logits.data(), 1e-4));
    // Training statistics and every gradient term.
    let train = (cpu.forward_train(&seqs).unwrap(), gpu.forward_train(&seqs).unwrap());
    let (cs, gs) = (train.0.token_stats(), train.1.token_stats());
    for (c, g) in cs.iter().zip(&gs) {
        assert_close("logprobs", &g.logprobs, &c.logprobs, 1e-4);
        assert_close("entropies", &g.entropies, &c.entropies, 1e-4);
    }
    let terms: Vec<[Vec<f32>; 4]> = seqs
        .iter()
        .map(|s| {
            let n = s.len();
            let wave = |m: usize, k: f32| (0..m).map(|j| (j as f32 * 0.37 + k).sin()).collect::<Vec<f32>>();
            [wave(n - 1, 0.1), wave(n - 1, 0.5), wave(n, 0.9), wave(n * cfg.vocab_size, 1.3)]
        })
        .collect();
    let grads: Vec<SequenceGrads<'_>> = terms
        .iter()
        .map(|[lp, h, v, z]| SequenceGrads {
            d_logprobs: lp,
            d_entropies: Some(h),
            d_values: Some(v),
            d_logits: Some(z),
        })
        .collect();
    let (mut cg, mut gg) = (cpu.weights().zeros_like(), gpu.weights().zeros_like());
    cpu.backward(&train.0, &grads, &mut cg).unwrap();
    gpu.backward(&train.1, &grads, &mut gg).unwrap();
    for ((name, c), (_, g)) in cg.named().into_iter().zip(gg.named()) {
        let scale = c.data().iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let worst = c.data().iter().zip(g.data()).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst <= 1e-3 * scale.max(1e-6), "{name}: max |gpu - cpu| {worst} of {scale}");
    }
    // Greedy generation through the model's own loop.
    let config = GenerationConfig { max_new_tokens: 10, sampling: SamplingParams::greedy(), stop_tokens: vec![] };
    let seeds = vec![0; seqs.len()];
    let (c, g) = (cpu.generate(&seqs, &config, &seeds).unwrap(), gpu.generate(&seqs, &config, &seeds).unwrap());
    for (c, g) in c.iter().zip(&g) {
        assert_eq!(c.tokens, g.tokens);
    }
}
