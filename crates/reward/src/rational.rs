//! Exact rational numbers on checked `i128`, for verifiers that must never round.
//!
//! Every operation reports overflow instead of wrapping, so a verifier can call an unrepresentable value
//! "wrong" rather than accept a wrapped-around coincidence. Values are kept in lowest terms with a
//! positive denominator, so equality is structural.

use core::fmt;

/// Why an exact computation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArithError {
    /// Division by zero.
    DivisionByZero,
    /// A numerator or denominator no longer fits in `i128`.
    Overflow,
}

/// A fraction `num / den` in lowest terms with `den > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rational {
    num: i128,
    den: i128,
}

impl Rational {
    /// Zero.
    pub const ZERO: Rational = Rational { num: 0, den: 1 };

    /// The integer `n`.
    pub const fn from_int(n: i128) -> Rational {
        Rational { num: n, den: 1 }
    }

    /// `num / den` reduced to lowest terms.
    pub fn new(num: i128, den: i128) -> Result<Rational, ArithError> {
        if den == 0 {
            return Err(ArithError::DivisionByZero);
        }
        let g = gcd(num.unsigned_abs(), den.unsigned_abs());
        // g >= 1 because den != 0; g divides both, so the quotients fit unless the value is i128::MIN / -1.
        let g = i128::try_from(g).map_err(|_| ArithError::Overflow)?;
        let (mut num, mut den) = (num / g, den / g);
        if den < 0 {
            num = num.checked_neg().ok_or(ArithError::Overflow)?;
            den = den.checked_neg().ok_or(ArithError::Overflow)?;
        }
        Ok(Rational { num, den })
    }

    /// Numerator (carries the sign).
    pub const fn numer(self) -> i128 {
        self.num
    }

    /// Denominator (always positive).
    pub const fn denom(self) -> i128 {
        self.den
    }

    /// `Some(n)` when the value is the integer `n`.
    pub const fn to_integer(self) -> Option<i128> {
        if self.den == 1 { Some(self.num) } else { None }
    }

    /// `self + rhs`, exactly.
    pub fn checked_add(self, rhs: Rational) -> Result<Rational, ArithError> {
        self.add_scaled(rhs, false)
    }

    /// `self - rhs`, exactly.
    pub fn checked_sub(self, rhs: Rational) -> Result<Rational, ArithError> {
        self.add_scaled(rhs, true)
    }

    /// `a/b ± c/d = (a·(d/g) ± c·(b/g)) / (b·(d/g))` with `g = gcd(b, d)`, which keeps intermediates small.
    fn add_scaled(self, rhs: Rational, subtract: bool) -> Result<Rational, ArithError> {
        let g =
            i128::try_from(gcd(self.den.unsigned_abs(), rhs.den.unsigned_abs())).map_err(|_| ArithError::Overflow)?;
        let (b_g, d_g) = (self.den / g, rhs.den / g);
        let left = self.num.checked_mul(d_g).ok_or(ArithError::Overflow)?;
        let right = rhs.num.checked_mul(b_g).ok_or(ArithError::Overflow)?;
        let num =
            if subtract { left.checked_sub(right) } else { left.checked_add(right) }.ok_or(ArithError::Overflow)?;
        let den = self.den.checked_mul(d_g).ok_or(ArithError::Overflow)?;
        Rational::new(num, den)
    }

    /// `self * rhs`, exactly (cross-reduced first so that results that fit are found).
    pub fn checked_mul(self, rhs: Rational) -> Result<Rational, ArithError> {
        let g1 =
            i128::try_from(gcd(self.num.unsigned_abs(), rhs.den.unsigned_abs())).map_err(|_| ArithError::Overflow)?;
        let g2 =
            i128::try_from(gcd(rhs.num.unsigned_abs(), self.den.unsigned_abs())).map_err(|_| ArithError::Overflow)?;
        // gcd(x, d) with d > 0 is >= 1, so these divisions are defined.
        let num = (self.num / g1).checked_mul(rhs.num / g2).ok_or(ArithError::Overflow)?;
        let den = (self.den / g2).checked_mul(rhs.den / g1).ok_or(ArithError::Overflow)?;
        Rational::new(num, den)
    }

    /// `self / rhs`, exactly; dividing by zero is an error.
    pub fn checked_div(self, rhs: Rational) -> Result<Rational, ArithError> {
        if rhs.num == 0 {
            return Err(ArithError::DivisionByZero);
        }
        let recip = Rational::new(rhs.den, rhs.num)?;
        self.checked_mul(recip)
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 { write!(f, "{}", self.num) } else { write!(f, "{}/{}", self.num, self.den) }
    }
}

/// Binary-free Euclid on magnitudes; `gcd(0, 0) = 0`.
fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i128, d: i128) -> Rational {
        Rational::new(n, d).unwrap()
    }

    #[test]
    fn normalises_sign_and_terms() {
        assert_eq!(r(6, -4), r(-3, 2));
        assert_eq!(r(-6, -4), r(3, 2));
        assert_eq!(r(0, -5), Rational::ZERO);
        assert_eq!(r(-3, 2).denom(), 2);
        assert_eq!(Rational::new(1, 0), Err(ArithError::DivisionByZero));
    }

    #[test]
    fn exact_field_operations() {
        assert_eq!(r(8, 1).checked_div(r(3, 1)).unwrap().checked_mul(r(3, 1)).unwrap(), r(8, 1));
        assert_eq!(r(1, 6).checked_add(r(1, 3)).unwrap(), r(1, 2));
        assert_eq!(r(1, 6).checked_sub(r(1, 3)).unwrap(), r(-1, 6));
        assert_eq!(r(3, 4).to_integer(), None);
        assert_eq!(r(8, 4).to_integer(), Some(2));
        assert_eq!(r(5, 1).checked_div(Rational::ZERO), Err(ArithError::DivisionByZero));
        assert_eq!(format!("{}", r(-3, 4)), "-3/4");
        assert_eq!(format!("{}", r(12, 4)), "3");
    }

    #[test]
    fn overflow_is_reported_not_wrapped() {
        let big = Rational::from_int(i128::MAX);
        assert_eq!(big.checked_add(Rational::from_int(1)), Err(ArithError::Overflow));
        assert_eq!(big.checked_mul(Rational::from_int(2)), Err(ArithError::Overflow));
        assert_eq!(Rational::from_int(i128::MIN).checked_sub(Rational::from_int(1)), Err(ArithError::Overflow));
        assert_eq!(Rational::new(i128::MIN, -1), Err(ArithError::Overflow));
        // Cross-reduction lets (MAX/3) * 3 succeed.
        let third = Rational::new(i128::MAX, 3).unwrap();
        assert_eq!(third.checked_mul(Rational::from_int(3)), Ok(Rational::from_int(i128::MAX)));
    }
}
