//! The update's weight gradient against central finite differences of the loss, the loss written out
//! here directly from the model's logits and values (not from the layout, the learn crate or
//! `token_stats`), so a misplaced gather or scatter, a wrong value slot or a dropped term shows up.
//!
//! The model computes in f32, so the check is directional: `∇L·d` against `(L(θ+hd) − L(θ−hd)) / 2h`
//! for a few random directions `d` (entries uniform in ±1, weights of scale 0.3), with the reference loss
//! summed in f64. Measured on the first case: the difference quotient converges to the backward value as
//! `h` shrinks (10% off at `h = 1e-2`, 0.2% at `1e-3`, 0.06% at `3e-4`), the f32 rounding of the forward
//! pass (≈ 1e-7 of a loss of order 1, divided by `2h`) stays below 0.1% at `h = 1e-3`, while a misplaced
//! index changes the derivative by tens of percent: `h = 1e-3` and a 1% relative tolerance separate them.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use selfplay_learn::LossAgg;
use selfplay_learn::kl::KlEstimator;
use selfplay_learn::policy::{PpoConfig, RatioLevel};
use selfplay_model::Model;

use super::loss_and_grads;
use super::tiny_model;
use crate::o1::rl::update::{Objective, Plan, Row};
use crate::train::ValueSlot;

fn uniform(rng: &mut ChaCha8Rng) -> f32 {
    (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
}

/// Three rows of different completion lengths over a fixed prompt, with targets drawn from `seed`:
/// old log-probabilities within ±0.05 of the current ones (ratios inside the clip), old values within
/// ±0.05 of the current ones at `slot` (inside the value clip), reference log-probabilities within ±0.3
/// (k3 stays far from the clamp the learn crate applies at 10). The second row is value-only when
/// `value_only_row`.
fn rows(model: &Model, slot: ValueSlot, value_only_row: bool) -> Vec<Row> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let prompt = [1u32, 40, 41];
    let completions: [&[u32]; 3] = [&[60, 61, 62, 2], &[70, 71], &[80, 81, 82, 83, 84]];
    completions
        .iter()
        .enumerate()
        .map(|(i, completion)| {
            let tokens: Vec<u32> = prompt.iter().chain(completion.iter()).copied().collect();
            let p = prompt.len();
            let n = completion.len();
            let stats = model.token_logprobs(&[&tokens]).unwrap().remove(0);
            let start = if slot == ValueSlot::BeforeToken { p - 1 } else { p };
            Row {
                prompt_len: p,
                learn_policy: !(value_only_row && i == 1),
                old_logprobs: (0..n).map(|j| stats.logprobs[p - 1 + j] + 0.05 * uniform(&mut rng)).collect(),
                advantages: (0..n).map(|_| uniform(&mut rng)).collect(),
                returns: (0..n).map(|_| 0.5 + 0.5 * uniform(&mut rng)).collect(),
                old_values: (0..n).map(|j| stats.values[start + j] + 0.05 * uniform(&mut rng)).collect(),
                ref_logprobs: Some((0..n).map(|j| stats.logprobs[p - 1 + j] + 0.3 * uniform(&mut rng)).collect()),
                tokens,
            }
        })
        .collect()
}

/// The loss of `plan` on `rows`, from scratch in f64 on `model.forward`'s logits and values.
fn direct_loss(model: &Model, rows: &[Row], plan: &Plan) -> f64 {
    let batch: Vec<&[u32]> = rows.iter().map(|r| r.tokens.as_slice()).collect();
    let outputs = model.forward(&batch).unwrap();
    let policy_rows = rows.iter().filter(|r| r.learn_policy).count() as f64;
    let policy_tokens: usize = rows.iter().filter(|r| r.learn_policy).map(Row::completion_len).sum();
    let all_tokens: usize = rows.iter().map(Row::completion_len).sum();
    let mut loss = 0.0f64;
    for (row, out) in rows.iter().zip(&outputs) {
        let (p, n) = (row.prompt_len, row.completion_len());
        let vocab = out.logits.dims()[1];
        let weight = match plan.agg {
            LossAgg::TokenMean => 1.0 / policy_tokens as f64,
            LossAgg::SeqMeanTokenMean => 1.0 / (n as f64 * policy_rows),
            _ => unreachable!("not used here"),
        };
        for j in 0..n {
            let logits: Vec<f64> =
                out.logits.data()[(p + j - 1) * vocab..(p + j) * vocab].iter().map(|&x| f64::from(x)).collect();
            let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
            let lp = logits[row.tokens[p + j] as usize] - lse;
            let entropy = -logits.iter().map(|l| (l - lse).exp() * (l - lse)).sum::<f64>();
            if row.learn_policy {
                let token_loss = match plan.objective {
                    Objective::Clipped(ppo) => {
                        let a = f64::from(row.advantages[j]);
                        let ratio = (lp - f64::from(row.old_logprobs[j])).exp();
                        let clipped = ratio.clamp(1.0 - ppo.clip_low, 1.0 + ppo.clip_high);
                        (-a * ratio).max(-a * clipped) - ppo.entropy_coef * entropy
                    }
                    Objective::Imitate => -lp,
                };
                let d = lp - f64::from(row.ref_logprobs.as_ref().unwrap()[j]);
                let k3 = (-d).exp() + d - 1.0;
                loss += weight * (token_loss + f64::from(plan.kl_coef.unwrap_or(0.0)) * k3);
            }
            let position = if plan.value_slot == ValueSlot::BeforeToken { p + j - 1 } else { p + j };
            let v = f64::from(out.values[position]);
            let r = f64::from(row.returns[j]);
            let mut sq = (v - r) * (v - r);
            if let Some(c) = plan.value_clip {
                let old = f64::from(row.old_values[j]);
                let vc = v.clamp(old - c, old + c);
                sq = sq.max((vc - r) * (vc - r));
            }
            loss += f64::from(plan.value_coef) * 0.5 * sq / all_tokens as f64;
        }
    }
    loss
}

