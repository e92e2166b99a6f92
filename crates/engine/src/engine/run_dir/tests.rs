use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::*;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("selfplay-run-dir-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file under `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let modified = fs::metadata(&path).unwrap().modified().unwrap();
                files.insert(path.clone(), (fs::read(&path).unwrap(), modified));
            }
        }
    }
    files
}

/// A finished run's entries as the recipes write them, plus a note of the user's beside them.
fn fake_run(dir: &Path) {
    for dir in [dir.join("checkpoints/rl-0000002"), dir.join("model")] {
        fs::create_dir_all(dir).unwrap();
    }
    fs::write(dir.join("checkpoints/latest"), "rl-0000002").unwrap();
    fs::write(dir.join("checkpoints/rl-0000002/trainer_state.json"), "{}").unwrap();
    for file in ["metrics.jsonl", "config.toml", "report.json", "train_curve.svg", "model/config.json"] {
        fs::write(dir.join(file), file).unwrap();
    }
    fs::write(dir.join("notes.txt"), "mine").unwrap();
}

#[test]
fn an_absent_empty_or_foreign_directory_holds_no_run() {
    let dir = scratch("none");
    assert!(run_entries(&dir.join("absent")).unwrap().is_empty());
    assert!(run_entries(&dir).unwrap().is_empty());
    fs::write(dir.join("notes.txt"), "mine").unwrap();
    fs::write(dir.join("run.toml"), "seed = 1").unwrap();
    assert!(run_entries(&dir).unwrap().is_empty());
    prepare_fresh(&dir, RunStart::New).unwrap();
    assert_eq!(fs::read(dir.join("notes.txt")).unwrap(), b"mine");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_new_run_into_a_run_is_refused_and_changes_nothing() {
    let dir = scratch("refuse");
    fake_run(&dir);
    let before = snapshot(&dir);
    let err = prepare_fresh(&dir, RunStart::New).unwrap_err();
    assert!(matches!(err, EngineError::ExistingRun { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&dir.display().to_string()), "{message}");
    assert!(message.contains("--resume") && message.contains("--overwrite"), "{message}");
    assert!(message.contains("checkpoints, metrics.jsonl"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert_eq!(snapshot(&dir), before);

    // A resume that found no checkpoint would start over: refused too, pointing at --overwrite.
    fs::remove_dir_all(dir.join("checkpoints")).unwrap();
    let before_resume = snapshot(&dir);
    let err = prepare_fresh(&dir, RunStart::Resume).unwrap_err();
    assert!(matches!(err, EngineError::NoCheckpoint { .. }), "{err}");
    assert!(err.to_string().contains("--overwrite"), "{err}");
    assert_eq!(snapshot(&dir), before_resume);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn overwrite_removes_the_runs_entries_and_keeps_the_rest() {
    let dir = scratch("overwrite");
    fake_run(&dir);
    prepare_fresh(&dir, RunStart::Overwrite).unwrap();
    let left: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["notes.txt"]);
    assert_eq!(fs::read(dir.join("notes.txt")).unwrap(), b"mine");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn overwrite_refuses_to_lose_a_file_in_a_model_directory() {
    let dir = scratch("foreign");
    fake_run(&dir);
    fs::write(dir.join("model/README.md"), "my model").unwrap();
    let before = snapshot(&dir);
    let err = prepare_fresh(&dir, RunStart::Overwrite).unwrap_err();
    assert!(matches!(&err, EngineError::NotTheRuns { files, .. } if files == &[dir.join("model/README.md")]), "{err}");
    assert!(err.to_string().contains("nothing was removed"), "{err}");
    assert_eq!(snapshot(&dir), before);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_default_directory_moves_to_the_next_fresh_sibling() {
    let root = scratch("fresh");
    let base = root.join("demo");
    assert_eq!(fresh_dir(&base).unwrap(), base);
    fake_run(&base);
    assert_eq!(fresh_dir(&base).unwrap(), root.join("demo-2"));
    fake_run(&root.join("demo-2"));
    assert_eq!(fresh_dir(&base).unwrap(), root.join("demo-3"));
    // A sibling holding only the user's files is fresh: it holds no run.
    fs::create_dir_all(root.join("demo-3")).unwrap();
    fs::write(root.join("demo-3/notes.txt"), "mine").unwrap();
    assert_eq!(fresh_dir(&base).unwrap(), root.join("demo-3"));
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn resume_picks_the_sibling_checkpointed_last() {
    let root = scratch("newest");
    let base = root.join("demo");
    assert_eq!(newest_checkpointed(&base).unwrap(), None);
    fake_run(&base);
    assert_eq!(newest_checkpointed(&base).unwrap(), Some(base.clone()));
    for name in ["demo-2", "demo-10", "demo-connect4", "demo-02"] {
        fake_run(&root.join(name));
    }
    let set = |name: &str, seconds: u64| {
        let latest = fs::File::options().write(true).open(root.join(name).join("checkpoints/latest")).unwrap();
        latest.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)).unwrap();
    };
    // demo-connect4 and demo-02 are not the demo's siblings, however new.
    for (name, seconds) in [("demo", 300), ("demo-2", 500), ("demo-10", 400), ("demo-connect4", 900), ("demo-02", 900)]
    {
        set(name, seconds);
    }
    assert_eq!(newest_checkpointed(&base).unwrap(), Some(root.join("demo-2")));
    // A sibling without a checkpoint is not a candidate.
    fs::remove_dir_all(root.join("demo-2/checkpoints")).unwrap();
    assert_eq!(newest_checkpointed(&base).unwrap(), Some(root.join("demo-10")));
    fs::remove_dir_all(&root).unwrap();
}
