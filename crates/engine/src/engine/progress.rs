//! Progress bars with rate and ETA for long phases; silent when stderr is not a terminal (CI, pipes).

use indicatif::{ProgressBar, ProgressStyle};

/// One phase's bar.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `total` steps labelled `label`.
    pub fn new(label: &str, total: u64) -> Self {
        let bar = ProgressBar::new(total);
        let style =
            ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos}/{len} {elapsed_precise} ETA {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_string());
        Progress { bar }
    }

    /// A bar that draws nothing (the ranks of a data-parallel run other than rank 0).
    pub fn hidden() -> Self {
        Progress { bar: ProgressBar::hidden() }
    }

    /// Advances one step and shows `message`.
    pub fn step(&self, message: String) {
        self.bar.set_message(message);
        self.bar.inc(1);
    }

    /// Starts the bar at `done` steps (a resumed run), its rate and ETA counting from here.
    pub fn skip_to(&self, done: u64) {
        self.bar.set_position(done);
        self.bar.reset_eta();
    }

    /// Leaves the finished bar on screen.
    pub fn finish(&self) {
        self.bar.finish();
    }
}
