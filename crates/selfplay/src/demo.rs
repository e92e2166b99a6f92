//! The main job: the whole loop on Countdown, from a randomly initialised transformer to the two
//! scaling curves.
//!
//! 1. policy initialisation: supervised training on optimal solution traces;
//! 2. reinforcement learning: GRPO with the exact verifier as reward, the held-out greedy accuracy
//!    measured along the way (the train-time compute curve);
//! 3. test-time compute: held-out accuracy of each method at budgets 1..=64 (the test-time curves);
//! 4. the report (`report.json`, `report.md`, SVG and PNG plots), `metrics.jsonl`, and the final model as a
//!    Hugging Face directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use selfplay_learn::LossAgg;
use selfplay_learn::policy::{PpoConfig, RatioLevel};
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{
    Architecture, CharTokenizer, DEFAULT_INIT_STD, GenerationConfig, Model, ModelConfig, ModelDir, SamplingParams,
    init_weights, save_model_dir,
};
use selfplay_tasks::{CountdownConfig, CountdownTask, Split, Task};
use selfplay_tensor::DType;
use serde::{Deserialize, Serialize};

use crate::cli::CliError;
use crate::eval::{EvalConfig, greedy, test_time};
use crate::flops::train_flops_per_token;
use crate::grpo::{self, GrpoConfig};
use crate::optimizer::{ModelOptimizer, OptimConfig};
use crate::progress::Progress;
use crate::report::{MetricsLog, Report, TrainPoint, write_report};
use crate::sft::{self, SftConfig, SftExample};

/// Everything the demo does, with defaults sized for a 2-core CPU (about ten minutes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    pub seed: u64,
    /// Start RL from this model directory (e.g. a previous run's `sft_model/`) instead of policy
    /// initialisation from scratch; its config must match `model`.
    pub init_from: Option<PathBuf>,
    /// Numbers per Countdown problem.
    pub numbers: usize,
    pub train_problems: usize,
    pub eval_problems: usize,
    pub model: ModelShape,
    pub sft_steps: u64,
    pub sft_batch_size: usize,
    pub sft_lr: f32,
    pub rl_steps: u64,
    pub rl_prompts_per_step: usize,
    pub rl_group_size: usize,
    pub rl_lr: f32,
    pub rl_temperature: f32,
    /// Weight of the value head's regression loss in the RL update (the value head shares the trunk).
    pub rl_value_coef: f32,
    /// Held-out greedy accuracy is measured every this many RL steps.
    pub eval_every: u64,
    pub max_new_tokens: usize,
    pub eval_temperature: f32,
    pub budgets: Vec<u32>,
}

/// The transformer's size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelShape {
    pub hidden_size: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub intermediate_size: usize,
    pub context: usize,
}

impl Default for ModelShape {
    fn default() -> Self {
        ModelShape { hidden_size: 128, layers: 4, heads: 4, kv_heads: 2, intermediate_size: 384, context: 96 }
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            seed: 1,
            init_from: None,
            numbers: 3,
            train_problems: 50_000,
            eval_problems: 500,
            model: ModelShape::default(),
            sft_steps: 1500,
            sft_batch_size: 32,
            sft_lr: 3e-3,
            rl_steps: 150,
            rl_prompts_per_step: 16,
            rl_group_size: 8,
            rl_lr: 1e-4,
            rl_temperature: 1.0,
            rl_value_coef: 0.1,
            eval_every: 25,
            max_new_tokens: 48,
            eval_temperature: 1.0,
            budgets: vec![1, 2, 4, 8, 16, 32, 64],
        }
    }
}

impl DemoConfig {
    /// The longer, stronger run of `selfplay demo --full` (hours on 2 cores): four numbers, a bigger model,
    /// more of everything.
    pub fn full() -> Self {
        DemoConfig {
            numbers: 4,
            train_problems: 200_000,
            model: ModelShape {
                hidden_size: 256,
                layers: 6,
                heads: 8,
                kv_heads: 4,
                intermediate_size: 768,
                context: 128,
            },
            sft_steps: 6000,
            sft_batch_size: 64,
            sft_lr: 1e-3,
            rl_steps: 600,
            rl_prompts_per_step: 32,
            eval_every: 50,
            max_new_tokens: 64,
            ..DemoConfig::default()
        }
    }

