//! GPU kernels against CPU oracles on fresh random inputs of odd shapes, outputs poisoned with NaN first.
//! The dense ops are checked against selfplay-model's `CpuBackend` in f64; the paged, KV and sampling
//! kernels against `reference`. Without a GPU these print `SKIP (no GPU)` and pass, unless
//! `SELFPLAY_REQUIRE_GPU=1`, which makes a missing GPU (or NVRTC) a failure.

use cudarc::driver::CudaSlice;
use half::bf16;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use selfplay_kvcache::{BlockCopy, BlockId};
use selfplay_model::backend::{AttnShape, AttnSpan, RopeDirection};
use selfplay_model::{Backend, CpuBackend, SamplingParams};

use crate::ops::{DeviceKvPool, Element, KvGeometry, SampleRequest};
use crate::reference;
use crate::{GpuContext, KernelError};

fn gpu() -> Option<GpuContext> {
    let required = std::env::var("SELFPLAY_REQUIRE_GPU").is_ok_and(|v| v == "1");
    match GpuContext::new(0) {
        Ok(gpu) => Some(gpu),
        Err(err) => {
            assert!(!required, "SELFPLAY_REQUIRE_GPU=1 but the GPU is unusable: {err}");
            println!("SKIP (no GPU): {err}");
            None
        }
    }
}

fn random(rng: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| (rng.next_u32() as f32 / u32::MAX as f32 * 2.0 - 1.0) * scale).collect()
}

/// Uploads `data` rounded to `E`; returns the buffer and the rounded values in f64 (the oracle's input).
fn upload<E: Element>(gpu: &GpuContext, data: &[f32]) -> (CudaSlice<E>, Vec<f64>) {
    let rounded: Vec<E> = data.iter().map(|&v| E::from_f32(v)).collect();
    let values = rounded.iter().map(|v| f64::from(v.to_f32())).collect();
    (gpu.stream().clone_htod(&rounded).unwrap(), values)
}

fn poisoned<E: Element>(gpu: &GpuContext, n: usize) -> CudaSlice<E> {
    gpu.stream().clone_htod(&vec![E::from_f32(f32::NAN); n]).unwrap()
}

fn download<E: Element>(gpu: &GpuContext, buf: &CudaSlice<E>) -> Vec<f64> {
    gpu.stream().clone_dtoh(buf).unwrap().into_iter().map(|v| f64::from(v.to_f32())).collect()
}

/// f32 paths: 1e-5 relative; 16-bit storage: 1e-2 (one rounding of the output plus f32 accumulation).
fn tolerance<E: Element>() -> f64 {
    if E::SUFFIX == "f32" { 1e-5 } else { 1e-2 }
}

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: got {g}, want {w} (tol {tol})");
    }
}

fn cpu() -> CpuBackend {
    CpuBackend
}

fn check_embedding<E: Element>(gpu: &GpuContext, rng: &mut ChaCha8Rng) {
    let (vocab, dim, n) = (37, 19, 13);
    let (table, table_v) = upload::<E>(gpu, &random(rng, vocab * dim, 1.0));
    let ids: Vec<u32> = (0..n).map(|_| rng.next_u32() % vocab as u32).collect();
    let mut out = poisoned::<E>(gpu, n * dim);
    gpu.embedding(&table, &ids, dim, &mut out).unwrap();
    let mut want = vec![0.0; n * dim];
    Backend::<f64>::embedding(&cpu(), &table_v, &ids, dim, &mut want).unwrap();
    assert_close("embedding", &download(gpu, &out), &want, 0.0);
    let err = gpu.embedding(&table, &[vocab as u32], dim, &mut out);
    assert!(matches!(err, Err(KernelError::Invalid { .. })));
}

