//! Countdown text formats: the prompt and the solution traces used for policy initialisation.
//!
//! Our policy is a small character-level model, so every format is compact:
//! - prompt: the numbers, `->`, the target, newline: `"3 8 12 2 -> 24\n"`;
//! - optimal trace: one `a op b=c` line per step, then the answer:
//!   `"12/2=6\n8-6=2\n3-2=1\n..."` … `"<answer>(8*3)*(12/2)</answer>"`;
//! - search streams (Stream of Search): the search that found the solution, written out ([`super::stream`]).
//!
//! Steps are newline-separated so a line is the unit of step-level search and process rewards.

use selfplay_reward::{CountdownProblem, Op};

use super::solver::Step;

/// The prompt for a problem: `"3 8 12 2 -> 24\n"`.
pub fn prompt(problem: &CountdownProblem) -> String {
    let nums: Vec<String> = problem.nums.iter().map(u64::to_string).collect();
    format!("{} -> {}\n", nums.join(" "), problem.target)
}

/// An expression being assembled from steps, with its top-level operator precedence (atoms: 3).
#[derive(Debug, Clone)]
struct Built {
    value: u64,
    text: String,
    precedence: u8,
}

fn precedence(op: Op) -> u8 {
    match op {
        Op::Add | Op::Sub => 1,
        Op::Mul | Op::Div => 2,
    }
}

/// Joins two sub-expressions with the fewest parentheses that keep left-to-right evaluation equal to the
/// steps' values (a right operand of equal precedence is bracketed for `-` and `/`).
fn combine(a: &Built, op: Op, b: &Built, value: u64) -> Built {
    let p = precedence(op);
    let wrap = |e: &Built, needed: bool| if needed { format!("({})", e.text) } else { e.text.clone() };
    let left = wrap(a, a.precedence < p);
    let right = wrap(b, b.precedence < p || (b.precedence == p && matches!(op, Op::Sub | Op::Div)));
    Built { value, text: format!("{left}{}{right}", op.symbol()), precedence: p }
}

/// The single expression equivalent to a list of steps over `nums`, or `None` if the steps do not apply
/// (an operand that is not available) or do not use up every number.
pub fn answer_expression(nums: &[u64], steps: &[Step]) -> Option<String> {
    let mut pool: Vec<Built> = nums.iter().map(|&n| Built { value: n, text: n.to_string(), precedence: 3 }).collect();
    for step in steps {
        let a = pool.swap_remove(pool.iter().position(|e| e.value == step.a)?);
        let b = pool.swap_remove(pool.iter().position(|e| e.value == step.b)?);
        pool.push(combine(&a, step.op, &b, step.result));
    }
    match pool.as_slice() {
        [only] => Some(only.text.clone()),
        _ => None,
    }
}

/// The answer line closing every trace.
pub(super) fn answer_line(expression: &str) -> String {
    format!("<answer>{expression}</answer>")
}

/// The direct trace for a solution: its steps, one per line, then the answer.
pub fn optimal_trace(problem: &CountdownProblem, steps: &[Step]) -> Option<String> {
    let expression = answer_expression(&problem.nums, steps)?;
    let mut out = String::new();
    for step in steps {
        out.push_str(&step.render());
        out.push('\n');
    }
    out.push_str(&answer_line(&expression));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::countdown::solver::solve;
    use selfplay_reward::{CountdownVerifier, Verdict, Verifier, check_steps};

    fn problem(nums: &[u64], target: u64) -> CountdownProblem {
        CountdownProblem { nums: nums.to_vec(), target }
    }

    #[test]
    fn prompt_is_compact() {
        assert_eq!(prompt(&problem(&[3, 8, 12, 2], 24)), "3 8 12 2 -> 24\n");
    }

    #[test]
    fn expression_brackets_only_where_needed() {
        let s = |a, op, b, result| Step { a, op, b, result };
        // (8-2)*(12/3): 12/3 needs no brackets on the right of '*'; 8-2 does on the left.
        let steps = [s(8, Op::Sub, 2, 6), s(12, Op::Div, 3, 4), s(6, Op::Mul, 4, 24)];
        assert_eq!(answer_expression(&[8, 2, 12, 3], &steps).as_deref(), Some("(8-2)*12/3"));
        // 10-(4-3): right operand of '-' keeps its brackets.
        let steps = [s(4, Op::Sub, 3, 1), s(10, Op::Sub, 1, 9)];
        assert_eq!(answer_expression(&[10, 4, 3], &steps).as_deref(), Some("10-(4-3)"));
        // Steps that skip a number or use a missing one give None.
        assert_eq!(answer_expression(&[10, 4, 3], &steps[..1]), None);
        assert_eq!(answer_expression(&[10, 4], &steps), None);
    }

    #[test]
    fn optimal_trace_verifies_and_its_steps_check() {
        let p = problem(&[3, 8, 12, 2], 24);
        let steps = solve(&p.nums, p.target).unwrap();
        let trace = optimal_trace(&p, &steps).unwrap();
        assert_eq!(CountdownVerifier::default().verify(&p, trace.as_bytes()).verdict, Verdict::Correct);
        let check = check_steps(&p.nums, trace.as_bytes());
        assert_eq!((check.valid_steps, check.error, check.remaining), (3, None, vec![24]));
    }
}
