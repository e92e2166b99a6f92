//! Step-level search with a real (tiny, randomly initialised) transformer on a hand-made task whose answers a
//! test can check by itself: the completion's last line must equal the prompt's line (and a complete line holding
//! a special token is an invalid step, for the step checker). The vocabulary is just
//! `a`, `b`, newline and the specials, so a random policy writes such lines now and then and a search that uses
//! the verifier should find them where a single greedy completion does not.

use selfplay_engine::rollout::Method;
use selfplay_engine::rollout::step_search::cost::Spent;
use selfplay_engine::rollout::step_search::policy::KV_BLOCK_TOKENS;
use selfplay_engine::rollout::step_search::{
    SearchSettings, Solved, Step, StepSearchError, TransformerPolicy, proposal_seed, search_sweep, search_test_time,
    search_test_time_methods, solve, solve_with,
};
use selfplay_model::io_error::{IoError, IoResult};
use selfplay_model::safetensors_io::weights_from_tensors;
use selfplay_model::{
    Architecture, FinishReason, GenerationConfig, Model, ModelConfig, SamplingParams, SpecialIds, Tokenizer,
    init_weights,
};
use selfplay_reward::{Reward, StepAggregation, Verdict, aggregate_steps};
use selfplay_search::language::{Candidate, StepModel};
use selfplay_tasks::{Split, StepProgress, Task, TasksError};
use selfplay_tensor::Tensor;

const TOKENS: [&str; 6] = ["<pad>", "<bos>", "<eos>", "\n", "a", "b"];
const NEWLINE: u32 = 3;
const MAX_NEW_TOKENS: usize = 12;
const SEED: u64 = 7;

/// Characters `\n`, `a`, `b` and three specials.
#[derive(Debug)]
struct TinyTokenizer;

impl Tokenizer for TinyTokenizer {
    fn encode(&self, text: &str) -> IoResult<Vec<u32>> {
        text.chars()
            .map(|c| match c {
                '\n' => Ok(3),
                'a' => Ok(4),
                'b' => Ok(5),
                other => Err(IoError::Tokenizer(format!("no token for {other:?}"))),
            })
            .collect()
    }

    fn decode(&self, ids: &[u32]) -> IoResult<String> {
        ids.iter()
            .map(|&id| TOKENS.get(id as usize).copied().ok_or_else(|| IoError::Tokenizer(format!("no id {id}"))))
            .collect()
    }

    fn vocab_size(&self) -> usize {
        TOKENS.len()
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        TOKENS.get(id as usize).map(|t| t.to_string())
    }

    fn special_ids(&self) -> SpecialIds {
        SpecialIds { pad: Some(0), bos: Some(1), eos: Some(2) }
    }

    fn to_hf_json(&self) -> IoResult<String> {
        Err(IoError::Tokenizer("the test tokenizer is never saved".into()))
    }
}

/// The test's own judgement: the completion's last line equals the target.
fn solves(target: &str, completion: &str) -> bool {
    completion.rsplit('\n').next() == Some(target)
}

/// A problem is a line of `a`s and `b`s; a completion solves it when its last line repeats it.
#[derive(Debug)]
struct LastLine;

impl Task for LastLine {
    type Problem = String;

    fn name(&self) -> &'static str {
        "last_line"
    }

    fn prompt(&self, problem: &String) -> String {
        format!("{problem}\n")
    }

    fn reward(&self, problem: &String, completion: &[u8]) -> Reward {
        let ok = std::str::from_utf8(completion).is_ok_and(|c| solves(problem, c));
        Reward { value: if ok { 1.0 } else { 0.0 }, verdict: if ok { Verdict::Correct } else { Verdict::WrongValue } }
    }

    /// The last line is the answer.
    fn answer_key(&self, _problem: &String, completion: &[u8]) -> Option<String> {
        std::str::from_utf8(completion).ok().and_then(|c| c.rsplit('\n').next()).map(String::from)
    }

    fn solution_trace(&self, problem: &String) -> Option<String> {
        Some(problem.clone())
    }

    /// A complete line holding a special token (`<pad>`, `<bos>`) is an invalid step.
    fn check_steps(&self, _problem: &String, partial: &[u8]) -> Option<StepProgress> {
        let text = String::from_utf8_lossy(partial);
        let mut lines: Vec<&str> = text.split('\n').collect();
        lines.pop(); // the unfinished last line
        let valid_steps = lines.iter().take_while(|l| !l.contains('<')).count();
        Some(StepProgress { valid_steps, has_invalid_step: valid_steps < lines.len() })
    }

    fn generate(&self, _split: Split, _n: usize, _seed: u64) -> Result<Vec<String>, TasksError> {
        Ok(Vec::new())
    }
}

