//! The (optionally clipped) value-function loss of PPO, as verl's `compute_value_loss`.

use alloc::vec::Vec;

use crate::agg::{LossAgg, masked_mean, weighted_sum};
use crate::error::Result;
use crate::shape::{SeqShape, check_param};
use selfplay_tensor::Float;

/// Loss, gradient and clip fraction of the value loss.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueLoss<T> {
    /// `0.5 · agg(max((V − R)², (V_clip − R)²))`.
    pub loss: T,
    /// ∂loss/∂values.
    pub grad_values: Vec<T>,
    /// Fraction of unmasked tokens where the clipped term is the larger (verl `vf_clipfrac`).
    pub clip_frac: T,
}

/// Value loss of `values` (current predictions, carry gradient) against `returns`. With `clip = Some(c)`,
/// predictions more than `c` away from `old_values` are also scored clipped and the worse of the two counts
/// (PPO's pessimistic value clipping); `None` is the plain squared error.
pub fn value_loss<T: Float>(
    shape: SeqShape,
    values: &[T],
    old_values: &[T],
    returns: &[T],
    mask: &[bool],
    clip: Option<f64>,
    agg: LossAgg,
) -> Result<ValueLoss<T>> {
    shape.check("values", values)?;
    shape.check("old_values", old_values)?;
    shape.check("returns", returns)?;
    if let Some(c) = clip {
        check_param("clip", c, 0.0)?;
    }
    let w = agg.weights::<T>(shape, mask)?;
    let half = T::from_f64(0.5);
    let two = T::from_f64(2.0);
    let mut losses = Vec::with_capacity(w.len());
    let mut grad = Vec::with_capacity(w.len());
    let mut clipped = Vec::with_capacity(w.len());
    for (((&v, &old), &r), &w) in values.iter().zip(old_values).zip(returns).zip(&w) {
        let plain = (v - r) * (v - r);
        let clipped_sq = match clip {
            Some(c) => {
                let c = T::from_f64(c);
                let vc = v.clamp(old - c, old + c);
                (vc - r) * (vc - r)
            }
            None => plain,
        };
        // Where the clipped term wins, the prediction is outside the clip range and the loss is flat in V.
        let use_plain = plain >= clipped_sq;
        losses.push(plain.max(clipped_sq));
        grad.push(if use_plain { half * w * two * (v - r) } else { T::ZERO });
        clipped.push(if use_plain { T::ZERO } else { T::ONE });
    }
    Ok(ValueLoss {
        loss: half * weighted_sum(&w, &losses),
        grad_values: grad,
        clip_frac: masked_mean(clipped.into_iter(), mask),
    })
}
