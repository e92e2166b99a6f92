//! The one-process collective: every operation is the identity.

use crate::{Collective, CollectiveError};

/// A run of one rank: sums and gathers over one rank change nothing, so the default costs nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn world_size(&self) -> usize {
        1
    }

    fn all_reduce_sum(&self, _values: &mut [f32]) -> Result<(), CollectiveError> {
        Ok(())
    }

    fn all_gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>, CollectiveError> {
        Ok(vec![mine.to_vec()])
    }

    fn broadcast(&self, root: usize, _bytes: &mut Vec<u8>) -> Result<(), CollectiveError> {
        if root == 0 { Ok(()) } else { Err(CollectiveError::NoSuchRank { rank: root, world_size: 1 }) }
    }

    fn barrier(&self) -> Result<(), CollectiveError> {
        Ok(())
    }
}
