//! Countdown: combine given numbers with `+ − × ÷` to reach a target (the default task).

mod config;
pub mod generate;
mod propose;
pub mod solver;
pub mod stream;
pub mod trace;

pub use config::CountdownConfig;
pub use stream::{Heuristic, StreamSearch, StreamStyle, StyleParseError, TraceKind};

use selfplay_reward::{
    CountdownProblem, CountdownVerifier, Reward, Verifier, check_steps, evaluate_answer, extract_answer,
};

use crate::error::TasksError;
use crate::task::{Split, StepProgress, Task};

/// How [`CountdownTask::solution_trace`] writes solutions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceStyle {
    /// The direct solution: `n − 1` step lines and the answer.
    Optimal,
    /// A search stream, capped at a number of lines.
    Stream {
        /// The search and its heuristic.
        style: StreamStyle,
        /// Step + backtrack line budget; problems needing more get no trace.
        max_lines: usize,
    },
}

impl TraceKind {
    /// The trace style of this kind, streams capped at `max_lines` lines.
    pub fn with_max_lines(self, max_lines: usize) -> TraceStyle {
        match self {
            TraceKind::Optimal => TraceStyle::Optimal,
            TraceKind::Stream(style) => TraceStyle::Stream { style, max_lines },
        }
    }
}

/// The Countdown task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CountdownTask {
    /// Generator settings.
    pub config: CountdownConfig,
    /// Solution trace format.
    pub trace_style: TraceStyle,
    /// Verifier (reward levels).
    pub verifier: CountdownVerifier,
}

impl Default for CountdownTask {
    fn default() -> Self {
        CountdownTask {
            config: CountdownConfig::default(),
            trace_style: TraceStyle::Optimal,
            verifier: CountdownVerifier::default(),
        }
    }
}

/// [`CountdownTask::answer_key`] from the numbers alone, for problems whose target is no `u64` (`selfplay score`
/// reads any integer target).
pub fn answer_key(nums: &[u64], completion: &[u8]) -> Option<String> {
    evaluate_answer(nums, extract_answer(completion)?).ok().map(|value| value.to_string())
}

impl CountdownTask {
    /// The endless stream of solvable problems of `split` ([`Task::generate`] gives its first `n`).
    pub fn problems(
        &self,
        split: Split,
        seed: u64,
    ) -> Result<impl Iterator<Item = Result<CountdownProblem, TasksError>> + use<>, TasksError> {
        generate::problems(&self.config, split, seed)
    }
}

impl Task for CountdownTask {
    type Problem = CountdownProblem;

    fn name(&self) -> &'static str {
        "countdown"
    }

    fn prompt(&self, problem: &CountdownProblem) -> String {
        trace::prompt(problem)
    }

    fn reward(&self, problem: &CountdownProblem, completion: &[u8]) -> Reward {
        self.verifier.verify(problem, completion)
    }

    /// The exact value (`"24"`, `"17/3"`) of a well-formed answer that uses exactly the given numbers.
    ///
    /// Keying by value rather than text makes votes meaningful: `(8-2)*4` and `4*(8-2)` agree. Answers that
    /// misuse the numbers get no key, since a value reached with the wrong numbers says nothing about the
    /// right one. The target is never consulted, so voting stays a fair test-time method.
    fn answer_key(&self, problem: &CountdownProblem, completion: &[u8]) -> Option<String> {
        answer_key(&problem.nums, completion)
    }

    fn solution_trace(&self, problem: &CountdownProblem) -> Option<String> {
        match self.trace_style {
            TraceStyle::Optimal => trace::optimal_trace(problem, &solver::solve(&problem.nums, problem.target)?),
            TraceStyle::Stream { style, max_lines } => stream::stream_trace(problem, style, max_lines),
        }
    }

    fn check_steps(&self, problem: &CountdownProblem, partial: &[u8]) -> Option<StepProgress> {
        let check = check_steps(&problem.nums, partial);
        Some(StepProgress { valid_steps: check.valid_steps, has_invalid_step: check.error.is_some() })
    }

    fn generate(&self, split: Split, n: usize, seed: u64) -> Result<Vec<CountdownProblem>, TasksError> {
        self.problems(split, seed)?.take(n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_keys_group_equal_values_and_drop_misused_numbers() {
        let task = CountdownTask::default();
        let p = CountdownProblem { nums: vec![8, 2, 4], target: 24 };
        let key = |s: &str| task.answer_key(&p, s.as_bytes());
        assert_eq!(key("<answer>(8-2)*4</answer>").as_deref(), Some("24"));
        assert_eq!(key("<answer>4*(8-2)</answer>").as_deref(), Some("24"));
        assert_eq!(key("<answer>8/(2*4)</answer>").as_deref(), Some("1"));
        assert_eq!(key("<answer>2/(8+4)</answer>").as_deref(), Some("1/6"));
        assert_eq!(key("<answer>8*3</answer>"), None, "wrong numbers");
        assert_eq!(key("<answer>8/(4-2*2)</answer>"), None);
        assert_eq!(key("no answer"), None);
    }

    #[test]
    fn trace_styles_both_verify() {
        let p = CountdownProblem { nums: vec![25, 50, 75, 100, 3], target: 100 };
        let dfs = TraceStyle::Stream { style: "dfs-target".parse().unwrap(), max_lines: 500 };
        for trace_style in [TraceStyle::Optimal, dfs] {
            let task = CountdownTask { trace_style, ..CountdownTask::default() };
            let trace = task.solution_trace(&p).unwrap();
            assert!(task.reward(&p, trace.as_bytes()).verdict.is_correct(), "{trace}");
        }
        let progress = CountdownTask::default().check_steps(&p, b"25+75=100\n100*3=301\n").unwrap();
        assert_eq!(progress, StepProgress { valid_steps: 1, has_invalid_step: true });
    }
}
