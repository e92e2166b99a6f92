//! What an AlphaZero run can fail on.

use std::path::PathBuf;

use selfplay_model::ModelError;
use selfplay_search::{GameError, GameEvalError, SearchError};

use super::config::{AlphaZeroConfigError, ConfigFileError};
use crate::engine::EngineError;

/// Every failure of the AlphaZero recipe.
#[derive(Debug, thiserror::Error)]
pub enum AlphaZeroError {
    /// The settings.
    #[error(transparent)]
    Config(#[from] AlphaZeroConfigError),
    /// A settings file (`--config`, or the `alphazero.toml` saved with a network) that cannot be read or run.
    #[error(transparent)]
    SettingsFile(#[from] ConfigFileError),
    /// The runner, a checkpoint or the metrics log.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The network.
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// Communication between the ranks of a data-parallel run.
    #[error("between ranks: {0}")]
    Collective(#[from] selfplay_collective::CollectiveError),
    /// Reading or writing a model directory.
    #[error("model directory: {0}")]
    ModelDir(#[from] selfplay_model::IoError),
    /// A network to play with could not be loaded.
    #[error("cannot load the network in {}", dir.display())]
    LoadModel {
        /// The model directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: selfplay_model::IoError,
    },
    /// A network whose vocabulary is not the game's observation and action tokens: another game's network, or
    /// a language model.
    #[error(
        "{} is not a network for this game: its vocabulary has {got} tokens, a network for this game has one of \
         {accepted:?} (the token layouts: cells placed or shared, with or without action queries)",
        dir.display()
    )]
    WrongVocabulary {
        /// The model directory.
        dir: PathBuf,
        /// The vocabulary of each of the game's token layouts (see `TokenLayout::ALL`), in that order.
        accepted: Vec<usize>,
        /// The network's `vocab_size`.
        got: usize,
    },
    /// A network whose context cannot hold the game's observation.
    #[error(
        "{} is not a network for this game: its context holds {got} positions, its board and queries need {needed}",
        dir.display()
    )]
    ShortContext {
        /// The model directory.
        dir: PathBuf,
        /// The tokens of one position in the network's layout (the observation, then any queries).
        needed: usize,
        /// The network's `max_position_embeddings`.
        got: usize,
    },
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
    /// A fixed opponent could not be made or could not move.
    #[error("fixed opponent: {0}")]
    Agent(#[from] selfplay_games::AgentError),
    /// Match results that cannot be rated.
    #[error("rating: {0}")]
    Rating(#[from] selfplay_games::RatingError),
    /// A recorded match against a player the record does not rate (a tampered or mixed-up record).
    #[error("the record holds a match against {0}, which is neither a fixed opponent nor an arena point")]
    UnknownPlayer(String),
    /// A game with no fixed opponent to anchor its ratings.
    #[error("the game has no fixed opponent to rate the network against")]
    NoOpponent,
    /// A plot of the report.
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
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
