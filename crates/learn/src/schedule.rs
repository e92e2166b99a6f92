//! Learning-rate schedules: linear warmup then cosine decay, as Hugging Face transformers'
//! `get_cosine_schedule_with_warmup` / `get_cosine_with_min_lr_schedule_with_warmup` (checked by fixture).

use crate::error::{LearnError, Result};

/// Linear warmup from 0 to the base learning rate over `warmup_steps`, then a cosine down to
/// `min_lr_ratio * base` at `total_steps`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupCosine {
    /// Steps of linear warmup.
    pub warmup_steps: u64,
    /// Step at which the cosine reaches its minimum.
    pub total_steps: u64,
    /// Number of cosine half-periods... in transformers' convention: 0.5 is one decay from max to min.
    pub num_cycles: f64,
    /// Floor of the decay as a fraction of the base rate (0 in `get_cosine_schedule_with_warmup`).
    pub min_lr_ratio: f64,
}

impl WarmupCosine {
    /// Warmup then a single cosine decay to zero (transformers' defaults).
    pub fn new(warmup_steps: u64, total_steps: u64) -> Self {
        Self { warmup_steps, total_steps, num_cycles: 0.5, min_lr_ratio: 0.0 }
    }

    /// Rejects a NaN/negative cycle count or a floor outside `[0, 1]`.
    pub fn validate(&self) -> Result<()> {
        if !(self.num_cycles >= 0.0 && self.num_cycles.is_finite()) {
            return Err(LearnError::InvalidConfig { name: "num_cycles", reason: "must be >= 0 and finite" });
        }
        if !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return Err(LearnError::InvalidConfig { name: "min_lr_ratio", reason: "must be in [0, 1]" });
        }
        Ok(())
    }

    /// The multiplier of the base learning rate for optimizer step `step` (0-based: the first update uses
    /// `factor(0)`, which is 0 during warmup exactly as a fresh `LambdaLR`).
    ///
    /// Past `total_steps` the factor stays at its floor, where transformers' formula would rise again: a
    /// run that goes on past its planned length should not warm back up.
    pub fn factor(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return step as f64 / self.warmup_steps.max(1) as f64;
        }
        let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let progress = ((step - self.warmup_steps) as f64 / span as f64).min(1.0);
        let cosine = 0.5 * (1.0 + libm::cos(core::f64::consts::PI * self.num_cycles * 2.0 * progress));
        (cosine * (1.0 - self.min_lr_ratio) + self.min_lr_ratio).max(0.0)
    }

    /// `base_lr * factor(step)`.
    pub fn lr(&self, base_lr: f32, step: u64) -> f32 {
        (f64::from(base_lr) * self.factor(step)) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_the_floor_and_stays_there() {
        let s = WarmupCosine { min_lr_ratio: 0.1, ..WarmupCosine::new(4, 20) };
        assert_eq!(s.factor(0), 0.0);
        assert_eq!(s.factor(2), 0.5);
        assert_eq!(s.factor(4), 1.0);
        assert!((s.factor(20) - 0.1).abs() < 1e-12);
        assert_eq!(s.factor(1000), s.factor(20));
        assert!((s.lr(3e-4, 12) - 3e-4 * 0.55).abs() < 1e-9);
        assert!(WarmupCosine { min_lr_ratio: 2.0, ..s }.validate().is_err());
        assert!(WarmupCosine { num_cycles: f64::NAN, ..s }.validate().is_err());
    }
}
