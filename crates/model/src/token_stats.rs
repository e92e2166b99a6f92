//! The per-token statistics of a training pass, in which every loss is written (its own module so that losses
//! and the model both read it without importing each other).

/// Per-position statistics of one sequence that losses are written in.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenStats {
    /// `[len − 1]`: `log p(token[t+1] | tokens[..=t])`.
    pub logprobs: Vec<f32>,
    /// `[len − 1]`: entropy of the next-token distribution at position `t`.
    pub entropies: Vec<f32>,
    /// `[len]`: value head output at position `t`.
    pub values: Vec<f32>,
}
