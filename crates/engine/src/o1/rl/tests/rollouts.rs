//! Rollout collection: the overlong penalty is DAPO's ramp on top of the verifier's reward; search rollouts are
//! the search's solutions.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use selfplay_collective::SingleProcess;
use selfplay_model::Tokenizer;
use selfplay_tasks::{Split, Task};

use super::{LowercaseTask, tiny_model, tokenizer};
use crate::o1::rl::error::RlError;
use crate::o1::rl::rollouts::Rollouts;
use crate::o1::rl::{Algorithm, RlSettings};
use crate::rollout::Method;
use crate::rollout::step_search::cost::forward_flops;
use crate::rollout::step_search::{SearchSettings, solve};

fn collect(settings: &RlSettings, max_new_tokens: usize) -> Result<Rollouts, crate::o1::rl::RlError> {
    let model = tiny_model(0.5, 2);
    let problems = LowercaseTask.generate(Split::Train, 26, 0).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    Rollouts::collect(
        &model,
        &tokenizer(),
        &LowercaseTask,
        &problems,
        settings,
        max_new_tokens,
        &mut rng,
        4,
        &SingleProcess,
    )
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
    let err = collect(&too_long, 3).unwrap_err();
    assert!(matches!(err, RlError::InvalidSetting { name: "overlong_buffer", .. }));
}

/// With a search as the source, each prompt's attempt is the solution `solve` returns for its problem, and its
/// recorded log-probabilities are the policy's, recomputed here from the logits.
#[test]
fn search_rollouts_are_the_search_solutions_with_the_policys_logprobs() {
    // Not the default search, so the test sees `[rl.search]` reach the search.
    let search = SearchSettings { candidates: 2, temperature: 0.7, ..SearchSettings::default() };
    let settings = RlSettings {
        algorithm: Algorithm::ExpertIteration,
        rollouts: Method::Mcts,
        search_budget: 4,
        search: search.clone(),
        prompts_per_step: 6,
        ..RlSettings::default()
    };
    let rollouts = collect(&settings, 3).unwrap();
    assert_eq!(rollouts.samples.len(), 6, "one attempt per prompt");
    let (model, tok) = (tiny_model(0.5, 2), tokenizer());
    // The problem is the prompt's letter (after BOS).
    let problems: Vec<char> =
        rollouts.prompts.iter().map(|p| tok.decode(&p[1..]).unwrap().chars().next().unwrap()).collect();
    let solved = solve(&model, &tok, &LowercaseTask, &problems, Method::Mcts, 4, &search, 3, 4).unwrap();
    assert_eq!(rollouts.tokens(), solved.iter().map(|s| s.tokens).sum::<usize>());
    assert!(rollouts.search_flops > solved.iter().map(|s| s.flops).sum::<f64>());
    for ((sample, solution), prompt) in rollouts.samples.iter().zip(&solved).zip(&rollouts.prompts) {
        let generation = &sample.generation;
        assert_eq!(generation.tokens, solution.completion_tokens);
        assert_eq!(sample.correct, solution.correct);
        let sequence = [prompt.as_slice(), &generation.tokens].concat();
        let logits = &model.forward(&[&sequence]).unwrap()[0].logits;
        let vocab = logits.dims()[1];
        for (i, &token) in generation.tokens.iter().enumerate() {
            let row = &logits.data()[(prompt.len() - 1 + i) * vocab..][..vocab];
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let log_z = max + row.iter().map(|&l| (l - max).exp()).sum::<f32>().ln();
            assert!((generation.model_logprobs[i] - (row[token as usize] - log_z)).abs() < 1e-5);
        }
        assert_eq!(generation.logprobs, generation.model_logprobs);
        assert_eq!(generation.values.len(), generation.tokens.len());
    }
}

/// The format reward adds its weight times the credits the answer's shape earns, on top of the verifier's reward and
/// beside the overlong penalty.
#[test]
fn format_reward_adds_weighted_credits_for_the_answer_shape() {
    let settings =
        RlSettings { format_weight: 0.5, overlong_penalty: 0.5, overlong_buffer: 2, ..RlSettings::default() };
    let overlong = settings.overlong(3).unwrap();
    let score = |reward, text: &str, tokens| settings.shaped_score(reward, text, tokens, overlong.as_ref());
    // Every credit (0.5 + 0.2 + 0.2 + 0.1): 0.5 × 1.0 on top of the verifier's 1.0; at 3 tokens the whole
    // overlong penalty, 0.5 × −1, comes off.
    assert_eq!(score(1.0, "1+2=3\n<answer>1+2</answer>\n", 1), 1.5);
    assert_eq!(score(1.0, "1+2=3\n<answer>1+2</answer>\n", 3), 1.0);
    // Two answers, text after the last, an empty one: only "present" (0.5) is earned.
    assert_eq!(score(0.1, "<answer>1</answer><answer> </answer> so", 1), 0.1 + 0.5 * 0.5);
    assert_eq!(score(0.0, "no answer at all", 1), 0.0);
    let off = RlSettings::default();
    assert_eq!(off.shaped_score(0.1, "<answer>1</answer>", 1, None), 0.1);
    let bad = RlSettings { format_weight: f32::NAN, ..RlSettings::default() };
    assert!(matches!(bad.validate(), Err(RlError::InvalidSetting { name: "format_weight", .. })));
}