    /// The RL step's settings.
    pub fn grpo_config(&self) -> GrpoConfig {
        GrpoConfig {
            prompts_per_step: self.rl_prompts_per_step,
            group_size: self.rl_group_size,
            generation: GenerationConfig {
                max_new_tokens: self.max_new_tokens,
                sampling: SamplingParams { temperature: self.rl_temperature, ..SamplingParams::default() },
                stop_tokens: vec![],
            },
            ppo: PpoConfig {
                clip_low: 0.2,
                clip_high: 0.28,
                dual_clip: None,
                ratio: RatioLevel::Token,
                agg: LossAgg::TokenMean,
                entropy_coef: 0.0,
            },
            value_coef: self.rl_value_coef,
            seed: self.seed,
        }
    }

    /// The task: Countdown with `numbers` numbers per problem.
    pub fn task(&self) -> CountdownTask {
        CountdownTask {
            config: CountdownConfig { min_count: self.numbers, max_count: self.numbers, ..CountdownConfig::default() },
            ..CountdownTask::default()
        }
    }

    /// The transformer's config for `tokenizer`'s vocabulary.
    pub fn model_config(&self, tokenizer: &CharTokenizer) -> ModelConfig {
        let m = &self.model;
        ModelConfig {
            architecture: Architecture::Llama,
            vocab_size: tokenizer.vocab_size(),
            hidden_size: m.hidden_size,
            intermediate_size: m.intermediate_size,
            num_hidden_layers: m.layers,
            num_attention_heads: m.heads,
            num_key_value_heads: m.kv_heads,
            head_dim: m.hidden_size / m.heads.max(1),
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: m.context,
            tie_word_embeddings: true,
            attention_bias: false,
            o_proj_bias: false,
            bos_token_id: tokenizer.bos_id(),
            eos_token_id: tokenizer.eos_id(),
        }
    }
}

/// Runs the demo, writing everything under `out`; returns the report.
pub fn run(config: &DemoConfig, out: &Path) -> Result<Report, CliError> {
    let started = Instant::now();
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("config.toml"), toml::to_string(config)?)?;
    let task = config.task();
    let tokenizer = CharTokenizer::ascii();
    eprintln!("generating {} training and {} held-out Countdown problems", config.train_problems, config.eval_problems);
    let train = task.generate(Split::Train, config.train_problems, config.seed)?;
    let eval = task.generate(Split::Val, config.eval_problems, config.seed)?;

    // 1. Policy initialisation (or a saved policy).
    let (mut model, sft_flops) = match &config.init_from {
        Some(dir) => (load_policy(dir, &config.model_config(&tokenizer))?, 0.0),
        None => initialise_policy(config, &task, &tokenizer, &train)?,
    };
    let model_config = model.config().clone();
    save_model_dir(
        &out.join("sft_model"),
        &model_config,
        model.weights(),
        Some(&tokenizer as &dyn Tokenizer),
        DType::F32,
    )?;
    let (sft_accuracy, _) = greedy(&model, &tokenizer, &task, &eval, config.max_new_tokens)?;
    eprintln!("after policy initialisation: greedy accuracy {sft_accuracy:.3}");

    // 2. Reinforcement learning.
    let grpo_config = config.grpo_config();
    let mut optimizer = ModelOptimizer::new(
        model.weights(),
        OptimConfig {
            lr: config.rl_lr,
            weight_decay: 0.0,
            warmup_steps: 0,
            total_steps: config.rl_steps,
            max_grad_norm: 1.0,
        },
    )?;
    let mut metrics = MetricsLog::open(&out.join("metrics.jsonl"))?;
    let mut train_curve = vec![TrainPoint { step: 0, train_flops: sft_flops, accuracy: sft_accuracy }];
    let mut train_flops = sft_flops;
    let phase = Instant::now();
    let progress = Progress::new("reinforcement (GRPO)", config.rl_steps);
    for step in 1..=config.rl_steps {
        let m = grpo::step(&mut model, &mut optimizer, &tokenizer, &task, &train, &grpo_config, step)?;
        let context = config.max_new_tokens / 2;
        train_flops += m.rollout_tokens as f64 * crate::flops::forward_flops_per_token(&model_config, context)
            + m.update_tokens as f64 * train_flops_per_token(&model_config, context);
        metrics.write(&m)?;
        progress.step(format!("reward {:.2} acc {:.2}", m.reward_mean, m.train_accuracy));
        if step % config.eval_every.max(1) == 0 || step == config.rl_steps {
            let (accuracy, _) = greedy(&model, &tokenizer, &task, &eval, config.max_new_tokens)?;
            train_curve.push(TrainPoint { step, train_flops, accuracy });
        }
    }
    progress.finish();
    let rl_accuracy = train_curve.last().map_or(sft_accuracy, |p| p.accuracy);
    eprintln!("after RL ({:.0} s): greedy accuracy {rl_accuracy:.3}", phase.elapsed().as_secs_f64());

    // 3. Test-time compute.
    eprintln!("test-time sweep: budgets {:?}", config.budgets);
    let eval_config = EvalConfig {
        max_new_tokens: config.max_new_tokens,
        sampling: SamplingParams { temperature: config.eval_temperature, ..SamplingParams::default() },
        budgets: config.budgets.clone(),
        seed: config.seed,
    };
    let phase = Instant::now();
    let test_time = test_time(&model, &tokenizer, &task, &eval, &eval_config)?;
    eprintln!("test-time sweep: {:.0} s", phase.elapsed().as_secs_f64());

    // 4. Model and report.
    save_model_dir(&out.join("model"), &model_config, model.weights(), Some(&tokenizer as &dyn Tokenizer), DType::F32)?;
    let report = Report {
        task: task.name().into(),
        eval_problems: eval.len(),
        wall_seconds: started.elapsed().as_secs_f64(),
        sft_accuracy,
        rl_accuracy,
        train_curve,
        test_time,
    };
    let files = write_report(out, &report)?;
    eprintln!("wrote {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(report)
}

