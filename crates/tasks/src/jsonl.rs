//! Problems on disk: one JSON object per line.

use std::io::{BufRead, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::TasksError;

/// Writes each item as one JSON line.
pub fn write_jsonl<T: Serialize>(mut out: impl Write, items: &[T]) -> Result<(), TasksError> {
    for item in items {
        serde_json::to_writer(&mut out, item).map_err(|e| TasksError::Io(e.into()))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Reads one item per non-blank line; a bad line is an error naming its line number.
pub fn read_jsonl<T: DeserializeOwned>(input: impl BufRead) -> impl Iterator<Item = Result<T, TasksError>> {
    input.lines().enumerate().filter_map(|(i, line)| match line {
        Err(e) => Some(Err(TasksError::Io(e))),
        Ok(line) if line.trim().is_empty() => None,
        Ok(line) => Some(serde_json::from_str(&line).map_err(|source| TasksError::Json { line: i + 1, source })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfplay_reward::CountdownProblem;

    #[test]
    fn round_trip_and_line_numbered_errors() {
        let problems = vec![
            CountdownProblem { nums: vec![3, 8, 12, 2], target: 24 },
            CountdownProblem { nums: vec![1], target: 1 },
        ];
        let mut buf = Vec::new();
        write_jsonl(&mut buf, &problems).unwrap();
        assert_eq!(
            String::from_utf8(buf.clone()).unwrap(),
            "{\"nums\":[3,8,12,2],\"target\":24}\n{\"nums\":[1],\"target\":1}\n"
        );
        let back: Vec<CountdownProblem> = read_jsonl(buf.as_slice()).collect::<Result<_, _>>().unwrap();
        assert_eq!(back, problems);

        let text = "{\"nums\":[1],\"target\":1}\n\n{\"nums\":[1]}\n{\"nums\":[-1],\"target\":1}\n";
        let results: Vec<Result<CountdownProblem, TasksError>> = read_jsonl(text.as_bytes()).collect();
        assert_eq!(results.len(), 3, "blank lines are skipped");
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(TasksError::Json { line: 3, .. })));
        assert!(matches!(results[2], Err(TasksError::Json { line: 4, .. })));
    }
}
