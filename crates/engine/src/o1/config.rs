//! A run's settings, as one TOML file: `selfplay train --print-config` writes every default out, and
//! `selfplay train --config FILE` reads a file that overrides any subset of them.
//!
//! The sections follow the loop: `[task]`, `[model]`, `[sft]` (policy initialisation), `[rl]`,
//! `[value_model]` (the judge trained after RL), `[eval]` (held-out accuracy along the way and the test-time
//! sweep at the end) and `[checkpoint]`.

use std::path::{Path, PathBuf};

use selfplay_model::tokenizer::{MAX_BPE_VOCAB, MIN_BPE_VOCAB, Tokenizer};
use selfplay_model::{Architecture, CharTokenizer, ModelConfig};
use selfplay_reward::{CountdownProblem, StepAggregation};
use selfplay_tasks::{CountdownConfig, CountdownTask, Task, TraceKind};
use serde::{Deserialize, Serialize};

use super::rl::{RlError, RlSettings};
use super::value_model::ValueModelSettings;
use crate::config_file::{TomlFileError, read_toml};
use crate::rollout::Method;
use crate::rollout::step_search::{SearchSettings, StepSearchError};

/// A config that cannot be read or cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed.
    #[error(transparent)]
    File(#[from] TomlFileError),
    /// The config could not be written as TOML.
    #[error("cannot write the config as TOML: {0}")]
    Write(#[from] toml::ser::Error),
    /// A setting outside its valid range.
    #[error("{0}")]
    Invalid(&'static str),
    /// `[model] context` cannot hold the sequences the run feeds the model.
    #[error("model.context = {context} is too short: {what} need at least {needed} tokens")]
    ContextTooShort {
        /// The configured context.
        context: usize,
        /// The least context that holds them.
        needed: usize,
        /// The sequences that do not fit, in words.
        what: String,
    },
    /// The `[rl]` section is invalid.
    #[error(transparent)]
    Rl(#[from] RlError),
    /// `[eval.search]` is invalid.
    #[error("[eval.search]: {0}")]
    Search(#[from] StepSearchError),
    /// `[task]` describes no valid Countdown.
    #[error("[task]: {0}")]
    Task(#[from] selfplay_tasks::TasksError),
    /// `[model]` describes no valid transformer.
    #[error("[model]: {0}")]
    Model(#[from] selfplay_model::ModelError),
    /// `[model]` describes no transformer the model crate accepts.
    #[error("[model]: {0}")]
    ModelShape(#[from] selfplay_model::IoError),
}

/// Everything a run does, with defaults sized for a 2-core CPU (the demo: about ten minutes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Seed for everything random: problems, initial weights, batches, sampling.
    pub seed: u64,
    /// Start RL from this model directory (e.g. a previous run's `sft_model/`) instead of policy
    /// initialisation from scratch; its config must match `[model]`.
    pub init_from: Option<PathBuf>,
    /// Longest completion, in tokens, for RL rollouts and evaluation alike.
    pub max_new_tokens: usize,
    pub task: TaskSettings,
    pub model: ModelShape,
    pub sft: SftSettings,
    pub rl: RlSettings,
    pub value_model: ValueModelSettings,
    pub eval: EvalSettings,
    pub checkpoint: CheckpointSettings,
}

/// The Countdown problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskSettings {
    /// Numbers per problem.
    pub numbers: usize,
    /// Training problems (SFT traces and RL prompts).
    pub train_problems: usize,
    /// Held-out problems every accuracy is measured on.
    pub eval_problems: usize,
    /// A curriculum over the count of numbers for the RL phase: its steps split into equal stages, one per
    /// entry, each drawing its prompts from `train_problems` problems of that many numbers (e.g. `[3, 4]` on a
    /// 4-number task: the first half on 3-number problems, whose groups more often hold a right and a wrong
    /// answer). Empty: `numbers` throughout. Evaluation always uses `numbers`.
    pub curriculum: Vec<usize>,
    /// The counts of numbers policy initialisation deals its training problems to, round-robin (e.g. `[3, 4]`:
    /// every other trace solves a 3-number problem), so that a curriculum's easier stages start from a policy
    /// that has seen them. Empty: `numbers` alone.
    pub sft_numbers: Vec<usize>,
}

impl TaskSettings {
    /// Every count of numbers the run poses: `numbers`, the curriculum's, policy initialisation's.
    pub fn counts(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.numbers).chain(self.curriculum.iter().copied()).chain(self.sft_numbers.iter().copied())
    }
}

/// The transformer's size (Llama layout, tied embeddings) and the tokenizer it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelShape {
    pub hidden_size: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub intermediate_size: usize,
    /// Longest sequence (prompt + completion) in tokens.
    pub context: usize,
    /// `char` (one token per character, 99 ids) or `bpe` (a byte-level BPE trained on the run's own training
    /// prompts and traces, of `bpe_vocab` ids: fewer tokens per trace).
    pub tokenizer: TokenizerKind,
    /// The BPE's vocabulary, from `MIN_BPE_VOCAB` = 259 (the special tokens and the 256 bytes) up; read only when
    /// `tokenizer = "bpe"`.
    pub bpe_vocab: usize,
}

/// Which tokenizer the policy reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// One token per character.
    Char,
    /// A byte-level BPE trained on the run's corpus.
    Bpe,
}

/// Policy initialisation: supervised training on solution traces of the training problems.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SftSettings {
    pub steps: u64,
    pub batch_size: usize,
    /// Peak learning rate (linear warmup over the first 5% of steps, then cosine decay).
    pub lr: f32,
    pub weight_decay: f32,
    /// The traces imitated, dealt round-robin over the training problems (repeat a name to weight it):
    /// `optimal` (the direct solution) or a search stream (Stream of Search): `dfs-target`, `dfs-factors`,
    /// `bfsN-target`, `bfsN-factors` with a beam N from 1 to 16. A problem whose search misses, or whose stream
    /// is longer than `max_new_tokens` (the policy could never write it out), is left out.
    pub traces: Vec<TraceKind>,
    /// The most step and `back` lines a search stream may take.
    pub stream_max_lines: usize,
    /// Proposer examples besides the traces, for `[rl.propose]`: every this many training problems, one is also
    /// written as the task's proposer writes it (`propose 3` then `3 8 12 -> 24`), teaching the policy to propose
    /// problems like the generator's. 0: none.
    pub proposer_every: usize,
    /// Greedy held-out accuracy is also measured every this many SFT steps (the policy-initialisation curve, the
    /// train-time law's first part); the last step is always measured. 0: only the last.
    pub eval_every: u64,
}

/// Held-out evaluation.
/// The largest test-time budget (samples, beam width or simulations per problem) a run or `selfplay eval` takes:
/// beyond it one problem's search alone would hold gigabytes of sequences and run for hours on a CPU.
pub const MAX_BUDGET: u32 = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSettings {
    /// Greedy held-out accuracy is measured every this many RL steps (the train-time curve).
    pub every: u64,
    /// Sampling temperature of the multi-sample test-time methods.
    pub temperature: f32,
    /// Test-time budgets (samples, beam width or simulations per problem).
    pub budgets: Vec<u32>,
    /// Step searches in the test-time sweep, besides the sampling methods (greedy, majority, best-of-N).
    pub search_methods: Vec<Method>,
    /// How a judge's step scores (the value model's, or the policy's value head at the end of each line) become
    /// one score of a sample for `best_of_n_value` and `weighted_vote`: `last` (the finished completion's value,
    /// the default), `min`, `prod` or `mean` (process-reward aggregation; most useful with a value model trained
    /// on process labels, `[value_model] rollouts`). The searches aggregate by `[eval.search] step_aggregation`.
    pub step_aggregation: StepAggregation,
    /// Quantile bins of the policy's own success estimate (its value head on the prompt) over which the report's
    /// compute-optimal policy picks a method and budget per problem (Snell et al. 2024), cross-fitted on two halves
    /// of the held-out problems.
    pub difficulty_bins: usize,
    /// How the step searches propose, score and choose.
    pub search: SearchSettings,
}

/// When training state is saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointSettings {
    /// A checkpoint every this many steps of each phase (and always at a phase's end and on Ctrl-C).
    pub every: u64,
    /// Checkpoints kept on disk (the newest ones).
    pub keep: usize,
}

