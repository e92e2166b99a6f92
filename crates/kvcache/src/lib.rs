//! Paged KV-cache bookkeeping: block pool, block tables, refcounts, copy-on-write forks, radix prefix cache (host side, no_std + alloc).
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;
