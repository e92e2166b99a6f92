//! Fuzzes the Countdown expression parser and evaluator, the answer extraction and the verifiers.
//!
//! Beyond "no panic", it checks one invariant: any expression that parses and evaluates to a
//! non-negative integer must be judged `Correct` against the problem made of its own literals and value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use selfplay_reward::{CountdownProblem, CountdownVerifier, Expression, Verdict, Verifier, check_steps, parse_number};

fuzz_target!(|data: &[u8]| {
    let _ = parse_number(data);
    let _ = check_steps(&[1, 2, 3, 4], data);
    let problem = CountdownProblem { nums: vec![3, 8, 12, 2], target: 24 };
    let _ = CountdownVerifier::default().verify(&problem, data);

    let Ok(expr) = Expression::parse(data) else { return };
    let Ok(value) = expr.evaluate() else { return };
    let Some(target) = value.to_integer().and_then(|v| u64::try_from(v).ok()) else { return };
    let own = CountdownProblem { nums: expr.literals().collect(), target };
    let mut completion = b"<answer>".to_vec();
    completion.extend_from_slice(data);
    completion.extend_from_slice(b"</answer>");
    // The content must not itself contain tags for this to be the last pair; the grammar has no '<'.
    let verdict = CountdownVerifier::default().verify(&own, &completion).verdict;
    assert_eq!(verdict, Verdict::Correct, "{:?}", String::from_utf8_lossy(data));
});
