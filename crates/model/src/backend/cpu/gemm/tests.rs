//! The fixed order, checked four ways: bit for bit against the `gemm` crate where this machine is the
//! reference (L1d 48 KiB, 12-way, FMA), bit for bit across kernels and across rayon thread counts, and
//! against an f64 reference within rounding.

use super::*;

/// A small deterministic generator (no dependency, stable across versions).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Values in [-1, 1) with a spread of exponents (so sums round often), some exact zeros.
    fn values(&mut self, len: usize) -> Vec<f32> {
        (0..len)
            .map(|_| {
                let r = self.next();
                if r.is_multiple_of(53) {
                    return 0.0;
                }
                let unit = (r % 1_000_003) as f32 / 500_001.5 - 1.0;
                unit * [1.0, 0.37, 3.1, 0.011][(r >> 20) as usize % 4]
            })
            .collect()
    }
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn bits64(x: &[f64]) -> Vec<u64> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// One dense product on `kernel` and `threads` rayon threads.
fn dense(g: Gemm, a: &[f32], b: &[f32], c0: &[f32], kernel: Kernel, threads: usize) -> Vec<f32> {
    let mut c = c0.to_vec();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
    let t = if threads > 1 { Threads::Pool } else { Threads::One };
    pool.install(|| gemm_dense_on(g, a, b, &mut c, t, kernel));
    c
}

/// Every kernel this CPU has.
fn kernels() -> Vec<Kernel> {
    [Kernel::Portable, Kernel::Avx2, Kernel::Avx512].into_iter().filter(|&k| k <= hardware_kernel()).collect()
}

/// Our gemm 0.19 wrapper as it was (`gemm_dense` before the fixed order), on `threads` threads.
fn old_gemm_dense(g: Gemm, a: &[f32], b: &[f32], c: &mut [f32], threads: usize) {
    let Gemm { m, n, k, trans_a, trans_b, accumulate } = g;
    let (a_rs, a_cs) = if trans_a { (1, m as isize) } else { (k as isize, 1) };
    let parallel = threads > 1 && m * n * k >= 1 << 15;
    let parallelism = if parallel { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    let transposed;
    let (b_ptr, b_rs, b_cs) = if trans_b {
        (b.as_ptr(), 1, k as isize)
    } else if parallel && m >= 4 * k.min(n) {
        transposed = {
            let mut t = vec![0.0; k * n];
            transpose(b, k, n, &mut t);
            t
        };
        (transposed.as_ptr(), 1, k as isize)
    } else {
        (b.as_ptr(), n as isize, 1)
    };
    old_gemm_strided(
        m,
        n,
        k,
        c.as_mut_ptr(),
        n as isize,
        accumulate,
        (a.as_ptr(), a_rs, a_cs),
        (b_ptr, b_rs, b_cs),
        1.0,
        parallelism,
    );
}

/// `gemm::gemm` as our wrapper called it.
#[allow(clippy::too_many_arguments)]
fn old_gemm_strided(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: isize,
    accumulate: bool,
    a: (*const f32, isize, isize),
    b: (*const f32, isize, isize),
    scale: f32,
    parallelism: gemm::Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    // SAFETY: callers pass buffers holding every output element.
                    unsafe { *dst.offset(i as isize * dst_rs + j as isize) = 0.0 };
                }
            }
        }
        return;
    }
    // SAFETY: callers pass buffers holding every addressed element.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs,
            accumulate,
            a.0,
            a.2,
            a.1,
            b.0,
            b.2,
            b.1,
            1.0f32,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Whether gemm 0.19 runs here as on the reference machine: FMA kernels, and the k-blocking of a
/// 48 KiB 12-way L1 (1024 for a long depth; 512 on a 32 KiB 8-way L1).
fn reference_machine() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let kc = gemm_common::cache::kernel_params(1000, 1000, 4096, 16, 6, 4).kc;
        std::arch::is_x86_feature_detected!("fma") && kc == 1024
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The model's products (d_model 128/256, intermediate 384/704/768, vocab 64/128, value head, q/k/v,
/// decode rows, weight gradients with k = rows) and more.
fn model_shapes() -> Vec<Gemm> {
    let mut out = Vec::new();
    for &rows in &[1usize, 2, 3, 5, 7, 16, 33, 64, 65, 200, 256, 257, 1000, 2048, 2500] {
        for &(d_in, d_out) in &[
            (128usize, 128usize),
            (128, 64),
            (128, 384),
            (384, 128),
            (256, 704),
            (704, 256),
            (256, 768),
            (768, 256),
            (128, 1),
            (256, 1),
            (256, 128),
            (1, 128),
        ] {
            out.push(Gemm::linear(rows, d_in, d_out));
            out.push(Gemm::linear(rows, d_in, d_out).accumulating());
            out.push(Gemm::linear_input_grad(rows, d_in, d_out));
            out.push(Gemm::linear_input_grad(rows, d_in, d_out).accumulating());
            out.push(Gemm::linear_weight_grad(rows, d_in, d_out));
        }
    }
    out
}

