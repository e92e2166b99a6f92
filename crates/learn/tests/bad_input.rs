//! Bad input gets a typed error, never a panic: wrong lengths, NaN, empty batches or masks, bad
//! hyper-parameters, and arbitrary garbage (property test).

use proptest::prelude::*;
use selfplay_learn::advantage::{GroupScale, gae, grpo_advantages, reinforce_advantages, rloo_advantages};
use selfplay_learn::distill::{SoftCrossEntropy, SoftTargets, soft_cross_entropy};
use selfplay_learn::kl::{KlEstimator, KlLoss};
use selfplay_learn::policy::{PolicyBatch, PpoConfig, RatioLevel, policy_loss};
use selfplay_learn::preference::{PreferenceBatch, PreferenceLoss};
use selfplay_learn::supervised::bc_loss;
use selfplay_learn::value::value_loss;
use selfplay_learn::{LearnError, LossAgg, SeqShape};

#[test]
fn typed_errors() {
    let s = SeqShape::new(2, 2);
    let ok = [-1.0f64; 4];
    let m = [true; 4];
    let batch = |lp: &'static [f64], mask: &'static [bool]| PolicyBatch {
        shape: s,
        logprobs: lp,
        old_logprobs: &[-1.0; 4],
        advantages: &[1.0; 4],
        mask,
        entropy: None,
    };
    let cfg = PpoConfig::default();
    assert_eq!(
        policy_loss(&cfg, &batch(&[-1.0; 3], &[true; 4])).unwrap_err(),
        LearnError::LengthMismatch { name: "logprobs", expected: 4, got: 3 }
    );
    assert_eq!(
        policy_loss(&cfg, &batch(&[-1.0, f64::NAN, 0.0, 0.0], &[true; 4])).unwrap_err(),
        LearnError::NonFinite { name: "logprobs", index: 1 }
    );
    assert!(matches!(policy_loss(&cfg, &batch(&[-1.0; 4], &[false; 4])).unwrap_err(), LearnError::Empty { .. }));
    assert!(matches!(
        policy_loss(&cfg, &batch(&[-1.0; 4], &[true; 3])).unwrap_err(),
        LearnError::LengthMismatch { name: "mask", .. }
    ));
    let no_entropy = PpoConfig { entropy_coef: 0.01, ..cfg };
    assert!(matches!(policy_loss(&no_entropy, &batch(&[-1.0; 4], &[true; 4])).unwrap_err(), LearnError::Empty { .. }));
    for bad in [
        PpoConfig { clip_low: 1.0, ..cfg },
        PpoConfig { dual_clip: Some(0.5), ..cfg },
        PpoConfig { clip_high: f64::NAN, ..cfg },
    ] {
        assert!(matches!(
            policy_loss(&bad, &batch(&[-1.0; 4], &[true; 4])).unwrap_err(),
            LearnError::InvalidConfig { .. }
        ));
    }
    assert!(matches!(SeqShape::new(0, 3).numel().unwrap_err(), LearnError::Empty { .. }));
    assert!(matches!(SeqShape::new(usize::MAX, 3).numel().unwrap_err(), LearnError::InvalidConfig { .. }));

    assert!(matches!(
        grpo_advantages::<f64>(&[], &[], GroupScale::GroupStd, 1e-6).unwrap_err(),
        LearnError::Empty { .. }
    ));
    assert!(matches!(
        grpo_advantages(&[1.0f64, 2.0], &[0], GroupScale::GroupStd, 1e-6).unwrap_err(),
        LearnError::LengthMismatch { .. }
    ));
    assert!(matches!(rloo_advantages(&[1.0f64, f64::INFINITY], &[0, 0]).unwrap_err(), LearnError::NonFinite { .. }));
    assert!(matches!(
        grpo_advantages(&[1.0f64], &[0], GroupScale::GroupStd, -1.0).unwrap_err(),
        LearnError::InvalidConfig { .. }
    ));
    assert!(matches!(gae(s, &ok, &ok, &[false; 4], 1.0, 1.0, true).unwrap_err(), LearnError::Empty { .. }));
    assert!(matches!(gae(s, &ok, &ok, &m, f64::NAN, 1.0, true).unwrap_err(), LearnError::InvalidConfig { .. }));
    assert!(matches!(reinforce_advantages(s, &ok, &m, &[0.0], 1.0).unwrap_err(), LearnError::LengthMismatch { .. }));
    assert!(matches!(
        value_loss(s, &ok, &ok, &ok, &m, Some(-0.1), LossAgg::TokenMean).unwrap_err(),
        LearnError::InvalidConfig { .. }
    ));
    assert!(matches!(
        bc_loss(s, &ok, &m, Some(&[1.0; 3]), LossAgg::TokenMean).unwrap_err(),
        LearnError::LengthMismatch { .. }
    ));
    let bad_norm = LossAgg::SeqMeanTokenSumNorm { norm: Some(0.0) };
    assert!(matches!(bc_loss(s, &ok, &m, None, bad_norm).unwrap_err(), LearnError::InvalidConfig { .. }));
    let kl = KlLoss { estimator: KlEstimator::K3, k2_gradient: false, agg: LossAgg::TokenMean };
    assert!(matches!(kl.compute(s, &ok, &[0.0; 5], &m).unwrap_err(), LearnError::LengthMismatch { .. }));
    assert!("token-sum".parse::<LossAgg>().is_err() && "k4".parse::<KlEstimator>().is_err());
    let dpo = PreferenceLoss::Sigmoid { beta: 0.1, label_smoothing: 0.0 };
    let empty: [f64; 0] = [];
    assert!(matches!(
        dpo.compute(&PreferenceBatch { chosen: &empty, rejected: &empty, ref_chosen: &empty, ref_rejected: &empty })
            .unwrap_err(),
        LearnError::Empty { .. }
    ));
    let one = [1.0f64];
    assert!(matches!(
        dpo.compute(&PreferenceBatch { chosen: &one, rejected: &[], ref_chosen: &one, ref_rejected: &one })
            .unwrap_err(),
        LearnError::LengthMismatch { .. }
    ));
    let smooth = PreferenceLoss::Sigmoid { beta: 0.1, label_smoothing: 0.5 };
    assert!(matches!(
        smooth
            .compute(&PreferenceBatch { chosen: &one, rejected: &one, ref_chosen: &one, ref_rejected: &one })
            .unwrap_err(),
        LearnError::InvalidConfig { .. }
    ));
}

