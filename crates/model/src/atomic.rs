//! Crash-safe writes: a reader sees either the old file (or directory) or the complete new one,
//! never a half-written one. Everything is written under a temporary name beside the target,
//! fsynced, then renamed over it, and the parent directory is fsynced so the rename is durable.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::io_error::{IoError, IoResult};

/// Writes `bytes` to `path` atomically.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> IoResult<()> {
    let tmp = sibling(path, "tmp")?;
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| IoError::file(&tmp, e))?;
        file.write_all(bytes).map_err(|e| IoError::file(&tmp, e))?;
        file.sync_all().map_err(|e| IoError::file(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| IoError::file(path, e))?;
        sync_parent(path)
    })();
    if result.is_err() {
        // Best effort: the temporary file is ours and useless after a failure.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Fills a fresh temporary directory with `fill`, fsyncs it, then puts it at `dir`.
///
/// When `dir` already exists it is first renamed aside and removed only after the new one is in
/// place; a crash between the two renames leaves the old contents at `<dir>.old-<pid>`, never a
/// mixture of old and new files.
pub fn replace_dir_atomic(dir: &Path, fill: impl FnOnce(&Path) -> IoResult<()>) -> IoResult<()> {
    let tmp = sibling(dir, "tmp")?;
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| IoError::file(&tmp, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| IoError::file(&tmp, e))?;
    let result = fill(&tmp).and_then(|()| sync_dir(&tmp)).and_then(|()| swap_in(&tmp, dir));
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Creates `path` and writes `bytes` to it with an fsync; for files inside a temporary directory
/// that [`replace_dir_atomic`] publishes as a whole.
pub fn write_file_synced(path: &Path, bytes: &[u8]) -> IoResult<()> {
    let mut file = File::create(path).map_err(|e| IoError::file(path, e))?;
    file.write_all(bytes).map_err(|e| IoError::file(path, e))?;
    file.sync_all().map_err(|e| IoError::file(path, e))
}

fn swap_in(tmp: &Path, dir: &Path) -> IoResult<()> {
    if dir.exists() {
        let old = sibling(dir, "old")?;
        if old.exists() {
            fs::remove_dir_all(&old).map_err(|e| IoError::file(&old, e))?;
        }
        fs::rename(dir, &old).map_err(|e| IoError::file(dir, e))?;
        fs::rename(tmp, dir).map_err(|e| IoError::file(dir, e))?;
        sync_parent(dir)?;
        fs::remove_dir_all(&old).map_err(|e| IoError::file(&old, e))
    } else {
        fs::rename(tmp, dir).map_err(|e| IoError::file(dir, e))?;
        sync_parent(dir)
    }
}

/// `<parent>/.<name>.<tag>-<pid>`: same file system as `path`, so the rename is atomic.
fn sibling(path: &Path, tag: &str) -> IoResult<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        IoError::file(path, std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"))
    })?;
    let mut sibling_name = std::ffi::OsString::from(".");
    sibling_name.push(name);
    sibling_name.push(format!(".{tag}-{}", std::process::id()));
    Ok(path.with_file_name(sibling_name))
}

fn sync_parent(path: &Path) -> IoResult<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

fn sync_dir(dir: &Path) -> IoResult<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| IoError::file(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_file_and_directory_contents() {
        let root = std::env::temp_dir().join(format!("selfplay-atomic-{}", std::process::id()));
        fs::create_dir_all(&root).unwrap();
        let file = root.join("a.bin");
        write_file_atomic(&file, b"one").unwrap();
        write_file_atomic(&file, b"two").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two");

        let dir = root.join("model");
        replace_dir_atomic(&dir, |d| write_file_synced(&d.join("x"), b"1")).unwrap();
        replace_dir_atomic(&dir, |d| write_file_synced(&d.join("y"), b"2")).unwrap();
        assert!(!dir.join("x").exists(), "old contents are gone");
        assert_eq!(fs::read(dir.join("y")).unwrap(), b"2");

        let failed = replace_dir_atomic(&dir, |_| Err(IoError::NoWeights(PathBuf::new())));
        assert!(failed.is_err());
        assert_eq!(fs::read(dir.join("y")).unwrap(), b"2", "a failed save leaves the old directory");
        let leftovers: Vec<_> = fs::read_dir(&root).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        assert_eq!(leftovers.len(), 2, "no temporary files left behind: {leftovers:?}");
        fs::remove_dir_all(&root).unwrap();
    }
}
