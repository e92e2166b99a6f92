//! Between the model's per-sequence positions and the learn crate's padded `[rows, width]` matrices of
//! completion tokens: gathering statistics in, scattering loss gradients back out.
//!
//! A row is a prompt of `p` tokens followed by a completion of `n`. Completion token `j` sits at position
//! `p + j` and is predicted from position `p + j − 1`, which is where its log-probability and entropy
//! live. The value head is read at one of two places (see [`ValueSlot`]).

use selfplay_learn::SeqShape;
use selfplay_model::{SequenceGrads, TokenStats};

/// Rows, positions and statistics that disagree: a bug in the caller or this module, never the user's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The model returned fewer statistics of some kind than the batch has positions.
    #[error("internal: the model returned fewer {0} than the batch has positions")]
    Short(&'static str),
    /// Rows and the vectors given for them disagree.
    #[error("internal: {0}")]
    Internal(&'static str),
}

/// Which prefix a completion token's value cell scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSlot {
    /// The state token `j` is chosen in (prompt and tokens before `j`, position `p + j − 1`): PPO's
    /// critic `V(s_t)`, the same positions [`selfplay_model::Generation::values`] records while sampling.
    BeforeToken,
    /// The prefix that ends with token `j` (position `p + j`): the Monte-Carlo value of each partial
    /// solution (Math-Shepherd), the last cell scoring the finished completion.
    AfterToken,
}

/// The padded layout of a batch of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub shape: SeqShape,
    /// `(prompt_len, completion_len)` per row; every prompt has at least one token.
    spans: Vec<(usize, usize)>,
}

/// One row's gradients with respect to its [`TokenStats`].
#[derive(Debug, Clone, PartialEq)]
pub struct RowGrads {
    d_logprobs: Vec<f32>,
    d_entropies: Option<Vec<f32>>,
    d_values: Option<Vec<f32>>,
    d_logits: Option<Vec<f32>>,
}

impl RowGrads {
    /// Gradients with respect to a sequence's `len − 1` log-probabilities only (cross-entropy).
    pub fn logprobs_only(d_logprobs: Vec<f32>) -> Self {
        RowGrads { d_logprobs, d_entropies: None, d_values: None, d_logits: None }
    }

    /// Gradients with respect to a sequence's whole logits (`[len, vocab]`) and its values (`[len]`), for a
    /// sequence of `len` tokens: a policy over whole distributions and a value head (AlphaZero).
    pub fn logits_and_values(len: usize, d_logits: Vec<f32>, d_values: Vec<f32>) -> Self {
        RowGrads {
            d_logprobs: vec![0.0; len.saturating_sub(1)],
            d_entropies: None,
            d_values: Some(d_values),
            d_logits: Some(d_logits),
        }
    }

    /// The view [`selfplay_model::Model::backward`] takes.
    pub fn as_grads(&self) -> SequenceGrads<'_> {
        SequenceGrads {
            d_logprobs: &self.d_logprobs,
            d_entropies: self.d_entropies.as_deref(),
            d_values: self.d_values.as_deref(),
            d_logits: self.d_logits.as_deref(),
        }
    }
}

/// The model returned fewer `what` than the batch has positions.
fn short(what: &'static str) -> LayoutError {
    LayoutError::Short(what)
}

impl Layout {
    /// The layout of rows with these `(prompt_len, completion_len)`; the padded width is the longest
    /// completion.
    pub fn new(spans: Vec<(usize, usize)>) -> Result<Self, LayoutError> {
        if spans.iter().any(|&(p, n)| p == 0 || n == 0) {
            return Err(LayoutError::Internal("every training row needs a prompt token and a completion token"));
        }
        let width = spans.iter().map(|&(_, n)| n).max().unwrap_or(0);
        Ok(Layout { shape: SeqShape::new(spans.len(), width), spans })
    }

    /// Number of cells.
    pub fn cells(&self) -> usize {
        self.shape.batch * self.shape.len
    }

    /// `true` at the cells that hold a completion token.
    pub fn mask(&self) -> Vec<bool> {
        self.spans.iter().flat_map(|&(_, n)| (0..self.shape.len).map(move |j| j < n)).collect()
    }