/// Random shapes around every path's thresholds (k ≤ 2, unit dimensions, ≤ 256 outputs, ≤ 64, 512, 1024).
fn random_shapes(rng: &mut Lcg, count: usize) -> Vec<Gemm> {
    let dims = [1usize, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129, 255, 256, 257];
    let depths = [1usize, 2, 3, 7, 8, 9, 63, 64, 65, 130, 511, 512, 513, 1023, 1024, 1025, 1500, 2049, 3100];
    (0..count)
        .map(|_| Gemm {
            m: dims[rng.below(dims.len())],
            n: dims[rng.below(dims.len())],
            k: depths[rng.below(depths.len())],
            trans_a: rng.below(2) == 0,
            trans_b: rng.below(2) == 0,
            accumulate: rng.below(2) == 0,
        })
        .collect()
}

fn operands(rng: &mut Lcg, g: Gemm) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    (rng.values(g.m * g.k), rng.values(g.k * g.n), rng.values(g.m * g.n))
}

/// On the reference machine, every product is bit-identical to what `gemm` 0.19 computed through our
/// old wrapper on two threads (the demo's setting), on every kernel: the demo's numbers do not move.
#[test]
fn matches_gemm_crate_on_the_reference_machine() {
    if !reference_machine() {
        println!("SKIP (this CPU's gemm 0.19 blocking is not the reference machine's)");
        return;
    }
    let mut rng = Lcg(7);
    let mut shapes = model_shapes();
    shapes.extend(random_shapes(&mut rng, 300));
    for g in shapes {
        let (a, b, c0) = operands(&mut rng, g);
        let mut want = c0.clone();
        old_gemm_dense(g, &a, &b, &mut want, 2);
        // The portable kernel is slow (a library fma per step): check it on the smaller products.
        for kernel in kernels().into_iter().filter(|&k| k != Kernel::Portable || g.m * g.n * g.k < 1 << 22) {
            let got = dense(g, &a, &b, &c0, kernel, 2);
            assert!(bits(&got) == bits(&want), "{g:?} on {kernel:?} differs from gemm 0.19");
        }
    }
}

