//! `CudaBackend` against the model's `CpuBackend` (f64) op by op: the GEMM layouts, the backward
//! kernels and the loss statistics, on odd shapes with poisoned outputs. `SKIP (no GPU)` without a GPU,
//! a failure under `SELFPLAY_REQUIRE_GPU=1`.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use selfplay_model::backend::{AttnShape, AttnSpan, Gemm};
use selfplay_model::{Backend, CpuBackend};

use crate::CudaBackend;

fn backend() -> Option<CudaBackend> {
    let required = std::env::var("SELFPLAY_REQUIRE_GPU").is_ok_and(|v| v == "1");
    match CudaBackend::new(0) {
        Ok(b) => Some(b),
        Err(err) => {
            assert!(!required, "SELFPLAY_REQUIRE_GPU=1 but the GPU is unusable: {err}");
            println!("SKIP (no GPU): {err}");
            None
        }
    }
}

fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.next_u32() as f32 / u32::MAX as f32 * 2.0 - 1.0).collect()
}

fn wide(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn fetch(b: &CudaBackend, buf: &cudarc::driver::CudaSlice<f32>) -> Vec<f64> {
    let mut out = vec![0.0f32; buf.len()];
    b.download(buf, &mut out).unwrap();
    wide(&out)
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: got {g}, want {w}");
    }
}

/// Uploads the same starting values to both backends (for ops that accumulate).
fn pair(b: &CudaBackend, v: &[f32]) -> (cudarc::driver::CudaSlice<f32>, Vec<f64>) {
    (b.upload(v).unwrap(), wide(v))
}

#[test]
fn gemm_layouts_match_cpu() {
    let Some(b) = backend() else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (m, n, k) in [(1, 1, 1), (7, 13, 5), (33, 17, 65)] {
        for (trans_a, trans_b, accumulate) in
            [(false, false, false), (false, true, false), (true, false, true), (true, true, true)]
        {
            let g = Gemm { m, n, k, trans_a, trans_b, accumulate };
            let (a, b_host, c0) = (random(&mut rng, m * k), random(&mut rng, k * n), random(&mut rng, m * n));
            let (da, db) = (b.upload(&a).unwrap(), b.upload(&b_host).unwrap());
            let (mut dc, mut want) = pair(&b, &c0);
            b.gemm(g, &da, &db, &mut dc).unwrap();
            Backend::<f64>::gemm(&CpuBackend, g, &wide(&a), &wide(&b_host), &mut want).unwrap();
            assert_close(&format!("gemm {g:?}"), &fetch(&b, &dc), &want, 1e-5);
        }
    }
}

