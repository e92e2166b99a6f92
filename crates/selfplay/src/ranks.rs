//! The ranks a training command runs on: MPI's when `mpirun` launched it (in a build with the `mpi` feature),
//! one process otherwise.

use std::time::Duration;

use clap::Args;
use selfplay_collective::{Collective, SingleProcess, launched_by_mpi};

use crate::CliError;

/// How a training command behaves under `mpirun`.
#[derive(Debug, Clone, Args)]
pub struct RankArgs {
    /// Under mpirun: how long a rank waits for the others at any exchange before it gives up and ends the run
    /// (a rank that died or hangs). It must exceed rank 0's measurements (arena, benchmark), which the
    /// others wait through.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub rank_timeout: u64,
}

impl Default for RankArgs {
    fn default() -> Self {
        RankArgs { rank_timeout: 1800 }
    }
}

/// The collective to train with: MPI's world when launched by `mpirun`, else [`SingleProcess`]. A build without
/// the `mpi` feature refuses to run under `mpirun` rather than run the same job several times side by side.
pub fn collective(args: &RankArgs) -> Result<Box<dyn Collective>, CliError> {
    if !launched_by_mpi() {
        return Ok(Box::new(SingleProcess));
    }
    mpi_world(Duration::from_secs(args.rank_timeout.max(1)))
}

#[cfg(feature = "mpi")]
fn mpi_world(timeout: Duration) -> Result<Box<dyn Collective>, CliError> {
    Ok(Box::new(selfplay_collective::MpiCollective::init(timeout)?))
}

#[cfg(not(feature = "mpi"))]
fn mpi_world(_timeout: Duration) -> Result<Box<dyn Collective>, CliError> {
    Err("launched by mpirun, but this selfplay was built without MPI: build it with `cargo build --release --features mpi`".into())
}
