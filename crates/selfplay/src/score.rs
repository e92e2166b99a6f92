//! `selfplay score`: verify completions from JSONL on stdin, one JSON result line per input line. The formats are
//! in [`LONG_ABOUT`] (`selfplay score --help`).

use std::io::{BufRead, BufWriter, Write};

use clap::Args;
use selfplay_reward::{CountdownTarget, Reward};
use selfplay_tasks::countdown::answer_key;
use selfplay_tasks::{ArithmeticProblem, ArithmeticTask, CountdownTask, Task};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::CliError;
use super::tasks::TaskName;
use crate::stdio::{self, errln};

/// `selfplay score --help`: the input and output formats.
pub const LONG_ABOUT: &str = r#"Verify completions: JSONL on stdin, one JSON result line per input line on stdout, in input order.

Input: one JSON object per line; other fields are ignored. The answer is the content of the completion's
last <answer>...</answer> pair.
  --task countdown    {"nums": [3, 8, 12, 2], "target": 24, "completion": "<answer>(8-2)*(12/3)</answer>"}
      nums: whole numbers from 0 to 2^64-1, each to be used exactly once;
      target: any integer, negative or of any size, as a JSON number or a string of digits:
      {"nums": [1, 5], "target": -4, ...}, {"nums": [...], "target": "1234567890123456789012345678901234567890", ...}
  --task arithmetic   {"question": "457+68", "answer": "525", "completion": "7+8=15\n...<answer>525</answer>"}
      answer: compared by numeric value (0.75 = 3/4), or as text when it is not a number.

Output, one line per input line:
  {"reward": 1.0, "correct": true, "reason": "correct", "answer_key": "24"}
      reason: correct, wrong_value, wrong_numbers, division_by_zero, overflow, malformed or no_answer;
      answer_key: the answer's exact value, for voting ("17/3"), or null when the answer is not valid.
  {"line": 2, "error": "..."}
      for a line that is not valid input (bad JSON, invalid UTF-8, a missing field, a blank line);
      a bad line never stops the run. A summary goes to stderr: "scored N lines (M malformed)".

Example:
  echo '{"nums":[3,8,12,2],"target":24,"completion":"<answer>(8-2)*(12/3)</answer>"}' \
    | selfplay score --task countdown"#;

/// `selfplay score --task …`
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Which task's verifier.
    #[arg(long, value_enum)]
    task: TaskName,
}

/// An arithmetic input line: the problem's own fields plus the completion.
#[derive(Deserialize)]
struct ArithmeticLine {
    #[serde(flatten)]
    problem: ArithmeticProblem,
    completion: String,
}

/// A Countdown input line. The target is read as its JSON text, since it may be an integer no number type holds.
#[derive(Deserialize)]
struct CountdownLine<'a> {
    nums: Vec<u64>,
    #[serde(borrow)]
    target: &'a RawValue,
    completion: String,
}

/// One output line. `f32` is kept (not widened to f64) so `0.1` prints as `0.1`.
#[derive(Serialize)]
#[serde(untagged)]
enum ScoreResult {
    Scored { reward: f32, correct: bool, reason: &'static str, answer_key: Option<String> },
    Malformed { line: usize, error: String },
}

/// Runs `selfplay score`.
pub fn run(args: ScoreArgs) -> Result<(), CliError> {
    let input = std::io::stdin().lock();
    let output = BufWriter::new(stdio::stdout());
    let (lines, errors) = match args.task {
        TaskName::Countdown => score_stream(input, output, score_countdown)?,
        TaskName::Arithmetic => score_stream(input, output, score_arithmetic)?,
    };
    errln!("scored {lines} lines ({errors} malformed)")?;
    Ok(())
}

/// Scores one Countdown line, or says why it is not one.
fn score_countdown(line: &[u8]) -> Result<ScoreResult, String> {
    let parsed: CountdownLine = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let target = countdown_target(parsed.target)?;
    let completion = parsed.completion.as_bytes();
    let reward = CountdownTask::default().verifier.verify_target(&parsed.nums, target, completion);
    Ok(scored(reward, answer_key(&parsed.nums, completion)))
}

/// A target written as a JSON integer (any size) or as a string of one.
fn countdown_target(raw: &RawValue) -> Result<CountdownTarget, String> {
    let text = raw.get();
    let digits = match serde_json::from_str::<&str>(text) {
        Ok(inside) => inside,
        Err(_) => text,
    };
    digits.parse().map_err(|e| format!("target {text}: {e}"))
}

/// Scores one arithmetic line, or says why it is not one.
fn score_arithmetic(line: &[u8]) -> Result<ScoreResult, String> {
    let parsed: ArithmeticLine = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let (task, completion) = (ArithmeticTask::default(), parsed.completion.as_bytes());
    Ok(scored(task.reward(&parsed.problem, completion), task.answer_key(&parsed.problem, completion)))
}

fn scored(reward: Reward, answer_key: Option<String>) -> ScoreResult {
    ScoreResult::Scored {
        reward: reward.value,
        correct: reward.verdict.is_correct(),
        reason: reward.verdict.as_str(),
        answer_key,
    }
}

/// Scores every line of `input` into `output` with `score`; returns (lines, malformed lines).
fn score_stream(
    mut input: impl BufRead,
    mut output: impl Write,
    score: impl Fn(&[u8]) -> Result<ScoreResult, String>,
) -> Result<(usize, usize), CliError> {
    let (mut lines, mut errors) = (0usize, 0usize);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        lines += 1;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let result = score(line).unwrap_or_else(|error| {
            errors += 1;
            ScoreResult::Malformed { line: lines, error }
        });
        serde_json::to_writer(&mut output, &result)?;
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok((lines, errors))
}
