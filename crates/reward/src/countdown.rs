//! The Countdown verifier and step checker.
//!
//! A Countdown problem is a multiset of numbers and a target. A completion is correct when the content of
//! its last `<answer>…</answer>` pair (see [`crate::answer`]) is an expression in the grammar of
//! [`crate::expr`] whose literals are **exactly** the given multiset (each number used once, all used) and
//! whose exact rational value equals the target. Checks run in this order, and the first failure is the
//! verdict: no answer -> `NoAnswer`; does not parse -> `Malformed` (a literal beyond 64 bits ->
//! `Overflow`); literals differ from the numbers -> `WrongNumbers`; division by zero -> `DivisionByZero`;
//! an intermediate beyond `i128` fractions -> `Overflow`; value differs -> `WrongValue`.
//!
//! Generated problems have targets in `u64`; a problem read from outside may have any integer target
//! ([`CountdownTarget`]: negative, or beyond every integer type), which [`CountdownVerifier::verify_target`]
//! scores the same way.

use alloc::vec::Vec;
use core::str::FromStr;

use crate::answer::extract_answer;
use crate::expr::{Expression, Op, ParseError};
use crate::rational::{ArithError, Rational};
use crate::verifier::{OutcomeLevels, Reward, Verdict, Verifier};

/// A Countdown problem: reach `target` using every number in `nums` exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CountdownProblem {
    /// The numbers (a multiset: order is irrelevant, repeats count).
    pub nums: Vec<u64>,
    /// The value to reach.
    pub target: u64,
}

/// Any integer target, as the verifier compares it. Every value an answer can have is an `i128` fraction (an
/// intermediate beyond that is `Overflow`), so a target outside `i128` is one no answer reaches: it is kept as
/// [`CountdownTarget::Unreachable`], and a well-formed answer over the right numbers is `WrongValue` against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CountdownTarget {
    /// A target within `i128`.
    Int(i128),
    /// A target beyond `i128` either way.
    Unreachable,
}

impl From<u64> for CountdownTarget {
    fn from(target: u64) -> Self {
        CountdownTarget::Int(i128::from(target))
    }
}

/// Why text is not an integer target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected an integer (digits with an optional sign)")]
pub struct TargetParseError;

impl FromStr for CountdownTarget {
    type Err = TargetParseError;

    /// Decimal digits with an optional `+` or `-`, of any length: `"24"`, `"-7"`, a 40-digit number.
    fn from_str(text: &str) -> Result<Self, TargetParseError> {
        let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TargetParseError);
        }
        // Only the digits were checked, so the one failure left is a value beyond i128.
        Ok(text.parse::<i128>().map_or(CountdownTarget::Unreachable, CountdownTarget::Int))
    }
}

/// Verifies Countdown completions; rewards follow [`OutcomeLevels`] (1.0 / 0.1 / 0.0 by default).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CountdownVerifier {
    /// Reward levels.
    pub levels: OutcomeLevels,
}

impl Verifier for CountdownVerifier {
    type Problem = CountdownProblem;

    fn verify(&self, problem: &CountdownProblem, completion: &[u8]) -> Reward {
        self.verify_target(&problem.nums, problem.target.into(), completion)
    }
}

impl CountdownVerifier {
    /// [`Verifier::verify`] for the problem `nums` → `target`, whatever integer the target is.
    pub fn verify_target(&self, nums: &[u64], target: CountdownTarget, completion: &[u8]) -> Reward {
        let verdict = match extract_answer(completion) {
            None => Verdict::NoAnswer,
            Some(content) => judge_target(nums, target, content),
        };
        self.levels.reward(verdict)
    }
}

/// The verdict for an answer's content (the text between the tags).
pub fn judge_expression(problem: &CountdownProblem, content: &[u8]) -> Verdict {
    judge_target(&problem.nums, problem.target.into(), content)
}

/// The verdict for an answer's content against `nums` → `target`.
fn judge_target(nums: &[u64], target: CountdownTarget, content: &[u8]) -> Verdict {
    match (evaluate_answer(nums, content), target) {
        (Ok(value), CountdownTarget::Int(target)) if value == Rational::from_int(target) => Verdict::Correct,
        (Ok(_), _) => Verdict::WrongValue,
        (Err(verdict), _) => verdict,
    }
}

