//! Reruns through the real binary: a run is never wiped by surprise. A new run into a folder that holds one is
//! refused with one line naming the folder, `--resume` and `--overwrite`, and nothing in the folder changes;
//! `--overwrite` removes the run's own files, naming each, and keeps the user's; the demo without `--out` writes
//! beside an earlier run and resumes the newest; flags given with `--resume` that disagree with the run's
//! settings are named.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::SystemTime;

use selfplay_engine::alphazero::AlphaZeroConfig;
use selfplay_engine::engine::seeded_metrics;
use selfplay_engine::o1::RunConfig;

/// A fresh folder under Cargo's scratch directory for tests.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-runs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `selfplay args…` run in `cwd`.
fn selfplay_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_selfplay")).args(args).current_dir(cwd).output().unwrap()
}

fn selfplay(args: &[&str]) -> Output {
    selfplay_in(Path::new(env!("CARGO_TARGET_TMPDIR")), args)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn succeeded(output: Output) -> Output {
    assert!(output.status.success(), "failed: {}", stderr(&output));
    output
}

/// The one `error: …` line of a command that failed with exit code 1.
fn error_line(output: &Output) -> String {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected on stderr: {text}");
    assert!(lines[0].starts_with("error: "), "{text}");
    lines[0].to_string()
}

/// The Countdown loop at toy size with `seed`, written as a config file in `dir`.
fn tiny_config(dir: &Path, seed: u64) -> PathBuf {
    let config = RunConfig { seed, ..RunConfig::tiny() };
    let path = dir.join(format!("tiny-{seed}.toml"));
    std::fs::write(&path, config.to_toml().unwrap()).unwrap();
    path
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// One finished tiny `selfplay train` run, made once; tests work on copies of it.
fn o1_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = scratch("o1");
        let run = dir.join("run");
        succeeded(selfplay(&["train", "--config", arg(&tiny_config(&dir, 1)), "--out", arg(&run)]));
        run
    })
}

