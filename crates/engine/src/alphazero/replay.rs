//! The replay window: the newest positions of self-play with their training targets.

use std::collections::VecDeque;

use selfplay_search::Game;
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
    /// The value target for the player to move: the game's result (1 a win, 0 a draw, -1 a loss), mixed with the
    /// search's value by `[learn] search_value_weight`.
    pub value: f32,
}

impl Sample {
    /// The sample of the mirror image of this position (observation, policy and legal moves mirrored, the same
    /// value), or `None` when game `G` has no mirror or the sample does not fit `G`'s shapes.
    pub fn mirrored<G: Game>(&self) -> Option<Sample> {
        let (n, a) = (G::OBSERVATION_LEN, G::NUM_ACTIONS);
        if self.tokens.len() != n || self.legal.len() != a || self.policy.as_ref().is_some_and(|p| p.len() != a) {
            return None;
        }
        let mut tokens = vec![0; n];
        for (i, &t) in self.tokens.iter().enumerate() {
            *tokens.get_mut(G::mirror_observation_index(i)?)? = t;
        }
        let permute = |xs: &[f32]| -> Option<Vec<f32>> {
            let mut out = vec![0.0; a];
            for (i, &x) in xs.iter().enumerate() {
                *out.get_mut(G::mirror_action(i)?)? = x;
            }
            Some(out)
        };
        let mut legal = vec![false; a];
        for (i, &l) in self.legal.iter().enumerate() {
            *legal.get_mut(G::mirror_action(i)?)? = l;
        }
        let policy = match &self.policy {
            Some(p) => Some(permute(p)?),
            None => None,
        };
        Some(Sample { tokens, policy, legal, value: self.value })
    }
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
    use selfplay_search::Game;

    fn sample(v: f32) -> Sample {
        Sample { tokens: vec![0], policy: None, legal: vec![true], value: v }
    }

    /// A tic-tac-toe sample mirrored is the sample of the mirrored position, and mirroring twice is the identity.
    #[test]
    fn mirroring_a_sample_mirrors_its_position() {
        use selfplay_search::games::TicTacToe;
        let position = TicTacToe::parse("XO.X.....").unwrap();
        let mirror = TicTacToe::parse(".OX..X...").unwrap();
        let legal: Vec<bool> = (0..9).map(|a| position.is_legal(a)).collect();
        let policy: Vec<f32> = (0..9).map(|a| if legal[a] { 0.1 * a as f32 } else { 0.0 }).collect();
        let total: f32 = policy.iter().sum();
        let policy: Vec<f32> = policy.iter().map(|p| p / total).collect();
        let s = Sample { tokens: position.observation(), policy: Some(policy.clone()), legal, value: -1.0 };
        let m = s.mirrored::<TicTacToe>().unwrap();
        assert_eq!(m.tokens, mirror.observation());
        assert_eq!(m.legal, (0..9).map(|a| mirror.is_legal(a)).collect::<Vec<_>>());
        assert_eq!(m.policy.as_ref().unwrap()[2], policy[0]);
        assert_eq!(m.value, -1.0);
        assert_eq!(m.mirrored::<TicTacToe>().unwrap(), s);
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
