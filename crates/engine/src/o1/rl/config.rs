//! What an RL run is configured with: the algorithm and every knob it reads, with the demo's values as
//! defaults, serialisable as the `[rl]` table of a TOML config.

use selfplay_learn::LossAgg;
use selfplay_learn::advantage::GroupScale;
use selfplay_learn::kl::KlEstimator;
use selfplay_learn::policy::{PpoConfig, RatioLevel};
use selfplay_model::{GenerationConfig, SamplingParams};
use selfplay_reward::{FormatReward, OverlongPenalty};
use serde::{Deserialize, Serialize};

use super::error::RlError;
use crate::optimizer::OptimConfig;
use crate::rollout::Method;
use crate::rollout::step_search::{SearchSettings, StepSearchError};

/// Which learning rule turns the step's rollouts into an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Group-relative policy optimisation: per-prompt groups, advantage = score minus the group mean,
    /// scaled as `group_scale` says (Shao et al. 2024; Dr. GRPO with `group_scale = "none"`).
    #[default]
    Grpo,
    /// REINFORCE leave-one-out: advantage = score minus the mean of the other samples of its group
    /// (Ahmadian et al. 2024), unscaled.
    Rloo,
    /// PPO with GAE: the verifier's score as a reward on the last completion token, the value head recorded
    /// while sampling as the critic, clipped value loss (Schulman et al. 2017; Ouyang et al. 2022).
    Ppo,
    /// Expert iteration (ReST-EM, STaR): keep the verified-correct samples and behaviour-clone them.
    ExpertIteration,
}

impl Algorithm {
    /// The algorithm's name in configs and progress bars (`grpo`, `rloo`, `ppo`, `expert_iteration`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Grpo => "grpo",
            Algorithm::Rloo => "rloo",
            Algorithm::Ppo => "ppo",
            Algorithm::ExpertIteration => "expert_iteration",
        }
    }
}

/// How per-token policy losses are averaged into one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Mean over every completion token of the batch (DAPO; long completions weigh more).
    #[default]
    TokenMean,
    /// Mean over each completion's tokens, then over completions (the original GRPO).
    SeqMeanTokenMean,
    /// Sum over each completion's tokens divided by `max_new_tokens`, then mean over completions
    /// (Dr. GRPO: no length bias, a constant scale whatever the batch).
    SeqMeanTokenSumNorm,
}

/// The largest `[rl] prompt_pool`: candidates beyond it cost forward passes and add little.
pub const MAX_PROMPT_POOL: u32 = 64;