/// Strided products as attention issues them (row strides wider than the matrix, transposed views,
/// a scale ≠ 1, accumulation) match `gemm::gemm` on the reference machine.
#[test]
fn strided_products_match_gemm_crate_on_the_reference_machine() {
    if !reference_machine() {
        println!("SKIP (this CPU's gemm 0.19 blocking is not the reference machine's)");
        return;
    }
    let mut rng = Lcg(11);
    let dims = [1usize, 2, 3, 5, 8, 16, 17, 32, 33, 64, 65, 96, 128, 600];
    for case in 0..600 {
        let (m, n, k) = (dims[rng.below(dims.len())], dims[rng.below(dims.len())], dims[rng.below(dims.len())]);
        let (pad_a, pad_b, pad_c) = (rng.below(3) * 8, rng.below(3) * 8, rng.below(3) * 8);
        // a is [m, k] (row stride k + pad) or its transpose view of a [k, m] buffer; same for b.
        let ta = rng.below(2) == 0;
        let tb = rng.below(2) == 0;
        let (a_rows, a_cols) = if ta { (k, m) } else { (m, k) };
        let (b_rows, b_cols) = if tb { (n, k) } else { (k, n) };
        let (a_ld, b_ld) = (a_cols + pad_a, b_cols + pad_b);
        // Now and then every other element (no unit stride at all).
        let (sa, sb) = (1 + usize::from(rng.below(5) == 0), 1 + usize::from(rng.below(5) == 0));
        let a = rng.values(a_rows * a_ld * sa);
        let b = rng.values(b_rows * b_ld * sb);
        let dst_rs = if rng.below(4) == 0 { n } else { n + pad_c };
        let c0 = rng.values(m * dst_rs);
        let (a_ld, b_ld) = ((a_ld * sa) as isize, (b_ld * sb) as isize);
        let (sa, sb) = (sa as isize, sb as isize);
        let a_ref = if ta { (sa, a_ld) } else { (a_ld, sa) };
        let b_ref = if tb { (sb, b_ld) } else { (b_ld, sb) };
        let accumulate = rng.below(2) == 0;
        let scale = if rng.below(2) == 0 { 1.0 } else { 1.0 / (32.0f32).sqrt() };
        let mut want = c0.clone();
        old_gemm_strided(
            m,
            n,
            k,
            want.as_mut_ptr(),
            dst_rs as isize,
            accumulate,
            (a.as_ptr(), a_ref.0, a_ref.1),
            (b.as_ptr(), b_ref.0, b_ref.1),
            scale,
            gemm::Parallelism::None,
        );
        for kernel in kernels() {
            let mut got = c0.clone();
            let a = MatRef { ptr: a.as_ptr(), rs: a_ref.0, cs: a_ref.1 };
            let b = MatRef { ptr: b.as_ptr(), rs: b_ref.0, cs: b_ref.1 };
            let prod = Prod { m, n, k, dst: got.as_mut_ptr(), dst_rs: dst_rs as isize, accumulate, a, b, beta: scale };
            let layout = Layout { a_rs: a.rs, a_cs: a.cs, b_rs: b.rs, b_cs: b.cs, dst_rs: dst_rs as isize };
            // SAFETY: the buffers hold every addressed element; `got` is this call's alone.
            unsafe { run_planned(prod, layout, Threads::One, kernel) };
            assert!(
                bits(&got) == bits(&want),
                "case {case}: {m}x{n}x{k} ta={ta} tb={tb} pads={pad_a},{pad_b},{pad_c} acc={accumulate} scale={scale} on {kernel:?}"
            );
        }
    }
}

/// Every kernel gives the same bits, f32 and f64, at one and several threads.
#[test]
fn kernels_agree_bit_for_bit() {
    let mut rng = Lcg(3);
    for g in random_shapes(&mut rng, 250) {
        let (a, b, c0) = operands(&mut rng, g);
        let want = dense(g, &a, &b, &c0, Kernel::Portable, 1);
        for kernel in kernels() {
            for threads in [1, 3] {
                let got = dense(g, &a, &b, &c0, kernel, threads);
                assert!(bits(&got) == bits(&want), "{g:?} on {kernel:?}, {threads} threads");
            }
        }
        let (a, b, c0): (Vec<f64>, Vec<f64>, Vec<f64>) = (
            a.iter().map(|&x| f64::from(x) * 1.1).collect(),
            b.iter().map(|&x| f64::from(x) / 3.0).collect(),
            c0.iter().map(|&x| f64::from(x)).collect(),
        );
        let run64 = |kernel| {
            let mut c = c0.clone();
            gemm_dense_on(g, &a, &b, &mut c, Threads::One, kernel);
            c
        };
        let want = run64(Kernel::Portable);
        for kernel in kernels() {
            assert!(bits64(&run64(kernel)) == bits64(&want), "f64 {g:?} on {kernel:?}");
        }
    }
}

/// The model-sized products give the same bits on 1, 2, 3 and 8 rayon threads, on each kernel.
#[test]
fn thread_counts_agree_bit_for_bit() {
    let mut rng = Lcg(5);
    let shapes = [
        Gemm::linear(2048, 256, 704),
        Gemm::linear(2048, 704, 256).accumulating(),
        Gemm::linear_input_grad(2048, 256, 704),
        Gemm::linear_weight_grad(2048, 256, 704),
        Gemm::linear_weight_grad(3000, 128, 128),
        Gemm::linear(300, 128, 1),
        Gemm::linear_weight_grad(1500, 256, 1),
        Gemm::linear(37, 384, 128),
    ];
    for g in shapes {
        let (a, b, c0) = operands(&mut rng, g);
        for kernel in kernels().into_iter().filter(|&k| k != Kernel::Portable) {
            let want = dense(g, &a, &b, &c0, kernel, 1);
            for threads in [2, 3, 8] {
                let got = dense(g, &a, &b, &c0, kernel, threads);
                assert!(bits(&got) == bits(&want), "{g:?} on {kernel:?}: {threads} threads differ from 1");
            }
        }
    }
}

