//! Property tests: the exact evaluator against an independent big-rational evaluator, and totality of the
//! verifiers on arbitrary bytes.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, Zero};
use proptest::prelude::*;
use selfplay_reward::{
    ArithError, CountdownProblem, CountdownVerifier, ExactMatchVerifier, Expression, FormatReward, NumericVerifier,
    Rational, Verdict, Verifier, check_steps, parse_number,
};

/// An expression tree, evaluated by the reference directly (no text, no parser, no i128).
#[derive(Debug, Clone)]
enum Tree {
    Lit(u64),
    Bin(Box<Tree>, u8, Box<Tree>),
}

fn tree() -> impl Strategy<Value = Tree> {
    // Mostly small literals (realistic), sometimes 0 (division by zero) and sometimes huge (overflow).
    let lit = prop_oneof![
        8 => 0u64..=100,
        1 => Just(0u64),
        1 => any::<u64>(),
    ]
    .prop_map(Tree::Lit);
    lit.prop_recursive(6, 48, 2, |inner| {
        (inner.clone(), prop::sample::select(vec![b'+', b'-', b'*', b'/']), inner)
            .prop_map(|(a, op, b)| Tree::Bin(Box::new(a), op, Box::new(b)))
    })
}

fn precedence(op: u8) -> u8 {
    if op == b'+' || op == b'-' { 1 } else { 2 }
}

/// Renders with the fewest parentheses that keep the tree's shape under left associativity, plus extra
/// redundant ones and whitespace where `noise` says so — this exercises precedence in the parser.
fn render(t: &Tree, noise: &mut impl Iterator<Item = u8>, out: &mut String) {
    let ws = |out: &mut String, n: u8| {
        out.push_str(match n % 6 {
            0 => " ",
            1 => "\n",
            2 => "\t",
            _ => "",
        })
    };
    match t {
        Tree::Lit(n) => out.push_str(&n.to_string()),
        Tree::Bin(a, op, b) => {
            let needs = |child: &Tree, right: bool| match child {
                Tree::Lit(_) => false,
                Tree::Bin(_, cop, _) => {
                    precedence(*cop) < precedence(*op) || (right && precedence(*cop) == precedence(*op))
                }
            };
            for (child, right) in [(a, false), (b, true)] {
                if right {
                    ws(out, noise.next().unwrap_or(5));
                    out.push(*op as char);
                    ws(out, noise.next().unwrap_or(5));
                }
                let paren = needs(child, right) || noise.next().unwrap_or(0).is_multiple_of(7);
                if paren {
                    out.push('(');
                }
                render(child, noise, out);
                if paren {
                    out.push(')');
                }
            }
        }
    }
}

/// Reference evaluation in arbitrary precision, left subtree first (the same order as the postfix
/// evaluator), recording the largest numerator/denominator magnitude seen.
fn reference(t: &Tree, largest: &mut BigInt) -> Option<BigRational> {
    let v = match t {
        Tree::Lit(n) => BigRational::from_integer(BigInt::from(*n)),
        Tree::Bin(a, op, b) => {
            let a = reference(a, largest)?;
            let b = reference(b, largest)?;
            match op {
                b'+' => a + b,
                b'-' => a - b,
                b'*' => a * b,
                _ if b.is_zero() => return None,
                _ => a / b,
            }
        }
    };
    for part in [v.numer().abs(), v.denom().abs()] {
        if part > *largest {
            *largest = part;
        }
    }
    Some(v)
}

fn to_big(r: Rational) -> BigRational {
    BigRational::new(BigInt::from(r.numer()), BigInt::from(r.denom()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn exact_evaluator_agrees_with_big_rationals(t in tree(), noise in prop::collection::vec(any::<u8>(), 64)) {
        let mut text = String::new();
        render(&t, &mut noise.into_iter().cycle(), &mut text);
        let parsed = Expression::parse(text.as_bytes());
        prop_assert!(parsed.is_ok(), "rendered tree did not parse: {text:?} -> {parsed:?}");
        let ours = parsed.unwrap().evaluate();
        let mut largest = BigInt::zero();
        let theirs = reference(&t, &mut largest);
        // Below 2^63 every i128 intermediate product fits, so overflow must not happen there.
        let small = largest < BigInt::from(1u64 << 63);
        match (ours, theirs) {
            (Ok(v), Some(r)) => prop_assert_eq!(to_big(v), r, "{}", text),
            (Err(ArithError::DivisionByZero), None) => {}
            (Err(ArithError::Overflow), _) => prop_assert!(!small, "spurious overflow on {text:?}"),
            (ours, theirs) => prop_assert!(false, "{text:?}: ours {ours:?}, reference {theirs:?}"),
        }
    }

    #[test]
    fn verifiers_are_total_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_all(&bytes)?;
    }

    #[test]
    fn verifiers_are_total_on_answer_shaped_bytes(
        parts in prop::collection::vec(
            prop_oneof![
                Just(b"<answer>".to_vec()), Just(b"</answer>".to_vec()), Just(b"(".to_vec()), Just(b")".to_vec()),
                Just(b"+".to_vec()), Just(b"/".to_vec()), Just(b"\n".to_vec()), Just(b"=".to_vec()),
                "[0-9]{1,25}".prop_map(String::into_bytes), prop::collection::vec(any::<u8>(), 1..4),
            ],
            0..64,
        )
    ) {
        check_all(&parts.concat())?;
    }
}

fn check_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    let problem = CountdownProblem { nums: vec![3, 8, 12, 2], target: 24 };
    let r = CountdownVerifier::default().verify(&problem, bytes);
    prop_assert!([0.0, 0.1, 1.0].contains(&r.value));
    prop_assert_eq!(r.value == 0.0, r.verdict == Verdict::NoAnswer);
    let half = Rational::new(1, 2).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    let r = NumericVerifier::default().verify(&half, bytes);
    prop_assert!([0.0, 0.1, 1.0].contains(&r.value));
    let r = ExactMatchVerifier::default().verify(b"24", bytes);
    prop_assert!([0.0, 0.1, 1.0].contains(&r.value));
    let f = FormatReward::default().score(bytes);
    prop_assert!((0.0..=1.0).contains(&f));
    let steps = check_steps(&problem.nums, bytes);
    prop_assert!(steps.remaining.len() + steps.valid_steps == problem.nums.len());
    let _ = parse_number(bytes);
    Ok(())
}
