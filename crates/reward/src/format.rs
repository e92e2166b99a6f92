//! Format reward: partial credit for the shape of a completion, independent of whether it is right.
//!
//! Useful early in RL, before outcome rewards are dense, and as a guard against degenerate outputs.
//! Each criterion earns its configured credit; the reward is their sum.

use crate::answer::last_answer_span;

/// Credits for each format criterion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FormatReward {
    /// Credit for containing at least one complete `<answer>…</answer>` pair.
    pub answer_present: f32,
    /// Credit for containing exactly one pair (no hedging with several answers).
    pub single_answer: f32,
    /// Credit for ending with the answer (only ASCII whitespace after the last `</answer>`).
    pub ends_with_answer: f32,
    /// Credit for a non-blank answer content.
    pub non_empty_answer: f32,
}

impl Default for FormatReward {
    /// Credits summing to 1.0, half of it for simply answering.
    fn default() -> Self {
        FormatReward { answer_present: 0.5, single_answer: 0.2, ends_with_answer: 0.2, non_empty_answer: 0.1 }
    }
}

impl FormatReward {
    /// The sum of the credits `completion` earns (0 when it has no answer pair).
    pub fn score(&self, completion: &[u8]) -> f32 {
        let Some(span) = last_answer_span(completion) else { return 0.0 };
        let after = completion.get(span.end..).unwrap_or_default();
        let mut total = self.answer_present;
        if span.pairs == 1 {
            total += self.single_answer;
        }
        if after.trim_ascii().is_empty() {
            total += self.ends_with_answer;
        }
        if !span.content.trim_ascii().is_empty() {
            total += self.non_empty_answer;
        }
        total
    }

    /// The most a completion can earn.
    pub fn max_score(&self) -> f32 {
        self.answer_present + self.single_answer + self.ends_with_answer + self.non_empty_answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_credit_per_criterion() {
        let f = FormatReward { answer_present: 1.0, single_answer: 2.0, ends_with_answer: 4.0, non_empty_answer: 8.0 };
        assert_eq!(f.score(b"no answer"), 0.0);
        assert_eq!(f.score(b"x <answer>5</answer>\n"), 15.0);
        assert_eq!(f.score(b"<answer>5</answer> and more"), 11.0);
        assert_eq!(f.score(b"<answer>4</answer><answer>5</answer>"), 13.0);
        assert_eq!(f.score(b"<answer> </answer>"), 7.0);
        assert_eq!(f.max_score(), 15.0);
        assert_eq!(FormatReward::default().max_score(), 1.0);
    }
}