fn check_rms_norm<E: Element>(gpu: &GpuContext, rng: &mut ChaCha8Rng) {
    for (rows, dim) in [(1, 1), (7, 133), (3, 1024), (2, 1500)] {
        let (x, xv) = upload::<E>(gpu, &random(rng, rows * dim, 3.0));
        let (w, wv) = upload::<E>(gpu, &random(rng, dim, 1.0));
        let mut out = poisoned::<E>(gpu, rows * dim);
        let mut inv = poisoned::<f32>(gpu, rows);
        gpu.rms_norm(&x, &w, 1e-6, dim, &mut out, Some(&mut inv)).unwrap();
        let (mut want, mut want_inv) = (vec![0.0; rows * dim], vec![0.0; rows]);
        Backend::<f64>::rms_norm(&cpu(), &xv, &wv, 1e-6, dim, &mut want, &mut want_inv).unwrap();
        assert_close("rms_norm", &download(gpu, &out), &want, tolerance::<E>());
        assert_close("inv_rms", &download(gpu, &inv), &want_inv, 1e-5);
    }
}

fn check_rope<E: Element>(gpu: &GpuContext, rng: &mut ChaCha8Rng) {
    for (tokens, heads, head_dim, pad) in [(9, 3, 10, 6), (5, 14, 64, 0), (4, 2, 128, 1)] {
        let stride = heads * head_dim + pad;
        let data = random(rng, tokens * stride, 2.0);
        let positions: Vec<u32> = (0..tokens).map(|_| rng.next_u32() % 40_000).collect();
        for direction in [RopeDirection::Forward, RopeDirection::Inverse] {
            let (mut x, xv) = upload::<E>(gpu, &data);
            gpu.rope(&mut x, &positions, heads, head_dim, stride, 1e6, direction).unwrap();
            let mut want = Vec::new();
            for (t, row) in xv.chunks_exact(stride).enumerate() {
                let mut heads_part = row[..heads * head_dim].to_vec();
                Backend::<f64>::rope(&cpu(), &mut heads_part, &positions[t..=t], heads, head_dim, 1e6, direction)
                    .unwrap();
                want.extend(heads_part);
                want.extend(&row[heads * head_dim..]);
            }
            assert_close("rope", &download(gpu, &x), &want, tolerance::<E>().max(2e-5));
        }
    }
}

fn check_swiglu_and_adds<E: Element>(gpu: &GpuContext, rng: &mut ChaCha8Rng) {
    let (rows, cols) = (5, 71);
    // Fused [rows, 2 * cols] buffer: gate then up in each row.
    let (fused, fused_v) = upload::<E>(gpu, &random(rng, rows * 2 * cols, 4.0));
    let up_view = fused.slice(cols..).to_owned_slice(gpu);
    let mut out = poisoned::<E>(gpu, rows * cols);
    gpu.swiglu(&fused, &up_view, &mut out, rows, cols, 2 * cols).unwrap();
    let gate_v: Vec<f64> = fused_v.chunks_exact(2 * cols).flat_map(|r| r[..cols].to_vec()).collect();
    let up_v: Vec<f64> = fused_v.chunks_exact(2 * cols).flat_map(|r| r[cols..].to_vec()).collect();
    let mut want = vec![0.0; rows * cols];
    Backend::<f64>::swiglu(&cpu(), &gate_v, &up_v, &mut want).unwrap();
    assert_close("swiglu", &download(gpu, &out), &want, tolerance::<E>());

    let (mut x, xv) = upload::<E>(gpu, &random(rng, rows * cols, 1.0));
    let (y, yv) = upload::<E>(gpu, &random(rng, rows * cols, 1.0));
    let (bias, bv) = upload::<E>(gpu, &random(rng, cols, 1.0));
    gpu.add_assign(&mut x, &y).unwrap();
    gpu.add_bias(&mut x, &bias).unwrap();
    let want: Vec<f64> = (0..rows * cols).map(|i| xv[i] + yv[i] + bv[i % cols]).collect();
    assert_close("add", &download(gpu, &x), &want, tolerance::<E>());
}

/// Helper for a device copy of a view (the swiglu test's second operand).
trait ToOwnedSlice<E: Element> {
    fn to_owned_slice(&self, gpu: &GpuContext) -> CudaSlice<E>;
}

impl<E: Element> ToOwnedSlice<E> for cudarc::driver::CudaView<'_, E> {
    fn to_owned_slice(&self, gpu: &GpuContext) -> CudaSlice<E> {
        gpu.stream().clone_dtod(self).unwrap()
    }
}