#[test]
fn backward_ops_match_cpu() {
    let Some(b) = backend() else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let cpu = CpuBackend;
    let (rows, dim, vocab) = (5, 37, 11);

    // Embedding backward with a repeated id (atomic accumulation).
    let ids = [3u32, 7, 3, 0, 10];
    let d_out = random(&mut rng, rows * dim);
    let (mut dt, mut want) = pair(&b, &random(&mut rng, vocab * dim));
    b.embedding_backward(&b.upload(&d_out).unwrap(), &ids, dim, &mut dt).unwrap();
    Backend::<f64>::embedding_backward(&cpu, &wide(&d_out), &ids, dim, &mut want).unwrap();
    assert_close("embedding_backward", &fetch(&b, &dt), &want, 1e-5);

    // RMSNorm forward then backward.
    let (x, w, dy) = (random(&mut rng, rows * dim), random(&mut rng, dim), random(&mut rng, rows * dim));
    let (dx, dw) = (b.upload(&x).unwrap(), b.upload(&w).unwrap());
    let (mut out, mut inv) = (b.zeros(rows * dim).unwrap(), b.zeros(rows).unwrap());
    b.rms_norm(&dx, &dw, 1e-5, dim, &mut out, &mut inv).unwrap();
    let (mut out_c, mut inv_c) = (vec![0.0; rows * dim], vec![0.0; rows]);
    Backend::<f64>::rms_norm(&cpu, &wide(&x), &wide(&w), 1e-5, dim, &mut out_c, &mut inv_c).unwrap();
    assert_close("rms_norm", &fetch(&b, &out), &out_c, 1e-5);
    let (mut gx, mut gx_c) = pair(&b, &random(&mut rng, rows * dim));
    let (mut gw, mut gw_c) = pair(&b, &random(&mut rng, dim));
    b.rms_norm_backward(&b.upload(&dy).unwrap(), &dx, &dw, &inv, dim, &mut gx, &mut gw).unwrap();
    Backend::<f64>::rms_norm_backward(&cpu, &wide(&dy), &wide(&x), &wide(&w), &inv_c, dim, &mut gx_c, &mut gw_c)
        .unwrap();
    assert_close("rms_norm_backward d_x", &fetch(&b, &gx), &gx_c, 1e-5);
    assert_close("rms_norm_backward d_w", &fetch(&b, &gw), &gw_c, 1e-5);

    // SwiGLU backward (written, not added: outputs start poisoned).
    let (gate, up) = (random(&mut rng, rows * dim), random(&mut rng, rows * dim));
    let (mut dg, mut du) =
        (b.upload(&vec![f32::NAN; rows * dim]).unwrap(), b.upload(&vec![f32::NAN; rows * dim]).unwrap());
    b.swiglu_backward(&b.upload(&gate).unwrap(), &b.upload(&up).unwrap(), &b.upload(&dy).unwrap(), &mut dg, &mut du)
        .unwrap();
    let (mut dg_c, mut du_c) = (vec![0.0; rows * dim], vec![0.0; rows * dim]);
    Backend::<f64>::swiglu_backward(&cpu, &wide(&gate), &wide(&up), &wide(&dy), &mut dg_c, &mut du_c).unwrap();
    assert_close("swiglu_backward d_gate", &fetch(&b, &dg), &dg_c, 1e-5);
    assert_close("swiglu_backward d_up", &fetch(&b, &du), &du_c, 1e-5);

    // Bias backward.
    let (mut db, mut db_c) = pair(&b, &random(&mut rng, dim));
    b.bias_backward(&b.upload(&dy).unwrap(), dim, &mut db).unwrap();
    Backend::<f64>::bias_backward(&cpu, &wide(&dy), dim, &mut db_c).unwrap();
    assert_close("bias_backward", &fetch(&b, &db), &db_c, 1e-5);

    // Log-softmax statistics and backward over a wide odd vocabulary.
    let v = 3001;
    let logits: Vec<f32> = random(&mut rng, rows * v).iter().map(|x| x * 8.0).collect();
    let dl = b.upload(&logits).unwrap();
    let (mut lse, mut ent) = (b.upload(&vec![f32::NAN; rows]).unwrap(), b.upload(&vec![f32::NAN; rows]).unwrap());
    b.log_softmax_stats(&dl, v, &mut lse, &mut ent).unwrap();
    let (mut lse_c, mut ent_c) = (vec![0.0; rows], vec![0.0; rows]);
    Backend::<f64>::log_softmax_stats(&cpu, &wide(&logits), v, &mut lse_c, &mut ent_c).unwrap();
    assert_close("lse", &fetch(&b, &lse), &lse_c, 1e-5);
    assert_close("entropy", &fetch(&b, &ent), &ent_c, 1e-5);
    let targets = [0u32, 3000, 17, 17, 1500];
    let (dlp, dent) = (random(&mut rng, rows), random(&mut rng, rows));
    let mut dlog = b.upload(&vec![f32::NAN; rows * v]).unwrap();
    b.log_softmax_backward(&dl, &lse, &ent, &targets, &b.upload(&dlp).unwrap(), &b.upload(&dent).unwrap(), &mut dlog)
        .unwrap();
    let mut dlog_c = vec![0.0; rows * v];
    Backend::<f64>::log_softmax_backward(
        &cpu,
        &wide(&logits),
        &lse_c,
        &ent_c,
        &targets,
        &wide(&dlp),
        &wide(&dent),
        &mut dlog_c,
    )
    .unwrap();
    assert_close("log_softmax_backward", &fetch(&b, &dlog), &dlog_c, 1e-5);
}

