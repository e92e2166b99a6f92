//! Process supervision: where a completion's steps end, Math-Shepherd's Monte-Carlo step labels, and the policy's
//! own value head read as step scores.
//!
//! A step is a line, as in step search: the tokens up to and including a newline, the last step running to the
//! completion's end. A step is scored by the value after its last token (the newline, or for the last step the
//! completion's last token, its stop token when it has one).
//!
//! A step's Math-Shepherd label (Wang et al. 2024, "soft" estimation) is the share of completions from the end of
//! that step that verify: `rollouts` continuations sampled from the prefix, plus the completion itself, which is
//! one more sample from there. The estimate is unbiased for the policy's chance of success after the step; the last
//! step's is the verdict itself.

use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{Generation, GenerationConfig, HostAccess, IoError, Model};
use selfplay_tasks::Task;

use super::error::{NoNewlineToken, ValueModelError};
use super::labelled::Labelled;
use crate::rollout::{completion_text, row_seed, sample};

/// The stream of the generator that seeds the continuations.
const ROLLOUT_STREAM: u64 = 0x7A2;

/// The id of the newline token, which ends every step but the last.
pub fn newline_token(tokenizer: &dyn Tokenizer) -> Result<u32, ValueModelError> {
    match tokenizer.encode("\n")?.as_slice() {
        &[id] => Ok(id),
        other => Err(NoNewlineToken(other.len()).into()),
    }
}

/// The index in `completion` of every step's last token: each newline but a final one, then the completion's last
/// token. Empty for an empty completion; without a `newline` token, the last token alone (one step).
pub fn step_ends(completion: &[u32], newline: Option<u32>) -> Vec<usize> {
    let Some(last) = completion.len().checked_sub(1) else {
        return Vec::new();
    };
    let mut ends: Vec<usize> = match newline {
        Some(newline) => (0..last).filter(|&e| completion[e] == newline).collect(),
        None => Vec::new(),
    };
    ends.push(last);
    ends
}

/// The policy's step scores of one of its own completions, from the values its head gave while decoding
/// ([`Generation::values`]: entry `t` is the value of the prefix before token `t`): after each step's newline,
/// the value the next token was sampled from, and for the last step the completion's last entry (the whole
/// completion before its stop token). No second forward pass. Empty for an empty completion.
pub fn policy_step_values(generation: &Generation, newline: Option<u32>) -> Vec<f32> {
    let ends = step_ends(&generation.tokens, newline);
    let last = ends.len().saturating_sub(1);
    ends.iter()
        .enumerate()
        .map(|(i, &e)| {
            let at = if i == last { generation.values.len().checked_sub(1) } else { Some(e + 1) };
            at.and_then(|t| generation.values.get(t)).copied().unwrap_or(f32::NAN)
        })
        .collect()
}

/// What Monte-Carlo labelling did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct ProcessLabelStats {
    /// Steps labelled by continuation (every step but the last of every completion).
    pub steps: usize,
    /// Their mean label.
    pub mean_label: f64,
    /// Tokens the continuations generated.
    pub tokens: usize,
}

/// Labels the steps of completions by continuing them with the policy.
pub(super) struct Labeller<'a, B: HostAccess, T: Task> {
    pub policy: &'a Model<B>,
    pub tokenizer: &'a dyn Tokenizer,
    pub task: &'a T,
    /// Continuations per step.
    pub rollouts: usize,
    /// How the completions were sampled: the continuations are sampled the same way, and a continuation is cut
    /// where its completion would have reached `max_new_tokens`.
    pub config: &'a GenerationConfig,
    pub seed: u64,
}

