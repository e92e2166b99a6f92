//! Batched generation: prefill every distinct prompt once into a paged KV cache, fork it for every
//! row that shares it (a GRPO group stores its prompt once), then decode all live rows together, one
//! token per row per step. A row finishes on a stop token (EOS included), after
//! `max_new_tokens`, or when it reaches the model's context length. Each row samples from its own
//! seeded stream, so its result does not depend on the rest of the batch, to within rounding: the CPU
//! matrix products choose their summation order from the shape, and a decode step over at most four
//! live rows (a batch's stragglers, or a row generated alone) sums in another order than a wider one,
//! so a row's logits can differ in their last bits between batches of different sizes (measured on a
//! 0.8M-parameter model: every row alone against in a batch of 8 differs in log-probabilities, none in
//! tokens). A sampled token changes only when its uniform draw falls within that rounding of a boundary.

use std::collections::HashMap;

use selfplay_kvcache::SeqId;

use crate::backend::HostAccess;
use crate::error::ModelError;
use crate::kv_cache::{DEFAULT_BLOCK_SIZE, KvCache};
use crate::model::{ForwardOutput, Model};
use crate::sampler::{SamplingParams, row_rng, sample};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    pub max_new_tokens: usize,
    pub sampling: SamplingParams,
    /// Tokens that end a row (kept as its last token). The config's `eos_token_id` is added by
    /// [`Model::generate`] when present.
    pub stop_tokens: Vec<u32>,
}

/// Why a row stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FinishReason {
    /// It produced this stop token.
    Stop(u32),
    /// It produced `max_new_tokens` tokens.
    MaxTokens,
    /// Prompt plus completion reached `max_position_embeddings`.
    ContextFull,
}

/// One row's completion (serialisable: the ranks of a data-parallel run exchange their rollouts).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Generation {
    /// New tokens only (the prompt excluded).
    pub tokens: Vec<u32>,
    /// Per token, its log-probability under the distribution sampled from (see [`crate::sampler`]).
    pub logprobs: Vec<f32>,
    /// Per token, its log-probability under the model at temperature 1.
    pub model_logprobs: Vec<f32>,
    /// Per token, the value head on the prefix it was sampled from (the prompt and the tokens before
    /// it). For a row ended by a stop token, the last entry scores the whole completion before that
    /// token; it comes with the decode step, so judging completions by value needs no second pass.
    pub values: Vec<f32>,
    pub finish: FinishReason,
}

/// Identical prompts (a GRPO group) are prefilled once: `group_of[i]` is row `i`'s index into the distinct
/// prompts, in first-appearance order.
fn distinct_prompts<'p>(prompts: &[&'p [u32]]) -> (Vec<usize>, Vec<&'p [u32]>) {
    let mut group_of = Vec::with_capacity(prompts.len());
    let mut unique: Vec<&[u32]> = Vec::new();
    let mut index: HashMap<&[u32], usize> = HashMap::new();
    for &p in prompts {
        group_of.push(*index.entry(p).or_insert_with(|| {
            unique.push(p);
            unique.len() - 1
        }));
    }
    (group_of, unique)
}

impl<B: HostAccess> Model<B> {
    /// Completes every prompt; `seeds[i]` seeds row `i`'s sampling stream.
    pub fn generate(
        &self,
        prompts: &[&[u32]],
        cfg: &GenerationConfig,
        seeds: &[u64],
    ) -> Result<Vec<Generation>, ModelError> {
        // Each prompt's blocks once, plus per row its completion and one copy-on-write block. A completion ends
        // where the context does, so a row never needs room for more than the context leaves after its prompt,
        // however large `max_new_tokens` is.
        let limit = self.config().max_position_embeddings;
        let room = |prompt: &[u32]| cfg.max_new_tokens.min(limit.saturating_sub(prompt.len()));
        let bs = DEFAULT_BLOCK_SIZE;
        let (_, unique) = distinct_prompts(prompts);
        let blocks = unique.iter().map(|p| p.len().div_ceil(bs)).sum::<usize>()
            + prompts.iter().map(|p| room(p).div_ceil(bs) + 1).sum::<usize>();
        let mut cache = self.new_cache(blocks.max(1))?;
        Ok(self.generate_in(&mut cache, prompts, cfg, seeds)?.0)
    }

