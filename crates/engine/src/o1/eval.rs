//! Held-out evaluation: greedy accuracy, and test-time scaling curves (accuracy against budget and
//! against FLOPs per problem) for the sampling-based methods; [`evaluate`] runs any one method, the step
//! searches included, at one budget.
//!
//! Every sampling method at budget `b` uses the first `b` of the same `max_budget` samples per problem, so
//! the curves differ only by how methods choose, never by sampling noise between budgets.

use selfplay_model::HostAccess;
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{GenerationConfig, IoError, Model, ModelError, SamplingParams};
use selfplay_reward::{StepAggregation, aggregate_steps, best_score, majority_vote, weighted_vote};
use selfplay_tasks::Task;

use super::value_model::{ValueModelError, newline_token, policy_step_values, step_scores};
use crate::flops::forward_flops_per_token;
use crate::rollout::step_search::{SearchSettings, StepSearchError, TransformerPolicy, sweep_with};
use crate::rollout::{Method, Outcomes, TestTimePoint, completion_text, encode_prompt, sample};

/// What an evaluation can fail on.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A budget of zero.
    #[error("the budget must be at least 1")]
    ZeroBudget,
    /// A prompt or completion could not be encoded or decoded.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] IoError),
    /// The policy failed.
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// A step search failed.
    #[error("step search: {0}")]
    Search(#[from] StepSearchError),
    /// The value model failed to score.
    #[error("value model: {0}")]
    ValueModel(#[from] ValueModelError),
    /// The method ranks by a value head and the model that would judge was loaded without one (its weights lack
    /// `value_head.weight` and `value_head.bias`, as every Hugging Face checkpoint does): it would rank by zeros.
    #[error(
        "{method} ranks by a value head, and the {judge} has none (its weights lack value_head.weight and \
         value_head.bias); use a model trained with one{alternative}, or a method that needs none"
    )]
    NoValueHead {
        /// The method's name.
        method: &'static str,
        /// Which model lacks it: the policy, or the value model.
        judge: &'static str,
        /// What else could judge, if anything.
        alternative: &'static str,
    },
}

/// Held-out accuracy, tokens and FLOPs per problem of `method` at `budget` (greedy ignores the budget).
#[allow(clippy::too_many_arguments)]
pub fn evaluate<B: HostAccess, T: Task>(
    model: &Model<B>,
    value_model: Option<&Model<B>>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    method: Method,
    budget: u32,
    config: &EvalConfig,
    search: &SearchSettings,
) -> Result<TestTimePoint, EvalError> {
    if budget == 0 {
        return Err(EvalError::ZeroBudget);
    }
    check_value_head(method, model, value_model)?;
    if method.is_search() {
        let policy =
            TransformerPolicy::new(model, tokenizer, task, problems, search, config.max_new_tokens, config.seed);
        let points = sweep_with(&mut policy?.judged_by(value_model)?, &[method], &[budget])?;
        return Ok(points.into_iter().next().map_or_else(|| empty_point(method, budget), |(point, _)| point));
    }
    if method == Method::Greedy {
        return Ok(greedy_point(model, tokenizer, task, problems, config)?.point);
    }
    let config = EvalConfig { budgets: vec![budget], ..config.clone() };
    let points = sampling_points(model, value_model, tokenizer, task, problems, &config, &[method])?;
    Ok(points.into_iter().next().map_or_else(|| empty_point(method, budget), |(point, _)| point))
}

/// Refuses a method that ranks by a value head the judging model lacks: `best_of_n_value`, `weighted_vote` and the
/// step searches (which score partial solutions) read the value model's head when there is one, else the policy's.
fn check_value_head<B: HostAccess>(
    method: Method,
    model: &Model<B>,
    value_model: Option<&Model<B>>,
) -> Result<(), EvalError> {
    let judged = matches!(method, Method::BestOfNValue | Method::WeightedVote) || method.is_search();
    let (judge, name, alternative) = match value_model {
        _ if !judged => return Ok(()),
        Some(v) => (v, "value model", ""),
        None => (model, "model", " or a value model"),
    };
    if judge.weights().has_value_head() {
        return Ok(());
    }
    Err(EvalError::NoValueHead { method: method.name(), judge: name, alternative })
}

