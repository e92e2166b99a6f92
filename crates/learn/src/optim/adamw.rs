//! AdamW (Loshchilov & Hutter): Adam with decoupled weight decay and bias correction, the same update as
//! `torch.optim.AdamW` (checked against it by fixture).

use alloc::vec;
use alloc::vec::Vec;

use super::{first_non_finite, sqrt_f32};
use crate::error::{LearnError, Result};

/// Hyper-parameters of AdamW except the learning rate, which is passed to every [`AdamW::step`] so a schedule
/// can drive it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// Decay rates of the first and second moment estimates, each in `[0, 1)`.
    pub betas: (f32, f32),
    /// Added to the bias-corrected RMS before dividing, `> 0`.
    pub eps: f32,
    /// Decoupled weight decay: each step multiplies parameters by `1 - lr * weight_decay`.
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    /// PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
    fn default() -> Self {
        Self { betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.01 }
    }
}

impl AdamWConfig {
    /// Rejects hyper-parameters that would make the update meaningless (NaN, beta outside `[0, 1)`, eps <= 0).
    pub fn validate(&self) -> Result<()> {
        let (b1, b2) = self.betas;
        if !(0.0..1.0).contains(&b1) {
            return Err(LearnError::InvalidConfig { name: "betas.0", reason: "must be in [0, 1)" });
        }
        if !(0.0..1.0).contains(&b2) {
            return Err(LearnError::InvalidConfig { name: "betas.1", reason: "must be in [0, 1)" });
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(LearnError::InvalidConfig { name: "eps", reason: "must be positive and finite" });
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(LearnError::InvalidConfig { name: "weight_decay", reason: "must be >= 0 and finite" });
        }
        Ok(())
    }
}

/// Everything AdamW carries between steps; export it into a checkpoint and import it to resume bit-identically.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamWState {
    /// Number of steps taken so far (the bias correction uses it).
    pub step: u64,
    /// First moment estimate per parameter tensor.
    pub m: Vec<Vec<f32>>,
    /// Second moment estimate per parameter tensor.
    pub v: Vec<Vec<f32>>,
}

/// AdamW over a fixed list of flat f32 parameter tensors.
#[derive(Debug, Clone)]
pub struct AdamW {
    config: AdamWConfig,
    state: AdamWState,
    /// Whether weight decay applies to each tensor (all true by default; norms and biases usually opt out).
    decay: Vec<bool>,
}

