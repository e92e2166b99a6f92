//! Self-play problem proposing (`[rl.propose]`, R-Zero / Absolute Zero style): one step's rollouts when the policy
//! writes some of its own problems.
//!
//! The policy, under the task's proposer prompt, samples the step's proposals as one group. The task certifies
//! each ([`Propose::certify`]: well formed, in range, of the training split, solvable by the exact solver), so the
//! solver never trains on an impossible or held-out problem. Each distinct certified problem is then attempted
//! like a generator problem (`group_size` samples, the verifier's reward), in the same batch as the rest of the
//! step's problems. A proposal earns `1 − |2p − 1|` for its problem's solve rate p (1 at one half, 0 when every
//! attempt agrees: such a problem teaches GRPO nothing), shared among the copies of a problem proposed more than
//! once, less `repetition_penalty` times the share of the step's other proposals of its shape (R-Zero's guard
//! against a proposer collapsing onto one kind of problem); a rejected proposal earns 0. Its group joins the
//! solver groups and learns in the same update.
//!
//! Every rank writes the same proposals (same weights, same seeds: a few short lines, cheaper than a gather) and
//! certifies them alike; the solver's attempts are split between ranks as usual.

use std::time::Instant;

use rand_chacha::ChaCha8Rng;
use selfplay_model::HostAccess;
use selfplay_tasks::{Propose, Rejection, Task};

use super::error::RlError;
use super::proposal_stats::ProposalStats;
use super::rollouts::{Picked, Rollouts, Scored, Step};
use crate::rollout::{completion_text, encode_prompt, sample};

/// The proposer prompt's name for seeding its samples, apart from every training problem's index.
const PROPOSER_ID: u64 = u64::MAX;
/// The first proposed problem's name for seeding its attempts (the next ones count down from it).
const FIRST_PROPOSED_ID: u64 = u64::MAX - 1;

/// A proposal's shape: its text with every run of digits written `#` (`"61+55-41"` and `"72+36-6"` are both
/// `"#+#-#"`), what `[rl.propose] repetition_penalty` counts as alike.
pub(crate) fn shape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// The proposer's reward for a problem solved `correct` times in `attempts`: `1 − |2p − 1|`.
pub(crate) fn uncertainty_reward(correct: usize, attempts: usize) -> f32 {
    if attempts == 0 {
        return 0.0;
    }
    let p = correct as f32 / attempts as f32;
    1.0 - (2.0 * p - 1.0).abs()
}

/// The step's proposals checked: each one's distinct problem (an index into `distinct`) or why it was rejected.
struct Certified<P> {
    verdicts: Vec<Result<usize, Rejection>>,
    /// The distinct certified problems, in order of first proposal, each with its prompt (what makes two alike).
    distinct: Vec<(String, P)>,
    stats: ProposalStats,
}

/// Certifies each proposal `texts[i]`; two certified proposals are one problem when their prompts are equal.
fn certify_all<T: Task>(
    proposer: &dyn Propose<Problem = T::Problem>,
    task: &T,
    texts: &[String],
) -> Certified<T::Problem> {
    let mut stats = ProposalStats { proposed: texts.len(), ..ProposalStats::default() };
    let mut verdicts = Vec::with_capacity(texts.len());
    let mut distinct: Vec<(String, T::Problem)> = Vec::new();
    for text in texts {
        let verdict = proposer.certify(text.as_bytes()).map(|problem| {
            let key = task.prompt(&problem);
            distinct.iter().position(|(k, _)| *k == key).unwrap_or_else(|| {
                distinct.push((key, problem));
                distinct.len() - 1
            })
        });
        match verdict {
            Ok(_) => stats.certified += 1,
            Err(rejection) => stats.reject(rejection),
        }
        verdicts.push(verdict);
    }
    stats.distinct = distinct.len();
    Certified { verdicts, distinct, stats }
}

/// Each proposal's reward: `earned[j]` (its problem's [`uncertainty_reward`]) shared among the copies of problem j,
/// less `penalty` times the share of the other proposals of its [`shape`], floored at 0; 0 for a rejected one.
fn proposer_scores(verdicts: &[Result<usize, Rejection>], earned: &[f32], texts: &[String], penalty: f32) -> Vec<f32> {
    let mut copies = vec![0usize; earned.len()];
    for &j in verdicts.iter().flatten() {
        copies[j] += 1;
    }
    let shapes: Vec<String> = texts.iter().map(|t| shape(t)).collect();
    let others = (shapes.len().max(2) - 1) as f32;
    verdicts
        .iter()
        .zip(&shapes)
        .map(|(verdict, own)| match *verdict {
            Ok(j) => {
                let alike = shapes.iter().filter(|s| *s == own).count() - 1;
                (earned[j] / copies[j] as f32 - penalty * alike as f32 / others).max(0.0)
            }
            Err(_) => 0.0,
        })
        .collect()
}

