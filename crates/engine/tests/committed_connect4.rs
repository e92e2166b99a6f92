//! The Connect Four agent committed in `models/connect4` (made by `selfplay demo --game connect4 --full`; its
//! README says how): it loads on a fresh clone with no training, with the settings of the run that made it, and
//! plays as its README reports — a guard on the committed files and on the whole path from them to a move.

use std::path::PathBuf;

use selfplay_engine::alphazero::benchmark::measure_by_group;
use selfplay_engine::alphazero::{AlphaZeroConfig, Connect4Benchmark, load_agent};
use selfplay_games::Connect4;

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/connect4")
}

/// Mistakes of the committed network on the 180 benchmark positions, network alone and with 32 simulations, as
/// `selfplay game eval --model models/connect4` prints them (the search checking decisive moves, the default).
const MEASURED: [(usize, f64); 2] = [(0, ALONE), (32, SEARCHED)];
const ALONE: f64 = 56.0 / 180.0;
const SEARCHED: f64 = 17.0 / 180.0;

#[test]
fn the_committed_agent_loads_with_its_run_settings_and_plays_as_measured() {
    let (model, config) = load_agent::<Connect4>(&committed()).unwrap();
    assert_eq!(config, AlphaZeroConfig::connect4_full(), "the settings of the --full run");
    let benchmark = Connect4Benchmark::committed().unwrap();
    for (simulations, measured) in MEASURED {
        let rates = measure_by_group(&model, &config, &benchmark, simulations, 1).unwrap();
        // One position either way: the moves are deterministic, but a near-tie may fall the other way on a
        // machine whose floating point differs in the last bit.
        assert!((rates.total.all - measured).abs() <= 1.5 / 180.0, "{simulations} simulations: {:?}", rates.total);
    }
}
