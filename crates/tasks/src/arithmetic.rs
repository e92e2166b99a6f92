//! Multi-digit addition and multiplication with a step-by-step scratchpad (a second task).
//!
//! Formats (compact, for a character-level policy):
//! - question and prompt: `"457+68"` / `"457+68\n"`;
//! - addition scratchpad: one line per column from the right, `digit+digit(+carry)=sum`, e.g.
//!   `"7+8=15\n5+6+1=12\n4+1=5\n<answer>525</answer>"`;
//! - multiplication scratchpad: one partial product per digit of the right operand (already shifted),
//!   then running sums: `"457*8=3656\n457*60=27420\n3656+27420=31076\n<answer>31076</answer>"`.
//!
//! Difficulty is the digit count of each operand (both operands get the same count). Answers are checked
//! by exact numeric equivalence.

use rand_chacha::ChaCha8Rng;
use selfplay_reward::{ExactMatchVerifier, NumericVerifier, Reward, Verifier, extract_answer, parse_number};
use serde::{Deserialize, Serialize};

use crate::error::TasksError;
use crate::rng::{mix64, split_rng, uniform_inclusive};
use crate::sampler::{Draw, Problems};
use crate::task::{Split, Task};

/// An arithmetic problem as it appears in JSONL: the question text and its expected answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArithmeticProblem {
    /// `"457+68"` or `"457*68"`.
    pub question: String,
    /// The expected answer (a number; compared by numeric equivalence, or as text if it is not one).
    pub answer: String,
}

/// Which operations the generator draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithmeticOps {
    /// Only `+`.
    Add,
    /// Only `*`.
    Mul,
    /// `+` or `*` with equal probability.
    Both,
}

/// Largest operand digit count: two 18-digit numbers multiply to < 10^36, well inside `i128`.
pub const MAX_DIGITS: u32 = 18;

/// Generator settings: operands with `min_digits..=max_digits` digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArithmeticTask {
    /// Fewest digits per operand (at least 1).
    pub min_digits: u32,
    /// Most digits per operand (at most [`MAX_DIGITS`]).
    pub max_digits: u32,
    /// Operations to draw.
    pub ops: ArithmeticOps,
}

impl Default for ArithmeticTask {
    fn default() -> Self {
        ArithmeticTask { min_digits: 1, max_digits: 5, ops: ArithmeticOps::Both }
    }
}

/// 1 in this many problems goes to `val` (by a fixed hash of the question).
const VAL_MODULUS: u64 = 20;

fn split_of(question: &str) -> Split {
    let h = question.bytes().fold(0x243f_6a88_85a3_08d3, |h, b| mix64(h ^ u64::from(b)));
    if h.is_multiple_of(VAL_MODULUS) { Split::Val } else { Split::Train }
}

/// The operands and operator of a well-formed question (`digits op digits`, operands fitting `u64`).
fn parse_question(question: &str) -> Option<(u64, char, u64)> {
    let at = question.find(['+', '*'])?;
    let op = question[at..].chars().next()?;
    let (a, b) = (question.get(..at)?, question.get(at + 1..)?);
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits_only(a) || !digits_only(b) {
        return None;
    }
    Some((a.parse().ok()?, op, b.parse().ok()?))
}

/// The scratchpad for `a + b`.
fn addition_trace(a: u64, b: u64) -> String {
    let mut lines = Vec::new();
    let (mut x, mut y, mut carry) = (a, b, 0u64);
    loop {
        let mut terms = vec![(x % 10).to_string()];
        if y > 0 {
            terms.push((y % 10).to_string());
        }
        if carry > 0 {
            terms.push(carry.to_string());
        }
        let sum = x % 10 + (y % 10) + carry;
        lines.push(format!("{}={sum}", terms.join("+")));
        carry = sum / 10;
        x /= 10;
        y /= 10;
        if x == 0 && y == 0 {
            break;
        }
    }
    // The leftover carry is written as the leading digit of the answer.
    lines.join("\n")
}

