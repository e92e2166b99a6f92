//! Replays the three search trees recorded by DeepMind's mctx (`tests/data/mctx/`, see its NOTICE) and requires
//! every node's visit count, value and prior to match within mctx's own tolerance (1e-3), with the same shape and
//! the same node numbering.

mod support {
    pub mod mctx_format;
}

use selfplay_search::{Evaluation, Evaluator, LeafBatch, LeafOutputs};
use support::mctx_format::{Replay, compare};

/// Value 0 and uniform priors everywhere.
struct Constant;

impl Evaluator for Constant {
    type State = u32;
    type Error = selfplay_search::SearchError;
    fn evaluate(&mut self, leaves: &LeafBatch<'_, u32>, out: &mut LeafOutputs<u32>) -> Result<(), Self::Error> {
        for i in 0..leaves.len() {
            let eval = Evaluation { state: 0, reward: 0.0, discount: 1.0, value: 0.0, terminal: false };
            out.fill(i, eval, |logits, _| logits.fill(0.0))?;
        }
        Ok(())
    }
}

fn replay(name: &str) {
    let path = format!("{}/tests/data/mctx/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut replay = Replay::from_json(&file, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    let tree = replay.run().unwrap_or_else(|e| panic!("{name}: {e}"));
    let ours: serde_json::Value =
        serde_json::from_str(&selfplay_search::export::to_mctx_json(&tree)).expect("exported JSON parses");
    if let Err(diff) = compare(&file["tree"], &ours, 1e-3) {
        panic!("{name}: {diff}");
    }
}

#[test]
fn muzero_qtransform_tree_matches_mctx() {
    replay("muzero_qtransform_tree.json");
}

#[test]
fn gumbel_muzero_two_player_tree_matches_mctx() {
    replay("gumbel_muzero_tree.json");
}

#[test]
fn gumbel_muzero_reward_tree_matches_mctx() {
    replay("gumbel_muzero_reward_tree.json");
}

#[test]
fn a_perturbed_recording_is_detected() {
    // The comparison itself must be able to fail: change one recorded visit count.
    let path = format!("{}/tests/data/mctx/muzero_qtransform_tree.json", env!("CARGO_MANIFEST_DIR"));
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    let mut replay = Replay::from_json(&file, None).expect("replay");
    let tree = replay.run().expect("run");
    let ours: serde_json::Value = serde_json::from_str(&selfplay_search::export::to_mctx_json(&tree)).expect("json");
    let child = file["tree"]["child_stats"]
        .as_array_mut()
        .and_then(|c| c.iter_mut().find(|c| c.get("visit").is_some()))
        .expect("an expanded child");
    child["visit"] = serde_json::json!(child["visit"].as_i64().unwrap_or(0) + 1);
    assert!(compare(&file["tree"], &ours, 1e-3).is_err());
}

#[test]
fn a_search_engine_reused_after_a_larger_budget_still_matches() {
    // The Sequential Halving schedule depends on the budget: a reused engine must rebuild it.
    let path = format!("{}/tests/data/mctx/gumbel_muzero_reward_tree.json", env!("CARGO_MANIFEST_DIR"));
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    let mut replay = Replay::from_json(&file, None).expect("replay");
    let mut config = replay.config;
    config.num_simulations = 200;
    let mut search = selfplay_search::Search::new(config, replay.num_actions).expect("config");
    let mut tree = selfplay_search::Tree::new(replay.num_actions);
    let logits = vec![0.0; replay.num_actions];
    tree.reset(selfplay_search::RootOutput { state: 0u32, prior_logits: &logits, value: 0.0, invalid_actions: None })
        .expect("root");
    search.run(std::slice::from_mut(&mut tree), &mut Constant, 0).expect("larger run");
    search.set_config(replay.config).expect("config");
    let tree = replay.run_with(&mut search).expect("replay");
    let ours: serde_json::Value = serde_json::from_str(&selfplay_search::export::to_mctx_json(&tree)).expect("json");
    compare(&file["tree"], &ours, 1e-3).expect("matches mctx");
}

/// Removes every `visit` and `value_view`: what remains are the model outputs and the configuration.
fn strip_statistics(v: &mut serde_json::Value) {
    if let Some(obj) = v.as_object_mut() {
        obj.remove("visit");
        obj.remove("value_view");
        obj.values_mut().for_each(strip_statistics);
    } else if let Some(arr) = v.as_array_mut() {
        arr.iter_mut().for_each(strip_statistics);
    }
}

#[test]
fn replay_needs_only_the_model_outputs() {
    for name in ["muzero_qtransform_tree.json", "gumbel_muzero_tree.json", "gumbel_muzero_reward_tree.json"] {
        let path = format!("{}/tests/data/mctx/{name}", env!("CARGO_MANIFEST_DIR"));
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
        let mut stripped = file.clone();
        strip_statistics(&mut stripped["tree"]);
        assert!(stripped["tree"].get("visit").is_none());
        let tree = Replay::from_json(&stripped, None).expect("replay").run().expect("run");
        let ours: serde_json::Value =
            serde_json::from_str(&selfplay_search::export::to_mctx_json(&tree)).expect("json");
        compare(&file["tree"], &ours, 1e-3).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
