//! CPU references for the GPU tests, for what the model's `CpuBackend` (the oracle for the dense ops)
//! does not cover: Philox, the sampler's exact GPU semantics, and the paged KV layout.

use selfplay_kvcache::BlockId;
use selfplay_model::SamplingParams;

/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
pub fn philox4x32_10(mut ctr: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
    const M0: u64 = 0xD251_1F53;
    const M1: u64 = 0xCD9E_8D57;
    for _ in 0..10 {
        let p0 = M0 * u64::from(ctr[0]);
        let p1 = M1 * u64::from(ctr[2]);
        ctr = [(p1 >> 32) as u32 ^ ctr[1] ^ key[0], p1 as u32, (p0 >> 32) as u32 ^ ctr[3] ^ key[1], p0 as u32];
        key = [key[0].wrapping_add(0x9E37_79B9), key[1].wrapping_add(0xBB67_AE85)];
    }
    ctr
}

/// The uniform in [0, 1) a sampling row with `seed` draws at `step` (as sampling.cu computes it).
pub fn row_uniform(seed: u64, step: u64) -> f32 {
    let out = philox4x32_10([step as u32, (step >> 32) as u32, 0, 0], [seed as u32, (seed >> 32) as u32]);
    (out[0] >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// What the GPU sampler should return for one row, and how sure the reference is about the token.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceDraw {
    pub token: u32,
    pub logprob: f64,
    pub model_logprob: f64,
    /// Kept tokens, in index order.
    pub kept: Vec<u32>,
    /// Distance from the draw's target to the nearest cumulative-mass boundary, relative to the kept
    /// mass: a draw this close to a boundary may legitimately differ by float summation order.
    pub margin: f64,
}

/// Sort-based reference of `sample_rows`: top-k and top-p are thresholds on the raw logit (every token
/// tied with the threshold kept, as in the model's sampler); the draw walks the kept mass in index order.
pub fn sample_row(logits: &[f32], params: &SamplingParams, seed: u64, step: u64) -> ReferenceDraw {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse1 = f64::from(max) + logits.iter().map(|&l| f64::from(l - max).exp()).sum::<f64>().ln();
    let model_logprob = |t: usize| f64::from(logits[t]) - lse1;
    if params.temperature == 0.0 {
        let token = logits.iter().enumerate().fold(0, |best, (i, &l)| if l > logits[best] { i } else { best });
        return ReferenceDraw {
            token: token as u32,
            logprob: 0.0,
            model_logprob: model_logprob(token),
            kept: vec![token as u32],
            margin: f64::INFINITY,
        };
    }
    let inv_t = 1.0 / params.temperature;
    let x: Vec<f32> = logits.iter().map(|&l| (l - max) * inv_t).collect();
    let e: Vec<f64> = x.iter().map(|&v| f64::from(v).exp()).collect();
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let mut threshold = f32::NEG_INFINITY;
    if params.top_k > 0 && params.top_k < x.len() {
        threshold = logits[order[params.top_k - 1]];
    }
    if params.top_p < 1.0 {
        let kept_mass: f64 = order.iter().filter(|&&i| logits[i] >= threshold).map(|&i| e[i]).sum();
        let need = f64::from(params.top_p) * kept_mass;
        let mut cumulative = 0.0;
        for &i in order.iter().filter(|&&i| logits[i] >= threshold) {
            cumulative += e[i];
            if cumulative >= need {
                threshold = threshold.max(logits[i]);
                break;
            }
        }
    }
    let kept: Vec<u32> = (0..x.len())
        .filter(|&i| logits[i] >= threshold && e[i] >= f64::from(params.min_p) && e[i] > 0.0)
        .map(|i| i as u32)
        .collect();
    let total: f64 = kept.iter().map(|&i| e[i as usize]).sum();
    let target = f64::from(row_uniform(seed, step)) * total;
    let mut cumulative = 0.0;
    let mut token = kept.last().copied().unwrap_or(0);
    let mut margin = f64::INFINITY;
    for &i in &kept {
        margin = margin.min((cumulative - target).abs());
        cumulative += e[i as usize];
        margin = margin.min((cumulative - target).abs());
        if cumulative > target {
            token = i;
            break;
        }
    }
    ReferenceDraw {
        token,
        logprob: f64::from(x[token as usize]) - total.ln(),
        model_logprob: model_logprob(token as usize),
        kept,
        margin: margin / total,
    }
}

/// Writes rows `[len, row]` of one sequence into a paged pool layer `[blocks, block_size, row]`.
pub fn scatter_to_pool(rows: &[f32], row: usize, table: &[BlockId], block_size: usize, pool: &mut [f32]) {
    for (pos, values) in rows.chunks_exact(row).enumerate() {
        let slot = table[pos / block_size].index() * block_size + pos % block_size;
        pool[slot * row..(slot + 1) * row].copy_from_slice(values);
    }
}

/// Reads `len` rows of one sequence back out of a paged pool layer.
pub fn gather_from_pool(pool: &[f32], row: usize, table: &[BlockId], block_size: usize, len: usize) -> Vec<f32> {
    (0..len)
        .flat_map(|pos| {
            let slot = table[pos / block_size].index() * block_size + pos % block_size;
            pool[slot * row..(slot + 1) * row].iter().copied()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{Rng, SeedableRng};

    /// Known-answer vectors from the Random123 distribution (kat_vectors, philox4x32_10).
    #[test]
    fn philox_matches_random123_known_answers() {
        assert_eq!(philox4x32_10([0; 4], [0; 2]), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
        assert_eq!(philox4x32_10([u32::MAX; 4], [u32::MAX; 2]), [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]);
        assert_eq!(
            philox4x32_10([0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344], [0xa409_3822, 0x299f_31d0]),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn row_uniforms_are_in_range_and_depend_on_seed_and_step() {
        let draws: Vec<f32> = (0..1000).map(|s| row_uniform(7, s)).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = draws.iter().sum::<f32>() / 1000.0;
        assert!((mean - 0.5).abs() < 0.03, "{mean}");
        assert_ne!(row_uniform(7, 0), row_uniform(8, 0));
    }

    fn random_logits(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| (rng.next_u32() as f32 / u32::MAX as f32) * 8.0 - 4.0).collect()
    }

    /// Random logits rounded to multiples of 0.5: 17 levels over 97 tokens, so every threshold falls
    /// inside a group of ties.
    fn tied_logits(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
        random_logits(rng, n).into_iter().map(|l| (l * 2.0).round() / 2.0).collect()
    }

    /// The kept set equals the model sampler's distribution support, on distinct logits and on logits
    /// full of ties (the two must agree on the tie rule), and the reported log-probability is the model
    /// sampler's renormalised probability.
    #[test]
    fn kept_set_matches_the_model_sampler() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let settings = [
            SamplingParams::default(),
            SamplingParams { temperature: 0.7, top_k: 5, ..Default::default() },
            SamplingParams { top_p: 0.6, ..Default::default() },
            SamplingParams { temperature: 1.3, top_k: 20, top_p: 0.9, min_p: 0.05 },
            SamplingParams { min_p: 0.3, ..Default::default() },
            SamplingParams { top_k: 3, top_p: 0.3, ..Default::default() },
        ];
        let cases = settings.iter().flat_map(|p| [(p, false), (p, true)]);
        for (case, (params, tied)) in cases.enumerate() {
            let logits = if tied { tied_logits(&mut rng, 97) } else { random_logits(&mut rng, 97) };
            let reference = sample_row(&logits, params, case as u64, 11);
            let dist = selfplay_model::sampler::sampling_distribution(&logits, params).unwrap();
            let mut support: Vec<u32> = dist.iter().map(|d| d.0).collect();
            support.sort_unstable();
            assert_eq!(reference.kept, support, "{params:?} tied: {tied}");
            let p = dist.iter().find(|d| d.0 == reference.token).unwrap().1;
            assert!((reference.logprob - p.ln()).abs() < 1e-5, "{params:?}");
        }
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        let draw = sample_row(&[0.0, 3.0, 3.0, 1.0], &SamplingParams::greedy(), 0, 0);
        assert_eq!(draw.token, 1);
        assert_eq!(draw.logprob, 0.0);
        let lse = (1.0f64 + 2.0 * 3f64.exp() + 1f64.exp()).ln();
        assert!((draw.model_logprob - (3.0 - lse)).abs() < 1e-9);
    }

    #[test]
    fn ties_at_the_top_k_threshold_are_all_kept() {
        let draw = sample_row(&[1.0, 2.0, 2.0, 0.0], &SamplingParams { top_k: 2, ..Default::default() }, 0, 0);
        assert_eq!(draw.kept, [1, 2]);
        let draw = sample_row(&[2.0, 2.0, 2.0, 0.0], &SamplingParams { top_k: 1, ..Default::default() }, 0, 0);
        assert_eq!(draw.kept, [0, 1, 2]);
    }

    #[test]
    fn draws_follow_the_kept_distribution() {
        let logits = [0.1f32.ln(), 0.4f32.ln(), 0.2f32.ln(), 0.3f32.ln()];
        let params = SamplingParams { top_k: 3, ..Default::default() };
        let mut counts = [0usize; 4];
        let n = 20_000;
        for step in 0..n {
            counts[sample_row(&logits, &params, 99, step).token as usize] += 1;
        }
        assert_eq!(counts[0], 0);
        for (token, p) in [(1, 0.4 / 0.9), (2, 0.2 / 0.9), (3, 0.3 / 0.9)] {
            let freq = counts[token] as f64 / n as f64;
            assert!((freq - p).abs() < 4.5 * (p * (1.0 - p) / n as f64).sqrt(), "{token}: {freq} vs {p}");
        }
    }

    #[test]
    fn pool_scatter_and_gather_round_trip_through_shuffled_blocks() {
        let (row, block_size, len) = (3, 4, 10);
        let rows: Vec<f32> = (0..len * row).map(|i| i as f32).collect();
        let table = [BlockId(5), BlockId(0), BlockId(2)];
        let mut pool = vec![f32::NAN; 6 * block_size * row];
        scatter_to_pool(&rows, row, &table, block_size, &mut pool);
        assert_eq!(gather_from_pool(&pool, row, &table, block_size, len), rows);
        // Token 4 is the first slot of block 0.
        assert_eq!(&pool[0..3], &rows[12..15]);
    }
}