const SHAPES: [AttnShape; 4] = [
    AttnShape { heads: 4, kv_heads: 4, head_dim: 16 },
    AttnShape { heads: 6, kv_heads: 2, head_dim: 40 },
    AttnShape { heads: 14, kv_heads: 2, head_dim: 64 },
    AttnShape { heads: 12, kv_heads: 1, head_dim: 128 },
];

/// Spans over packed rows: full causal sequences of odd lengths, and one continuing a prefix.
fn packed_spans(lens: &[(usize, usize)]) -> (Vec<AttnSpan>, usize, usize) {
    let (mut q_rows, mut kv_rows, mut spans) = (0, 0, Vec::new());
    for &(q_len, kv_len) in lens {
        spans.push(AttnSpan { q_start: q_rows, q_len, kv_start: kv_rows, kv_len });
        q_rows += q_len;
        kv_rows += kv_len;
    }
    (spans, q_rows, kv_rows)
}

fn cpu_attention(q: &[f64], k: &[f64], v: &[f64], spans: &[AttnSpan], shape: AttnShape) -> (Vec<f64>, Vec<f64>) {
    let q_rows = q.len() / (shape.heads * shape.head_dim);
    let mut out = vec![0.0; q.len()];
    let mut lse = vec![0.0; q_rows * shape.heads];
    Backend::<f64>::attention(&cpu(), q, k, v, spans, shape, &mut out, Some(&mut lse)).unwrap();
    (out, lse)
}

fn check_attention<E: Element>(gpu: &GpuContext, rng: &mut ChaCha8Rng) {
    for shape in SHAPES {
        let (spans, q_rows, kv_rows) = packed_spans(&[(1, 1), (17, 17), (33, 33), (5, 70), (16, 16)]);
        let (q, qv) = upload::<E>(gpu, &random(rng, q_rows * shape.heads * shape.head_dim, 1.0));
        let (k, kv) = upload::<E>(gpu, &random(rng, kv_rows * shape.kv_heads * shape.head_dim, 1.0));
        let (v, vv) = upload::<E>(gpu, &random(rng, kv_rows * shape.kv_heads * shape.head_dim, 1.0));
        let mut out = poisoned::<E>(gpu, qv.len());
        let mut lse = poisoned::<f32>(gpu, q_rows * shape.heads);
        gpu.attention(&q, &k, &v, &spans, shape, &mut out, Some(&mut lse)).unwrap();
        let (want, want_lse) = cpu_attention(&qv, &kv, &vv, &spans, shape);
        assert_close(&format!("attention {shape:?}"), &download(gpu, &out), &want, tolerance::<E>());
        assert_close("attention lse", &download(gpu, &lse), &want_lse, 1e-5);
    }
}

/// Distinct random blocks for each sequence, so tables are shuffled and never contiguous.
fn random_tables(rng: &mut ChaCha8Rng, lens: &[usize], block_size: usize, num_blocks: usize) -> Vec<Vec<BlockId>> {
    let mut free: Vec<u32> = (0..num_blocks as u32).collect();
    for i in (1..free.len()).rev() {
        free.swap(i, rng.next_u32() as usize % (i + 1));
    }
    lens.iter().map(|&len| (0..len.div_ceil(block_size)).map(|_| BlockId(free.pop().unwrap())).collect()).collect()
}

/// Fills `layer` of a pool with each sequence's rows; returns the pool and the host copy of K and V.
fn filled_pool<E: Element>(
    gpu: &GpuContext,
    rng: &mut ChaCha8Rng,
    g: KvGeometry,
    layer: usize,
    lens: &[usize],
    tables: &[Vec<BlockId>],
) -> (DeviceKvPool<E>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut pool = DeviceKvPool::<E>::new(gpu, g).unwrap();
    let row = g.slot_elems();
    let (mut ks, mut vs) = (Vec::new(), Vec::new());
    for (&len, table) in lens.iter().zip(tables) {
        let (k, kv) = upload::<E>(gpu, &random(rng, len * row, 1.0));
        let (v, vv) = upload::<E>(gpu, &random(rng, len * row, 1.0));
        let slots: Vec<u32> =
            (0..len).map(|p| (table[p / g.block_size].index() * g.block_size + p % g.block_size) as u32).collect();
        gpu.kv_append(&mut pool, layer, &k, &v, row, &slots).unwrap();
        ks.push(kv);
        vs.push(vv);
    }
    (pool, ks, vs)
}

