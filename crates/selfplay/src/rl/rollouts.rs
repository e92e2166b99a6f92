//! The first half of every algorithm's step: draw training problems, sample a group of completions for
//! each through the batched generation loop, and score every completion with the task's verifier.

use std::time::Instant;

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{Generation, Model};
use selfplay_tasks::Task;

use super::config::RlSettings;
use super::error::RlError;
use crate::cli::CliError;
use crate::rollout::{completion_text, encode_prompt, sample};

/// One sampled completion and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scored {
    /// The prompt (group) it was sampled for: an index into [`Rollouts::prompts`].
    pub group: usize,
    pub generation: Generation,
    /// The verifier's reward, plus the overlong penalty when that is on.
    pub score: f32,
    /// Whether the verifier accepted the answer.
    pub correct: bool,
}

/// A step's samples, group after group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rollouts {
    /// Each group's prompt tokens (BOS included).
    pub prompts: Vec<Vec<u32>>,
    /// `group_size` samples per prompt, in prompt order.
    pub samples: Vec<Scored>,
    /// Wall-clock time of sampling and scoring.
    pub seconds: f64,
}

impl Rollouts {
    /// Draws `prompts_per_step` problems with `rng` (uniformly, with replacement), samples `group_size`
    /// completions each (row seeds derived from `sample_seed`, the problem's index and the sample's), and
    /// scores them (the verifier's reward, plus the overlong penalty if `settings` has one).
    #[allow(clippy::too_many_arguments)]
    pub fn collect<T: Task>(
        model: &Model,
        tokenizer: &dyn Tokenizer,
        task: &T,
        problems: &[T::Problem],
        settings: &RlSettings,
        max_new_tokens: usize,
        rng: &mut ChaCha8Rng,
        sample_seed: u64,
    ) -> Result<Rollouts, CliError> {
        let started = Instant::now();
        if problems.is_empty() {
            return Err(RlError::NoProblems.into());
        }
        let picked: Vec<usize> =
            (0..settings.prompts_per_step).map(|_| (rng.next_u64() % problems.len() as u64) as usize).collect();
        let prompts: Vec<Vec<u32>> =
            picked.iter().map(|&i| encode_prompt(tokenizer, &task.prompt(&problems[i]))).collect::<Result<_, _>>()?;
        if prompts.iter().any(Vec::is_empty) {
            return Err(RlError::EmptyPrompt.into());
        }
        let overlong = settings.overlong(max_new_tokens)?;
        let ids: Vec<u64> = picked.iter().map(|&i| i as u64).collect();
        let generation = settings.generation_config(max_new_tokens);
        let groups = sample(model, &prompts, &ids, settings.group_size, &generation, sample_seed)?;
        let mut samples = Vec::with_capacity(settings.prompts_per_step * settings.group_size);
        for (group, (generations, &problem)) in groups.into_iter().zip(&picked).enumerate() {
            for generation in generations {
                let reward = task.reward(&problems[problem], completion_text(tokenizer, &generation)?.as_bytes());
                let score = match &overlong {
                    Some(shaping) => {
                        reward.value + settings.overlong_penalty * shaping.penalty(generation.tokens.len())
                    }
                    None => reward.value,
                };
                samples.push(Scored { group, generation, score, correct: reward.verdict.is_correct() });
            }
        }
        Ok(Rollouts { prompts, samples, seconds: started.elapsed().as_secs_f64() })
    }

    /// Completion tokens sampled.
    pub fn tokens(&self) -> usize {
        self.samples.iter().map(|s| s.generation.tokens.len()).sum()
    }

    /// Mean score.
    pub fn reward_mean(&self) -> f32 {
        self.samples.iter().map(|s| s.score).sum::<f32>() / self.samples.len().max(1) as f32
    }

    /// Fraction of samples the verifier accepted.
    pub fn accuracy(&self) -> f32 {
        self.samples.iter().filter(|s| s.correct).count() as f32 / self.samples.len().max(1) as f32
    }

    /// Each sample's score, in sample order.
    pub fn scores(&self) -> Vec<f32> {
        self.samples.iter().map(|s| s.score).collect()
    }

    /// Each sample's group, in sample order.
    pub fn group_ids(&self) -> Vec<u64> {
        self.samples.iter().map(|s| s.group as u64).collect()
    }

    /// Sample `s`'s prompt followed by its completion.
    pub fn sequence(&self, s: &Scored) -> Vec<u32> {
        let mut tokens = self.prompts.get(s.group).cloned().unwrap_or_default();
        tokens.extend_from_slice(&s.generation.tokens);
        tokens
    }
}