fn tiny_model() -> Model {
    tiny_model_seeded(11)
}

/// The test's model shape with weights drawn from `seed`.
fn tiny_model_seeded(seed: u64) -> Model {
    let config = ModelConfig {
        architecture: Architecture::Llama,
        vocab_size: TOKENS.len(),
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        head_dim: 8,
        rms_norm_eps: 1e-6,
        rope_theta: 10000.0,
        max_position_embeddings: 32,
        tie_word_embeddings: true,
        attention_bias: false,
        o_proj_bias: false,
        bos_token_id: Some(1),
        eos_token_id: Some(2),
    };
    let weights = init_weights(&config, 0.3, seed).expect("weights");
    Model::new(config, weights).expect("model")
}

fn problems() -> Vec<String> {
    ["a", "b", "ab", "ba", "aa", "bb", "abb", "bab"].into_iter().map(String::from).collect()
}

fn run(model: &Model, problems: &[String], method: Method, budget: u32, settings: &SearchSettings) -> Vec<Solved> {
    solve(model, &TinyTokenizer, &LastLine, problems, method, budget, settings, MAX_NEW_TOKENS, SEED).expect("solve")
}

/// The policy's proposals are exactly the model's generations for the documented seeds (stopping at the newline):
/// without KV reuse, `Model::generate`'s rows; with it, `Model::generate_in`'s rows in a prefix cache that saw the
/// same calls. A search is charged exactly what those calls computed: each prefix's uncached part once, then each
/// row's decode.
#[test]
fn proposals_are_the_models_generations() {
    let model = tiny_model();
    let problems = problems();
    for kv_cache_tokens in [0, SearchSettings::default().kv_cache_tokens] {
        let settings = SearchSettings { max_step_tokens: 5, kv_cache_tokens, ..SearchSettings::default() };
        let mut policy =
            TransformerPolicy::new(&model, &TinyTokenizer, &LastLine, &problems, &settings, MAX_NEW_TOKENS, SEED)
                .unwrap();
        let mut mirror = model.new_prefix_cache((kv_cache_tokens / KV_BLOCK_TOKENS).max(8), KV_BLOCK_TOKENS).unwrap();
        let k = 4;
        let mut prefix = policy.root(2);
        let mut expected = Spent::default();
        policy.begin_search();
        // Expand the root, then its first non-terminal child: the second prefix includes a generated step.
        for depth in 0..2 {
            let flat: Vec<u32> = prefix.iter().flat_map(|s| s.tokens.iter().copied()).collect();
            let done = flat.len() - prefix[0].tokens.len();
            let mut out: Vec<Vec<Candidate<_>>> = vec![Vec::new()];
            (&mut policy).propose(&[&prefix], k, &mut out).unwrap();
            let limit = 5.min(MAX_NEW_TOKENS - done);
            let config = GenerationConfig {
                max_new_tokens: limit,
                sampling: SamplingParams { temperature: 1.0, ..SamplingParams::default() },
                stop_tokens: vec![NEWLINE],
            };
            let seeds: Vec<u64> = (0..k).map(|j| proposal_seed(SEED, &flat, j)).collect();
            let prompts = vec![flat.as_slice(); k];
            let (rows, cached) = if kv_cache_tokens == 0 {
                (model.generate(&prompts, &config, &seeds).unwrap(), vec![0; k])
            } else {
                model.generate_in(&mut mirror, &prompts, &config, &seeds).unwrap()
            };
            assert_eq!(out[0].len(), k, "depth {depth}");
            for (c, g) in out[0].iter().zip(&rows) {
                assert_eq!(c.step.tokens, g.tokens);
                assert_eq!(c.step.value.to_bits(), g.values.last().unwrap().to_bits());
                assert_eq!(c.weight, 1.0);
                let ends_line = g.finish == FinishReason::Stop(NEWLINE);
                assert_eq!(c.terminal, !ends_line || done + g.tokens.len() >= MAX_NEW_TOKENS);
            }
            let new_tokens: Vec<usize> = rows.iter().map(|g| g.tokens.len()).collect();
            expected.add(Spent::expansion(model.config(), flat.len(), cached[0], &new_tokens));
            let spent = policy.spent(2);
            assert_eq!(
                (spent.tokens, spent.forward_tokens, spent.recompute_tokens),
                (expected.tokens, expected.forward_tokens, expected.recompute_tokens)
            );
            assert!((spent.flops - expected.flops).abs() <= 1e-9 * expected.flops);
            let Some(next) = out[0].iter().find(|c| !c.terminal) else { break };
            prefix.push(next.step.clone());
        }
        // The root's value is the head on the whole prompt; a deeper prefix's is the one its last step recorded.
        let root = policy.root(2);
        let mut values = [0.0f32; 2];
        (&mut policy).value(&[&root, &prefix], &mut values).unwrap();
        let head = model.forward(&[&root[0].tokens]).unwrap()[0].values.last().copied().unwrap();
        assert!((values[0] - head).abs() < 1e-5, "{} vs {head}", values[0]);
        assert_eq!(values[1].to_bits(), prefix.last().unwrap().value.to_bits());
    }
}