#[test]
fn attention_backward_matches_cpu() {
    let Some(b) = backend() else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let cpu = CpuBackend;
    for shape in [AttnShape { heads: 4, kv_heads: 2, head_dim: 24 }, AttnShape { heads: 3, kv_heads: 3, head_dim: 128 }]
    {
        let spans = [
            AttnSpan { q_start: 0, q_len: 9, kv_start: 0, kv_len: 9 },
            AttnSpan { q_start: 9, q_len: 1, kv_start: 9, kv_len: 1 },
            AttnSpan { q_start: 10, q_len: 4, kv_start: 10, kv_len: 20 },
        ];
        let (q_rows, kv_rows) = (14, 30);
        let (qw, kw) = (shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim);
        let (q, k, v, dy) = (
            random(&mut rng, q_rows * qw),
            random(&mut rng, kv_rows * kw),
            random(&mut rng, kv_rows * kw),
            random(&mut rng, q_rows * qw),
        );
        let (dq_, dk_, dv_) = (b.upload(&q).unwrap(), b.upload(&k).unwrap(), b.upload(&v).unwrap());
        let (mut out, mut lse) = (b.zeros(q_rows * qw).unwrap(), b.zeros(q_rows * shape.heads).unwrap());
        b.attention(&dq_, &dk_, &dv_, &spans, shape, &mut out, Some(&mut lse)).unwrap();
        let (mut out_c, mut lse_c) = (vec![0.0; q_rows * qw], vec![0.0; q_rows * shape.heads]);
        Backend::<f64>::attention(&cpu, &wide(&q), &wide(&k), &wide(&v), &spans, shape, &mut out_c, Some(&mut lse_c))
            .unwrap();
        assert_close("attention", &fetch(&b, &out), &out_c, 1e-5);
        let (mut gq, mut gq_c) = pair(&b, &random(&mut rng, q_rows * qw));
        let (mut gk, mut gk_c) = pair(&b, &random(&mut rng, kv_rows * kw));
        let (mut gv, mut gv_c) = pair(&b, &random(&mut rng, kv_rows * kw));
        b.attention_backward(
            &dq_,
            &dk_,
            &dv_,
            &out,
            &b.upload(&dy).unwrap(),
            &lse,
            &spans,
            shape,
            &mut gq,
            &mut gk,
            &mut gv,
        )
        .unwrap();
        Backend::<f64>::attention_backward(
            &cpu,
            &wide(&q),
            &wide(&k),
            &wide(&v),
            &out_c,
            &wide(&dy),
            &lse_c,
            &spans,
            shape,
            &mut gq_c,
            &mut gk_c,
            &mut gv_c,
        )
        .unwrap();
        assert_close("attention_backward d_q", &fetch(&b, &gq), &gq_c, 1e-4);
        assert_close("attention_backward d_k", &fetch(&b, &gk), &gk_c, 1e-4);
        assert_close("attention_backward d_v", &fetch(&b, &gv), &gv_c, 1e-4);
    }
}

/// Arguments a kernel refuses come back as the op's `BackendError` with the typed `KernelError` inside,
/// never as a panic: the same path a launch failure takes.
#[test]
fn refused_arguments_are_backend_errors() {
    let Some(b) = backend() else { return };
    let invalid = |err: selfplay_model::backend::BackendError, op: &str| {
        assert_eq!(err.op, op);
        assert!(matches!(err.downcast_ref::<crate::KernelError>(), Some(crate::KernelError::Invalid { .. })), "{err}");
        assert!(matches!(selfplay_model::ModelError::from(err), selfplay_model::ModelError::Backend(_)));
    };
    let buf = b.upload(&[1.0, 2.0, 3.0, 4.0]).unwrap();
    let mut short = [0.0f32; 3];
    invalid(b.download(&buf, &mut short).unwrap_err(), "download");
    let mut dst = b.zeros(2).unwrap();
    invalid(b.copy_rows(&buf, 1, &mut dst, 0, 2, 2).unwrap_err(), "copy_rows");
    let mut x = b.zeros(6).unwrap();
    invalid(b.add_bias(&mut x, &buf, 3).unwrap_err(), "add_bias");
    let shape = AttnShape { heads: 3, kv_heads: 2, head_dim: 2 };
    let spans = [AttnSpan { q_start: 0, q_len: 1, kv_start: 0, kv_len: 1 }];
    let mut out = b.zeros(6).unwrap();
    invalid(b.attention(&x, &buf, &buf, &spans, shape, &mut out, None).unwrap_err(), "attention");
}