/// The point of a method that had no problem to run on.
fn empty_point(method: Method, budget: u32) -> TestTimePoint {
    TestTimePoint {
        method: method.name().into(),
        budget,
        tokens: 0.0,
        forward_tokens: 0.0,
        recompute_tokens: 0.0,
        flops: 0.0,
        accuracy: 0.0,
    }
}

/// How to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalConfig {
    pub max_new_tokens: usize,
    /// Sampling for the multi-sample methods.
    pub sampling: SamplingParams,
    /// Budgets to report (samples per problem), ascending; the largest is drawn once and reused.
    pub budgets: Vec<u32>,
    pub seed: u64,
    /// How the judge's step scores become a sample's score for `best_of_n_value` and `weighted_vote` (`last`: the
    /// finished completion's value alone).
    pub step_aggregation: StepAggregation,
}

/// One completion, judged.
#[derive(Debug, Clone)]
struct Judged {
    correct: bool,
    answer: Option<String>,
    /// Whether the task's step checker accepts every complete step (true for a task without one).
    steps_valid: bool,
    /// The judge's score of the completion: its step scores, aggregated.
    value: f32,
    /// The policy's value head on the prompt alone (its own estimate of its chance on the problem).
    prompt_value: f32,
    tokens: usize,
}

/// Greedy accuracy and mean completion tokens per problem.
pub fn greedy<B: HostAccess, T: Task>(
    model: &Model<B>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    max_new_tokens: usize,
) -> Result<(f64, f64), EvalError> {
    Ok(accuracy_and_tokens(&greedy_judged(model, tokenizer, task, problems, max_new_tokens)?))
}

/// The share of `judged` that is correct, and its mean tokens.
fn accuracy_and_tokens(judged: &[Judged]) -> (f64, f64) {
    let n = judged.len().max(1) as f64;
    (judged.iter().filter(|j| j.correct).count() as f64 / n, judged.iter().map(|j| j.tokens as f64).sum::<f64>() / n)
}

/// Every problem's greedy completion, judged.
fn greedy_judged<B: HostAccess, T: Task>(
    model: &Model<B>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    max_new_tokens: usize,
) -> Result<Vec<Judged>, EvalError> {
    let config = GenerationConfig { max_new_tokens, sampling: SamplingParams::greedy(), stop_tokens: vec![] };
    let judged = judge(model, None, tokenizer, task, problems, 1, &config, 0, StepAggregation::Last)?;
    Ok(judged.into_iter().filter_map(|mut samples| samples.pop()).collect())
}

/// The whole test-time sweep of the sampling methods, problem by problem: each point with its outcomes, and the
/// policy's estimate of its chance on every problem (its value head on the prompt), which a compute-optimal policy
/// allocates by.
#[derive(Debug, Clone)]
pub struct SamplingSweep {
    pub points: Vec<(TestTimePoint, Outcomes)>,
    pub difficulty: Vec<f32>,
}

/// The test-time curves: `greedy` at budget 1, then `majority`, `majority_checked`, `best_of_n` (verifier picks),
/// `best_of_n_value` and `weighted_vote` at every budget. The last two judge the samples with a well-formed answer
/// by `value_model`'s step scores when one is given (they then also pay for the value model's forward pass over
/// every sample), else by the policy's own value head.
pub fn test_time<B: HostAccess, T: Task>(
    model: &Model<B>,
    value_model: Option<&Model<B>>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    config: &EvalConfig,
) -> Result<Vec<TestTimePoint>, EvalError> {
    let sweep = sampling_sweep(model, value_model, tokenizer, task, problems, config)?;
    Ok(sweep.points.into_iter().map(|(point, _)| point).collect())
}

