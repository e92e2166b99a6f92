//! Self-play problem proposing: the proposer group's rewards recomputed from the solver groups the step attempted,
//! the generator's share, determinism, and the settings it refuses.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use selfplay_collective::SingleProcess;
use selfplay_model::Tokenizer;
use selfplay_tasks::{Propose, Split, Task};

use super::{LetterProposer, LowercaseTask, tiny_model, tokenizer};
use crate::o1::rl::error::RlError;
use crate::o1::rl::proposing;
use crate::o1::rl::rollouts::{Rollouts, Step};
use crate::o1::rl::{Algorithm, ProposeSettings, RlSettings, step};
use crate::optimizer::ModelOptimizer;
use crate::rollout::completion_text;
use crate::train::Trainer;

/// One step's rollouts of a random tiny model (which writes a lone capital about a quarter of the time).
fn collect(settings: &RlSettings) -> Result<Rollouts, RlError> {
    let model = tiny_model(0.5, 2);
    let problems = LowercaseTask.generate(Split::Train, 26, 0).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (tokenizer, task, collective) = (tokenizer(), LowercaseTask, SingleProcess);
    if !settings.propose.is_on() {
        return Rollouts::collect(&model, &tokenizer, &task, &problems, settings, 2, &mut rng, 4, &collective);
    }
    let step = Step {
        model: &model,
        tokenizer: &tokenizer,
        task: &task,
        problems: &problems,
        settings,
        max_new_tokens: 2,
        collective: &collective,
    };
    proposing::collect(step, &LetterProposer, &mut rng, 4)
}

fn proposing(share: f32) -> RlSettings {
    RlSettings {
        prompts_per_step: 8,
        group_size: 6,
        propose: ProposeSettings { share, max_tokens: 1, ..ProposeSettings::default() },
        ..RlSettings::default()
    }
}

/// Each proposal's reward recomputed from its problem's solver group, with and without the repetition penalty (a
/// capital letter's shape is itself: alike proposals are the same letter).
#[test]
fn proposals_earn_the_spread_of_their_problems_solver_group() {
    for penalty in [0.0, 0.5] {
        let mut settings = RlSettings { prompts_per_step: 64, ..proposing(0.5) };
        settings.propose.repetition_penalty = penalty;
        check_proposal_rewards(&settings);
    }
}

fn check_proposal_rewards(settings: &RlSettings) {
    let rollouts = collect(settings).unwrap();
    let tok = tokenizer();
    let stats = rollouts.proposals.clone().unwrap();
    let proposer_group = rollouts.prompts.len() - 1;
    assert_eq!(rollouts.prompts[proposer_group], [&[tok.bos_id().unwrap()][..], &tok.encode("?:").unwrap()].concat());
    let proposals: Vec<_> = rollouts.samples.iter().filter(|s| s.group == proposer_group).collect();
    assert_eq!((proposals.len(), stats.proposed), (32, 32));
    // The solver groups: 32 from the generator, then one per distinct certified proposal.
    assert_eq!(rollouts.drawn.groups, 32 + stats.distinct);
    assert!(stats.distinct >= 2, "the test needs certified proposals: {stats:?}");
    let texts: Vec<String> = proposals.iter().map(|s| completion_text(&tok, &s.generation.tokens).unwrap()).collect();
    let (mut rejected, mut repeated) = (0, 0);
    for (proposal, text) in proposals.iter().zip(&texts) {
        assert!(!proposal.correct, "proposals are no attempts");
        let Ok(letter) = LetterProposer.certify(text.as_bytes()) else {
            assert_eq!(proposal.score, 0.0, "{text:?}");
            rejected += 1;
            continue;
        };
        // Its problem's group: the proposed solver group whose prompt is `<letter>:`.
        let prompt = [&[tok.bos_id().unwrap()][..], &tok.encode(&format!("{letter}:")).unwrap()].concat();
        let groups: Vec<usize> = (32..proposer_group).filter(|&g| rollouts.prompts[g] == prompt).collect();
        assert_eq!(groups.len(), 1, "each distinct problem attempted once");
        let attempts: Vec<_> = rollouts.samples.iter().filter(|s| s.group == groups[0]).collect();
        assert_eq!(attempts.len(), 6);
        let p = attempts.iter().filter(|s| s.correct).count() as f32 / 6.0;
        let copies = texts.iter().filter(|t| *t == text).count() as f32;
        repeated += usize::from(copies > 1.0);
        let alike = settings.propose.repetition_penalty * (copies - 1.0) / 31.0;
        assert_eq!(proposal.score, ((1.0 - (2.0 * p - 1.0).abs()) / copies - alike).max(0.0), "{text:?}");
    }
    assert!(repeated > 0, "the test needs a problem proposed twice");
    assert_eq!(rejected, stats.malformed + stats.out_of_range + stats.held_out + stats.unsolvable);
    assert_eq!(stats.certified + rejected, 32);
    assert_eq!(stats.tokens, proposals.iter().map(|s| s.generation.tokens.len()).sum::<usize>());
    let mean = proposals.iter().map(|s| s.score).sum::<f32>() / 32.0;
    assert!((stats.reward_mean - mean).abs() < 1e-6);
}

#[test]
fn proposing_is_deterministic_and_its_share_of_the_step_configurable() {
    let once = collect(&proposing(0.5)).unwrap();
    let again = collect(&proposing(0.5)).unwrap();
    assert_eq!((&once.samples, &once.prompts, &once.proposals), (&again.samples, &again.prompts, &again.proposals));
    let all = collect(&proposing(1.0)).unwrap();
    let stats = all.proposals.unwrap();
    assert_eq!(stats.proposed, 8);
    assert_eq!(all.drawn.groups, stats.distinct, "every solver problem proposed");
    assert_eq!(ProposeSettings { share: 0.01, ..ProposeSettings::default() }.proposals(16), 1, "on means at least one");
    assert_eq!(ProposeSettings { share: 0.0, ..ProposeSettings::default() }.proposals(16), 0);
    let off = collect(&proposing(0.0)).unwrap();
    assert!(off.proposals.is_none());
}

#[test]
fn proposing_settings_are_refused_where_they_cannot_work() {
    let (mut model, problems) = (tiny_model(0.5, 2), LowercaseTask.generate(Split::Train, 26, 0).unwrap());
    let mut optimizer = ModelOptimizer::new(model.weights(), RlSettings::default().optim_config()).unwrap();
    let (tokenizer, mut trainer) = (tokenizer(), Trainer::new());
    let settings = proposing(0.5);
    let err = step(
        &mut model,
        None,
        &mut optimizer,
        &mut trainer,
        &tokenizer,
        &LowercaseTask,
        &problems,
        &settings,
        2,
        1,
        1,
        &SingleProcess,
        None,
    )
    .unwrap_err();
    assert!(matches!(err, RlError::InvalidSetting { name: "propose.share", .. }), "{err}");
    for bad in [
        RlSettings { algorithm: Algorithm::ExpertIteration, ..proposing(0.5) },
        RlSettings { dynamic_sampling: 2, ..proposing(0.5) },
        proposing(1.5),
        proposing(f32::NAN),
        RlSettings {
            propose: ProposeSettings { repetition_penalty: -1.0, ..proposing(0.5).propose },
            ..proposing(0.5)
        },
        RlSettings {
            propose: ProposeSettings { share: 0.5, max_tokens: 0, ..ProposeSettings::default() },
            ..proposing(0.5)
        },
    ] {
        assert!(bad.validate().is_err(), "{:?}", bad.propose);
    }
}
