//! What every stage of the o1 recipe reads and never changes: the settings, the task, the tokenizer and the
//! problem sets.

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
    /// The training problems of each stage of `[task] curriculum` other than `numbers` itself (whose stages
    /// draw from `train`), by count of numbers.
    curriculum: Vec<(usize, Vec<<CountdownTask as Task>::Problem>)>,
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
        let mut curriculum = Vec::new();
        for &n in &config.task.curriculum {
            if n != config.task.numbers && !curriculum.iter().any(|(m, _)| *m == n) {
                eprintln!(
                    "generating {} training problems of {n} numbers for the curriculum",
                    config.task.train_problems
                );
                let problems = RunConfig::task_of(n).generate(Split::Train, config.task.train_problems, config.seed)?;
                curriculum.push((n, problems));
            }
        }
        Ok(RecipeData { config: config.clone(), task, tokenizer, train, eval, curriculum })
    }

    /// The problems RL step `step` (from 1) draws its prompts from: those of its curriculum stage's count of
    /// numbers ([`RunConfig::rl_numbers`]).
    pub fn rl_problems(&self, step: u64) -> &[<CountdownTask as Task>::Problem] {
        let n = self.config.rl_numbers(step);
        self.curriculum.iter().find(|(m, _)| *m == n).map_or(&self.train, |(_, problems)| problems)
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
