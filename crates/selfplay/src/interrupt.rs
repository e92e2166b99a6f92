//! Ctrl-C for long runs: the first press asks the run to checkpoint and stop after the current step, a second one
//! exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::CliError;

/// Installs the handler; the returned flag turns true on the first Ctrl-C.
pub fn stop_flag() -> Result<Arc<AtomicBool>, CliError> {
    let stop = Arc::new(AtomicBool::new(false));
    let handler_flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        // A notice only: if stderr is gone the run still stops after this step.
        let _ = crate::stdio::errln!("\nCtrl-C: saving a checkpoint after this step (press again to quit at once)");
    })?;
    Ok(stop)
}
