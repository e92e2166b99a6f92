//! Learning for reasoning RL: advantages, policy/value/KL/DPO/BC losses with gradients, AdamW, schedules (no_std + alloc).
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;
