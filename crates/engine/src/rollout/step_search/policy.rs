//! The transformer as a step-level policy, value model and (through the task) verifier.
//!
//! * A step is the tokens up to and including a newline, or up to the end of the completion (EOS, the
//!   completion's token limit, the step's token limit, or the context length). The prompt is step 0 of every
//!   solution, so a prefix names its problem. Countdown traces are lines `a op b=c`, then `<answer>…</answer>`.
//! * Propose: K continuations of the prefix sampled by [`Model::generate`], stopping at the newline. Sample `j` of a
//!   prefix is seeded by `(run seed, hash of the prefix's tokens, j)`: a prefix gets the same proposals whichever
//!   batch, method or budget asks for them, so expansions are cached and reused across searches, while each search
//!   is still charged (in [`Spent`]) what it would have generated alone.
//! * Value: a step's score is its judge's value of the prefix it ends, and the search reads the path's scores
//!   aggregated by [`SearchSettings::step_aggregation`] (`last`, the default: the newest step's score alone).
//!   The judge is the policy's own value head (trained on Monte-Carlo returns in [0, 1]) as recorded while
//!   sampling: a step carries the value the head gave once it had read the step up to its stop token, which comes
//!   with decoding at no extra cost. Or it is a separate value model ([`TransformerPolicy::judged_by`]: an outcome
//!   or process reward model), which reads every proposed step to its end, newline included, as it was trained to
//!   score ([`crate::o1::value_model::step_scores`]): one forward pass over the new step in a prefix-caching KV
//!   cache of its own, all proposals of all prefixes batched, charged to the expansion. The root's value is the
//!   judge's on the whole prompt, recorded when the root is expanded.
//! * Verify: the task's exact reward on the decoded completion (the reward's value, the scale the value head
//!   was trained on). With `check_steps`, a partial solution that the task's step checker rejects is worth 0
//!   instead of its value-head estimate.
//!
//! Proposals are generated for all requested prefixes of all problems together, in chunks of rows, so the
//! matrix products stay wide.
//!
//! KV reuse: with `kv_cache_tokens > 0` every generation call runs in one paged KV cache with prefix caching that
//! the policy keeps for its lifetime. A prefix's full blocks computed by any earlier call (the parent's prefill,
//! or the decode that sampled the step that ends the prefix) are not computed again, so expanding a node costs
//! the tail of its prefix that does not fill a block, plus the new steps. Each expansion is charged what was
//! really computed ([`Spent::expansion`]), and also the positions a search without reuse would have run.

use std::collections::{HashMap, HashSet};

use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{CpuBackend, HostAccess, KvCache};
use selfplay_model::{FinishReason, Generation, GenerationConfig, Model, SamplingParams};
use selfplay_reward::aggregate_steps;
use selfplay_search::language::{Candidate, StepModel};
use selfplay_tasks::Task;
use serde::{Deserialize, Serialize};

use super::cost::{Spent, forward_flops};
use super::{SearchSettings, StepSearchError};
use crate::rollout::sampling::{encode_prompt, row_seed};

/// Rows per call of the generation loop (as in [`crate::rollout::sampling`]): wide products, small KV caches.
const ROWS_PER_CHUNK: usize = 256;

/// Tokens per block of the search's KV cache: a prefix is reused in whole blocks, so an expansion recomputes on
/// average half a block of its prefix. Countdown steps are a few BPE tokens; 8 keeps that tail short without
/// making the per-block work of paged attention dominate.
pub const KV_BLOCK_TOKENS: usize = 8;

/// The prior mass of a proposed step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorWeights {
    /// 1 per sample: merged duplicates give visit-frequency priors.
    Count,
    /// The step's probability under the model at temperature 1 (`exp` of its summed log-probabilities).
    Probability,
}