/// The exact value of an answer's content if it is a valid expression over exactly `nums`; otherwise the
/// verdict that rejects it. It does not look at the target, so it can key answers for voting.
pub fn evaluate_answer(nums: &[u64], content: &[u8]) -> Result<Rational, Verdict> {
    let expr = match Expression::parse(content) {
        Ok(expr) => expr,
        Err(ParseError::LiteralTooLarge { .. }) => return Err(Verdict::Overflow),
        Err(_) => return Err(Verdict::Malformed),
    };
    if !uses_exactly(&expr, nums) {
        return Err(Verdict::WrongNumbers);
    }
    expr.evaluate().map_err(|e| match e {
        ArithError::DivisionByZero => Verdict::DivisionByZero,
        ArithError::Overflow => Verdict::Overflow,
    })
}

/// Whether the expression's literals are exactly the multiset `nums`.
fn uses_exactly(expr: &Expression, nums: &[u64]) -> bool {
    // Count first so that a megabyte of literals is rejected without sorting it.
    if expr.literals().count() != nums.len() {
        return false;
    }
    let mut used: Vec<u64> = expr.literals().collect();
    let mut given = nums.to_vec();
    used.sort_unstable();
    given.sort_unstable();
    used == given
}

/// Why a trace step is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepError {
    /// The line is not `a op b = c` with non-negative integer literals.
    Malformed,
    /// `a` or `b` is not among the numbers still available (each can be used once).
    UnavailableOperand,
    /// `c` is not `a op b`.
    WrongResult,
    /// `a op b` is negative or not a whole number; steps stay in the non-negative integers.
    NotWhole,
    /// A [`BACKTRACK_LINE`] with no step left to undo.
    NothingToUndo,
}

/// The line of a search stream that undoes the most recent step still standing (Stream of Search's "moving back
/// to the parent node"): after it, the numbers are those before that step.
pub const BACKTRACK_LINE: &str = "back";

/// The result of checking a step trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepCheck {
    /// Number of valid lines (steps and backtracks) before the first invalid one.
    pub valid_steps: usize,
    /// The first invalid step: (index among the checked lines, why). `None` if all are valid.
    pub error: Option<(usize, StepError)>,
    /// The numbers available after the valid lines (sorted).
    pub remaining: Vec<u64>,
}

/// Checks a (possibly partial) step trace: every complete line before the first line that starts an
/// answer (`<answer>`) must be `a op b = c` where `a` and `b` are available numbers, `c = a op b` is a
/// non-negative integer, and `c` replaces `a` and `b` — or, in a search stream, [`BACKTRACK_LINE`], which
/// undoes the most recent step still standing. Checking stops at the first invalid line.
///
/// Only newline-terminated lines are checked, so a trace cut mid-line (during generation or step search)
/// is judged on what it has finished. Blank lines are skipped. This is the unit for process rewards
/// (`valid_steps` out of the steps taken) and for pruning search branches.
pub fn check_steps(nums: &[u64], trace: &[u8]) -> StepCheck {
    let mut remaining = nums.to_vec();
    remaining.sort_unstable();
    let mut valid_steps = 0;
    let complete = match trace.iter().rposition(|&b| b == b'\n') {
        Some(last_newline) => trace.get(..last_newline).unwrap_or_default(),
        None => return StepCheck { valid_steps, error: None, remaining },
    };
    let lines = complete.split(|&b| b == b'\n').map(<[u8]>::trim_ascii).filter(|l| !l.is_empty());
    // The steps still standing, as (a, b, c), so that a backtrack can put `a` and `b` back in place of `c`.
    let mut standing = Vec::new();
    for line in lines {
        if line.starts_with(crate::answer::OPEN_TAG) {
            break;
        }
        let applied = if line == BACKTRACK_LINE.as_bytes() {
            undo_step(&mut remaining, standing.pop())
        } else {
            apply_step(&mut remaining, line).map(|step| standing.push(step))
        };
        if let Err(e) = applied {
            return StepCheck { valid_steps, error: Some((valid_steps, e)), remaining };
        }
        valid_steps += 1;
    }
    StepCheck { valid_steps, error: None, remaining }
}