/// KV reuse changes what a search computes, not what it finds: on problems long enough to fill cache blocks, every
/// method returns the same solutions with reuse on and off and is charged the same tokens and the same
/// recomputing baseline, while running far fewer positions through the model.
#[test]
fn kv_reuse_saves_positions_and_changes_no_result() {
    let model = tiny_model();
    let problems: Vec<String> =
        ["abbaabab", "babbabaa", "aabbbaba", "bbabaaab"].into_iter().map(String::from).collect();
    let reuse = SearchSettings::default();
    let recompute = SearchSettings { kv_cache_tokens: 0, ..SearchSettings::default() };
    for method in Method::SEARCHES {
        let with = run(&model, &problems, method, 16, &reuse);
        let without = run(&model, &problems, method, 16, &recompute);
        for (a, b) in with.iter().zip(&without) {
            assert_eq!((&a.completion, a.correct, a.tokens), (&b.completion, b.correct, b.tokens), "{method:?}");
            assert_eq!(a.recompute_tokens, b.recompute_tokens, "{method:?}");
            assert!(a.forward_tokens <= b.forward_tokens && a.flops <= b.flops, "{method:?}: {a:?} vs {b:?}");
        }
        // A cache of a few blocks splits generation calls into small chunks and evicts constantly: still the same
        // results.
        let cramped = run(&model, &problems, method, 16, &SearchSettings { kv_cache_tokens: 64, ..reuse.clone() });
        for (a, b) in cramped.iter().zip(&without) {
            assert_eq!((&a.completion, a.tokens, a.recompute_tokens), (&b.completion, b.tokens, b.recompute_tokens));
        }
        // Without the verifier the picks are completed greedily: one call with prompts and limits of every length.
        let blind = |kv_cache_tokens| SearchSettings { kv_cache_tokens, use_verifier: false, ..reuse.clone() };
        let (a, b) = (run(&model, &problems, method, 16, &blind(64)), run(&model, &problems, method, 16, &blind(0)));
        assert_eq!(
            a.iter().map(|s| (&s.completion, s.tokens)).collect::<Vec<_>>(),
            b.iter().map(|s| (&s.completion, s.tokens)).collect::<Vec<_>>()
        );
        let total = |solved: &[Solved], f: fn(&Solved) -> usize| solved.iter().map(f).sum::<usize>();
        let (forward, without_reuse) = (total(&with, |s| s.forward_tokens), total(&with, |s| s.recompute_tokens));
        assert!(forward < total(&without, |s| s.forward_tokens), "{method:?}: reuse must save something");
        assert!(forward * 2 < without_reuse, "{method:?}: {forward} of {without_reuse} positions");
    }
}

