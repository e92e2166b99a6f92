//! The first half of every algorithm's step: draw training problems, attempt each (a group of samples
//! through the batched generation loop, or a step-level search), and score every attempt with the task's
//! verifier.

use std::time::Instant;

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use selfplay_collective::{Collective, gather_concat, shard};
use selfplay_model::HostAccess;
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{FinishReason, Generation, Model};
use selfplay_tasks::Task;

use super::config::RlSettings;
use super::error::RlError;
use super::proposal_stats::ProposalStats;
use crate::rollout::step_search::cost::forward_flops;
use crate::rollout::step_search::solve;
use crate::rollout::{Method, completion_text, encode_prompt, row_seed, sample};

/// One sampled completion and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scored {
    /// The prompt (group) it was sampled for: an index into [`Rollouts::prompts`].
    pub group: usize,
    pub generation: Generation,
    /// The verifier's reward, plus the format reward and the overlong penalty when they are on.
    pub score: f32,
    /// Whether the verifier accepted the answer.
    pub correct: bool,
}

/// A step's samples, group after group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rollouts {
    /// Each group's prompt tokens (BOS included).
    pub prompts: Vec<Vec<u32>>,
    /// The attempts, in prompt order: `group_size` samples per prompt, or each prompt's search solution.
    pub samples: Vec<Scored>,
    /// Everything attempted, kept or not (with dynamic sampling, the dropped groups too).
    pub drawn: Drawn,
    /// Completion tokens generated to make them (a search proposes many more than it returns; dynamic
    /// sampling's dropped groups count too).
    pub generated_tokens: usize,
    /// Forward FLOPs of the searches (prefix recomputation and the solutions' scoring pass included); 0 for
    /// sampled attempts, whose cost follows from their tokens.
    pub search_flops: f64,
    /// Forward FLOPs of prompt selection (`prompt_pool`): the value head read on every candidate's prompt.
    pub selection_flops: f64,
    /// Wall-clock time of sampling and scoring.
    pub seconds: f64,
    /// What the policy proposed, when it proposes problems (`[rl.propose]`): its group is the last of `prompts`.
    pub proposals: Option<ProposalStats>,
}

/// What a step attempted, before dynamic sampling dropped any group: the train curve's accuracy is over these.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Drawn {
    pub groups: usize,
    pub samples: usize,
    pub correct: usize,
    pub score_sum: f32,
}

/// Mixes a draw's index into the sampling seed of dynamic sampling's later draws (the first keeps the step's).
const DRAW_STREAM: u64 = 0xD7A3_11B5;

impl Rollouts {
    /// The step's rollouts: one draw of `prompts_per_step` problems (`Step::draw`), or, with
    /// `settings.dynamic_sampling` (DAPO), draws until that many groups with mixed scores are found or the
    /// draws run out, the all-equal groups dropped. (With `[rl.propose]` on, `super::proposing` collects instead.)
    #[allow(clippy::too_many_arguments)]
    pub fn collect<B: HostAccess, T: Task>(
        model: &Model<B>,
        tokenizer: &dyn Tokenizer,
        task: &T,
        problems: &[T::Problem],
        settings: &RlSettings,
        max_new_tokens: usize,
        rng: &mut ChaCha8Rng,
        sample_seed: u64,
        collective: &dyn Collective,
    ) -> Result<Rollouts, RlError> {
        let started = Instant::now();
        let step = Step { model, tokenizer, task, problems, settings, max_new_tokens, collective };
        if settings.dynamic_sampling == 0 {
            return step.draw(rng, sample_seed);
        }
        let mut kept = Rollouts {
            prompts: Vec::new(),
            samples: Vec::new(),
            drawn: Drawn::default(),
            generated_tokens: 0,
            search_flops: 0.0,
            selection_flops: 0.0,
            seconds: 0.0,
            proposals: None,
        };
        for index in 0..u64::from(settings.dynamic_sampling) {
            let seed = if index == 0 { sample_seed } else { row_seed(sample_seed, index, DRAW_STREAM) };
            kept.keep_mixed(step.draw(rng, seed)?, settings.prompts_per_step);
            if kept.prompts.len() >= settings.prompts_per_step {
                break;
            }
        }
        kept.seconds = started.elapsed().as_secs_f64();
        Ok(kept)
    }

