//! `selfplay game train` and `selfplay train` under `mpirun -np 2`: the ranks check after every step that they
//! hold the same weights (the run fails otherwise), rank 0 writes the run, and the network ends within 1e-6
//! (relative to its largest weight) of one process's with the same global batch; a rank killed mid-run makes the
//! other exit non-zero within its timeout, and `--resume` then finishes the run exactly as an uninterrupted one.
//! Without the `mpi` feature or `mpirun` these print `SKIP (no MPI)` and pass, unless `SELFPLAY_REQUIRE_MPI=1`.

/// Passes with `SKIP (no MPI)`, or fails where MPI is required.
fn skip(reason: &str) {
    assert!(std::env::var("SELFPLAY_REQUIRE_MPI").as_deref() != Ok("1"), "SELFPLAY_REQUIRE_MPI=1 but {reason}");
    println!("SKIP (no MPI): {reason}");
}

#[cfg(not(feature = "mpi"))]
#[test]
fn data_parallel_runs_need_the_mpi_feature() {
    skip("selfplay was built without the `mpi` feature (cargo test -p selfplay --features mpi)");
}

#[cfg(feature = "mpi")]
mod under_mpirun {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output, Stdio};
    use std::time::{Duration, Instant};

    use selfplay_engine::alphazero::AlphaZeroConfig;
    use selfplay_engine::o1::RunConfig;
    use selfplay_model::ModelDir;

    use super::skip;

    fn selfplay() -> Command {
        Command::new(env!("CARGO_BIN_EXE_selfplay"))
    }

    /// `mpirun -np ranks selfplay`, with what Open MPI needs here (more ranks than cores, running as root);
    /// `None` without `mpirun`.
    fn mpirun(ranks: usize) -> Option<Command> {
        let version = Command::new("mpirun").arg("--version").output().ok()?;
        let mut mpirun = Command::new("mpirun");
        if String::from_utf8_lossy(&version.stdout).contains("Open MPI") {
            mpirun.arg("--oversubscribe").env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        }
        mpirun.args(["-np", &ranks.to_string(), env!("CARGO_BIN_EXE_selfplay")]);
        Some(mpirun)
    }

    fn succeeds(mut command: Command) -> Output {
        let out = command.output().unwrap();
        assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("selfplay-cli-mpi-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The largest difference between the networks in `a` and `b`, relative to `b`'s largest weight.
    fn difference(a: &Path, b: &Path) -> f32 {
        let (a, b) = (ModelDir::load(a).unwrap().weights, ModelDir::load(b).unwrap().weights);
        let scale = b.as_flat().iter().fold(0.0f32, |m, x| m.max(x.abs()));
        a.as_flat().iter().zip(b.as_flat()).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
    }

    /// Runs `selfplay <args(dir/one)>` as one process, then `mpirun -np 2 selfplay <args(dir/two)>`; rank 0's
    /// output, or `None` without `mpirun`.
    fn one_then_two(dir: &Path, args: impl Fn(&Path) -> Vec<String>) -> Option<Output> {
        let mut two = mpirun(2)?;
        let mut one = selfplay();
        one.args(args(&dir.join("one")));
        succeeds(one);
        two.args(args(&dir.join("two")));
        Some(succeeds(two))
    }

    fn lines(path: &Path) -> usize {
        std::fs::read_to_string(path).unwrap().lines().count()
    }

    #[test]
    fn self_play_over_two_ranks_ends_where_one_process_ends() {
        let dir = scratch("game");
        let config = dir.join("tiny.toml");
        std::fs::write(&config, AlphaZeroConfig::tiny().to_toml().unwrap()).unwrap();
        let args = |out: &Path| {
            let (config, out) = (config.display().to_string(), out.display().to_string());
            ["game", "train", "--game", "tic-tac-toe", "--config", &config, "--out", &out].map(String::from).to_vec()
        };
        let Some(out) = one_then_two(&dir, args) else { return skip("no mpirun on PATH") };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.lines().filter(|l| l.contains("self-play games")).count(),
            1,
            "rank 0 alone reports: {stdout}"
        );
        let d = difference(&dir.join("two/model"), &dir.join("one/model"));
        assert!(d < 1e-6, "two ranks' network differs from one process's by {d:e}");
        assert_eq!(lines(&dir.join("two/metrics.jsonl")), lines(&dir.join("one/metrics.jsonl")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_o1_loop_over_two_ranks_ends_where_one_process_ends() {
        let dir = scratch("o1");
        let config = dir.join("tiny.toml");
        let mut tiny = RunConfig::tiny();
        tiny.rl.prompts_per_step = 3;
        std::fs::write(&config, tiny.to_toml().unwrap()).unwrap();
        let args = |out: &Path| {
            ["train", "--config", &config.display().to_string(), "--out", &out.display().to_string()]
                .map(String::from)
                .to_vec()
        };
        if one_then_two(&dir, args).is_none() {
            return skip("no mpirun on PATH");
        }
        for model in ["sft_model", "model"] {
            let d = difference(&dir.join("two").join(model), &dir.join("one").join(model));
            assert!(d < 1e-6, "{model}: two ranks' network differs from one process's by {d:e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The process of rank `rank` running into `out`, found by its environment and command line.
    fn rank_pid(rank: usize, out: &Path) -> Option<u32> {
        let wanted = format!("OMPI_COMM_WORLD_RANK={rank}");
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let has = |bytes: &[u8], text: &str| bytes.split(|&b| b == 0).any(|part| part == text.as_bytes());
            (has(&cmdline, &out.display().to_string()) && has(&environ, &wanted)).then_some(pid)
        })
    }

    #[test]
    fn a_killed_rank_stops_the_run_and_resume_finishes_it() {
        let Some(mut launch) = mpirun(2) else { return skip("no mpirun on PATH") };
        if !Path::new("/proc/self/environ").exists() {
            return skip("no /proc to find a rank's process in");
        }
        let dir = scratch("kill");
        let mut settings = AlphaZeroConfig::tiny();
        (settings.iterations, settings.checkpoint.every, settings.arena.every) = (60, 1, 1000);
        let config = dir.join("long.toml");
        std::fs::write(&config, settings.to_toml().unwrap()).unwrap();
        let (killed, straight) = (dir.join("killed"), dir.join("straight"));
        let args = |out: &Path| {
            let (config, out) = (config.display().to_string(), out.display().to_string());
            ["game", "train", "--game", "tic-tac-toe", "--config", &config, "--out", &out, "--rank-timeout", "30"]
                .map(String::from)
        };
        launch.args(args(&killed)).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = launch.spawn().unwrap();
        // Wait for a few checkpoints, then kill rank 1 in the middle of the run.
        let latest = killed.join("checkpoints/latest");
        let started = Instant::now();
        while std::fs::read_to_string(&latest).map_or(true, |name| name.as_str() < "alphazero-0000003") {
            assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint after two minutes");
            assert!(child.try_wait().unwrap().is_none(), "the run ended before it was killed");
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = rank_pid(1, &killed).expect("rank 1's process");
        let killed_at = Instant::now();
        assert!(Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if killed_at.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("the run still ran a minute after rank 1 was killed");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!status.success(), "a run that lost a rank must fail");
        let name = std::fs::read_to_string(&latest).unwrap();
        assert!(name.as_str() < "alphazero-0000060", "the run finished before the kill: {name}");

        let mut resume = mpirun(2).unwrap();
        resume.args(args(&killed)).arg("--resume");
        succeeds(resume);
        let mut uninterrupted = mpirun(2).unwrap();
        uninterrupted.args(args(&straight));
        succeeds(uninterrupted);
        let weights = |d: &Path| std::fs::read(d.join("model/model.safetensors")).unwrap();
        assert!(weights(&killed) == weights(&straight), "the resumed run ended elsewhere than the uninterrupted one");
        assert_eq!(lines(&killed.join("metrics.jsonl")), 60);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
