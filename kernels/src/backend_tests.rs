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
    b.download(buf, &mut out);
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
    (b.upload(v), wide(v))
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
            let (da, db) = (b.upload(&a), b.upload(&b_host));
            let (mut dc, mut want) = pair(&b, &c0);
            b.gemm(g, &da, &db, &mut dc);
            Backend::<f64>::gemm(&CpuBackend, g, &wide(&a), &wide(&b_host), &mut want);
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
    b.embedding_backward(&b.upload(&d_out), &ids, dim, &mut dt);
    Backend::<f64>::embedding_backward(&cpu, &wide(&d_out), &ids, dim, &mut want);
    assert_close("embedding_backward", &fetch(&b, &dt), &want, 1e-5);

    // RMSNorm forward then backward.
    let (x, w, dy) = (random(&mut rng, rows * dim), random(&mut rng, dim), random(&mut rng, rows * dim));
    let (dx, dw) = (b.upload(&x), b.upload(&w));
    let (mut out, mut inv) = (b.zeros(rows * dim), b.zeros(rows));
    b.rms_norm(&dx, &dw, 1e-5, dim, &mut out, &mut inv);
    let (mut out_c, mut inv_c) = (vec![0.0; rows * dim], vec![0.0; rows]);
    Backend::<f64>::rms_norm(&cpu, &wide(&x), &wide(&w), 1e-5, dim, &mut out_c, &mut inv_c);
    assert_close("rms_norm", &fetch(&b, &out), &out_c, 1e-5);
    let (mut gx, mut gx_c) = pair(&b, &random(&mut rng, rows * dim));
    let (mut gw, mut gw_c) = pair(&b, &random(&mut rng, dim));
    b.rms_norm_backward(&b.upload(&dy), &dx, &dw, &inv, dim, &mut gx, &mut gw);
    Backend::<f64>::rms_norm_backward(&cpu, &wide(&dy), &wide(&x), &wide(&w), &inv_c, dim, &mut gx_c, &mut gw_c);
    assert_close("rms_norm_backward d_x", &fetch(&b, &gx), &gx_c, 1e-5);
    assert_close("rms_norm_backward d_w", &fetch(&b, &gw), &gw_c, 1e-5);

    // SwiGLU backward (written, not added: outputs start poisoned).
    let (gate, up) = (random(&mut rng, rows * dim), random(&mut rng, rows * dim));
    let (mut dg, mut du) = (b.upload(&vec![f32::NAN; rows * dim]), b.upload(&vec![f32::NAN; rows * dim]));
    b.swiglu_backward(&b.upload(&gate), &b.upload(&up), &b.upload(&dy), &mut dg, &mut du);
    let (mut dg_c, mut du_c) = (vec![0.0; rows * dim], vec![0.0; rows * dim]);
    Backend::<f64>::swiglu_backward(&cpu, &wide(&gate), &wide(&up), &wide(&dy), &mut dg_c, &mut du_c);
    assert_close("swiglu_backward d_gate", &fetch(&b, &dg), &dg_c, 1e-5);
    assert_close("swiglu_backward d_up", &fetch(&b, &du), &du_c, 1e-5);

    // Bias backward.
    let (mut db, mut db_c) = pair(&b, &random(&mut rng, dim));
    b.bias_backward(&b.upload(&dy), dim, &mut db);
    Backend::<f64>::bias_backward(&cpu, &wide(&dy), dim, &mut db_c);
    assert_close("bias_backward", &fetch(&b, &db), &db_c, 1e-5);

    // Log-softmax statistics and backward over a wide odd vocabulary.
    let v = 3001;
    let logits: Vec<f32> = random(&mut rng, rows * v).iter().map(|x| x * 8.0).collect();
    let dl = b.upload(&logits);
    let (mut lse, mut ent) = (b.upload(&vec![f32::NAN; rows]), b.upload(&vec![f32::NAN; rows]));
    b.log_softmax_stats(&dl, v, &mut lse, &mut ent);
    let (mut lse_c, mut ent_c) = (vec![0.0; rows], vec![0.0; rows]);
    Backend::<f64>::log_softmax_stats(&cpu, &wide(&logits), v, &mut lse_c, &mut ent_c);
    assert_close("lse", &fetch(&b, &lse), &lse_c, 1e-5);
    assert_close("entropy", &fetch(&b, &ent), &ent_c, 1e-5);
    let targets = [0u32, 3000, 17, 17, 1500];
    let (dlp, dent) = (random(&mut rng, rows), random(&mut rng, rows));
    let mut dlog = b.upload(&vec![f32::NAN; rows * v]);
    b.log_softmax_backward(&dl, &lse, &ent, &targets, &b.upload(&dlp), &b.upload(&dent), &mut dlog);
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
    );
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
        let (dq_, dk_, dv_) = (b.upload(&q), b.upload(&k), b.upload(&v));
        let (mut out, mut lse) = (b.zeros(q_rows * qw), b.zeros(q_rows * shape.heads));
        b.attention(&dq_, &dk_, &dv_, &spans, shape, &mut out, Some(&mut lse));
        let (mut out_c, mut lse_c) = (vec![0.0; q_rows * qw], vec![0.0; q_rows * shape.heads]);
        Backend::<f64>::attention(&cpu, &wide(&q), &wide(&k), &wide(&v), &spans, shape, &mut out_c, Some(&mut lse_c));
        assert_close("attention", &fetch(&b, &out), &out_c, 1e-5);
        let (mut gq, mut gq_c) = pair(&b, &random(&mut rng, q_rows * qw));
        let (mut gk, mut gk_c) = pair(&b, &random(&mut rng, kv_rows * kw));
        let (mut gv, mut gv_c) = pair(&b, &random(&mut rng, kv_rows * kw));
        b.attention_backward(&dq_, &dk_, &dv_, &out, &b.upload(&dy), &lse, &spans, shape, &mut gq, &mut gk, &mut gv);
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
        );
        assert_close("attention_backward d_q", &fetch(&b, &gq), &gq_c, 1e-4);
        assert_close("attention_backward d_k", &fetch(&b, &gk), &gk_c, 1e-4);
        assert_close("attention_backward d_v", &fetch(&b, &gv), &gv_c, 1e-4);
    }
}
