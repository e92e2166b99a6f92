//! Combining several reward components (outcome, format, length, …) into one scalar per completion.

use alloc::vec::Vec;

use crate::error::{RewardError, check_len};

/// `Σ wᵢ·rᵢ` for one completion's components `values` and their `weights`.
pub fn weighted_sum(values: &[f32], weights: &[f32]) -> Result<f32, RewardError> {
    check_len("weights", values.len(), weights.len())?;
    Ok(values.iter().zip(weights).map(|(&v, &w)| f64::from(v) * f64::from(w)).sum::<f64>() as f32)
}

/// Normalise-then-sum over a batch: each component is standardised across the batch (zero mean, unit
/// population standard deviation) before the weighted sum, so a component with a large scale (e.g. a
/// length penalty in tokens) cannot drown one with a small scale (a 0/1 outcome).
///
/// `components[k][i]` is component `k` of completion `i`. A component that is constant over the batch
/// carries no ranking signal and contributes 0. Non-finite inputs are an error: one NaN would otherwise
/// poison every completion's reward through the batch statistics.
pub fn normalise_then_sum<C: AsRef<[f32]>>(components: &[C], weights: &[f32]) -> Result<Vec<f32>, RewardError> {
    check_len("weights", components.len(), weights.len())?;
    let batch = components.first().map_or(0, |c| c.as_ref().len());
    let mut total = alloc::vec![0.0f64; batch];
    for (component, &weight) in components.iter().zip(weights) {
        let values = component.as_ref();
        check_len("component", batch, values.len())?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(RewardError::NonFinite("reward component"));
        }
        let n = batch as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = values.iter().map(|&v| (f64::from(v) - mean) * (f64::from(v) - mean)).sum::<f64>() / n;
        let std = libm::sqrt(var);
        // Relative threshold: below it the component is constant up to rounding.
        if std <= 1e-12 * mean.abs().max(1.0) {
            continue;
        }
        for (t, &v) in total.iter_mut().zip(values) {
            *t += f64::from(weight) * (f64::from(v) - mean) / std;
        }
    }
    Ok(total.into_iter().map(|t| t as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn weighted_sum_exact() {
        assert_eq!(weighted_sum(&[1.0, 0.5, -2.0], &[0.5, 2.0, 0.25]), Ok(1.0));
        assert!(matches!(weighted_sum(&[1.0], &[]), Err(RewardError::LengthMismatch { .. })));
    }

    #[test]
    fn normalise_then_sum_standardises_each_component() {
        // Outcome 0/1 and a length term 100x larger: after normalising both count equally.
        let outcome = [1.0, 0.0, 1.0, 0.0];
        let length = [-100.0, -100.0, 100.0, 100.0];
        let constant = [7.0; 4];
        let out = normalise_then_sum(&[&outcome[..], &length[..], &constant[..]], &[1.0, 1.0, 5.0]).unwrap();
        // outcome z = [1,-1,1,-1]; length z = [-1,-1,1,1]; constant contributes 0.
        assert_eq!(out, vec![0.0, -2.0, 2.0, 0.0]);
        let nan = [f32::NAN, 0.0, 0.0, 0.0];
        assert_eq!(normalise_then_sum(&[&nan[..]], &[1.0]), Err(RewardError::NonFinite("reward component")));
        let short = [1.0];
        assert!(normalise_then_sum(&[&outcome[..], &short[..]], &[1.0, 1.0]).is_err());
        assert_eq!(normalise_then_sum::<&[f32]>(&[], &[]), Ok(vec![]));
    }
}