/// [`test_time`] problem by problem ([`SamplingSweep`]).
pub fn sampling_sweep<B: HostAccess, T: Task>(
    model: &Model<B>,
    value_model: Option<&Model<B>>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    config: &EvalConfig,
) -> Result<SamplingSweep, EvalError> {
    let greedy = greedy_point(model, tokenizer, task, problems, config)?;
    let mut points = vec![(greedy.point, greedy.outcomes)];
    points.extend(sampling_points(model, value_model, tokenizer, task, problems, config, &SWEPT_SAMPLING_METHODS)?);
    Ok(SamplingSweep { points, difficulty: greedy.prompt_values })
}

/// Mean prompt length (BOS included) and the forward FLOPs per token of a sequence whose completion is
/// `completion_tokens` long, taken at its mean context.
fn cost_model<'a, B: HostAccess, T: Task>(
    model: &'a Model<B>,
    task: &T,
    problems: &[T::Problem],
) -> (f64, impl Fn(f64) -> f64 + 'a) {
    let n = problems.len().max(1) as f64;
    let prompt_tokens: f64 = problems.iter().map(|p| task.prompt(p).len() as f64 + 1.0).sum::<f64>() / n;
    let per_token = move |completion_tokens: f64| {
        forward_flops_per_token(model.config(), (prompt_tokens + completion_tokens / 2.0) as usize)
    };
    (prompt_tokens, per_token)
}

/// Greedy decoding at budget 1: its point, its outcomes, and the value head on every prompt.
struct GreedyPoint {
    point: TestTimePoint,
    outcomes: Outcomes,
    prompt_values: Vec<f32>,
}

/// Greedy decoding's point (budget 1), problem by problem.
fn greedy_point<B: HostAccess, T: Task>(
    model: &Model<B>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    config: &EvalConfig,
) -> Result<GreedyPoint, EvalError> {
    let (prompt_tokens, per_token) = cost_model(model, task, problems);
    let judged = greedy_judged(model, tokenizer, task, problems, config.max_new_tokens)?;
    let (accuracy, tokens) = accuracy_and_tokens(&judged);
    // The prompt, then every generated token but the last.
    let forward_tokens = (prompt_tokens + tokens - 1.0).max(0.0);
    // Per problem, linear in its own tokens, so the mean is the point's FLOPs.
    let per_token = per_token(tokens);
    let point = TestTimePoint {
        method: "greedy".into(),
        budget: 1,
        tokens,
        forward_tokens,
        recompute_tokens: forward_tokens,
        flops: (prompt_tokens + tokens) * per_token,
        accuracy,
    };
    let outcomes = Outcomes {
        method: "greedy".into(),
        budget: 1,
        uses_verifier: false,
        correct: judged.iter().map(|j| j.correct).collect(),
        flops: judged.iter().map(|j| (prompt_tokens + j.tokens as f64) * per_token).collect(),
    };
    Ok(GreedyPoint { point, outcomes, prompt_values: judged.iter().map(|j| j.prompt_value).collect() })
}

/// The sampling methods of the test-time sweep, in report order.
const SWEPT_SAMPLING_METHODS: [Method; 5] =
    [Method::Majority, Method::MajorityChecked, Method::BestOfN, Method::BestOfNValue, Method::WeightedVote];

