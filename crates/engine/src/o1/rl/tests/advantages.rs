//! Advantages against hand-computed values.

use selfplay_learn::advantage::GroupScale;

use crate::o1::rl::config::{Algorithm, RlSettings};
use crate::o1::rl::policy_gradient::{ppo_advantages, sequence_advantages};
use crate::o1::rl::update::Row;

fn close(a: f32, b: f64) -> bool {
    (f64::from(a) - b).abs() < 1e-6
}

/// A row of `n` completion tokens with the given old values, old and reference log-probabilities.
fn row(old_values: Vec<f32>, old: Vec<f32>, reference: Vec<f32>) -> Row {
    let n = old_values.len();
    Row {
        tokens: (0..n as u32 + 2).collect(),
        prompt_len: 2,
        learn_policy: true,
        old_logprobs: old,
        advantages: vec![0.0; n],
        returns: vec![0.0; n],
        old_values,
        ref_logprobs: Some(reference),
    }
}

#[test]
fn rloo_is_the_score_minus_the_mean_of_the_others() {
    let settings = RlSettings { algorithm: Algorithm::Rloo, ..RlSettings::default() };
    let scores = [1.0, 0.0, 0.1, 1.0, 0.5, 0.5];
    let groups = [0, 0, 0, 0, 1, 1];
    let adv = sequence_advantages(&settings, &scores, &groups).unwrap();
    // Group 0: others' means (0 + 0.1 + 1)/3, (1 + 0.1 + 1)/3, (1 + 0 + 1)/3, (1 + 0 + 0.1)/3.
    let expected = [1.0 - 1.1 / 3.0, -2.1 / 3.0, 0.1 - 2.0 / 3.0, 1.0 - 1.1 / 3.0, 0.0, 0.0];
    for (a, e) in adv.iter().zip(expected) {
        assert!(close(*a, e), "{adv:?} vs {expected:?}");
    }
}

#[test]
fn grpo_scales_by_the_group_std_or_not_at_all() {
    let scores = [1.0, 0.0, 0.0, 1.0];
    let groups = [0, 0, 0, 0];
    let std = (4.0f64 * 0.25 / 3.0).sqrt(); // unbiased std of {1, 0, 0, 1}
    let grpo = sequence_advantages(&RlSettings::default(), &scores, &groups).unwrap();
    assert!(close(grpo[0], 0.5 / (std + 1e-6)) && close(grpo[1], -0.5 / (std + 1e-6)), "{grpo:?}");
    let dr = RlSettings { group_scale: GroupScale::None, ..RlSettings::default() };
    assert_eq!(sequence_advantages(&dr, &scores, &groups).unwrap(), vec![0.5, -0.5, -0.5, 0.5]);
}

/// With γ = λ = 1 and zero values, GAE is the Monte-Carlo return: the score at every token, less the KL
/// penalties still to come when the KL is in the reward.
#[test]
fn ppo_with_unit_gamma_lambda_and_zero_values_is_reinforce() {
    let settings = RlSettings {
        algorithm: Algorithm::Ppo,
        gamma: 1.0,
        lambda: 1.0,
        whiten_advantages: false,
        kl_coef: 0.5,
        kl_in_reward: true,
        ..RlSettings::default()
    };
    let olds = [vec![-1.0f32, -0.5, -2.0], vec![-0.3f32]];
    let refs = [vec![-1.5f32, -0.5, -1.0], vec![-0.9f32]];
    let scores = [1.0f32, 0.1];
    let mut rows: Vec<Row> =
        olds.iter().zip(&refs).map(|(o, r)| row(vec![0.0; o.len()], o.clone(), r.clone())).collect();
    ppo_advantages(&mut rows, &scores, &settings).unwrap();
    for ((row, (old, reference)), &score) in rows.iter().zip(olds.iter().zip(&refs)).zip(&scores) {
        let k3: Vec<f64> = old
            .iter()
            .zip(reference)
            .map(|(&o, &r)| {
                let d = f64::from(o) - f64::from(r);
                (-d).exp() + d - 1.0
            })
            .collect();
        for t in 0..old.len() {
            let expected = f64::from(score) - 0.5 * k3[t..].iter().sum::<f64>();
            assert!(close(row.advantages[t], expected), "advantage {t}: {} vs {expected}", row.advantages[t]);
            assert!(close(row.returns[t], expected), "return {t}: {} vs {expected}", row.returns[t]);
        }
    }

    // Without the KL: every token's advantage is the score.
    let plain = RlSettings { kl_coef: 0.0, kl_in_reward: false, ..settings };
    let mut rows = vec![row(vec![0.0; 3], olds[0].clone(), refs[0].clone())];
    ppo_advantages(&mut rows, &[1.0], &plain).unwrap();
    assert_eq!(rows[0].advantages, vec![1.0; 3]);
}

/// With λ = 0, GAE is the one-step TD error `r_t + γ V(s_{t+1}) − V(s_t)`, where `V(s_t)` is the value
/// recorded before token `t` and the state after the last token is terminal.
#[test]
fn ppo_with_zero_lambda_is_the_td_error_of_the_recorded_values() {
    let settings = RlSettings {
        algorithm: Algorithm::Ppo,
        gamma: 0.9,
        lambda: 0.0,
        whiten_advantages: false,
        ..RlSettings::default()
    };
    let values = vec![0.2f32, 0.4, 0.7];
    let mut rows = vec![row(values.clone(), vec![-1.0; 3], vec![-1.0; 3])];
    ppo_advantages(&mut rows, &[1.0], &settings).unwrap();
    let expected = [0.9 * 0.4 - 0.2, 0.9 * 0.7 - 0.4, 1.0 - 0.7];
    for (t, e) in expected.into_iter().enumerate() {
        assert!(close(rows[0].advantages[t], e), "{:?} vs {expected:?}", rows[0].advantages);
        assert!(close(rows[0].returns[t], e + f64::from(values[t])));
    }
}