/// Same inputs, same results; and a problem's result does not depend on the problems searched beside it.
#[test]
fn results_repeat_and_do_not_depend_on_the_batch() {
    let model = tiny_model();
    let problems = problems();
    let settings = SearchSettings::default();
    for method in Method::SEARCHES {
        let together = run(&model, &problems, method, 8, &settings);
        assert_eq!(together, run(&model, &problems, method, 8, &settings), "{method:?}");
        for (i, problem) in problems.iter().enumerate().step_by(3) {
            let alone = run(&model, std::slice::from_ref(problem), method, 8, &settings);
            assert_eq!(alone[0], together[i], "{method:?} problem {i}");
        }
        // A repeated problem is the same problem: same solution, each charged in full.
        let twice = run(&model, &[problems[1].clone(), problems[1].clone()], method, 8, &settings);
        assert_eq!((&twice[0], &twice[1]), (&together[1], &together[1]), "{method:?}");
    }
}

/// With the verifier, every method at budget 64 solves at least half the problems, where the search's unverified
/// recommendation at budget 1 solves at most one; whatever a search returns as correct really is (checked by the
/// test's own rule, not the task's).
#[test]
fn search_with_the_verifier_finds_solutions() {
    let model = tiny_model();
    let problems = problems();
    let blind = SearchSettings { use_verifier: false, ..SearchSettings::default() };
    // The step checker stays off (the default): the random value head is not confined to [0, 1], so the
    // checker's 0 would not rank rejected prefixes last (its own test is below).
    let verified = SearchSettings { check_steps: false, ..SearchSettings::default() };
    let baseline = run(&model, &problems, Method::Mcts, 1, &blind);
    let baseline_hits = baseline.iter().filter(|s| s.correct).count();
    assert!(baseline_hits <= 1, "{baseline_hits}");
    for method in Method::SEARCHES {
        let solved = run(&model, &problems, method, 64, &verified);
        // Without the verifier each method returns its own recommendation (for Gumbel, below the Sequential
        // Halving winner), completed greedily.
        let unverified = run(&model, &problems, method, 8, &blind);
        let returned = solved.iter().chain(&baseline).chain(&unverified);
        for (s, target) in returned.zip(problems.iter().cycle()) {
            assert_eq!(s.correct, solves(target, &s.completion), "{method:?}: {target:?} -> {:?}", s.completion);
        }
        let hits = solved.iter().filter(|s| s.correct).count();
        assert!(hits >= 4 && hits >= baseline_hits + 3, "{method:?}: {hits} of {} vs {baseline_hits}", problems.len());
    }
}

/// Root widening gives the root more first steps than K (one per `root_widening` simulations): the trees spend
/// more on proposals, what they return is still judged right, and at a budget below `K × root_widening` nothing
/// changes at all.
#[test]
fn a_widening_root_samples_more_first_steps() {
    let model = tiny_model();
    let problems = problems();
    let narrow = SearchSettings { root_widening: 0, ..SearchSettings::default() };
    let wide = SearchSettings { root_widening: 1, ..SearchSettings::default() };
    for method in [Method::Mcts, Method::Gumbel] {
        let (with, without) = (run(&model, &problems, method, 16, &wide), run(&model, &problems, method, 16, &narrow));
        let spent = |solved: &[Solved]| solved.iter().map(|s| s.tokens).sum::<usize>();
        assert!(spent(&with) > spent(&without), "{method:?}");
        for (s, target) in with.iter().zip(&problems) {
            assert_eq!(s.correct, solves(target, &s.completion), "{method:?}");
        }
        assert_eq!(run(&model, &problems, method, 4, &wide), run(&model, &problems, method, 4, &narrow));
        // The default (4 simulations per root candidate) widens from 32 simulations.
        let default = SearchSettings::default();
        assert_eq!(run(&model, &problems, method, 16, &default), without, "{method:?}");
    }
}

