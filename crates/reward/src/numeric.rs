//! Outcome verifiers for tasks whose answer is a value: exact text match and numeric equivalence.
//!
//! Numeric equivalence compares exact rationals, so `3/4`, `0.75`, `0.750` and `6/8` are one answer and
//! no float rounding can make two different values equal.

use crate::answer::extract_answer;
use crate::rational::{ArithError, Rational};
use crate::verifier::{OutcomeLevels, Reward, Verdict, Verifier};

/// Why a number did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Not one of the accepted forms.
    #[error("not a number: expected an integer, a decimal or a fraction")]
    Malformed,
    /// A fraction with denominator zero.
    #[error("fraction with zero denominator")]
    ZeroDenominator,
    /// Too many digits to hold exactly.
    #[error("number too large to represent exactly")]
    Overflow,
}

/// Parses an exact number: `[+-]digits`, `[+-]digits.digits` (either side of the point may be empty, not
/// both) or `[+-]digits/digits` (ASCII whitespace allowed around `/` and at both ends). No thousands
/// separators, exponents, or signs on denominators.
pub fn parse_number(text: &[u8]) -> Result<Rational, NumberError> {
    let text = text.trim_ascii();
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let magnitude = if let Some(slash) = body.iter().position(|&b| b == b'/') {
        let num = digits_value(body.get(..slash).unwrap_or_default().trim_ascii_end())?;
        let den = digits_value(body.get(slash + 1..).unwrap_or_default().trim_ascii_start())?;
        Rational::new(num, den).map_err(arith)?
    } else if let Some(point) = body.iter().position(|&b| b == b'.') {
        let (int_part, frac_part) = (body.get(..point).unwrap_or_default(), body.get(point + 1..).unwrap_or_default());
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(NumberError::Malformed);
        }
        let int = if int_part.is_empty() { 0 } else { digits_value(int_part)? };
        let frac = if frac_part.is_empty() { 0 } else { digits_value(frac_part)? };
        let scale =
            u32::try_from(frac_part.len()).ok().and_then(|e| 10i128.checked_pow(e)).ok_or(NumberError::Overflow)?;
        Rational::from_int(int).checked_add(Rational::new(frac, scale).map_err(arith)?).map_err(arith)?
    } else {
        Rational::from_int(digits_value(body)?)
    };
    if negative { Rational::ZERO.checked_sub(magnitude).map_err(arith) } else { Ok(magnitude) }
}

fn arith(e: ArithError) -> NumberError {
    match e {
        ArithError::DivisionByZero => NumberError::ZeroDenominator,
        ArithError::Overflow => NumberError::Overflow,
    }
}

/// The value of a non-empty run of ASCII digits.
fn digits_value(digits: &[u8]) -> Result<i128, NumberError> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(NumberError::Malformed);
    }
    digits.iter().try_fold(0i128, |acc, &d| {
        acc.checked_mul(10).and_then(|v| v.checked_add(i128::from(d - b'0'))).ok_or(NumberError::Overflow)
    })
}

/// Correct when the last answer's content is numerically equal to the expected value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NumericVerifier {
    /// Reward levels.
    pub levels: OutcomeLevels,
}

impl Verifier for NumericVerifier {
    type Problem = Rational;

    fn verify(&self, expected: &Rational, completion: &[u8]) -> Reward {
        let verdict = match extract_answer(completion).map(parse_number) {
            None => Verdict::NoAnswer,
            Some(Ok(value)) if value == *expected => Verdict::Correct,
            Some(Ok(_)) => Verdict::WrongValue,
            Some(Err(NumberError::Overflow)) => Verdict::Overflow,
            Some(Err(NumberError::ZeroDenominator)) => Verdict::DivisionByZero,
            Some(Err(NumberError::Malformed)) => Verdict::Malformed,
        };
        self.levels.reward(verdict)
    }
}

/// Correct when the last answer's content equals the expected bytes, ignoring surrounding whitespace.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExactMatchVerifier {
    /// Reward levels.
    pub levels: OutcomeLevels,
}

impl Verifier for ExactMatchVerifier {
    type Problem = [u8];

    fn verify(&self, expected: &[u8], completion: &[u8]) -> Reward {
        let verdict = match extract_answer(completion) {
            None => Verdict::NoAnswer,
            Some(content) if content.trim_ascii() == expected.trim_ascii() => Verdict::Correct,
            Some(_) => Verdict::WrongValue,
        };
        self.levels.reward(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i128, d: i128) -> Rational {
        Rational::new(n, d).unwrap()
    }

    #[test]
    fn accepted_forms_are_exact() {
        let three_quarters = q(3, 4);
        for s in ["3/4", "0.75", ".75", "0.750", "6/8", " 3 / 4 ", "+0.75", "+3/4"] {
            assert_eq!(parse_number(s.as_bytes()), Ok(three_quarters), "{s:?}");
        }
        assert_eq!(parse_number(b"-2.5"), Ok(q(-5, 2)));
        assert_eq!(parse_number(b"-3/6"), Ok(q(-1, 2)));
        assert_eq!(parse_number(b"12."), Ok(q(12, 1)));
        assert_eq!(parse_number(b"007"), Ok(q(7, 1)));
        assert_eq!(parse_number(b"0.1"), Ok(q(1, 10)), "exact, not the float 0.1");
    }

    #[test]
    fn rejected_forms() {
        for s in ["", ".", "-", "1,000", "1e3", "3/-4", "1/2/3", "1.2.3", "--1", "0x10", "½", "1 2", "3/", "/4"] {
            assert_eq!(parse_number(s.as_bytes()), Err(NumberError::Malformed), "{s:?}");
        }
        assert_eq!(parse_number(b"1/0"), Err(NumberError::ZeroDenominator));
        assert_eq!(parse_number("9".repeat(40).as_bytes()), Err(NumberError::Overflow));
        assert_eq!(parse_number(format!("0.{}", "0".repeat(39)).as_bytes()), Err(NumberError::Overflow));
    }

    #[test]
    fn numeric_verifier_levels() {
        let v = NumericVerifier::default();
        let expected = q(3, 4);
        let verdict = |s: &str| v.verify(&expected, s.as_bytes());
        assert_eq!(verdict("so <answer>0.75</answer>"), Reward { value: 1.0, verdict: Verdict::Correct });
        assert_eq!(verdict("<answer>0.7500001</answer>").verdict, Verdict::WrongValue);
        assert_eq!(verdict("<answer>three quarters</answer>"), Reward { value: 0.1, verdict: Verdict::Malformed });
        assert_eq!(verdict("0.75"), Reward { value: 0.0, verdict: Verdict::NoAnswer });
    }

    #[test]
    fn exact_match_trims_whitespace_only() {
        let v = ExactMatchVerifier::default();
        assert_eq!(v.verify(b"Paris", b"<answer> Paris\n</answer>").verdict, Verdict::Correct);
        assert_eq!(v.verify(b"Paris", b"<answer>paris</answer>").verdict, Verdict::WrongValue);
        assert_eq!(v.verify(b"Paris", b"Paris").verdict, Verdict::NoAnswer);
    }
}