/// Every setting of the RL phase. `Default` is the demo's: GRPO, 1 500 steps of 16 prompts × 8 samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RlSettings {
    /// The learning rule.
    pub algorithm: Algorithm,
    /// RL steps in the run (sets the length of the learning-rate schedule); 0 skips RL, so that a run measures
    /// policy initialisation alone.
    pub steps: u64,
    /// Training problems drawn per step (with replacement).
    pub prompts_per_step: usize,
    /// DAPO's dynamic sampling, for GRPO and RLOO: a group whose samples all score the same (all right or all
    /// wrong) has no advantage and teaches nothing, so it is dropped and more problems are drawn, up to this many
    /// draws of `prompts_per_step` problems in all, until `prompts_per_step` groups with mixed scores are found
    /// (a step with fewer trains on those it found). 0 keeps every group (no filtering); 1 filters the one draw.
    pub dynamic_sampling: u32,
    /// Prompt selection at the edge of competence: draw this many times `prompts_per_step` candidate problems
    /// and keep the `prompts_per_step` whose estimated success rate p has the largest p(1 − p), the problems
    /// whose samples most likely disagree. p is the policy's own value head on the prompt (its expected reward
    /// before a token is written, learned from the RL rollouts; `value_coef` must be above 0), clamped to [0, 1].
    /// 0 or 1 draws `prompts_per_step` problems uniformly (no selection). At most [`MAX_PROMPT_POOL`].
    pub prompt_pool: u32,
    /// Samples per prompt: a GRPO/RLOO group (at least 2), PPO's samples per prompt, expert iteration's
    /// attempts per prompt. Unused when the attempts come from a search.
    pub group_size: usize,
    /// Where the attempts come from: sampling, or (expert iteration from search: ReST-EM / AlphaZero's
    /// "search, then imitate the search") a step-level search per prompt whose verified solution is cloned
    /// (kept when the verifier accepts it, as at test time). The policy gradients need on-policy samples, so
    /// they refuse a search.
    pub rollouts: Method,
    /// Beam width or simulations of each search when `rollouts` names one.
    pub search_budget: u32,
    /// How that search proposes, scores and chooses (`[rl.search]`; the test-time sweep has its own, `[eval.search]`).
    pub search: SearchSettings,
    /// Peak learning rate of AdamW (see [`RlSettings::optim_config`]).
    pub lr: f32,
    /// AdamW's decoupled weight decay (norms and biases are exempt).
    pub weight_decay: f32,
    /// Linear warm-up steps (in optimiser updates) before the cosine decay.
    pub warmup_steps: u64,
    /// Where the cosine decay ends, as a fraction of `lr`: 0 decays to nothing by the last step, 1 (the demo's)
    /// keeps the rate constant after warm-up. On the demo a constant rate keeps accuracy rising through all 1 500
    /// steps (0.648 at the end), where a decay to nothing levels off over the last third (0.610).
    pub min_lr_ratio: f32,
    /// Global gradient-norm clip per update (`inf` disables it).
    pub max_grad_norm: f32,
    /// Sampling temperature of the rollouts (the importance ratios are taken against the model at
    /// temperature 1, whatever this is).
    pub temperature: f32,
    /// Weight of the value head's regression loss. The value head shares the trunk, so a large weight
    /// pulls the policy's features toward value prediction. 0 turns value training off.
    pub value_coef: f32,
    /// PPO only: predictions more than this far from the values recorded while sampling are also scored
    /// clipped and the worse loss counts (pessimistic value clipping); 0 turns it off.
    pub value_clip: f32,
    /// Ratios below `1 − clip_low` are clipped.
    pub clip_low: f32,
    /// Ratios above `1 + clip_high` are clipped (DAPO's clip-higher: above `clip_low` lets unlikely
    /// tokens that pay off grow faster).
    pub clip_high: f32,
    /// Weight of the entropy bonus in the policy loss (0: none).
    pub entropy_coef: f32,
    /// How token losses are averaged.
    pub aggregation: Aggregation,
    /// Weight of the KL penalty to the reference policy (the SFT model); 0 turns it off and needs no
    /// reference.
    pub kl_coef: f32,
    /// The KL estimator.
    pub kl_estimator: KlEstimator,
    /// PPO only: subtract `kl_coef · KL` from each token's reward (InstructGPT) instead of adding it to
    /// the loss.
    pub kl_in_reward: bool,
    /// PPO: discount of the token rewards.
    pub gamma: f32,
    /// PPO: GAE's λ. 1 (verl's default) makes the advantage the Monte-Carlo return minus the value, unbiased
    /// however poor the value head is (and a policy fresh from SFT has an untrained one); lower values
    /// trade that bias for less variance once the value head has learned.
    pub lambda: f32,
    /// PPO: whiten the advantages over the batch (zero mean, unit variance).
    pub whiten_advantages: bool,
    /// GRPO: how centred scores are scaled.
    pub group_scale: GroupScale,
    /// Weight of DAPO's soft overlong penalty, added to the verifier's reward: nothing up to
    /// `max_new_tokens − overlong_buffer` tokens, then a linear ramp down to `−overlong_penalty` at
    /// `max_new_tokens` (length shaping: it warns the policy before truncation cuts an answer off).
    /// 0 turns it off. Correctness (the accuracy, expert iteration's filter) is unaffected.
    pub overlong_penalty: f32,
    /// Tokens over which the overlong penalty ramps (at most `max_new_tokens`).
    pub overlong_buffer: usize,
    /// Weight of the format reward added to the verifier's reward: [`FormatReward`]'s default credits (an
    /// `<answer>…</answer>` pair 0.5, only one 0.2, nothing after it 0.2, non-empty 0.1; at most 1). Dense
    /// where the outcome is sparse, so it can teach the answer format to a policy that rarely produces it.
    /// 0 turns it off. Correctness (the accuracy, expert iteration's filter) is unaffected.
    pub format_weight: f32,
    /// Passes over the step's rollouts (PPO usually takes several; the ratio clip keeps them close to
    /// the sampling policy).
    pub epochs: usize,
    /// Optimiser updates per pass: the rollouts are shuffled and split into this many minibatches.
    pub minibatches: usize,
    /// Self-play problem proposing (`[rl.propose]`): the policy writes some of the step's problems itself.
    pub propose: ProposeSettings,
}

