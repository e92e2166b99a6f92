//! The self-play loop as a library: the [`engine`] every recipe runs on, the [`rollout`] path training and
//! evaluation share, and the [`o1`] recipe (policy initialisation, RL from a verifier, test-time search) on
//! Countdown. The `selfplay` binary is a thin command line over it.
//!
//! * [`engine`]: [`engine::Stage`] (a unit of training or evaluation with its own steps and metrics),
//!   [`engine::Runner`] (progress bars, `metrics.jsonl`, checkpoints named by stage and step, the stop signal,
//!   bit-identical resume) and the shared [`engine::Context`].
//! * [`rollout`]: attempts at problems — sampling and step-level search — named by one [`rollout::Method`].
//! * [`train`]: the one batching path of every training loop (forward, a loss over token statistics,
//!   backward into a kept gradient buffer, one optimizer update).
//! * [`optimizer`], [`flops`]: AdamW over a model's weights; the FLOPs every curve is charged in.
//! * [`plot`]: the line charts (SVG and PNG) every recipe's report draws.
//! * [`o1`]: the Countdown o1 recipe as a list of stages: SFT, RL, evaluation.
//! * [`alphazero`]: self-play as in AlphaGo Zero on any board game, as a stage of self-play and learning.
//!
//! ```
//! use selfplay_engine::engine::RunStart;
//! use selfplay_engine::o1::{Outcome, RunConfig, run};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = RunConfig::tiny(); // a few seconds on one core
//! config.eval.budgets = vec![1];
//! let out = std::env::temp_dir().join(format!("selfplay-doc-{}", std::process::id()));
//! match run(&config, &out, RunStart::New, &|_, _| false)? {
//!     Outcome::Finished(report) => assert!((0.0..=1.0).contains(&report.rl_accuracy)),
//!     Outcome::Interrupted { .. } => unreachable!("nothing asked it to stop"),
//! }
//! # std::fs::remove_dir_all(&out)?;
//! # Ok(())
//! # }
//! ```

pub mod alphazero;
pub mod config_file;
pub mod engine;
pub mod flops;
pub mod o1;
pub mod optimizer;
pub mod plot;
pub mod rollout;
pub mod train;
