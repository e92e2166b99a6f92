//! Rewards for reasoning RL: verifiers, outcome/format/process rewards, aggregation, shaping, Bradley-Terry (no_std + alloc).
//!
//! The [`Verifier`] trait is the seam: problem + completion bytes -> [`Reward`] with a [`Verdict`]. Every
//! verifier here is total: no panic, no unbounded recursion, linear time, on any byte input.
//!
//! - [`answer`]: the last `<answer>…</answer>` pair is the answer.
//! - [`expr`], [`rational`]: the Countdown expression grammar, evaluated with checked exact fractions.
//! - [`countdown`]: the Countdown verifier and a step checker for process rewards and search pruning.
//! - [`numeric`]: exact-match and numeric-equivalence verifiers (`3/4` = `0.75`).
//! - [`mod@format`], [`combine`]: format partial credit; weighted and normalise-then-sum combination.
//! - [`aggregate`]: step-score aggregation and best-of-N / voting selection rules.
//! - [`shaping`]: potential-based shaping and DAPO's overlong penalty.
//! - [`preference`]: Bradley-Terry loss with gradients.
//!
//! The crate knows nothing of models or tokenizers: it scores bytes, so the tasks crate, the search
//! crate's selection rules and the RL loop all call the same code.
//!
//! ```
//! use selfplay_reward::{
//!     CountdownProblem, CountdownVerifier, FormatReward, Verdict, Verifier, check_steps, evaluate_answer,
//!     majority_vote,
//! };
//!
//! // Reach 22 with 3, 5 and 7, each used once.
//! let problem = CountdownProblem { nums: vec![3, 5, 7], target: 22 };
//! let verifier = CountdownVerifier::default(); // 1.0 correct, 0.1 answered, 0.0 no answer
//! let completions: [&[u8]; 4] = [
//!     b"3 * 5 = 15\n15 + 7 = 22\n<answer>3 * 5 + 7</answer>",
//!     b"<answer>(3 + 5) * 7</answer>",
//!     b"<answer>3 * 7 + 1</answer>",
//!     b"I give up",
//! ];
//! let verdicts: Vec<Verdict> = completions.iter().map(|c| verifier.verify(&problem, c).verdict).collect();
//! assert_eq!(verdicts, [Verdict::Correct, Verdict::WrongValue, Verdict::WrongNumbers, Verdict::NoAnswer]);
//! assert_eq!(verifier.verify(&problem, completions[0]).value, 1.0);
//! assert_eq!(verifier.verify(&problem, completions[1]).value, 0.1);
//!
//! // Process reward: the steps before the answer are checked one by one.
//! let steps = check_steps(&problem.nums, b"3 * 5 = 15\n15 + 7 = 23\n");
//! assert_eq!((steps.valid_steps, steps.remaining.as_slice()), (1, &[7, 15][..]));
//!
//! // Format credit is independent of correctness.
//! let format = FormatReward::default();
//! assert_eq!(format.score(completions[1]), format.max_score());
//!
//! // Self-consistency: vote over the exact values of the answers (invalid answers do not vote).
//! let values = [b"3 * 5 + 7".as_slice(), b"7 + 5 * 3", b"(3 + 5) * 7", b"3 +"];
//! let keys: Vec<Option<String>> =
//!     values.iter().map(|v| evaluate_answer(&problem.nums, v).ok().map(|r| r.to_string())).collect();
//! assert_eq!(majority_vote(&keys), Some(0));
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;

pub mod aggregate;
pub mod answer;
pub mod combine;
pub mod countdown;
pub mod error;
pub mod expr;
pub mod format;
pub mod numeric;
pub mod preference;
pub mod rational;
pub mod shaping;
pub mod verifier;

pub use aggregate::{
    AnswerSelection, CandidateScores, StepAggregation, UnknownAggregation, aggregate_steps, best_score, majority_vote,
    weighted_vote,
};
pub use answer::extract_answer;
pub use combine::{normalise_then_sum, weighted_sum};
pub use countdown::{
    BACKTRACK_LINE, CountdownProblem, CountdownTarget, CountdownVerifier, StepCheck, StepError, TargetParseError,
    check_steps, evaluate_answer,
};
pub use error::RewardError;
pub use expr::{Expression, Op, ParseError};
pub use format::FormatReward;
pub use numeric::{ExactMatchVerifier, NumberError, NumericVerifier, parse_number};
pub use preference::{PairLoss, bradley_terry_loss};
pub use rational::{ArithError, Rational};
pub use shaping::{OverlongPenalty, potential_shaping};
pub use verifier::{OutcomeLevels, Reward, Verdict, Verifier};
