//! Global gradient-norm clipping, as `torch.nn.utils.clip_grad_norm_` does it.

/// The L2 norm of all gradients together, accumulated in f64 so millions of squares do not lose precision.
pub fn global_grad_norm(grads: &[&[f32]]) -> f32 {
    libm::sqrt(grads.iter().map(|g| sum_of_squares(g)).sum::<f64>()) as f32
}

/// `Σ x²` in f64 over eight independent lanes, so the loop vectorises.
fn sum_of_squares(g: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = g.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += f64::from(x) * f64::from(x);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// Scales all gradients together so their global L2 norm is at most `max_norm`; returns the norm before clipping.
///
/// Same rule as PyTorch: the scale is `max_norm / (norm + 1e-6)` when that is below 1. A non-finite norm
/// (a NaN or infinite gradient) is returned as is and the gradients are left untouched, so the caller can
/// skip the step ([`crate::optim::AdamW::step`] also rejects such gradients). A NaN or negative `max_norm`
/// clips nothing; `max_norm = 0` zeroes the gradients, as in PyTorch.
pub fn clip_grad_norm(grads: &mut [&mut [f32]], max_norm: f32) -> f32 {
    clip_grad_norm_with(max_norm, |visit| grads.iter_mut().for_each(|g| visit(g)))
}

/// [`clip_grad_norm`] over tensors the caller walks instead of a list of slices, so clipping a model's
/// gradients builds no vector: `walk` calls its visitor once per tensor, in a fixed order; it is called once to
/// measure and, when clipping, once more to scale. Same numbers as [`clip_grad_norm`] over the same tensors.
pub fn clip_grad_norm_with(max_norm: f32, mut walk: impl FnMut(&mut dyn FnMut(&mut [f32]))) -> f32 {
    let mut squares = -0.0f64;
    walk(&mut |g| squares += sum_of_squares(g));
    let norm = libm::sqrt(squares) as f32;
    if !norm.is_finite() || max_norm.is_nan() || max_norm < 0.0 {
        return norm;
    }
    let scale = (f64::from(max_norm) / (f64::from(norm) + 1e-6)) as f32;
    if scale < 1.0 {
        walk(&mut |g| g.iter_mut().for_each(|x| *x *= scale));
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_to_max_norm_and_returns_the_norm_before() {
        let mut a = [3.0f32, 0.0];
        let mut b = [4.0f32];
        let norm = clip_grad_norm(&mut [&mut a, &mut b], 1.0);
        assert_eq!(norm, 5.0);
        assert!((global_grad_norm(&[&a, &b]) - 1.0).abs() < 1e-6);
        let norm = clip_grad_norm(&mut [&mut a, &mut b], 10.0);
        assert!((norm - 1.0).abs() < 1e-6 && (a[0] - 0.6).abs() < 1e-6, "below the limit nothing changes");
    }

    #[test]
    fn non_finite_gradients_are_reported_and_left_alone() {
        let mut a = [f32::INFINITY, 1.0];
        assert_eq!(clip_grad_norm(&mut [&mut a], 1.0), f32::INFINITY);
        assert_eq!(a[1], 1.0);
        let mut b = [f32::NAN];
        assert!(clip_grad_norm(&mut [&mut b], 1.0).is_nan());
        let mut c = [3.0f32];
        assert_eq!(clip_grad_norm(&mut [&mut c], f32::NAN), 3.0);
        assert_eq!(c[0], 3.0);
    }
}
