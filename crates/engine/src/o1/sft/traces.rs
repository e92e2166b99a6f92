//! The traces policy initialisation imitates: `[sft] traces` dealt round-robin over the training problems; a search
//! stream is kept only when the policy could write it out within `max_new_tokens`.
//!
//! Optimal traces are short and bounded by the count of numbers, so they are always kept (the context must hold
//! them, which the stage checks). A search stream's length depends on how long its search wanders: one longer
//! than the completion budget would teach the policy to start searches it can never finish.

use selfplay_model::tokenizer::Tokenizer;
use selfplay_tasks::{CountdownProblem, CountdownTask, Propose, Task, TraceKind};
use serde::{Deserialize, Serialize};

use super::{SftError, SftExample};
use crate::o1::config::RunConfig;

/// What one trace kind gave policy initialisation (a line of the report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceStats {
    /// The kind's name (`optimal`, `dfs-target`, …).
    pub kind: String,
    /// Training problems dealt to it.
    pub problems: usize,
    /// Traces kept.
    pub traces: usize,
    /// Problems whose search found no solution within `[sft] stream_max_lines` lines (or missed it: pruning and
    /// narrow beams can).
    pub missed: usize,
    /// Search streams left out as longer than `max_new_tokens`.
    pub too_long: usize,
    /// Mean completion tokens of the traces kept (the end-of-sequence token excluded).
    pub mean_tokens: f64,
}

/// `problem`'s trace of `kind` (a search stream capped at `stream_max_lines` lines), or `None` when its search
/// finds no solution.
pub fn trace_of(
    task: &CountdownTask,
    kind: TraceKind,
    stream_max_lines: usize,
    problem: &CountdownProblem,
) -> Option<String> {
    CountdownTask { trace_style: kind.with_max_lines(stream_max_lines), ..*task }.solution_trace(problem)
}

/// The training examples of `problems`: problem `i` gets a trace of `kinds[i % kinds.len()]`, search streams
/// capped at `stream_max_lines` lines and left out when longer than `max_new_tokens` tokens. Returns the examples
/// in problem order and each kind's statistics, in the order of first appearance in `kinds`.
pub fn sft_examples(
    task: &CountdownTask,
    tokenizer: &dyn Tokenizer,
    problems: &[CountdownProblem],
    kinds: &[TraceKind],
    stream_max_lines: usize,
    max_new_tokens: usize,
) -> Result<(Vec<SftExample>, Vec<TraceStats>), SftError> {
    let mut stats: Vec<TraceStats> = Vec::new();
    let mut examples = Vec::with_capacity(problems.len());
    if kinds.is_empty() {
        return Ok((examples, stats));
    }
    let mut total_tokens: Vec<usize> = Vec::new();
    for (i, problem) in problems.iter().enumerate() {
        let kind = kinds[i % kinds.len()];
        let name = kind.to_string();
        let at = match stats.iter().position(|s| s.kind == name) {
            Some(at) => at,
            None => {
                stats.push(TraceStats { kind: name, problems: 0, traces: 0, missed: 0, too_long: 0, mean_tokens: 0.0 });
                total_tokens.push(0);
                stats.len() - 1
            }
        };
        let entry = &mut stats[at];
        entry.problems += 1;
        let Some(trace) = trace_of(task, kind, stream_max_lines, problem) else {
            entry.missed += 1;
            continue;
        };
        let tokens = tokenizer.encode(&trace)?.len();
        if kind != TraceKind::Optimal && tokens > max_new_tokens {
            entry.too_long += 1;
            continue;
        }
        entry.traces += 1;
        total_tokens[at] += tokens;
        examples.push(SftExample::new(tokenizer, &task.prompt(problem), &trace)?);
    }
    for (entry, total) in stats.iter_mut().zip(total_tokens) {
        entry.mean_tokens = total as f64 / entry.traces.max(1) as f64;
    }
    Ok((examples, stats))
}