/// `methods` (sampling ones: sample, the votes, best-of-N by verifier or by value) at every budget of `config`,
/// from one draw of the largest, each with its outcomes; points by budget, then in the order of `methods`.
#[allow(clippy::too_many_arguments)]
fn sampling_points<B: HostAccess, T: Task>(
    model: &Model<B>,
    value_model: Option<&Model<B>>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    config: &EvalConfig,
    methods: &[Method],
) -> Result<Vec<(TestTimePoint, Outcomes)>, EvalError> {
    let n = problems.len().max(1) as f64;
    let (prompt_tokens, per_token) = cost_model(model, task, problems);
    let max_budget = config.budgets.iter().copied().max().unwrap_or(0) as usize;
    if max_budget == 0 {
        return Ok(Vec::new());
    }
    let mut points = Vec::with_capacity(methods.len() * config.budgets.len());
    let generation =
        GenerationConfig { max_new_tokens: config.max_new_tokens, sampling: config.sampling, stop_tokens: vec![] };
    let judged = judge(
        model,
        value_model,
        tokenizer,
        task,
        problems,
        max_budget,
        &generation,
        config.seed,
        config.step_aggregation,
    )?;
    for &budget in &config.budgets {
        let b = budget as usize;
        let mut hits = vec![0.0f64; methods.len()];
        let mut solved: Vec<Vec<bool>> = vec![Vec::with_capacity(judged.len()); methods.len()];
        let mut problem_tokens = Vec::with_capacity(judged.len());
        for samples in &judged {
            let first = &samples[..b.min(samples.len())];
            problem_tokens.push(first.iter().map(|j| j.tokens).sum::<usize>() as f64);
            let [majority, majority_checked, best_of_n, best_of_n_value, value_vote] = choices(first);
            let chose = |choice: Option<usize>| f64::from(u8::from(choice.is_some_and(|c| first[c].correct)));
            for ((hit, solved), method) in hits.iter_mut().zip(&mut solved).zip(methods) {
                let score = match method {
                    Method::Majority => chose(majority),
                    Method::MajorityChecked => chose(majority_checked),
                    Method::BestOfN => chose(best_of_n),
                    Method::BestOfNValue => chose(best_of_n_value),
                    Method::WeightedVote => chose(value_vote),
                    // pass@1: the fraction of the samples that are correct.
                    _ => first.iter().filter(|j| j.correct).count() as f64 / first.len().max(1) as f64,
                };
                *hit += score;
                // `sample`'s per-problem outcome is its first sample's.
                solved.push(if *method == Method::Sample {
                    first.first().is_some_and(|j| j.correct)
                } else {
                    score > 0.0
                });
            }
        }
        let mean_tokens = problem_tokens.iter().sum::<f64>() / n;
        // A problem's samples fork its prompt, prefilled once; each then feeds back all its tokens but the last.
        let forward_tokens = (prompt_tokens + mean_tokens - budget as f64).max(0.0);
        let recompute_tokens = (prompt_tokens * budget as f64 + mean_tokens - budget as f64).max(0.0);
        // Per problem, each cost is linear in the problem's own tokens, so their mean is the point's.
        let generate_per_token = per_token(mean_tokens / budget as f64);
        let generate_flops = |tokens: f64| (prompt_tokens + tokens) * generate_per_token;
        // The policy's value head comes with decoding; a separate value model reads every sample once more.
        let judge_flops = |tokens: f64| {
            value_model.map_or(0.0, |v| {
                (prompt_tokens * budget as f64 + tokens)
                    * forward_flops_per_token(v.config(), (prompt_tokens + mean_tokens / budget as f64 / 2.0) as usize)
            })
        };
        for ((&method, hit), solved) in methods.iter().zip(hits).zip(solved) {
            let judged_by_value = matches!(method, Method::BestOfNValue | Method::WeightedVote);
            let cost = |tokens: f64| generate_flops(tokens) + if judged_by_value { judge_flops(tokens) } else { 0.0 };
            let point = TestTimePoint {
                method: method.name().into(),
                budget,
                tokens: mean_tokens,
                forward_tokens,
                recompute_tokens,
                flops: cost(mean_tokens),
                accuracy: hit / n,
            };
            let outcomes = Outcomes {
                method: method.name().into(),
                budget,
                uses_verifier: method == Method::BestOfN,
                correct: solved,
                flops: problem_tokens.iter().map(|&t| cost(t)).collect(),
            };
            points.push((point, outcomes));
        }
    }
    Ok(points)
}