/// One reasoning step: its tokens, its judge's score and the value the search reads.
#[derive(Debug, Clone)]
pub struct Step {
    /// The step's tokens (its newline or EOS included).
    pub tokens: Vec<u32>,
    /// The judge's value of the prefix this step ends: the policy's head once it had read every token of the step
    /// but the last, or the value model's after the step's last token. NaN for the prompt.
    pub score: f32,
    /// The scores of the path's steps (prompt excluded) up to this one, aggregated
    /// ([`SearchSettings::step_aggregation`]): what the search reads as the prefix's value. NaN for the prompt.
    pub value: f32,
}

impl Step {
    /// A step whose value is its own score (`last` aggregation, or the first step of a path).
    pub fn scored(tokens: Vec<u32>, score: f32) -> Step {
        Step { tokens, score, value: score }
    }
}

/// Steps are the same step when their tokens are: identical samples merge whatever values they recorded.
impl PartialEq for Step {
    fn eq(&self, other: &Self) -> bool {
        self.tokens == other.tokens
    }
}

/// A prefix's K proposals, what generating them cost, and the value head on the prefix.
#[derive(Debug, Clone)]
struct Expansion {
    candidates: Vec<Candidate<Step>>,
    value: f32,
    spent: Spent,
}

/// A prefix to expand: its distinct problem, tokens (prompt included), completion tokens so far and the scores
/// of its steps after the prompt.
struct Missing {
    u: usize,
    tokens: Vec<u32>,
    done: usize,
    scores: Vec<f32>,
}

impl SearchSettings {
    /// The step `tokens` after the prefix `m`, scored `score` by the judge, its value the path's scores aggregated.
    fn step(&self, m: &Missing, tokens: Vec<u32>, score: f32) -> Step {
        let path: Vec<f32> = m.scores.iter().copied().chain([score]).collect();
        let value = aggregate_steps(&path, self.step_aggregation).unwrap_or(score);
        Step { tokens, score, value }
    }
}

/// A solution judged by the task.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// The completion text (without EOS).
    pub text: String,
    /// The reward's value.
    pub score: f32,
    /// The reward's verdict.
    pub correct: bool,
}

/// One generation request: continue `prompt` by at most `limit` tokens from sampling stream `seed`.
struct Row<'p> {
    prompt: &'p [u32],
    limit: usize,
    seed: u64,
}

/// A generated row and how many of its prompt's positions came from the KV cache.
struct Generated {
    generation: Generation,
    cached: usize,
}

/// A model and the prefix-caching KV cache its calls share for the policy's lifetime (`None`: no reuse).
struct CachedModel<'a, B: HostAccess> {
    model: &'a Model<B>,
    kv: Option<KvCache<f32, B>>,
}

/// The transformer over a fixed problem set, as a [`StepModel`] (implemented for `&mut TransformerPolicy`, so
/// searches borrow it and its cache outlives them).
pub struct TransformerPolicy<'a, T: Task, B: HostAccess = CpuBackend> {
    /// The policy: it proposes steps (and judges them unless `judge` is set).
    generator: CachedModel<'a, B>,
    /// A separate value model that scores every proposed step, in its own KV cache.
    judge: Option<CachedModel<'a, B>>,
    tokenizer: &'a dyn Tokenizer,
    task: &'a T,
    settings: SearchSettings,
    max_new_tokens: usize,
    seed: u64,
    newline: u32,
    eos: Option<u32>,
    /// The distinct problems (identical prompts are one problem, searched once).
    unique: Vec<&'a T::Problem>,
    prompts: Vec<Vec<u32>>,
    prompt_index: HashMap<Vec<u32>, usize>,
    /// `of_problem[i]`: the distinct problem that problem `i` is.
    of_problem: Vec<usize>,
    /// Expansions by (K, prefix tokens).
    cache: HashMap<(usize, Vec<u32>), Expansion>,
    root_values: Vec<Option<f32>>,
    /// What the current search has spent on each distinct problem.
    spent: Vec<Spent>,
}