/// The f32 products are within rounding of an f64 evaluation: |c − c₆₄| ≤ 2·k·ε·Σ|a||b| (+ |c|).
#[test]
fn close_to_f64_reference() {
    let mut rng = Lcg(9);
    for g in random_shapes(&mut rng, 120) {
        let (a, b, c0) = operands(&mut rng, g);
        let got = dense(g, &a, &b, &c0, active_kernel(), 2);
        let at = |i: usize, p: usize| f64::from(if g.trans_a { a[p * g.m + i] } else { a[i * g.k + p] });
        let bt = |p: usize, j: usize| f64::from(if g.trans_b { b[j * g.k + p] } else { b[p * g.n + j] });
        for i in 0..g.m {
            for j in 0..g.n {
                let (mut exact, mut mag) = (0.0f64, 0.0f64);
                for p in 0..g.k {
                    exact += at(i, p) * bt(p, j);
                    mag += (at(i, p) * bt(p, j)).abs();
                }
                let old = f64::from(c0[i * g.n + j]);
                if g.accumulate {
                    exact += old;
                    mag += old.abs();
                }
                let err = (f64::from(got[i * g.n + j]) - exact).abs();
                let bound = 2.0 * (g.k as f64 + 2.0) * f64::from(f32::EPSILON) * mag + f64::from(f32::MIN_POSITIVE);
                assert!(err <= bound, "{g:?} at ({i}, {j}): {} vs {exact} (bound {bound})", got[i * g.n + j]);
            }
        }
    }
}

/// The blocked path's chunks are what gemm 0.19 took on a 48 KiB 12-way L1.
#[test]
fn chunk_lengths() {
    assert_eq!(Chunks::Balanced1024.size(700), 700);
    assert_eq!(Chunks::Balanced1024.size(1024), 1024);
    assert_eq!(Chunks::Balanced1024.size(1025), 513);
    assert_eq!(Chunks::Balanced1024.size(2048), 1024);
    assert_eq!(Chunks::Balanced1024.size(3000), 1000);
    assert_eq!(Chunks::Fixed512.size(3000), 512);
    assert_eq!(Chunks::Fixed512.size(100), 100);
    if reference_machine() {
        for k in [1, 100, 512, 513, 1000, 1024, 1025, 2047, 2048, 2049, 3000, 5000] {
            assert_eq!(
                Chunks::Balanced1024.size(k),
                gemm_common::cache::kernel_params(1000, 1000, k, 16, 6, 4).kc,
                "k = {k}"
            );
        }
    }
}

/// The paths chosen for the model's products (the ones the docs name).
#[test]
fn paths_of_the_model_products() {
    let plan_dense = |g: Gemm| {
        let Gemm { m, n, k, trans_a, trans_b, .. } = g;
        let (a_rs, a_cs) = if trans_a { (1, m as isize) } else { (k as isize, 1) };
        let copied = !trans_b && m * n * k >= 1 << 15 && m >= 4 * k.min(n);
        let (b_rs, b_cs) = if trans_b || copied { (1, k as isize) } else { (n as isize, 1) };
        plan(m, n, k, Layout { a_rs, a_cs, b_rs, b_cs, dst_rs: n as isize })
    };
    assert_eq!(plan_dense(Gemm::linear(2048, 256, 704)), Path::Blocked(Chunks::Balanced1024));
    assert_eq!(plan_dense(Gemm::linear_weight_grad(2048, 256, 704)), Path::Blocked(Chunks::Balanced1024));
    assert_eq!(plan_dense(Gemm::linear(32, 32, 64)), Path::Blocked(Chunks::Fixed512));
    // Decode, one row: a dot product per output.
    assert_eq!(plan_dense(Gemm::linear(1, 128, 128)), Path::Horizontal);
    assert_eq!(plan_dense(Gemm::linear(1, 128, 384)), Path::GemvRow);
    // The value head: forward, input gradient (k = 1) and weight gradient.
    assert_eq!(plan_dense(Gemm::linear(200, 128, 1)), Path::Horizontal);
    assert_eq!(plan_dense(Gemm::linear(2048, 128, 1)), Path::GemvRow);
    assert_eq!(plan_dense(Gemm::linear_input_grad(2048, 128, 1)), Path::Gevv { beta_on: Side::A });
    assert_eq!(plan_dense(Gemm::linear_weight_grad(2048, 128, 1)), Path::GemvCol { beta_on: Side::A });
}