#[test]
fn soft_cross_entropy_rejects_bad_targets_with_typed_errors() {
    let logits = [0.5f64, -0.2, 1.0, 0.0, 0.3, 0.1];
    let q = [0.2f64, 0.3, 0.5, 1.0, 0.0, 0.0];
    let ok = SoftTargets { rows: 2, vocab: 3, logits: &logits, targets: &q, weights: None, legal: None };
    assert!(soft_cross_entropy(&ok).is_ok());
    let err = |b: SoftTargets<'_, f64>| soft_cross_entropy(&b).unwrap_err();
    assert_eq!(err(SoftTargets { rows: 0, ..ok }), LearnError::Empty { name: "rows" });
    assert_eq!(err(SoftTargets { vocab: 0, ..ok }), LearnError::Empty { name: "vocab" });
    assert_eq!(
        err(SoftTargets { rows: usize::MAX, ..ok }),
        LearnError::InvalidConfig { name: "shape", reason: "rows * vocab overflows" }
    );
    assert_eq!(
        err(SoftTargets { logits: &logits[..5], ..ok }),
        LearnError::LengthMismatch { name: "logits", expected: 6, got: 5 }
    );
    assert_eq!(
        err(SoftTargets { targets: &q[..3], ..ok }),
        LearnError::LengthMismatch { name: "targets", expected: 6, got: 3 }
    );
    assert_eq!(
        err(SoftTargets { weights: Some(&[1.0]), ..ok }),
        LearnError::LengthMismatch { name: "weights", expected: 2, got: 1 }
    );
    assert_eq!(
        err(SoftTargets { legal: Some(&[true; 5]), ..ok }),
        LearnError::LengthMismatch { name: "legal", expected: 6, got: 5 }
    );
    assert_eq!(
        err(SoftTargets { weights: Some(&[1.0, -0.5]), ..ok }),
        LearnError::Negative { name: "weights", index: 1 }
    );
    assert_eq!(
        err(SoftTargets { weights: Some(&[f64::NAN, 1.0]), ..ok }),
        LearnError::NonFinite { name: "weights", index: 0 }
    );
    let nan_logit = [0.5, f64::NAN, 1.0, 0.0, 0.3, 0.1];
    assert_eq!(err(SoftTargets { logits: &nan_logit, ..ok }), LearnError::NonFinite { name: "logits", index: 1 });
    let masked_inf = [0.5, f64::NEG_INFINITY, 1.0, 0.0, 0.3, 0.1];
    assert_eq!(err(SoftTargets { logits: &masked_inf, ..ok }), LearnError::NonFinite { name: "logits", index: 1 });
    let negative = [0.5, -0.1, 0.6, 1.0, 0.0, 0.0];
    assert_eq!(err(SoftTargets { targets: &negative, ..ok }), LearnError::Negative { name: "targets", index: 1 });
    let inf_target = [0.5, 0.5, 0.0, f64::INFINITY, 0.0, 0.0];
    assert_eq!(err(SoftTargets { targets: &inf_target, ..ok }), LearnError::NonFinite { name: "targets", index: 3 });
    let short = [0.2, 0.3, 0.5, 0.5, 0.2, 0.2];
    assert!(matches!(
        err(SoftTargets { targets: &short, ..ok }),
        LearnError::NotADistribution { name: "targets", row: 1, sum, .. } if (sum - 0.9).abs() < 1e-12
    ));
    assert!(SoftCrossEntropy { sum_tolerance: 0.2 }.compute(&SoftTargets { targets: &short, ..ok }).is_ok());
    assert!(matches!(
        SoftCrossEntropy { sum_tolerance: f64::NAN }.compute(&ok),
        Err(LearnError::InvalidConfig { name: "sum_tolerance", .. })
    ));
    // With a mask, illegal logits may be -inf (never read) but an illegal action may not carry probability.
    let legal = [true, false, true, true, true, false];
    assert!(soft_cross_entropy(&SoftTargets { logits: &masked_inf, legal: Some(&legal), ..ok }).is_err());
    let q_legal = [0.4, 0.0, 0.6, 1.0, 0.0, 0.0];
    let masked = SoftTargets { logits: &masked_inf, targets: &q_legal, legal: Some(&legal), ..ok };
    assert!(soft_cross_entropy(&masked).is_ok_and(|o| o.loss.is_finite() && o.grad[1] == 0.0));
    assert_eq!(
        err(SoftTargets { targets: &q, legal: Some(&legal), ..ok }),
        LearnError::IllegalTarget { row: 0, index: 1 }
    );
    let no_legal = [false, false, false, true, true, true];
    assert_eq!(
        err(SoftTargets { targets: &q_legal, legal: Some(&no_legal), ..ok }),
        LearnError::IllegalTarget { row: 0, index: 0 }
    );
}