/// The scratchpad for `a * b`.
fn multiplication_trace(a: u64, b: u64) -> String {
    let mut lines = Vec::new();
    let mut partials = Vec::new();
    let (mut rest, mut place) = (b, 1u128);
    loop {
        let term = u128::from(rest % 10) * place;
        let partial = u128::from(a) * term;
        lines.push(format!("{a}*{term}={partial}"));
        partials.push(partial);
        rest /= 10;
        place *= 10;
        if rest == 0 {
            break;
        }
    }
    let mut total = partials.first().copied().unwrap_or(0);
    for &p in partials.iter().skip(1) {
        lines.push(format!("{total}+{p}={}", total + p));
        total += p;
    }
    lines.join("\n")
}

impl ArithmeticTask {
    /// The endless stream of problems of `split` ([`Task::generate`] gives its first `n`); an invalid config or
    /// the `val_target` split is refused before the first problem.
    pub fn problems(
        &self,
        split: Split,
        seed: u64,
    ) -> Result<impl Iterator<Item = Result<ArithmeticProblem, TasksError>> + use<>, TasksError> {
        self.validate()?;
        if split == Split::ValTarget {
            return Err(TasksError::UnsupportedSplit { task: "arithmetic", split: split.name() });
        }
        Ok(Problems::new(ArithmeticDraw { task: *self, split, rng: split_rng(seed, split) }))
    }

    fn validate(&self) -> Result<(), TasksError> {
        if self.min_digits == 0 || self.min_digits > self.max_digits || self.max_digits > MAX_DIGITS {
            return Err(TasksError::InvalidConfig(format!("need 1 <= min_digits <= max_digits <= {MAX_DIGITS}")));
        }
        Ok(())
    }

    /// A problem with both operands of `digits` digits.
    fn draw(&self, rng: &mut ChaCha8Rng) -> ArithmeticProblem {
        let digits = uniform_inclusive(rng, u64::from(self.min_digits), u64::from(self.max_digits)) as u32;
        let lo = if digits == 1 { 0 } else { 10u64.pow(digits - 1) };
        let hi = 10u64.pow(digits) - 1;
        let (a, b) = (uniform_inclusive(rng, lo, hi), uniform_inclusive(rng, lo, hi));
        let add = match self.ops {
            ArithmeticOps::Add => true,
            ArithmeticOps::Mul => false,
            ArithmeticOps::Both => uniform_inclusive(rng, 0, 1) == 0,
        };
        let (op, answer) =
            if add { ('+', u128::from(a) + u128::from(b)) } else { ('*', u128::from(a) * u128::from(b)) };
        ArithmeticProblem { question: format!("{a}{op}{b}"), answer: answer.to_string() }
    }
}

/// Arithmetic's [`Draw`]: a problem drawn by [`ArithmeticTask::draw`], kept when its question hashes to the split.
struct ArithmeticDraw {
    task: ArithmeticTask,
    split: Split,
    rng: ChaCha8Rng,
}

impl Draw for ArithmeticDraw {
    type Problem = ArithmeticProblem;

    fn attempt(&mut self) -> Option<ArithmeticProblem> {
        let problem = self.task.draw(&mut self.rng);
        (split_of(&problem.question) == self.split).then_some(problem)
    }
}

impl Task for ArithmeticTask {
    type Problem = ArithmeticProblem;

