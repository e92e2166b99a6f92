//! Log-softmax statistics of logit rows (log-sum-exp, entropy) and the gradient of chosen-token
//! log-probabilities and entropies with respect to the logits.

use rayon::prelude::*;

use selfplay_tensor::Float;

/// Rows per task: a logits row is a whole vocabulary wide.
const LOGIT_ROWS: usize = 8;

pub(super) fn log_softmax_stats<T: Float>(logits: &[T], vocab: usize, lse: &mut [T], entropy: &mut [T]) {
    logits.par_chunks(vocab).zip(lse.par_iter_mut()).zip(entropy.par_iter_mut()).with_min_len(LOGIT_ROWS).for_each(
        |((z, lse), entropy)| {
            let max = z.iter().fold(T::NEG_INFINITY, |m, &v| m.max(v));
            let (mut sum, mut weighted) = (T::ZERO, T::ZERO);
            for &v in z {
                let e = (v - max).exp();
                sum += e;
                weighted += e * (v - max);
            }
            *lse = max + sum.ln();
            // H = lse − Σ p·z = ln(sum) − Σ e·(z − max)/sum.
            *entropy = sum.ln() - weighted / sum;
        },
    );
}

#[allow(clippy::too_many_arguments)]
pub(super) fn log_softmax_backward<T: Float>(
    logits: &[T],
    lse: &[T],
    entropy: &[T],
    targets: &[u32],
    d_logprob: &[T],
    d_entropy: &[T],
    d_logits: &mut [T],
) {
    let vocab = logits.len() / lse.len().max(1);
    d_logits.par_chunks_mut(vocab).enumerate().with_min_len(LOGIT_ROWS).for_each(|(row, dz)| {
        let (z, lse, h) = (&logits[row * vocab..(row + 1) * vocab], lse[row], entropy[row]);
        let (dl, de) = (d_logprob[row], d_entropy[row]);
        for (d, &v) in dz.iter_mut().zip(z) {
            let logp = v - lse;
            let p = logp.exp();
            *d = -dl * p - de * p * (logp + h);
        }
        if dl != T::ZERO {
            dz[targets[row] as usize] += dl;
        }
    });
}