/// The sample each of `majority`, `majority_checked`, `best_of_n`, `best_of_n_value` and `weighted_vote` returns
/// (`None`: no candidate).
///
/// The value judge ranks answers: a completion without a well-formed one (no answer key, the key majority vote
/// uses, which never consults the target) is no candidate. Unfiltered, such completions won almost half the picks
/// at 64 samples on the demo: the garbled ones are far from anything the value head was trained on, and it rates
/// them highest of all.
fn choices(samples: &[Judged]) -> [Option<usize>; 5] {
    let answers: Vec<Option<&str>> = samples.iter().map(|j| j.answer.as_deref()).collect();
    let checked: Vec<Option<&str>> = samples.iter().map(|j| j.answer.as_deref().filter(|_| j.steps_valid)).collect();
    let checked_vote = majority_vote(&checked).or_else(|| majority_vote(&answers));
    let verified: Vec<f32> = samples.iter().map(|j| if j.correct { 1.0 } else { 0.0 }).collect();
    let values: Vec<f32> = samples.iter().map(|j| if j.answer.is_some() { j.value } else { f32::NAN }).collect();
    // A score is a chance of success: clamped to [0, 1], so a head that strays below 0 cannot vote against.
    let weights: Vec<f32> = values.iter().map(|v| v.clamp(0.0, 1.0)).collect();
    [
        majority_vote(&answers),
        checked_vote,
        best_score(&verified),
        best_score(&values),
        weighted_vote(&answers, &weights),
    ]
}

