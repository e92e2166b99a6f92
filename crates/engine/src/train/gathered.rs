//! What a data-parallel step's ranks exchange after their forward passes: each sequence's token statistics and
//! last positions' logits, so that every rank evaluates the loss on the whole batch (its normalisers, its groups,
//! its advantages) exactly as one process would, then back-propagates only its own rows.

use selfplay_collective::{Collective, CollectiveError, floats_from_bytes};
use selfplay_model::TokenStats;

/// Every rank's rows, gathered in rank order: the batch's statistics and last positions' logits.
#[derive(Debug, Default)]
pub(super) struct Gathered {
    pub stats: Vec<TokenStats>,
    pub tail_logits: Vec<Vec<f32>>,
}

/// `stats` and `tail_logits` (one entry per local row) as one flat `f32` message: per row, the three lengths,
/// then log-probabilities, entropies, values and logits.
fn encode(stats: &[TokenStats], tail_logits: &[&[f32]]) -> Vec<f32> {
    let mut out = Vec::new();
    for (s, logits) in stats.iter().zip(tail_logits) {
        for len in [s.logprobs.len(), s.entropies.len(), s.values.len(), logits.len()] {
            out.push(len as f32);
        }
        for part in [&s.logprobs[..], &s.entropies, &s.values, logits] {
            out.extend_from_slice(part);
        }
    }
    out
}

/// The rows of one rank's message, appended to `into`.
fn decode(rank: usize, message: &[f32], into: &mut Gathered) -> Result<(), CollectiveError> {
    let cut = || CollectiveError::Transport(format!("rank {rank} sent a truncated row of token statistics"));
    let mut rest = message;
    while !rest.is_empty() {
        let header = rest.get(..4).ok_or_else(cut)?;
        let lens: Vec<usize> = header.iter().map(|&l| l as usize).collect();
        rest = &rest[4..];
        let mut parts = Vec::with_capacity(4);
        for &len in &lens {
            parts.push(rest.get(..len).ok_or_else(cut)?.to_vec());
            rest = &rest[len..];
        }
        let logits = parts.pop().unwrap_or_default();
        let values = parts.pop().unwrap_or_default();
        let entropies = parts.pop().unwrap_or_default();
        let logprobs = parts.pop().unwrap_or_default();
        into.stats.push(TokenStats { logprobs, entropies, values });
        into.tail_logits.push(logits);
    }
    Ok(())
}

/// Every rank's rows, in rank order (each rank passes its own shard's).
pub(super) fn gather(
    collective: &dyn Collective,
    stats: &[TokenStats],
    tail_logits: &[&[f32]],
) -> Result<Gathered, CollectiveError> {
    let message = encode(stats, tail_logits);
    let mut gathered = Gathered::default();
    for (rank, bytes) in collective.all_gather(bytemuck::cast_slice(&message))?.iter().enumerate() {
        decode(rank, &floats_from_bytes(bytes), &mut gathered)?;
    }
    Ok(gathered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfplay_collective::SingleProcess;

    #[test]
    fn rows_survive_the_round_trip_in_order() {
        let stats = vec![
            TokenStats { logprobs: vec![-0.5, -1.5], entropies: vec![0.1, 0.2], values: vec![0.0, 0.3, -0.25] },
            TokenStats { logprobs: vec![], entropies: vec![], values: vec![1.0] },
        ];
        let logits: Vec<&[f32]> = vec![&[1.0, 2.0, 3.0], &[]];
        let gathered = gather(&SingleProcess, &stats, &logits).unwrap();
        assert_eq!(gathered.stats, stats);
        assert_eq!(gathered.tail_logits, vec![vec![1.0, 2.0, 3.0], vec![]]);
        let mut into = Gathered::default();
        assert!(decode(1, &[2.0, 0.0, 0.0, 0.0, -0.5], &mut into).is_err());
    }
}