/// Self-play problem proposing (R-Zero, Huang et al. 2025): each step, the policy, under the task's proposer
/// prompt, writes `share × prompts_per_step` problems as one group; the task certifies each (well formed, in its
/// ranges, of the training split, solvable); the certified ones (each distinct problem once) are attempted by
/// the policy as solver, `group_size` samples each, beside the rest of the step's problems from the generator.
/// A proposal's reward is `1 − |2p − 1|` for the share p of its attempts the verifier accepted (highest for a
/// problem solved half the time, the most informative for GRPO), divided by how many times it was proposed in the
/// step (a repeated problem earns no more in all than once); a rejected proposal earns 0. The proposer group
/// learns with the solver groups in the same update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProposeSettings {
    /// Fraction of each step's `prompts_per_step` problems the policy proposes, in [0, 1] (rounded, at least one
    /// proposal when above 0); 0 turns proposing off: every problem comes from the task's generator.
    pub share: f32,
    /// Longest proposal, in tokens (a Countdown problem is one short line).
    pub max_tokens: usize,
    /// R-Zero's repetition penalty, against a proposer collapsing onto one kind of problem: a certified proposal's
    /// reward loses this weight times the share of the step's other proposals of the same shape (the text with its
    /// numbers masked: `61+55-41` and `72+36-6` are alike), floored at 0. 0 turns it off.
    pub repetition_penalty: f32,
}

impl Default for ProposeSettings {
    fn default() -> Self {
        ProposeSettings { share: 0.0, max_tokens: 32, repetition_penalty: 0.0 }
    }
}

impl ProposeSettings {
    /// Whether the policy proposes problems.
    pub fn is_on(&self) -> bool {
        self.share > 0.0
    }

    /// Proposals per step of `prompts_per_step` problems.
    pub fn proposals(&self, prompts_per_step: usize) -> usize {
        if !self.is_on() {
            return 0;
        }
        ((f64::from(self.share) * prompts_per_step as f64).round() as usize).clamp(1, prompts_per_step)
    }
}

impl Default for RlSettings {
    fn default() -> Self {
        RlSettings {
            algorithm: Algorithm::Grpo,
            steps: 1500,
            prompts_per_step: 16,
            dynamic_sampling: 0,
            prompt_pool: 0,
            group_size: 8,
            rollouts: Method::Sample,
            search_budget: 16,
            search: SearchSettings::default(),
            lr: 1e-4,
            weight_decay: 0.0,
            warmup_steps: 0,
            min_lr_ratio: 1.0,
            max_grad_norm: 1.0,
            temperature: 1.0,
            value_coef: 0.1,
            value_clip: 0.2,
            clip_low: 0.2,
            clip_high: 0.28,
            entropy_coef: 0.0,
            aggregation: Aggregation::TokenMean,
            kl_coef: 0.0,
            kl_estimator: KlEstimator::K3,
            kl_in_reward: false,
            gamma: 1.0,
            lambda: 1.0,
            whiten_advantages: true,
            group_scale: GroupScale::GroupStd,
            overlong_penalty: 0.0,
            overlong_buffer: 8,
            format_weight: 0.0,
            epochs: 1,
            minibatches: 1,
            propose: ProposeSettings::default(),
        }
    }
}

/// `Err` naming `name` unless `ok`.
fn require(ok: bool, name: &'static str, reason: &'static str) -> Result<(), RlError> {
    if ok { Ok(()) } else { Err(RlError::InvalidSetting { name, reason }) }
}