/// A bigger budget never spends fewer tokens or FLOPs, and each point summarises `solve` at its budget, whether
/// methods are run alone or together (sharing expansions changes no result).
#[test]
fn budgets_cost_more_and_points_summarise_solve() {
    let model = tiny_model();
    let problems = problems();
    let settings = SearchSettings::default();
    let budgets = [1, 2, 4, 8, 16];
    let together = search_test_time_methods(
        &model,
        &TinyTokenizer,
        &LastLine,
        &problems,
        &Method::SEARCHES,
        &budgets,
        &settings,
        MAX_NEW_TOKENS,
        SEED,
    )
    .unwrap();
    assert_eq!(together.len(), 3 * budgets.len());
    for (m, method) in Method::SEARCHES.into_iter().enumerate() {
        let alone = search_test_time(
            &model,
            &TinyTokenizer,
            &LastLine,
            &problems,
            method,
            &budgets,
            &settings,
            MAX_NEW_TOKENS,
            SEED,
        )
        .unwrap();
        assert_eq!(alone, together[m * budgets.len()..(m + 1) * budgets.len()]);
        for pair in alone.windows(2) {
            assert!(pair[1].tokens >= pair[0].tokens && pair[1].flops >= pair[0].flops, "{method:?}: {pair:?}");
        }
        let point = &alone[2];
        let solved = run(&model, &problems, method, point.budget, &settings);
        let n = problems.len() as f64;
        assert_eq!(point.method, method.name());
        assert_eq!(point.accuracy, solved.iter().filter(|s| s.correct).count() as f64 / n);
        assert_eq!(point.tokens, solved.iter().map(|s| s.tokens as f64).sum::<f64>() / n);
    }

    // Problem by problem (what the compute-optimal allocation reads): the same points, with outcomes that add up
    // to them, and at budget 4 the very solutions `solve` returns.
    let sweep = search_sweep(
        &model,
        &TinyTokenizer,
        &LastLine,
        &problems,
        &Method::SEARCHES,
        &budgets,
        &settings,
        MAX_NEW_TOKENS,
        SEED,
    )
    .unwrap();
    assert_eq!(sweep.iter().map(|(point, _)| point.clone()).collect::<Vec<_>>(), together);
    let n = problems.len() as f64;
    for (point, outcomes) in &sweep {
        assert_eq!((outcomes.method.as_str(), outcomes.budget), (point.method.as_str(), point.budget));
        assert!(outcomes.uses_verifier, "the default settings score finished solutions by the verifier");
        assert_eq!(point.accuracy, outcomes.correct.iter().filter(|&&c| c).count() as f64 / n);
        let flops = outcomes.flops.iter().sum::<f64>() / n;
        assert!((flops - point.flops).abs() <= 1e-9 * point.flops, "{}: {flops} vs {}", point.method, point.flops);
        if point.budget == 4 {
            let method: Method = point.method.parse().unwrap();
            let solved = run(&model, &problems, method, 4, &settings);
            assert_eq!(outcomes.correct, solved.iter().map(|s| s.correct).collect::<Vec<_>>(), "{}", point.method);
        }
    }
}

fn error_of<T: std::fmt::Debug>(result: Result<T, StepSearchError>) -> StepSearchError {
    result.expect_err("bad input must be refused")
}

