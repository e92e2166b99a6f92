//! `MpiCollective` across real processes: the crate's `mpi_check` program under `mpirun`. Without the `mpi` feature
//! or without `mpirun` on PATH these print `SKIP (no MPI)` and pass, unless `SELFPLAY_REQUIRE_MPI=1`.

/// Passes with `SKIP (no MPI)`, or fails where MPI is required.
fn skip(reason: &str) {
    assert!(std::env::var("SELFPLAY_REQUIRE_MPI").as_deref() != Ok("1"), "SELFPLAY_REQUIRE_MPI=1 but {reason}");
    println!("SKIP (no MPI): {reason}");
}

#[cfg(not(feature = "mpi"))]
#[test]
fn mpi_runs_need_the_mpi_feature() {
    skip("built without the `mpi` feature");
}

#[cfg(feature = "mpi")]
mod under_mpirun {
    use std::io::Read;
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use super::skip;

    /// Arguments `mpirun` needs here: Open MPI refuses more ranks than cores and running as root unless told.
    fn launcher() -> Option<Command> {
        let version = Command::new("mpirun").arg("--version").output().ok()?;
        let mut mpirun = Command::new("mpirun");
        if String::from_utf8_lossy(&version.stdout).contains("Open MPI") {
            mpirun.arg("--oversubscribe").env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        }
        Some(mpirun)
    }

    /// What a run of `mpi_check` left behind.
    struct Run {
        status: ExitStatus,
        stdout: String,
        stderr: String,
        took: Duration,
    }

    fn drain(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
        std::thread::spawn(move || {
            let mut text = String::new();
            // What could be read is kept; the status tells the rest.
            let _ = stream.read_to_string(&mut text);
            text
        })
    }

    /// `mpirun -np ranks mpi_check mode`, killed (and the test failed) if it outlives `limit`; `None` without `mpirun`.
    fn run(ranks: usize, mode: &str, limit: Duration) -> Option<Run> {
        let mut mpirun = launcher()?;
        let start = Instant::now();
        let mut child: Child = mpirun
            .args(["-np", &ranks.to_string(), env!("CARGO_BIN_EXE_mpi_check"), mode])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mpirun starts");
        let stdout = drain(child.stdout.take().expect("piped stdout"));
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        let status = loop {
            if let Some(status) = child.try_wait().expect("mpirun's status") {
                break status;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mpi_check {mode} still ran after {limit:?}: hung; stderr: {}", stderr.join().unwrap());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let took = start.elapsed();
        Some(Run { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap(), took })
    }

    #[test]
    fn every_operation_agrees_across_three_ranks() {
        let Some(run) = run(3, "check", Duration::from_secs(180)) else { return skip("mpirun is not on PATH") };
        assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
        for rank in 0..3 {
            assert!(run.stdout.contains(&format!("rank {rank}: check ok")), "{}", run.stdout);
        }
    }

    #[test]
    fn a_stalled_rank_ends_the_run_at_the_timeout() {
        let Some(run) = run(2, "stall", Duration::from_secs(60)) else { return skip("mpirun is not on PATH") };
        assert!(!run.status.success(), "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("error: rank 0: barrier waited more than 5 s for the other ranks; stopping"),
            "{}",
            run.stderr
        );
        assert!(run.took >= Duration::from_secs(5), "stopped after {:?}, before the timeout", run.took);
    }

    #[test]
    fn a_dead_rank_ends_the_run() {
        let Some(run) = run(2, "die", Duration::from_secs(60)) else { return skip("mpirun is not on PATH") };
        assert!(!run.status.success(), "{}\n{}", run.stdout, run.stderr);
        assert!(!run.stderr.contains("passed a barrier"), "{}", run.stderr);
    }
}
