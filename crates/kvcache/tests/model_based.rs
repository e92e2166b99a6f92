//! Model-based property tests: random operation sequences run against `PagedKvCache` and against a
//! plain reference (each sequence as a token list, the device pool as an array of written tokens).
//! Every copy and write the cache asks for is applied to the simulated device, so a wrong block table,
//! a missed copy-on-write or a bad prefix hit shows up as a token read back wrong.

use std::collections::BTreeSet;

use proptest::prelude::*;
use selfplay_kvcache::{BlockId, KvCacheConfig, KvCacheError, PagedKvCache, Reservation, SeqId};

const BLOCK_SIZE: u32 = 3;

#[derive(Debug, Clone)]
enum Op {
    Admit(Vec<u32>),
    Append(usize, Vec<u32>),
    Commit(usize),
    Fork(usize),
    Release(usize),
    EvictUnused,
}

fn op() -> impl Strategy<Value = Op> {
    // A two-letter alphabet makes shared prefixes common.
    let tokens = |max| prop::collection::vec(0u32..2, 0..max);
    prop_oneof![
        3 => tokens(11).prop_map(Op::Admit),
        4 => (any::<usize>(), tokens(5)).prop_map(|(i, t)| Op::Append(i, t)),
        3 => any::<usize>().prop_map(Op::Commit),
        2 => any::<usize>().prop_map(Op::Fork),
        2 => any::<usize>().prop_map(Op::Release),
        1 => Just(Op::EvictUnused),
    ]
}

struct Harness {
    kv: PagedKvCache,
    /// Simulated device pool: the token whose keys/values each slot holds.
    device: Vec<Option<u32>>,
    /// Live sequences: id, tokens, and how many leading full blocks are on its cached path.
    live: Vec<(SeqId, Vec<u32>, usize)>,
    /// Every committed full-block prefix (the reference prefix cache when nothing is evicted).
    committed: BTreeSet<Vec<u32>>,
    evictions_possible: bool,
}

impl Harness {
    fn new(num_blocks: u32, evictions_possible: bool) -> Self {
        let config = KvCacheConfig { num_blocks, block_size: BLOCK_SIZE, prefix_caching: true };
        Self {
            kv: PagedKvCache::new(config).unwrap(),
            device: vec![None; (num_blocks * BLOCK_SIZE) as usize],
            live: Vec::new(),
            committed: BTreeSet::new(),
            evictions_possible,
        }
    }

    fn pick(&self, i: usize) -> Option<usize> {
        (!self.live.is_empty()).then(|| i % self.live.len())
    }

    fn apply_reservation(&mut self, r: &Reservation, tokens: &[u32]) {
        let bs = BLOCK_SIZE as usize;
        for copy in &r.copies {
            let (src, dst) = (copy.src.index() * bs, copy.dst.index() * bs);
            let block: Vec<_> = self.device[src..src + bs].to_vec();
            self.device[dst..dst + bs].copy_from_slice(&block);
        }
        assert_eq!(r.slots.len(), tokens.len());
        for (&slot, &token) in r.slots.iter().zip(tokens) {
            let block = BlockId(slot / BLOCK_SIZE);
            assert_eq!(self.kv.pool().refcount(block), 1, "write into shared block {block:?}");
            self.device[slot as usize] = Some(token);
        }
    }

    fn expected_hit(&self, prompt: &[u32]) -> usize {
        let bs = BLOCK_SIZE as usize;
        let reusable = prompt.len().saturating_sub(1) / bs;
        (1..=reusable).take_while(|k| self.committed.contains(&prompt[..k * bs])).count() * bs
    }

