//! A backend failure anywhere in a forward or backward pass comes out of the driver as that op's
//! [`BackendError`] (and converts into [`ModelError::Backend`]), never as a panic or a silently
//! finished pass. [`FaultyBackend`] delegates to [`CpuBackend`] and fails the `n`-th op it is asked to
//! run, the way a device backend fails a launch; the test fails every op of a pass in turn. Since it
//! overrides only the required ops, it also runs the trait's default paged attention and in-buffer
//! copy (what a device backend without its own gets), checked here against the CPU's overrides.

use std::sync::atomic::{AtomicUsize, Ordering};

use selfplay_kvcache::SeqId;

use super::batch::PackedBatch;
use super::head::HeadGrads;
use super::params::Params;
use super::tests::{random_weights, tiny_config};
use super::{Activations, backward, forward};
use crate::backend::{AttnShape, AttnSpan, Backend, BackendError, BackendResult, CpuBackend, Gemm, RopeDirection};
use crate::error::ModelError;
use crate::kv_cache::KvCache;
use crate::model::Model;

/// The error a [`FaultyBackend`] injects.
#[derive(Debug, thiserror::Error)]
#[error("injected launch failure")]
struct InjectedFault;

/// Runs ops on the CPU and fails op number `fail_at` (counting from 0).
struct FaultyBackend {
    fail_at: usize,
    ops: AtomicUsize,
}

impl FaultyBackend {
    fn failing_at(fail_at: usize) -> Self {
        FaultyBackend { fail_at, ops: AtomicUsize::new(0) }
    }

    /// Counts one op and fails it if its turn has come.
    fn tick(&self, op: &'static str) -> BackendResult {
        if self.ops.fetch_add(1, Ordering::Relaxed) == self.fail_at {
            return Err(BackendError::new(op, InjectedFault));
        }
        Ok(())
    }
}

type B = [f32];

impl Backend<f32> for FaultyBackend {
    type Buf = [f32];
    type Owned = Vec<f32>;

