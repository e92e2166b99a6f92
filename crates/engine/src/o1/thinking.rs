//! The thinking-length curve: greedy held-out accuracy against the most tokens a completion may take — o1's own
//! test-time axis, which pays for a policy that searches in its completion (search streams) and not for one that
//! recites answers.
//!
//! Greedy decoding is deterministic and causal, so a completion cut at `b` tokens is exactly what decoding with
//! `max_new_tokens = b` writes: one decode at the largest budget, judged at every cut, gives the whole curve.

use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{GenerationConfig, HostAccess, Model, SamplingParams};
use selfplay_tasks::Task;
use serde::{Deserialize, Serialize};

use super::eval::EvalError;
use crate::rollout::{completion_text, encode_prompt, sample};

/// Greedy accuracy when completions may take at most `max_tokens` tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThinkingPoint {
    /// The completion budget, in tokens.
    pub max_tokens: usize,
    /// Mean tokens a completion took within it.
    pub tokens: f64,
    /// Held-out accuracy.
    pub accuracy: f64,
}

/// The budgets of the curve: 8, 16, 32, … below `max_new_tokens`, then `max_new_tokens` itself.
pub fn thinking_budgets(max_new_tokens: usize) -> Vec<usize> {
    let mut budgets: Vec<usize> = (3..usize::BITS).map(|k| 1usize << k).take_while(|&b| b < max_new_tokens).collect();
    budgets.push(max_new_tokens);
    budgets
}

/// The thinking-length curve of `model` on `problems` up to `max_new_tokens`.
pub fn thinking_curve<B: HostAccess, T: Task>(
    model: &Model<B>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    max_new_tokens: usize,
) -> Result<Vec<ThinkingPoint>, EvalError> {
    let prompts: Vec<Vec<u32>> =
        problems.iter().map(|p| encode_prompt(tokenizer, &task.prompt(p))).collect::<Result<_, _>>()?;
    let ids: Vec<u64> = (0..problems.len() as u64).collect();
    let config = GenerationConfig { max_new_tokens, sampling: SamplingParams::greedy(), stop_tokens: vec![] };
    let generations = sample(model, &prompts, &ids, 1, &config, 0)?;
    let n = problems.len().max(1) as f64;
    let mut curve = Vec::new();
    for budget in thinking_budgets(max_new_tokens) {
        let (mut correct, mut tokens) = (0usize, 0usize);
        for (problem, rows) in problems.iter().zip(&generations) {
            let Some(generation) = rows.first() else { continue };
            let cut = &generation.tokens[..budget.min(generation.tokens.len())];
            tokens += cut.len();
            let text = completion_text(tokenizer, cut)?;
            correct += usize::from(task.reward(problem, text.as_bytes()).verdict.is_correct());
        }
        curve.push(ThinkingPoint { max_tokens: budget, tokens: tokens as f64 / n, accuracy: correct as f64 / n });
    }
    Ok(curve)
}

#[cfg(test)]
mod tests {
    use selfplay_reward::{Reward, Verdict};
    use selfplay_tasks::{Split, TasksError};

    use super::*;
    use crate::o1::eval::greedy;
    use crate::o1::rl::tests::{tiny_model, tokenizer};

    /// Correct when a lowercase letter comes after the first eight bytes of text: a longer completion can be
    /// right where its cut is not, so the curve moves with the budget.
    struct LateLetter;

    impl Task for LateLetter {
        type Problem = char;

        fn name(&self) -> &'static str {
            "late-letter"
        }

        fn prompt(&self, problem: &char) -> String {
            format!("{problem}:")
        }

        fn reward(&self, _: &char, completion: &[u8]) -> Reward {
            let late = completion.iter().skip(8).any(u8::is_ascii_lowercase);
            Reward {
                value: f32::from(u8::from(late)),
                verdict: if late { Verdict::Correct } else { Verdict::WrongValue },
            }
        }

        fn answer_key(&self, _: &char, _: &[u8]) -> Option<String> {
            None
        }

        fn solution_trace(&self, _: &char) -> Option<String> {
            None
        }

        fn generate(&self, _: Split, n: usize, seed: u64) -> Result<Vec<char>, TasksError> {
            Ok((0..n).map(|i| char::from(b'A' + ((i as u64 + seed) % 26) as u8)).collect())
        }
    }

    #[test]
    fn budgets_double_up_to_the_largest() {
        assert_eq!(thinking_budgets(48), vec![8, 16, 32, 48]);
        assert_eq!(thinking_budgets(64), vec![8, 16, 32, 64]);
        assert_eq!(thinking_budgets(5), vec![5]);
    }

    /// Each point equals greedy decoding run afresh with that budget (the independent reference).
    #[test]
    fn each_cut_equals_decoding_with_that_budget() {
        let (model, tokenizer, task) = (tiny_model(0.5, 2), tokenizer(), LateLetter);
        let problems = task.generate(Split::Val, 26, 0).unwrap();
        let curve = thinking_curve(&model, &tokenizer, &task, &problems, 12).unwrap();
        assert_eq!(curve.iter().map(|p| p.max_tokens).collect::<Vec<_>>(), vec![8, 12]);
        for point in &curve {
            let (accuracy, tokens) = greedy(&model, &tokenizer, &task, &problems, point.max_tokens).unwrap();
            assert_eq!((point.accuracy, point.tokens), (accuracy, tokens), "budget {}", point.max_tokens);
        }
        assert!(curve[0].accuracy < curve[1].accuracy, "the longer budget solves more: the cuts differ");
    }
}
