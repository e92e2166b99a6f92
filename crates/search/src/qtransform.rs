//! Monotone transformations of a node's Q-values into selection scores, with mctx's exact semantics
//! (`qtransforms.py`): unvisited actions are completed by a node-level value, then normalised.

/// The statistics of one node's edges that a Q-transform reads. `visits` may include in-flight (virtual)
/// visits, hence `f32`.
#[derive(Debug, Clone, Copy)]
pub struct EdgeStats<'a> {
    /// `reward + discount * value(child)` per action (undefined where `visits == 0`).
    pub qvalues: &'a [f32],
    /// Visit count per action.
    pub visits: &'a [f32],
    /// Prior probabilities per action.
    pub priors: &'a [f32],
    /// The node's mean value.
    pub node_value: f32,
    /// The value the evaluator returned for the node.
    pub raw_value: f32,
}

/// Which Q-transform a search uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QTransform {
    /// mctx `qtransform_by_min_max`: `(q - min) / (max - min)` with fixed bounds; unvisited actions score 0.
    MinMax { min_value: f32, max_value: f32 },
    /// mctx `qtransform_by_parent_and_siblings`: min-max over the node's value and its visited children's Q;
    /// unvisited actions get the minimum (score 0). The default of MuZero search.
    ParentAndSiblings { epsilon: f32 },
    /// mctx `qtransform_completed_by_mix_value`: unvisited actions completed by the mixed value
    /// (raw value interpolated with the prior-weighted Q of visited actions), optionally rescaled to [0, 1],
    /// then multiplied by `(maxvisit_init + max visits) * value_scale`. The default of Gumbel MuZero.
    CompletedByMixValue {
        value_scale: f32,
        maxvisit_init: f32,
        rescale_values: bool,
        use_mixed_value: bool,
        epsilon: f32,
    },
}

impl QTransform {
    /// mctx's defaults for `qtransform_by_parent_and_siblings`.
    pub const PARENT_AND_SIBLINGS: Self = Self::ParentAndSiblings { epsilon: 1e-8 };
    /// mctx's defaults for `qtransform_completed_by_mix_value`.
    pub const COMPLETED_BY_MIX_VALUE: Self = Self::CompletedByMixValue {
        value_scale: 0.1,
        maxvisit_init: 50.0,
        rescale_values: true,
        use_mixed_value: true,
        epsilon: 1e-8,
    };

    /// Writes the transformed Q-value of every action into `out` (same length as the stats).
    pub fn apply(&self, s: &EdgeStats<'_>, out: &mut [f32]) {
        match *self {
            Self::MinMax { min_value, max_value } => {
                let scale = 1.0 / (max_value - min_value);
                for ((o, &q), &n) in out.iter_mut().zip(s.qvalues).zip(s.visits) {
                    *o = if n > 0.0 { (q - min_value) * scale } else { 0.0 };
                }
            }
            Self::ParentAndSiblings { epsilon } => {
                let (mut lo, mut hi) = (s.node_value, s.node_value);
                for (&q, &n) in s.qvalues.iter().zip(s.visits) {
                    if n > 0.0 {
                        lo = lo.min(q);
                        hi = hi.max(q);
                    }
                }
                let denom = (hi - lo).max(epsilon);
                for ((o, &q), &n) in out.iter_mut().zip(s.qvalues).zip(s.visits) {
                    *o = if n > 0.0 { (q - lo) / denom } else { 0.0 };
                }
            }
            Self::CompletedByMixValue { value_scale, maxvisit_init, rescale_values, use_mixed_value, epsilon } => {
                let fill = if use_mixed_value { mixed_value(s) } else { s.raw_value };
                let (mut lo, mut hi, mut maxvisit) = (f32::INFINITY, f32::NEG_INFINITY, 0.0f32);
                for ((o, &q), &n) in out.iter_mut().zip(s.qvalues).zip(s.visits) {
                    *o = if n > 0.0 { q } else { fill };
                    lo = lo.min(*o);
                    hi = hi.max(*o);
                    maxvisit = maxvisit.max(n);
                }
                let scale = (maxvisit_init + maxvisit) * value_scale;
                if rescale_values {
                    // One division instead of one per action; differs from mctx's `(q - lo) / d * scale` by
                    // at most an ulp or two.
                    let factor = scale / (hi - lo).max(epsilon);
                    out.iter_mut().for_each(|o| *o = (*o - lo) * factor);
                } else {
                    out.iter_mut().for_each(|o| *o *= scale);
                }
            }
        }
    }
}