    fn run(&mut self, op: Op) {
        match op {
            Op::Admit(prompt) => {
                let expected = self.expected_hit(&prompt);
                match self.kv.admit(&prompt) {
                    Ok(a) => {
                        if self.evictions_possible {
                            assert!(a.cached_tokens <= expected);
                        } else {
                            assert_eq!(a.cached_tokens, expected, "prefix hit for {prompt:?}");
                        }
                        self.apply_reservation(&a.reservation, &prompt[a.cached_tokens..]);
                        let cached = a.cached_tokens / BLOCK_SIZE as usize;
                        self.live.push((a.seq, prompt, cached));
                    }
                    Err(KvCacheError::OutOfBlocks { .. }) => self.evictions_possible = true,
                    Err(e) => panic!("admit: {e}"),
                }
            }
            Op::Append(i, tokens) => {
                let Some(i) = self.pick(i) else { return };
                let seq = self.live[i].0;
                match self.kv.append(seq, &tokens) {
                    Ok(r) => {
                        self.apply_reservation(&r, &tokens);
                        self.live[i].1.extend_from_slice(&tokens);
                    }
                    Err(KvCacheError::OutOfBlocks { .. } | KvCacheError::SequenceTooLong(_)) => {
                        self.evictions_possible = true
                    }
                    Err(e) => panic!("append: {e}"),
                }
            }
            Op::Commit(i) => {
                let Some(i) = self.pick(i) else { return };
                self.kv.commit(self.live[i].0).unwrap();
                let bs = BLOCK_SIZE as usize;
                let full = self.live[i].1.len() / bs;
                self.live[i].2 = full;
                for k in 1..=full {
                    self.committed.insert(self.live[i].1[..k * bs].to_vec());
                }
            }
            Op::Fork(i) => {
                let Some(i) = self.pick(i) else { return };
                let child = self.kv.fork(self.live[i].0).unwrap();
                let entry = (child, self.live[i].1.clone(), self.live[i].2);
                self.live.push(entry);
            }
            Op::Release(i) => {
                let Some(i) = self.pick(i) else { return };
                let (seq, _, _) = self.live.swap_remove(i);
                self.kv.release(seq).unwrap();
                assert_eq!(self.kv.release(seq), Err(KvCacheError::UnknownSequence(seq)));
            }
            Op::EvictUnused => {
                self.kv.evict_unused();
                // Only the paths live sequences are building on survive.
                let bs = BLOCK_SIZE as usize;
                self.committed = self
                    .live
                    .iter()
                    .flat_map(|(_, t, cached)| (1..=*cached).map(move |k| t[..k * bs].to_vec()))
                    .collect();
            }
        }
    }

    fn check_invariants(&self) {
        let capacity = self.kv.pool().capacity();
        let mut uses = vec![0u32; capacity];
        for (seq, tokens, _) in &self.live {
            assert_eq!(self.kv.tokens(*seq).unwrap(), &tokens[..]);
            let table = self.kv.block_table(*seq).unwrap();
            assert_eq!(table.len(), tokens.len().div_ceil(BLOCK_SIZE as usize));
            for &b in table {
                uses[b.index()] += 1;
            }
            for (pos, &token) in tokens.iter().enumerate() {
                let slot = self.kv.slot(*seq, pos).unwrap();
                assert_eq!(self.device[slot as usize], Some(token), "{seq:?} reads a wrong token at {pos}");
            }
        }
        let free: BTreeSet<_> = self.kv.pool().free_blocks().iter().copied().collect();
        assert_eq!(free.len(), self.kv.pool().free_blocks().len(), "a block is on the free list twice");
        let mut held_by_cache = 0;
        for (index, &used) in uses.iter().enumerate() {
            let block = BlockId(index as u32);
            let count = self.kv.pool().refcount(block);
            assert!(count >= used, "{block:?}: refcount {count} below its {used} uses");
            assert_eq!(count == 0, free.contains(&block), "{block:?} both free and used, or lost");
            held_by_cache += count - used;
        }
        assert_eq!(held_by_cache as usize, self.kv.cached_blocks(), "each cached block holds exactly one ref");
    }

    fn drain(mut self) {
        for (seq, _, _) in std::mem::take(&mut self.live) {
            self.kv.release(seq).unwrap();
        }
        self.kv.evict_unused();
        assert_eq!(self.kv.cached_blocks(), 0);
        assert_eq!(self.kv.free_blocks(), self.kv.pool().capacity(), "blocks leaked");
    }
}

fn run_model(num_blocks: u32, ops: Vec<Op>) {
    // A pool this small may evict silently inside a successful call, so hits are only bounded there.
    let mut h = Harness::new(num_blocks, num_blocks < 1024);
    for op in ops {
        h.run(op);
        h.check_invariants();
    }
    h.drain();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Ample pool: nothing is ever evicted, so prefix hits must equal the reference exactly.
    #[test]
    fn ample_pool_matches_reference(ops in prop::collection::vec(op(), 1..60)) {
        run_model(4096, ops);
    }

    /// Tight pool: allocation failures and LRU evictions happen; bookkeeping must stay exact and every
    /// prefix hit must still read the right tokens.
    #[test]
    fn tight_pool_stays_consistent(ops in prop::collection::vec(op(), 1..80)) {
        run_model(7, ops);
    }
}