impl AdamW {
    /// An optimizer for tensors of the given lengths, with zeroed moments. The config is checked on each step.
    pub fn new(config: AdamWConfig, param_lens: &[usize]) -> Self {
        let zeros = || param_lens.iter().map(|&n| vec![0.0; n]).collect::<Vec<_>>();
        Self { config, state: AdamWState { step: 0, m: zeros(), v: zeros() }, decay: vec![true; param_lens.len()] }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// Steps taken so far.
    pub fn step_count(&self) -> u64 {
        self.state.step
    }

    /// Chooses per tensor whether weight decay applies (`false` for norms, biases, ...).
    pub fn set_weight_decay_mask(&mut self, mask: &[bool]) -> Result<()> {
        if mask.len() != self.decay.len() {
            return Err(LearnError::LengthMismatch {
                name: "weight_decay_mask",
                expected: self.decay.len(),
                got: mask.len(),
            });
        }
        self.decay.copy_from_slice(mask);
        Ok(())
    }

    /// The per-tensor weight-decay switches.
    pub fn weight_decay_mask(&self) -> &[bool] {
        &self.decay
    }

    /// The step count and moments, borrowed (for writing a checkpoint without copying).
    pub fn state(&self) -> &AdamWState {
        &self.state
    }

    /// A copy of the step count and moments.
    pub fn export_state(&self) -> AdamWState {
        self.state.clone()
    }

    /// Replaces the step count and moments with a checkpoint's. The tensor count and lengths must match the
    /// ones this optimizer was built for, every value must be finite and the second moments non-negative.
    pub fn import_state(&mut self, state: AdamWState) -> Result<()> {
        for (name, moments) in [("m", &state.m), ("v", &state.v)] {
            check_lens(name, &self.state.m, moments.iter().map(Vec::len), moments.len())?;
            for t in moments {
                if let Some(index) = first_non_finite(t) {
                    return Err(LearnError::NonFinite { name, index });
                }
            }
        }
        if state.v.iter().flatten().any(|&x| x < 0.0) {
            return Err(LearnError::InvalidConfig { name: "v", reason: "second moments must be >= 0" });
        }
        self.state = state;
        Ok(())
    }

    /// One AdamW update of every tensor with learning rate `lr`.
    ///
    /// Nothing is modified when an error is returned: lengths, `lr`, the config and every gradient (NaN/inf)
    /// are checked before the first write.
    pub fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]], lr: f32) -> Result<()> {
        self.config.validate()?;
        if !(lr >= 0.0 && lr.is_finite()) {
            return Err(LearnError::InvalidConfig { name: "lr", reason: "must be >= 0 and finite" });
        }
        check_lens("params", &self.state.m, params.iter().map(|p| p.len()), params.len())?;
        check_lens("grads", &self.state.m, grads.iter().map(|g| g.len()), grads.len())?;
        for (t, g) in grads.iter().enumerate() {
            if let Some(i) = first_non_finite(g) {
                let offset: usize = grads[..t].iter().map(|g| g.len()).sum();
                return Err(LearnError::NonFinite { name: "grads", index: offset + i });
            }
        }

        let (scalars, decay_factor) = self.advance(lr);
        let tensors = params.iter_mut().zip(grads).zip(self.state.m.iter_mut().zip(self.state.v.iter_mut()));
        for (((p, g), (m, v)), &decay) in tensors.zip(&self.decay) {
            update_tensor(p, g, m, v, if decay { decay_factor } else { 1.0 }, &scalars);
        }
        Ok(())
    }

    /// [`AdamW::step`] over tensors the caller walks instead of lists of slices, so a step over a
    /// model's weights builds no vectors: `walk` calls its visitor once per tensor with
    /// `(parameter, gradient)`, in the order this optimizer was built for. It is called twice: first
    /// to check every length and gradient (parameters untouched), then to update. Same numbers and
    /// same errors as [`AdamW::step`] over the same tensors; nothing is modified when an error is
    /// returned.
    pub fn step_with(&mut self, lr: f32, mut walk: impl FnMut(&mut dyn FnMut(&mut [f32], &[f32]))) -> Result<()> {
        self.config.validate()?;
        if !(lr >= 0.0 && lr.is_finite()) {
            return Err(LearnError::InvalidConfig { name: "lr", reason: "must be >= 0 and finite" });
        }
        let expected = self.state.m.len();
        let (mut count, mut offset) = (0usize, 0usize);
        let mut err: Option<LearnError> = None;
        let (mut param_err, mut grad_err): (Option<LearnError>, Option<LearnError>) = (None, None);
        walk(&mut |p, g| {
            let t = count;
            count += 1;
            let Some(want) = self.state.m.get(t).map(Vec::len) else { return };
            if param_err.is_none() && p.len() != want {
                param_err =
                    Some(LearnError::TensorLengthMismatch { name: "params", tensor: t, expected: want, got: p.len() });
            }
            if grad_err.is_none() && g.len() != want {
                grad_err =
                    Some(LearnError::TensorLengthMismatch { name: "grads", tensor: t, expected: want, got: g.len() });
            }
            if err.is_none()
                && let Some(i) = first_non_finite(g)
            {
                err = Some(LearnError::NonFinite { name: "grads", index: offset + i });
            }
            offset += g.len();
        });
        // The order of `step`'s checks: tensor counts and lengths, then finiteness.
        if count != expected {
            return Err(LearnError::LengthMismatch { name: "params", expected, got: count });
        }
        if let Some(e) = param_err.or(grad_err).or(err) {
            return Err(e);
        }

        let (scalars, decay_factor) = self.advance(lr);
        let mut t = 0;
        let (ms, vs, decay) = (&mut self.state.m, &mut self.state.v, &self.decay);
        walk(&mut |p, g| {
            if let (Some(m), Some(v), Some(&d)) = (ms.get_mut(t), vs.get_mut(t), decay.get(t)) {
                update_tensor(p, g, m, v, if d { decay_factor } else { 1.0 }, &scalars);
            }
            t += 1;
        });
        Ok(())
    }

    /// Counts the step and returns its constants and the weight-decay factor.
    fn advance(&mut self, lr: f32) -> (Scalars, f32) {
        self.state.step += 1;
        let (b1, b2) = self.config.betas;
        // Scalars in f64 as PyTorch computes them in Python, then rounded once.
        let t = self.state.step as f64;
        let bias1 = 1.0 - libm::pow(f64::from(b1), t);
        let bias2 = 1.0 - libm::pow(f64::from(b2), t);
        let scalars = Scalars {
            one_minus_b1: (1.0 - f64::from(b1)) as f32,
            b2,
            one_minus_b2: (1.0 - f64::from(b2)) as f32,
            neg_step_size: (-f64::from(lr) / bias1) as f32,
            inv_bias2_sqrt: (1.0 / libm::sqrt(bias2)) as f32,
            eps: self.config.eps,
        };
        (scalars, (1.0 - f64::from(lr) * f64::from(self.config.weight_decay)) as f32)
    }
}

