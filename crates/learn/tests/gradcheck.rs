//! Every gradient a loss returns against central finite differences of the loss it returns, in f64, on
//! seeded random inputs that exercise clipping, dual clipping, masks, empty rows and every aggregation mode.

mod common;

use common::*;
use selfplay_learn::distill::{SoftTargets, soft_cross_entropy};
use selfplay_learn::kl::{KlEstimator, KlLoss};
use selfplay_learn::policy::{PolicyBatch, PpoConfig, RatioLevel, policy_loss};
use selfplay_learn::preference::{PreferenceBatch, PreferenceLoss};
use selfplay_learn::supervised::bc_loss;
use selfplay_learn::value::value_loss;
use selfplay_learn::{LossAgg, SeqShape};

const AGGS: [LossAgg; 5] = [
    LossAgg::TokenMean,
    LossAgg::SeqMeanTokenMean,
    LossAgg::SeqMeanTokenSum,
    LossAgg::SeqMeanTokenSumNorm { norm: None },
    LossAgg::SeqMeanTokenSumNorm { norm: Some(64.0) },
];

#[test]
fn policy_loss_gradients_match_finite_differences() {
    let shape = SeqShape::new(5, 7);
    let n = 35;
    let mut rng = Stream::new(1);
    // Clip fractions summed over cases: token clipping, sequence clipping, dual clipping must all occur.
    let mut exercised = [0.0; 3];
    for (k, agg) in AGGS.iter().enumerate() {
        for ratio in [RatioLevel::Token, RatioLevel::Sequence] {
            for dual_clip in [None, Some(2.0)] {
                let mask = rng.mask(shape, k % 2 == 1);
                let old = rng.vec(n, -3.0, -0.1);
                let spread = if ratio == RatioLevel::Token { 1.2 } else { 0.15 };
                let lp: Vec<f64> = old.iter().zip(rng.vec(n, -spread, spread)).map(|(o, d)| o + d).collect();
                let adv = match ratio {
                    // Sequence ratios: one advantage per sequence (GSPO's gradient is the loss's only then).
                    RatioLevel::Sequence => {
                        let per_seq = rng.vec(shape.batch, -2.0, 2.0);
                        (0..n).map(|t| per_seq[t / shape.len]).collect()
                    }
                    RatioLevel::Token => rng.vec(n, -2.0, 2.0),
                };
                let entropy = rng.vec(n, 0.0, 3.0);
                let (clip_low, clip_high) = if ratio == RatioLevel::Token { (0.1, 0.15) } else { (0.02, 0.03) };
                let config = PpoConfig { clip_low, clip_high, dual_clip, ratio, agg: *agg, entropy_coef: 0.03 };
                let run = |lp: &[f64], h: &[f64]| {
                    let batch = PolicyBatch {
                        shape,
                        logprobs: lp,
                        old_logprobs: &old,
                        advantages: &adv,
                        mask: &mask,
                        entropy: Some(h),
                    };
                    policy_loss(&config, &batch).unwrap()
                };
                let out = run(&lp, &entropy);
                exercised[usize::from(ratio == RatioLevel::Sequence)] += out.clip_frac;
                exercised[2] += out.clip_frac_lower;
                let what = format!("{agg:?} {ratio:?} {dual_clip:?}");
                check_gradient(&format!("{what} d/dlogprobs"), |x| run(x, &entropy).loss, &lp, &out.grad_logprobs);
                check_gradient(&format!("{what} d/dentropy"), |h| run(&lp, h).loss, &entropy, &out.grad_entropy);
            }
        }
    }
    assert!(exercised.iter().all(|&x| x > 0.0), "inputs should exercise every clip: {exercised:?}");
}

#[test]
fn value_loss_gradients_match_finite_differences() {
    let shape = SeqShape::new(4, 6);
    let mut rng = Stream::new(2);
    for agg in AGGS {
        for clip in [None, Some(0.2)] {
            let mask = rng.mask(shape, true);
            let old = rng.vec(24, -1.0, 1.0);
            let v: Vec<f64> = old.iter().zip(rng.vec(24, -0.5, 0.5)).map(|(o, d)| o + d).collect();
            let ret = rng.vec(24, -1.5, 1.5);
            let run = |v: &[f64]| value_loss(shape, v, &old, &ret, &mask, clip, agg).unwrap();
            let out = run(&v);
            if clip.is_some() {
                assert!(out.clip_frac > 0.0);
            }
            check_gradient(&format!("value {agg:?} {clip:?}"), |x| run(x).loss, &v, &out.grad_values);
        }
    }
}

