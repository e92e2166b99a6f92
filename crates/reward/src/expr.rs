//! The Countdown expression language: parsing and exact evaluation.
//!
//! Grammar (nothing else is accepted):
//! ```text
//! expr   := term (('+' | '-') term)*
//! term   := factor (('*' | '/') factor)*
//! factor := literal | '(' expr ')'
//! literal:= [0-9]+            (ASCII decimal, non-negative; leading zeros allowed, `07` is 7)
//! ```
//! separated by any ASCII whitespace (`u8::is_ascii_whitespace`: space, `\t`, `\n`, `\x0C`, `\r`).
//! There is no unary minus, no decimal point, no `=`, no `**`, no implicit multiplication. Operators of
//! equal precedence associate to the left (`8/4/2` is 1). `/` is exact rational division.
//!
//! The parser is an iterative shunting-yard over bytes: no recursion, so nesting depth is bounded only by
//! memory (one stack entry per open parenthesis) and time is linear in the input length.

use alloc::vec::Vec;

use crate::rational::{ArithError, Rational};

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (exact division)
    Div,
}

impl Op {
    /// The operator for an ASCII byte, if it is one.
    pub const fn from_byte(b: u8) -> Option<Op> {
        match b {
            b'+' => Some(Op::Add),
            b'-' => Some(Op::Sub),
            b'*' => Some(Op::Mul),
            b'/' => Some(Op::Div),
            _ => None,
        }
    }

    /// The operator's symbol.
    pub const fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
            Op::Div => '/',
        }
    }

    const fn precedence(self) -> u8 {
        match self {
            Op::Add | Op::Sub => 1,
            Op::Mul | Op::Div => 2,
        }
    }

    /// `a op b`, exactly.
    pub fn apply(self, a: Rational, b: Rational) -> Result<Rational, ArithError> {
        match self {
            Op::Add => a.checked_add(b),
            Op::Sub => a.checked_sub(b),
            Op::Mul => a.checked_mul(b),
            Op::Div => a.checked_div(b),
        }
    }
}

/// Why an expression did not parse; `offset` is the byte position of the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A byte outside the grammar (letters, `=`, `.`, non-ASCII, …).
    #[error("unexpected byte 0x{byte:02x} at offset {offset}")]
    UnexpectedByte {
        /// The offending byte.
        byte: u8,
        /// Its position.
        offset: usize,
    },
    /// A token in the wrong place, e.g. two operators in a row, a leading operator, `()`.
    #[error("misplaced token at offset {offset}")]
    Misplaced {
        /// Position of the token.
        offset: usize,
    },
    /// The text ended where an operand was expected (also: empty input).
    #[error("expression ends where an operand is expected")]
    UnexpectedEnd,
    /// A `)` with no matching `(`.
    #[error("unmatched ')' at offset {offset}")]
    UnmatchedClose {
        /// Position of the `)`.
        offset: usize,
    },
    /// A `(` never closed.
    #[error("unclosed '('")]
    UnclosedOpen,
    /// A literal that does not fit in `u64`.
    #[error("literal at offset {offset} does not fit in 64 bits")]
    LiteralTooLarge {
        /// Position of the literal's first digit.
        offset: usize,
    },
}

/// One item of a parsed expression in postfix (reverse Polish) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// A literal.
    Num(u64),
    /// An operator applied to the two values before it.
    Op(Op),
}

/// A parsed expression, stored in postfix order so evaluation is a loop over a value stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    postfix: Vec<Token>,
}

/// An item of the shunting-yard operator stack.
#[derive(Clone, Copy)]
enum Pending {
    Open,
    Op(Op),
}

impl Expression {
    /// Parses `text` under the grammar in the module docs.
    pub fn parse(text: &[u8]) -> Result<Expression, ParseError> {
        let mut postfix = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        // true when the next token must be an operand (literal or '('), false when an operator or ')'.
        let mut want_operand = true;
        let mut i = 0;
        while let Some(&b) = text.get(i) {
            match b {
                _ if b.is_ascii_whitespace() => i += 1,
                b'0'..=b'9' => {
                    if !want_operand {
                        return Err(ParseError::Misplaced { offset: i });
                    }
                    let start = i;
                    let mut value: u64 = 0;
                    while let Some(&d @ b'0'..=b'9') = text.get(i) {
                        value = value
                            .checked_mul(10)
                            .and_then(|v| v.checked_add(u64::from(d - b'0')))
                            .ok_or(ParseError::LiteralTooLarge { offset: start })?;
                        i += 1;
                    }
                    postfix.push(Token::Num(value));
                    want_operand = false;
                }
                b'(' => {
                    if !want_operand {
                        return Err(ParseError::Misplaced { offset: i });
                    }
                    pending.push(Pending::Open);
                    i += 1;
                }
                b')' => {
                    if want_operand {
                        // Covers `()` and `(1+)`.
                        return Err(ParseError::Misplaced { offset: i });
                    }
                    loop {
                        match pending.pop() {
                            Some(Pending::Op(op)) => postfix.push(Token::Op(op)),
                            Some(Pending::Open) => break,
                            None => return Err(ParseError::UnmatchedClose { offset: i }),
                        }
                    }
                    i += 1;
                }
                _ => {
                    let op = Op::from_byte(b).ok_or(ParseError::UnexpectedByte { byte: b, offset: i })?;
                    if want_operand {
                        // Covers unary minus and doubled operators (`**`, `+-`).
                        return Err(ParseError::Misplaced { offset: i });
                    }
                    // Left associativity: pop operators of greater or equal precedence.
                    while let Some(&Pending::Op(top)) = pending.last() {
                        if top.precedence() < op.precedence() {
                            break;
                        }
                        postfix.push(Token::Op(top));
                        pending.pop();
                    }
                    pending.push(Pending::Op(op));
                    want_operand = true;
                    i += 1;
                }
            }
        }
        if want_operand {
            return Err(ParseError::UnexpectedEnd);
        }
        while let Some(p) = pending.pop() {
            match p {
                Pending::Op(op) => postfix.push(Token::Op(op)),
                Pending::Open => return Err(ParseError::UnclosedOpen),
            }
        }
        Ok(Expression { postfix })
    }