/// Undoes `step` (the most recent one standing) on the sorted multiset `available`.
fn undo_step(available: &mut Vec<u64>, step: Option<(u64, u64, u64)>) -> Result<(), StepError> {
    let (a, b, c) = step.ok_or(StepError::NothingToUndo)?;
    // `c` was put there by the step and nothing since has taken it: the steps after it were undone.
    take(available, c)?;
    insert_sorted(available, a);
    insert_sorted(available, b);
    Ok(())
}

/// Applies one `a op b = c` line to the sorted multiset `available`; returns the step's numbers.
fn apply_step(available: &mut Vec<u64>, line: &[u8]) -> Result<(u64, u64, u64), StepError> {
    let (a, op, b, c) = parse_step(line).ok_or(StepError::Malformed)?;
    let value = op.apply(Rational::from_int(i128::from(a)), Rational::from_int(i128::from(b)));
    let whole = match value {
        Ok(v) => v.to_integer().and_then(|n| u64::try_from(n).ok()),
        Err(_) => None,
    };
    let Some(whole) = whole else { return Err(StepError::NotWhole) };
    if whole != c {
        return Err(StepError::WrongResult);
    }
    take(available, a)?;
    take(available, b).inspect_err(|_| insert_sorted(available, a))?;
    insert_sorted(available, c);
    Ok((a, b, c))
}

fn take(available: &mut Vec<u64>, n: u64) -> Result<(), StepError> {
    let at = available.binary_search(&n).map_err(|_| StepError::UnavailableOperand)?;
    available.remove(at);
    Ok(())
}

fn insert_sorted(available: &mut Vec<u64>, n: u64) {
    let at = available.partition_point(|&x| x < n);
    available.insert(at, n);
}

/// Parses `a op b = c` (ASCII whitespace allowed between tokens) into its parts.
pub fn parse_step(line: &[u8]) -> Option<(u64, Op, u64, u64)> {
    let mut rest = line;
    let a = take_number(&mut rest)?;
    let op = Op::from_byte(*skip_ws(&mut rest).first()?)?;
    rest = rest.get(1..)?;
    let b = take_number(&mut rest)?;
    if skip_ws(&mut rest).first() != Some(&b'=') {
        return None;
    }
    rest = rest.get(1..)?;
    let c = take_number(&mut rest)?;
    skip_ws(&mut rest).is_empty().then_some((a, op, b, c))
}

fn skip_ws<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    *rest = rest.trim_ascii_start();
    rest
}