impl Default for TaskSettings {
    fn default() -> Self {
        TaskSettings {
            numbers: 3,
            train_problems: 50_000,
            eval_problems: 500,
            curriculum: Vec::new(),
            sft_numbers: Vec::new(),
        }
    }
}

impl Default for ModelShape {
    fn default() -> Self {
        ModelShape {
            hidden_size: 128,
            layers: 4,
            heads: 4,
            kv_heads: 2,
            intermediate_size: 384,
            context: 128,
            tokenizer: TokenizerKind::Bpe,
            bpe_vocab: 512,
        }
    }
}

/// The searches the demo's policy initialisation writes out, as Stream of Search mixed them: depth-first by
/// either heuristic, breadth-first with beams of 3 and 5.
const DEMO_TRACES: [&str; 4] = ["dfs-target", "dfs-factors", "bfs3-factors", "bfs5-target"];

impl Default for SftSettings {
    fn default() -> Self {
        SftSettings {
            steps: 1500,
            batch_size: 32,
            lr: 3e-3,
            weight_decay: 0.01,
            traces: DEMO_TRACES.iter().map(|t| t.parse().expect("the demo's trace kinds parse")).collect(),
            stream_max_lines: 256,
            proposer_every: 0,
            eval_every: 0,
        }
    }
}

