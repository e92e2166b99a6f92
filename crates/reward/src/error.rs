//! The crate's error type, for misuse that a caller can fix (mismatched lengths, invalid settings).

/// Errors from reward computations that take several inputs or settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RewardError {
    /// Two inputs that must have one entry each per item differ in length.
    #[error("{what}: expected {expected} entries, got {got}")]
    LengthMismatch {
        /// Which input.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A setting outside its valid range.
    #[error("invalid setting: {0}")]
    InvalidConfig(&'static str),
    /// An input that must be finite is NaN or infinite.
    #[error("{0} must be finite")]
    NonFinite(&'static str),
}

/// `Err(LengthMismatch)` unless `got == expected`.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), RewardError> {
    if expected == got { Ok(()) } else { Err(RewardError::LengthMismatch { what, expected, got }) }
}
