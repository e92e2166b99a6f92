//! Step-level beam search: expand each of `beam_width` partial solutions with `expansions_per_beam` sampled next
//! steps, score every new prefix with the value model / PRM (verifier for finished solutions when available),
//! aggregate each beam's step scores with `selfplay-reward`'s [`StepAggregation`], keep the best `beam_width`,
//! and stop when every kept beam has finished or `max_steps` is reached.

use alloc::vec::Vec;

use selfplay_reward::{StepAggregation, aggregate_steps};

use crate::error::{Result, SearchError};
use crate::language::{Candidate, StepModel, merge_candidates};

/// Beam search settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamConfig {
    /// Beams kept after each step (B).
    pub beam_width: usize,
    /// Candidate next steps sampled per beam (K).
    pub expansions_per_beam: usize,
    /// Step limit; beams still open then are returned unfinished.
    pub max_steps: usize,
    /// How a beam's per-step scores become its score (`Last` for a value model, `Min` for a PRM).
    pub aggregation: StepAggregation,
    /// Diversity: merge identical steps proposed for the same parent, so a parent's children are distinct.
    pub distinct_steps: bool,
}

impl Default for BeamConfig {
    fn default() -> Self {
        Self {
            beam_width: 4,
            expansions_per_beam: 4,
            max_steps: 32,
            aggregation: StepAggregation::Last,
            distinct_steps: true,
        }
    }
}

/// A partial or finished solution.
#[derive(Debug, Clone, PartialEq)]
pub struct Beam<T> {
    /// The steps (the prompt's steps first, if any were given).
    pub steps: Vec<T>,
    /// Score of each generated step, in order.
    pub step_scores: Vec<f32>,
    /// The aggregate of `step_scores`.
    pub score: f32,
    /// Whether the last step was terminal.
    pub finished: bool,
}

/// Runs beam search from `prompt` and returns the final beams, best first (ties keep generation order).
pub fn beam_search<M: StepModel>(
    model: &mut M,
    prompt: &[M::Step],
    config: &BeamConfig,
) -> Result<Vec<Beam<M::Step>>, M::Error> {
    if config.beam_width == 0 || config.expansions_per_beam == 0 {
        return Err(SearchError::InvalidConfig("beam_width and expansions_per_beam must be at least 1"));
    }
    let mut beams = alloc::vec![Beam { steps: prompt.to_vec(), step_scores: Vec::new(), score: 0.0, finished: false }];
    for _ in 0..config.max_steps {
        if beams.iter().all(|b| b.finished) {
            break;
        }
        let (mut pool, open): (Vec<_>, Vec<_>) = beams.into_iter().partition(|b: &Beam<M::Step>| b.finished);
        let prefixes: Vec<&[M::Step]> = open.iter().map(|b| b.steps.as_slice()).collect();
        let mut proposals: Vec<Vec<Candidate<M::Step>>> = (0..open.len()).map(|_| Vec::new()).collect();
        model.propose(&prefixes, config.expansions_per_beam, &mut proposals).map_err(SearchError::Evaluator)?;
        let mut children: Vec<Beam<M::Step>> = Vec::new();
        for (parent, mut cands) in open.iter().zip(proposals) {
            if config.distinct_steps {
                merge_candidates(&mut cands, config.expansions_per_beam);
            } else {
                cands.truncate(config.expansions_per_beam);
            }
            if cands.is_empty() {
                // A dead end: the policy has no continuation. It competes as it is, finished.
                pool.push(Beam { finished: true, ..parent.clone() });
                continue;
            }
            for c in cands {
                let mut steps = parent.steps.clone();
                steps.push(c.step);
                children.push(Beam {
                    steps,
                    step_scores: parent.step_scores.clone(),
                    score: 0.0,
                    finished: c.terminal,
                });
            }
        }
        score_new_steps(model, &mut children, config.aggregation)?;
        pool.extend(children);
        // Stable sort: among equal scores, finished beams carried over and earlier proposals stay first.
        pool.sort_by(|a, b| b.score.total_cmp(&a.score));
        pool.truncate(config.beam_width);
        beams = pool;
        if beams.is_empty() {
            break;
        }
    }
    Ok(beams)
}

/// Appends the score of each child's newest step (verifier for finished ones when available, else the model's
/// value, batched) and recomputes the aggregate. A NaN score ranks last.
fn score_new_steps<M: StepModel>(
    model: &mut M,
    children: &mut [Beam<M::Step>],
    how: StepAggregation,
) -> Result<(), M::Error> {
    let verified: Vec<Option<f32>> =
        children.iter().map(|c| if c.finished { model.verify(&c.steps) } else { None }).collect();
    let need: Vec<&[M::Step]> =
        children.iter().zip(&verified).filter(|(_, v)| v.is_none()).map(|(c, _)| c.steps.as_slice()).collect();
    let mut values = alloc::vec![0.0f32; need.len()];
    if !need.is_empty() {
        model.value(&need, &mut values).map_err(SearchError::Evaluator)?;
    }
    let mut next = values.into_iter();
    for (child, v) in children.iter_mut().zip(verified) {
        let s = v.unwrap_or_else(|| next.next().unwrap_or(f32::NAN));
        child.step_scores.push(s);
        let agg = aggregate_steps(&child.step_scores, how).unwrap_or(f32::NAN);
        child.score = if agg.is_nan() { f32::NEG_INFINITY } else { agg };
    }
    Ok(())
}