impl Default for EvalSettings {
    fn default() -> Self {
        EvalSettings {
            every: 50,
            temperature: 1.0,
            budgets: vec![1, 2, 4, 8, 16, 32, 64],
            search_methods: Method::SEARCHES.to_vec(),
            step_aggregation: StepAggregation::Last,
            difficulty_bins: 4,
            search: SearchSettings::default(),
        }
    }
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        CheckpointSettings { every: 50, keep: 2 }
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            seed: 1,
            init_from: None,
            max_new_tokens: 96,
            task: TaskSettings::default(),
            model: ModelShape::default(),
            sft: SftSettings::default(),
            rl: RlSettings::default(),
            value_model: ValueModelSettings::default(),
            eval: EvalSettings::default(),
            checkpoint: CheckpointSettings::default(),
        }
    }
}

impl RunConfig {
    /// The longer, stronger run of `selfplay demo --full` (about seven hours on 2 cores, resumable across
    /// sessions): Countdown with four numbers, learning to search as the demo does (Stream of Search streams,
    /// BPE), at the scale the issue allows: 4.8M parameters, completions of up to 512 tokens, 12 000 SFT steps
    /// (about 2.7 epochs of the 190 000 streams that fit) measured every 1 000, then 720 GRPO steps at a
    /// constant learning rate measured every 20 (the train-time fit's points span 1.5 decades of RL FLOPs).
    /// The sampling sweep stops at 16 and the step searches are left out: at these lengths each costs hours.
    pub fn full() -> Self {
        let default = RunConfig::default();
        RunConfig {
            max_new_tokens: 512,
            task: TaskSettings { numbers: 4, train_problems: 400_000, ..default.task },
            model: ModelShape {
                hidden_size: 256,
                layers: 6,
                heads: 8,
                kv_heads: 4,
                intermediate_size: 768,
                context: 544,
                tokenizer: TokenizerKind::Bpe,
                bpe_vocab: 1024,
            },
            sft: SftSettings { steps: 12_000, lr: 2e-3, stream_max_lines: 512, eval_every: 1000, ..default.sft },
            rl: RlSettings { steps: 720, ..default.rl },
            eval: EvalSettings { every: 20, budgets: vec![1, 4, 16], search_methods: Vec::new(), ..default.eval },
            ..default
        }
    }

