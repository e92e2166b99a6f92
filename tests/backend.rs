//! The backend swaps through the whole loop: the o1 recipe run on a backend that counts every op and
//! delegates it to the CPU ends with the same report, models and metrics as the plain CPU run, and the counts
//! show every stage's work went through the wrapper.

use selfplay_e2e::tiny_run_config;
use selfplay_engine::engine::{RunStart, seeded_metrics};
use selfplay_engine::o1::{Outcome, Report, run, run_on};
use selfplay_model::{CountingBackend, CpuBackend};

fn finished(outcome: Outcome) -> Report {
    match outcome {
        Outcome::Finished(report) => Report { wall_seconds: 0.0, ..*report },
        Outcome::Interrupted { stage, step, .. } => panic!("stopped at {stage} {step} unasked"),
    }
}

#[test]
fn the_loop_on_a_counting_backend_matches_the_cpu_run() {
    let base = std::env::temp_dir().join(format!("selfplay-e2e-backend-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let config = tiny_run_config();
    let cpu = finished(run(&config, &base.join("cpu"), RunStart::New, &|_: &str, _| false).unwrap());

    let backend = CountingBackend::new(CpuBackend);
    let counted = finished(
        run_on(
            backend.clone(),
            &selfplay_collective::SingleProcess,
            &config,
            &base.join("counted"),
            RunStart::New,
            &|_: &str, _| false,
        )
        .unwrap(),
    );
    assert_eq!(counted, cpu);
    for file in ["model/model.safetensors", "sft_model/model.safetensors"] {
        let read = |run: &str| std::fs::read(base.join(run).join(file)).unwrap();
        assert!(read("cpu") == read("counted"), "{file} differs");
    }
    let metrics = |run: &str| seeded_metrics(&std::fs::read_to_string(base.join(run).join("metrics.jsonl")).unwrap());
    assert_eq!(metrics("cpu").unwrap(), metrics("counted").unwrap());

    // Training ran its backward on the wrapper and generation its paged attention (sampling draws on the host).
    let counts = backend.counts();
    for op in ["gemm", "attention_backward", "paged_attention", "log_softmax_backward"] {
        assert!(counts.get(op).copied().unwrap_or(0) > 0, "{op} never ran on the wrapper: {counts:?}");
    }
    std::fs::remove_dir_all(&base).unwrap();
}