    /// Adds `draw`'s cost and counts, and its groups whose scores differ, until `wanted` groups are kept.
    fn keep_mixed(&mut self, draw: Rollouts, wanted: usize) {
        let d = &draw.drawn;
        self.drawn.groups += d.groups;
        self.drawn.samples += d.samples;
        self.drawn.correct += d.correct;
        self.drawn.score_sum += d.score_sum;
        self.generated_tokens += draw.generated_tokens;
        self.search_flops += draw.search_flops;
        self.selection_flops += draw.selection_flops;
        let mut samples = draw.samples.into_iter().peekable();
        for (group, prompt) in draw.prompts.into_iter().enumerate() {
            let mut members = Vec::new();
            while let Some(sample) = samples.next_if(|s| s.group == group) {
                members.push(sample);
            }
            let mixed = members.iter().any(|s| s.score != members[0].score);
            if mixed && self.prompts.len() < wanted {
                let new_group = self.prompts.len();
                self.prompts.push(prompt);
                self.samples.extend(members.into_iter().map(|s| Scored { group: new_group, ..s }));
            }
        }
    }

    /// Completion tokens generated: the samples', or every token a search proposed.
    pub fn tokens(&self) -> usize {
        self.generated_tokens
    }

    /// Mean score of every attempt (kept or not).
    pub fn reward_mean(&self) -> f32 {
        self.drawn.score_sum / self.drawn.samples.max(1) as f32
    }

    /// Fraction of every attempt (kept or not) the verifier accepted.
    pub fn accuracy(&self) -> f32 {
        self.drawn.correct as f32 / self.drawn.samples.max(1) as f32
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

/// The problems a draw attempts, their prompts, and what choosing them cost.
pub(super) struct Picked<P> {
    /// Each problem's name for seeding its samples (its index in the training set; proposals are named apart).
    pub ids: Vec<u64>,
    pub problems: Vec<P>,
    pub prompts: Vec<Vec<u32>>,
    /// Forward FLOPs of prompt selection (0 without `prompt_pool`).
    pub selection_flops: f64,
}

/// What every draw of one step shares: the policy, the task and its training problems, the settings, the ranks.
pub(super) struct Step<'a, B: HostAccess, T: Task> {
    pub model: &'a Model<B>,
    pub tokenizer: &'a dyn Tokenizer,
    pub task: &'a T,
    /// The generator's training problems.
    pub problems: &'a [T::Problem],
    pub settings: &'a RlSettings,
    pub max_new_tokens: usize,
    pub collective: &'a dyn Collective,
}

// Every field is a shared reference or a number: copying a `Step` whatever `B` and `T` are.
impl<B: HostAccess, T: Task> Clone for Step<'_, B, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<B: HostAccess, T: Task> Copy for Step<'_, B, T> {}

impl<B: HostAccess, T: Task> Step<'_, B, T> {
    /// `wanted` problems drawn with `rng` (uniformly, with replacement). With `prompt_pool` K > 1, the `wanted` of K
    /// times as many candidates whose estimated success rate p (the value head on the prompt, clamped to [0, 1])
    /// has the largest p(1 − p), kept in the order drawn; ties go to the candidate drawn first. Every rank reads
    /// the same estimates from the same weights (the forward pass is repeated, not split: it is a few short
    /// prompts), so all pick alike.
    pub fn pick(&self, rng: &mut ChaCha8Rng, wanted: usize) -> Result<Picked<T::Problem>, RlError> {
        let Step { model, tokenizer, task, problems, settings, .. } = *self;
        let pool = wanted * settings.prompt_pool.max(1) as usize;
        let candidates: Vec<usize> = (0..pool).map(|_| (rng.next_u64() % problems.len() as u64) as usize).collect();
        let prompts: Vec<Vec<u32>> = candidates
            .iter()
            .map(|&i| encode_prompt(tokenizer, &task.prompt(&problems[i])))
            .collect::<Result<_, _>>()?;
        if prompts.iter().any(Vec::is_empty) {
            return Err(RlError::EmptyPrompt);
        }
        let picked = |chosen: &[usize], selection_flops| Picked {
            ids: chosen.iter().map(|&c| candidates[c] as u64).collect(),
            problems: chosen.iter().map(|&c| problems[candidates[c]].clone()).collect(),
            prompts: chosen.iter().map(|&c| prompts[c].clone()).collect(),
            selection_flops,
        };
        if pool == wanted {
            return Ok(picked(&(0..pool).collect::<Vec<_>>(), 0.0));
        }
        let selection_flops = prompts.iter().map(|p| forward_flops(model.config(), p.len())).sum();
        let spread: Vec<f32> = prompt_values(model, &prompts)?
            .into_iter()
            .map(|v| if v.is_finite() { v.clamp(0.0, 1.0) * (1.0 - v.clamp(0.0, 1.0)) } else { 0.0 })
            .collect();
        let mut chosen: Vec<usize> = (0..pool).collect();
        chosen.sort_by(|&a, &b| spread[b].total_cmp(&spread[a]));
        chosen.truncate(wanted);
        chosen.sort_unstable();
        Ok(picked(&chosen, selection_flops))
    }