    /// [`Model::generate`] in a cache the caller keeps: with prefix caching on
    /// ([`Model::new_prefix_cache`]), each prompt's longest prefix of full blocks already cached (by an earlier
    /// call's prompts or completions) is not computed again, and this call's full blocks stay cached for later
    /// ones, least recently used evicted first when the pool runs short. This is how a search tree expands a node
    /// without recomputing the path to it. Also returns, per row, how many of its prompt's tokens came from the
    /// cache. Every sequence it starts is released before it returns, on error too.
    pub fn generate_in(
        &self,
        cache: &mut KvCache<f32, B>,
        prompts: &[&[u32]],
        cfg: &GenerationConfig,
        seeds: &[u64],
    ) -> Result<(Vec<Generation>, Vec<usize>), ModelError> {
        cfg.sampling.validate()?;
        if seeds.len() != prompts.len() {
            return Err(ModelError::length("seeds", prompts.len(), seeds.len()));
        }
        let mut started = Vec::new();
        let result = self.generate_rows(cache, prompts, cfg, seeds, &mut started);
        for seq in started {
            // Already released sequences are unknown now; nothing else can fail here.
            let _ = cache.release(seq);
        }
        result
    }

    /// The body of [`Model::generate_in`]; every sequence it starts is pushed to `started`.
    fn generate_rows(
        &self,
        cache: &mut KvCache<f32, B>,
        prompts: &[&[u32]],
        cfg: &GenerationConfig,
        seeds: &[u64],
        started: &mut Vec<SeqId>,
    ) -> Result<(Vec<Generation>, Vec<usize>), ModelError> {
        let limit = self.config().max_position_embeddings;
        let mut stop = cfg.stop_tokens.clone();
        stop.extend(self.config().eos_token_id);
        let mut rows: Vec<Generation> = prompts
            .iter()
            .map(|_| Generation {
                tokens: vec![],
                logprobs: vec![],
                model_logprobs: vec![],
                values: vec![],
                finish: FinishReason::MaxTokens,
            })
            .collect();
        if cfg.max_new_tokens == 0 {
            // Still validate the prompts.
            self.forward(prompts)?;
            return Ok((rows, vec![0; prompts.len()]));
        }
        let room = |prompt: &[u32]| cfg.max_new_tokens.min(limit.saturating_sub(prompt.len()));
        let (group_of, unique) = distinct_prompts(prompts);
        // Each distinct prompt starts at its cached prefix (never its last token, whose logits are needed).
        let mut prompt_seqs = Vec::with_capacity(unique.len());
        let mut cached = Vec::with_capacity(unique.len());
        for p in &unique {
            let (seq, hit) = cache.admit(p);
            started.push(seq);
            prompt_seqs.push(seq);
            cached.push(hit);
        }
        let rests: Vec<&[u32]> = unique.iter().zip(&cached).map(|(p, &hit)| &p[hit..]).collect();
        let prefilled = self.forward_cached(cache, &prompt_seqs, &rests)?;
        let mut seq_of = Vec::with_capacity(prompts.len());
        let mut taken = vec![false; unique.len()];
        for &g in &group_of {
            seq_of.push(if std::mem::replace(&mut taken[g], true) {
                let fork = cache.fork(prompt_seqs[g])?;
                started.push(fork);
                fork
            } else {
                prompt_seqs[g]
            });
        }
        for (&seq, prompt) in seq_of.iter().zip(prompts) {
            cache.reserve_tokens(seq, room(prompt))?;
        }
        let mut rngs: Vec<_> = seeds.iter().map(|&s| row_rng(s)).collect();
        let mut feed = vec![0u32; prompts.len()];
        // Samples row `i`'s next token from its last output; the token to feed back while the row goes on.
        let mut advance = |i: usize, out: &ForwardOutput| -> Result<Option<u32>, ModelError> {
            let (len, vocab) = (out.logits.dims()[0], out.logits.dims()[1]);
            let s = sample(&out.logits.data()[(len - 1) * vocab..], &cfg.sampling, &mut rngs[i])?;
            let row = &mut rows[i];
            row.tokens.push(s.token);
            row.logprobs.push(s.logprob);
            row.model_logprobs.push(s.model_logprob);
            row.values.push(out.values.last().copied().unwrap_or(f32::NAN));
            if stop.contains(&s.token) {
                row.finish = FinishReason::Stop(s.token);
            } else if row.tokens.len() == cfg.max_new_tokens {
                row.finish = FinishReason::MaxTokens;
            } else if prompts[i].len() + row.tokens.len() >= limit {
                row.finish = FinishReason::ContextFull;
            } else {
                return Ok(Some(s.token));
            }
            Ok(None)
        };
        let mut live = Vec::with_capacity(prompts.len());
        for (i, &g) in group_of.iter().enumerate() {
            if let Some(token) = advance(i, &prefilled[g])? {
                feed[i] = token;
                live.push(i);
            } else {
                cache.release(seq_of[i])?;
            }
        }
        while !live.is_empty() {
            let inputs: Vec<&[u32]> = live.iter().map(|&i| std::slice::from_ref(&feed[i])).collect();
            let seqs: Vec<SeqId> = live.iter().map(|&i| seq_of[i]).collect();
            let outputs = self.forward_cached(cache, &seqs, &inputs)?;
            let mut still = Vec::with_capacity(live.len());
            for (&i, out) in live.iter().zip(&outputs) {
                if let Some(token) = advance(i, out)? {
                    feed[i] = token;
                    still.push(i);
                } else {
                    cache.release(seq_of[i])?;
                }
            }
            live = still;
        }
        Ok((rows, group_of.iter().map(|&g| cached[g]).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transformer::tests::{random_weights, tiny_config};

    fn model() -> Model {
        let cfg = tiny_config(false, true);
        Model::new(cfg.clone(), random_weights(&cfg, 4)).unwrap()
    }

    #[test]
    fn rows_do_not_depend_on_their_batch() {
        let m = model();
        let cfg = GenerationConfig {
            max_new_tokens: 6,
            sampling: SamplingParams { temperature: 1.0, top_k: 5, top_p: 0.95, min_p: 0.0 },
            stop_tokens: vec![],
        };
        let prompts: [&[u32]; 3] = [&[1, 2, 3], &[4], &[6, 5, 4, 3, 2]];
        let together = m.generate(&prompts, &cfg, &[10, 11, 12]).unwrap();
        for (i, p) in prompts.iter().enumerate() {
            let alone = m.generate(&[p], &cfg, &[10 + i as u64]).unwrap().remove(0);
            assert_eq!(alone, together[i]);
        }
        assert_eq!(together, m.generate(&prompts, &cfg, &[10, 11, 12]).unwrap());
        assert!(together.iter().all(|g| g.tokens.len() == 6 && g.finish == FinishReason::MaxTokens));
    }

    /// Rows that share a prompt (prefilled once, then forked with copy-on-write) draw exactly what each
    /// draws alone, where nothing is shared.
    #[test]
    fn rows_sharing_a_prompt_match_rows_alone() {
        let m = model();
        let cfg = GenerationConfig {
            max_new_tokens: 9,
            sampling: SamplingParams { temperature: 1.0, top_k: 5, top_p: 0.95, min_p: 0.0 },
            stop_tokens: vec![],
        };
        let (a, b): (&[u32], &[u32]) = (&[1, 2, 3, 4, 5], &[6, 5]);
        let prompts = [a, b, a, a, b];
        let seeds = [7, 8, 9, 10, 11];
        let together = m.generate(&prompts, &cfg, &seeds).unwrap();
        for (i, p) in prompts.iter().enumerate() {
            assert_eq!(m.generate(&[p], &cfg, &[seeds[i]]).unwrap().remove(0), together[i], "row {i}");
        }
        let group: Vec<&Vec<u32>> = [0, 2, 3].iter().map(|&i| &together[i].tokens).collect();
        assert!(group[0] != group[1] || group[1] != group[2], "the forks diverge");
    }

    /// A prefix cache kept across calls: a prompt that continues an earlier call's prompt and completion starts
    /// at their full blocks, generates what a cold start generates (the cached keys and values agree with
    /// recomputed ones to rounding), and every call gives its sequences back, on error too.
    #[test]
    fn a_prefix_cache_skips_what_earlier_calls_computed() {
        let m = model();
        let cfg = GenerationConfig { max_new_tokens: 6, sampling: SamplingParams::greedy(), stop_tokens: vec![] };
        let mut cache = m.new_prefix_cache(16, 4).unwrap();
        let prompt = [1u32, 2, 3, 4, 5, 6, 0, 2, 1];
        let (first, hits) = m.generate_in(&mut cache, &[&prompt], &cfg, &[0]).unwrap();
        assert_eq!(hits, [0], "a cold cache");
        assert_eq!(first, m.generate(&[&prompt], &cfg, &[0]).unwrap());
        // The prompt and the 5 completion tokens fed back were cached: 14 tokens, 3 full blocks.
        assert_eq!(cache.cached_blocks(), 3);
        let mut longer = prompt.to_vec();
        longer.extend(&first[0].tokens);
        let (warm, hits) = m.generate_in(&mut cache, &[&longer, &longer], &cfg, &[0, 0]).unwrap();
        assert_eq!(hits, [12, 12]);
        let cold = m.generate(&[&longer], &cfg, &[0]).unwrap().remove(0);
        for row in &warm {
            assert_eq!(row.tokens, cold.tokens);
            let worst = row.model_logprobs.iter().zip(&cold.model_logprobs).map(|(a, b)| (a - b).abs());
            assert!(worst.fold(0.0, f32::max) < 1e-5);
        }
        assert_eq!(cache.free_blocks() + cache.cached_blocks(), 16, "every sequence released");
        assert!(m.generate_in(&mut cache, &[&longer, &[9]], &cfg, &[0, 0]).is_err(), "token 9 is out of vocabulary");
        assert_eq!(cache.free_blocks() + cache.cached_blocks(), 16, "released after an error too");
    }

    /// Blocks that ended sequences left in the prefix cache make room when a call needs it: a pool full of cached
    /// prefixes still runs a call that shares none of them (least recently used evicted first).
    #[test]
    fn a_full_prefix_cache_evicts_for_new_work() {
        let m = model();
        let cfg = GenerationConfig { max_new_tokens: 6, sampling: SamplingParams::greedy(), stop_tokens: vec![] };
        let mut cache = m.new_prefix_cache(6, 4).unwrap();
        let first = [1u32, 2, 3, 4, 5, 6, 6, 0, 2];
        m.generate_in(&mut cache, &[&first], &cfg, &[0]).unwrap();
        assert_eq!(cache.free_blocks(), 3, "three blocks cached");
        let other = [6u32, 5, 4, 3, 2, 1, 0, 1, 2, 3];
        let (rows, hits) = m.generate_in(&mut cache, &[&other], &cfg, &[0]).unwrap();
        assert_eq!(hits, [0]);
        assert_eq!(rows, m.generate(&[&other], &cfg, &[0]).unwrap());
    }

    /// Greedy generation equals repeatedly taking the argmax of a full forward pass, and its model
    /// log-probabilities are the forward pass's log-softmax at the chosen tokens.
    #[test]
    fn greedy_matches_full_forward_argmax_and_stops() {
        let m = model();
        let cfg = GenerationConfig { max_new_tokens: 8, sampling: SamplingParams::greedy(), stop_tokens: vec![] };
        let prompt = [3u32, 1, 4];
        let g = m.generate(&[&prompt], &cfg, &[0]).unwrap().remove(0);
        let mut seq = prompt.to_vec();
        for (t, &token) in g.tokens.iter().enumerate() {
            let stats = m.forward(&[&seq]).unwrap().remove(0);
            let row = &stats.logits.data()[(seq.len() - 1) * 7..];
            let best = (0..7).fold(0, |b, i| if row[i] > row[b] { i } else { b });
            assert_eq!(token as usize, best, "step {t}");
            let lse = row.iter().map(|x| x.exp()).sum::<f32>().ln();
            assert!((g.model_logprobs[t] - (row[best] - lse)).abs() < 1e-5);
            let value = stats.values.last().copied().unwrap();
            assert!((g.values[t] - value).abs() < 1e-5, "value before step {t}: {} vs {value}", g.values[t]);
            seq.push(token);
        }
        // Stopping on the first generated token ends the row there.
        let first = g.tokens[0];
        let stopped =
            m.generate(&[&prompt], &GenerationConfig { stop_tokens: vec![first], ..cfg.clone() }, &[0]).unwrap();
        assert_eq!(stopped[0].tokens, vec![first]);
        assert_eq!(stopped[0].finish, FinishReason::Stop(first));
        // The context length (32) caps a row.
        let long = vec![1u32; 30];
        let capped = m.generate(&[&long], &cfg, &[0]).unwrap();
        assert_eq!((capped[0].tokens.len(), capped[0].finish), (2, FinishReason::ContextFull));
        // However many tokens are asked for, the cache holds only what the context leaves: 2^40 new tokens (a
        // cache of 2^36 blocks, were it sized from them) end at the context like the 8 above.
        let huge = GenerationConfig { max_new_tokens: 1 << 40, ..cfg.clone() };
        assert_eq!(m.generate(&[&long], &huge, &[0]).unwrap(), capped);
        assert!(m.generate(&[&prompt], &cfg, &[]).is_err());
        assert!(m.generate(&[&[9]], &cfg, &[0]).is_err());
    }
}
