//! A trained network as a player: [`load_agent`] reads the `model/` directory a run saved (the weights, and the
//! search settings beside them in [`SETTINGS_FILE`]), and [`NetAgent`] puts the network with the arena's search
//! behind the games crate's [`Agent`] seam, so a person, a fixed opponent or another network can play it.

use std::marker::PhantomData;
use std::path::Path;

use selfplay_games::{Agent, AgentError};
use selfplay_model::{HostAccess, Model, ModelDir};
use selfplay_search::Game;

use super::config::AlphaZeroConfig;
use super::error::AlphaZeroError;
use super::net::TokenLayout;
use super::play::choose_moves;

/// The run's settings saved next to the weights of `model/`: the network alone does not say how it was meant to
/// search (Gumbel or PUCT, the actions considered), so the agent that plays it reads them from here.
pub const SETTINGS_FILE: &str = "alphazero.toml";

/// Loads the network in `dir` (a Hugging Face model directory) as a player of game `G`, with the settings of
/// `dir/alphazero.toml` when present and the defaults otherwise (a directory written by hand or by an older
/// run). Refuses a network whose vocabulary is not `G`'s observation tokens (in any [`TokenLayout`]) and
/// action tokens, or whose context is shorter than the layout's sequence, before a move is asked of it.
pub fn load_agent<G: Game>(dir: &Path) -> Result<(Model, AlphaZeroConfig), AlphaZeroError> {
    let loaded = ModelDir::load(dir).map_err(|source| AlphaZeroError::LoadModel { dir: dir.to_path_buf(), source })?;
    let c = &loaded.config;
    let Some(layout) = TokenLayout::of_vocab::<G>(c.vocab_size) else {
        let accepted = TokenLayout::ALL.iter().map(|l| l.vocab::<G>()).collect();
        return Err(AlphaZeroError::WrongVocabulary { dir: dir.to_path_buf(), accepted, got: c.vocab_size });
    };
    if c.max_position_embeddings < layout.sequence_len::<G>() {
        return Err(AlphaZeroError::ShortContext {
            dir: dir.to_path_buf(),
            needed: layout.sequence_len::<G>(),
            got: c.max_position_embeddings,
        });
    }
    let settings = dir.join(SETTINGS_FILE);
    let config = if settings.is_file() { AlphaZeroConfig::from_file(&settings)? } else { AlphaZeroConfig::default() };
    Ok((Model::new(loaded.config, loaded.weights)?, config))
}

/// The network choosing moves with `simulations` simulations of the arena's noise-free search (0: its most likely
/// legal move), as [`choose_moves`] does. The same position always gets the same move: every search is seeded by
/// `seed` alone.
#[derive(Debug)]
pub struct NetAgent<'m, G, B: HostAccess> {
    model: &'m Model<B>,
    config: &'m AlphaZeroConfig,
    simulations: usize,
    seed: u64,
    game: PhantomData<G>,
}

impl<'m, G: Game, B: HostAccess> NetAgent<'m, G, B> {
    /// `model` searching as `config` says, with `simulations` simulations a move.
    pub fn new(model: &'m Model<B>, config: &'m AlphaZeroConfig, simulations: usize, seed: u64) -> Self {
        NetAgent { model, config, simulations, seed, game: PhantomData }
    }
}

impl<G: Game, B: HostAccess> Agent<G> for NetAgent<'_, G, B> {
    fn name(&self) -> String {
        format!("alphazero-{}", self.simulations)
    }

    fn choose_move(&mut self, position: &G) -> Result<usize, AgentError> {
        if position.is_terminal() {
            return Err(AgentError::GameOver);
        }
        let (moves, _) =
            choose_moves(self.model, self.config, std::slice::from_ref(position), self.simulations, self.seed)
                .map_err(|e| AgentError::Failed(e.to_string()))?;
        moves.first().copied().ok_or_else(|| AgentError::Failed(String::from("the search returned no move")))
    }
}
