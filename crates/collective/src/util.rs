//! Operations written once over any [`Collective`].

use std::ops::Range;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Collective, CollectiveError};

/// The contiguous share of `0..n` that `rank` of `world_size` works on: the ranks' shares tile `0..n` in rank
/// order and differ in length by at most one, so gathering them in rank order restores the whole.
pub fn shard(n: usize, rank: usize, world_size: usize) -> Range<usize> {
    let world = world_size.max(1) as u128;
    let at = |r: usize| ((n as u128 * r as u128) / world) as usize;
    at(rank.min(world_size))..at((rank + 1).min(world_size.max(1)))
}

/// Every rank's `mine`, concatenated in rank order: with each rank holding its [`shard`] of a list, every rank
/// gets the whole list back, in its original order.
pub fn gather_concat<T: Serialize + DeserializeOwned>(
    collective: &dyn Collective,
    mine: Vec<T>,
) -> Result<Vec<T>, CollectiveError> {
    if collective.world_size() == 1 {
        return Ok(mine);
    }
    let bytes = serde_json::to_vec(&mine).map_err(CollectiveError::Encode)?;
    let mut all = Vec::new();
    for (rank, part) in collective.all_gather(&bytes)?.into_iter().enumerate() {
        let items: Vec<T> = serde_json::from_slice(&part).map_err(|source| CollectiveError::Decode { rank, source })?;
        all.extend(items);
    }
    Ok(all)
}

/// Whether `flag` holds on any rank (a stop asked for on one rank stops them all at the same step).
pub fn any(collective: &dyn Collective, flag: bool) -> Result<bool, CollectiveError> {
    if collective.world_size() == 1 {
        return Ok(flag);
    }
    let mut count = [f32::from(u8::from(flag))];
    collective.all_reduce_sum(&mut count)?;
    Ok(count[0] > 0.0)
}

/// `values` replaced by their mean over the ranks (the sum in rank order, then divided by the world size).
pub fn all_reduce_mean(collective: &dyn Collective, values: &mut [f32]) -> Result<(), CollectiveError> {
    collective.all_reduce_sum(values)?;
    let world = collective.world_size() as f32;
    if world > 1.0 {
        values.iter_mut().for_each(|v| *v /= world);
    }
    Ok(())
}

/// `root`'s `value` on every rank.
pub fn broadcast_value<T: Serialize + DeserializeOwned>(
    collective: &dyn Collective,
    root: usize,
    value: &T,
) -> Result<T, CollectiveError> {
    let mut bytes = serde_json::to_vec(value).map_err(CollectiveError::Encode)?;
    collective.broadcast(root, &mut bytes)?;
    serde_json::from_slice(&bytes).map_err(|source| CollectiveError::Decode { rank: root, source })
}

/// The ranks' `parts` added element-wise in rank order (`((p₀ + p₁) + p₂) + …`) into `out`: the reduction every
/// implementation shares, so they all give the same bits.
pub(crate) fn sum_in_rank_order(
    parts: &[&[f32]],
    out: &mut [f32],
    operation: &'static str,
) -> Result<(), CollectiveError> {
    for (rank, part) in parts.iter().enumerate() {
        if part.len() != out.len() {
            return Err(CollectiveError::LengthMismatch { operation, rank, expected: out.len(), got: part.len() });
        }
    }
    let Some((first, rest)) = parts.split_first() else { return Ok(()) };
    out.copy_from_slice(first);
    for part in rest {
        out.iter_mut().zip(part.iter()).for_each(|(o, p)| *o += p);
    }
    Ok(())
}

/// Little-endian `f32` bytes (as a rank sent them through [`Collective::all_gather`]) as values; a trailing
/// partial value is dropped.
pub fn floats_from_bytes(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_tile_the_range_in_rank_order() {
        for n in [0, 1, 5, 7, 64, 129] {
            for world in 1..=5 {
                let shards: Vec<Range<usize>> = (0..world).map(|r| shard(n, r, world)).collect();
                assert_eq!(shards[0].start, 0);
                assert_eq!(shards[world - 1].end, n);
                for pair in shards.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start);
                }
                let (min, max) = (shards.iter().map(|s| s.len()).min(), shards.iter().map(|s| s.len()).max());
                assert!(max.unwrap() - min.unwrap() <= 1, "n {n} world {world}: {shards:?}");
            }
        }
    }

    #[test]
    fn the_rank_order_sum_is_left_to_right() {
        // 1e8 + 1 − 1e8 in f32: (1e8 + 1) rounds to 1e8, so left to right gives 0, not 1.
        let parts: [&[f32]; 3] = [&[1e8], &[1.0], &[-1e8]];
        let mut out = [7.0f32];
        sum_in_rank_order(&parts, &mut out, "test").unwrap();
        assert_eq!(out[0], 0.0);
        let short: [&[f32]; 2] = [&[0.0], &[0.0, 0.0]];
        assert!(matches!(
            sum_in_rank_order(&short, &mut out, "test"),
            Err(CollectiveError::LengthMismatch { rank: 1, got: 2, .. })
        ));
    }
}
