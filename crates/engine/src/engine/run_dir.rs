//! A run's output directory: which of its entries belong to the run, and what a new run does with a directory
//! that already holds one. Nothing is removed by surprise: a new run into a directory that holds a run is
//! refused ([`RunStart::New`]); [`RunStart::Overwrite`] removes the run's own entries, each named on stderr,
//! and keeps everything else.
//!
//! The run's own entries are, at the top of the directory (those of every recipe, so that a run of one recipe
//! replaces a run of another whole):
//! * `checkpoints/`, whole: the engine's private state, written and pruned by the engine alone;
//! * `arena/`, whole: AlphaZero's network of every arena point, kept for the league;
//! * `metrics.jsonl`, `config.toml`, `report.json`, `report.md` and the plots (`<chart>.svg`, `<chart>.png`);
//! * the model directories `model/`, `sft_model/` and `value_model/`. They are published whole (built aside
//!   and renamed into place), so a file in one that no run writes would be lost when the new run saves its
//!   model: [`RunStart::Overwrite`] then refuses, names the file and removes nothing.
//!
//! A directory holds a run when any of these entries is present. Anything else in it (a note, a config file of
//! another name) is not the run's: it does not make the directory a run, and it is never removed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use selfplay_model::checkpoint::CONFIG_FILE;
use selfplay_model::safetensors_io::WEIGHTS_FILE;
use selfplay_model::tokenizer::{TOKENIZER_CONFIG_FILE, TOKENIZER_FILE};

use super::checkpoint::{CHECKPOINTS_DIR, LATEST_FILE};
use super::error::EngineError;

/// How a run treats the directory it writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunStart {
    /// A new run; refused when the directory already holds a run.
    #[default]
    New,
    /// A new run that first removes the run the directory holds: its own entries only.
    Overwrite,
    /// The run the directory holds, continued from its newest checkpoint (from the beginning when it has none
    /// and the directory holds no run).
    Resume,
}

/// The files a run writes at the top of its directory: the metrics, the settings, the report and the plots of
/// every recipe (the o1 recipe's `train_curve`…, AlphaZero's `elo_flops`…).
const RUN_FILES: &[&str] = &[
    "metrics.jsonl",
    "config.toml",
    "report.json",
    "report.md",
    "train_curve.svg",
    "train_curve.png",
    "train_flops.svg",
    "train_flops.png",
    "test_time_budget.svg",
    "test_time_budget.png",
    "test_time_flops.svg",
    "test_time_flops.png",
    "thinking_length.svg",
    "thinking_length.png",
    "elo_flops.svg",
    "elo_flops.png",
    "elo_games.svg",
    "elo_games.png",
    "mistakes.svg",
    "mistakes.png",
    "test_time.svg",
    "test_time.png",
];

/// The directories that are wholly the run's: the checkpoints, and AlphaZero's arena networks (the league's
/// `crate::alphazero::arena::LEAGUE_DIR`, named here because the engine does not depend on its recipes).
const RUN_DIRS: &[&str] = &[CHECKPOINTS_DIR, "arena"];

/// The model directories a run writes: the final policy, the SFT policy, the value model.
const MODEL_DIRS: &[&str] = &["model", "sft_model", "value_model"];

/// The files a run puts in a model directory: the Hugging Face files, and AlphaZero's search settings
/// (`alphazero.toml`).
const MODEL_FILES: &[&str] = &[CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, "alphazero.toml"];