/// Policy initialisation from scratch: a random transformer trained on the task's solution traces.
/// Returns the model and the training FLOPs spent.
fn initialise_policy(
    config: &DemoConfig,
    task: &CountdownTask,
    tokenizer: &CharTokenizer,
    train: &[<CountdownTask as Task>::Problem],
) -> Result<(Model, f64), CliError> {
    let model_config = config.model_config(tokenizer);
    let mut model = Model::new(model_config.clone(), init_weights(&model_config, DEFAULT_INIT_STD, config.seed)?)?;
    eprintln!("model: {} parameters", model.weights().num_params());
    let examples: Vec<SftExample> = train
        .iter()
        .filter_map(|p| task.solution_trace(p).map(|trace| SftExample::new(tokenizer, &task.prompt(p), &trace)))
        .collect::<Result<_, _>>()?;
    let sft_config = SftConfig {
        steps: config.sft_steps,
        batch_size: config.sft_batch_size,
        optim: OptimConfig {
            lr: config.sft_lr,
            weight_decay: 0.01,
            warmup_steps: config.sft_steps / 20,
            total_steps: config.sft_steps,
            max_grad_norm: 1.0,
        },
        seed: config.seed,
    };
    let phase = Instant::now();
    let losses = sft::train(&mut model, &examples, &sft_config)?;
    eprintln!(
        "policy initialisation: {} steps in {:.0} s, final loss {:.3}",
        config.sft_steps,
        phase.elapsed().as_secs_f64(),
        losses.last().copied().unwrap_or(f32::NAN)
    );
    let mean_example = examples.iter().map(|e| e.tokens.len()).sum::<usize>() as f64 / examples.len().max(1) as f64;
    let sft_flops = (config.sft_steps as f64)
        * (config.sft_batch_size as f64)
        * mean_example
        * train_flops_per_token(&model_config, mean_example as usize / 2);
    Ok((model, sft_flops))
}

/// A policy saved by an earlier run, checked against the configured shape.
fn load_policy(dir: &Path, expected: &ModelConfig) -> Result<Model, CliError> {
    let saved = ModelDir::load(dir)?;
    if &saved.config != expected {
        return Err(format!("{} holds a model of another shape than the configured one", dir.display()).into());
    }
    Ok(Model::new(saved.config, saved.weights)?)
}

/// Where the demo writes by default.
pub fn default_out() -> PathBuf {
    PathBuf::from("runs/demo")
}