    /// Draws `prompts_per_step` problems with `rng` ([`Step::pick`]) and attempts them ([`Step::attempt`]).
    fn draw(&self, rng: &mut ChaCha8Rng, sample_seed: u64) -> Result<Rollouts, RlError> {
        if self.problems.is_empty() {
            return Err(RlError::NoProblems);
        }
        let picked = self.pick(rng, self.settings.prompts_per_step)?;
        self.attempt(picked, sample_seed)
    }

    /// Attempts each picked problem: with `group_size` samples (row seeds derived from `sample_seed`, the
    /// problem's id and the sample's), or with one step-level search (proposals seeded by `sample_seed`) when
    /// `settings.rollouts` names one. Every attempt is scored ([`RlSettings::shaped_score`]: the verifier's reward,
    /// plus the format reward and the overlong penalty when `settings` turn them on). Over several ranks, each
    /// attempts its [`shard`] of the problems and every rank gets every attempt back, in problem order: the same
    /// rollouts as one process's (each attempt's randomness is named by its problem, not by its batch).
    pub fn attempt(&self, picked: Picked<T::Problem>, sample_seed: u64) -> Result<Rollouts, RlError> {
        let Step { model, tokenizer, task, settings, max_new_tokens, collective, .. } = *self;
        let started = Instant::now();
        let Picked { ids, problems, prompts, selection_flops } = picked;
        let overlong = settings.overlong(max_new_tokens)?;
        let mine = shard(problems.len(), collective.rank(), collective.world_size());
        let (my_ids, my_problems, my_prompts) = (&ids[mine.clone()], &problems[mine.clone()], &prompts[mine]);
        let (groups, generated_tokens, search_flops) = match settings.rollouts {
            Method::Sample => {
                let generation = settings.generation_config(max_new_tokens);
                let groups = sample(model, my_prompts, my_ids, settings.group_size, &generation, sample_seed)?;
                let tokens = groups.iter().flatten().map(|g| g.tokens.len()).sum();
                (groups, tokens, 0.0)
            }
            method => {
                search(model, tokenizer, task, my_problems, my_prompts, method, settings, max_new_tokens, sample_seed)?
            }
        };
        let (groups, generated_tokens, search_flops) = if collective.world_size() == 1 {
            (groups, generated_tokens, search_flops)
        } else {
            let parts = gather_concat(collective, vec![(groups, generated_tokens, search_flops)])?;
            let (tokens, flops) = (parts.iter().map(|p| p.1).sum(), parts.iter().map(|p| p.2).sum());
            (parts.into_iter().flat_map(|p| p.0).collect(), tokens, flops)
        };
        let mut samples = Vec::with_capacity(groups.iter().map(Vec::len).sum());
        for (group, (generations, problem)) in groups.into_iter().zip(&problems).enumerate() {
            for generation in generations {
                let text = completion_text(tokenizer, &generation.tokens)?;
                let reward = task.reward(problem, text.as_bytes());
                let score = settings.shaped_score(reward.value, &text, generation.tokens.len(), overlong.as_ref());
                samples.push(Scored { group, generation, score, correct: reward.verdict.is_correct() });
            }
        }
        let drawn = Drawn {
            groups: prompts.len(),
            samples: samples.len(),
            correct: samples.iter().filter(|s| s.correct).count(),
            score_sum: samples.iter().map(|s| s.score).sum(),
        };
        let seconds = started.elapsed().as_secs_f64();
        Ok(Rollouts {
            prompts,
            samples,
            drawn,
            generated_tokens,
            search_flops,
            selection_flops,
            seconds,
            proposals: None,
        })
    }
}