impl<T: Task, B: HostAccess> std::fmt::Debug for TransformerPolicy<'_, T, B> {
    /// The settings and the sizes of what the policy holds (the model and the KV cache are large).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformerPolicy")
            .field("settings", &self.settings)
            .field("max_new_tokens", &self.max_new_tokens)
            .field("seed", &self.seed)
            .field("problems", &self.of_problem.len())
            .field("distinct_problems", &self.unique.len())
            .field("cached_expansions", &self.cache.len())
            .field("kv_cached_blocks", &self.generator.kv.as_ref().map(|kv| kv.cached_blocks()))
            .field("judged_by_value_model", &self.judge.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a, T: Task, B: HostAccess> TransformerPolicy<'a, T, B> {
    /// A policy for `problems`, sampling with `settings` and completions of at most `max_new_tokens` tokens.
    pub fn new(
        model: &'a Model<B>,
        tokenizer: &'a dyn Tokenizer,
        task: &'a T,
        problems: &'a [T::Problem],
        settings: &SearchSettings,
        max_new_tokens: usize,
        seed: u64,
    ) -> Result<Self, StepSearchError> {
        settings.validate()?;
        if max_new_tokens == 0 {
            return Err(StepSearchError::InvalidInput("max_new_tokens must be at least 1"));
        }
        let newline = match tokenizer.encode("\n")?.as_slice() {
            [id] => *id,
            other => return Err(StepSearchError::NewlineToken(other.len())),
        };
        let mut policy = TransformerPolicy {
            generator: CachedModel::new(model, settings.kv_cache_tokens)?,
            judge: None,
            tokenizer,
            task,
            settings: settings.clone(),
            max_new_tokens,
            seed,
            newline,
            eos: tokenizer.eos_id(),
            unique: Vec::new(),
            prompts: Vec::new(),
            prompt_index: HashMap::new(),
            of_problem: Vec::with_capacity(problems.len()),
            cache: HashMap::new(),
            root_values: Vec::new(),
            spent: Vec::new(),
        };
        for problem in problems {
            let prompt = encode_prompt(tokenizer, &task.prompt(problem))?;
            let next = policy.unique.len();
            let u = *policy.prompt_index.entry(prompt.clone()).or_insert(next);
            if u == next {
                policy.unique.push(problem);
                policy.prompts.push(prompt);
            }
            policy.of_problem.push(u);
        }
        policy.root_values = vec![None; policy.unique.len()];
        policy.spent = vec![Spent::default(); policy.unique.len()];
        Ok(policy)
    }

    /// Scores every proposed step (and the roots) with `judge`, a value model reading the policy's tokens, instead
    /// of the policy's own value head; `None` keeps the head. The judge's forward passes run in a KV cache of their
    /// own (`kv_cache_tokens` of it) and are charged to the expansions that ask for them. Call it before the first
    /// search: expansions already made keep their scores.
    pub fn judged_by(mut self, judge: Option<&'a Model<B>>) -> Result<Self, StepSearchError> {
        let Some(judge) = judge else {
            self.judge = None;
            return Ok(self);
        };
        if !judge.weights().has_value_head() {
            return Err(StepSearchError::JudgeWithoutValueHead);
        }
        let (policy_vocab, judge_vocab) = (self.generator.model.config().vocab_size, judge.config().vocab_size);
        if judge_vocab != policy_vocab {
            return Err(StepSearchError::JudgeVocabulary { policy: policy_vocab, judge: judge_vocab });
        }
        let (policy_context, judge_context) =
            (self.generator.model.config().max_position_embeddings, judge.config().max_position_embeddings);
        if judge_context < policy_context {
            return Err(StepSearchError::JudgeContext { policy: policy_context, judge: judge_context });
        }
        self.judge = Some(CachedModel::new(judge, self.settings.kv_cache_tokens)?);
        Ok(self)
    }

    /// Number of distinct problems.
    pub fn num_distinct(&self) -> usize {
        self.unique.len()
    }

    /// The distinct problem each problem is (indices into the distinct problems).
    pub fn distinct_of_problems(&self) -> &[usize] {
        &self.of_problem
    }

    /// The root of distinct problem `u`'s search: its prompt as step 0.
    pub fn root(&self, u: usize) -> Vec<Step> {
        let tokens = self.prompts.get(u).cloned().unwrap_or_default();
        vec![Step::scored(tokens, f32::NAN)]
    }

    /// The completion's token limit.
    pub fn max_new_tokens(&self) -> usize {
        self.max_new_tokens
    }

    /// The candidates per expansion (K).
    pub fn candidates(&self) -> usize {
        self.settings.candidates
    }

    /// The settings.
    pub fn settings(&self) -> &SearchSettings {
        &self.settings
    }

    /// Starts accounting for a new search: nothing spent yet (cached expansions stay).
    pub fn begin_search(&mut self) {
        self.spent.iter_mut().for_each(|s| *s = Spent::default());
    }

    /// What the current search has spent on distinct problem `u`.
    pub fn spent(&self, u: usize) -> Spent {
        self.spent.get(u).copied().unwrap_or_default()
    }

    /// Generates the K proposals of every prefix not yet cached, all in one batch (and the judge's scores of them
    /// in another), charging nothing: a later [`StepModel::propose`] charges the search that asks.
    pub fn prefetch(&mut self, prefixes: &[&[Step]], k: usize) -> Result<(), StepSearchError> {
        // Every prefix not cached, each once.
        let mut missing: Vec<Missing> = Vec::new();
        let mut seen = HashSet::new();
        for prefix in prefixes {
            let u = self.problem_of(prefix)?;
            let key = (k, flatten(prefix));
            if !self.cache.contains_key(&key) && seen.insert(key.1.clone()) {
                let scores = prefix.iter().skip(1).map(|s| s.score).collect();
                missing.push(Missing { u, tokens: key.1, done: completion_len(prefix), scores });
            }
        }
        let limits: Vec<usize> =
            missing.iter().map(|m| self.settings.max_step_tokens.min(self.room(m.tokens.len(), m.done))).collect();
        let mut rows = Vec::with_capacity(missing.len() * k);
        for (m, &limit) in missing.iter().zip(&limits).filter(|(_, l)| **l > 0) {
            rows.extend((0..k).map(|j| Row { prompt: &m.tokens, limit, seed: proposal_seed(self.seed, &m.tokens, j) }));
        }
        let sampling = SamplingParams { temperature: self.settings.temperature, ..SamplingParams::default() };
        let mut generations = self.generator.generate(&rows, sampling, vec![self.newline])?.into_iter();
        drop(rows);
        let mut expansions = Vec::with_capacity(missing.len());
        for (m, limit) in missing.iter().zip(limits) {
            let rows: Vec<Generated> = if limit == 0 { Vec::new() } else { generations.by_ref().take(k).collect() };
            expansions.push(self.expansion(m, &rows));
        }
        self.judge_expansions(&missing, &mut expansions)?;
        for (m, expansion) in missing.into_iter().zip(expansions) {
            if m.u < self.root_values.len() && m.tokens.len() == self.prompts[m.u].len() {
                self.root_values[m.u] = Some(expansion.value);
            }
            self.cache.insert((k, m.tokens), expansion);
        }
        Ok(())
    }

    /// With a judge: scores every distinct proposed prefix (prefix and step) of `expansions` in one batched call,
    /// and each root prefix too, replacing the policy head's scores and values, and adds the judge's cost to each
    /// expansion's. A prefix is read to its last token (the judge's value there is the first entry of a one-token
    /// generation from it), in the judge's KV cache, so a child reuses the blocks its parent's scoring cached.
    fn judge_expansions(&mut self, missing: &[Missing], expansions: &mut [Expansion]) -> Result<(), StepSearchError> {
        let Some(judge) = self.judge.as_mut() else {
            return Ok(());
        };
        // (expansion, whether it is the root prefix itself, tokens): each distinct sequence once per expansion.
        let mut asked: Vec<(usize, bool, Vec<u32>)> = Vec::new();
        for (e, (m, expansion)) in missing.iter().zip(expansions.iter()).enumerate() {
            let mut distinct = HashSet::new();
            if m.tokens.len() == self.prompts[m.u].len() {
                distinct.insert(m.tokens.clone());
                asked.push((e, true, m.tokens.clone()));
            }
            for candidate in &expansion.candidates {
                let sequence = [m.tokens.as_slice(), &candidate.step.tokens].concat();
                if distinct.insert(sequence.clone()) {
                    asked.push((e, false, sequence));
                }
            }
        }
        let rows: Vec<Row<'_>> = asked.iter().map(|(_, _, tokens)| Row { prompt: tokens, limit: 1, seed: 0 }).collect();
        let config = judge.model.config();
        let scored = judge.generate(&rows, SamplingParams::greedy(), Vec::new())?;
        let mut by_sequence: HashMap<(usize, &[u32]), f32> = HashMap::new();
        for ((e, root, tokens), Generated { generation, cached }) in asked.iter().zip(scored) {
            let score = generation.values.first().copied().unwrap_or(f32::NAN);
            let expansion = &mut expansions[*e];
            expansion.spent.add(Spent::judged(config, tokens.len(), cached));
            if *root {
                expansion.value = score;
            } else {
                by_sequence.insert((*e, &tokens[missing[*e].tokens.len()..]), score);
            }
        }
        for (e, (m, expansion)) in missing.iter().zip(expansions.iter_mut()).enumerate() {
            for candidate in &mut expansion.candidates {
                let score = by_sequence.get(&(e, candidate.step.tokens.as_slice())).copied().unwrap_or(f32::NAN);
                candidate.step = self.settings.step(m, std::mem::take(&mut candidate.step.tokens), score);
            }
        }
        Ok(())
    }

    /// The candidates, prefix value and cost of `rows`, the samples of the missing prefix `m` generated together
    /// (its prefix prefilled once). A step is terminal unless it ended its line with room left after it.
    fn expansion(&self, m: &Missing, rows: &[Generated]) -> Expansion {
        let prefix = &m.tokens;
        let cached = rows.first().map_or(0, |r| r.cached);
        let new_tokens: Vec<usize> = rows.iter().map(|r| r.generation.tokens.len()).collect();
        let spent = Spent::expansion(self.generator.model.config(), prefix.len(), cached, &new_tokens);
        let mut candidates = Vec::with_capacity(rows.len());
        for Generated { generation: g, .. } in rows {
            let ends_line = matches!(g.finish, FinishReason::Stop(t) if t == self.newline);
            let weight = match self.settings.priors {
                PriorWeights::Count => 1.0,
                PriorWeights::Probability => g.model_logprobs.iter().sum::<f32>().exp().max(f32::MIN_POSITIVE),
            };
            let score = g.values.last().copied().unwrap_or(f32::NAN);
            candidates.push(Candidate {
                step: self.settings.step(m, g.tokens.clone(), score),
                weight,
                terminal: !ends_line || self.room(prefix.len() + g.tokens.len(), m.done + g.tokens.len()) == 0,
            });
        }
        let value = rows.first().and_then(|r| r.generation.values.first()).copied().unwrap_or(f32::NAN);
        Expansion { candidates, value, spent }
    }

    /// Completes each `(distinct problem, prefix)` greedily to the end of its completion, charging its problem;
    /// a prefix whose completion has no tokens left comes back unchanged.
    pub fn finish_greedily(&mut self, prefixes: Vec<(usize, Vec<Step>)>) -> Result<Vec<Vec<Step>>, StepSearchError> {
        let flat: Vec<Vec<u32>> = prefixes.iter().map(|(_, p)| flatten(p)).collect();
        let limits: Vec<usize> =
            prefixes.iter().zip(&flat).map(|((_, p), f)| self.room(f.len(), completion_len(p))).collect();
        let rows: Vec<Row<'_>> = flat
            .iter()
            .zip(&limits)
            .filter(|(_, l)| **l > 0)
            .map(|(prompt, &limit)| Row { prompt, limit, seed: 0 })
            .collect();
        let mut generations = self.generator.generate(&rows, SamplingParams::greedy(), Vec::new())?.into_iter();
        let mut out = Vec::with_capacity(prefixes.len());
        for (((u, mut steps), prompt), limit) in prefixes.into_iter().zip(&flat).zip(limits) {
            if limit > 0
                && let Some(Generated { generation: g, cached }) = generations.next()
            {
                self.charge(
                    u,
                    Spent::expansion(self.generator.model.config(), prompt.len(), cached, &[g.tokens.len()]),
                );
                // The search has ended: nothing reads this step's value, so no judge is asked for it.
                let score = g.values.last().copied().unwrap_or(f32::NAN);
                steps.push(Step::scored(g.tokens, score));
            }
            out.push(steps);
        }
        Ok(out)
    }

    /// The task's judgement of a solution (its steps after the prompt, up to the first EOS).
    pub fn judge(&self, solution: &[Step]) -> Result<Judged, StepSearchError> {
        let u = self.problem_of(solution)?;
        let text = self.completion_text(solution)?;
        let reward = self.task.reward(self.unique[u], text.as_bytes());
        Ok(Judged { text, score: reward.value, correct: reward.verdict.is_correct() })
    }

    /// The task's answer key of a solution (for voting; `None` when it states no usable answer).
    pub fn answer_key(&self, solution: &[Step]) -> Result<Option<String>, StepSearchError> {
        let u = self.problem_of(solution)?;
        let text = self.completion_text(solution)?;
        Ok(self.task.answer_key(self.unique[u], text.as_bytes()))
    }

    /// Whether the task's step checker rejects one of the solution's complete steps (`false` for a task
    /// without a checker).
    fn has_invalid_step(&self, solution: &[Step]) -> Result<bool, StepSearchError> {
        let u = self.problem_of(solution)?;
        let text = self.completion_text(solution)?;
        Ok(self.task.check_steps(self.unique[u], text.as_bytes()).is_some_and(|p| p.has_invalid_step))
    }

    /// The text of the steps after the prompt, up to the first EOS.
    fn completion_text(&self, solution: &[Step]) -> Result<String, StepSearchError> {
        let mut tokens = self.completion_tokens(solution);
        if tokens.last().is_some_and(|&t| Some(t) == self.eos) {
            tokens.pop();
        }
        Ok(self.tokenizer.decode(&tokens)?)
    }

    /// The solution's completion (every step after the prompt), up to and including its first EOS.
    pub fn completion_tokens(&self, solution: &[Step]) -> Vec<u32> {
        let mut tokens: Vec<u32> = solution.iter().skip(1).flat_map(|s| s.tokens.iter().copied()).collect();
        if let Some(end) = tokens.iter().position(|&t| Some(t) == self.eos) {
            tokens.truncate(end + 1);
        }
        tokens
    }

    /// The distinct problem a prefix belongs to (by its step 0, the prompt).
    pub fn problem_of(&self, prefix: &[Step]) -> Result<usize, StepSearchError> {
        let prompt = prefix.first().ok_or(StepSearchError::UnknownPrompt)?;
        self.prompt_index.get(&prompt.tokens).copied().ok_or(StepSearchError::UnknownPrompt)
    }

    /// Tokens a prefix of `len` tokens, `done` of them generated, may still grow by: the completion's limit and
    /// the model's context length both bound it.
    fn room(&self, len: usize, done: usize) -> usize {
        let context = self.generator.model.config().max_position_embeddings;
        self.max_new_tokens.saturating_sub(done).min(context.saturating_sub(len))
    }

    fn charge(&mut self, u: usize, spent: Spent) {
        if let Some(s) = self.spent.get_mut(u) {
            s.add(spent);
        }
    }
}