impl<B: HostAccess, T: Task> Labeller<'_, B, T> {
    /// Sets every step's targets in `data` (completion `i` answers `problems[owners[i]]`) to the step's label, all
    /// continuations of all steps in one batched sampling call; the last step keeps the verdict.
    pub fn label(
        &self,
        problems: &[T::Problem],
        owners: &[usize],
        data: &mut [Labelled],
    ) -> Result<ProcessLabelStats, ValueModelError> {
        let newline = newline_token(self.tokenizer)?;
        // (completion, first token of the step, its newline) for every step a continuation can follow.
        let mut steps: Vec<(usize, usize, usize)> = Vec::new();
        for (i, d) in data.iter().enumerate() {
            let ends = step_ends(d.completion(), Some(newline));
            let mut start = 0;
            for &end in &ends[..ends.len() - 1] {
                steps.push((i, start, end));
                start = end + 1;
            }
        }
        let prefixes: Vec<Vec<u32>> =
            steps.iter().map(|&(i, _, end)| data[i].tokens[..data[i].prompt_len + end + 1].to_vec()).collect();
        let ids: Vec<u64> = (0..prefixes.len() as u64).collect();
        let seed = row_seed(self.seed, u64::MAX, ROLLOUT_STREAM);
        let continuations = sample(self.policy, &prefixes, &ids, self.rollouts, self.config, seed)?;
        let mut stats = ProcessLabelStats { steps: steps.len(), ..ProcessLabelStats::default() };
        let mut label_sum = 0.0f64;
        for (&(i, start, end), rows) in steps.iter().zip(&continuations) {
            let d = &data[i];
            let done = &d.completion()[..=end];
            let room = self.config.max_new_tokens.saturating_sub(done.len());
            let mut verified = usize::from(d.correct);
            for row in rows {
                stats.tokens += row.tokens.len();
                let continuation = &row.tokens[..row.tokens.len().min(room)];
                verified += usize::from(self.verifies(&problems[owners[i]], done, continuation)?);
            }
            let label = verified as f32 / (self.rollouts + 1) as f32;
            label_sum += f64::from(label);
            data[i].targets[start..=end].fill(label);
        }
        stats.mean_label = label_sum / stats.steps.max(1) as f64;
        Ok(stats)
    }

    /// Whether the completion `done` followed by `continuation` verifies.
    fn verifies(&self, problem: &T::Problem, done: &[u32], continuation: &[u32]) -> Result<bool, IoError> {
        let text = completion_text(self.tokenizer, &[done, continuation].concat())?;
        Ok(self.task.reward(problem, text.as_bytes()).verdict.is_correct())
    }
}

#[cfg(test)]
mod tests {
    use selfplay_model::{FinishReason, SamplingParams};
    use selfplay_reward::{Reward, Verdict};
    use selfplay_tasks::{Split, TasksError};

    use super::*;
    use crate::o1::rl::tests::{tiny_model, tokenizer};

    /// Correct when the character after the completion's first newline is a lowercase letter: after the first
    /// step the chance of success is the policy's probability of a lowercase next token, and after the second
    /// it is settled.
    struct SecondLineTask;

    impl Task for SecondLineTask {
        type Problem = char;

        fn name(&self) -> &'static str {
            "second-line"
        }

        fn prompt(&self, problem: &char) -> String {
            format!("{problem}:")
        }

        fn reward(&self, _problem: &char, completion: &[u8]) -> Reward {
            let newline = completion.iter().position(|&b| b == b'\n');
            if newline.and_then(|n| completion.get(n + 1)).is_some_and(u8::is_ascii_lowercase) {
                Reward { value: 1.0, verdict: Verdict::Correct }
            } else {
                Reward { value: 0.0, verdict: Verdict::WrongValue }
            }
        }

        fn answer_key(&self, _problem: &char, _completion: &[u8]) -> Option<String> {
            None
        }

        fn solution_trace(&self, _problem: &char) -> Option<String> {
            None
        }

