//! Rollout scoring: the overlong penalty is DAPO's ramp on top of the verifier's reward.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use selfplay_tasks::{Split, Task};

use super::{LowercaseTask, tiny_model, tokenizer};
use crate::rl::RlSettings;
use crate::rl::error::RlError;
use crate::rl::rollouts::Rollouts;

fn collect(settings: &RlSettings, max_new_tokens: usize) -> Result<Rollouts, crate::cli::CliError> {
    let model = tiny_model(0.5, 2);
    let problems = LowercaseTask.generate(Split::Train, 26, 0).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    Rollouts::collect(&model, &tokenizer(), &LowercaseTask, &problems, settings, max_new_tokens, &mut rng, 4)
}

#[test]
fn overlong_penalty_ramps_to_its_weight_at_the_token_limit() {
    let plain = RlSettings { prompts_per_step: 8, group_size: 8, ..RlSettings::default() };
    let shaped = RlSettings { overlong_penalty: 0.5, overlong_buffer: 2, ..plain.clone() };
    let (plain, shaped) = (collect(&plain, 3).unwrap(), collect(&shaped, 3).unwrap());
    assert_eq!(plain.samples.len(), 64);
    for (p, s) in plain.samples.iter().zip(&shaped.samples) {
        assert_eq!((&p.generation, p.correct), (&s.generation, s.correct));
        // Free up to 3 − 2 = 1 token, then −0.5 per token of the 2-token ramp, times the weight 0.5.
        let penalty = match p.generation.tokens.len() {
            0 | 1 => 0.0,
            2 => -0.25,
            _ => -0.5,
        };
        assert_eq!(s.score, p.score + penalty, "{} tokens", p.generation.tokens.len());
    }
    let too_long = RlSettings { overlong_penalty: 0.5, overlong_buffer: 4, ..RlSettings::default() };
    let err = collect(&too_long, 3).unwrap_err().downcast::<RlError>().unwrap();
    assert!(matches!(*err, RlError::InvalidSetting { name: "overlong_buffer", .. }));
}