/// mctx `_compute_mixed_value`: `(raw + N * sum_visited(p * q) / sum_visited(p)) / (N + 1)`, with priors floored
/// at the smallest normal float so a visited action of zero prior cannot produce NaN.
fn mixed_value(s: &EdgeStats<'_>) -> f32 {
    let mut sum_visits = 0.0f32;
    let mut sum_probs = 0.0f32;
    for (&p, &n) in s.priors.iter().zip(s.visits) {
        sum_visits += n;
        if n > 0.0 {
            sum_probs += p.max(f32::MIN_POSITIVE);
        }
    }
    let mut weighted_q = 0.0f32;
    if sum_probs > 0.0 {
        for ((&p, &n), &q) in s.priors.iter().zip(s.visits).zip(s.qvalues) {
            if n > 0.0 {
                weighted_q += p.max(f32::MIN_POSITIVE) * q / sum_probs;
            }
        }
    }
    (s.raw_value + sum_visits * weighted_q) / (sum_visits + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats<'a>(q: &'a [f32], n: &'a [f32], p: &'a [f32], v: f32, raw: f32) -> EdgeStats<'a> {
        EdgeStats { qvalues: q, visits: n, priors: p, node_value: v, raw_value: raw }
    }

    #[test]
    fn parent_and_siblings_spans_parent_value() {
        // Values worked out by hand from mctx's formula.
        let s = stats(&[0.5, 9.0, -0.5], &[2.0, 0.0, 1.0], &[0.3, 0.3, 0.4], 0.0, 0.0);
        let mut out = [0.0; 3];
        QTransform::PARENT_AND_SIBLINGS.apply(&s, &mut out);
        assert_eq!(out, [1.0, 0.0, 0.0]);
        let s = stats(&[0.5, 9.0, -0.5], &[2.0, 0.0, 1.0], &[0.3, 0.3, 0.4], 1.5, 0.0);
        QTransform::PARENT_AND_SIBLINGS.apply(&s, &mut out);
        approx::assert_abs_diff_eq!(out[0], 0.5, epsilon = 1e-6);
        assert_eq!(out[1], 0.0);
    }

    #[test]
    fn completed_by_mix_value_matches_hand_computation() {
        let q = [1.0, 0.0, -1.0];
        let n = [3.0, 0.0, 1.0];
        let p = [0.5, 0.3, 0.2];
        let s = stats(&q, &n, &p, 0.0, 0.2);
        // weighted_q = (0.5*1 + 0.2*-1) / 0.7 = 3/7; mixed = (0.2 + 4 * 3/7) / 5.
        let mixed = (0.2 + 4.0 * (0.3 / 0.7)) / 5.0;
        let mut out = [0.0; 3];
        let t = QTransform::CompletedByMixValue {
            value_scale: 0.1,
            maxvisit_init: 50.0,
            rescale_values: false,
            use_mixed_value: true,
            epsilon: 1e-8,
        };
        t.apply(&s, &mut out);
        let scale = (50.0 + 3.0) * 0.1;
        approx::assert_abs_diff_eq!(out[1], mixed * scale, epsilon = 1e-5);
        approx::assert_abs_diff_eq!(out[0], scale, epsilon = 1e-5);
        QTransform::COMPLETED_BY_MIX_VALUE.apply(&s, &mut out);
        approx::assert_abs_diff_eq!(out[0], scale, epsilon = 1e-5);
        approx::assert_abs_diff_eq!(out[2], 0.0, epsilon = 1e-6);
        approx::assert_abs_diff_eq!(out[1], scale * (mixed + 1.0) / 2.0, epsilon = 1e-5);
    }

    #[test]
    fn min_max_uses_fixed_bounds() {
        let s = stats(&[0.0, 1.0], &[1.0, 0.0], &[0.5, 0.5], 0.0, 0.0);
        let mut out = [9.0; 2];
        QTransform::MinMax { min_value: -1.0, max_value: 1.0 }.apply(&s, &mut out);
        assert_eq!(out, [0.5, 0.0]);
    }
}
