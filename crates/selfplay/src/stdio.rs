//! Printing that can fail. `println!` panics when stdout is a closed pipe (`selfplay eval … | head -1`) or a full
//! disk (`> /dev/full`); here every write returns its `io::Error`, so a subcommand passes it up with `?` and
//! `main` decides: a closed pipe ends the command quietly (see [`is_closed_pipe`]), any other failure is one
//! `error: …` line and exit 1.
//!
//! Use [`outln!`] for stdout and [`errln!`] for stderr wherever `println!` / `eprintln!` would go, adding `?`
//! (`print!` becomes `stdio::out(format_args!(…))?`). Code that writes many lines, or hands a writer down, takes
//! [`stdout()`] instead of `std::io::stdout().lock()` and uses `writeln!`: the same errors, saying they are stdout's.

use std::fmt;
use std::io::{self, Write};

/// Locked stdout whose write errors say so (`cannot write to stdout: No space left on device`), keeping their
/// kind, so [`is_closed_pipe`] still recognises a closed pipe.
pub struct Stdout(io::StdoutLock<'static>);

/// Stdout, locked for this writer's lifetime.
pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(|e| failed("stdout", e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(|e| failed("stdout", e))
    }
}

/// `error` of a write to `stream`, said to be one, with its kind kept.
pub fn failed(stream: &str, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("cannot write to {stream}: {error}"))
}

/// Writes `args` to stdout and flushes it, so a failure shows up here rather than being lost when the buffer is
/// dropped at exit.
pub fn out(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut stdout = stdout();
    stdout.write_fmt(args)?;
    stdout.flush()
}

/// Writes `args` to stderr (unbuffered).
pub fn err(args: fmt::Arguments<'_>) -> io::Result<()> {
    io::stderr().lock().write_fmt(args).map_err(|e| failed("stderr", e))
}

/// `println!` that returns `io::Result<()>` instead of panicking: `outln!("{line}")?`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::stdio::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that returns `io::Result<()>` instead of panicking: `errln!("scored {n} lines")?`.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::stdio::err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {errln, outln};

/// Whether `err` (or any of its causes) is a write to a pipe whose reader has gone (EPIPE): `| head -1` read
/// what it wanted. Rust ignores SIGPIPE, so the write fails instead of killing the process; `main` then exits
/// quietly with status 0, as a program killed by SIGPIPE would be silent, and as `set -o pipefail` scripts
/// expect of a producer whose consumer stopped early (ripgrep does the same).
///
/// `serde_json::to_writer` reports the failed write as a `serde_json::Error` whose `source()` skips the
/// `io::Error`, so its kind is asked for directly.
pub fn is_closed_pipe(err: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(err), |e| e.source()).any(|e| {
        let kind = match (e.downcast_ref::<io::Error>(), e.downcast_ref::<serde_json::Error>()) {
            (Some(io), _) => Some(io.kind()),
            (None, Some(json)) => json.io_error_kind(),
            (None, None) => None,
        };
        kind == Some(io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("saving")]
    struct Wrapper(#[source] io::Error);

    #[test]
    fn a_broken_pipe_is_found_among_the_causes() {
        let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(is_closed_pipe(&pipe()));
        assert!(is_closed_pipe(&Wrapper(pipe())));
        assert!(is_closed_pipe(&serde_json::Error::io(pipe())));
        assert!(is_closed_pipe(&failed("stdout", pipe())));
        let full = failed("stdout", io::Error::from_raw_os_error(28)); // ENOSPC
        assert!(!is_closed_pipe(&Wrapper(full)));
    }
}