/// Per-step constants of the update.
struct Scalars {
    one_minus_b1: f32,
    b2: f32,
    one_minus_b2: f32,
    neg_step_size: f32,
    inv_bias2_sqrt: f32,
    eps: f32,
}

/// The fused element-wise update: one pass over parameter, gradient and both moments, which LLVM vectorises.
#[inline]
fn update_tensor(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], decay_factor: f32, s: &Scalars) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let m_new = *m + s.one_minus_b1 * (g - *m);
        let v_new = *v * s.b2 + s.one_minus_b2 * g * g;
        let denom = sqrt_f32(v_new) * s.inv_bias2_sqrt + s.eps;
        *p = *p * decay_factor + s.neg_step_size * (m_new / denom);
        *m = m_new;
        *v = v_new;
    }
}

/// Checks a list of tensors against the lengths the optimizer was built for.
fn check_lens(
    name: &'static str,
    reference: &[Vec<f32>],
    lens: impl Iterator<Item = usize>,
    count: usize,
) -> Result<()> {
    if count != reference.len() {
        return Err(LearnError::LengthMismatch { name, expected: reference.len(), got: count });
    }
    for (tensor, (got, r)) in lens.zip(reference).enumerate() {
        if got != r.len() {
            return Err(LearnError::TensorLengthMismatch { name, tensor, expected: r.len(), got });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grads(step: u64, lens: &[usize]) -> Vec<Vec<f32>> {
        lens.iter()
            .enumerate()
            .map(|(t, &n)| (0..n).map(|i| ((step * 31 + t as u64 * 7 + i as u64) % 13) as f32 * 0.1 - 0.6).collect())
            .collect()
    }

    fn run(opt: &mut AdamW, params: &mut [Vec<f32>], steps: core::ops::Range<u64>) {
        let lens: Vec<usize> = params.iter().map(Vec::len).collect();
        for s in steps {
            let g = grads(s, &lens);
            let g_refs: Vec<&[f32]> = g.iter().map(Vec::as_slice).collect();
            let mut p_refs: Vec<&mut [f32]> = params.iter_mut().map(Vec::as_mut_slice).collect();
            opt.step(&mut p_refs, &g_refs, 1e-2).unwrap();
        }
    }

    #[test]
    fn resuming_from_exported_state_is_bit_identical() {
        let lens = [5, 9];
        let config = AdamWConfig { betas: (0.9, 0.95), eps: 1e-8, weight_decay: 0.1 };
        let init: Vec<Vec<f32>> = lens.iter().map(|&n| (0..n).map(|i| i as f32 * 0.3 - 1.0).collect()).collect();
        let mut straight = AdamW::new(config, &lens);
        let mut p_straight = init.clone();
        run(&mut straight, &mut p_straight, 0..10);

        let mut first = AdamW::new(config, &lens);
        let mut p_resumed = init;
        run(&mut first, &mut p_resumed, 0..4);
        let mut resumed = AdamW::new(config, &lens);
        resumed.import_state(first.export_state()).unwrap();
        run(&mut resumed, &mut p_resumed, 4..10);
        assert_eq!(p_straight, p_resumed);
        assert_eq!(straight.state(), resumed.state());
        assert_eq!(resumed.step_count(), 10);
    }

    #[test]
    fn bad_inputs_are_errors_and_change_nothing() {
        let mut opt = AdamW::new(AdamWConfig::default(), &[3, 2]);
        let mut a = [1.0f32, 2.0, 3.0];
        let mut b = [4.0f32, 5.0];
        let before = (a, b);
        let nan = [0.1f32, f32::NAN];
        let err = opt.step(&mut [&mut a, &mut b], &[&[0.1, 0.2, 0.3], &nan], 1e-3).unwrap_err();
        assert_eq!(err, LearnError::NonFinite { name: "grads", index: 4 });
        let err = opt.step(&mut [&mut a, &mut b], &[&[0.1, 0.2, 0.3], &[0.1]], 1e-3).unwrap_err();
        assert_eq!(err, LearnError::TensorLengthMismatch { name: "grads", tensor: 1, expected: 2, got: 1 });
        let err = opt.step(&mut [&mut a], &[&[0.1, 0.2, 0.3]], 1e-3).unwrap_err();
        assert_eq!(err, LearnError::LengthMismatch { name: "params", expected: 2, got: 1 });
        let err = opt.step(&mut [&mut a, &mut b], &[&[0.1, 0.2, 0.3], &[0.1, 0.2]], f32::NAN).unwrap_err();
        assert!(matches!(err, LearnError::InvalidConfig { name: "lr", .. }));
        assert_eq!((a, b), before);
        assert_eq!(opt.step_count(), 0);
        assert!(opt.set_weight_decay_mask(&[true]).is_err());
        let bad_state =
            AdamWState { step: 3, m: vec![vec![0.0; 3], vec![0.0; 2]], v: vec![vec![0.0; 3], vec![-1.0, 0.0]] };
        assert!(opt.import_state(bad_state).is_err());
        let short = AdamWState { step: 3, m: vec![vec![0.0; 3]], v: vec![vec![0.0; 3]] };
        assert!(opt.import_state(short).is_err());
        let mut bad_config = AdamW::new(AdamWConfig { betas: (1.0, 0.999), ..AdamWConfig::default() }, &[3, 2]);
        assert!(bad_config.step(&mut [&mut a, &mut b], &[&[0.1, 0.2, 0.3], &[0.1, 0.2]], 1e-3).is_err());
    }

    #[test]
    fn first_step_moves_each_parameter_by_about_lr_against_its_gradient_sign() {
        // With bias correction, Adam's first update is lr * g / (|g| + eps): the sign of the gradient.
        let mut opt = AdamW::new(AdamWConfig { weight_decay: 0.0, ..AdamWConfig::default() }, &[3]);
        let mut p = [0.0f32; 3];
        opt.step(&mut [&mut p], &[&[2.0, -0.5, 1e-3]], 0.1).unwrap();
        for (x, want) in p.iter().zip([-0.1f32, 0.1, -0.1]) {
            assert!((x - want).abs() < 1e-5, "{x} vs {want}");
        }
    }

    #[test]
    fn step_with_is_step_bit_for_bit() {
        let lens = [5, 9, 1];
        let config = AdamWConfig { betas: (0.9, 0.95), eps: 1e-8, weight_decay: 0.1 };
        let init: Vec<Vec<f32>> = lens.iter().map(|&n| (0..n).map(|i| i as f32 * 0.3 - 1.0).collect()).collect();
        let (mut a, mut b) = (AdamW::new(config, &lens), AdamW::new(config, &lens));
        a.set_weight_decay_mask(&[true, false, true]).unwrap();
        b.set_weight_decay_mask(&[true, false, true]).unwrap();
        let (mut pa, mut pb) = (init.clone(), init);
        run(&mut a, &mut pa, 0..6);
        for s in 0..6 {
            let g = grads(s, &lens);
            b.step_with(1e-2, |visit| pb.iter_mut().zip(&g).for_each(|(p, g)| visit(p, g))).unwrap();
        }
        assert_eq!(pa, pb);
        assert_eq!(a.state(), b.state());
        // The same errors, and nothing changes.
        let before = pb.clone();
        let mut bad = grads(9, &lens);
        bad[1][3] = f32::NAN;
        let err = b.step_with(1e-2, |visit| pb.iter_mut().zip(&bad).for_each(|(p, g)| visit(p, g))).unwrap_err();
        assert_eq!(err, LearnError::NonFinite { name: "grads", index: 8 });
        let err =
            b.step_with(1e-2, |visit| pb.iter_mut().zip(&bad).take(2).for_each(|(p, g)| visit(p, g))).unwrap_err();
        assert_eq!(err, LearnError::LengthMismatch { name: "params", expected: 3, got: 2 });
        let short = [vec![0.0; 5], vec![0.0; 8], vec![0.0; 1]];
        let err = b.step_with(1e-2, |visit| pb.iter_mut().zip(&short).for_each(|(p, g)| visit(p, g))).unwrap_err();
        assert_eq!(err, LearnError::TensorLengthMismatch { name: "grads", tensor: 1, expected: 9, got: 8 });
        assert_eq!(pb, before);
        assert_eq!(b.step_count(), 6);
    }

    #[test]
    fn weight_decay_mask_exempts_tensors() {
        let mut opt = AdamW::new(AdamWConfig { weight_decay: 0.5, ..AdamWConfig::default() }, &[1, 1]);
        opt.set_weight_decay_mask(&[true, false]).unwrap();
        let (mut a, mut b) = ([1.0f32], [1.0f32]);
        opt.step(&mut [&mut a, &mut b], &[&[0.0], &[0.0]], 0.1).unwrap();
        assert!((a[0] - 0.95).abs() < 1e-7 && b[0] == 1.0);
    }
}
