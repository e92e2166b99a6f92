//! The verifier seam: problem + completion -> a reward with the reason it was given.

use core::fmt;

/// Why a completion got its reward. The reasons are deliberately specific so that reward hacking shows up
/// in reports (a policy drifting toward `WrongNumbers` is trying something).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The answer is right.
    Correct,
    /// The answer parsed (and, for Countdown, used the right numbers) but has the wrong value.
    WrongValue,
    /// A Countdown answer whose literals are not exactly the given multiset of numbers.
    WrongNumbers,
    /// Evaluating the answer divided by zero.
    DivisionByZero,
    /// The answer's value cannot be represented exactly (literal or intermediate too large).
    Overflow,
    /// An answer is present but does not parse.
    Malformed,
    /// No complete `<answer>…</answer>` pair.
    NoAnswer,
}

impl Verdict {
    /// Every verdict, for per-reason tallies.
    pub const ALL: [Verdict; 7] = [
        Verdict::Correct,
        Verdict::WrongValue,
        Verdict::WrongNumbers,
        Verdict::DivisionByZero,
        Verdict::Overflow,
        Verdict::Malformed,
        Verdict::NoAnswer,
    ];

    /// Stable snake_case name, used in JSONL output.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Correct => "correct",
            Verdict::WrongValue => "wrong_value",
            Verdict::WrongNumbers => "wrong_numbers",
            Verdict::DivisionByZero => "division_by_zero",
            Verdict::Overflow => "overflow",
            Verdict::Malformed => "malformed",
            Verdict::NoAnswer => "no_answer",
        }
    }

    /// Whether the answer is right.
    pub const fn is_correct(self) -> bool {
        matches!(self, Verdict::Correct)
    }

    /// Whether an answer was present at all.
    pub const fn has_answer(self) -> bool {
        !matches!(self, Verdict::NoAnswer)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scalar reward and the verdict behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reward {
    /// The reward RL optimises.
    pub value: f32,
    /// Why.
    pub verdict: Verdict,
}

/// Reward levels for an outcome verifier: right, answered-but-wrong, no answer.
///
/// The default (1.0 / 0.1 / 0.0) is the Countdown rule: a small bonus for producing a parseable-or-not
/// answer teaches the format early without paying more than a fraction of a correct answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutcomeLevels {
    /// Reward for a correct answer.
    pub correct: f32,
    /// Reward for any present answer that is not correct (wrong, malformed, overflow, …).
    pub answered: f32,
    /// Reward without an answer.
    pub no_answer: f32,
}

impl Default for OutcomeLevels {
    fn default() -> Self {
        OutcomeLevels { correct: 1.0, answered: 0.1, no_answer: 0.0 }
    }
}

impl OutcomeLevels {
    /// The reward for a verdict under these levels.
    pub fn reward(&self, verdict: Verdict) -> Reward {
        let value = match verdict {
            Verdict::Correct => self.correct,
            Verdict::NoAnswer => self.no_answer,
            _ => self.answered,
        };
        Reward { value, verdict }
    }
}

/// Scores a completion against a problem.
///
/// Implementations must never panic, hang or recurse without bound on any input, including megabytes of
/// text and invalid UTF-8: the completion is raw bytes precisely so that a tokenizer emitting a partial
/// UTF-8 sequence cannot crash the reward. `&str` callers pass `.as_bytes()`.
pub trait Verifier {
    /// What the completion is checked against.
    type Problem: ?Sized;

    /// The reward for `completion` on `problem`.
    fn verify(&self, problem: &Self::Problem, completion: &[u8]) -> Reward;
}
