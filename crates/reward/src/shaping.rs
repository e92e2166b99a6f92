//! Reward shaping that changes how fast a policy learns, not what it learns.

use alloc::vec::Vec;

use crate::error::{RewardError, check_len};

/// Potential-based shaping (Ng, Harada & Russell 1999): `r'ₜ = rₜ + γ·Φ(sₜ₊₁) − Φ(sₜ)`.
///
/// `potentials` holds `Φ(s₀) … Φ(s_T)`, one more than `rewards`. The shaped discounted return telescopes
/// to the original return `+ γ^T·Φ(s_T) − Φ(s₀)`, which is why optimal policies are unchanged; pass
/// `Φ(s_T) = 0` for a terminal state (the usual episodic convention). For reasoning traces, `Φ` can be a
/// value model's estimate or the step checker's fraction of valid steps.
pub fn potential_shaping(rewards: &[f32], potentials: &[f32], gamma: f32) -> Result<Vec<f32>, RewardError> {
    check_len("potentials (rewards + 1)", rewards.len() + 1, potentials.len())?;
    if !(0.0..=1.0).contains(&gamma) {
        return Err(RewardError::InvalidConfig("gamma must be in [0, 1]"));
    }
    Ok(rewards.iter().zip(potentials.windows(2)).map(|(&r, phi)| r + gamma * phi[1] - phi[0]).collect())
}

/// DAPO's soft overlong punishment: no penalty up to `max_len − buffer` tokens, then a linear ramp down to
/// −1 at `max_len`, and −1 beyond. The ramp tells the policy "getting long" before truncation hits, instead
/// of the cliff a hard cutoff gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverlongPenalty {
    max_len: usize,
    buffer: usize,
}

impl OverlongPenalty {
    /// A penalty for completions approaching `max_len` tokens, ramping over the last `buffer` tokens.
    pub fn new(max_len: usize, buffer: usize) -> Result<Self, RewardError> {
        if buffer == 0 || buffer > max_len {
            return Err(RewardError::InvalidConfig("overlong buffer must be in 1..=max_len"));
        }
        Ok(OverlongPenalty { max_len, buffer })
    }

    /// The penalty (in `[-1, 0]`) for a completion of `len` tokens, added to the task reward.
    pub fn penalty(&self, len: usize) -> f32 {
        let free = self.max_len - self.buffer;
        if len <= free {
            0.0
        } else if len <= self.max_len {
            -(((len - free) as f64) / self.buffer as f64) as f32
        } else {
            -1.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn shaping_is_exact_and_telescopes() {
        let rewards = [0.0, 0.0, 1.0];
        let phi = [0.25, 0.5, 0.75, 0.0];
        let shaped = potential_shaping(&rewards, &phi, 0.5).unwrap();
        // 0 + 0.5*0.5 - 0.25, 0 + 0.5*0.75 - 0.5, 1 + 0 - 0.75
        assert_eq!(shaped, vec![0.0, -0.125, 0.25]);
        // Discounted returns: original 0.25; shaped = 0.25 + γ³·0 − Φ(s₀) = 0.
        let ret = |r: &[f32]| r.iter().enumerate().map(|(t, &x)| x * 0.5f32.powi(t as i32)).sum::<f32>();
        assert_eq!(ret(&rewards), 0.25);
        assert_eq!(ret(&shaped), ret(&rewards) - phi[0]);
        assert!(potential_shaping(&rewards, &phi[..3], 0.5).is_err());
        assert!(potential_shaping(&rewards, &phi, 1.5).is_err());
    }

    #[test]
    fn overlong_penalty_is_dapo_ramp() {
        let p = OverlongPenalty::new(20, 4).unwrap();
        let got: Vec<f32> = [0, 16, 17, 18, 19, 20, 21, 1000].iter().map(|&l| p.penalty(l)).collect();
        assert_eq!(got, vec![0.0, 0.0, -0.25, -0.5, -0.75, -1.0, -1.0, -1.0]);
        assert_eq!(OverlongPenalty::new(4, 4).unwrap().penalty(1), -0.25);
        assert!(OverlongPenalty::new(4, 5).is_err());
        assert!(OverlongPenalty::new(4, 0).is_err());
    }
}
