//! What every stage of the o1 recipe reads and never changes: the settings, the task, the tokenizer and the
//! problem sets.

use std::path::Path;

use selfplay_model::HostAccess;
use selfplay_model::{CharTokenizer, Model, save_model_dir};
use selfplay_tasks::{CountdownTask, Split, Task};
use selfplay_tensor::DType;

use super::config::RunConfig;
use super::error::O1Error;
use super::eval::greedy;

/// The recipe's fixed inputs.
#[derive(Debug)]
pub struct RecipeData {
    /// The run's settings.
    pub config: RunConfig,
    /// Countdown with `[task] numbers`.
    pub task: CountdownTask,
    /// The character tokenizer the model reads.
    pub tokenizer: CharTokenizer,
    /// Training problems: SFT traces and RL prompts.
    pub train: Vec<<CountdownTask as Task>::Problem>,
    /// Held-out problems every accuracy is measured on.
    pub eval: Vec<<CountdownTask as Task>::Problem>,
}

impl RecipeData {
    /// Generates the problem sets `config` describes.
    pub fn generate(config: &RunConfig) -> Result<Self, O1Error> {
        let task = config.task();
        eprintln!(
            "generating {} training and {} held-out Countdown problems ({} numbers)",
            config.task.train_problems, config.task.eval_problems, config.task.numbers
        );
        let train = task.generate(Split::Train, config.task.train_problems, config.seed)?;
        let eval = task.generate(Split::Val, config.task.eval_problems, config.seed)?;
        Ok(RecipeData { config: config.clone(), task, tokenizer: CharTokenizer::ascii(), train, eval })
    }

    /// Greedy accuracy on the held-out problems.
    pub fn greedy_accuracy<B: HostAccess>(&self, model: &Model<B>) -> Result<f64, O1Error> {
        let (accuracy, _) = greedy(model, &self.tokenizer, &self.task, &self.eval, self.config.max_new_tokens)?;
        Ok(accuracy)
    }

    /// Saves `model` as a Hugging Face directory with the tokenizer, weights in f32.
    pub fn save_model<B: HostAccess>(&self, model: &Model<B>, dir: &Path) -> Result<(), O1Error> {
        save_model_dir(dir, model.config(), model.weights(), Some(&self.tokenizer), DType::F32)?;
        Ok(())
    }
}
