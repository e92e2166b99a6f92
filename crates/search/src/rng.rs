//! Seeded random streams and the few distributions the search needs (uniform, Gumbel, Dirichlet).
//!
//! Every tree draws from its own ChaCha stream `(seed, stream)`, so a tree's result never depends on which other
//! trees share its batch. The distributions are written out here because each is a few lines of `libm`.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// The random stream of one tree: `seed` picks the run, `stream` the row (tree) inside a batch.
pub fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Uniform in the open interval (0, 1), in f64 so that `ln` of it is always finite.
pub fn open_unit(rng: &mut ChaCha8Rng) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// A standard Gumbel sample, `-ln(-ln(u))`.
pub fn gumbel(rng: &mut ChaCha8Rng) -> f32 {
    -libm::log(-libm::log(open_unit(rng))) as f32
}

/// A standard normal sample (Box-Muller; one of the pair is discarded for simplicity).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = open_unit(rng);
    let u2 = open_unit(rng);
    libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(core::f64::consts::TAU * u2)
}

/// A Gamma(alpha, 1) sample by Marsaglia and Tsang (2000); `alpha < 1` uses the boost `G(a+1) * U^(1/a)`.
fn gamma(rng: &mut ChaCha8Rng, alpha: f64) -> f64 {
    if alpha < 1.0 {
        let boost = libm::pow(open_unit(rng), 1.0 / alpha);
        return gamma(rng, alpha + 1.0) * boost;
    }
    let d = alpha - 1.0 / 3.0;
    let c = 1.0 / libm::sqrt(9.0 * d);
    loop {
        let x = normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = open_unit(rng);
        if libm::log(u) < 0.5 * x * x + d - d * v + d * libm::log(v) {
            return d * v;
        }
    }
}

/// Fills `out` with a Dirichlet(alpha, ..., alpha) sample.
pub fn dirichlet(rng: &mut ChaCha8Rng, alpha: f32, out: &mut [f32]) {
    let mut sum = 0.0f64;
    for o in out.iter_mut() {
        let g = gamma(rng, f64::from(alpha));
        *o = g as f32;
        sum += g;
    }
    if sum > 0.0 {
        for o in out.iter_mut() {
            *o = (f64::from(*o) / sum) as f32;
        }
    } else {
        // Every gamma underflowed (tiny alpha): the limit is a point mass, put it on the first coordinate.
        out.iter_mut().enumerate().for_each(|(i, o)| *o = if i == 0 { 1.0 } else { 0.0 });
    }
}

/// Samples an index with probability proportional to `weights` (non-negative, not all zero).
pub fn categorical(rng: &mut ChaCha8Rng, weights: &[f32]) -> Option<usize> {
    let total: f64 = weights.iter().map(|&w| f64::from(w.max(0.0))).sum();
    if total <= 0.0 || !total.is_finite() {
        return None;
    }
    let mut target = open_unit(rng) * total;
    let mut last = None;
    for (i, &w) in weights.iter().enumerate() {
        if w > 0.0 {
            last = Some(i);
            target -= f64::from(w);
            if target < 0.0 {
                return Some(i);
            }
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirichlet_mean_matches_uniform_alpha() {
        let mut rng = stream_rng(7, 0);
        let mut acc = [0.0f64; 4];
        let mut sample = [0.0f32; 4];
        let n = 4000;
        for _ in 0..n {
            dirichlet(&mut rng, 0.3, &mut sample);
            let s: f32 = sample.iter().sum();
            assert!((s - 1.0).abs() < 1e-5);
            for (a, x) in acc.iter_mut().zip(sample) {
                *a += f64::from(x);
            }
        }
        for a in acc {
            assert!((a / f64::from(n) - 0.25).abs() < 0.03, "mean {}", a / f64::from(n));
        }
    }

    #[test]
    fn gamma_mean_and_variance_equal_alpha() {
        let mut rng = stream_rng(1, 3);
        for alpha in [0.3, 1.0, 2.5] {
            let n = 20000;
            let xs: alloc::vec::Vec<f64> = (0..n).map(|_| gamma(&mut rng, alpha)).collect();
            let mean = xs.iter().sum::<f64>() / f64::from(n);
            let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / f64::from(n);
            assert!((mean - alpha).abs() < 0.05 * alpha.max(1.0), "alpha {alpha} mean {mean}");
            assert!((var - alpha).abs() < 0.1 * alpha.max(1.0), "alpha {alpha} var {var}");
        }
    }

    #[test]
    fn gumbel_mean_is_euler_gamma() {
        let mut rng = stream_rng(2, 0);
        let n = 20000;
        let mean = (0..n).map(|_| f64::from(gumbel(&mut rng))).sum::<f64>() / f64::from(n);
        assert!((mean - 0.5772).abs() < 0.03, "{mean}");
    }

    #[test]
    fn categorical_follows_weights_and_skips_zeros() {
        let mut rng = stream_rng(3, 0);
        let w = [0.0, 3.0, 0.0, 1.0];
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            counts[categorical(&mut rng, &w).unwrap_or(0)] += 1;
        }
        assert_eq!(counts[0] + counts[2], 0);
        assert!((f64::from(counts[1]) / 4000.0 - 0.75).abs() < 0.03);
        assert_eq!(categorical(&mut rng, &[0.0, 0.0]), None);
    }

    #[test]
    fn streams_differ_and_repeat() {
        let a: alloc::vec::Vec<u64> = (0..4).map(|_| stream_rng(5, 1).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(stream_rng(5, 1).next_u64(), stream_rng(5, 2).next_u64());
    }
}