fn check_paged_attention<E: Element>(gpu: &GpuContext, rng: &mut ChaCha8Rng) {
    for shape in SHAPES {
        let lens = [1, 15, 16, 17, 300, 1000];
        let g = KvGeometry {
            layers: 2,
            num_blocks: 128,
            block_size: 16,
            kv_heads: shape.kv_heads,
            head_dim: shape.head_dim,
        };
        let tables = random_tables(rng, &lens, g.block_size, g.num_blocks);
        let table_refs: Vec<&[BlockId]> = tables.iter().map(Vec::as_slice).collect();
        let (pool, ks, vs) = filled_pool::<E>(gpu, rng, g, 1, &lens, &tables);
        let kc: Vec<f64> = ks.concat();
        let vc: Vec<f64> = vs.concat();
        let width = shape.heads * shape.head_dim;

        // Decode: one query per sequence.
        let (q, qv) = upload::<E>(gpu, &random(rng, lens.len() * width, 1.0));
        let mut out = poisoned::<E>(gpu, lens.len() * width);
        gpu.attention_decode(&q, &pool, 1, &lens, &table_refs, shape, &mut out).unwrap();
        let mut kv_start = 0;
        let spans: Vec<AttnSpan> = lens
            .iter()
            .enumerate()
            .map(|(b, &len)| {
                let s = AttnSpan { q_start: b, q_len: 1, kv_start, kv_len: len };
                kv_start += len;
                s
            })
            .collect();
        let (want, _) = cpu_attention(&qv, &kc, &vc, &spans, shape);
        assert_close(&format!("decode {shape:?}"), &download(gpu, &out), &want, tolerance::<E>());

        // Paged prefill of each sequence's last few tokens (a prompt continuing a cached prefix).
        let (mut q_start, mut kv_start, mut spans) = (0, 0, Vec::new());
        for &len in &lens {
            let q_len = len.min(23);
            spans.push(AttnSpan { q_start, q_len, kv_start, kv_len: len });
            q_start += q_len;
            kv_start += len;
        }
        let (q, qv) = upload::<E>(gpu, &random(rng, q_start * width, 1.0));
        let mut out = poisoned::<E>(gpu, q_start * width);
        gpu.attention_prefill_paged(&q, &pool, 1, &spans, &table_refs, shape, &mut out).unwrap();
        let (want, _) = cpu_attention(&qv, &kc, &vc, &spans, shape);
        assert_close(&format!("paged prefill {shape:?}"), &download(gpu, &out), &want, tolerance::<E>());
    }
}

fn check_kv_ops<E: Element>(gpu: &GpuContext, rng: &mut ChaCha8Rng) {
    let g = KvGeometry { layers: 3, num_blocks: 9, block_size: 4, kv_heads: 2, head_dim: 6 };
    let lens = [7, 13];
    let tables = random_tables(rng, &lens, g.block_size, g.num_blocks);
    let (mut pool, ks, _) = filled_pool::<E>(gpu, rng, g, 2, &lens, &tables);
    let layer_of = |pool: &DeviceKvPool<E>, layer: usize| -> Vec<f64> {
        let all = download(gpu, &pool.k);
        all[layer * g.layer_elems()..(layer + 1) * g.layer_elems()].to_vec()
    };
    let layer2 = layer_of(&pool, 2);
    for (b, table) in tables.iter().enumerate() {
        let got = reference::gather_from_pool(
            &layer2.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            g.slot_elems(),
            table,
            g.block_size,
            lens[b],
        );
        assert_close("kv_append", &got.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), &ks[b], 0.0);
    }
    assert!(layer_of(&pool, 0).iter().all(|&v| v == 0.0), "kv_append wrote outside its layer");
    let used: Vec<BlockId> = tables.concat();
    let spare: Vec<BlockId> = (0..g.num_blocks as u32).map(BlockId).filter(|b| !used.contains(b)).collect();
    let copies = [BlockCopy { src: tables[1][2], dst: spare[0] }, BlockCopy { src: tables[0][0], dst: spare[1] }];
    gpu.kv_copy_blocks(&mut pool, &copies).unwrap();
    let after = layer_of(&pool, 2);
    for c in copies {
        let block = |id: BlockId| &after[id.index() * g.block_elems()..(id.index() + 1) * g.block_elems()];
        assert_eq!(block(c.src), block(c.dst));
    }
    let bad = [BlockCopy { src: BlockId(0), dst: BlockId(g.num_blocks as u32) }];
    assert!(matches!(gpu.kv_copy_blocks(&mut pool, &bad), Err(KernelError::Invalid { .. })));
}