fn check(plan: &Plan, slot: ValueSlot, value_only_row: bool) {
    let mut model = tiny_model(0.3, 11);
    let rows = rows(&model, slot, value_only_row);
    let refs: Vec<&Row> = rows.iter().collect();
    let (terms, grads) = loss_and_grads(&model, &refs, plan).unwrap();
    let at_theta = direct_loss(&model, &rows, plan);
    // The update's own loss terms agree with the direct loss (a check on the reference itself).
    let reported = f64::from(terms.loss) + f64::from(plan.value_coef * terms.value_loss);
    assert!((reported - at_theta).abs() < 1e-4 * (1.0 + at_theta.abs()), "loss {reported} vs direct {at_theta}");

    let theta = model.weights().clone();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let h = 1e-3f32;
    for _ in 0..3 {
        let direction: Vec<Vec<f32>> =
            theta.named().iter().map(|(_, t)| (0..t.numel()).map(|_| uniform(&mut rng)).collect()).collect();
        let analytic: f64 = grads
            .named()
            .iter()
            .zip(&direction)
            .flat_map(|((_, g), d)| g.data().iter().zip(d).map(|(&g, &d)| f64::from(g) * f64::from(d)))
            .sum();
        let mut at = |sign: f32| {
            *model.weights_mut() = theta.clone();
            for ((_, t), d) in model.weights_mut().iter_mut().zip(&direction) {
                t.iter_mut().zip(d).for_each(|(w, &d)| *w += sign * h * d);
            }
            direct_loss(&model, &rows, plan)
        };
        let numeric = (at(1.0) - at(-1.0)) / (2.0 * f64::from(h));
        assert!(
            (numeric - analytic).abs() <= 1e-2 * analytic.abs().max(1e-2),
            "directional derivative: finite differences {numeric}, backward {analytic}"
        );
    }
}

fn ppo(agg: LossAgg) -> PpoConfig {
    PpoConfig { clip_low: 0.2, clip_high: 0.28, dual_clip: None, ratio: RatioLevel::Token, agg, entropy_coef: 0.01 }
}

fn plan(objective: Objective, agg: LossAgg, slot: ValueSlot, value_clip: Option<f64>) -> Plan {
    Plan {
        objective,
        agg,
        value_slot: slot,
        value_clip,
        value_coef: 0.5,
        kl_estimator: KlEstimator::K3,
        kl_coef: Some(0.1),
        epochs: 1,
        minibatches: 1,
    }
}

#[test]
fn grpo_style_update_matches_finite_differences() {
    let slot = ValueSlot::AfterToken;
    check(&plan(Objective::Clipped(ppo(LossAgg::TokenMean)), LossAgg::TokenMean, slot, None), slot, false);
}

#[test]
fn ppo_style_update_with_value_clip_matches_finite_differences() {
    let (slot, agg) = (ValueSlot::BeforeToken, LossAgg::SeqMeanTokenMean);
    check(&plan(Objective::Clipped(ppo(agg)), agg, slot, Some(0.2)), slot, false);
}

#[test]
fn imitation_update_with_value_only_rows_matches_finite_differences() {
    let slot = ValueSlot::AfterToken;
    check(&plan(Objective::Imitate, LossAgg::TokenMean, slot, None), slot, true);
}
