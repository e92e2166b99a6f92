//! Counts heap allocations of one training step and one decode step after warm-up.
//!
//! A counting `#[global_allocator]` attributes every allocation made while a measurement is on to
//! either the model's own code or the backend's kernels: the model runs on `CountingBackend`, which
//! delegates every op to the CPU backend and marks the calling thread as inside the op
//! (`counting::inside_op`) for its duration. Everything runs in a local rayon pool of one thread, so every op (and any
//! parallel iterator inside it) runs on the thread that marks it, and `gemm` runs unthreaded.
//! Allocations on any other thread while measuring are counted too and reported, not asserted: the
//! test harness's own threads (printing a finished test's result) may allocate meanwhile. The tests of
//! this file take a lock so they never measure each other.
//!
//! After warm-up (the first step, which sizes every buffer and the kernels' per-thread scratch), a
//! training step allocates nothing at all, and neither does a decode step whose sequences reserved their
//! length in the KV cache's bookkeeping (`KvCache::reserve_tokens`, as `generate` does). A last test repeats both in a pool of two threads: the same bits,
//! and why its kernel counts are reported rather than asserted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use selfplay_model::backend::counting;
use selfplay_model::{Architecture, CountingBackend, Model, ModelConfig, ModelWeights, SequenceGrads, init_weights};

struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static MODEL: AtomicUsize = AtomicUsize::new(0);
static KERNELS: AtomicUsize = AtomicUsize::new(0);
static OTHER_THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread runs the measured code.
    static MEASURED: Cell<bool> = const { Cell::new(false) };
    /// A pool worker that only ever runs parallel tasks of backend ops (see `two_threads`).
    static KERNEL_WORKER: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let measured = MEASURED.try_with(Cell::get).unwrap_or(false);
    let counter = if !measured {
        &OTHER_THREADS
    } else if counting::inside_op() || KERNEL_WORKER.try_with(Cell::get).unwrap_or(false) {
        &KERNELS
    } else {
        &MODEL
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` unchanged; counting touches only atomics and
// const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by one measured closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Counts {
    /// By the model's own code (everything outside backend ops).
    model: usize,
    /// Inside the backend's ops (the CPU kernels).
    kernels: usize,
    /// On threads other than the measured one.
    other_threads: usize,
}

fn measure<R>(f: impl FnOnce() -> R) -> (R, Counts) {
    for c in [&MODEL, &KERNELS, &OTHER_THREADS] {
        c.store(0, Ordering::SeqCst);
    }
    MEASURED.with(|m| m.set(true));
    ON.store(true, Ordering::SeqCst);
    let r = f();
    ON.store(false, Ordering::SeqCst);
    MEASURED.with(|m| m.set(false));
    let counts = Counts {
        model: MODEL.load(Ordering::SeqCst),
        kernels: KERNELS.load(Ordering::SeqCst),
        other_threads: OTHER_THREADS.load(Ordering::SeqCst),
    };
    (r, counts)
}

/// The CPU backend with every op counted; while an op runs, `counting::inside_op()` is true on its thread.
type Counted = CountingBackend;

/// The tests of this file measure one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn cfg() -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Qwen2,
        vocab_size: 61,
        hidden_size: 32,
        intermediate_size: 48,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 8,
        rms_norm_eps: 1e-6,
        rope_theta: 10000.0,
        max_position_embeddings: 128,
        tie_word_embeddings: false,
        attention_bias: true,
        o_proj_bias: false,
        bos_token_id: None,
        eos_token_id: None,
    }
}

fn model() -> Model<Counted> {
    let c = cfg();
    let w = init_weights(&c, 0.1, 11).unwrap();
    Model::with_backend(c, w, CountingBackend::default()).unwrap()
}

fn one_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(f)
}

/// Runs `f` in a local pool of two threads, where every allocation the second worker makes while a
/// measurement is on counts as a kernel's: the model's own code never runs in parallel, so that
/// worker only ever runs parallel tasks of backend ops.
fn two_threads<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .start_handler(|_| {
            MEASURED.with(|m| m.set(true));
            KERNEL_WORKER.with(|k| k.set(true));
        })
        .build()
        .unwrap();
    pool.install(|| {
        // The worker running `f` is the measured thread, marked by `measure` and `Counted` as usual.
        MEASURED.with(|m| m.set(false));
        KERNEL_WORKER.with(|k| k.set(false));
        f()
    })
}

fn sequences() -> Vec<Vec<u32>> {
    vec![(0..23).map(|i| (i * 7 + 3) % 61).collect(), (0..17).map(|i| (i * 5 + 1) % 61).collect(), vec![4, 9, 2]]
}

/// FNV-1a over the bits of every value (a fingerprint for comparing runs bit for bit).
fn fingerprint<'a>(values: impl IntoIterator<Item = &'a f32>) -> u64 {
    values.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, x| (h ^ u64::from(x.to_bits())).wrapping_mul(0x100_0000_01b3))
}

/// One training step's allocations, phase by phase.
#[derive(Debug, Default)]
struct TrainCounts {
    zero_grads: Counts,
    forward: Counts,
    stats: Counts,
    backward: Counts,
    recycle: Counts,
}

/// Per-sequence loss-gradient buffers, reused across steps.
struct LossBufs {
    d_logprobs: Vec<Vec<f32>>,
    d_entropies: Vec<Vec<f32>>,
    d_values: Vec<Vec<f32>>,
    d_logits: Vec<f32>,
}

impl LossBufs {
    fn new(seqs: &[Vec<u32>], vocab: usize) -> Self {
        LossBufs {
            d_logprobs: seqs.iter().map(|s| vec![0.0; s.len() - 1]).collect(),
            d_entropies: seqs.iter().map(|s| vec![0.0; s.len() - 1]).collect(),
            d_values: seqs.iter().map(|s| vec![0.0; s.len()]).collect(),
            d_logits: vec![0.0; seqs[2].len() * vocab],
        }
    }
}

/// A loss with every kind of term: cross-entropy, an entropy bonus, value regression to 0.5, and
/// (on the last sequence) a term written in the logits.
fn loss_grads(stats: &[selfplay_model::TokenStats], logits: &[f32], bufs: &mut LossBufs) {
    for (i, s) in stats.iter().enumerate() {
        let n = s.logprobs.len() as f32;
        bufs.d_logprobs[i].iter_mut().for_each(|d| *d = -1.0 / n);
        bufs.d_entropies[i].iter_mut().zip(&s.entropies).for_each(|(d, &e)| *d = -0.01 * e.signum());
        bufs.d_values[i].iter_mut().zip(&s.values).for_each(|(d, &v)| *d = v - 0.5);
    }
    bufs.d_logits.iter_mut().zip(logits).for_each(|(d, &z)| *d = 0.001 * z);
}

fn seq_grads(bufs: &LossBufs) -> [SequenceGrads<'_>; 3] {
    std::array::from_fn(|i| SequenceGrads {
        d_logprobs: &bufs.d_logprobs[i],
        d_entropies: Some(&bufs.d_entropies[i]),
        d_values: Some(&bufs.d_values[i]),
        d_logits: (i == 2).then_some(bufs.d_logits.as_slice()),
    })
}

/// One training step through the allocating API (a fresh gradient buffer, fresh statistics);
/// returns its counts and a fingerprint of the logits, statistics and gradient.
fn train_step_allocating(
    model: &Model<Counted>,
    batch: &[&[u32]],
    grads: &mut ModelWeights,
    bufs: &mut LossBufs,
) -> (TrainCounts, u64) {
    let mut c = TrainCounts::default();
    let zeroed;
    (zeroed, c.zero_grads) = measure(|| grads.zeros_like());
    *grads = zeroed;
    let pass;
    (pass, c.forward) = measure(|| model.forward_train(batch).unwrap());
    let stats;
    (stats, c.stats) = measure(|| pass.token_stats());
    loss_grads(&stats, pass.seq_logits(2).unwrap(), bufs);
    let g = seq_grads(bufs);
    ((), c.backward) = measure(|| model.backward(&pass, &g, grads).unwrap());
    let mut bits: Vec<f32> = (0..3).flat_map(|i| pass.seq_logits(i).unwrap().to_vec()).collect();
    bits.extend(stats.iter().flat_map(|s| s.logprobs.iter().chain(&s.entropies).chain(&s.values)));
    grads.for_each(|_, t| bits.extend_from_slice(t));
    ((), c.recycle) = measure(|| model.recycle(pass));
    (c, fingerprint(&bits))
}

/// One training step in reused buffers: the gradient zeroed in place, statistics into `stats`.
fn train_step(
    model: &Model<Counted>,
    batch: &[&[u32]],
    grads: &mut ModelWeights,
    stats: &mut Vec<selfplay_model::TokenStats>,
    bufs: &mut LossBufs,
) -> (TrainCounts, u64) {
    let mut c = TrainCounts::default();
    ((), c.zero_grads) = measure(|| grads.fill_zero());
    let pass;
    (pass, c.forward) = measure(|| model.forward_train(batch).unwrap());
    ((), c.stats) = measure(|| pass.token_stats_into(stats));
    loss_grads(stats, pass.seq_logits(2).unwrap(), bufs);
    let g = seq_grads(bufs);
    ((), c.backward) = measure(|| model.backward(&pass, &g, grads).unwrap());
    let mut bits: Vec<f32> = (0..3).flat_map(|i| pass.seq_logits(i).unwrap().to_vec()).collect();
    bits.extend(stats.iter().flat_map(|s| s.logprobs.iter().chain(&s.entropies).chain(&s.values)));
    grads.for_each(|_, t| bits.extend_from_slice(t));
    ((), c.recycle) = measure(|| model.recycle(pass));
    (c, fingerprint(&bits))
}

#[test]
fn training_step_allocates_nothing_after_warm_up() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    one_thread(|| {
        let seqs = sequences();
        let batch: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        // The allocating API on a fresh model: the reference numbers.
        let fresh = model();
        let mut grads = fresh.weights().zeros_like();
        let mut bufs = LossBufs::new(&seqs, fresh.config().vocab_size);
        let (counts, reference) = train_step_allocating(&fresh, &batch, &mut grads, &mut bufs);
        eprintln!("allocating API: {counts:?}");
        // A fresh gradient buffer is one allocation: every parameter's gradient lies in one buffer.
        assert_eq!(counts.zero_grads.model, 1, "{counts:?}");

        let model = model();
        let mut grads = model.weights().zeros_like();
        let mut stats = Vec::new();
        for step in 0..4 {
            let (c, print) = train_step(&model, &batch, &mut grads, &mut stats, &mut bufs);
            eprintln!("training step {step}: {c:?}");
            assert_eq!(print, reference, "step {step} computes the allocating API's numbers bit for bit");
            let phases = [c.zero_grads, c.forward, c.stats, c.backward, c.recycle];
            if step > 0 {
                assert!(phases.iter().all(|p| p.model == 0), "step {step} allocates in the model: {c:?}");
                assert!(phases.iter().all(|p| p.kernels == 0), "step {step} allocates in the kernels: {c:?}");
            }
        }
    });
}

#[test]
fn training_step_allocations() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    one_thread(|| {
        let model = model();
        let seqs = sequences();
        let batch: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        let mut grads = model.weights().zeros_like();
        let mut bufs = LossBufs::new(&seqs, model.config().vocab_size);
        let mut prints = Vec::new();
        for step in 0..4 {
            let (counts, print) = train_step_allocating(&model, &batch, &mut grads, &mut bufs);
            eprintln!("training step {step}: {counts:?}");
            prints.push(print);
        }
        eprintln!("training fingerprint {:016x}", prints[0]);
        assert!(prints.iter().all(|&p| p == prints[0]), "every step computes the same numbers");
    });
}

#[test]
fn decode_step_allocations() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    one_thread(|| {
        let model = model();
        let vocab = model.config().vocab_size;
        let mut cache = model.new_cache(32).unwrap();
        let seqs: Vec<_> = (0..3).map(|_| cache.add_sequence().unwrap()).collect();
        let prompts = sequences();
        let prompts: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
        let out = model.forward_cached(&mut cache, &seqs, &prompts).unwrap();
        let argmax = |row: &[f32]| {
            row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0 as u32
        };
        let mut next: [u32; 3] = std::array::from_fn(|i| {
            let len = prompts[i].len();
            argmax(&out[i].logits.data()[(len - 1) * vocab..])
        });
        let mut bits = Vec::new();
        for step in 0..16 {
            let tokens: [&[u32]; 3] = std::array::from_fn(|i| std::slice::from_ref(&next[i]));
            let (out, counts) = measure(|| model.forward_cached(&mut cache, &seqs, &tokens).unwrap());
            eprintln!("decode step {step}: {counts:?}");
            for (n, o) in next.iter_mut().zip(&out) {
                *n = argmax(o.logits.data());
                bits.extend_from_slice(o.logits.data());
                bits.extend_from_slice(&o.values);
            }
        }
        eprintln!("decode fingerprint {:016x}", fingerprint(&bits));
    });
}

#[test]
fn decode_step_allocates_nothing_after_warm_up() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    one_thread(|| {
        let model = model();
        let vocab = model.config().vocab_size;
        let prompts = sequences();
        let prompts: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
        // Two caches stepped alike: one through `forward_cached` (the reference), one through
        // `forward_cached_into`.
        let (mut a, mut b) = (model.new_cache(32).unwrap(), model.new_cache(32).unwrap());
        let seqs: Vec<_> = (0..3).map(|_| a.add_sequence().unwrap()).collect();
        let seqs_b: Vec<_> = (0..3).map(|_| b.add_sequence().unwrap()).collect();
        let mut out = selfplay_model::StepOutputs::default();
        let want = model.forward_cached(&mut a, &seqs, &prompts).unwrap();
        model.forward_cached_into(&mut b, &seqs_b, &prompts, &mut out).unwrap();
        // The decode's length is known: its bookkeeping is reserved up front.
        seqs_b.iter().for_each(|&s| b.reserve_tokens(s, 16).unwrap());
        let argmax = |row: &[f32]| {
            row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0 as u32
        };
        let mut next = [0u32; 3];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(w.logits.data(), out.logits(i).unwrap());
            assert_eq!(w.values, out.values(i).unwrap());
            next[i] = argmax(out.last_logits(i).unwrap());
            assert_eq!(next[i], argmax(&w.logits.data()[(prompts[i].len() - 1) * vocab..]));
        }
        for step in 0..16 {
            let tokens: [&[u32]; 3] = std::array::from_fn(|i| std::slice::from_ref(&next[i]));
            let want = model.forward_cached(&mut a, &seqs, &tokens).unwrap();
            let ((), counts) = measure(|| model.forward_cached_into(&mut b, &seqs_b, &tokens, &mut out).unwrap());
            eprintln!("decode step {step}: {counts:?}");
            for (i, (n, w)) in next.iter_mut().zip(&want).enumerate() {
                let got = out.last_logits(i).unwrap();
                assert!(w.logits.data().iter().zip(got).all(|(x, y)| x.to_bits() == y.to_bits()), "step {step}");
                assert_eq!(w.values, out.values(i).unwrap());
                *n = argmax(got);
            }
            if step > 0 {
                assert_eq!(counts.kernels, 0, "step {step}: {counts:?}");
                assert_eq!(counts.model, 0, "step {step}: {counts:?}");
            }
        }
    });
}

/// Decode steps through `forward_cached_into` after a prefill of [`sequences`], feeding back each
/// row's argmax; returns each step's counts and a fingerprint of every step's logits and values.
fn decode_into(model: &Model<Counted>, steps: usize) -> (Vec<Counts>, u64) {
    let prompts = sequences();
    let prompts: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    let mut cache = model.new_cache(32).unwrap();
    let seqs: Vec<_> = (0..3).map(|_| cache.add_sequence().unwrap()).collect();
    let mut out = selfplay_model::StepOutputs::default();
    model.forward_cached_into(&mut cache, &seqs, &prompts, &mut out).unwrap();
    seqs.iter().for_each(|&s| cache.reserve_tokens(s, steps).unwrap());
    let argmax = |row: &[f32]| {
        row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0 as u32
    };
    let mut next: [u32; 3] = std::array::from_fn(|i| argmax(out.last_logits(i).unwrap()));
    let (mut counts, mut bits) = (Vec::new(), Vec::new());
    for _ in 0..steps {
        let tokens: [&[u32]; 3] = std::array::from_fn(|i| std::slice::from_ref(&next[i]));
        let ((), c) = measure(|| model.forward_cached_into(&mut cache, &seqs, &tokens, &mut out).unwrap());
        counts.push(c);
        for (i, n) in next.iter_mut().enumerate() {
            bits.extend_from_slice(out.last_logits(i).unwrap());
            bits.extend_from_slice(out.values(i).unwrap());
            *n = argmax(out.last_logits(i).unwrap());
        }
    }
    (counts, fingerprint(&bits))
}

/// On two threads a training step and decode steps compute the bits they compute on one, and the
/// model's own code allocates nothing after warm-up (as on one thread: it never runs in parallel).
///
/// The kernels' allocations are printed, not asserted. Each thread keeps its own scratch, grown to the
/// largest task it has run, and rayon's work stealing decides which worker runs which task: on one
/// run the second worker may take an attention task of every size in the first step, on another only
/// in the fifth, or never. So the kernels' counts fall to zero once every worker has run the largest
/// task of each op, but not at a step fixed in advance, and a test asserting zero from a given step
/// would fail at random.
#[test]
fn two_threads_compute_the_same_bits() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let seqs = sequences();
    let batch: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
    let run = || {
        let model = model();
        let mut grads = model.weights().zeros_like();
        let mut stats = Vec::new();
        let mut bufs = LossBufs::new(&seqs, model.config().vocab_size);
        let train: Vec<_> = (0..4).map(|_| train_step(&model, &batch, &mut grads, &mut stats, &mut bufs)).collect();
        (train, decode_into(&model, 16))
    };
    let (train_one, (decode_one, decode_print_one)) = one_thread(run);
    let (train_two, (decode_two, decode_print_two)) = two_threads(run);
    for (step, ((_, one), (c, two))) in train_one.iter().zip(&train_two).enumerate() {
        eprintln!("two threads, training step {step}: {c:?}");
        assert_eq!(one, two, "training step {step} computes the one-thread bits");
        if step > 0 {
            let phases = [c.zero_grads, c.forward, c.stats, c.backward, c.recycle];
            assert!(phases.iter().all(|p| p.model == 0), "step {step} allocates in the model: {c:?}");
        }
    }
    assert_eq!(decode_print_one, decode_print_two, "decode steps compute the one-thread bits");
    for (step, c) in decode_two.iter().enumerate() {
        eprintln!("two threads, decode step {step}: {c:?}");
        if step > 0 {
            assert!(c.model <= 1, "decode step {step}: {c:?}");
        }
    }
    // On one thread the same run allocates nothing in the kernels after warm-up.
    assert!(decode_one.iter().skip(1).all(|c| c.kernels == 0), "{decode_one:?}");
}