/// The paged ops the model's KV cache uses (`paged_attention`, `copy_rows_within`; the trait's
/// gather-based defaults on this backend) against the CPU's in-place versions, on shuffled block tables.
#[test]
fn paged_cache_ops_match_cpu() {
    use selfplay_kvcache::BlockId;
    use selfplay_model::backend::PagedSpan;
    let Some(b) = backend() else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let shape = AttnShape { heads: 4, kv_heads: 2, head_dim: 8 };
    let (qw, kw, bs) = (32, 16, 4);
    let (q, k_pool, v_pool) = (random(&mut rng, 9 * qw), random(&mut rng, 8 * bs * kw), random(&mut rng, 8 * bs * kw));
    let tables = [vec![BlockId(5), BlockId(2), BlockId(7)], vec![BlockId(0)], vec![BlockId(3), BlockId(6)]];
    let spans = [
        PagedSpan { q_start: 0, q_len: 6, kv_len: 10, blocks: &tables[0] },
        PagedSpan { q_start: 6, q_len: 1, kv_len: 3, blocks: &tables[1] },
        PagedSpan { q_start: 7, q_len: 2, kv_len: 8, blocks: &tables[2] },
    ];
    let (dq, dk, dv) = (b.upload(&q).unwrap(), b.upload(&k_pool).unwrap(), b.upload(&v_pool).unwrap());
    let (mut out, mut lse) = (b.upload(&vec![f32::NAN; 9 * qw]).unwrap(), b.upload(&[f32::NAN; 9 * 4]).unwrap());
    b.paged_attention(&dq, &dk, &dv, &spans, bs, shape, &mut out, Some(&mut lse)).unwrap();
    let (mut out_c, mut lse_c) = (vec![0.0f64; 9 * qw], vec![0.0f64; 9 * 4]);
    let (qc, kc, vc) = (wide(&q), wide(&k_pool), wide(&v_pool));
    Backend::<f64>::paged_attention(&CpuBackend, &qc, &kc, &vc, &spans, bs, shape, &mut out_c, Some(&mut lse_c))
        .unwrap();
    assert_close("paged_attention out", &fetch(&b, &out), &out_c, 1e-5);
    assert_close("paged_attention lse", &fetch(&b, &lse), &lse_c, 1e-5);
    // Without lse the device's paged kernels run (prefill spans here; then one query per span, the
    // decode kernel): the same outputs.
    let mut out = b.upload(&vec![f32::NAN; 9 * qw]).unwrap();
    b.paged_attention(&dq, &dk, &dv, &spans, bs, shape, &mut out, None).unwrap();
    assert_close("paged_attention out (paged kernels)", &fetch(&b, &out), &out_c, 1e-5);
    let decode: Vec<PagedSpan<'_>> =
        spans.iter().enumerate().map(|(i, s)| PagedSpan { q_start: i, q_len: 1, ..*s }).collect();
    let mut out = b.upload(&vec![f32::NAN; 3 * qw]).unwrap();
    let dq3 = b.upload(&q[..3 * qw]).unwrap();
    b.paged_attention(&dq3, &dk, &dv, &decode, bs, shape, &mut out, None).unwrap();
    let mut out_c = vec![0.0f64; 3 * qw];
    Backend::<f64>::paged_attention(&CpuBackend, &qc[..3 * qw], &kc, &vc, &decode, bs, shape, &mut out_c, None)
        .unwrap();
    assert_close("paged_attention out (decode kernel)", &fetch(&b, &out), &out_c, 1e-5);
    let mut pool = b.upload(&k_pool).unwrap();
    b.copy_rows_within(&mut pool, 4, 20, 4, kw).unwrap();
    let mut want = kc;
    Backend::<f64>::copy_rows_within(&CpuBackend, &mut want, 4, 20, 4, kw).unwrap();
    assert_close("copy_rows_within", &fetch(&b, &pool), &want, 0.0);
}