impl RlSettings {
    /// Rejects settings that cannot run or make the objective meaningless.
    pub fn validate(&self) -> Result<(), RlError> {
        let finite_non_negative = |x: f32| x.is_finite() && x >= 0.0;
        let unit = |x: f32| (0.0..=1.0).contains(&x);
        require(self.prompts_per_step >= 1, "prompts_per_step", "must be at least 1")?;
        let min_group = match self.algorithm {
            Algorithm::Grpo | Algorithm::Rloo => 2,
            Algorithm::Ppo | Algorithm::ExpertIteration => 1,
        };
        require(
            self.group_size >= min_group,
            "group_size",
            "at least 2 for GRPO and RLOO (they compare samples), 1 otherwise",
        )?;
        require(self.rollouts.is_rollout(), "rollouts", "must be sample, beam, mcts or gumbel")?;
        require(
            self.rollouts == Method::Sample || self.algorithm == Algorithm::ExpertIteration,
            "rollouts",
            "a search's trajectories are off-policy: only expert_iteration learns from them",
        )?;
        require(
            self.dynamic_sampling == 0 || matches!(self.algorithm, Algorithm::Grpo | Algorithm::Rloo),
            "dynamic_sampling",
            "filters groups by their scores: only GRPO and RLOO learn from groups",
        )?;
        require(self.prompt_pool <= MAX_PROMPT_POOL, "prompt_pool", "must be at most 64")?;
        require(
            self.prompt_pool <= 1 || self.value_coef > 0.0,
            "prompt_pool",
            "estimates success rates with the value head: value_coef must be above 0 to train it",
        )?;
        require(self.search_budget >= 1, "search_budget", "must be at least 1")?;
        self.search.validate().map_err(|e| RlError::InvalidSetting {
            name: "search",
            reason: match e {
                StepSearchError::InvalidInput(reason) => reason,
                _ => "rejected by the step search",
            },
        })?;
        require(self.lr.is_finite() && self.lr > 0.0, "lr", "must be finite and positive")?;
        require(finite_non_negative(self.weight_decay), "weight_decay", "must be finite and non-negative")?;
        require((0.0..=1.0).contains(&self.min_lr_ratio), "min_lr_ratio", "must be in [0, 1]")?;
        require(!self.max_grad_norm.is_nan() && self.max_grad_norm > 0.0, "max_grad_norm", "must be positive")?;
        require(self.temperature.is_finite() && self.temperature > 0.0, "temperature", "must be finite and positive")?;
        require(finite_non_negative(self.value_coef), "value_coef", "must be finite and non-negative")?;
        require(finite_non_negative(self.value_clip), "value_clip", "must be finite and non-negative")?;
        require(finite_non_negative(self.clip_low) && self.clip_low < 1.0, "clip_low", "must be in [0, 1)")?;
        require(finite_non_negative(self.clip_high), "clip_high", "must be finite and non-negative")?;
        require(self.entropy_coef.is_finite(), "entropy_coef", "must be finite")?;
        require(finite_non_negative(self.kl_coef), "kl_coef", "must be finite and non-negative")?;
        require(
            !self.kl_in_reward || self.algorithm == Algorithm::Ppo,
            "kl_in_reward",
            "only PPO has token rewards to put the KL in",
        )?;
        require(unit(self.gamma), "gamma", "must be in [0, 1]")?;
        require(unit(self.lambda), "lambda", "must be in [0, 1]")?;
        require(finite_non_negative(self.overlong_penalty), "overlong_penalty", "must be finite and non-negative")?;
        require(finite_non_negative(self.format_weight), "format_weight", "must be finite and non-negative")?;
        require(self.epochs >= 1, "epochs", "must be at least 1")?;
        require(self.minibatches >= 1, "minibatches", "must be at least 1")?;
        self.validate_proposing()
    }