/// The value head on each prompt's last position: the policy's estimate of the reward it will get for it.
fn prompt_values<B: HostAccess>(model: &Model<B>, prompts: &[Vec<u32>]) -> Result<Vec<f32>, RlError> {
    const ROWS_PER_BATCH: usize = 256;
    let mut values = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(ROWS_PER_BATCH) {
        let batch: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        values.extend(model.forward(&batch)?.iter().map(|out| out.values.last().copied().unwrap_or(f32::NAN)));
    }
    Ok(values)
}

/// One `method` search per prompt; each returned solution as a [`Generation`] whose log-probabilities and
/// values come from one forward pass of `model` over it (what sampling would have recorded at temperature 1),
/// with the tokens the searches generated and their FLOPs.
#[allow(clippy::too_many_arguments)]
fn search<B: HostAccess, T: Task>(
    model: &Model<B>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    prompts: &[Vec<u32>],
    method: Method,
    settings: &RlSettings,
    max_new_tokens: usize,
    seed: u64,
) -> Result<(Vec<Vec<Generation>>, usize, f64), RlError> {
    let solved = solve(
        model,
        tokenizer,
        task,
        problems,
        method,
        settings.search_budget,
        &settings.search,
        max_new_tokens,
        seed,
    )?;
    let sequences: Vec<Vec<u32>> =
        prompts.iter().zip(&solved).map(|(p, s)| [p.as_slice(), &s.completion_tokens].concat()).collect();
    let batch: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
    let stats = model.token_logprobs(&batch)?;
    let eos = model.config().eos_token_id;
    let mut flops = 0.0;
    let mut groups = Vec::with_capacity(solved.len());
    for ((solution, prompt), stats) in solved.iter().zip(prompts).zip(stats) {
        flops += solution.flops + forward_flops(model.config(), prompt.len() + solution.completion_tokens.len());
        let completion = prompt.len() - 1..prompt.len() - 1 + solution.completion_tokens.len();
        let logprobs = stats.logprobs[completion.clone()].to_vec();
        let finish = match solution.completion_tokens.last() {
            Some(&last) if Some(last) == eos => FinishReason::Stop(last),
            _ => FinishReason::MaxTokens,
        };
        groups.push(vec![Generation {
            tokens: solution.completion_tokens.clone(),
            logprobs: logprobs.clone(),
            model_logprobs: logprobs,
            values: stats.values[completion].to_vec(),
            finish,
        }]);
    }
    Ok((groups, solved.iter().map(|s| s.tokens).sum(), flops))
}
