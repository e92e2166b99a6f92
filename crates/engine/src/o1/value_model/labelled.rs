//! One labelled completion, the value model's unit of training data.

/// One labelled completion: `<bos> prompt completion <eos>`, whether the verifier accepted it, and the value each
/// completion position regresses toward (the verdict everywhere for outcome labels; its step's Monte-Carlo label
/// for process labels).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Labelled {
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    pub correct: bool,
    /// One per completion token.
    pub targets: Vec<f32>,
}

impl Labelled {
    pub fn new(tokens: Vec<u32>, prompt_len: usize, correct: bool) -> Self {
        let targets = vec![if correct { 1.0 } else { 0.0 }; tokens.len() - prompt_len];
        Labelled { tokens, prompt_len, correct, targets }
    }

    pub fn completion(&self) -> &[u32] {
        &self.tokens[self.prompt_len..]
    }
}
