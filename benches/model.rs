//! `selfplay-model` throughput on the reference config (d_model 256, 4 layers, 4 heads of 64,
//! SwiGLU intermediate 704, vocab 64 character-level, untied, no biases; batch 16 × seq 128):
//! GEMM GFLOP/s at the model's shapes, forward tokens/s, decode tokens/s, and one full training step
//! (forward + backward + AdamW) in tokens/s; and both against sequence length up to 2048 (`model_length`).
//! `benches/peers/torch_model.py` times the same work in
//! PyTorch eager with the same thread count and prints both side by side.

use selfplay_engine::optimizer::{ModelOptimizer, OptimConfig};
use selfplay_engine::train::{RowGrads, Trainer};
use selfplay_model::loss::weighted_nll;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use selfplay_learn::optim::{AdamW, AdamWConfig, clip_grad_norm};
use selfplay_model::backend::{Backend, Gemm};
use selfplay_model::{Architecture, CpuBackend, GenerationConfig, Model, ModelConfig, SamplingParams, init_weights};

const BATCH: usize = 16;
const SEQ: usize = 128;

fn reference_config() -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Llama,
        vocab_size: 64,
        hidden_size: 256,
        intermediate_size: 704,
        num_hidden_layers: 4,
        num_attention_heads: 4,
        num_key_value_heads: 4,
        head_dim: 64,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        max_position_embeddings: 512,
        tie_word_embeddings: false,
        attention_bias: false,
        o_proj_bias: false,
        bos_token_id: None,
        eos_token_id: None,
    }
}

fn reference_model() -> Model {
    let cfg = reference_config();
    let weights = init_weights(&cfg, 0.02, 0).expect("valid config");
    Model::new(cfg, weights).expect("weights match config")
}

/// Deterministic pseudo-random token sequences.
fn sequences(n: usize, len: usize, vocab: usize) -> Vec<Vec<u32>> {
    (0..n).map(|s| (0..len).map(|t| ((s * 7919 + t * 104_729) % vocab) as u32).collect()).collect()
}

fn bench_gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("model_gemm");
    group.sample_size(20);
    let rows = BATCH * SEQ;
    // (name, m, n, k, trans_a, trans_b): the projections' forward, input-gradient and weight-gradient shapes.
    let shapes = [
        ("qkvo_fwd_2048x256x256", rows, 256, 256, false, true),
        ("up_fwd_2048x704x256", rows, 704, 256, false, true),
        ("down_fwd_2048x256x704", rows, 256, 704, false, true),
        ("up_dx_2048x256x704", rows, 256, 704, false, false),
        ("up_dw_704x256x2048", 704, 256, rows, true, false),
    ];
    for (name, m, n, k, trans_a, trans_b) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 * 0.01).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 * 0.01).collect();
        let mut out = vec![0.0f32; m * n];
        let g = Gemm { m, n, k, trans_a, trans_b, accumulate: false };
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        group.bench_function(name, |bench| {
            bench.iter(|| Backend::<f32>::gemm(&CpuBackend, g, black_box(&a), black_box(&b), &mut out));
        });
    }
    group.finish();
}

fn bench_forward_and_decode(c: &mut Criterion) {
    let model = reference_model();
    let seqs = sequences(BATCH, SEQ, 64);
    let batch: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let mut group = c.benchmark_group("model_inference");
    group.sample_size(10);
    group.throughput(Throughput::Elements((BATCH * SEQ) as u64));
    group.bench_function("forward_16x128", |b| b.iter(|| model.forward(black_box(&batch)).expect("valid batch")));

    // Decode: 16 rows, 16-token prompts, 64 greedy tokens each (prefill included, it is 1/5 of the tokens).
    let new_tokens = 64;
    let prompts = sequences(BATCH, 16, 64);
    let prompts: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    let cfg = GenerationConfig { max_new_tokens: new_tokens, sampling: SamplingParams::greedy(), stop_tokens: vec![] };
    let seeds: Vec<u64> = (0..BATCH as u64).collect();
    group.throughput(Throughput::Elements((BATCH * new_tokens) as u64));
    group.bench_function("generate_16x64_tokens", |b| {
        b.iter(|| model.generate(black_box(&prompts), &cfg, &seeds).expect("valid prompts"))
    });
    // GRPO-shaped: 2 groups of 8 rows, each group sharing a 128-token prompt (prefilled once and forked
    // by the paged KV cache), 64 greedy tokens per row.
    let shared = sequences(2, SEQ, 64);
    let grouped: Vec<&[u32]> = (0..BATCH).map(|i| shared[i % 2].as_slice()).collect();
    group.bench_function("generate_2_groups_of_8_prompt128_x64_tokens", |b| {
        b.iter(|| model.generate(black_box(&grouped), &cfg, &seeds).expect("valid prompts"))
    });
    group.finish();
}

