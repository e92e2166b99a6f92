//! Shared helpers for the end-to-end tests.

use selfplay_engine::o1::RunConfig;

/// The whole loop at toy size: a few seconds on 2 cores, every stage and artefact exercised.
pub fn tiny_run_config() -> RunConfig {
    RunConfig::tiny()
}