impl<'a, B: HostAccess> CachedModel<'a, B> {
    /// `model` with a KV cache of `kv_cache_tokens` tokens (0: none).
    fn new(model: &'a Model<B>, kv_cache_tokens: usize) -> Result<Self, StepSearchError> {
        let kv = match kv_cache_tokens {
            0 => None,
            tokens => {
                // At least the blocks one row of a full context needs ([`Self::chunks`]).
                let one_row = 2 * model.config().max_position_embeddings.div_ceil(KV_BLOCK_TOKENS) + 3;
                let blocks = tokens.div_ceil(KV_BLOCK_TOKENS).max(one_row);
                Some(model.new_prefix_cache(blocks, KV_BLOCK_TOKENS)?)
            }
        };
        Ok(CachedModel { model, kv })
    }

    /// Runs `rows` through the generation loop in chunks ([`Self::chunks`]), in the policy's KV cache when it has
    /// one. A chunk decodes up to its largest limit; rows are then cut back to their own limit, which gives
    /// exactly what a run with that limit samples (a row's stream is its own), so only the kept tokens are charged.
    fn generate(
        &mut self,
        rows: &[Row<'_>],
        sampling: SamplingParams,
        stop_tokens: Vec<u32>,
    ) -> Result<Vec<Generated>, StepSearchError> {
        let mut out = Vec::with_capacity(rows.len());
        for range in self.chunks(rows) {
            let chunk = &rows[range];
            let max_new_tokens = chunk.iter().map(|r| r.limit).max().unwrap_or(0);
            let config = GenerationConfig { max_new_tokens, sampling, stop_tokens: stop_tokens.clone() };
            let prompts: Vec<&[u32]> = chunk.iter().map(|r| r.prompt).collect();
            let seeds: Vec<u64> = chunk.iter().map(|r| r.seed).collect();
            let (generations, cached) = match &mut self.kv {
                Some(kv) => self.model.generate_in(kv, &prompts, &config, &seeds)?,
                None => (self.model.generate(&prompts, &config, &seeds)?, vec![0; chunk.len()]),
            };
            for ((mut g, cached), row) in generations.into_iter().zip(cached).zip(chunk) {
                if g.tokens.len() > row.limit {
                    g.tokens.truncate(row.limit);
                    g.logprobs.truncate(row.limit);
                    g.model_logprobs.truncate(row.limit);
                    g.values.truncate(row.limit);
                    g.finish = FinishReason::MaxTokens;
                }
                out.push(Generated { generation: g, cached });
            }
        }
        Ok(out)
    }

    /// Consecutive runs of `rows` for one generation call each: at most [`ROWS_PER_CHUNK`] rows, and, in the KV
    /// cache, no more blocks than it holds, so a call never runs out of room whatever is cached. A call needs each
    /// distinct prompt's blocks, then per row the chunk's longest completion and a copy-on-write block; every full
    /// block counts twice, because a block whose tokens the cache already holds stays private to its sequence
    /// while the cached twin is pinned until the call ends.
    fn chunks(&self, rows: &[Row<'_>]) -> Vec<std::ops::Range<usize>> {
        let context = self.model.config().max_position_embeddings;
        let capacity = self.kv.as_ref().map_or(usize::MAX, |kv| kv.num_blocks());
        let blocks = |tokens: usize| tokens.div_ceil(KV_BLOCK_TOKENS);
        // What a chunk decodes per row is at most its largest limit, and at most what the context leaves after
        // its shortest prompt.
        let need = |rows: usize, prompt_blocks: usize, max_limit: usize, min_len: usize| {
            let longest = max_limit.min(context.saturating_sub(min_len));
            prompt_blocks.saturating_add(rows.saturating_mul(2 * blocks(longest) + 1))
        };
        let mut ranges = Vec::new();
        let (mut start, mut prompt_blocks, mut max_limit, mut min_len) = (0, 0, 0, usize::MAX);
        let mut prompts: HashSet<&[u32]> = HashSet::new();
        for (i, row) in rows.iter().enumerate() {
            let own_blocks = 2 * blocks(row.prompt.len());
            let with_row = (
                prompt_blocks + if prompts.contains(row.prompt) { 0 } else { own_blocks },
                max_limit.max(row.limit),
                min_len.min(row.prompt.len()),
            );
            if i > start
                && (i - start == ROWS_PER_CHUNK || need(i + 1 - start, with_row.0, with_row.1, with_row.2) > capacity)
            {
                ranges.push(start..i);
                (start, prompt_blocks, max_limit, min_len) = (i, own_blocks, row.limit, row.prompt.len());
                prompts.clear();
            } else {
                (prompt_blocks, max_limit, min_len) = with_row;
            }
            prompts.insert(row.prompt);
        }
        if start < rows.len() {
            ranges.push(start..rows.len());
        }
        ranges
    }
}

impl<T: Task, B: HostAccess> StepModel for &mut TransformerPolicy<'_, T, B> {
    type Step = Step;
    type Error = StepSearchError;

    fn propose(
        &mut self,
        prefixes: &[&[Step]],
        k: usize,
        out: &mut [Vec<Candidate<Step>>],
    ) -> Result<(), StepSearchError> {
        self.prefetch(prefixes, k)?;
        for (prefix, slot) in prefixes.iter().zip(out.iter_mut()) {
            let u = self.problem_of(prefix)?;
            let expansion = self.cache.get(&(k, flatten(prefix))).ok_or(StepSearchError::UnknownPrompt)?;
            let (spent, candidates) = (expansion.spent, expansion.candidates.clone());
            self.charge(u, spent);
            slot.extend(candidates);
        }
        Ok(())
    }

    fn value(&mut self, prefixes: &[&[Step]], out: &mut [f32]) -> Result<(), StepSearchError> {
        for (prefix, slot) in prefixes.iter().zip(out.iter_mut()) {
            let u = self.problem_of(prefix)?;
            *slot = match (prefix.len(), self.root_values[u]) {
                (2.., _) if self.settings.check_steps && self.has_invalid_step(prefix)? => 0.0,
                (2.., _) => prefix.last().map_or(f32::NAN, |s| s.value),
                (_, Some(v)) => v,
                _ => {
                    // A root never expanded: one forward pass of the judge over the prompt.
                    let prompt = &self.prompts[u];
                    let judge = self.judge.as_ref().unwrap_or(&self.generator).model;
                    let v = judge.forward(&[prompt])?.first().and_then(|o| o.values.last().copied());
                    let (len, flops) = (prompt.len(), forward_flops(judge.config(), prompt.len()));
                    self.charge(u, Spent { tokens: 0, forward_tokens: len, recompute_tokens: len, flops });
                    self.root_values[u] = v;
                    v.unwrap_or(f32::NAN)
                }
            };
        }
        Ok(())
    }

    /// The task's reward when the settings use the verifier; a completion that cannot be decoded scores 0.
    fn verify(&mut self, solution: &[Step]) -> Option<f32> {
        self.settings.use_verifier.then(|| self.judge(solution).map_or(0.0, |j| j.score))
    }
}

/// The tokens of a prefix, prompt included.
pub fn flatten(steps: &[Step]) -> Vec<u32> {
    steps.iter().flat_map(|s| s.tokens.iter().copied()).collect()
}

/// Tokens generated so far: every step after the prompt.
fn completion_len(steps: &[Step]) -> usize {
    steps.iter().skip(1).map(|s| s.tokens.len()).sum()
}

/// The sampling seed of proposal `sample` of the prefix `prefix` (its tokens, prompt included) in a run seeded
/// `seed`: what [`Model::generate`] is given for that row.
pub fn proposal_seed(seed: u64, prefix: &[u32], sample: usize) -> u64 {
    row_seed(seed, prefix_hash(prefix), sample as u64)
}

/// A well-spread 64-bit digest of a token sequence (SplitMix64 folded over the tokens), stable across platforms
/// and Rust versions, unlike `std`'s hasher.
fn prefix_hash(tokens: &[u32]) -> u64 {
    tokens.iter().enumerate().fold(tokens.len() as u64, |h, (i, &t)| row_seed(h, u64::from(t), i as u64))
}
