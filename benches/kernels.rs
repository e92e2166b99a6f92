//! GPU rollout benchmarks (`SKIP (no GPU)` and nothing measured without one): decode steps of a
//! Qwen2.5-0.5B-shaped model with random bf16 weights after 512-token prompts at batch 1, 32 and 256;
//! prefill attention; batched sampling over a 151,936-token vocabulary; device copy bandwidth (the
//! batch-1 roofline is weight bytes per step / copy bandwidth). Results: BENCHMARKS.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use selfplay_kernels::half::bf16;
use selfplay_kernels::{Blas, DeviceKvPool, GpuContext, GpuModel, SampleRequest, SeqStep};
use selfplay_kvcache::{KvCacheConfig, PagedKvCache, SeqId};
use selfplay_model::backend::{AttnShape, AttnSpan};
use selfplay_model::config::Architecture;
use selfplay_model::{ModelConfig, SamplingParams, init_weights};

const PROMPT: usize = 512;
const BLOCK: u32 = 16;

fn qwen2_5_0_5b() -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Qwen2,
        vocab_size: 151_936,
        hidden_size: 896,
        intermediate_size: 4864,
        num_hidden_layers: 24,
        num_attention_heads: 14,
        num_key_value_heads: 2,
        head_dim: 64,
        rms_norm_eps: 1e-6,
        rope_theta: 1_000_000.0,
        max_position_embeddings: 32_768,
        tie_word_embeddings: true,
        attention_bias: true,
        o_proj_bias: false,
        bos_token_id: None,
        eos_token_id: None,
    }
}

fn gpu() -> Option<GpuContext> {
    match GpuContext::new(0) {
        Ok(g) => Some(g),
        Err(e) => {
            println!("SKIP (no GPU): {e}");
            None
        }
    }
}

/// Prefills `batch` distinct random 512-token prompts (32 full blocks each, so a decode token always
/// starts a fresh block and a fork never copies).
fn prefilled(
    gpu: &GpuContext,
    blas: &Blas,
    model: &GpuModel<bf16>,
    cache: &mut PagedKvCache,
    pool: &mut DeviceKvPool<bf16>,
    batch: usize,
) -> Vec<SeqId> {
    let vocab = model.config().vocab_size as u32;
    let mut seqs = Vec::new();
    for chunk in (0..batch).collect::<Vec<_>>().chunks(16) {
        let prompts: Vec<Vec<u32>> = chunk
            .iter()
            .map(|&b| (0..PROMPT as u32).map(|i| (i.wrapping_mul(2_654_435_761) ^ (b as u32 * 7919)) % vocab).collect())
            .collect();
        let admitted: Vec<_> = prompts.iter().map(|p| cache.admit(p).expect("pool sized for the batch")).collect();
        let tables: Vec<Vec<_>> = admitted.iter().map(|a| cache.block_table(a.seq).expect("live").to_vec()).collect();
        let steps: Vec<SeqStep<'_>> = admitted
            .iter()
            .zip(&prompts)
            .zip(&tables)
            .map(|((a, p), t)| SeqStep { tokens: p, context: 0, slots: &a.reservation.slots, block_table: t })
            .collect();
        black_box(model.forward(gpu, blas, pool, &steps).expect("prefill"));
        for a in &admitted {
            cache.commit(a.seq).expect("live");
            seqs.push(a.seq);
        }
    }
    seqs
}

/// One decode step for every sequence at context 512: fork, append one token, forward, sample, release.
fn decode_step(
    gpu: &GpuContext,
    blas: &Blas,
    model: &GpuModel<bf16>,
    cache: &mut PagedKvCache,
    pool: &mut DeviceKvPool<bf16>,
    seqs: &[SeqId],
    step: u64,
) {
    let forks: Vec<SeqId> = seqs.iter().map(|&s| cache.fork(s).expect("live")).collect();
    let tokens: Vec<[u32; 1]> = (0..forks.len()).map(|i| [(i as u32 * 31 + step as u32) % 1000]).collect();
    let reservations: Vec<_> = forks.iter().zip(&tokens).map(|(&f, t)| cache.append(f, t).expect("room")).collect();
    let tables: Vec<Vec<_>> = forks.iter().map(|&f| cache.block_table(f).expect("live").to_vec()).collect();
    let steps: Vec<SeqStep<'_>> = tokens
        .iter()
        .zip(&reservations)
        .zip(&tables)
        .map(|((t, r), table)| SeqStep { tokens: t, context: PROMPT, slots: &r.slots, block_table: table })
        .collect();
    let logits = model.forward(gpu, blas, pool, &steps).expect("decode");
    let params = SamplingParams { temperature: 0.7, top_p: 0.9, ..Default::default() };
    let rows: Vec<SampleRequest> = (0..forks.len()).map(|i| SampleRequest { params, seed: i as u64, step }).collect();
    black_box(gpu.sample(&logits, model.config().vocab_size, &rows).expect("sample"));
    for f in forks {
        cache.release(f).expect("live");
    }
}

