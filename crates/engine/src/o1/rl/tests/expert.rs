//! Expert iteration keeps exactly the verified, distinct completions, and its update is the supervised
//! (SFT) loss on them.

use selfplay_model::{CpuBackend, FinishReason, Generation};

use super::loss_and_grads;
use super::tiny_model;
use crate::o1::rl::config::{Algorithm, RlSettings};
use crate::o1::rl::expert_iteration::{prepare, select};
use crate::o1::rl::rollouts::{Drawn, Rollouts, Scored};

fn sample(group: usize, tokens: &[u32], correct: bool) -> Scored {
    let n = tokens.len();
    Scored {
        group,
        generation: Generation {
            tokens: tokens.to_vec(),
            logprobs: vec![-1.0; n],
            model_logprobs: vec![-1.0; n],
            values: vec![0.0; n],
            finish: FinishReason::Stop(2),
        },
        score: if correct { 1.0 } else { 0.1 },
        correct,
    }
}

/// Two prompts; duplicates within a group, the same completion in two groups, wrong and empty ones.
fn rollouts() -> Rollouts {
    Rollouts {
        prompts: vec![vec![1, 40, 30], vec![1, 41, 30]],
        samples: vec![
            sample(0, &[70, 2], true),
            sample(0, &[70, 2], true),      // duplicate of the first: dropped
            sample(0, &[71, 72, 2], false), // wrong: dropped
            sample(0, &[73, 2], true),
            sample(1, &[70, 2], true), // same tokens, other prompt: kept
            sample(1, &[], true),      // empty: dropped
            sample(1, &[50, 51, 2], false),
        ],
        drawn: Drawn { groups: 2, samples: 7, correct: 5, score_sum: 5.0 },
        generated_tokens: 12,
        search_flops: 0.0,
        selection_flops: 0.0,
        seconds: 0.0,
        proposals: None,
    }
}

#[test]
fn keeps_each_verified_completion_once_per_prompt() {
    assert_eq!(select(&rollouts()), vec![true, false, false, true, true, false, false]);
}

#[test]
fn update_is_the_sft_loss_on_the_kept_rows() {
    let model = tiny_model(0.3, 3);
    let settings = RlSettings { algorithm: Algorithm::ExpertIteration, value_coef: 0.0, ..RlSettings::default() };
    let rollouts = rollouts();
    let (rows, plan) = prepare::<CpuBackend>(&rollouts, None, &settings, 8).unwrap();
    let kept: Vec<Vec<u32>> = vec![vec![1, 40, 30, 70, 2], vec![1, 40, 30, 73, 2], vec![1, 41, 30, 70, 2]];
    assert_eq!(rows.iter().map(|r| r.tokens.clone()).collect::<Vec<_>>(), kept);
    let refs: Vec<_> = rows.iter().collect();
    let (terms, grads) = loss_and_grads(&model, &refs, &plan).unwrap();

    // `Model::sft_loss_and_grads` with weight 1 on each completion token's prediction, as `SftExample` has.
    let tokens: Vec<&[u32]> = kept.iter().map(Vec::as_slice).collect();
    let weights: Vec<Vec<f32>> =
        kept.iter().map(|t| (1..t.len()).map(|i| f32::from(u8::from(i >= 3))).collect()).collect();
    let weight_refs: Vec<&[f32]> = weights.iter().map(Vec::as_slice).collect();
    let (sft_loss, sft_grads) = model.sft_loss_and_grads(&tokens, &weight_refs).unwrap();
    assert!((terms.loss - sft_loss).abs() <= 1e-6 * sft_loss.abs(), "{} vs {sft_loss}", terms.loss);
    for ((name, g), (_, s)) in grads.named().into_iter().zip(sft_grads.named()) {
        for (a, b) in g.data().iter().zip(s.data()) {
            assert!((a - b).abs() <= 1e-6 + 1e-5 * b.abs(), "{name}: {a} vs {b}");
        }
    }

    // With the value head training, the wrong samples join as value-only rows.
    let with_values = RlSettings { value_coef: 0.1, ..settings };
    let (rows, _) = prepare::<CpuBackend>(&rollouts, None, &with_values, 8).unwrap();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows.iter().filter(|r| r.learn_policy).count(), 3);
}