    /// The expression in postfix order.
    pub fn postfix(&self) -> &[Token] {
        &self.postfix
    }

    /// The literals in the order they appear in the text.
    pub fn literals(&self) -> impl Iterator<Item = u64> + '_ {
        self.postfix.iter().filter_map(|t| match t {
            Token::Num(n) => Some(*n),
            Token::Op(_) => None,
        })
    }

    /// The exact value; division by zero and overflow of `i128` fractions are errors.
    pub fn evaluate(&self) -> Result<Rational, ArithError> {
        let mut stack: Vec<Rational> = Vec::new();
        for token in &self.postfix {
            let value = match *token {
                Token::Num(n) => Rational::from_int(i128::from(n)),
                Token::Op(op) => {
                    // A successful parse guarantees two operands; an empty stack here would be a parser
                    // bug, reported as overflow rather than a panic.
                    let (Some(b), Some(a)) = (stack.pop(), stack.pop()) else { return Err(ArithError::Overflow) };
                    op.apply(a, b)?
                }
            };
            stack.push(value);
        }
        match stack.as_slice() {
            [value] => Ok(*value),
            _ => Err(ArithError::Overflow),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn eval(s: &str) -> Result<Rational, ArithError> {
        Expression::parse(s.as_bytes()).unwrap().evaluate()
    }

    fn int(n: i128) -> Rational {
        Rational::from_int(n)
    }

    #[test]
    fn precedence_associativity_and_exact_division() {
        assert_eq!(eval("1+2*3"), Ok(int(7)));
        assert_eq!(eval("(1+2)*3"), Ok(int(9)));
        assert_eq!(eval("8/3*3"), Ok(int(8)));
        assert_eq!(eval("8/4/2"), Ok(int(1)));
        assert_eq!(eval("10-4-3"), Ok(int(3)));
        assert_eq!(eval("2-5"), Ok(int(-3)));
        assert_eq!(eval("1/3+1/6"), Ok(Rational::new(1, 2).unwrap()));
        assert_eq!(eval(" \t( 12 /\n2 ) *\r4 "), Ok(int(24)));
        assert_eq!(eval("007+1"), Ok(int(8)));
        assert_eq!(eval("((((5))))"), Ok(int(5)));
    }

    #[test]
    fn division_by_zero_and_overflow_are_errors() {
        assert_eq!(eval("1/0"), Err(ArithError::DivisionByZero));
        assert_eq!(eval("5/(3-3)"), Err(ArithError::DivisionByZero));
        let big = "18446744073709551615";
        let tower = [big; 3].join("*");
        assert_eq!(eval(&tower), Err(ArithError::Overflow));
    }

    #[test]
    fn rejects_everything_outside_the_grammar() {
        let bad = [
            "", "   ", "-3+5", "3+-5", "3**2", "2^3", "3=3", "1.5+2", "2(3)", "(2)(3)", "()", "(1+2", "1+2)", "1+",
            "+1", "1 2", "x", "3 × 4", "1e3", "١+2",
        ];
        for s in bad {
            assert!(Expression::parse(s.as_bytes()).is_err(), "accepted {s:?}");
        }
        assert_eq!(Expression::parse(b"1+(2"), Err(ParseError::UnclosedOpen));
        assert_eq!(Expression::parse(b"1)"), Err(ParseError::UnmatchedClose { offset: 1 }));
        assert_eq!(Expression::parse(b"2=2"), Err(ParseError::UnexpectedByte { byte: b'=', offset: 1 }));
        assert_eq!(Expression::parse(b"99999999999999999999+1"), Err(ParseError::LiteralTooLarge { offset: 0 }));
    }

    #[test]
    fn literals_in_text_order() {
        let e = Expression::parse(b"(25 - 5) * 3 / 03").unwrap();
        assert_eq!(e.literals().collect::<Vec<_>>(), [25, 5, 3, 3]);
    }

    #[test]
    fn deep_nesting_is_linear_and_stack_safe() {
        let depth = 200_000;
        let mut s = String::with_capacity(depth * 2 + 1);
        s.extend(core::iter::repeat_n('(', depth));
        s.push('7');
        s.extend(core::iter::repeat_n(')', depth));
        assert_eq!(eval(&s), Ok(int(7)));
        s.pop();
        assert_eq!(Expression::parse(s.as_bytes()), Err(ParseError::UnclosedOpen));
        // Right-nested chain: 1-(1-(1-(...))) keeps a deep operator stack and a deep value stack.
        let mut chain = String::new();
        for _ in 0..50_000 {
            chain.push_str("1-(");
        }
        chain.push('1');
        chain.extend(core::iter::repeat_n(')', 50_000));
        assert_eq!(eval(&chain), Ok(int(1)));
    }
}
