//! What an AlphaZero run can fail on.

use selfplay_model::ModelError;
use selfplay_search::{GameError, GameEvalError, SearchError};

use super::config::AlphaZeroConfigError;
use crate::engine::EngineError;

/// Every failure of the AlphaZero recipe.
#[derive(Debug, thiserror::Error)]
pub enum AlphaZeroError {
    /// The settings.
    #[error(transparent)]
    Config(#[from] AlphaZeroConfigError),
    /// The runner, a checkpoint or the metrics log.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The network.
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// Reading or writing a model directory.
    #[error("model directory: {0}")]
    ModelDir(#[from] selfplay_model::IoError),
    /// The tree search refused its settings or trees.
    #[error("search: {0}")]
    Search(SearchError<GameEvalError<ModelError>>),
    /// A move the game refused.
    #[error("game: {0}")]
    Game(#[from] GameError),
    /// A loss or the optimizer refused its input.
    #[error("learning: {0}")]
    Learn(#[from] selfplay_learn::LearnError),
    /// The config could not be written as TOML.
    #[error("cannot write the config as TOML: {0}")]
    Toml(#[from] toml::ser::Error),
    /// A checkpoint's replay buffer (or the report) could not be read back, or written.
    #[error("replay buffer: {0}")]
    Replay(#[from] serde_json::Error),
    /// The committed benchmark of labelled positions could not be read.
    #[error("benchmark: {0}")]
    Benchmark(#[from] selfplay_games::LabelError),
    /// A position that is not finished offered no legal move: the game breaks the `Game` contract.
    #[error("a position that is not finished has no legal move")]
    NoLegalMove,
    /// A stage was asked to step before it was started: a bug in the runner.
    #[error("internal: the {0} stage stepped before it started")]
    NotStarted(&'static str),
}

impl From<GameEvalError<ModelError>> for AlphaZeroError {
    fn from(e: GameEvalError<ModelError>) -> Self {
        match e {
            GameEvalError::Game(e) => AlphaZeroError::Game(e),
            GameEvalError::TerminalRoot => AlphaZeroError::NoLegalMove,
            GameEvalError::Search(e) => AlphaZeroError::Search(SearchError::widen(e)),
            GameEvalError::Model(e) => AlphaZeroError::Model(e),
        }
    }
}

impl From<SearchError> for AlphaZeroError {
    fn from(e: SearchError) -> Self {
        AlphaZeroError::Search(SearchError::widen(e))
    }
}

impl From<SearchError<GameEvalError<ModelError>>> for AlphaZeroError {
    fn from(e: SearchError<GameEvalError<ModelError>>) -> Self {
        match e {
            SearchError::Evaluator(inner) => inner.into(),
            other => AlphaZeroError::Search(other),
        }
    }
}
