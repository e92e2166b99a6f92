//! The bounds of every size and number a user gives on the command line, and the clap parsers that enforce them
//! while the command line is read: before a model is loaded or anything is allocated, so `--problems
//! 1000000000000` is a one-line usage error naming the flag and its range, not an abort on allocation or a run
//! without end. Each bound is also written in its flag's `--help` (a test keeps the two in step).

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// Most problems `selfplay tasks generate --n` writes; they are streamed, so only time and disk bound it.
pub const MAX_TASK_PROBLEMS: usize = 1_000_000_000;
/// Most held-out problems `selfplay eval --problems` evaluates on (all are held in memory with their answers).
pub const MAX_EVAL_PROBLEMS: usize = 100_000;
/// Largest `selfplay eval --budget`: samples, beam width or simulations per problem (a run's `eval.budgets` has
/// the same bound).
pub const MAX_BUDGET: u32 = selfplay_engine::o1::MAX_BUDGET;
/// Most candidate next steps per expanded node (`selfplay eval --candidates`).
pub const MAX_CANDIDATES: usize = 256;
/// Most simulations per root candidate (`selfplay eval --root-widening`).
pub const MAX_ROOT_WIDENING: usize = 65_536;
/// Most tokens a search's KV cache holds (`selfplay eval --kv-cache-tokens`; allocated whole when it starts).
pub const MAX_KV_CACHE_TOKENS: usize = selfplay_engine::rollout::step_search::MAX_KV_CACHE_TOKENS;
/// Longest completion `--max-new-tokens` asks for (the KV cache is sized from it before generation starts).
pub const MAX_NEW_TOKENS: usize = 65_536;
/// Most simulations per move of `selfplay game move|play|eval --simulations` (the tree grows with each).
pub const MAX_SIMULATIONS: usize = 100_000;

/// A whole number in `range`, for `value_parser = |s: &str| bounded(s, 1..=MAX)`. A leading `-` is read as a
/// number (the flags allow hyphen values), so `-1` is refused for its value, not taken for an unknown flag.
pub fn bounded<T>(text: &str, range: RangeInclusive<T>) -> Result<T, String>
where
    T: FromStr + PartialOrd + Display,
    T::Err: Display,
{
    let (lo, hi) = (range.start(), range.end());
    match text.trim().parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        Ok(_) => Err(format!("must be a whole number from {lo} to {hi}")),
        Err(e) => Err(format!("{e}: expected a whole number from {lo} to {hi}")),
    }
}

/// A finite number ≥ 0 (a temperature).
pub fn non_negative(text: &str) -> Result<f32, String> {
    real(text, |x| x >= 0.0, "≥ 0")
}

/// A number in (0, 1] (a nucleus mass).
pub fn positive_fraction(text: &str) -> Result<f32, String> {
    real(text, |x| x > 0.0 && x <= 1.0, "in (0, 1]")
}

/// A number in [0, 1].
pub fn fraction(text: &str) -> Result<f32, String> {
    real(text, |x| (0.0..=1.0).contains(&x), "in [0, 1]")
}

/// A finite `f32` for which `ok` holds; `want` says which in the message. NaN and infinities are refused.
fn real(text: &str, ok: impl Fn(f32) -> bool, want: &str) -> Result<f32, String> {
    match text.trim().parse::<f32>() {
        Ok(x) if x.is_finite() && ok(x) => Ok(x),
        Ok(_) => Err(format!("must be a finite number {want}")),
        Err(e) => Err(format!("{e}: expected a finite number {want}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_outside_their_range_are_refused_with_the_range() {
        assert_eq!(bounded("7", 1..=10usize), Ok(7));
        assert_eq!(bounded("0", 1..=10usize).unwrap_err(), "must be a whole number from 1 to 10");
        assert_eq!(bounded("11", 1..=10u32).unwrap_err(), "must be a whole number from 1 to 10");
        assert!(bounded("-1", 1..=10usize).unwrap_err().ends_with("expected a whole number from 1 to 10"));
        assert!(bounded("1e12", 1..=10usize).is_err());
        assert!(bounded("99999999999999999999999", 0..=u64::MAX).is_err());
    }

    #[test]
    fn reals_refuse_nan_infinity_and_out_of_range() {
        assert_eq!(non_negative("0"), Ok(0.0));
        assert_eq!(non_negative("-1").unwrap_err(), "must be a finite number ≥ 0");
        for bad in ["NaN", "inf", "-inf", "1e39", "x", ""] {
            assert!(non_negative(bad).is_err(), "{bad}");
        }
        assert_eq!(positive_fraction("1"), Ok(1.0));
        assert!(positive_fraction("0").is_err() && positive_fraction("1.5").is_err());
        assert_eq!(fraction("0"), Ok(0.0));
        assert!(fraction("-0.1").is_err() && fraction("2").is_err());
    }
}