/// `samples` completions per problem, each verified, keyed for voting and valued by `value_model`'s step scores
/// (or, without one, by the policy's value head as recorded while decoding), aggregated by `aggregation`.
#[allow(clippy::too_many_arguments)]
fn judge<B: HostAccess, T: Task>(
    model: &Model<B>,
    value_model: Option<&Model<B>>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    samples: usize,
    config: &GenerationConfig,
    seed: u64,
    aggregation: StepAggregation,
) -> Result<Vec<Vec<Judged>>, EvalError> {
    let prompts: Vec<Vec<u32>> =
        problems.iter().map(|p| encode_prompt(tokenizer, &task.prompt(p))).collect::<Result<_, _>>()?;
    let ids: Vec<u64> = (0..problems.len() as u64).collect();
    let generations = sample(model, &prompts, &ids, samples, config, seed)?;
    // `last` needs no step boundaries (and so no newline token): it reads the finished completion alone.
    let newline = match aggregation {
        StepAggregation::Last => None,
        _ => Some(newline_token(tokenizer)?),
    };
    let mut scores = match value_model {
        Some(v) => {
            let rows: Vec<(&[u32], &[u32])> = prompts
                .iter()
                .zip(&generations)
                .flat_map(|(p, rows)| rows.iter().map(move |g| (p.as_slice(), g.tokens.as_slice())))
                .collect();
            let (p, c): (Vec<&[u32]>, Vec<&[u32]>) = rows.into_iter().unzip();
            Some(step_scores(v, &p, &c, newline)?.into_iter())
        }
        None => None,
    };
    let mut out = Vec::with_capacity(problems.len());
    for (problem, rows) in problems.iter().zip(&generations) {
        let mut judged = Vec::with_capacity(rows.len());
        for generation in rows {
            let text = completion_text(tokenizer, &generation.tokens)?;
            // Without a value model, the policy's values recorded while decoding: the last is the completion's
            // before its stop token. An empty completion has no step and scores NaN (never chosen).
            let steps = match scores.as_mut() {
                Some(scores) => scores.next().unwrap_or_default(),
                None => policy_step_values(generation, newline),
            };
            let value = aggregate_steps(&steps, aggregation).unwrap_or(f32::NAN);
            judged.push(Judged {
                prompt_value: generation.values.first().copied().unwrap_or(f32::NAN),
                correct: task.reward(problem, text.as_bytes()).verdict.is_correct(),
                answer: task.answer_key(problem, text.as_bytes()),
                steps_valid: task.check_steps(problem, text.as_bytes()).is_none_or(|p| !p.has_invalid_step),
                value,
                tokens: generation.tokens.len(),
            });
        }
        out.push(judged);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use selfplay_model::safetensors_io::weights_from_tensors;
    use selfplay_tasks::Split;
    use selfplay_tensor::Tensor;

    use super::*;
    use crate::o1::rl::tests::{LowercaseTask, tiny_model, tokenizer};

    /// The tests' evaluation: 3 tokens a completion, seed 5, `budgets`.
    fn eval_config(budgets: Vec<u32>) -> EvalConfig {
        EvalConfig {
            max_new_tokens: 3,
            sampling: SamplingParams::default(),
            budgets,
            seed: 5,
            step_aggregation: StepAggregation::Last,
        }
    }

    fn judged(answer: Option<&str>, correct: bool, value: f32) -> Judged {
        Judged {
            correct,
            answer: answer.map(str::to_string),
            steps_valid: true,
            value,
            prompt_value: f32::NAN,
            tokens: 1,
        }
    }

    /// Majority votes over answer keys, best-of-N takes a verified sample, and the value judge takes the highest
    /// value among samples with an answer, however high an unkeyed one scores.
    #[test]
    fn the_value_judge_only_ranks_well_formed_answers() {
        let samples = [
            judged(Some("7"), false, 0.3),
            judged(None, false, 0.9), // garbled: the highest value, no candidate
            judged(Some("5"), true, 0.6),
            judged(Some("7"), false, 0.2),
            judged(Some("5"), true, f32::NAN),
        ];
        // Majority: "7" and "5" tie at two votes; the tie goes to the answer seen first. Weighted by value, "5"
        // (0.6, its NaN counting nothing) outweighs "7" (0.3 + 0.2).
        assert_eq!(choices(&samples), [Some(0), Some(0), Some(2), Some(2), Some(2)]);
        // Only the garbled one: no vote and no value candidate; best-of-N still returns a (wrong) sample.
        assert_eq!(choices(&samples[1..2]), [None, None, Some(0), None, None]);
        // Values outside [0, 1] are clamped: a negative one cannot vote against its answer.
        let mut strayed = samples.clone();
        strayed[3].value = -5.0;
        strayed[2].value = 0.45;
        assert_eq!(choices(&strayed)[4], Some(2), "7: 0.3 + 0 against 5: 0.45");
        // The checked vote: the two "7"s slipped a step, so the "5"s win it; with every step rejected, all vote.
        let mut slipped = samples.clone();
        slipped[0].steps_valid = false;
        slipped[3].steps_valid = false;
        assert_eq!(choices(&slipped)[..2], [Some(0), Some(2)]);
        slipped.iter_mut().for_each(|j| j.steps_valid = false);
        assert_eq!(choices(&slipped)[..2], [Some(0), Some(0)]);
    }

    /// The methods that rank by a value head refuse a policy loaded without one (a value model judges
    /// `best_of_n_value` instead, unless it lacks one too); every other method runs on it.
    #[test]
    fn ranking_by_a_missing_value_head_is_refused() {
        let (with_head, tok) = (tiny_model(0.5, 2), tokenizer());
        let tensors = with_head
            .weights()
            .iter()
            .filter(|(entry, _)| !entry.name.to_string().starts_with("value_head."))
            .map(|(entry, data)| {
                (entry.name.to_string(), Tensor::from_vec(entry.dims().to_vec(), data.to_vec()).unwrap())
            })
            .collect();
        let weights = weights_from_tensors(with_head.config(), tensors).unwrap();
        assert!(!weights.has_value_head());
        let headless = Model::new(with_head.config().clone(), weights).unwrap();
        let problems = LowercaseTask.generate(Split::Val, 4, 0).unwrap();
        let config = eval_config(vec![2]);
        let point = |model, value_model, method| {
            let search = SearchSettings::default();
            evaluate(model, value_model, &tok, &LowercaseTask, &problems, method, 2, &config, &search)
        };
        for method in Method::ALL {
            let refused = matches!(method, Method::BestOfNValue | Method::WeightedVote) || method.is_search();
            match point(&headless, None, method) {
                Err(EvalError::NoValueHead { method: name, judge: "model", .. }) if refused => {
                    assert_eq!(name, method.name())
                }
                Ok(_) if !refused => {}
                other => panic!("{}: {other:?}", method.name()),
            }
        }
        point(&headless, Some(&with_head), Method::BestOfNValue).unwrap();
        let refused = point(&with_head, Some(&headless), Method::BestOfNValue);
        assert!(matches!(refused, Err(EvalError::NoValueHead { judge: "value model", .. })), "{refused:?}");
    }

    /// `sample` is pass@1: at budget 1 it is the one sample's correctness (best-of-1's point), and at any budget
    /// it never beats best-of-N, which succeeds when any sample does.
    #[test]
    fn sample_is_the_mean_accuracy_of_one_sample() {
        let (model, tok) = (tiny_model(0.5, 2), tokenizer());
        let problems = LowercaseTask.generate(Split::Val, 10, 0).unwrap();
        let config = eval_config(vec![4]);
        let point = |method, budget| {
            let search = SearchSettings::default();
            evaluate(&model, None, &tok, &LowercaseTask, &problems, method, budget, &config, &search).unwrap()
        };
        assert_eq!(point(Method::Sample, 1).accuracy, point(Method::BestOfN, 1).accuracy);
        let (sample, best) = (point(Method::Sample, 4), point(Method::BestOfN, 4));
        assert_eq!(sample.method, "sample");
        assert!(sample.accuracy <= best.accuracy, "{} > {}", sample.accuracy, best.accuracy);
        assert!(sample.accuracy > 0.0 && sample.accuracy < 1.0, "the toy policy solves some, not all");
        assert_eq!(sample.tokens, best.tokens);
    }

    /// Problem by problem, every option of the sweep adds up to its point: the share solved is its accuracy
    /// (`sample`'s first sample, at budget 1), the mean cost its FLOPs; and every problem has a difficulty estimate.
    #[test]
    fn outcomes_add_up_to_their_points() {
        let (model, tok) = (tiny_model(0.5, 2), tokenizer());
        let problems = LowercaseTask.generate(Split::Val, 10, 0).unwrap();
        let config = eval_config(vec![1, 4]);
        let sweep = sampling_sweep(&model, None, &tok, &LowercaseTask, &problems, &config).unwrap();
        assert_eq!(sweep.points.len(), 1 + SWEPT_SAMPLING_METHODS.len() * 2);
        assert_eq!(sweep.difficulty.len(), problems.len());
        assert!(sweep.difficulty.iter().all(|d| d.is_finite()));
        for (point, outcomes) in &sweep.points {
            assert_eq!((outcomes.method.as_str(), outcomes.budget), (point.method.as_str(), point.budget));
            assert_eq!(outcomes.uses_verifier, point.method == "best_of_n");
            let solved = outcomes.correct.iter().filter(|&&c| c).count() as f64 / problems.len() as f64;
            assert_eq!(solved, point.accuracy, "{}@{}", point.method, point.budget);
            let flops = outcomes.flops.iter().sum::<f64>() / problems.len() as f64;
            assert!((flops - point.flops).abs() <= 1e-9 * point.flops, "{}: {flops} vs {}", point.method, point.flops);
        }
    }

    /// `evaluate` of one sampling method at one budget draws only what that budget needs, yet reports exactly
    /// the point the full sweep reports: row `s` of a problem is seeded by `s` alone, so the first `b` of 4
    /// samples are the `b` samples drawn on their own.
    #[test]
    fn one_method_at_one_budget_is_its_point_of_the_sweep() {
        let (model, tok) = (tiny_model(0.5, 2), tokenizer());
        let problems = LowercaseTask.generate(Split::Val, 10, 0).unwrap();
        let config = eval_config(vec![1, 4]);
        let sweep = test_time(&model, None, &tok, &LowercaseTask, &problems, &config).unwrap();
        assert_eq!(sweep.len(), 1 + SWEPT_SAMPLING_METHODS.len() * 2);
        for method in [
            Method::Greedy,
            Method::Majority,
            Method::MajorityChecked,
            Method::BestOfN,
            Method::BestOfNValue,
            Method::WeightedVote,
        ] {
            for budget in [1, 4] {
                let point = evaluate(
                    &model,
                    None,
                    &tok,
                    &LowercaseTask,
                    &problems,
                    method,
                    budget,
                    &config,
                    &SearchSettings::default(),
                )
                .unwrap();
                let expected_budget = if method == Method::Greedy { 1 } else { budget };
                let expected = sweep.iter().find(|p| p.method == method.name() && p.budget == expected_budget);
                assert_eq!(Some(&point), expected, "{} at {budget}", method.name());
            }
        }
    }
}