fn take_number(rest: &mut &[u8]) -> Option<u64> {
    let s = skip_ws(rest);
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut n: u64 = 0;
    for &d in s.get(..digits)? {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    *rest = s.get(digits..)?;
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;
    use alloc::vec;

    fn problem(nums: &[u64], target: u64) -> CountdownProblem {
        CountdownProblem { nums: nums.to_vec(), target }
    }

    fn verdict(p: &CountdownProblem, completion: &str) -> (f32, Verdict) {
        let r = CountdownVerifier::default().verify(p, completion.as_bytes());
        (r.value, r.verdict)
    }

    /// Targets read from outside: negative, beyond u64, beyond i128 (40 digits), and text that is no integer.
    #[test]
    fn any_integer_target_is_scored() {
        let target = |text: &str| text.parse::<CountdownTarget>().unwrap();
        let judge = |nums: &[u64], t: &str, answer: &str| {
            CountdownVerifier::default().verify_target(nums, target(t), answer.as_bytes()).verdict
        };
        assert_eq!(judge(&[1, 5], "-4", "<answer>1 - 5</answer>"), Verdict::Correct);
        assert_eq!(judge(&[1, 5], "-4", "<answer>5 - 1</answer>"), Verdict::WrongValue);
        assert_eq!(judge(&[1, 5], "+4", "<answer>5 - 1</answer>"), Verdict::Correct);
        let two_32 = 1u64 << 32;
        let answer = "<answer>4294967296 * 4294967296 * 4294967296</answer>";
        assert_eq!(judge(&[two_32; 3], "79228162514264337593543950336", answer), Verdict::Correct, "2^96");
        let forty = "1234567890123456789012345678901234567890";
        assert_eq!(target(forty), CountdownTarget::Unreachable);
        assert_eq!(target(&format!("-{forty}")), CountdownTarget::Unreachable);
        assert_eq!(judge(&[1, 5], forty, "<answer>1 + 5</answer>"), Verdict::WrongValue);
        assert_eq!(judge(&[1, 5], forty, "<answer>1 + 1</answer>"), Verdict::WrongNumbers);
        assert_eq!(target("170141183460469231731687303715884105727"), CountdownTarget::Int(i128::MAX));
        for bad in ["", "-", "+-1", "1.0", "1e3", " 1", "0x10", "١"] {
            assert_eq!(bad.parse::<CountdownTarget>(), Err(TargetParseError), "{bad:?}");
        }
    }

    #[test]
    fn the_answer_rule_point_by_point() {
        let p = problem(&[3, 8, 12, 2], 24);
        assert_eq!(verdict(&p, "<answer>12 * 2 * (8 / 8) </answer>"), (0.1, Verdict::WrongNumbers));
        assert_eq!(verdict(&p, "think\n<answer>(8-2)*(12/3)</answer>"), (1.0, Verdict::Correct));
        assert_eq!(verdict(&p, "<answer>\n 3 * 8 *\t(12 / 12) </answer>"), (0.1, Verdict::WrongNumbers));
        // The LAST pair counts, both ways round.
        assert_eq!(verdict(&p, "<answer>(8-2)*(12/3)</answer> <answer>8+3+12+2</answer>"), (0.1, Verdict::WrongValue));
        assert_eq!(verdict(&p, "<answer>8+3+12+2</answer> <answer>(8-2)*(12/3)</answer>"), (1.0, Verdict::Correct));
        // No answer -> 0.0, including unclosed and upper-case tags.
        assert_eq!(verdict(&p, "(8-2)*(12/3) = 24"), (0.0, Verdict::NoAnswer));
        assert_eq!(verdict(&p, "<answer>(8-2)*(12/3)"), (0.0, Verdict::NoAnswer));
        assert_eq!(verdict(&p, "<ANSWER>(8-2)*(12/3)</ANSWER>"), (0.0, Verdict::NoAnswer));
        // Present but malformed -> 0.1.
        for bad in ["", "24", "(8-2)*(12/3)=24", "-(2-8)*(12/3)", "(8-2)*(12/3.0)", "(8-2)x(12/3)", "6*4 ** 1"] {
            let (value, v) = verdict(&p, &format!("<answer>{bad}</answer>"));
            assert_eq!(value, 0.1, "{bad:?}");
            assert!(matches!(v, Verdict::Malformed | Verdict::WrongNumbers), "{bad:?} -> {v:?}");
        }
    }

    #[test]
    fn multiset_must_match_exactly() {
        let p = problem(&[5, 5, 2], 20);
        assert_eq!(verdict(&p, "<answer>(5+5)*2</answer>").1, Verdict::Correct);
        assert_eq!(verdict(&p, "<answer>(5+5)*2*1</answer>").1, Verdict::WrongNumbers, "extra number");
        assert_eq!(verdict(&p, "<answer>5*2*2</answer>").1, Verdict::WrongNumbers, "reused number");
        assert_eq!(verdict(&p, "<answer>5*(2+2)</answer>").1, Verdict::WrongNumbers, "missing a 5");
        assert_eq!(verdict(&p, "<answer>10*2</answer>").1, Verdict::WrongNumbers, "merged numbers");
        assert_eq!(verdict(&p, "<answer>(05+5)*02</answer>").1, Verdict::Correct, "leading zeros keep the value");
    }

    #[test]
    fn exact_division_zero_and_overflow() {
        assert_eq!(verdict(&problem(&[8, 3, 3], 8), "<answer>8/3*3</answer>").1, Verdict::Correct);
        assert_eq!(verdict(&problem(&[1, 3, 4, 6], 24), "<answer>6/(1-3/4)</answer>").1, Verdict::Correct);
        assert_eq!(verdict(&problem(&[5, 3, 3], 1), "<answer>5/(3-3)</answer>"), (0.1, Verdict::DivisionByZero));
        let huge = u64::MAX;
        let p = problem(&[huge, huge, huge], 1);
        assert_eq!(verdict(&p, &format!("<answer>{huge}*{huge}*{huge}</answer>")), (0.1, Verdict::Overflow));
        let p = problem(&[1], 1);
        assert_eq!(verdict(&p, "<answer>123456789012345678901234567890</answer>").1, Verdict::Overflow);
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let p = problem(&[1, 2], 3);
        let mut deep = String::from("<answer>");
        deep.extend(core::iter::repeat_n('(', 1 << 20));
        deep.push_str("</answer>");
        assert_eq!(verdict(&p, &deep).1, Verdict::Malformed);
        let many = format!("<answer>{}1</answer>", "1+".repeat(1 << 19));
        assert_eq!(verdict(&p, &many).1, Verdict::WrongNumbers);
        let bytes = b"<answer>1+\xff2</answer>";
        assert_eq!(CountdownVerifier::default().verify(&p, bytes).verdict, Verdict::Malformed);
    }

    #[test]
    fn step_checker_replays_valid_steps() {
        let trace = b"8*3=24\n12 / 2 = 6\n24*6=144\n";
        let c = check_steps(&[3, 8, 12, 2], trace);
        assert_eq!((c.valid_steps, c.error, c.remaining), (3, None, vec![144]));
        // A partial last line is not judged yet.
        let c = check_steps(&[3, 8, 12, 2], b"8*3=24\n12/2=");
        assert_eq!((c.valid_steps, c.error), (1, None));
        // Stops at the answer line.
        let c = check_steps(&[3, 8], b"8*3=24\n<answer>8*3</answer>\nnonsense\n");
        assert_eq!((c.valid_steps, c.error), (1, None));
    }

    #[test]
    fn step_checker_reports_first_bad_step() {
        let nums = [3, 8, 12, 2];
        let first_error = |t: &str| check_steps(&nums, t.as_bytes()).error;
        assert_eq!(first_error("8*3=24\n8*2=16\n"), Some((1, StepError::UnavailableOperand)), "8 already used");
        assert_eq!(first_error("8*7=56\n"), Some((0, StepError::UnavailableOperand)));
        assert_eq!(first_error("3*3=9\n"), Some((0, StepError::UnavailableOperand)), "3 used twice");
        assert_eq!(first_error("8*3=25\n"), Some((0, StepError::WrongResult)));
        assert_eq!(first_error("3-8=5\n"), Some((0, StepError::NotWhole)));
        assert_eq!(first_error("8/3=2\n"), Some((0, StepError::NotWhole)));
        assert_eq!(first_error("8/0=0\n"), Some((0, StepError::NotWhole)));
        assert_eq!(first_error("8*3\n"), Some((0, StepError::Malformed)));
        assert_eq!(first_error("8*3=24=24\n"), Some((0, StepError::Malformed)));
        assert_eq!(first_error("(8*3)=24\n"), Some((0, StepError::Malformed)));
        // A failed second operand leaves the first one available.
        let c = check_steps(&nums, b"8*9=72\n");
        assert_eq!(c.remaining, vec![2, 3, 8, 12]);
    }

    /// A search stream: `back` restores the numbers before the most recent step standing, backtracks nest, and
    /// one with nothing to undo is an error.
    #[test]
    fn step_checker_follows_backtracks() {
        let nums = [3, 8, 12, 2];
        let c = check_steps(&nums, b"8*3=24\n24-12=12\nback\nback\n12/2=6\n8-6=2\n");
        assert_eq!((c.valid_steps, c.error, c.remaining), (6, None, vec![2, 3]));
        // After undoing 8*3=24, the 8 is free again and the 24 gone.
        assert_eq!(check_steps(&nums, b"8*3=24\nback\n24-2=22\n").error, Some((2, StepError::UnavailableOperand)));
        assert_eq!(check_steps(&nums, b"8*3=24\nback\n8-2=6\n").error, None);
        assert_eq!(check_steps(&nums, b"back\n").error, Some((0, StepError::NothingToUndo)));
        assert_eq!(check_steps(&nums, b"8*3=24\nback\nback\n").error, Some((2, StepError::NothingToUndo)));
        assert_eq!(check_steps(&nums, b"backtrack\n").error, Some((0, StepError::Malformed)));
    }
}
