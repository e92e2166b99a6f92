//! The replay window: the newest positions of self-play with their training targets.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// One position to learn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The observation tokens (from the view of the player to move).
    pub tokens: Vec<u32>,
    /// The search's improved policy over every action (0 on illegal ones); `None` after a fast search, which
    /// gives no policy target (playout-cap randomisation).
    pub policy: Option<Vec<f32>>,
    /// `true` at the legal actions.
    pub legal: Vec<bool>,
    /// The game's result for the player to move: 1 a win, 0 a draw, -1 a loss.
    pub value: f32,
}

/// The newest `capacity` samples, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayBuffer {
    capacity: usize,
    samples: VecDeque<Sample>,
}

impl ReplayBuffer {
    /// An empty window of `capacity` samples (at least 1).
    pub fn new(capacity: usize) -> Self {
        ReplayBuffer { capacity: capacity.max(1), samples: VecDeque::new() }
    }

    /// Adds `samples`, dropping the oldest beyond the capacity.
    pub fn extend(&mut self, samples: impl IntoIterator<Item = Sample>) {
        for s in samples {
            if self.samples.len() == self.capacity {
                self.samples.pop_front();
            }
            self.samples.push_back(s);
        }
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples, oldest first, as one slice (rearranging the ring in place; no copy when it is contiguous).
    pub fn as_slice(&mut self) -> &[Sample] {
        self.samples.make_contiguous()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(v: f32) -> Sample {
        Sample { tokens: vec![0], policy: None, legal: vec![true], value: v }
    }

    #[test]
    fn the_window_keeps_the_newest() {
        let mut replay = ReplayBuffer::new(3);
        replay.extend((0..5).map(|i| sample(i as f32)));
        let values: Vec<f32> = replay.as_slice().iter().map(|s| s.value).collect();
        assert_eq!(values, [2.0, 3.0, 4.0]);
        let text = serde_json::to_string(&replay).unwrap();
        assert_eq!(serde_json::from_str::<ReplayBuffer>(&text).unwrap(), replay);
    }
}
