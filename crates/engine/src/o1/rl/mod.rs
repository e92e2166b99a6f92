//! Reinforcement learning from verified rewards: GRPO (the default), RLOO, PPO with GAE, and expert
//! iteration, selected by [`RlSettings::algorithm`].
//!
//! A step is sampling then learning. `rollouts` draws training problems, samples `group_size` completions
//! for each and scores them with the task's verifier; each algorithm turns the scored samples into training
//! rows (`policy_gradient`, `expert_iteration`); `update` writes the loss over them, the same for every algorithm,
//! and runs it through the engine's one training path ([`crate::train::Trainer`]); [`crate::train::Layout`] moves
//! numbers between the model's positions and the learn crate's padded matrices.
//!
//! A step is a pure function of the model's weights, the optimiser's state, the seed, the step index and
//! the inputs: its random generator is seeded from `(seed, step)` alone, so a run resumed from a
//! checkpoint of model and optimiser continues bit-identically.

mod config;
mod error;
mod expert_iteration;
mod metrics;
mod policy_gradient;
mod proposal_stats;
mod proposing;
mod rollouts;
mod stage;
mod update;

#[cfg(test)]
pub(crate) mod tests;

use std::time::Instant;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use selfplay_model::HostAccess;
use selfplay_model::Model;
use selfplay_model::tokenizer::Tokenizer;
use selfplay_tasks::{Propose, Task};

pub use config::{Aggregation, Algorithm, MAX_PROMPT_POOL, ProposeSettings, RlSettings};
pub use error::RlError;
pub use metrics::StepMetrics;
pub use proposal_stats::ProposalStats;
pub use stage::RlStage;
pub use update::Terms;

use selfplay_collective::Collective;

use crate::optimizer::ModelOptimizer;
use crate::train::Trainer;
use rollouts::{Rollouts, Step};

/// Mixes the step index into the seed of the step's generator (an odd 64-bit constant, so distinct steps
/// give distinct seeds).
const STEP_MIX: u64 = 0x2545_F491_4F6C_DD1D;

/// Runs RL step `step` (1-based in the demo; any value works) on `problems`, the training set.
///
/// `reference` is the frozen policy the KL penalty pulls toward (the SFT model): required when
/// `settings.kl_coef > 0`; when given, `kl_ref` is measured even with the penalty off (one more forward
/// pass per step; pass `None` to skip it). `optimizer` is normally built from
/// [`RlSettings::optim_config`]; `trainer` keeps the gradient buffer from step to step. Over several ranks
/// (`collective`), each attempts its share of the step's problems and trains on its share of every minibatch. Completions are at most `max_new_tokens` long.
/// With `[rl.propose]` on, `proposer` (the task's, required then) lets the policy write some of the step's
/// problems itself.
#[allow(clippy::too_many_arguments)]
pub fn step<B: HostAccess, T: Task>(
    model: &mut Model<B>,
    reference: Option<&Model<B>>,
    optimizer: &mut ModelOptimizer,
    trainer: &mut Trainer,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    settings: &RlSettings,
    max_new_tokens: usize,
    seed: u64,
    step: u64,
    collective: &dyn Collective,
    proposer: Option<&dyn Propose<Problem = T::Problem>>,
) -> Result<StepMetrics, RlError> {
    settings.validate()?;
    if problems.is_empty() {
        return Err(RlError::NoProblems);
    }
    if max_new_tokens == 0 {
        return Err(RlError::InvalidSetting { name: "max_new_tokens", reason: "must be at least 1" });
    }
    if settings.kl_coef > 0.0 && reference.is_none() {
        return Err(RlError::MissingReference);
    }
    if let Some(reference) = reference {
        let (policy, reference) = (model.config().vocab_size, reference.config().vocab_size);
        if policy != reference {
            return Err(RlError::ReferenceMismatch { policy, reference });
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ step.wrapping_mul(STEP_MIX));
    let rollouts = if settings.propose.is_on() {
        let proposer = proposer.ok_or(RlError::InvalidSetting {
            name: "propose.share",
            reason: "this task offers no proposer: set it to 0",
        })?;
        let attempts = Step { model: &*model, tokenizer, task, problems, settings, max_new_tokens, collective };
        proposing::collect(attempts, proposer, &mut rng, seed ^ step)?
    } else {
        Rollouts::collect(
            model,
            tokenizer,
            task,
            problems,
            settings,
            max_new_tokens,
            &mut rng,
            seed ^ step,
            collective,
        )?
    };
    let started = Instant::now();
    let (rows, plan) = match settings.algorithm {
        Algorithm::Grpo | Algorithm::Rloo => {
            policy_gradient::prepare_grouped(&rollouts, reference, settings, max_new_tokens)?
        }
        Algorithm::Ppo => policy_gradient::prepare_ppo(&rollouts, reference, settings, max_new_tokens)?,
        Algorithm::ExpertIteration => expert_iteration::prepare(&rollouts, reference, settings, max_new_tokens)?,
    };
    let summary = update::run(model, optimizer, trainer, collective, &rows, &plan, &mut rng)?;
    let trained = rows.iter().filter(|r| r.learn_policy).count();
    Ok(StepMetrics::new(step, &rollouts, &summary, trained, started.elapsed().as_secs_f64()))
}
