//! Replays a search tree recorded by DeepMind's mctx with our search.
//!
//! `cargo run --release -p selfplay-search --example mctx_replay -- IN.json OUT.json [NUM_SIMULATIONS]`
//!
//! Reads only the model outputs stored in IN.json (`prior`, `raw_value_view`, `reward` of every evaluated node)
//! and the configuration (`algorithm`, `algorithm_config`, `env_config`); the number of simulations is
//! NUM_SIMULATIONS if given, else the root's `visit - 1`, else the number of evaluated nodes minus one. Writes our tree in the same format to OUT.json and, when IN.json carries the
//! recorded statistics, reports whether every node matches within 1e-3.

#[path = "../tests/support/mctx_format.rs"]
mod mctx_format;

use std::process::ExitCode;

fn run() -> Result<bool, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output) = match args.as_slice() {
        [i, o] | [i, o, _] => (i, o),
        _ => return Err("usage: mctx_replay IN.json OUT.json [NUM_SIMULATIONS]".into()),
    };
    let sims = match args.get(2) {
        Some(s) => Some(s.parse::<usize>().map_err(|e| format!("NUM_SIMULATIONS: {e}"))?),
        None => None,
    };
    let text = std::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))?;
    let file: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{input}: {e}"))?;
    let mut replay = mctx_format::Replay::from_json(&file, sims)?;
    let tree = replay.run()?;
    let ours: serde_json::Value = serde_json::from_str(&selfplay_search::export::to_mctx_json(&tree))
        .map_err(|e| format!("internal: exported JSON does not parse: {e}"))?;
    let mut out = file.clone();
    out["tree"] = ours.clone();
    let pretty = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
    std::fs::write(output, pretty + "\n").map_err(|e| format!("{output}: {e}"))?;
    println!("wrote {output}: {} nodes, root visit {}", tree.num_nodes(), tree.visit_count(0).unwrap_or(0));
    let recorded = &file["tree"];
    if recorded.get("visit").is_some() {
        match mctx_format::compare(recorded, &ours, 1e-3) {
            Ok(()) => println!("matches the recorded tree (atol 1e-3)"),
            Err(diff) => {
                println!("differs from the recorded tree: {diff}");
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
