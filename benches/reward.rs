//! Completions verified per second: the Countdown verifier on a realistic mix of completions (a third
//! correct solution traces, a third with a wrong final step, a third without an answer), and on one
//! adversarial megabyte completion (deep nesting inside the answer). Figures in `BENCHMARKS.md`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use selfplay_reward::{CountdownProblem, CountdownVerifier, Verifier};
use selfplay_tasks::{CountdownTask, Split, Task};

const COMPLETIONS: usize = 3000;

/// Problems and completions drawn once, deterministically.
fn workload() -> Vec<(CountdownProblem, String)> {
    let task = CountdownTask::default();
    let problems = task.generate(Split::Val, COMPLETIONS, 1).expect("generator works with defaults");
    problems
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let trace = task.solution_trace(&p).expect("generated problems are solvable");
            let completion = match i % 3 {
                0 => trace,
                // Same length and shape, wrong value: the last literal changed.
                1 => trace.replacen("</answer>", "+0</answer>", 1),
                _ => trace.replace("<answer>", "answer: "),
            };
            (p, completion)
        })
        .collect()
}

fn bench_verify(c: &mut Criterion) {
    let verifier = CountdownVerifier::default();
    let work = workload();
    let mut group = c.benchmark_group("reward/countdown_verify");
    group.throughput(Throughput::Elements(work.len() as u64));
    group.bench_function(format!("{COMPLETIONS}_mixed_completions"), |b| {
        b.iter(|| {
            let mut total = 0.0f32;
            for (problem, completion) in &work {
                total += verifier.verify(problem, black_box(completion.as_bytes())).value;
            }
            total
        })
    });
    group.finish();

    let mut hostile = String::from("<answer>");
    hostile.push_str(&"(".repeat(1 << 19));
    hostile.push('1');
    hostile.push_str(&")".repeat(1 << 19));
    hostile.push_str("</answer>");
    let problem = CountdownProblem { nums: vec![1], target: 1 };
    let mut group = c.benchmark_group("reward/countdown_verify_megabyte");
    group.throughput(Throughput::Bytes(hostile.len() as u64));
    group.sample_size(20);
    group.bench_function("nested_1MiB", |b| b.iter(|| verifier.verify(&problem, black_box(hostile.as_bytes()))));
    group.finish();
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