#[test]
fn bad_input_is_a_typed_error() {
    let model = tiny_model();
    let problems = problems();
    let ok = SearchSettings::default();
    let (tok, task) = (&TinyTokenizer, &LastLine);
    let solve_with = |problems: &[String], budget: u32, settings: &SearchSettings, max_new: usize| {
        solve(&model, tok, task, problems, Method::Mcts, budget, settings, max_new, SEED)
    };
    assert!(matches!(error_of(solve_with(&problems, 0, &ok, 8)), StepSearchError::InvalidInput(_)));
    assert!(matches!(error_of(solve_with(&[], 4, &ok, 8)), StepSearchError::InvalidInput(_)));
    assert!(matches!(error_of(solve_with(&problems, 4, &ok, 0)), StepSearchError::InvalidInput(_)));
    for bad in [
        SearchSettings { candidates: 0, ..ok.clone() },
        SearchSettings { max_step_tokens: 0, ..ok.clone() },
        SearchSettings { temperature: f32::NAN, ..ok.clone() },
        SearchSettings { temperature: -1.0, ..ok.clone() },
    ] {
        assert!(matches!(error_of(solve_with(&problems, 4, &bad, 8)), StepSearchError::InvalidInput(_)), "{bad:?}");
    }
    let curve = |budgets: &[u32]| search_test_time(&model, tok, task, &problems, Method::Beam, budgets, &ok, 8, SEED);
    assert!(matches!(error_of(curve(&[])), StepSearchError::InvalidInput(_)));
    assert!(matches!(error_of(curve(&[1, 0])), StepSearchError::InvalidInput(_)));
    // A prompt the tokenizer cannot encode, and prefixes the policy was not built for.
    let unknown = vec!["c".to_string()];
    assert!(matches!(error_of(solve_with(&unknown, 4, &ok, 8)), StepSearchError::Tokenizer(_)));
    let mut policy = TransformerPolicy::new(&model, tok, task, &problems, &ok, 8, SEED).unwrap();
    let stranger = vec![Step::scored(vec![1, 4, 4, 4, 3], 0.0)];
    let mut out = vec![Vec::new()];
    assert!(matches!((&mut policy).propose(&[&stranger], 2, &mut out), Err(StepSearchError::UnknownPrompt)));
    let empty: &[Step] = &[];
    assert!(matches!((&mut policy).propose(&[empty], 2, &mut out), Err(StepSearchError::UnknownPrompt)));
    // Settings files name every field or fail.
    assert!(serde_json::from_str::<SearchSettings>(r#"{"candidate": 3}"#).is_err());
    let parsed: SearchSettings = serde_json::from_str(r#"{"candidates": 3}"#).unwrap();
    assert_eq!(parsed, SearchSettings { candidates: 3, ..SearchSettings::default() });
}

/// With a completion limit beyond the context (32 positions), steps that fill the context end their solution:
/// no search asks the model to continue a full context, and no returned completion overflows it.
#[test]
fn the_context_length_bounds_every_search() {
    let model = tiny_model();
    let problems = problems();
    let settings = SearchSettings { max_step_tokens: 40, ..SearchSettings::default() };
    for method in Method::SEARCHES {
        let solved = solve(&model, &TinyTokenizer, &LastLine, &problems, method, 16, &settings, 500, SEED).unwrap();
        for (s, p) in solved.iter().zip(&problems) {
            let ids = TinyTokenizer.encode(&s.completion.replace("<pad>", "a").replace("<bos>", "a")).unwrap();
            assert!(1 + p.len() + 1 + ids.len() <= 32, "{method:?}: {:?}", s.completion);
        }
    }
}

/// With `check_steps`, a prefix the task's step checker rejects is worth 0; otherwise (and without the option)
/// it is worth the value its last step recorded.
#[test]
fn the_step_checker_zeroes_rejected_prefixes() {
    let model = tiny_model();
    let problems = problems();
    let step = |tokens: Vec<u32>| Step::scored(tokens, 0.7);
    for check_steps in [true, false] {
        let settings = SearchSettings { check_steps, ..SearchSettings::default() };
        let mut policy =
            TransformerPolicy::new(&model, &TinyTokenizer, &LastLine, &problems, &settings, 8, SEED).unwrap();
        let root = policy.root(0);
        let valid = [root.clone(), vec![step(vec![4, 5, NEWLINE])]].concat();
        let rejected = [root.clone(), vec![step(vec![4, 0, NEWLINE])]].concat();
        let unfinished = [root, vec![step(vec![4, 0])]].concat();
        let mut values = [0.0f32; 3];
        (&mut policy).value(&[&valid, &rejected, &unfinished], &mut values).unwrap();
        let expected = if check_steps { [0.7, 0.0, 0.7] } else { [0.7; 3] };
        assert_eq!(values, expected, "check_steps {check_steps}");
    }
}

/// A value model judging the search scores every proposed step by a forward pass over the step's whole prefix, read
/// at its last token: checked against the judge's own uncached forward pass, with and without KV reuse, under `last`
/// and `min` aggregation (the value the search reads is the path's scores aggregated). The proposals are the
/// policy's, unchanged; each expansion is charged the judge's positions besides the policy's, all of every distinct
/// sequence without reuse, fewer with it.
#[test]
fn a_value_model_judges_every_proposed_step() {
    let (model, judge) = (tiny_model(), tiny_model_seeded(23));
    let problems = problems();
    let expand = |kv_cache_tokens: usize, aggregation: StepAggregation, judged: bool| {
        let settings = SearchSettings {
            max_step_tokens: 5,
            kv_cache_tokens,
            step_aggregation: aggregation,
            ..SearchSettings::default()
        };
        let plain =
            TransformerPolicy::new(&model, &TinyTokenizer, &LastLine, &problems, &settings, MAX_NEW_TOKENS, SEED);
        let mut policy = plain.unwrap().judged_by(judged.then_some(&judge)).unwrap();
        let (k, mut prefix) = (4, policy.root(3));
        let mut charged = Vec::new();
        let mut proposals = Vec::new();
        for _depth in 0..3 {
            policy.begin_search();
            let mut out: Vec<Vec<Candidate<Step>>> = vec![Vec::new()];
            (&mut policy).propose(&[&prefix], k, &mut out).unwrap();
            let flat: Vec<u32> = prefix.iter().flat_map(|s| s.tokens.iter().copied()).collect();
            let mut distinct: Vec<Vec<u32>> = Vec::new();
            for c in &out[0] {
                proposals.push(c.step.tokens.clone());
                let sequence = [flat.as_slice(), &c.step.tokens].concat();
                let path: Vec<f32> = prefix.iter().skip(1).map(|s| s.score).chain([c.step.score]).collect();
                assert_eq!(c.step.value, aggregate_steps(&path, aggregation).unwrap());
                if !judged {
                    continue;
                }
                let reference = judge.forward(&[&sequence]).unwrap()[0].values.last().copied().unwrap();
                assert!((c.step.score - reference).abs() < 1e-5, "{} vs {reference}", c.step.score);
                if !distinct.contains(&sequence) {
                    distinct.push(sequence);
                }
            }
            let root_len = if prefix.len() == 1 { flat.len() } else { 0 };
            charged.push((policy.spent(3), distinct.iter().map(Vec::len).sum::<usize>() + root_len));
            let Some(next) = out[0].iter().find(|c| !c.terminal) else { break };
            prefix.push(next.step.clone());
        }
        if judged {
            // The root's value is the judge's on the prompt.
            let root = policy.root(3);
            let mut value = [0.0f32];
            (&mut policy).value(&[&root], &mut value).unwrap();
            let reference = judge.forward(&[&root[0].tokens]).unwrap()[0].values.last().copied().unwrap();
            assert!((value[0] - reference).abs() < 1e-5, "{} vs {reference}", value[0]);
        }
        (proposals, charged)
    };
    for aggregation in [StepAggregation::Last, StepAggregation::Min] {
        let (alone, policy_only) = expand(0, aggregation, false);
        let (judged, without_reuse) = expand(0, aggregation, true);
        let (cached, with_reuse) = expand(SearchSettings::default().kv_cache_tokens, aggregation, true);
        assert_eq!((&alone, &judged), (&judged, &cached), "the judge changes no proposal");
        assert!(without_reuse.len() >= 2, "the test expands at least two levels");
        for ((bare, _), ((recomputed, judge_positions), (reused, _))) in
            policy_only.iter().zip(without_reuse.iter().zip(&with_reuse))
        {
            assert_eq!(recomputed.tokens, bare.tokens);
            assert_eq!(recomputed.forward_tokens, bare.forward_tokens + judge_positions);
            assert_eq!(recomputed.recompute_tokens, bare.recompute_tokens + judge_positions);
            assert!(recomputed.flops > bare.flops);
            assert_eq!(reused.recompute_tokens, recomputed.recompute_tokens);
            assert!(reused.forward_tokens <= recomputed.forward_tokens);
        }
        let deepest = (with_reuse.last().unwrap().0, without_reuse.last().unwrap().0);
        assert!(deepest.0.forward_tokens < deepest.1.forward_tokens, "reuse saves positions: {deepest:?}");
    }
}

/// A judged search is as reproducible as a plain one: the same results twice, and problem by problem whatever
/// shares its batch (here voting over its finished solutions). Without the verifier, where the judge steers and
/// votes, it picks differently from the policy's head.
#[test]
fn judged_searches_repeat_and_do_not_depend_on_the_batch() {
    let (model, judge) = (tiny_model(), tiny_model_seeded(23));
    let problems = problems();
    let settings = SearchSettings {
        use_verifier: false,
        step_aggregation: StepAggregation::Min,
        vote: true,
        ..SearchSettings::default()
    };
    let judged = |problems: &[String], method| {
        let policy =
            TransformerPolicy::new(&model, &TinyTokenizer, &LastLine, problems, &settings, MAX_NEW_TOKENS, SEED);
        let solved = solve_with(&mut policy.unwrap().judged_by(Some(&judge)).unwrap(), method, 8).unwrap();
        solved.into_iter().map(|s| (s.completion, s.tokens)).collect::<Vec<_>>()
    };
    let mut differs = false;
    for method in Method::SEARCHES {
        let together = judged(&problems, method);
        assert_eq!(together, judged(&problems, method), "{method:?}");
        for (i, p) in problems.iter().enumerate() {
            assert_eq!(judged(std::slice::from_ref(p), method)[0].0, together[i].0, "{method:?} problem {i}");
        }
        let head = run(&model, &problems, method, 8, &settings);
        differs |= head.iter().zip(&together).any(|(h, (text, _))| &h.completion != text);
    }
    assert!(differs, "a judge that scores differently should change some search's picks");
}

/// A judge the policy's tokens cannot run through, or with no value head, is refused with a typed error.
#[test]
fn an_unusable_judge_is_a_typed_error() {
    let model = tiny_model();
    let problems = problems();
    let settings = SearchSettings::default();
    let judged_by = |judge: &Model| {
        TransformerPolicy::new(&model, &TinyTokenizer, &LastLine, &problems, &settings, MAX_NEW_TOKENS, SEED)
            .unwrap()
            .judged_by(Some(judge))
            .map(|_| ())
    };
    let reshaped = |change: &dyn Fn(&mut ModelConfig)| {
        let mut config = model.config().clone();
        change(&mut config);
        let weights = init_weights(&config, 0.3, 5).unwrap();
        Model::new(config, weights).unwrap()
    };
    let wider = reshaped(&|c| c.vocab_size = 9);
    assert!(matches!(judged_by(&wider), Err(StepSearchError::JudgeVocabulary { policy: 6, judge: 9 })));
    let shorter = reshaped(&|c| c.max_position_embeddings = 16);
    assert!(matches!(judged_by(&shorter), Err(StepSearchError::JudgeContext { policy: 32, judge: 16 })));
    // The weights as a checkpoint without `value_head.*` (any Hugging Face model) loads them.
    let tensors = model
        .weights()
        .iter()
        .filter(|(entry, _)| !entry.name.to_string().starts_with("value_head."))
        .map(|(entry, data)| (entry.name.to_string(), Tensor::from_vec(entry.dims().to_vec(), data.to_vec()).unwrap()))
        .collect();
    let weights = weights_from_tensors(model.config(), tensors).unwrap();
    let headless = Model::new(model.config().clone(), weights).unwrap();
    assert!(matches!(judged_by(&headless), Err(StepSearchError::JudgeWithoutValueHead)));
}

/// The vote over finished solutions applies without the verifier only: with it, results are the same either way.
/// Without it, a voting search that finished some solution returns one of them as it is (no greedy completion, so
/// never more tokens than the recommendation's), and the same seed gives the same picks.
#[test]
fn voting_picks_a_finished_solution_without_the_verifier() {
    let model = tiny_model();
    let problems = problems();
    let with = |use_verifier, vote| SearchSettings { use_verifier, vote, ..SearchSettings::default() };
    for method in Method::SEARCHES {
        let texts = |s: &[Solved]| s.iter().map(|s| (s.completion.clone(), s.tokens)).collect::<Vec<_>>();
        let verified = run(&model, &problems, method, 8, &with(true, true));
        assert_eq!(texts(&verified), texts(&run(&model, &problems, method, 8, &with(true, false))), "{method:?}");
        let voted = run(&model, &problems, method, 8, &with(false, true));
        let recommended = run(&model, &problems, method, 8, &with(false, false));
        assert_eq!(texts(&voted), texts(&run(&model, &problems, method, 8, &with(false, true))), "{method:?}");
        for (v, r) in voted.iter().zip(&recommended) {
            assert!(v.tokens <= r.tokens, "{method:?}: {} > {}", v.tokens, r.tokens);
        }
    }
}