#[test]
fn kl_loss_gradients_match_finite_differences() {
    let shape = SeqShape::new(3, 6);
    let mut rng = Stream::new(3);
    for estimator in [KlEstimator::K1, KlEstimator::Abs, KlEstimator::K2, KlEstimator::K3] {
        for agg in AGGS {
            let mask = rng.mask(shape, false);
            let reference = rng.vec(18, -4.0, -0.1);
            let mut lp: Vec<f64> = reference.iter().zip(rng.vec(18, -1.5, 1.5)).map(|(r, d)| r + d).collect();
            lp[0] = reference[0] - 25.0; // beyond k3's ±20 clamp: zero gradient there
            let loss = KlLoss { estimator, k2_gradient: false, agg };
            let run = |x: &[f64]| loss.compute(shape, x, &reference, &mask).unwrap();
            let out = run(&lp);
            check_gradient(&format!("kl {estimator:?} {agg:?}"), |x| run(x).loss, &lp, &out.grad);
        }
    }
}

#[test]
fn straight_through_kl_has_the_k2_gradient_and_the_chosen_value() {
    let shape = SeqShape::new(2, 4);
    let mut rng = Stream::new(4);
    let mask = rng.mask(shape, false);
    let reference = rng.vec(8, -3.0, -0.1);
    let lp: Vec<f64> = reference.iter().zip(rng.vec(8, -1.0, 1.0)).map(|(r, d)| r + d).collect();
    let k3 = KlLoss { estimator: KlEstimator::K3, k2_gradient: false, agg: LossAgg::TokenMean }
        .compute(shape, &lp, &reference, &mask)
        .unwrap();
    let k2 = KlLoss { estimator: KlEstimator::K2, k2_gradient: false, agg: LossAgg::TokenMean }
        .compute(shape, &lp, &reference, &mask)
        .unwrap();
    let st = KlLoss { estimator: KlEstimator::K3, k2_gradient: true, agg: LossAgg::TokenMean }
        .compute(shape, &lp, &reference, &mask)
        .unwrap();
    assert_eq!(st.loss, k3.loss);
    assert_eq!(st.grad, k2.grad);
    assert_ne!(st.grad, k3.grad);
}

#[test]
fn bc_loss_gradients_match_finite_differences() {
    let shape = SeqShape::new(3, 5);
    let mut rng = Stream::new(5);
    for agg in AGGS {
        let mask = rng.mask(shape, true);
        let lp = rng.vec(15, -5.0, 0.0);
        let w = rng.vec(15, -0.5, 2.0);
        for weights in [None, Some(w.as_slice())] {
            let run = |x: &[f64]| bc_loss(shape, x, &mask, weights, agg).unwrap();
            check_gradient(&format!("bc {agg:?}"), |x| run(x).loss, &lp, &run(&lp).grad);
        }
    }
}

/// Random target distributions: `rows` rows of `vocab` probabilities, zero where `legal` is false, some
/// entries exactly zero, each row normalised in f64.
fn distributions(rng: &mut Stream, rows: usize, vocab: usize, legal: Option<&[bool]>) -> Vec<f64> {
    let mut q = rng.vec(rows * vocab, -0.3, 1.0);
    for (i, x) in q.iter_mut().enumerate() {
        if *x < 0.0 || legal.is_some_and(|m| !m[i]) {
            *x = 0.0;
        }
    }
    for row in q.chunks_exact_mut(vocab) {
        let s: f64 = row.iter().sum();
        if s == 0.0 {
            row.fill(1.0 / vocab as f64);
        } else {
            row.iter_mut().for_each(|x| *x /= s);
        }
    }
    q
}

#[test]
fn soft_cross_entropy_gradients_match_finite_differences() {
    let mut rng = Stream::new(8);
    let (rows, vocab) = (5, 9);
    let logits = rng.vec(rows * vocab, -6.0, 6.0);
    let weights = rng.vec(rows, 0.0, 2.0);
    let mut legal: Vec<bool> = rng.vec(rows * vocab, 0.0, 1.0).iter().map(|&u| u < 0.7).collect();
    for row in legal.chunks_exact_mut(vocab) {
        row[0] = true;
    }
    for mask in [None, Some(legal.as_slice())] {
        let q = distributions(&mut rng, rows, vocab, mask);
        for w in [None, Some(weights.as_slice())] {
            let run = |x: &[f64]| {
                let batch = SoftTargets { rows, vocab, logits: x, targets: &q, weights: w, legal: mask };
                soft_cross_entropy(&batch).unwrap()
            };
            let what = format!("soft CE mask {} weights {}", mask.is_some(), w.is_some());
            check_gradient(&what, |x| run(x).loss, &logits, &run(&logits).grad);
        }
    }
}

