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
    AnswerSelection, CandidateScores, StepAggregation, aggregate_steps, best_score, majority_vote, weighted_vote,
};
pub use answer::extract_answer;
pub use combine::{normalise_then_sum, weighted_sum};
pub use countdown::{CountdownProblem, CountdownVerifier, StepCheck, StepError, check_steps, evaluate_answer};
pub use error::RewardError;
pub use expr::{Expression, Op, ParseError};
pub use format::FormatReward;
pub use numeric::{ExactMatchVerifier, NumberError, NumericVerifier, parse_number};
pub use preference::{PairLoss, bradley_terry_loss};
pub use rational::{ArithError, Rational};
pub use shaping::{OverlongPenalty, potential_shaping};
pub use verifier::{OutcomeLevels, Reward, Verdict, Verifier};