/// DAPO's dynamic sampling: every group kept has samples that score differently; groups are drawn until
/// `prompts_per_step` such groups are found or the draws run out; the step's accuracy, reward and cost cover
/// every group drawn; 0 keeps everything, as before.
#[test]
fn dynamic_sampling_keeps_only_groups_with_mixed_scores() {
    let plain = RlSettings { prompts_per_step: 8, group_size: 4, ..RlSettings::default() };
    let everything = collect(&plain, 3).unwrap();
    assert_eq!((everything.drawn.groups, everything.prompts.len()), (8, 8));
    let mixed = |r: &Rollouts| -> usize {
        (0..r.prompts.len())
            .filter(|&g| {
                let scores: Vec<f32> = r.samples.iter().filter(|s| s.group == g).map(|s| s.score).collect();
                scores.iter().any(|&x| x != scores[0])
            })
            .count()
    };
    let informative = mixed(&everything);
    assert!(informative > 0 && informative < 8, "the fixture needs both kinds of group: {informative} mixed");

    let one_draw = collect(&RlSettings { dynamic_sampling: 1, ..plain.clone() }, 3).unwrap();
    assert_eq!(one_draw.prompts.len(), informative, "one draw: the same groups, the all-equal ones dropped");
    assert_eq!(mixed(&one_draw), one_draw.prompts.len());
    assert_eq!(one_draw.drawn, everything.drawn, "the curve's accuracy is over every group drawn");
    assert_eq!(one_draw.generated_tokens, everything.generated_tokens);
    let kept: Vec<_> =
        everything.samples.iter().filter(|s| one_draw.prompts.contains(&everything.prompts[s.group])).collect();
    assert_eq!(kept.len(), one_draw.samples.len());
    for (a, b) in kept.iter().zip(&one_draw.samples) {
        assert_eq!((&a.generation, a.score), (&b.generation, b.score));
    }

    let refilled = collect(&RlSettings { dynamic_sampling: 6, ..plain.clone() }, 3).unwrap();
    assert!(refilled.prompts.len() > informative && refilled.prompts.len() <= 8, "{} groups", refilled.prompts.len());
    assert_eq!(mixed(&refilled), refilled.prompts.len());
    assert!(refilled.drawn.groups > 8 && refilled.drawn.groups.is_multiple_of(8) && refilled.drawn.groups <= 48);
    assert!(refilled.generated_tokens > everything.generated_tokens, "the dropped groups' tokens are paid for");
    assert!(refilled.samples.iter().all(|s| s.group < refilled.prompts.len()));

    let ppo = RlSettings { algorithm: Algorithm::Ppo, dynamic_sampling: 2, ..plain };
    assert!(matches!(ppo.validate().unwrap_err(), RlError::InvalidSetting { name: "dynamic_sampling", .. }));
}

/// With `prompt_pool`, the step keeps the candidates whose value-head estimate p has the largest p(1 − p), in the
/// order drawn; the estimates are recomputed here one prompt at a time (an independent batch composition).
#[test]
fn prompt_pool_keeps_the_candidates_at_the_edge_of_competence() {
    use rand_core::Rng;
    let plain = RlSettings { prompts_per_step: 4, group_size: 2, ..RlSettings::default() };
    let pooled = RlSettings { prompt_pool: 4, ..plain.clone() };
    let (model, tok) = (tiny_model(0.5, 2), tokenizer());
    let problems = LowercaseTask.generate(Split::Train, 26, 0).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let candidates: Vec<Vec<u32>> = (0..16)
        .map(|_| {
            let problem = &problems[(rng.next_u64() % 26) as usize];
            crate::rollout::encode_prompt(&tok, &LowercaseTask.prompt(problem)).unwrap()
        })
        .collect();
    let spread: Vec<f32> = candidates
        .iter()
        .map(|prompt| {
            let p = model.forward(&[prompt.as_slice()]).unwrap()[0].values.last().copied().unwrap().clamp(0.0, 1.0);
            p * (1.0 - p)
        })
        .collect();
    let mut best: Vec<usize> = (0..16).collect();
    best.sort_by(|&a, &b| spread[b].total_cmp(&spread[a]));
    best.truncate(4);
    best.sort_unstable();
    let expected: Vec<Vec<u32>> = best.iter().map(|&i| candidates[i].clone()).collect();
    assert_ne!(expected, candidates[..4], "the estimates differ enough to change the pick");
    let rollouts = collect(&pooled, 3).unwrap();
    assert_eq!(rollouts.prompts, expected);
    let read: f64 = candidates.iter().map(|p| forward_flops(model.config(), p.len())).sum();
    assert_eq!(rollouts.selection_flops, read, "reading every candidate is charged");
    let rollouts = collect(&plain, 3).unwrap();
    assert_eq!(rollouts.prompts, candidates[..4], "no pool: the first draws");
    assert_eq!(rollouts.selection_flops, 0.0);
    let untrained = RlSettings { value_coef: 0.0, ..pooled };
    assert!(matches!(untrained.validate(), Err(RlError::InvalidSetting { name: "prompt_pool", .. })));
}