    /// The whole loop at toy size (a few seconds on one core, every stage and artefact exercised): for tests
    /// and examples.
    pub fn tiny() -> Self {
        RunConfig {
            max_new_tokens: 24,
            task: TaskSettings { numbers: 3, train_problems: 200, eval_problems: 12, ..TaskSettings::default() },
            model: ModelShape {
                hidden_size: 32,
                layers: 1,
                heads: 2,
                kv_heads: 1,
                intermediate_size: 64,
                context: 80,
                tokenizer: TokenizerKind::Char,
                ..ModelShape::default()
            },
            sft: SftSettings { steps: 3, batch_size: 4, traces: vec![TraceKind::Optimal], ..SftSettings::default() },
            rl: RlSettings { steps: 2, prompts_per_step: 2, group_size: 3, ..RlSettings::default() },
            eval: EvalSettings { every: 1, budgets: vec![1, 2], ..EvalSettings::default() },
            checkpoint: CheckpointSettings { every: 1, keep: 2 },
            ..RunConfig::default()
        }
    }

    /// Reads a TOML file; absent keys keep their defaults, unknown keys are an error.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let config: RunConfig = read_toml(path)?;
        config.validate()?;
        Ok(config)
    }

    /// Every default written out, as `--print-config` shows it.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        Ok(toml::to_string(self)?)
    }

    /// Rejects settings no run can use, before any work starts: each would otherwise fail (or, worse, quietly
    /// do nothing) only once the run reaches the stage that reads it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.rl.validate()?;
        let positive = |x: f32| x.is_finite() && x > 0.0;
        let non_negative = |x: f32| x.is_finite() && x >= 0.0;
        let value = &self.value_model;
        let bpe_vocab = (MIN_BPE_VOCAB..=MAX_BPE_VOCAB).contains(&self.model.bpe_vocab);
        let curriculum = &self.task.curriculum;
        let countable = |counts: &[usize]| counts.iter().all(|&n| Self::task_of(n).config.validate().is_ok());
        let can_propose = self.sft.proposer_every > 0 || self.init_from.is_some();
        let checks: [(bool, &'static str); 28] = [
            (self.task.train_problems > 0, "task.train_problems must be at least 1"),
            (self.task.eval_problems > 0, "task.eval_problems must be at least 1"),
            (self.max_new_tokens > 0, "max_new_tokens must be at least 1"),
            (countable(curriculum), "task.curriculum's counts of numbers must each lie between 1 and 6"),
            (countable(&self.task.sft_numbers), "task.sft_numbers' counts of numbers must each lie between 1 and 6"),
            (
                self.rl.steps == 0 || curriculum.len() as u64 <= self.rl.steps,
                "task.curriculum must have no more stages than rl.steps",
            ),
            (
                self.model.tokenizer == TokenizerKind::Char || bpe_vocab,
                "model.bpe_vocab must lie between MIN_BPE_VOCAB = 259 and MAX_BPE_VOCAB = 65536",
            ),
            (self.sft.batch_size > 0, "sft.batch_size must be at least 1"),
            (positive(self.sft.lr), "sft.lr must be a positive number"),
            (non_negative(self.sft.weight_decay), "sft.weight_decay must be a non-negative number"),
            (!self.sft.traces.is_empty(), "sft.traces must name at least one trace kind"),
            (self.sft.stream_max_lines > 0, "sft.stream_max_lines must be at least 1"),
            (
                !self.rl.propose.is_on() || self.rl.steps == 0 || can_propose,
                "rl.propose needs a policy that proposes: set sft.proposer_every (or start from init_from)",
            ),
            (self.eval.every > 0, "eval.every must be at least 1"),
            (non_negative(self.eval.temperature), "eval.temperature must be a non-negative number"),
            (!self.eval.budgets.is_empty(), "eval.budgets must hold at least one budget"),
            (!self.eval.budgets.contains(&0), "eval.budgets must each be at least 1"),
            (self.eval.budgets.iter().all(|&b| b <= MAX_BUDGET), "eval.budgets must each be at most MAX_BUDGET = 4096"),
            (self.checkpoint.every > 0, "checkpoint.every must be at least 1"),
            (self.checkpoint.keep > 0, "checkpoint.keep must be at least 1"),
            (
                self.eval.search_methods.iter().all(|m| m.is_search()),
                "eval.search_methods must be beam, mcts or gumbel",
            ),
            // The value model's settings matter only when it is trained.
            (!value.enabled || value.problems > 0, "value_model.problems must be at least 1"),
            (!value.enabled || value.samples_per_problem > 0, "value_model.samples_per_problem must be at least 1"),
            (!value.enabled || value.steps > 0, "value_model.steps must be at least 1 (an untrained judge)"),
            ((1..=1000).contains(&self.eval.difficulty_bins), "eval.difficulty_bins must be from 1 to 1000"),
            (
                !value.enabled || value.rollouts <= MAX_BUDGET as usize,
                "value_model.rollouts must be at most 4096 (continuations per step)",
            ),
            (!value.enabled || value.batch_size > 0, "value_model.batch_size must be at least 1"),
            (!value.enabled || positive(value.lr), "value_model.lr must be a positive number"),
        ];
        if let Some((_, message)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(ConfigError::Invalid(message));
        }
        self.eval.search.validate()?;
        self.task().config.validate()?;
        self.model_config(&CharTokenizer::ascii()).validate()?;
        self.check_context()
    }

    /// Every rollout and evaluation feeds the model a prompt (after its BOS token) and up to `max_new_tokens`
    /// more, so the context must hold the longest prompt the task can pose plus that many. The longest prompt is
    /// the task's own rendering of the widest problem its settings allow: the most numbers (`task.numbers`, a
    /// curriculum's stage or policy initialisation's), every number and the target at their largest. (SFT traces
    /// are checked against the context once they exist: [`RunConfig::check_sequence`].)
    fn check_context(&self) -> Result<(), ConfigError> {
        let most_numbers = self.task.counts().max().unwrap_or(self.task.numbers);
        let task = Self::task_of(most_numbers);
        let widest =
            CountdownProblem { nums: vec![task.config.max_num; task.config.max_count], target: task.config.max_target };
        let prompt = 1 + task.prompt(&widest).len();
        let needed = prompt.saturating_add(self.max_new_tokens);
        if self.model.context < needed {
            let what =
                format!("prompts of up to {prompt} tokens (BOS included) and max_new_tokens = {}", self.max_new_tokens);
            return Err(ConfigError::ContextTooShort { context: self.model.context, needed, what });
        }
        Ok(())
    }

    /// Fails unless a sequence of `tokens` tokens (`what` says which, for the message) fits in the context.
    pub fn check_sequence(&self, tokens: usize, what: &str) -> Result<(), ConfigError> {
        if self.model.context < tokens {
            return Err(ConfigError::ContextTooShort {
                context: self.model.context,
                needed: tokens,
                what: what.into(),
            });
        }
        Ok(())
    }

    /// The task: Countdown with `task.numbers` numbers per problem.
    pub fn task(&self) -> CountdownTask {
        Self::task_of(self.task.numbers)
    }

    /// Countdown with `n` numbers per problem.
    pub fn task_of(n: usize) -> CountdownTask {
        CountdownTask {
            config: CountdownConfig { min_count: n, max_count: n, ..CountdownConfig::default() },
            ..CountdownTask::default()
        }
    }

    /// The count of numbers of RL step `step` (from 1 to `rl.steps`): the curriculum's stage that step falls in,
    /// or `task.numbers` without a curriculum.
    pub fn rl_numbers(&self, step: u64) -> usize {
        let stages = &self.task.curriculum;
        if stages.is_empty() || self.rl.steps == 0 {
            return self.task.numbers;
        }
        let stage = (step.saturating_sub(1) as u128 * stages.len() as u128 / self.rl.steps as u128) as usize;
        stages[stage.min(stages.len() - 1)]
    }

    /// The transformer's config for `tokenizer`'s vocabulary.
    pub fn model_config(&self, tokenizer: &dyn Tokenizer) -> ModelConfig {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_defaults_read_back_identically() {
        for config in [RunConfig::default(), RunConfig::full()] {
            let text = config.to_toml().unwrap();
            let back: RunConfig = toml::from_str(&text).unwrap();
            assert_eq!(back, config);
            back.validate().unwrap();
        }
    }

    /// The shipped example configs parse, validate, and say what their comments say.
    #[test]
    fn shipped_configs_are_valid() {
        let read = |name: &str| {
            let config =
                RunConfig::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs").join(name)).unwrap();
            config.validate().unwrap();
            config
        };
        let optimal = read("demo_optimal.toml");
        assert_eq!(optimal.sft.traces, [TraceKind::Optimal]);
        assert_eq!(
            (optimal.max_new_tokens, optimal.model.context, optimal.model.tokenizer),
            (48, 96, TokenizerKind::Char)
        );
        assert_eq!((optimal.rl.steps, optimal.eval.every), (400, 25));
        let expert = read("expert_iteration_mcts.toml");
        assert_eq!(expert.rl.algorithm, crate::o1::rl::Algorithm::ExpertIteration);
        assert_eq!(expert.rl.rollouts, Method::Mcts);
        assert_eq!((&expert.sft, &expert.model), (&optimal.sft, &optimal.model), "the optimal-trace demo's start");
        let streams = read("search_streams.toml");
        assert_eq!(streams.sft.traces, RunConfig::default().sft.traces, "the demo's searches");
        assert_eq!((streams.max_new_tokens, streams.model.context), (128, 160));
        assert_eq!((streams.model.tokenizer, streams.rl.steps), (TokenizerKind::Char, 400));
        let prm = read("process_reward.toml");
        assert_eq!((prm.rl.steps, prm.value_model.enabled, prm.value_model.rollouts), (0, true, 4));
        assert_eq!(prm.eval.step_aggregation, StepAggregation::Min);
        assert_eq!((&prm.model, prm.max_new_tokens), (&RunConfig::default().model, 96), "the demo's policy");
        let full_optimal = read("full_optimal.toml");
        assert_eq!((full_optimal.task.numbers, full_optimal.max_new_tokens, full_optimal.model.layers), (4, 64, 4));
        assert_eq!((full_optimal.sft.steps, full_optimal.sft.batch_size, full_optimal.rl.steps), (3000, 64, 300));
        assert_eq!(full_optimal.sft.traces, [TraceKind::Optimal]);
        for config in [&optimal, &expert, &streams, &full_optimal] {
            assert_eq!(config.rl.min_lr_ratio, 0.0, "measured with the rate decaying to nothing");
        }
        for config in [RunConfig::default(), RunConfig::full()] {
            assert_eq!(config.rl.min_lr_ratio, 1.0, "the demo's and the full run's constant rate");
        }
    }

    #[test]
    fn partial_files_keep_defaults_and_unknown_keys_fail() {
        let config: RunConfig = toml::from_str("seed = 7\n[sft]\nsteps = 10\n").unwrap();
        assert_eq!(config.seed, 7);
        assert_eq!(config.sft.steps, 10);
        assert_eq!(config.sft.batch_size, SftSettings::default().batch_size);
        assert!(toml::from_str::<RunConfig>("[sft]\nstep = 10\n").is_err());
        let mixed: RunConfig = toml::from_str("[sft]\ntraces = [\"optimal\", \"bfs3-factors\"]\n").unwrap();
        assert_eq!(mixed.sft.traces[1].to_string(), "bfs3-factors");
        let refused = toml::from_str::<RunConfig>("[sft]\ntraces = [\"bfs0-target\"]\n").unwrap_err().to_string();
        assert!(refused.contains("unknown trace style \"bfs0-target\""), "{refused}");
        assert!(toml::from_str::<RunConfig>("sede = 7\n").is_err());
    }

    /// Every setting that no run can use is refused by `validate`, each with a message naming its key.
    #[test]
    fn unusable_settings_are_rejected_with_their_key() {
        let d = RunConfig::default();
        let enabled = ValueModelSettings { enabled: true, ..ValueModelSettings::default() };
        let table: Vec<(RunConfig, &str)> = vec![
            (RunConfig { max_new_tokens: 0, ..d.clone() }, "max_new_tokens must be at least 1"),
            (
                RunConfig { task: TaskSettings { train_problems: 0, ..d.task.clone() }, ..d.clone() },
                "task.train_problems",
            ),
            (
                RunConfig { task: TaskSettings { eval_problems: 0, ..d.task.clone() }, ..d.clone() },
                "task.eval_problems",
            ),
            (RunConfig { task: TaskSettings { numbers: 9, ..d.task.clone() }, ..d.clone() }, "[task]"),
            (
                RunConfig {
                    model: ModelShape {
                        tokenizer: TokenizerKind::Bpe,
                        bpe_vocab: MIN_BPE_VOCAB - 1,
                        ..d.model.clone()
                    },
                    ..d.clone()
                },
                "model.bpe_vocab must lie between MIN_BPE_VOCAB = 259 and MAX_BPE_VOCAB = 65536",
            ),
            (
                RunConfig {
                    model: ModelShape {
                        tokenizer: TokenizerKind::Bpe,
                        bpe_vocab: MAX_BPE_VOCAB + 1,
                        ..d.model.clone()
                    },
                    ..d.clone()
                },
                "model.bpe_vocab",
            ),
            (RunConfig { sft: SftSettings { batch_size: 0, ..d.sft.clone() }, ..d.clone() }, "sft.batch_size"),
            (RunConfig { sft: SftSettings { lr: f32::NAN, ..d.sft.clone() }, ..d.clone() }, "sft.lr"),
            (RunConfig { sft: SftSettings { lr: -1e-3, ..d.sft.clone() }, ..d.clone() }, "sft.lr"),
            (RunConfig { sft: SftSettings { lr: 0.0, ..d.sft.clone() }, ..d.clone() }, "sft.lr"),
            (RunConfig { sft: SftSettings { weight_decay: -0.1, ..d.sft.clone() }, ..d.clone() }, "sft.weight_decay"),
            (RunConfig { sft: SftSettings { traces: vec![], ..d.sft.clone() }, ..d.clone() }, "sft.traces"),
            (
                RunConfig { sft: SftSettings { stream_max_lines: 0, ..d.sft.clone() }, ..d.clone() },
                "sft.stream_max_lines",
            ),
            (RunConfig { eval: EvalSettings { every: 0, ..d.eval.clone() }, ..d.clone() }, "eval.every"),
            (
                RunConfig { eval: EvalSettings { temperature: f32::NAN, ..d.eval.clone() }, ..d.clone() },
                "eval.temperature",
            ),
            (RunConfig { eval: EvalSettings { budgets: vec![], ..d.eval.clone() }, ..d.clone() }, "eval.budgets"),
            (RunConfig { eval: EvalSettings { budgets: vec![1, 0], ..d.eval.clone() }, ..d.clone() }, "eval.budgets"),
            (
                RunConfig { eval: EvalSettings { budgets: vec![1, MAX_BUDGET + 1], ..d.eval.clone() }, ..d.clone() },
                "at most MAX_BUDGET = 4096",
            ),
            (
                RunConfig {
                    eval: EvalSettings { search_methods: vec![Method::Greedy], ..d.eval.clone() },
                    ..d.clone()
                },
                "eval.search_methods",
            ),
            (RunConfig { checkpoint: CheckpointSettings { every: 0, keep: 2 }, ..d.clone() }, "checkpoint.every"),
            (RunConfig { checkpoint: CheckpointSettings { every: 5, keep: 0 }, ..d.clone() }, "checkpoint.keep"),
            (RunConfig { rl: RlSettings { lr: f32::NAN, ..d.rl.clone() }, ..d.clone() }, "lr"),
            (RunConfig { rl: RlSettings { group_size: 0, ..d.rl.clone() }, ..d.clone() }, "group_size"),
            (RunConfig { model: ModelShape { heads: 3, ..d.model.clone() }, ..d.clone() }, "[model]"),
            (RunConfig { model: ModelShape { context: 4, ..d.model.clone() }, ..d.clone() }, "model.context = 4"),
            (
                RunConfig { value_model: ValueModelSettings { problems: 0, ..enabled.clone() }, ..d.clone() },
                "value_model.problems",
            ),
            (
                RunConfig {
                    value_model: ValueModelSettings { samples_per_problem: 0, ..enabled.clone() },
                    ..d.clone()
                },
                "value_model.samples_per_problem",
            ),
            (
                RunConfig { value_model: ValueModelSettings { steps: 0, ..enabled.clone() }, ..d.clone() },
                "value_model.steps",
            ),
            (
                RunConfig { value_model: ValueModelSettings { rollouts: 1 << 20, ..enabled.clone() }, ..d.clone() },
                "value_model.rollouts",
            ),
            (
                RunConfig { value_model: ValueModelSettings { batch_size: 0, ..enabled.clone() }, ..d.clone() },
                "value_model.batch_size",
            ),
            (
                RunConfig { value_model: ValueModelSettings { lr: -1.0, ..enabled.clone() }, ..d.clone() },
                "value_model.lr",
            ),
        ];
        for (config, key) in table {
            let message = config.validate().expect_err(key).to_string();
            assert!(message.contains(key), "{key}: {message}");
        }
        // The value model's settings are not read (so not checked) when it is not trained; nor is the BPE's
        // vocabulary under the character tokenizer.
        RunConfig { value_model: ValueModelSettings { steps: 0, ..ValueModelSettings::default() }, ..d.clone() }
            .validate()
            .unwrap();
        let char_level = ModelShape { tokenizer: TokenizerKind::Char, bpe_vocab: 0, ..d.model.clone() };
        RunConfig { model: char_level, ..d }.validate().unwrap();
    }

    /// The context must hold the widest prompt (BOS, every number and the target at their widest) plus
    /// `max_new_tokens`: exactly that passes, one token less fails naming the key and the minimum.
    #[test]
    fn the_context_must_hold_the_widest_prompt_and_the_completion() {
        let d = RunConfig::default();
        // "99 99 99 -> 100\n" after BOS: 17 tokens (characters: the BPE never needs more), plus the new ones.
        let needed = 17 + d.max_new_tokens;
        RunConfig { model: ModelShape { context: needed, ..d.model.clone() }, ..d.clone() }.validate().unwrap();
        let short = RunConfig { model: ModelShape { context: needed - 1, ..d.model.clone() }, ..d.clone() };
        assert_eq!(
            short.validate().unwrap_err().to_string(),
            format!(
                "model.context = {} is too short: prompts of up to 17 tokens (BOS included) and max_new_tokens = {} \
                 need at least {needed} tokens",
                needed - 1,
                d.max_new_tokens
            )
        );
    }
}
