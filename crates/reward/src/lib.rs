//! Rewards for reasoning RL: verifiers, outcome/format/process rewards, aggregation, shaping, Bradley-Terry (no_std + alloc).
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;
