//! The train-time law as one line: held-out accuracy against the logarithm of RL compute, fitted by least
//! squares over the train curve's RL points, so a run says in numbers how much a decade of RL buys and over how
//! many decades it held.

use serde::{Deserialize, Serialize};

use crate::o1::record::TrainPoint;

/// `accuracy ≈ intercept + slope · log10(RL FLOPs)` over the RL points of a train curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogLinearFit {
    /// Accuracy gained per decade (tenfold) of RL FLOPs.
    pub slope_per_decade: f64,
    /// The line's accuracy at 1 RL FLOP (log10 = 0): only the line's offset, not a prediction.
    pub intercept: f64,
    /// Share of the points' variance the line explains (1: all of it; 0 when every accuracy is equal).
    pub r_squared: f64,
    /// Decades of RL FLOPs the points span: log10(last / first).
    pub decades: f64,
    /// Points fitted.
    pub points: usize,
}

/// Fits the RL points of `curve` (those after its first, with more RL FLOPs than it), taking RL FLOPs as each
/// point's training FLOPs less the first point's (policy initialisation's). `None` when fewer than two points
/// have distinct RL FLOPs, or a value is not finite.
pub fn fit_rl_curve(curve: &[TrainPoint]) -> Option<LogLinearFit> {
    let (start, rl) = curve.split_first()?;
    let points: Vec<(f64, f64)> = rl
        .iter()
        .map(|p| (p.train_flops - start.train_flops, p.accuracy))
        .filter(|&(flops, _)| flops > 0.0)
        .map(|(flops, accuracy)| (flops.log10(), accuracy))
        .collect();
    log_linear(&points)
}

/// Ordinary least squares of `y` on `x` for `(x, y)` points.
fn log_linear(points: &[(f64, f64)]) -> Option<LogLinearFit> {
    if points.len() < 2 || points.iter().any(|(x, y)| !x.is_finite() || !y.is_finite()) {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    let syy: f64 = points.iter().map(|(_, y)| (y - mean_y).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let (low, high) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    Some(LogLinearFit {
        slope_per_decade: slope,
        intercept: mean_y - slope * mean_x,
        r_squared: if syy > 0.0 { sxy * sxy / (sxx * syy) } else { 0.0 },
        decades: high - low,
        points: points.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(step: u64, train_flops: f64, accuracy: f64) -> TrainPoint {
        TrainPoint { step, train_flops, accuracy, proposals: None }
    }

    #[test]
    fn a_line_in_log_flops_is_recovered_exactly() {
        // SFT spent 5e12; RL then adds 1e10, 1e11, 1e12 with accuracy 0.2 + 0.05 per decade above 1e10.
        let curve = [point(0, 5e12, 0.15), point(1, 5.01e12, 0.20), point(10, 5.1e12, 0.25), point(100, 6e12, 0.30)];
        let fit = fit_rl_curve(&curve).unwrap();
        approx::assert_abs_diff_eq!(fit.slope_per_decade, 0.05, epsilon = 1e-9);
        approx::assert_abs_diff_eq!(fit.intercept, 0.2 - 0.05 * 10.0, epsilon = 1e-9);
        approx::assert_abs_diff_eq!(fit.r_squared, 1.0, epsilon = 1e-9);
        approx::assert_abs_diff_eq!(fit.decades, 2.0, epsilon = 1e-9);
        assert_eq!(fit.points, 3, "the point after policy initialisation is not RL's");
    }

    /// Against numpy's `polyfit` and `corrcoef` (`tools/log_linear_fit_reference.py`).
    #[test]
    fn noisy_points_match_numpy() {
        let rl = [(2e9, 0.31), (7e9, 0.36), (3e10, 0.35), (1e11, 0.41), (4e11, 0.44)];
        let mut curve = vec![point(0, 1e12, 0.3)];
        curve.extend(rl.iter().enumerate().map(|(i, &(f, a))| point(i as u64 + 1, 1e12 + f, a)));
        let fit = fit_rl_curve(&curve).unwrap();
        approx::assert_abs_diff_eq!(fit.slope_per_decade, 0.053427832, epsilon = 1e-8);
        approx::assert_abs_diff_eq!(fit.intercept, -0.184057007, epsilon = 1e-8);
        approx::assert_abs_diff_eq!(fit.r_squared, 0.899881906, epsilon = 1e-8);
    }

    #[test]
    fn too_few_or_bad_points_fit_nothing() {
        assert_eq!(fit_rl_curve(&[]), None);
        assert_eq!(fit_rl_curve(&[point(0, 1e12, 0.1), point(5, 2e12, 0.2)]), None, "one RL point");
        let flat = [point(0, 1e12, 0.1), point(5, 2e12, 0.2), point(5, 2e12, 0.3)];
        assert_eq!(fit_rl_curve(&flat), None, "no spread in FLOPs");
        let nan = [point(0, 1e12, 0.1), point(5, 2e12, f64::NAN), point(9, 3e12, 0.3)];
        assert_eq!(fit_rl_curve(&nan), None);
        let same = [point(0, 1e12, 0.1), point(5, 2e12, 0.2), point(9, 3e12, 0.2)];
        assert_eq!(fit_rl_curve(&same).map(|f| (f.slope_per_decade, f.r_squared)), Some((0.0, 0.0)));
    }
}