    fn zeros(&self, len: usize) -> BackendResult<Vec<f32>> {
        self.tick("zeros")?;
        Backend::<f32>::zeros(&CpuBackend, len)
    }
    fn upload(&self, data: &[f32]) -> BackendResult<Vec<f32>> {
        self.tick("upload")?;
        CpuBackend.upload(data)
    }
    fn download(&self, buf: &B, out: &mut [f32]) -> BackendResult {
        self.tick("download")?;
        CpuBackend.download(buf, out)
    }
    fn fill_zero(&self, buf: &mut B) -> BackendResult {
        self.tick("fill_zero")?;
        CpuBackend.fill_zero(buf)
    }
    fn copy_rows(
        &self,
        src: &B,
        src_row: usize,
        dst: &mut B,
        dst_row: usize,
        rows: usize,
        cols: usize,
    ) -> BackendResult {
        self.tick("copy_rows")?;
        CpuBackend.copy_rows(src, src_row, dst, dst_row, rows, cols)
    }
    fn embedding(&self, table: &B, ids: &[u32], dim: usize, out: &mut B) -> BackendResult {
        self.tick("embedding")?;
        CpuBackend.embedding(table, ids, dim, out)
    }
    fn embedding_backward(&self, d_out: &B, ids: &[u32], dim: usize, d_table: &mut B) -> BackendResult {
        self.tick("embedding_backward")?;
        CpuBackend.embedding_backward(d_out, ids, dim, d_table)
    }
    fn gemm(&self, g: Gemm, a: &B, b: &B, c: &mut B) -> BackendResult {
        self.tick("gemm")?;
        CpuBackend.gemm(g, a, b, c)
    }
    fn add_bias(&self, x: &mut B, bias: &B, cols: usize) -> BackendResult {
        self.tick("add_bias")?;
        CpuBackend.add_bias(x, bias, cols)
    }
    fn bias_backward(&self, d_y: &B, cols: usize, d_bias: &mut B) -> BackendResult {
        self.tick("bias_backward")?;
        CpuBackend.bias_backward(d_y, cols, d_bias)
    }
    fn add(&self, x: &mut B, y: &B) -> BackendResult {
        self.tick("add")?;
        CpuBackend.add(x, y)
    }
    fn rms_norm(&self, x: &B, w: &B, eps: f64, cols: usize, out: &mut B, inv_rms: &mut B) -> BackendResult {
        self.tick("rms_norm")?;
        CpuBackend.rms_norm(x, w, eps, cols, out, inv_rms)
    }
    fn rms_norm_backward(
        &self,
        d_out: &B,
        x: &B,
        w: &B,
        inv_rms: &B,
        cols: usize,
        d_x: &mut B,
        d_w: &mut B,
    ) -> BackendResult {
        self.tick("rms_norm_backward")?;
        CpuBackend.rms_norm_backward(d_out, x, w, inv_rms, cols, d_x, d_w)
    }
    fn rope(
        &self,
        x: &mut B,
        positions: &[u32],
        heads: usize,
        head_dim: usize,
        theta: f64,
        direction: RopeDirection,
    ) -> BackendResult {
        self.tick("rope")?;
        CpuBackend.rope(x, positions, heads, head_dim, theta, direction)
    }
    fn attention(
        &self,
        q: &B,
        k: &B,
        v: &B,
        spans: &[AttnSpan],
        shape: AttnShape,
        out: &mut B,
        lse: Option<&mut B>,
    ) -> BackendResult {
        self.tick("attention")?;
        CpuBackend.attention(q, k, v, spans, shape, out, lse)
    }
    fn attention_backward(
        &self,
        q: &B,
        k: &B,
        v: &B,
        out: &B,
        d_out: &B,
        lse: &B,
        spans: &[AttnSpan],
        shape: AttnShape,
        d_q: &mut B,
        d_k: &mut B,
        d_v: &mut B,
    ) -> BackendResult {
        self.tick("attention_backward")?;
        CpuBackend.attention_backward(q, k, v, out, d_out, lse, spans, shape, d_q, d_k, d_v)
    }
    fn swiglu(&self, gate: &B, up: &B, out: &mut B) -> BackendResult {
        self.tick("swiglu")?;
        CpuBackend.swiglu(gate, up, out)
    }
    fn swiglu_backward(&self, gate: &B, up: &B, d_out: &B, d_gate: &mut B, d_up: &mut B) -> BackendResult {
        self.tick("swiglu_backward")?;
        CpuBackend.swiglu_backward(gate, up, d_out, d_gate, d_up)
    }
    fn log_softmax_stats(&self, logits: &B, vocab: usize, lse: &mut B, entropy: &mut B) -> BackendResult {
        self.tick("log_softmax_stats")?;
        CpuBackend.log_softmax_stats(logits, vocab, lse, entropy)
    }
    fn log_softmax_backward(
        &self,
        logits: &B,
        lse: &B,
        entropy: &B,
        targets: &[u32],
        d_logprob: &B,
        d_entropy: &B,
        d_logits: &mut B,
    ) -> BackendResult {
        self.tick("log_softmax_backward")?;
        CpuBackend.log_softmax_backward(logits, lse, entropy, targets, d_logprob, d_entropy, d_logits)
    }
}

/// One training step (activations, forward, backward) on `b`; `Ok` only if every op succeeded.
fn train_step(b: &FaultyBackend) -> BackendResult {
    match train_step_model(b) {
        Ok(()) => Ok(()),
        Err(ModelError::Backend(err)) => Err(err),
        Err(other) => panic!("not a backend error: {other}"),
    }
}