    /// `[rl.propose]`: a share in [0, 1]; when on, sampled GRPO/RLOO groups without dynamic sampling (the proposer
    /// learns from its group's relative rewards, and a proposal's reward comes from its own solver group).
    fn validate_proposing(&self) -> Result<(), RlError> {
        let propose = &self.propose;
        require((0.0..=1.0).contains(&propose.share), "propose.share", "must be in [0, 1]")?;
        require(propose.max_tokens >= 1, "propose.max_tokens", "must be at least 1")?;
        require(
            propose.repetition_penalty.is_finite() && propose.repetition_penalty >= 0.0,
            "propose.repetition_penalty",
            "must be finite and non-negative",
        )?;
        if !propose.is_on() {
            return Ok(());
        }
        require(
            matches!(self.algorithm, Algorithm::Grpo | Algorithm::Rloo) && self.rollouts == Method::Sample,
            "propose.share",
            "the proposer learns from its group's relative rewards: proposing needs sampled GRPO or RLOO",
        )?;
        require(
            self.dynamic_sampling == 0,
            "propose.share",
            "a proposal's reward needs its solver group, which dynamic sampling could drop: set dynamic_sampling = 0",
        )
    }

    /// The optimiser these settings describe; its schedule spans every update of the run
    /// (`steps × epochs × minibatches`).
    pub fn optim_config(&self) -> OptimConfig {
        let updates = self.epochs.max(1) as u64 * self.minibatches.max(1) as u64;
        OptimConfig {
            lr: self.lr,
            weight_decay: self.weight_decay,
            warmup_steps: self.warmup_steps,
            total_steps: self.steps.saturating_mul(updates),
            max_grad_norm: self.max_grad_norm,
            min_lr_ratio: self.min_lr_ratio,
        }
    }

    /// The length shaping added to the verifier's reward (`None` when off); an error when the buffer does
    /// not fit in `max_new_tokens`.
    pub(crate) fn overlong(&self, max_new_tokens: usize) -> Result<Option<OverlongPenalty>, RlError> {
        if self.overlong_penalty == 0.0 {
            return Ok(None);
        }
        OverlongPenalty::new(max_new_tokens, self.overlong_buffer)
            .map(Some)
            .map_err(|_| RlError::InvalidSetting { name: "overlong_buffer", reason: "must be in 1..=max_new_tokens" })
    }

    /// The score RL optimises for one attempt: the verifier's `reward`, plus the format reward and the
    /// overlong penalty (`overlong`, from [`RlSettings::overlong`]) when they are on.
    pub(crate) fn shaped_score(
        &self,
        reward: f32,
        completion: &str,
        tokens: usize,
        overlong: Option<&OverlongPenalty>,
    ) -> f32 {
        let mut score = reward;
        if self.format_weight > 0.0 {
            score += self.format_weight * FormatReward::default().score(completion.as_bytes());
        }
        if let Some(shaping) = overlong {
            score += self.overlong_penalty * shaping.penalty(tokens);
        }
        score
    }

    /// How rollouts are sampled.
    pub fn generation_config(&self, max_new_tokens: usize) -> GenerationConfig {
        GenerationConfig {
            max_new_tokens,
            sampling: SamplingParams { temperature: self.temperature, ..SamplingParams::default() },
            stop_tokens: vec![],
        }
    }

    /// The clipped policy loss's settings.
    pub(crate) fn ppo_config(&self, max_new_tokens: usize) -> PpoConfig {
        PpoConfig {
            clip_low: f64::from(self.clip_low),
            clip_high: f64::from(self.clip_high),
            dual_clip: None,
            ratio: RatioLevel::Token,
            agg: self.loss_agg(max_new_tokens),
            entropy_coef: f64::from(self.entropy_coef),
        }
    }

    /// The aggregation mode in the learn crate's terms.
    pub(crate) fn loss_agg(&self, max_new_tokens: usize) -> LossAgg {
        match self.aggregation {
            Aggregation::TokenMean => LossAgg::TokenMean,
            Aggregation::SeqMeanTokenMean => LossAgg::SeqMeanTokenMean,
            Aggregation::SeqMeanTokenSumNorm => {
                LossAgg::SeqMeanTokenSumNorm { norm: Some(max_new_tokens.max(1) as f64) }
            }
        }
    }

    /// Whether the KL penalty is a term of the loss (rather than off or in PPO's rewards).
    pub(crate) fn kl_in_loss(&self) -> bool {
        self.kl_coef > 0.0 && !self.kl_in_reward
    }
}
