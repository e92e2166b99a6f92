//! Where a `--out FILE` goes. A regular file (or a new name) is replaced atomically, so a reader never sees half
//! a file and a failed run leaves the old one; anything else is written in place, because replacing it would
//! destroy it: a symlink is followed to its target (the link stays), and a FIFO, a device (`/dev/full`,
//! `/dev/null`, a terminal) or `/dev/stdout` is opened and written like any stream. `-` is stdout.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How [`write()`] reaches an output path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    /// `-`: this process's stdout.
    Stdout,
    /// A regular file or a name not yet taken: a temporary file beside it, fsynced, renamed over it.
    Replace,
    /// A symlink, FIFO, device or socket: opened (following a link) and written in place.
    Through,
}

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Replace(#[from] selfplay_model::IoError),
    /// Not [`crate::stdio::Stdout`]'s error, which would say "stdout" twice; a source, not transparent, so that `main`
    /// still finds a closed pipe among the causes.
    #[error("cannot write to stdout")]
    Stdout(#[source] io::Error),
}

/// Writes `bytes` to `path` as the module doc says.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let failed = |source| OutputError::Write { path: path.to_path_buf(), source };
    match destination(path).map_err(failed)? {
        Destination::Stdout => {
            let mut stdout = io::stdout().lock();
            stdout.write_all(bytes).and_then(|()| stdout.flush()).map_err(OutputError::Stdout)
        }
        Destination::Replace => Ok(selfplay_model::write_file_atomic(path, bytes)?),
        Destination::Through => {
            // No truncation for what cannot be truncated (a FIFO, a device); a symlink's regular target is.
            let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(path).map_err(failed)?;
            file.write_all(bytes).and_then(|()| file.flush()).map_err(failed)
        }
    }
}

/// What `path` is now, without following a symlink (the link itself is what must not be replaced).
fn destination(path: &Path) -> io::Result<Destination> {
    if path.as_os_str() == "-" {
        return Ok(Destination::Stdout);
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => Ok(Destination::Replace),
        Ok(meta) if meta.is_dir() => Err(io::Error::new(io::ErrorKind::IsADirectory, "it is a directory")),
        Ok(_) => Ok(Destination::Through),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Destination::Replace),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_path_gets_its_destination() {
        let dir = std::env::temp_dir().join(format!("selfplay-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.bin");
        assert_eq!(destination(Path::new("-")).unwrap(), Destination::Stdout);
        assert_eq!(destination(&file).unwrap(), Destination::Replace, "a new name");
        write(&file, b"one").unwrap();
        assert_eq!(destination(&file).unwrap(), Destination::Replace);
        assert_eq!(destination(Path::new("/dev/null")).unwrap(), Destination::Through);
        assert_eq!(destination(&dir).unwrap_err().kind(), io::ErrorKind::IsADirectory);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