macro_rules! gpu_test {
    ($name:ident, $check:ident, [$($ty:ty),*]) => {
        #[test]
        fn $name() {
            let Some(gpu) = gpu() else { return };
            let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
            $($check::<$ty>(&gpu, &mut rng);)*
        }
    };
}

gpu_test!(embedding_matches_cpu, check_embedding, [f32, bf16, half::f16]);
gpu_test!(rms_norm_matches_cpu, check_rms_norm, [f32, bf16]);
gpu_test!(rope_matches_cpu, check_rope, [f32, bf16]);
gpu_test!(swiglu_and_adds_match_cpu, check_swiglu_and_adds, [f32, bf16]);
gpu_test!(prefill_attention_matches_cpu, check_attention, [f32, bf16]);
gpu_test!(paged_attention_matches_cpu, check_paged_attention, [f32, bf16]);
gpu_test!(kv_append_and_block_copies_land_in_their_slots, check_kv_ops, [f32, bf16]);

#[test]
fn sampling_matches_reference() {
    let Some(gpu) = gpu() else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let vocab = 151_936 / 8 + 3;
    let settings = [
        SamplingParams::greedy(),
        SamplingParams::default(),
        SamplingParams { temperature: 0.6, top_k: 50, ..Default::default() },
        SamplingParams { temperature: 1.0, top_p: 0.9, ..Default::default() },
        SamplingParams { temperature: 0.8, top_k: 200, top_p: 0.95, min_p: 0.05 },
        SamplingParams { min_p: 0.2, ..Default::default() },
    ];
    let rows: Vec<SampleRequest> = (0..24)
        .map(|i| SampleRequest { params: settings[i % settings.len()], seed: 1000 + i as u64, step: 7 * i as u64 })
        .collect();
    // Odd rows hold logits rounded to multiples of 0.5 (25 levels over ~19k tokens), so every top-k and
    // top-p threshold falls inside a group of ties: a kernel that broke ties differently from the
    // reference (which follows the model sampler's rule) would keep another set and report another logprob.
    let mut logits_host = random(&mut rng, rows.len() * vocab, 6.0);
    for row in logits_host.chunks_exact_mut(vocab).skip(1).step_by(2) {
        row.iter_mut().for_each(|l| *l = (*l * 2.0).round() / 2.0);
    }
    let logits = gpu.stream().clone_htod(&logits_host).unwrap();
    let drawn = gpu.sample(&logits, vocab, &rows).unwrap();
    for (i, (d, r)) in drawn.iter().zip(&rows).enumerate() {
        let want = reference::sample_row(&logits_host[i * vocab..(i + 1) * vocab], &r.params, r.seed, r.step);
        if d.token != want.token {
            assert!(
                want.margin < 1e-5,
                "row {i} {:?}: token {} vs {} (margin {})",
                r.params,
                d.token,
                want.token,
                want.margin
            );
            continue;
        }
        assert!(
            (f64::from(d.logprob) - want.logprob).abs() < 1e-4,
            "row {i}: logprob {} vs {}",
            d.logprob,
            want.logprob
        );
        assert!((f64::from(d.model_logprob) - want.model_logprob).abs() < 1e-4, "row {i}: model logprob");
    }
    let mut bad = logits_host[..vocab].to_vec();
    bad[5] = f32::NAN;
    let bad = gpu.stream().clone_htod(&bad).unwrap();
    assert!(matches!(gpu.sample(&bad, vocab, &rows[..1]), Err(KernelError::Invalid { .. })));
}