fn train_step_model(b: &FaultyBackend) -> Result<(), ModelError> {
    let cfg = tiny_config(false, true);
    let w = random_weights(&cfg, 1);
    let p = w.params();
    let batch = PackedBatch::new(&[&[1, 5, 2], &[4, 6]], cfg.vocab_size, cfg.max_position_embeddings).unwrap();
    let mut acts = Activations::new(b, &cfg, batch.rows(), true)?;
    forward(b, &cfg, &p, &batch, &mut acts, None)?;
    let rows = batch.rows();
    let (targets, ones) = (vec![0u32; rows], vec![1.0f32; rows]);
    let d_logits = vec![0.5f32; rows * cfg.vocab_size];
    let d = HeadGrads {
        targets: &targets,
        d_logprob: &ones[..],
        d_entropy: &ones[..],
        d_value: &ones[..],
        d_logits: Some(&d_logits[..]),
    };
    let mut grads = w.zeros_like();
    let mut g = grads.params_mut();
    backward(b, &cfg, &p, &batch, &acts, d, &mut g)
}

#[test]
fn every_failing_op_surfaces_as_a_typed_error() {
    let healthy = FaultyBackend::failing_at(usize::MAX);
    train_step(&healthy).unwrap();
    let total = healthy.ops.load(Ordering::Relaxed);
    assert!(total > 50, "a training step runs many ops, counted {total}");
    let mut failed_ops = std::collections::BTreeSet::new();
    for n in 0..total {
        let b = FaultyBackend::failing_at(n);
        let err = train_step(&b).expect_err("the injected fault must not be swallowed");
        assert!(err.downcast_ref::<InjectedFault>().is_some(), "op {n}: {err}");
        // The pass stops at the failure instead of running on with a broken buffer.
        assert_eq!(b.ops.load(Ordering::Relaxed), n + 1, "op {n} ({}) did not stop the pass", err.op);
        failed_ops.insert(err.op);
        let model_err = ModelError::from(err);
        assert!(matches!(model_err, ModelError::Backend(_)));
        assert!(model_err.to_string().contains("injected launch failure"), "{model_err}");
    }
    // Every op the driver uses was made to fail at least once.
    for op in ["zeros", "embedding", "gemm", "rms_norm", "rope", "attention", "swiglu", "log_softmax_stats"] {
        assert!(failed_ops.contains(op), "{op} never ran");
    }
    for op in ["log_softmax_backward", "attention_backward", "swiglu_backward", "rms_norm_backward"] {
        assert!(failed_ops.contains(op), "{op} never ran");
    }
}

/// The trait's default `paged_attention` (gather, then dense attention) and `copy_rows_within` agree
/// with the CPU backend's in-place versions.
#[test]
fn trait_defaults_match_the_cpu_overrides() {
    use selfplay_kvcache::BlockId;

    use crate::backend::PagedSpan;
    let plain = FaultyBackend::failing_at(usize::MAX);
    let shape = AttnShape { heads: 4, kv_heads: 2, head_dim: 3 };
    let (qw, kw, bs) = (12, 6, 4);
    let fill = |n: usize, salt: usize| {
        (0..n).map(|i| ((i * 7919 + salt * 31) % 101) as f32 / 50.0 - 1.0).collect::<Vec<f32>>()
    };
    let (q, k_pool, v_pool) = (fill(9 * qw, 1), fill(8 * bs * kw, 2), fill(8 * bs * kw, 3));
    let tables = [vec![BlockId(5), BlockId(2), BlockId(7)], vec![BlockId(0)], vec![BlockId(3), BlockId(6)]];
    let spans = [
        PagedSpan { q_start: 0, q_len: 6, kv_len: 10, blocks: &tables[0] },
        PagedSpan { q_start: 6, q_len: 1, kv_len: 3, blocks: &tables[1] },
        PagedSpan { q_start: 7, q_len: 2, kv_len: 8, blocks: &tables[2] },
    ];
    let run = |b: &dyn Fn(&mut [f32], &mut [f32]) -> BackendResult| {
        let (mut out, mut lse) = (vec![0.0f32; 9 * qw], vec![0.0f32; 9 * 4]);
        b(&mut out, &mut lse).unwrap();
        (out, lse)
    };
    let by_default = run(&|out, lse| plain.paged_attention(&q, &k_pool, &v_pool, &spans, bs, shape, out, Some(lse)));
    let by_cpu = run(&|out, lse| CpuBackend.paged_attention(&q, &k_pool, &v_pool, &spans, bs, shape, out, Some(lse)));
    for (a, b) in by_default.0.iter().chain(&by_default.1).zip(by_cpu.0.iter().chain(&by_cpu.1)) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
    let (mut a, mut b) = (k_pool.clone(), k_pool.clone());
    plain.copy_rows_within(&mut a, 4, 20, 4, kw).unwrap();
    Backend::<f32>::copy_rows_within(&CpuBackend, &mut b, 4, 20, 4, kw).unwrap();
    assert_eq!(a, b);
    assert_eq!(a[20 * kw..24 * kw], k_pool[4 * kw..8 * kw]);
}