fn bench_decode(c: &mut Criterion, gpu: &GpuContext) {
    let cfg = qwen2_5_0_5b();
    let weights = init_weights(&cfg, 0.02, 1).expect("valid config");
    let model = GpuModel::<bf16>::new(gpu, &cfg, &weights).expect("fits on the GPU");
    drop(weights);
    let blas = Blas::new(gpu).expect("cuBLAS");
    let mut group = c.benchmark_group("decode_qwen2.5-0.5b_bf16_ctx512");
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    for batch in [1usize, 32, 256] {
        let blocks = (batch * (PROMPT / BLOCK as usize + 2) + 64) as u32;
        let mut cache =
            PagedKvCache::new(KvCacheConfig { num_blocks: blocks, block_size: BLOCK, prefix_caching: false })
                .expect("valid");
        let mut pool = DeviceKvPool::new(gpu, model.kv_geometry(blocks as usize, BLOCK as usize)).expect("fits");
        let seqs = prefilled(gpu, &blas, &model, &mut cache, &mut pool, batch);
        group.throughput(Throughput::Elements(batch as u64));
        let mut step = 0;
        group.bench_function(format!("batch{batch}_tokens"), |b| {
            b.iter(|| {
                step += 1;
                decode_step(gpu, &blas, &model, &mut cache, &mut pool, &seqs, step);
            })
        });
    }
    group.finish();
}

fn bench_prefill_attention(c: &mut Criterion, gpu: &GpuContext) {
    let shape = AttnShape { heads: 14, kv_heads: 2, head_dim: 64 };
    let mut group = c.benchmark_group("prefill_attention_bf16_h14_kv2_d64");
    for (batch, len) in [(1usize, 512usize), (8, 512), (1, 4096)] {
        let rows = batch * len;
        let q = gpu.stream().alloc_zeros::<bf16>(rows * 14 * 64).expect("alloc");
        let kv = gpu.stream().alloc_zeros::<bf16>(rows * 2 * 64).expect("alloc");
        let mut out = gpu.stream().alloc_zeros::<bf16>(rows * 14 * 64).expect("alloc");
        let spans: Vec<AttnSpan> =
            (0..batch).map(|b| AttnSpan { q_start: b * len, q_len: len, kv_start: b * len, kv_len: len }).collect();
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(format!("batch{batch}_len{len}"), |b| {
            b.iter(|| {
                gpu.attention(&q, &kv, &kv, &spans, shape, &mut out, None).expect("launch");
                gpu.stream().synchronize().expect("sync");
            })
        });
    }
    group.finish();
}

fn bench_sampling(c: &mut Criterion, gpu: &GpuContext) {
    let vocab = 151_936;
    let mut group = c.benchmark_group("sampling_vocab151936");
    for batch in [1usize, 32, 256] {
        let host: Vec<f32> =
            (0..batch * vocab).map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 8) as f32 * 1e-6).collect();
        let logits = gpu.stream().clone_htod(&host).expect("upload");
        for (name, params) in [
            ("greedy", SamplingParams::greedy()),
            ("top_p0.9_t0.7", SamplingParams { temperature: 0.7, top_p: 0.9, ..Default::default() }),
            ("top_k50_top_p0.9_min_p0.05", SamplingParams { temperature: 1.0, top_k: 50, top_p: 0.9, min_p: 0.05 }),
        ] {
            let rows: Vec<SampleRequest> =
                (0..batch).map(|i| SampleRequest { params, seed: i as u64, step: 0 }).collect();
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("{name}_batch{batch}"), |b| {
                b.iter(|| black_box(gpu.sample(&logits, vocab, &rows).expect("sample")))
            });
        }
    }
    group.finish();
}

fn bench_copy_bandwidth(c: &mut Criterion, gpu: &GpuContext) {
    let bytes = 1usize << 30;
    let src = gpu.stream().alloc_zeros::<u8>(bytes).expect("alloc");
    let mut dst = gpu.stream().alloc_zeros::<u8>(bytes).expect("alloc");
    let mut group = c.benchmark_group("device_copy");
    // A copy reads and writes every byte.
    group.throughput(Throughput::Bytes(2 * bytes as u64));
    group.bench_function("1GiB_dtod", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                gpu.stream().memcpy_dtod(&src, &mut dst).expect("copy");
            }
            gpu.stream().synchronize().expect("sync");
            start.elapsed()
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let Some(gpu) = gpu() else { return };
    println!("device: {}", gpu.describe());
    bench_copy_bandwidth(c, &gpu);
    bench_sampling(c, &gpu);
    bench_prefill_attention(c, &gpu);
    bench_decode(c, &gpu);
}

criterion_group!(kernel_benches, benches);
criterion_main!(kernel_benches);