fn bench_train_step(c: &mut Criterion) {
    let mut model = reference_model();
    let seqs = sequences(BATCH, SEQ, 64);
    let batch: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let loss_weights = vec![1.0f32; SEQ - 1];
    let weights: Vec<&[f32]> = vec![loss_weights.as_slice(); BATCH];
    let lens: Vec<usize> = model.weights().iter().map(|(e, _)| e.numel()).collect();
    let mut opt = AdamW::new(AdamWConfig::default(), &lens);
    let mut group = c.benchmark_group("model_train");
    group.sample_size(10);
    group.throughput(Throughput::Elements((BATCH * SEQ) as u64));
    group.bench_function("sft_step_16x128", |b| {
        b.iter(|| {
            let (loss, mut grads) = model.sft_loss_and_grads(black_box(&batch), &weights).expect("valid batch");
            let mut g: Vec<&mut [f32]> = grads.iter_mut().map(|(_, t)| t).collect();
            clip_grad_norm(&mut g, 1.0);
            let g: Vec<&[f32]> = g.into_iter().map(|s| &*s).collect();
            let mut p: Vec<&mut [f32]> = model.weights_mut().iter_mut().map(|(_, t)| t).collect();
            opt.step(&mut p, &g, 1e-4).expect("finite gradients");
            loss
        })
    });
    // What the engine's training loops run: the same step through `train::Trainer` (gradient buffer kept from
    // step to step) and `ModelOptimizer` (clipping and AdamW over the flat buffers).
    let mut model = reference_model();
    let optim = OptimConfig {
        lr: 1e-4,
        weight_decay: 0.0,
        warmup_steps: 0,
        total_steps: u64::MAX,
        max_grad_norm: 1.0,
        min_lr_ratio: 0.0,
    };
    let mut optimizer = ModelOptimizer::new(model.weights(), optim).expect("valid settings");
    let mut trainer = Trainer::new();
    group.bench_function("sft_step_16x128_trainer", |b| {
        b.iter(|| trainer_step(&mut trainer, &mut model, &mut optimizer, black_box(&batch), &weights))
    });
    group.finish();
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One SFT step as the engine's training loops run it: `train::Trainer` (gradient buffer kept from step to step)
/// and `ModelOptimizer` (clipping and AdamW over the flat buffers); returns the loss.
fn trainer_step(
    trainer: &mut Trainer,
    model: &mut Model,
    optimizer: &mut ModelOptimizer,
    batch: &[&[u32]],
    weights: &[&[f32]],
) -> f32 {
    let step =
        trainer.update(model, optimizer, &selfplay_collective::SingleProcess, batch, |pass| -> Result<_, BoxError> {
            let (loss, d_logprobs) = weighted_nll(pass.stats, weights)?;
            Ok((loss, d_logprobs.into_iter().map(RowGrads::logprobs_only).collect()))
        });
    step.expect("valid batch").0
}

/// Tokens per SFT step in [`bench_length`]: rows shrink as sequences grow, so every length does the same work
/// but for attention.
const TOKENS_PER_STEP: usize = 4096;

/// Throughput against sequence length, at the lengths search streams need (4-number depth-first streams run to
/// 1-2k characters): an SFT step of [`TOKENS_PER_STEP`] tokens, and decoding 4 rows from a 16-token prompt to
/// the full length.
fn bench_length(c: &mut Criterion) {
    let config = ModelConfig { max_position_embeddings: 2048, ..reference_config() };
    let weights = init_weights(&config, 0.02, 0).expect("valid config");
    let mut model = Model::new(config, weights).expect("weights match config");
    let optim = OptimConfig {
        lr: 1e-4,
        weight_decay: 0.0,
        warmup_steps: 0,
        total_steps: u64::MAX,
        max_grad_norm: 1.0,
        min_lr_ratio: 0.0,
    };
    let mut optimizer = ModelOptimizer::new(model.weights(), optim).expect("valid settings");
    let mut trainer = Trainer::new();
    let mut group = c.benchmark_group("model_length");
    group.sample_size(10);
    for len in [128, 512, 2048] {
        let rows = TOKENS_PER_STEP / len;
        let seqs = sequences(rows, len, 64);
        let batch: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        let loss_weights = vec![1.0f32; len - 1];
        let weights: Vec<&[f32]> = vec![loss_weights.as_slice(); rows];
        group.throughput(Throughput::Elements(TOKENS_PER_STEP as u64));
        group.bench_function(format!("sft_step_{rows}x{len}"), |b| {
            b.iter(|| trainer_step(&mut trainer, &mut model, &mut optimizer, black_box(&batch), &weights))
        });
        const ROWS: usize = 4;
        const PROMPT: usize = 16;
        let prompts = sequences(ROWS, PROMPT, 64);
        let prompts: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
        let seeds: Vec<u64> = (0..ROWS as u64).collect();
        let cfg = GenerationConfig {
            max_new_tokens: len - PROMPT,
            sampling: SamplingParams { temperature: 1.0, ..SamplingParams::default() },
            stop_tokens: vec![],
        };
        group.throughput(Throughput::Elements((ROWS * (len - PROMPT)) as u64));
        group.bench_function(format!("generate_{ROWS}_rows_to_{len}"), |b| {
            b.iter(|| model.generate(black_box(&prompts), &cfg, &seeds).expect("valid prompts"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_gemm, bench_forward_and_decode, bench_train_step, bench_length);
criterion_main!(benches);
