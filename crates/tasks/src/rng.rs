//! Seeded randomness for generators: one ChaCha stream per (seed, split).

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::task::Split;

/// The generator stream for `seed` and `split`: each split draws from its own ChaCha stream, so asking
/// for more `val` problems never shifts the `train` ones.
pub(crate) fn split_rng(seed: u64, split: Split) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(split as u64);
    rng
}

/// Uniform integer in `lo..=hi` (requires `lo <= hi`), unbiased by rejection.
pub(crate) fn uniform_inclusive(rng: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    let span = hi.wrapping_sub(lo).wrapping_add(1);
    if span == 0 {
        return rng.next_u64(); // the full u64 range
    }
    // Largest multiple of `span` that fits: values at or above it would bias the low residues.
    let zone = u64::MAX - (u64::MAX - span + 1) % span;
    loop {
        let x = rng.next_u64();
        if x <= zone {
            return lo + x % span;
        }
    }
}

/// SplitMix64 finaliser: a fixed, seed-independent hash used to assign problems and targets to splits.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_covers_range_and_is_deterministic() {
        let mut rng = split_rng(7, Split::Train);
        let mut seen = [0u32; 5];
        for _ in 0..5000 {
            let x = uniform_inclusive(&mut rng, 10, 14);
            seen[(x - 10) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (900..1100).contains(&c)), "{seen:?}");
        let a: Vec<u64> = (0..4).map(|_| uniform_inclusive(&mut split_rng(1, Split::Val), 0, 99)).collect();
        let b: Vec<u64> = (0..4).map(|_| uniform_inclusive(&mut split_rng(1, Split::Val), 0, 99)).collect();
        assert_eq!(a, b);
        assert_eq!(uniform_inclusive(&mut rng, 3, 3), 3);
        let _full = uniform_inclusive(&mut rng, 0, u64::MAX);
    }
}