    /// Per-row vectors of one entry per completion token, padded into cells (0 in padding).
    pub fn pack(&self, rows: &[&[f32]]) -> Result<Vec<f32>, LayoutError> {
        let mut cells = vec![0.0; self.cells()];
        if rows.len() != self.spans.len() {
            return Err(LayoutError::Internal("one vector per row expected"));
        }
        for ((out, &(_, n)), row) in cells.chunks_exact_mut(self.shape.len.max(1)).zip(&self.spans).zip(rows) {
            let dst = out.get_mut(..n).ok_or_else(|| short("cells"))?;
            dst.copy_from_slice(
                row.get(..n).ok_or(LayoutError::Internal("a row vector is shorter than its completion"))?,
            );
        }
        Ok(cells)
    }

    /// Cells back to one vector per row (padding dropped).
    pub fn unpack(&self, cells: &[f32]) -> Vec<Vec<f32>> {
        cells.chunks_exact(self.shape.len.max(1)).zip(&self.spans).map(|(row, &(_, n))| row[..n].to_vec()).collect()
    }

    /// Per-prediction statistics (`TokenStats::logprobs` or `entropies`) of each row's completion tokens.
    pub fn gather_predictions(
        &self,
        stats: &[TokenStats],
        field: fn(&TokenStats) -> &[f32],
    ) -> Result<Vec<f32>, LayoutError> {
        self.gather(stats, field, |p| p - 1)
    }

    /// The value head's output at each completion token's slot.
    pub fn gather_values(&self, stats: &[TokenStats], slot: ValueSlot) -> Result<Vec<f32>, LayoutError> {
        self.gather(stats, |s| &s.values, |p| value_start(slot, p))
    }

    fn gather(
        &self,
        stats: &[TokenStats],
        field: fn(&TokenStats) -> &[f32],
        start: impl Fn(usize) -> usize,
    ) -> Result<Vec<f32>, LayoutError> {
        if stats.len() != self.spans.len() {
            return Err(short("sequences"));
        }
        let rows: Vec<&[f32]> = stats
            .iter()
            .zip(&self.spans)
            .map(|(s, &(p, n))| {
                let from = start(p);
                field(s).get(from..from + n).ok_or_else(|| short("statistics"))
            })
            .collect::<Result<_, _>>()?;
        self.pack(&rows)
    }

    /// Each row's gradients with respect to its token statistics, from gradients with respect to the
    /// cells: `d_logprobs` and `d_entropies` go to the predicting positions, `d_values` to `slot`.
    pub fn scatter(
        &self,
        d_logprobs: &[f32],
        d_entropies: Option<&[f32]>,
        d_values: Option<(&[f32], ValueSlot)>,
    ) -> Result<Vec<RowGrads>, LayoutError> {
        let width = self.shape.len.max(1);
        let place = |cells: &[f32], i: usize, len: usize, start: usize| -> Result<Vec<f32>, LayoutError> {
            let (_, n) = self.spans[i];
            let mut out = vec![0.0; len];
            let src = cells
                .get(i * width..i * width + n)
                .ok_or(LayoutError::Internal("gradient cells shorter than the batch"))?;
            out.get_mut(start..start + n).ok_or_else(|| short("positions"))?.copy_from_slice(src);
            Ok(out)
        };
        (0..self.spans.len())
            .map(|i| {
                let (p, n) = self.spans[i];
                let len = p + n;
                Ok(RowGrads {
                    d_logprobs: place(d_logprobs, i, len - 1, p - 1)?,
                    d_entropies: d_entropies.map(|d| place(d, i, len - 1, p - 1)).transpose()?,
                    d_values: d_values.map(|(d, slot)| place(d, i, len, value_start(slot, p))).transpose()?,
                    d_logits: None,
                })
            })
            .collect()
    }
}

/// The position of completion token 0's value cell in a row with a `p`-token prompt.
fn value_start(slot: ValueSlot, p: usize) -> usize {
    match slot {
        ValueSlot::BeforeToken => p - 1,
        ValueSlot::AfterToken => p,
    }
}