    fn name(&self) -> &'static str {
        "arithmetic"
    }

    fn prompt(&self, problem: &ArithmeticProblem) -> String {
        format!("{}\n", problem.question)
    }

    /// Numeric equivalence against the expected answer; exact text match if the expected answer is not a
    /// number (a hand-written problem file may hold any answer).
    fn reward(&self, problem: &ArithmeticProblem, completion: &[u8]) -> Reward {
        match parse_number(problem.answer.as_bytes()) {
            Ok(expected) => NumericVerifier::default().verify(&expected, completion),
            Err(_) => ExactMatchVerifier::default().verify(problem.answer.as_bytes(), completion),
        }
    }

    /// The exact value of the answer in lowest terms (`"0.5"` and `"1/2"` share the key `"1/2"`).
    fn answer_key(&self, _problem: &ArithmeticProblem, completion: &[u8]) -> Option<String> {
        parse_number(extract_answer(completion)?).ok().map(|v| v.to_string())
    }

    fn solution_trace(&self, problem: &ArithmeticProblem) -> Option<String> {
        let (a, op, b) = parse_question(&problem.question)?;
        let (steps, answer) = match op {
            '+' => (addition_trace(a, b), u128::from(a) + u128::from(b)),
            _ => (multiplication_trace(a, b), u128::from(a) * u128::from(b)),
        };
        Some(format!("{steps}\n<answer>{answer}</answer>"))
    }

    /// `train` and `val` (disjoint by a fixed hash of the question); there is no `val_target` split.
    fn generate(&self, split: Split, n: usize, seed: u64) -> Result<Vec<ArithmeticProblem>, TasksError> {
        self.problems(split, seed)?.take(n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfplay_reward::Verdict;

    #[test]
    fn scratchpads_are_pinned() {
        let task = ArithmeticTask::default();
        let trace = |q: &str| task.solution_trace(&ArithmeticProblem { question: q.into(), answer: String::new() });
        assert_eq!(trace("457+68").unwrap(), "7+8=15\n5+6+1=12\n4+1=5\n<answer>525</answer>");
        assert_eq!(trace("99+1").unwrap(), "9+1=10\n9+1=10\n<answer>100</answer>");
        assert_eq!(trace("0+0").unwrap(), "0=0\n<answer>0</answer>");
        assert_eq!(trace("457*68").unwrap(), "457*8=3656\n457*60=27420\n3656+27420=31076\n<answer>31076</answer>");
        assert_eq!(trace("12*3").unwrap(), "12*3=36\n<answer>36</answer>");
        for bad in ["", "1+", "+1", "1-2", "a+1", "1+2+3", "99999999999999999999+1"] {
            assert_eq!(trace(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn generated_problems_have_right_answers_and_verifying_traces() {
        let task = ArithmeticTask { min_digits: 1, max_digits: MAX_DIGITS, ops: ArithmeticOps::Both };
        for split in [Split::Train, Split::Val] {
            let problems = task.generate(split, 300, 5).unwrap();
            assert_eq!(problems, task.generate(split, 300, 5).unwrap());
            for p in &problems {
                assert_eq!(split_of(&p.question), split);
                let (a, op, b) = parse_question(&p.question).unwrap();
                // Independent check in u128 arithmetic on the parsed operands.
                let expected = if op == '+' { u128::from(a) + u128::from(b) } else { u128::from(a) * u128::from(b) };
                assert_eq!(p.answer, expected.to_string());
                let trace = task.solution_trace(p).unwrap();
                assert_eq!(task.reward(p, trace.as_bytes()).verdict, Verdict::Correct, "{trace}");
            }
        }
        assert!(matches!(task.generate(Split::ValTarget, 1, 0), Err(TasksError::UnsupportedSplit { .. })));
        let bad = ArithmeticTask { min_digits: 0, ..ArithmeticTask::default() };
        assert!(bad.generate(Split::Train, 1, 0).is_err());
    }

    #[test]
    fn numeric_equivalence_and_keys() {
        let task = ArithmeticTask::default();
        let p = ArithmeticProblem { question: "1*5".into(), answer: "5".into() };
        assert_eq!(task.reward(&p, b"<answer>5.0</answer>").verdict, Verdict::Correct);
        assert_eq!(task.reward(&p, b"<answer>10/2</answer>").verdict, Verdict::Correct);
        assert_eq!(task.reward(&p, b"<answer>6</answer>").value, 0.1);
        assert_eq!(task.reward(&p, b"5").value, 0.0);
        let words = ArithmeticProblem { question: "?".into(), answer: "five".into() };
        assert_eq!(task.reward(&words, b"<answer>five</answer>").verdict, Verdict::Correct);
        assert_eq!(task.answer_key(&p, b"<answer>0.5</answer>"), task.answer_key(&p, b"<answer>1/2</answer>"));
        assert_eq!(task.answer_key(&p, b"<answer>x</answer>"), None);
    }
}
