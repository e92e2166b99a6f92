//! Host-side paged KV bookkeeping: how many admissions, forks, appends and prefix matches per second.
//! Shaped like a GRPO step: a 512-token prompt, a group of 16 forks, each decoding 64 tokens.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use selfplay_kvcache::{KvCacheConfig, PagedKvCache};

const PROMPT: usize = 512;
const GROUP: usize = 16;
const DECODE: usize = 64;

fn prompt(salt: u32) -> Vec<u32> {
    (0..PROMPT as u32).map(|i| i.wrapping_mul(2_654_435_761) ^ salt).collect()
}

fn fresh_cache() -> PagedKvCache {
    PagedKvCache::new(KvCacheConfig::with_blocks(8192)).expect("valid config")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("kvcache");

    group.throughput(Throughput::Elements(1));
    group.bench_function("admit_512_cold_then_release", |b| {
        let mut kv = fresh_cache();
        let tokens = prompt(1);
        b.iter(|| {
            let seq = kv.admit(black_box(&tokens)).expect("fits").seq;
            kv.release(seq).expect("live");
        });
    });

    group.bench_function("admit_512_prefix_hit_then_release", |b| {
        let mut kv = fresh_cache();
        let tokens = prompt(2);
        let seed = kv.admit(&tokens).expect("fits").seq;
        kv.commit(seed).expect("live");
        b.iter(|| {
            let admission = kv.admit(black_box(&tokens)).expect("fits");
            assert_eq!(admission.cached_tokens, PROMPT - 16);
            kv.release(admission.seq).expect("live");
        });
    });

    group.throughput(Throughput::Elements((GROUP * DECODE) as u64));
    group.bench_function("grpo_group_fork16_decode64_tokens", |b| {
        let mut kv = fresh_cache();
        let tokens = prompt(3);
        b.iter(|| {
            let root = kv.admit(&tokens).expect("fits").seq;
            kv.commit(root).expect("live");
            let forks: Vec<_> = (0..GROUP).map(|_| kv.fork(root).expect("live")).collect();
            kv.release(root).expect("live");
            for step in 0..DECODE as u32 {
                for &seq in &forks {
                    black_box(kv.append(seq, &[step]).expect("fits"));
                }
            }
            for seq in forks {
                kv.release(seq).expect("live");
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
