//! What every stage of the o1 recipe reads and never changes: the settings, the task, the tokenizer and the
//! problem sets.

use std::borrow::Cow;
use std::path::Path;

use selfplay_collective::{Collective, gather_concat, shard};
use selfplay_model::HostAccess;
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{Model, save_model_dir};
use selfplay_tasks::{CountdownTask, Split, Task};
use selfplay_tensor::DType;

use super::config::RunConfig;
use super::error::O1Error;
use super::eval::greedy;
use super::tokenizer::recipe_tokenizer;

/// The recipe's fixed inputs.
#[derive(Debug)]
pub struct RecipeData {
    /// The run's settings.
    pub config: RunConfig,
    /// Countdown with `[task] numbers`.
    pub task: CountdownTask,
    /// The tokenizer the model reads (`[model] tokenizer`).
    pub tokenizer: Box<dyn Tokenizer>,
    /// Training problems: SFT traces and RL prompts.
    pub train: Vec<<CountdownTask as Task>::Problem>,
    /// Held-out problems every accuracy is measured on.
    pub eval: Vec<<CountdownTask as Task>::Problem>,
    /// Training problems of every other count of numbers the run poses (`[task] curriculum`, `[task]
    /// sft_numbers`), by count.
    other_counts: Vec<(usize, Vec<<CountdownTask as Task>::Problem>)>,
}

impl RecipeData {
    /// Generates the problem sets `config` describes, and the tokenizer (a BPE learns from the training set).
    pub fn generate(config: &RunConfig) -> Result<Self, O1Error> {
        let task = config.task();
        eprintln!(
            "generating {} training and {} held-out Countdown problems ({} numbers)",
            config.task.train_problems, config.task.eval_problems, config.task.numbers
        );
        let train = task.generate(Split::Train, config.task.train_problems, config.seed)?;
        let eval = task.generate(Split::Val, config.task.eval_problems, config.seed)?;
        let tokenizer = recipe_tokenizer(config, &task, &train)?;
        let mut other_counts: Vec<(usize, Vec<_>)> = Vec::new();
        for n in config.task.counts() {
            if n != config.task.numbers && !other_counts.iter().any(|(m, _)| *m == n) {
                eprintln!("generating {} training problems of {n} numbers", config.task.train_problems);
                let problems = RunConfig::task_of(n).generate(Split::Train, config.task.train_problems, config.seed)?;
                other_counts.push((n, problems));
            }
        }
        Ok(RecipeData { config: config.clone(), task, tokenizer, train, eval, other_counts })
    }

    /// The training problems of `n` numbers (`train` for `[task] numbers`; none for a count the run never poses).
    fn train_of(&self, n: usize) -> &[<CountdownTask as Task>::Problem] {
        if n == self.config.task.numbers {
            return &self.train;
        }
        self.other_counts.iter().find(|(m, _)| *m == n).map_or(&[], |(_, problems)| problems)
    }

    /// The problems RL step `step` (from 1) draws its prompts from: those of its curriculum stage's count of
    /// numbers ([`RunConfig::rl_numbers`]).
    pub fn rl_problems(&self, step: u64) -> &[<CountdownTask as Task>::Problem] {
        self.train_of(self.config.rl_numbers(step))
    }

    /// The problems policy initialisation writes traces for: `train`, or with `[task] sft_numbers` the `i`-th
    /// problem of the `i`-th count round-robin (`[3, 4]`: 3-number problem 0, 4-number problem 1, …).
    pub fn sft_problems(&self) -> Cow<'_, [<CountdownTask as Task>::Problem]> {
        let counts = &self.config.task.sft_numbers;
        if counts.is_empty() {
            return Cow::Borrowed(&self.train);
        }
        let sets: Vec<&[_]> = counts.iter().map(|&n| self.train_of(n)).collect();
        let mixed = (0..self.train.len()).filter_map(|i| sets[i % sets.len()].get(i).cloned()).collect();
        Cow::Owned(mixed)
    }

    /// Greedy accuracy on the held-out problems.
    ///
    /// Over several ranks, each answers its share of the problems and they add up their correct answers, so the
    /// figure is the one process's.
    pub fn greedy_accuracy<B: HostAccess>(
        &self,
        model: &Model<B>,
        collective: &dyn Collective,
    ) -> Result<f64, O1Error> {
        let mine = &self.eval[shard(self.eval.len(), collective.rank(), collective.world_size())];
        let (accuracy, _) = greedy(model, self.tokenizer.as_ref(), &self.task, mine, self.config.max_new_tokens)?;
        if collective.world_size() == 1 {
            return Ok(accuracy);
        }
        let correct = (accuracy * mine.len() as f64).round() as u64;
        let correct: u64 = gather_concat(collective, vec![correct])?.iter().sum();
        Ok(correct as f64 / self.eval.len().max(1) as f64)
    }

    /// Saves `model` as a Hugging Face directory with the tokenizer, weights in f32.
    ///
    /// Over several ranks, rank 0 writes it and every rank waits for it, so any rank may read it back.
    pub fn save_model<B: HostAccess>(
        &self,
        model: &Model<B>,
        dir: &Path,
        collective: &dyn Collective,
    ) -> Result<(), O1Error> {
        if collective.is_root() {
            save_model_dir(dir, model.config(), model.weights(), Some(self.tokenizer.as_ref()), DType::F32)?;
        }
        collective.barrier()?;
        Ok(())
    }
}
