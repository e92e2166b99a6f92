//! `selfplay-learn` throughput: the AdamW step over a model-sized parameter set (params/s, to set beside
//! `torch.optim.AdamW` on the same 16 x 256 Ki f32 tensors), gradient-norm clipping, and the per-step losses
//! at an RL batch shape.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use selfplay_learn::advantage::{GroupScale, grpo_advantages};
use selfplay_learn::optim::{AdamW, AdamWConfig, clip_grad_norm};
use selfplay_learn::policy::{PolicyBatch, PpoConfig, policy_loss};
use selfplay_learn::{LossAgg, SeqShape};

/// 16 tensors of 256 Ki parameters: 4 Mi parameters, about the reference training config's size.
const TENSORS: usize = 16;
const TENSOR_LEN: usize = 1 << 18;

fn filled(n: usize, salt: u32) -> Vec<f32> {
    (0..n as u32).map(|i| ((i.wrapping_mul(2_654_435_761) ^ salt) % 1000) as f32 * 1e-3 - 0.5).collect()
}

fn bench_optim(c: &mut Criterion) {
    let mut group = c.benchmark_group("learn_optim");
    group.throughput(Throughput::Elements((TENSORS * TENSOR_LEN) as u64));
    let lens = vec![TENSOR_LEN; TENSORS];
    let mut params: Vec<Vec<f32>> = (0..TENSORS as u32).map(|t| filled(TENSOR_LEN, t)).collect();
    let mut grads: Vec<Vec<f32>> = (0..TENSORS as u32).map(|t| filled(TENSOR_LEN, t + 100)).collect();
    let mut opt = AdamW::new(AdamWConfig { betas: (0.9, 0.95), eps: 1e-8, weight_decay: 0.1 }, &lens);
    group.bench_function("adamw_step_4M", |b| {
        let g: Vec<&[f32]> = grads.iter().map(Vec::as_slice).collect();
        b.iter(|| {
            let mut p: Vec<&mut [f32]> = params.iter_mut().map(Vec::as_mut_slice).collect();
            opt.step(black_box(&mut p), black_box(&g), 1e-4).expect("valid inputs");
        });
    });
    group.bench_function("clip_grad_norm_4M", |b| {
        b.iter(|| {
            let mut g: Vec<&mut [f32]> = grads.iter_mut().map(Vec::as_mut_slice).collect();
            black_box(clip_grad_norm(black_box(&mut g), 1e9));
        });
    });
    group.finish();
}

fn bench_losses(c: &mut Criterion) {
    let mut group = c.benchmark_group("learn_losses");
    let shape = SeqShape::new(64, 256);
    let n = shape.batch * shape.len;
    group.throughput(Throughput::Elements(n as u64));
    let old: Vec<f32> = filled(n, 1).iter().map(|x| x - 1.0).collect();
    let lp: Vec<f32> = old.iter().zip(filled(n, 2)).map(|(o, d)| o + 0.2 * d).collect();
    let adv = filled(n, 3);
    let mask: Vec<bool> = (0..n).map(|t| t % shape.len < 200).collect();
    let config = PpoConfig { clip_high: 0.28, dual_clip: Some(3.0), agg: LossAgg::TokenMean, ..PpoConfig::default() };
    group.bench_function("ppo_clip_loss_64x256", |b| {
        let batch =
            PolicyBatch { shape, logprobs: &lp, old_logprobs: &old, advantages: &adv, mask: &mask, entropy: None };
        b.iter(|| black_box(policy_loss(&config, black_box(&batch)).expect("valid inputs")));
    });
    let scores = filled(1024, 4);
    let ids: Vec<u64> = (0..1024).map(|i| i / 16).collect();
    group.throughput(Throughput::Elements(1024));
    group.bench_function("grpo_advantages_1024", |b| {
        b.iter(|| black_box(grpo_advantages(black_box(&scores), &ids, GroupScale::GroupStd, 1e-6).expect("valid")));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench_optim, bench_losses
}
criterion_main!(benches);
