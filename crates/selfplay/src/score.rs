//! `selfplay score`: verify completions from JSONL on stdin, one JSON result line per input line.
//!
//! Input (one object per line): Countdown `{"nums": [...], "target": N, "completion": "..."}`, arithmetic
//! `{"question": "...", "answer": "...", "completion": "..."}`; other fields are ignored. Output, in input
//! order: `{"reward": R, "correct": bool, "reason": "...", "answer_key": ...}`, or `{"line": n, "error":
//! "..."}` for a line that is not valid input (bad JSON, invalid UTF-8, missing fields, blank). A bad line
//! never stops the run; the summary on stderr counts them.

use std::io::{BufRead, BufWriter, Write};

use clap::Args;
use selfplay_tasks::{ArithmeticProblem, ArithmeticTask, CountdownProblem, CountdownTask, Task};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::CliError;
use super::tasks::TaskName;
use crate::stdio::errln;

/// `selfplay score --task …`
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Which task's verifier.
    #[arg(long, value_enum)]
    task: TaskName,
}

/// One input line: the problem's own fields plus the completion.
#[derive(Deserialize)]
struct ScoreLine<P> {
    #[serde(flatten)]
    problem: P,
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
    let output = BufWriter::new(crate::stdio::stdout());
    let (lines, errors) = match args.task {
        TaskName::Countdown => score_stream::<_, CountdownProblem>(&CountdownTask::default(), input, output)?,
        TaskName::Arithmetic => score_stream::<_, ArithmeticProblem>(&ArithmeticTask::default(), input, output)?,
    };
    errln!("scored {lines} lines ({errors} malformed)")?;
    Ok(())
}

/// Scores every line of `input` into `output`; returns (lines, malformed lines).
fn score_stream<T, P>(task: &T, mut input: impl BufRead, mut output: impl Write) -> Result<(usize, usize), CliError>
where
    T: Task<Problem = P>,
    P: DeserializeOwned,
{
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
        let result = match serde_json::from_slice::<ScoreLine<P>>(line) {
            Ok(parsed) => {
                let completion = parsed.completion.as_bytes();
                let reward = task.reward(&parsed.problem, completion);
                ScoreResult::Scored {
                    reward: reward.value,
                    correct: reward.verdict.is_correct(),
                    reason: reward.verdict.as_str(),
                    answer_key: task.answer_key(&parsed.problem, completion),
                }
            }
            Err(e) => {
                errors += 1;
                ScoreResult::Malformed { line: lines, error: e.to_string() }
            }
        };
        serde_json::to_writer(&mut output, &result)?;
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok((lines, errors))
}
