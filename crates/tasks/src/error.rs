//! The crate's error type.

/// Errors from generating, reading and writing task problems.
#[derive(Debug, thiserror::Error)]
pub enum TasksError {
    /// A generator setting outside its valid range.
    #[error("invalid task config: {0}")]
    InvalidConfig(String),
    /// The task has no such split.
    #[error("task {task} has no split {split}")]
    UnsupportedSplit {
        /// Task name.
        task: &'static str,
        /// Split name.
        split: &'static str,
    },
    /// No task or split by that name.
    #[error("unknown {what} {name:?}; expected one of {expected}")]
    UnknownName {
        /// "task" or "split".
        what: &'static str,
        /// The name given.
        name: String,
        /// The accepted names.
        expected: &'static str,
    },
    /// The generator gave up: too few problems satisfy the settings.
    #[error("generator found no solvable problem after {attempts} attempts; loosen the settings")]
    Exhausted {
        /// Attempts made.
        attempts: u64,
    },
    /// A JSONL line that is not a valid problem.
    #[error("line {line}: {source}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