/// Many rows share one logit row with different steps: token frequencies must follow the sampling
/// distribution the model's CPU sampler defines. Tokens 2 and 5 tie, and the filters cut at that tie
/// (top-k 4 keeps both; top-p 0.8 first reaches its mass at one of them), so the two samplers must agree
/// on ties for this to pass.
#[test]
fn sampling_frequencies_follow_the_distribution() {
    let Some(gpu) = gpu() else { return };
    let probs = [0.05f64, 0.3, 0.1, 0.25, 0.2, 0.1];
    let row: Vec<f32> = probs.iter().map(|p| p.ln() as f32).collect();
    for params in [
        SamplingParams::default(),
        SamplingParams { temperature: 0.7, top_k: 4, ..Default::default() },
        SamplingParams { top_p: 0.8, min_p: 0.3, ..Default::default() },
    ] {
        let n = 40_000;
        let logits = gpu.stream().clone_htod(&row.repeat(n)).unwrap();
        let rows: Vec<SampleRequest> = (0..n as u64).map(|step| SampleRequest { params, seed: 5, step }).collect();
        let drawn = gpu.sample(&logits, row.len(), &rows).unwrap();
        let dist = selfplay_model::sampler::sampling_distribution(&row, &params).unwrap();
        let mut counts = vec![0usize; row.len()];
        drawn.iter().for_each(|d| counts[d.token as usize] += 1);
        for (token, &count) in counts.iter().enumerate() {
            let p = dist.iter().find(|d| d.0 == token as u32).map_or(0.0, |d| d.1);
            let freq = count as f64 / n as f64;
            assert!(
                (freq - p).abs() <= 4.5 * (p * (1.0 - p) / n as f64).sqrt() + 1e-12,
                "{params:?} {token}: {freq} vs {p}"
            );
        }
    }
}

#[test]
fn bad_arguments_are_typed_errors() {
    let Some(gpu) = gpu() else { return };
    let shape = AttnShape { heads: 3, kv_heads: 2, head_dim: 8 };
    let buf = gpu.stream().alloc_zeros::<f32>(48).unwrap();
    let mut out = gpu.stream().alloc_zeros::<f32>(48).unwrap();
    let spans = [AttnSpan { q_start: 0, q_len: 2, kv_start: 0, kv_len: 2 }];
    assert!(matches!(gpu.attention(&buf, &buf, &buf, &spans, shape, &mut out, None), Err(KernelError::Invalid { .. })));
    let shape = AttnShape { heads: 2, kv_heads: 2, head_dim: 8 };
    let spans = [AttnSpan { q_start: 2, q_len: 2, kv_start: 0, kv_len: 2 }];
    assert!(matches!(gpu.attention(&buf, &buf, &buf, &spans, shape, &mut out, None), Err(KernelError::Invalid { .. })));
    let big = AttnShape { heads: 1, kv_heads: 1, head_dim: 256 };
    assert!(matches!(gpu.attention(&buf, &buf, &buf, &[], big, &mut out, None), Err(KernelError::Invalid { .. })));
}

/// bf16 conversions on the device round to nearest even exactly as `half` does (embedding copies
/// through f32, so every bf16 pattern must survive the round trip bit for bit).
#[test]
fn bf16_round_trip_is_exact() {
    let Some(gpu) = gpu() else { return };
    let table: Vec<bf16> = (0..=u16::MAX).map(bf16::from_bits).filter(|b| !b.is_nan()).collect();
    let dev = gpu.stream().clone_htod(&table).unwrap();
    let mut out = gpu.stream().alloc_zeros::<bf16>(table.len()).unwrap();
    let ids: Vec<u32> = (0..table.len() as u32).collect();
    gpu.embedding(&dev, &ids, 1, &mut out).unwrap();
    let back = gpu.stream().clone_dtoh(&out).unwrap();
    assert!(table.iter().zip(&back).all(|(a, b)| a.to_bits() == b.to_bits()));
}