/// The proposer examples of `problems` (`[sft] proposer_every`): every `every`-th problem (the first, then each
/// `every` further on) written as the task's proposer writes it (with its solution) after its proposer prompt, so
/// that RL's `[rl.propose]` starts from a policy that proposes problems like the generator's. Returns them and
/// their line of statistics (kind `proposer`); none when `every` is 0.
pub fn proposer_examples(
    tokenizer: &dyn Tokenizer,
    problems: &[CountdownProblem],
    every: usize,
) -> Result<(Vec<SftExample>, Option<TraceStats>), SftError> {
    if every == 0 {
        return Ok((Vec::new(), None));
    }
    let mut stats =
        TraceStats { kind: "proposer".into(), problems: 0, traces: 0, missed: 0, too_long: 0, mean_tokens: 0.0 };
    let mut examples = Vec::new();
    let mut tokens = 0;
    for problem in problems.iter().step_by(every) {
        stats.problems += 1;
        let task = RunConfig::task_of(problem.nums.len());
        let Some(proposal) = task.proposal(problem) else {
            stats.missed += 1;
            continue;
        };
        tokens += tokenizer.encode(&proposal)?.len();
        examples.push(SftExample::new(tokenizer, &task.proposer_prompt(), &proposal)?);
    }
    stats.traces = examples.len();
    stats.mean_tokens = tokens as f64 / examples.len().max(1) as f64;
    Ok((examples, Some(stats)))
}

#[cfg(test)]
mod tests {
    use selfplay_model::CharTokenizer;
    use selfplay_tasks::Split;

    use super::*;

    /// Kinds are dealt round-robin, every kept stream fits the budget, and the counts add up.
    #[test]
    fn kinds_are_dealt_round_robin_and_long_traces_left_out() {
        let task = CountdownTask::default();
        let problems = task.generate(Split::Train, 60, 3).unwrap();
        let kinds: Vec<TraceKind> = ["optimal", "dfs-target", "optimal"].iter().map(|k| k.parse().unwrap()).collect();
        let tokenizer = CharTokenizer::ascii();
        let (examples, stats) = sft_examples(&task, &tokenizer, &problems, &kinds, 256, 80).unwrap();
        assert_eq!(stats.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(), ["optimal", "dfs-target"]);
        assert_eq!((stats[0].problems, stats[1].problems), (40, 20));
        for s in &stats {
            assert_eq!(s.traces + s.missed + s.too_long, s.problems, "{s:?}");
            assert!(s.mean_tokens > 0.0 && s.mean_tokens <= 80.0, "{s:?}");
        }
        assert_eq!(stats[0].missed, 0, "the solver solves every generated problem");
        assert_eq!(examples.len(), stats[0].traces + stats[1].traces);
        // BOS + prompt + trace + EOS: the completion (trace and EOS) is what the loss weighs.
        // A budget too small for any stream leaves every one out, and says so; optimal traces stay.
        let (kept, stats) = sft_examples(&task, &tokenizer, &problems, &kinds, 256, 5).unwrap();
        assert_eq!((stats[0].traces, stats[0].too_long), (40, 0));
        assert_eq!((stats[1].traces, stats[1].too_long + stats[1].missed), (0, 20));
        assert_eq!(kept.len(), 40);
    }

    /// Every `every`-th problem becomes a proposer example whose completion the task certifies back to it.
    #[test]
    fn proposer_examples_teach_the_generators_problems() {
        let task = CountdownTask::default();
        let problems = task.generate(Split::Train, 30, 3).unwrap();
        let tokenizer = CharTokenizer::ascii();
        let (examples, stats) = proposer_examples(&tokenizer, &problems, 4).unwrap();
        let stats = stats.unwrap();
        assert_eq!((examples.len(), stats.traces, stats.kind.as_str()), (8, 8, "proposer"));
        for (example, problem) in examples.iter().zip(problems.iter().step_by(4)) {
            let text = tokenizer.decode(&example.tokens).unwrap();
            let of_count = RunConfig::task_of(problem.nums.len());
            let (prompt, proposal) = (of_count.proposer_prompt(), of_count.proposal(problem).unwrap());
            assert!(text.contains(&format!("{prompt}{proposal}")), "{text:?}");
            let back = of_count.certify(proposal.as_bytes()).unwrap();
            assert_eq!(back.target, problem.target);
            let sorted = |nums: &[u64]| {
                let mut nums = nums.to_vec();
                nums.sort_unstable();
                nums
            };
            assert_eq!(sorted(&back.nums), sorted(&problem.nums), "{proposal}");
        }
        assert!(proposer_examples(&tokenizer, &problems, 0).unwrap().0.is_empty());
    }
}
