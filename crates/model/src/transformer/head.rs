//! The model's outputs on top of the last layer: final RMSNorm, the language-model head (logits),
//! the scalar value head, and the log-softmax statistics (chosen-token log-probabilities and
//! entropies), with their backward pass driven by per-row gradients of those quantities.

use std::borrow::{Borrow, BorrowMut};

use crate::backend::{Backend, BackendResult, Gemm};
use crate::config::ModelConfig;
use crate::transformer::params::HeadParams;
use selfplay_tensor::Float;

/// What the head's forward pass keeps (all packed over rows).
#[derive(Debug)]
pub struct HeadActs<O> {
    /// The residual stream after the last layer, `[rows, hidden]`.
    pub x_final: O,
    /// After the final norm, `[rows, hidden]`.
    pub xf: O,
    pub inv_f: O,
    /// `[rows, vocab]`.
    pub logits: O,
    /// `[rows]`.
    pub values: O,
    /// Log-sum-exp and entropy of each logits row, `[rows]` each.
    pub lse: O,
    pub entropy: O,
}

impl<O> HeadActs<O> {
    pub fn new<T: Float, B: Backend<T, Owned = O>>(b: &B, cfg: &ModelConfig, rows: usize) -> BackendResult<Self> {
        let h = cfg.hidden_size;
        Ok(HeadActs {
            x_final: b.zeros(rows * h)?,
            xf: b.zeros(rows * h)?,
            inv_f: b.zeros(rows)?,
            logits: b.zeros(rows * cfg.vocab_size)?,
            values: b.zeros(rows)?,
            lse: b.zeros(rows)?,
            entropy: b.zeros(rows)?,
        })
    }
}

pub fn forward<T: Float, B: Backend<T>>(
    b: &B,
    cfg: &ModelConfig,
    p: &HeadParams<&B::Buf>,
    rows: usize,
    x: &B::Buf,
    a: &mut HeadActs<B::Owned>,
) -> BackendResult {
    let (h, v) = (cfg.hidden_size, cfg.vocab_size);
    b.copy_rows(x, 0, a.x_final.borrow_mut(), 0, rows, h)?;
    b.rms_norm(x, p.norm, cfg.rms_norm_eps, h, a.xf.borrow_mut(), a.inv_f.borrow_mut())?;
    b.gemm(Gemm::linear(rows, h, v), a.xf.borrow(), p.output, a.logits.borrow_mut())?;
    b.gemm(Gemm::linear(rows, h, 1), a.xf.borrow(), p.value_head, a.values.borrow_mut())?;
    b.add_bias(a.values.borrow_mut(), p.value_bias, 1)?;
    b.log_softmax_stats(a.logits.borrow(), v, a.lse.borrow_mut(), a.entropy.borrow_mut())
}

/// Per-row gradients of the loss with respect to the head's outputs, on the backend.
#[derive(Debug)]
pub struct HeadGrads<'g, Buf: ?Sized> {
    /// Target token of each row (ignored where `d_logprob` is zero).
    pub targets: &'g [u32],
    /// `[rows]`: with respect to the log-probability of the row's target.
    pub d_logprob: &'g Buf,
    /// `[rows]`: with respect to the entropy of the row's next-token distribution.
    pub d_entropy: &'g Buf,
    /// `[rows]`: with respect to the value head.
    pub d_value: &'g Buf,
    /// `[rows, vocab]`: with respect to the logits themselves (a loss over whole distributions,
    /// e.g. cross-entropy to soft targets), added to what the terms above give.
    pub d_logits: Option<&'g Buf>,
}

/// The head's gradient buffers for `rows` rows (overwritten before they are read, so reusable).
#[derive(Debug)]
pub struct HeadGradScratch<O> {
    /// `[rows, vocab]`.
    d_logits: O,
    /// `[rows, hidden]`: the gradient after the final norm.
    d_xf: O,
}

impl<O> HeadGradScratch<O> {
    pub fn new<T: Float, B: Backend<T, Owned = O>>(b: &B, cfg: &ModelConfig, rows: usize) -> BackendResult<Self> {
        Ok(HeadGradScratch { d_logits: b.zeros(rows * cfg.vocab_size)?, d_xf: b.zeros(rows * cfg.hidden_size)? })
    }
}

/// Writes the gradient of the last residual stream into `dx` and adds the head's parameter gradients.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Float, B: Backend<T>>(
    b: &B,
    cfg: &ModelConfig,
    p: &HeadParams<&B::Buf>,
    rows: usize,
    a: &HeadActs<B::Owned>,
    d: HeadGrads<'_, B::Buf>,
    dx: &mut B::Buf,
    g: &mut HeadParams<&mut B::Buf>,
    s: &mut HeadGradScratch<B::Owned>,
) -> BackendResult {
    let (h, v) = (cfg.hidden_size, cfg.vocab_size);
    let HeadGradScratch { d_logits, d_xf } = s;
    // Written whole: `log_softmax_backward` writes every element, the first product into `d_xf` overwrites.
    b.log_softmax_backward(
        a.logits.borrow(),
        a.lse.borrow(),
        a.entropy.borrow(),
        d.targets,
        d.d_logprob,
        d.d_entropy,
        (*d_logits).borrow_mut(),
    )?;
    if let Some(extra) = d.d_logits {
        b.add((*d_logits).borrow_mut(), extra)?;
    }
    b.gemm(Gemm::linear_input_grad(rows, h, v), (*d_logits).borrow(), p.output, (*d_xf).borrow_mut())?;
    b.gemm(Gemm::linear_input_grad(rows, h, 1).accumulating(), d.d_value, p.value_head, (*d_xf).borrow_mut())?;
    b.gemm(Gemm::linear_weight_grad(rows, h, v), (*d_logits).borrow(), a.xf.borrow(), g.output)?;
    b.gemm(Gemm::linear_weight_grad(rows, h, 1), d.d_value, a.xf.borrow(), g.value_head)?;
    b.bias_backward(d.d_value, 1, g.value_bias)?;
    b.fill_zero(dx)?;
    b.rms_norm_backward((*d_xf).borrow(), a.x_final.borrow(), p.norm, a.inv_f.borrow(), h, dx, g.norm)
}
