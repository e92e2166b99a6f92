//! Shared helpers for the end-to-end tests.

use selfplay::config::{CheckpointSettings, EvalSettings, ModelShape, RunConfig, SftSettings, TaskSettings};
use selfplay::rl::RlSettings;

/// The whole loop at toy size: a few seconds on 2 cores, every phase and artefact exercised.
pub fn tiny_run_config() -> RunConfig {
    RunConfig {
        max_new_tokens: 24,
        task: TaskSettings { numbers: 3, train_problems: 200, eval_problems: 12 },
        model: ModelShape { hidden_size: 32, layers: 1, heads: 2, kv_heads: 1, intermediate_size: 64, context: 80 },
        sft: SftSettings { steps: 3, batch_size: 4, ..SftSettings::default() },
        rl: RlSettings { steps: 2, prompts_per_step: 2, group_size: 3, ..RlSettings::default() },
        eval: EvalSettings { every: 1, budgets: vec![1, 2], ..EvalSettings::default() },
        checkpoint: CheckpointSettings { every: 1, keep: 2 },
        ..RunConfig::default()
    }
}
