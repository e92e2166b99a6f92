//! Throughput of one RL step at the demo's configuration (`selfplay demo` defaults: the 0.8M-parameter
//! model, 16 prompts x 8 samples, completions up to 48 tokens), in its two halves:
//! - rollout: sampling every completion through the batched KV-cache generation loop (tokens generated/s);
//! - update: forward + backward + AdamW over the prompt+completion sequences (tokens trained/s).
//!
//! The model is freshly initialised, so completions rarely stop early: every row decodes close to the
//! full 48 tokens, the step's worst case.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use selfplay_engine::o1::config::RunConfig;
use selfplay_engine::optimizer::{ModelOptimizer, OptimConfig};
use selfplay_engine::rollout::{encode_prompt, sample};
use selfplay_model::{CharTokenizer, DEFAULT_INIT_STD, GenerationConfig, Model, SamplingParams, init_weights};
use selfplay_tasks::{Split, Task};

fn rl_step(c: &mut Criterion) {
    let config = RunConfig::default();
    let tokenizer = CharTokenizer::ascii();
    let task = config.task();
    let rl = &config.rl;
    let generation = GenerationConfig {
        max_new_tokens: config.max_new_tokens,
        sampling: SamplingParams { temperature: rl.temperature, ..SamplingParams::default() },
        stop_tokens: vec![],
    };
    let model_config = config.model_config(&tokenizer);
    let weights = init_weights(&model_config, DEFAULT_INIT_STD, config.seed).expect("demo config is valid");
    let mut model = Model::new(model_config, weights).expect("initialised weights match their config");
    let problems = task.generate(Split::Train, rl.prompts_per_step, config.seed).expect("problems");
    let prompts: Vec<Vec<u32>> =
        problems.iter().map(|p| encode_prompt(&tokenizer, &task.prompt(p)).expect("ascii prompt")).collect();
    let ids: Vec<u64> = (0..prompts.len() as u64).collect();

    let groups = sample(&model, &prompts, &ids, rl.group_size, &generation, 0).expect("rollout");
    let generated: usize = groups.iter().flatten().map(|g| g.tokens.len()).sum();
    let sequences: Vec<Vec<u32>> = groups
        .iter()
        .zip(&prompts)
        .flat_map(|(group, prompt)| group.iter().map(move |g| [prompt.as_slice(), &g.tokens].concat()))
        .collect();
    let trained: usize = sequences.iter().map(Vec::len).sum();

    let mut group = c.benchmark_group("rl_step_demo_config");
    group.sample_size(10);
    group.throughput(Throughput::Elements(generated as u64));
    group.bench_function("rollout_tokens", |b| {
        b.iter(|| black_box(sample(&model, &prompts, &ids, rl.group_size, &generation, 0).expect("rollout")))
    });

    let batch: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
    let weights: Vec<Vec<f32>> = sequences.iter().map(|s| vec![1.0; s.len() - 1]).collect();
    let weight_refs: Vec<&[f32]> = weights.iter().map(Vec::as_slice).collect();
    let optim = OptimConfig {
        lr: 1e-4,
        weight_decay: 0.0,
        warmup_steps: 0,
        total_steps: 1000,
        max_grad_norm: 1.0,
        min_lr_ratio: 0.0,
    };
    let mut optimizer = ModelOptimizer::new(model.weights(), optim).expect("optimizer");
    group.throughput(Throughput::Elements(trained as u64));
    group.bench_function("update_tokens", |b| {
        b.iter(|| {
            let (loss, mut grads) = model.sft_loss_and_grads(&batch, &weight_refs).expect("update");
            optimizer.step(model.weights_mut(), &mut grads).expect("AdamW step");
            black_box(loss)
        })
    });
    group.finish();
}

criterion_group!(benches, rl_step);
criterion_main!(benches);