/// One step through a paged cache on `b`: reserve (running copy-on-write copies), forward, commit.
fn cached_step(
    b: &FaultyBackend,
    p: &Params<&[f32]>,
    cache: &mut KvCache<f32, FaultyBackend>,
    seqs: &[SeqId],
    tokens: &[&[u32]],
) -> Result<Vec<f32>, ModelError> {
    let cfg = tiny_config(false, true);
    let context = seqs.iter().map(|&s| cache.len(s)).collect::<Result<Vec<_>, _>>()?;
    let batch = PackedBatch::with_context(tokens, &context, cfg.vocab_size, cfg.max_position_embeddings)?;
    let plan = cache.reserve(b, seqs, tokens)?;
    let spans = plan.paged_spans(&batch.spans);
    let mut acts = Activations::new(b, &cfg, batch.rows(), false)?;
    forward(b, &cfg, p, &batch, &mut acts, Some(cache.step(&plan, &spans)))?;
    cache.commit(seqs)?;
    Ok(acts.head.logits)
}

/// Prefill, fork, then a decode step that copies the shared partly filled block: the logits of the
/// decode step, or the first error.
fn prefill_fork_decode(b: &FaultyBackend) -> Result<Vec<f32>, ModelError> {
    let cfg = tiny_config(false, true);
    let w = random_weights(&cfg, 1);
    let p = w.params();
    let mut cache = KvCache::new(b, &cfg, 8, 2)?;
    let parent = cache.add_sequence()?;
    cached_step(b, &p, &mut cache, &[parent], &[&[1, 5, 2]])?;
    let child = cache.fork(parent)?;
    cached_step(b, &p, &mut cache, &[parent, child], &[&[4], &[6]])
}

/// The cached path on a backend that relies on the trait's defaults (gathered paged attention,
/// scratch block copies) gives the CPU model's logits, and a failure of any of its ops comes out as
/// `ModelError::Backend`.
#[test]
fn cached_steps_on_trait_defaults_match_the_cpu_and_fail_typed() {
    let healthy = FaultyBackend::failing_at(usize::MAX);
    let got = prefill_fork_decode(&healthy).unwrap();
    let cfg = tiny_config(false, true);
    let model = Model::new(cfg.clone(), random_weights(&cfg, 1)).unwrap();
    let mut cache = KvCache::new(&CpuBackend, &cfg, 8, 2).unwrap();
    let parent = cache.add_sequence().unwrap();
    model.forward_cached(&mut cache, &[parent], &[&[1, 5, 2]]).unwrap();
    let child = cache.fork(parent).unwrap();
    let want = model.forward_cached(&mut cache, &[parent, child], &[&[4], &[6]]).unwrap();
    let want: Vec<f32> = want.iter().flat_map(|o| o.logits.data().iter().copied()).collect();
    assert_eq!(got.len(), want.len());
    assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5), "{got:?} vs {want:?}");
    let total = healthy.ops.load(Ordering::Relaxed);
    for n in 0..total {
        let err = prefill_fork_decode(&FaultyBackend::failing_at(n)).expect_err("the injected fault must surface");
        assert!(matches!(&err, ModelError::Backend(e) if e.downcast_ref::<InjectedFault>().is_some()), "op {n}: {err}");
    }
}
