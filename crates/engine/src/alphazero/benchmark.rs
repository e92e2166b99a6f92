//! Positions with known move values, on which an agent's mistakes are counted: Connect Four's solver-labelled
//! benchmark (AlphaZero.jl's metric). The network alone and with search at several budgets is measured on it:
//! the test-time curve of a board game.

use selfplay_games::labelled::mistakes_of_moves;
use selfplay_games::{Connect4, LabelledPosition};
use selfplay_model::{HostAccess, Model};
use selfplay_search::Game;
use serde::{Deserialize, Serialize};

use super::config::AlphaZeroConfig;
use super::error::AlphaZeroError;
use super::play::choose_moves;

/// How often an agent's move was a mistake (its solved outcome worse than the best move's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MistakeRates {
    /// Over every position.
    pub all: f64,
    /// Over the positions whose moves' outcomes differ.
    pub decisive: f64,
}

/// Positions of game `G` and a judge of the moves played at them.
pub trait MoveBenchmark<G> {
    /// The positions (none finished).
    fn positions(&self) -> &[G];
    /// The mistake rates of `moves[i]` played at `positions()[i]`.
    fn mistakes(&self, moves: &[usize]) -> MistakeRates;
}

/// Connect Four positions labelled by the perfect solver.
#[derive(Debug, Clone)]
pub struct Connect4Benchmark {
    labelled: Vec<LabelledPosition>,
    positions: Vec<Connect4>,
}

impl Connect4Benchmark {
    /// The benchmark of `labelled` positions.
    pub fn new(labelled: Vec<LabelledPosition>) -> Self {
        let positions = labelled.iter().map(|l| l.position).collect();
        Connect4Benchmark { labelled, positions }
    }

    /// The benchmark committed with `selfplay-games`: 30 positions in each of Pons's six groups (begin easy,
    /// medium, hard; middle easy, medium; end easy).
    pub fn committed() -> Result<Self, selfplay_games::LabelError> {
        Ok(Connect4Benchmark::new(selfplay_games::labelled::committed_benchmark()?))
    }
}

impl MoveBenchmark<Connect4> for Connect4Benchmark {
    fn positions(&self) -> &[Connect4] {
        &self.positions
    }

    fn mistakes(&self, moves: &[usize]) -> MistakeRates {
        let report = mistakes_of_moves(&self.labelled, moves).total;
        MistakeRates { all: report.rate(), decisive: report.decisive_rate() }
    }
}

/// The mistake rates of the network on `benchmark`, with a search of `simulations` (0: the network alone).
pub fn measure<G: Game, B: HostAccess>(
    model: &Model<B>,
    config: &AlphaZeroConfig,
    benchmark: &dyn MoveBenchmark<G>,
    simulations: usize,
    seed: u64,
) -> Result<MistakeRates, AlphaZeroError> {
    let (moves, _) = choose_moves(model, config, benchmark.positions(), simulations, seed)?;
    Ok(benchmark.mistakes(&moves))
}