#[test]
fn degenerate_groups_follow_verl() {
    // A group of one: mean 0, std 1. All-equal rewards: std 0, advantage 0 (not NaN).
    let adv = grpo_advantages(&[0.7f64, 1.0, 1.0, 1.0], &[5, 9, 9, 9], GroupScale::GroupStd, 1e-6).unwrap();
    assert!((adv[0] - 0.7 / (1.0 + 1e-6)).abs() < 1e-12);
    assert!(adv[1..].iter().all(|a| a.abs() < 1e-9));
    assert_eq!(rloo_advantages(&[0.7f64, 1.0, 1.0], &[5, 9, 9]).unwrap(), vec![0.7, 0.0, 0.0]);
    let single = grpo_advantages(&[2.0f32], &[0], GroupScale::BatchStd, 1e-4).unwrap();
    assert!((single[0] - 2.0 / 1.0001).abs() < 1e-6);
}

#[test]
fn sequences_without_tokens_do_not_count_in_sequence_means() {
    let s = SeqShape::new(3, 2);
    let lp = [-1.0f64, -3.0, -2.0, -2.0, -50.0, -50.0];
    let m = [true, true, true, false, false, false];
    let out = bc_loss(s, &lp, &m, None, LossAgg::SeqMeanTokenMean).unwrap();
    assert_eq!(out.loss, (2.0 + 2.0) / 2.0);
    assert_eq!(out.grad, vec![-0.25, -0.25, -0.5, 0.0, 0.0, 0.0]);
}