#[test]
fn preference_gradients_match_finite_differences() {
    let mut rng = Stream::new(6);
    let n = 7;
    let ref_chosen = rng.vec(n, -30.0, -1.0);
    let ref_rejected = rng.vec(n, -30.0, -1.0);
    let chosen: Vec<f64> = ref_chosen.iter().zip(rng.vec(n, -8.0, 8.0)).map(|(r, d)| r + d).collect();
    let rejected: Vec<f64> = ref_rejected.iter().zip(rng.vec(n, -8.0, 8.0)).map(|(r, d)| r + d).collect();
    let losses = [
        PreferenceLoss::Sigmoid { beta: 0.1, label_smoothing: 0.0 },
        PreferenceLoss::Sigmoid { beta: 2.0, label_smoothing: 0.2 },
        PreferenceLoss::Robust { beta: 0.5, label_smoothing: 0.1 },
        PreferenceLoss::Ipo { beta: 0.3 },
    ];
    for loss in losses {
        let run = |c: &[f64], r: &[f64]| {
            loss.compute(&PreferenceBatch {
                chosen: c,
                rejected: r,
                ref_chosen: &ref_chosen,
                ref_rejected: &ref_rejected,
            })
            .unwrap()
        };
        let out = run(&chosen, &rejected);
        check_gradient(&format!("{loss:?} chosen"), |c| run(c, &rejected).loss, &chosen, &out.grad_chosen);
        check_gradient(&format!("{loss:?} rejected"), |r| run(&chosen, r).loss, &rejected, &out.grad_rejected);
    }
}

#[test]
fn dpo_is_stable_for_huge_margins() {
    let loss = PreferenceLoss::Sigmoid { beta: 1.0, label_smoothing: 0.0 };
    let out = loss
        .compute(&PreferenceBatch { chosen: &[-1e4f64], rejected: &[0.0], ref_chosen: &[0.0], ref_rejected: &[0.0] })
        .unwrap();
    assert!((out.loss - 1e4).abs() < 1e-6 && (out.grad_chosen[0] + 1.0).abs() < 1e-12);
    let out = loss
        .compute(&PreferenceBatch { chosen: &[1e4f32], rejected: &[0.0], ref_chosen: &[0.0], ref_rejected: &[0.0] })
        .unwrap();
    assert!(out.loss.abs() < 1e-6 && out.grad_chosen[0].is_finite());
}

#[test]
fn micro_batches_scaled_and_summed_equal_the_whole_batch() {
    let mut rng = Stream::new(7);
    let whole = SeqShape::new(6, 5);
    let half = SeqShape::new(3, 5);
    let mut mask = rng.mask(whole, true);
    mask[10..15].iter_mut().for_each(|m| *m = false); // an empty row in the first half too
    let old = rng.vec(30, -3.0, -0.1);
    let lp: Vec<f64> = old.iter().zip(rng.vec(30, -0.5, 0.5)).map(|(o, d)| o + d).collect();
    let adv = rng.vec(30, -1.0, 1.0);
    let totals = |r: core::ops::Range<usize>| selfplay_learn::BatchTotals::of(half, &mask[r]).unwrap();
    let total = totals(0..15) + totals(15..30);
    assert_eq!(total, selfplay_learn::BatchTotals::of(whole, &mask).unwrap());
    for agg in AGGS {
        let config = PpoConfig { agg, dual_clip: Some(3.0), ..PpoConfig::default() };
        let batch = |s: SeqShape, r: core::ops::Range<usize>| PolicyBatch {
            shape: s,
            logprobs: &lp[r.clone()],
            old_logprobs: &old[r.clone()],
            advantages: &adv[r.clone()],
            mask: &mask[r],
            entropy: None,
        };
        let full = policy_loss(&config, &batch(whole, 0..30)).unwrap();
        let (mut loss, mut grad) = (0.0, Vec::new());
        for r in [0..15, 15..30] {
            let part = policy_loss(&config, &batch(half, r.clone())).unwrap();
            let scale = agg.micro_batch_scale(totals(r), total).unwrap();
            loss += scale * part.loss;
            grad.extend(part.grad_logprobs.iter().map(|g| scale * g));
        }
        assert_close(&format!("{agg:?} loss"), &[loss], &[full.loss], 1e-12, 1e-12);
        assert_close(&format!("{agg:?} grad"), &grad, &full.grad_logprobs, 1e-12, 1e-12);
    }
}