/// The step's rollouts with `[rl.propose] share` of its problems proposed by the policy under `proposer`'s
/// prompt, the rest drawn from the generator; the proposer's group last.
pub(super) fn collect<B: HostAccess, T: Task>(
    step: Step<'_, B, T>,
    proposer: &dyn Propose<Problem = T::Problem>,
    rng: &mut ChaCha8Rng,
    sample_seed: u64,
) -> Result<Rollouts, RlError> {
    let started = Instant::now();
    let Step { model, tokenizer, task, settings, max_new_tokens, .. } = step;
    let wanted = settings.propose.proposals(settings.prompts_per_step);
    let prompt = encode_prompt(tokenizer, &proposer.proposer_prompt())?;
    if prompt.is_empty() {
        return Err(RlError::EmptyPrompt);
    }
    let generation = settings.generation_config(settings.propose.max_tokens.min(max_new_tokens));
    let written = sample(model, std::slice::from_ref(&prompt), &[PROPOSER_ID], wanted, &generation, sample_seed)?
        .pop()
        .unwrap_or_default();

    let texts: Vec<String> = written.iter().map(|g| completion_text(tokenizer, &g.tokens)).collect::<Result<_, _>>()?;
    let Certified { verdicts, distinct, mut stats } = certify_all(proposer, task, &texts);

    let from_generator = settings.prompts_per_step - wanted;
    let mut picked = if from_generator == 0 {
        Picked { ids: Vec::new(), problems: Vec::new(), prompts: Vec::new(), selection_flops: 0.0 }
    } else {
        if step.problems.is_empty() {
            return Err(RlError::NoProblems);
        }
        step.pick(rng, from_generator)?
    };
    for (j, (prompt, problem)) in distinct.iter().enumerate() {
        picked.ids.push(FIRST_PROPOSED_ID - j as u64);
        picked.prompts.push(encode_prompt(tokenizer, prompt)?);
        picked.problems.push(problem.clone());
    }
    let mut rollouts = step.attempt(picked, sample_seed)?;

    let (mut correct, mut attempts) = (vec![0; distinct.len()], vec![0; distinct.len()]);
    for sample in rollouts.samples.iter().filter(|s| s.group >= from_generator) {
        attempts[sample.group - from_generator] += 1;
        correct[sample.group - from_generator] += usize::from(sample.correct);
    }
    let earned: Vec<f32> = correct.iter().zip(&attempts).map(|(&c, &a)| uncertainty_reward(c, a)).collect();
    let scores = proposer_scores(&verdicts, &earned, &texts, settings.propose.repetition_penalty);
    if !distinct.is_empty() {
        let rates = correct.iter().zip(&attempts).map(|(&c, &a)| c as f32 / a.max(1) as f32);
        stats.solve_rate = Some(rates.sum::<f32>() / distinct.len() as f32);
    }
    stats.reward_mean = scores.iter().sum::<f32>() / scores.len().max(1) as f32;
    stats.tokens = written.iter().map(|g| g.tokens.len()).sum();

    let group = rollouts.prompts.len();
    rollouts.prompts.push(prompt);
    rollouts.samples.extend(written.into_iter().zip(scores).map(|(generation, score)| Scored {
        group,
        generation,
        score,
        correct: false,
    }));
    rollouts.generated_tokens += stats.tokens;
    rollouts.proposals = Some(stats);
    rollouts.seconds = started.elapsed().as_secs_f64();
    Ok(rollouts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_mask_the_numbers() {
        assert_eq!(shape("61+55-41"), "#+#-#");
        assert_eq!(shape("72+36-6\n"), "#+#-#\n");
        assert_eq!(shape("(97-68)*2"), "(#-#)*#");
        assert_eq!(shape("a1b22c"), "a#b#c");
        assert_eq!(shape(""), "");
    }

    #[test]
    fn the_reward_peaks_at_half_solved() {
        assert_eq!(uncertainty_reward(4, 8), 1.0);
        assert_eq!(uncertainty_reward(0, 8), 0.0);
        assert_eq!(uncertainty_reward(8, 8), 0.0);
        assert_eq!(uncertainty_reward(2, 8), 0.5);
        assert_eq!(uncertainty_reward(6, 8), 0.5);
        assert_eq!(uncertainty_reward(0, 0), 0.0);
    }
}