fn arb_f64() -> impl Strategy<Value = f64> {
    prop_oneof![8 => -50.0f64..50.0, 1 => Just(f64::NAN), 1 => Just(f64::INFINITY), 1 => Just(1e300), 1 => Just(-1e300)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any lengths, values and flags: every entry point returns Ok or Err, and Ok results are finite.
    #[test]
    fn never_panics(batch in 0usize..4, len in 0usize..4, xs in proptest::collection::vec(arb_f64(), 0..16),
                    mask in proptest::collection::vec(any::<bool>(), 0..16), ids in proptest::collection::vec(0u64..3, 0..16),
                    sequence in any::<bool>(), agg_pick in 0usize..4) {
        let s = SeqShape::new(batch, len);
        let n = batch * len;
        let take = |k: usize| -> Vec<f64> { xs.iter().cycle().skip(k).take(if xs.is_empty() { 0 } else { n }).copied().collect() };
        let (a, b, c) = (take(0), take(1), take(2));
        let agg = [LossAgg::TokenMean, LossAgg::SeqMeanTokenMean, LossAgg::SeqMeanTokenSum, LossAgg::SeqMeanTokenSumNorm { norm: None }][agg_pick];
        let cfg = PpoConfig { ratio: if sequence { RatioLevel::Sequence } else { RatioLevel::Token }, agg, dual_clip: Some(3.0), ..PpoConfig::default() };
        if let Ok(out) = policy_loss(&cfg, &PolicyBatch { shape: s, logprobs: &a, old_logprobs: &b, advantages: &c, mask: &mask, entropy: None }) {
            prop_assert!(out.loss.is_finite() || a.iter().chain(&b).chain(&c).any(|x| x.abs() > 1e100));
        }
        let _ = value_loss(s, &a, &b, &c, &mask, Some(0.2), agg);
        let _ = bc_loss(s, &a, &mask, Some(&b), agg);
        let _ = KlLoss { estimator: KlEstimator::K3, k2_gradient: false, agg }.compute(s, &a, &b, &mask);
        let _ = gae(s, &a, &b, &mask, 0.99, 0.95, true);
        let _ = reinforce_advantages(s, &a, &mask, &b, 1.0);
        let _ = grpo_advantages(&xs, &ids, GroupScale::GroupStd, 1e-6);
        let _ = rloo_advantages(&xs, &ids);
        let _ = PreferenceLoss::Ipo { beta: 0.1 }.compute(&PreferenceBatch { chosen: &a, rejected: &b, ref_chosen: &c, ref_rejected: &a });
        let legal = if sequence { Some(mask.as_slice()) } else { None };
        let soft = SoftTargets { rows: batch, vocab: len, logits: &a, targets: &b, weights: Some(&xs), legal };
        if let Ok(out) = (SoftCrossEntropy { sum_tolerance: 1e300 }).compute(&soft) {
            prop_assert_eq!(out.grad.len(), n);
        }
        let _ = soft_cross_entropy(&SoftTargets { weights: None, ..soft });
    }
}