/// The run's own entries present in `dir` (none when it holds no run or does not exist), in a fixed order:
/// `checkpoints` and `arena`, then the files, then the model directories.
pub fn run_entries(dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let names = RUN_DIRS.iter().chain(RUN_FILES).chain(MODEL_DIRS).copied();
    let mut found = Vec::new();
    for name in names {
        let path = dir.join(name);
        match fs::symlink_metadata(&path) {
            Ok(_) => found.push(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(EngineError::io(&path)(e)),
        }
    }
    Ok(found)
}

/// Entries inside the run's model directories in `dir` that no run writes there.
fn foreign_files(dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let mut foreign = Vec::new();
    for model in MODEL_DIRS.iter().map(|name| dir.join(name)) {
        if !fs::symlink_metadata(&model).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        for entry in fs::read_dir(&model).map_err(EngineError::io(&model))? {
            let entry = entry.map_err(EngineError::io(&model))?;
            let ours = entry.file_name().to_str().is_some_and(|name| MODEL_FILES.contains(&name));
            if !ours {
                foreign.push(entry.path());
            }
        }
    }
    foreign.sort();
    Ok(foreign)
}

/// Makes `dir` ready for a run started from scratch as `start` asks: nothing to do when it holds no run;
/// otherwise refused ([`RunStart::New`]; [`RunStart::Resume`], which found no checkpoint), or the run's own
/// entries removed, each named on stderr ([`RunStart::Overwrite`]), once it is sure nothing else would be lost.
pub fn prepare_fresh(dir: &Path, start: RunStart) -> Result<(), EngineError> {
    let found = run_entries(dir)?;
    if found.is_empty() {
        return Ok(());
    }
    let dir = dir.to_path_buf();
    match start {
        RunStart::New => Err(EngineError::ExistingRun { dir, found }),
        RunStart::Resume => Err(EngineError::NoCheckpoint { dir, found }),
        RunStart::Overwrite => {
            let files = foreign_files(&dir)?;
            if !files.is_empty() {
                return Err(EngineError::NotTheRuns { dir, files });
            }
            for path in found {
                eprintln!("removing {}", path.display());
                let removed = if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed.map_err(EngineError::io(&path))?;
            }
            Ok(())
        }
    }
}

/// `base` with `-n` appended to its name (`runs/demo` → `runs/demo-2`).
fn numbered(base: &Path, n: u64) -> PathBuf {
    let mut name = base.file_name().unwrap_or(base.as_os_str()).to_os_string();
    name.push(format!("-{n}"));
    base.with_file_name(name)
}

/// Where a command with a default output directory writes a new run, so that running it again never touches an
/// earlier run: `base` unless it holds a run, else the first of `base-2`, `base-3`, … that holds none.
pub fn fresh_dir(base: &Path) -> Result<PathBuf, EngineError> {
    if run_entries(base)?.is_empty() {
        return Ok(base.to_path_buf());
    }
    let mut n = 2;
    loop {
        let candidate = numbered(base, n);
        if run_entries(&candidate)?.is_empty() {
            return Ok(candidate);
        }
        n += 1;
    }
}

/// The run to continue among those [`fresh_dir`] hands out for `base` (`base`, `base-2`, `base-3`, …): the one
/// whose newest checkpoint was written last (by the time of its `checkpoints/latest`); `None` when none has a
/// checkpoint.
pub fn newest_checkpointed(base: &Path) -> Result<Option<PathBuf>, EngineError> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for dir in numbered_dirs(base)? {
        let latest = dir.join(CHECKPOINTS_DIR).join(LATEST_FILE);
        let written = match fs::metadata(&latest).and_then(|m| m.modified()) {
            Ok(time) => time,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(EngineError::io(&latest)(e)),
        };
        if newest.as_ref().is_none_or(|(time, _)| written >= *time) {
            newest = Some((written, dir));
        }
    }
    Ok(newest.map(|(_, dir)| dir))
}

/// `base` and its numbered siblings `base-<n>` (n ≥ 2, no leading zero) that exist, in no particular order.
fn numbered_dirs(base: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let mut dirs = vec![base.to_path_buf()];
    let Some(stem) = base.file_name().and_then(|n| n.to_str()) else { return Ok(dirs) };
    let parent = base.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let entries = match fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(dirs),
        Err(e) => return Err(EngineError::io(parent)(e)),
    };
    for entry in entries {
        let name = entry.map_err(EngineError::io(parent))?.file_name();
        let number = name.to_str().and_then(|n| n.strip_prefix(stem)).and_then(|rest| rest.strip_prefix('-'));
        let numbered = number.is_some_and(|digits| {
            !digits.starts_with('0')
                && digits.parse::<u64>().is_ok_and(|n| n >= 2)
                && digits.bytes().all(|b| b.is_ascii_digit())
        });
        if numbered {
            dirs.push(base.with_file_name(name));
        }
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests;