/// One finished tiny `selfplay game train` run on tic-tac-toe.
fn game_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = scratch("game");
        let config = AlphaZeroConfig { iterations: 1, ..AlphaZeroConfig::tiny() };
        let path = dir.join("tiny.toml");
        std::fs::write(&path, config.to_toml().unwrap()).unwrap();
        let run = dir.join("run");
        succeeded(selfplay(&["game", "train", "--game", "tic-tac-toe", "--config", arg(&path), "--out", arg(&run)]));
        run
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir`: its contents and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                files.insert(path.clone(), (std::fs::read(&path).unwrap(), modified));
            }
        }
    }
    files
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    seeded_metrics(&std::fs::read_to_string(run.join("metrics.jsonl")).unwrap()).unwrap()
}

#[test]
fn a_new_run_into_a_run_is_refused_and_changes_nothing() {
    let dir = scratch("refuse");
    let run = dir.join("run");
    copy_dir(o1_run(), &run);
    let before = snapshot(&run);
    let config = tiny_config(&dir, 1);
    let commands: [&[&str]; 5] = [
        &["train", "--config", arg(&config), "--out", arg(&run)],
        &["train", "--out", arg(&run)],
        &["demo", "--config", arg(&config), "--out", arg(&run)],
        &["demo", "--game", "connect4", "--out", arg(&run)],
        &["game", "train", "--game", "tic-tac-toe", "--out", arg(&run)],
    ];
    for command in commands {
        let line = error_line(&selfplay(command));
        let expected = format!(
            "error: {} already holds a run (checkpoints, metrics.jsonl, config.toml and 14 more)",
            run.display()
        );
        assert!(line.starts_with(&expected), "{command:?}: {line}");
        assert!(line.ends_with("continue it with --resume, or replace it with --overwrite"), "{command:?}: {line}");
        assert!(snapshot(&run) == before, "{command:?} changed the run's folder");
    }
}

#[test]
fn overwrite_names_what_it_removes_and_keeps_the_users_files() {
    let dir = scratch("overwrite");
    let run = dir.join("run");
    copy_dir(o1_run(), &run);
    std::fs::write(run.join("notes.txt"), "mine").unwrap();
    let config = tiny_config(&dir, 1);
    let overwrite = ["train", "--config", arg(&config), "--out", arg(&run), "--overwrite"];

    // A file of the user's inside the model directory, which a run replaces whole: refused, nothing removed.
    std::fs::write(run.join("model/README.md"), "my notes on this model").unwrap();
    let before = snapshot(&run);
    let line = error_line(&selfplay(&overwrite));
    assert!(
        line.starts_with(&format!("error: {} would be lost by --overwrite", run.join("model/README.md").display()))
    );
    assert!(line.contains("nothing was removed"), "{line}");
    assert!(snapshot(&run) == before, "a refused --overwrite changed the folder");

    std::fs::remove_file(run.join("model/README.md")).unwrap();
    let notes = snapshot(&run).remove(&run.join("notes.txt")).unwrap();
    let mut owned: Vec<PathBuf> = std::fs::read_dir(&run).unwrap().map(|e| e.unwrap().path()).collect();
    owned.retain(|p| !p.ends_with("notes.txt"));
    let output = succeeded(selfplay(&overwrite));
    let text = stderr(&output);
    let removed: Vec<PathBuf> = text.lines().filter_map(|l| l.strip_prefix("removing ")).map(PathBuf::from).collect();
    owned.sort();
    let mut sorted = removed.clone();
    sorted.sort();
    assert_eq!(sorted, owned, "every entry of the earlier run, and nothing else, is named:\n{text}");
    assert_eq!(snapshot(&run).remove(&run.join("notes.txt")), Some(notes), "the user's file changed");
    // The new run is whole and alone: the same settings give the same metrics, none left from the first run.
    assert_eq!(metrics(&run), metrics(o1_run()));
    assert!(run.join("report.json").is_file());

    // --overwrite and --resume ask for opposite things.
    let both = selfplay(&["train", "--out", arg(&run), "--resume", "--overwrite"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    assert!(stderr(&both).contains("cannot be used with"), "{}", stderr(&both));
}

#[test]
fn resume_names_the_flag_that_disagrees_with_the_run() {
    let dir = scratch("resume-flags");
    let run = dir.join("run");
    copy_dir(o1_run(), &run);
    let before = snapshot(&run);
    let other = RunConfig {
        seed: 1,
        sft: selfplay_engine::o1::config::SftSettings { steps: 4, ..RunConfig::tiny().sft },
        ..RunConfig::tiny()
    };
    let other_path = dir.join("other.toml");
    std::fs::write(&other_path, other.to_toml().unwrap()).unwrap();
    let resume = |extra: &[&str]| selfplay(&[&["train", "--out", arg(&run), "--resume"], extra].concat());
    let other_flag = format!("--config {}", other_path.display());
    for (extra, flag, name) in [
        (&["--seed", "7"][..], "--seed 7", "--seed"),
        (&["--full"][..], "--full", "--full"),
        (&["--config", arg(&other_path)][..], other_flag.as_str(), "--config"),
        (&["--config", arg(&tiny_config(&dir, 1)), "--seed", "7"][..], "--seed 7", "--seed"),
    ] {
        let line = error_line(&resume(extra));
        let expected = format!(
            "error: {} was started with other settings than {flag} gives; resume it without {name},",
            run.display()
        );
        assert!(line.starts_with(&expected), "{extra:?}: {line}");
        assert!(snapshot(&run) == before, "{extra:?} changed the run's folder");
    }
    // Flags that agree with the run are fine: its own settings are used.
    let agreeing = succeeded(resume(&["--config", arg(&tiny_config(&dir, 1)), "--seed", "1", "--print-config"]));
    let printed: RunConfig = toml::from_str(&String::from_utf8(agreeing.stdout).unwrap()).unwrap();
    assert_eq!(printed, RunConfig::tiny());

    let game = dir.join("game");
    copy_dir(game_run(), &game);
    let before = snapshot(&game);
    let resume_game = |extra: &[&str]| {
        selfplay(&[&["game", "train", "--game", "tic-tac-toe", "--out", arg(&game), "--resume"], extra].concat())
    };
    for (extra, flag, name) in
        [(&["--iterations", "5"][..], "--iterations 5", "--iterations"), (&["--seed", "9"][..], "--seed 9", "--seed")]
    {
        let line = error_line(&resume_game(extra));
        assert!(line.contains(&format!("other settings than {flag} gives; resume it without {name},")), "{line}");
        assert!(snapshot(&game) == before, "{extra:?} changed the run's folder");
    }
}

#[test]
fn the_demo_without_out_writes_beside_an_earlier_run_and_resumes_the_newest() {
    let cwd = scratch("demo");
    copy_dir(o1_run(), &cwd.join("runs/demo"));
    let before = snapshot(&cwd.join("runs/demo"));
    let config = tiny_config(&cwd, 5);

    let output = succeeded(selfplay_in(&cwd, &["demo", "--config", arg(&config)]));
    let text = stderr(&output);
    assert!(text.lines().any(|l| l == "runs/demo holds an earlier run: writing this one to runs/demo-2"), "{text}");
    assert!(snapshot(&cwd.join("runs/demo")) == before, "the demo changed the earlier run");
    assert!(cwd.join("runs/demo-2/report.json").is_file());

    // --resume continues the folder checkpointed last: runs/demo-2, the run with seed 5.
    let resumed = succeeded(selfplay_in(&cwd, &["demo", "--resume", "--print-config"]));
    let printed: RunConfig = toml::from_str(&String::from_utf8(resumed.stdout).unwrap()).unwrap();
    assert_eq!(printed.seed, 5);

    // An explicit --out is refused like any other.
    let line = error_line(&selfplay_in(&cwd, &["demo", "--config", arg(&config), "--out", "runs/demo"]));
    assert!(line.starts_with("error: runs/demo already holds a run"), "{line}");
}
