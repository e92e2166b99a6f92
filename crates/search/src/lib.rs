//! Search for reasoning and games: best-of-N, voting, step beam search, MCTS (PUCT), Gumbel MuZero (no_std + alloc).
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;