        fn generate(&self, _split: Split, n: usize, _seed: u64) -> Result<Vec<char>, TasksError> {
            Ok(vec!['A'; n])
        }
    }

    /// Math-Shepherd's labels against the exact chances of success: the first step's label is the share of 400
    /// sampled continuations (and the completion) that verify, which must match the policy's probability of a
    /// lowercase letter after the prefix, computed from its logits by a forward pass (within 4 standard errors);
    /// the second step's is exact, and the last step keeps the verdict.
    #[test]
    fn step_labels_estimate_the_chance_of_success_after_the_step() {
        let (model, tok) = (tiny_model(0.5, 7), tokenizer());
        let prompt: Vec<u32> = [tok.bos_id().unwrap()].into_iter().chain(tok.encode("A:").unwrap()).collect();
        let labelled = |completion: &str| {
            let correct = SecondLineTask.reward(&'A', completion.as_bytes()).verdict.is_correct();
            Labelled::new([prompt.clone(), tok.encode(completion).unwrap()].concat(), prompt.len(), correct)
        };
        let mut data = vec![labelled("x\ny\nz"), labelled("x\nY\nz"), labelled("q")];
        let config = GenerationConfig { max_new_tokens: 8, sampling: SamplingParams::default(), stop_tokens: vec![] };
        let labeller = Labeller {
            policy: &model,
            tokenizer: &tok,
            task: &SecondLineTask,
            rollouts: 400,
            config: &config,
            seed: 3,
        };
        let stats = labeller.label(&['A'; 3], &[0, 1, 2], &mut data).unwrap();
        assert_eq!(stats.steps, 4, "two steps before the last in each of the first two completions, none in the third");

        let first_step = [prompt.as_slice(), &tok.encode("x\n").unwrap()].concat();
        let output = model.forward(&[first_step.as_slice()]).unwrap().remove(0);
        let logits = output.logits.row(first_step.len() - 1).unwrap();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
        let lowercase: f64 = (b'a'..=b'z')
            .map(|c| tok.encode(&char::from(c).to_string()).unwrap()[0] as usize)
            .map(|id| f64::from((logits[id] - max).exp()))
            .sum();
        let chance = lowercase / total;
        let tolerance = 4.0 * (chance * (1.0 - chance) / 401.0).sqrt() + 1.0 / 401.0;
        for (d, second, last) in [(&data[0], 1.0, 1.0), (&data[1], 0.0, 0.0)] {
            let first = f64::from(d.targets[0]);
            assert!((first - chance).abs() < tolerance, "label {first} against the chance {chance:.3}");
            assert!(d.targets[..2].iter().all(|&t| f64::from(t) == first), "the whole step shares its label");
            assert_eq!(d.targets[2..4], [second; 2], "settled after the second step");
            assert_eq!(d.targets[4], last, "the last step keeps the verdict");
        }
        assert_eq!(data[2].targets, [0.0], "one step: the verdict");
        assert!(stats.tokens > 0 && stats.mean_label > 0.0 && stats.mean_label < 1.0, "{stats:?}");
    }

    #[test]
    fn steps_end_at_newlines_and_at_the_last_token() {
        const NL: u32 = 9;
        assert_eq!(step_ends(&[], Some(NL)), Vec::<usize>::new());
        assert_eq!(step_ends(&[1, NL, 2, 3, NL, 4], Some(NL)), [1, 4, 5]);
        // A final newline ends the last step once; newlines in a row are steps of their own.
        assert_eq!(step_ends(&[1, NL, NL, 2, NL], Some(NL)), [1, 2, 4]);
        assert_eq!(step_ends(&[1, NL, 2], None), [2]);
    }

    /// The value after a step's newline is the one the next token was sampled from; the last step's is the last
    /// entry, whatever the completion ends with.
    #[test]
    fn the_policy_reads_step_values_from_its_decoding() {
        const NL: u32 = 9;
        let generation = |tokens: Vec<u32>| Generation {
            values: (0..tokens.len()).map(|t| t as f32 / 10.0).collect(),
            logprobs: vec![0.0; tokens.len()],
            model_logprobs: vec![0.0; tokens.len()],
            tokens,
            finish: FinishReason::MaxTokens,
        };
        assert_eq!(policy_step_values(&generation(vec![1, NL, 2, NL, 3, 0]), Some(NL)), [0.2, 0.4, 0.5]);
        assert_eq!(policy_step_values(&generation(vec![1, NL]), Some(NL)), [0.1]);
        assert_eq!(policy_step_values(&generation(vec![1, NL, 2]), None), [0.2]);
        assert!(policy_step_values(&generation(vec![]), Some(NL)).is_empty());
    }
}
