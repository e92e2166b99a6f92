//! Properties of every search on random models (random priors, values, rewards, terminal states and invalid
//! actions; discounts 1, 0.9 or -1; any batch size): visit counts add up, each node's value is the mean of what
//! was backed up through it, invalid actions are never expanded, and the result is a pure function of the seed.

use proptest::prelude::*;
use selfplay_search::{
    Evaluation, Evaluator, LeafBatch, LeafOutputs, RootOutput, Search, SearchConfig, SearchError, Tree,
};

/// A random but deterministic model: everything about a node derives from a hash of its action path.
struct RandomModel {
    num_actions: usize,
    discount: f32,
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^ (x >> 33)
}

fn unit(h: u64) -> f32 {
    (h >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
}

impl RandomModel {
    fn node(&self, h: u64) -> (Vec<f32>, Vec<bool>, f32) {
        let logits: Vec<f32> = (0..self.num_actions).map(|a| 3.0 * unit(mix(h ^ (a as u64 + 1)))).collect();
        let mut invalid: Vec<bool> =
            (0..self.num_actions).map(|a| mix(h.wrapping_add(a as u64 * 7)).is_multiple_of(5)).collect();
        invalid[(h % self.num_actions as u64) as usize] = false;
        (logits, invalid, unit(mix(h ^ 0xabc)))
    }
}

impl Evaluator for RandomModel {
    type State = u64;
    type Error = SearchError;
    fn evaluate(&mut self, leaves: &LeafBatch<'_, u64>, out: &mut LeafOutputs<u64>) -> Result<(), SearchError> {
        for (i, leaf) in leaves.iter().enumerate() {
            let h = mix(leaf.parent.wrapping_mul(31).wrapping_add(leaf.action as u64 + 1));
            let (logits, invalid, value) = self.node(h);
            let eval = Evaluation {
                state: h,
                reward: unit(mix(h ^ 0x5eed)),
                discount: self.discount,
                value,
                terminal: mix(h ^ 0x7e).is_multiple_of(8),
            };
            out.set_masked(i, eval, &logits, &invalid)?;
        }
        Ok(())
    }
}

fn run(config: SearchConfig, num_actions: usize, discount: f32, seed: u64) -> Tree<u64> {
    let mut model = RandomModel { num_actions, discount };
    let (logits, invalid, value) = model.node(seed);
    let mut tree = Tree::new(num_actions);
    tree.reset(RootOutput { state: seed, prior_logits: &logits, value, invalid_actions: Some(&invalid) })
        .expect("root");
    let mut search = Search::new(config, num_actions).expect("config");
    search.run(std::slice::from_mut(&mut tree), &mut model, 0).expect("search");
    search.policy(&mut tree).expect("policy");
    tree
}

fn configs() -> impl Strategy<Value = (SearchConfig, usize, f32, u64)> {
    (
        1usize..9,
        1usize..60,
        1usize..6,
        prop::bool::ANY,
        prop::sample::select(vec![1.0f32, 0.9, -1.0]),
        any::<u64>(),
        1usize..20,
    )
        .prop_map(|(a, sims, leaves, gumbel, discount, seed, considered)| {
            let mut config = if gumbel { SearchConfig::gumbel(sims) } else { SearchConfig::muzero(sims) };
            if let selfplay_search::Algorithm::GumbelMuZero(g) = &mut config.algorithm {
                g.max_num_considered_actions = considered;
            }
            config.leaves_per_tree = leaves;
            config.seed = seed;
            (config, a, discount, seed)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn statistics_are_consistent((config, a, discount, seed) in configs()) {
        let tree = run(config, a, discount, seed);
        let sims = config.num_simulations as u32;
        prop_assert_eq!(tree.visit_count(0), Some(sims + 1));
        prop_assert_eq!(tree.root_visit_counts().iter().sum::<u32>(), sims);
        for n in 0..tree.num_nodes() {
            let visits = tree.visit_count(n).unwrap_or(0);
            let child_sum: u32 = (0..a).map(|act| tree.child_visit_count(n, act).unwrap_or(0)).sum();
            if let Some(p) = tree.parent(n) {
                let act = tree.action_from_parent(n).unwrap_or(usize::MAX);
                prop_assert_eq!(tree.child(p, act), Some(n));
                prop_assert_eq!(tree.child_visit_count(p, act), Some(visits));
            }
            for act in 0..a {
                if !tree.is_valid(n, act) {
                    prop_assert_eq!(tree.child(n, act), None);
                }
            }
            if tree.is_terminal(n) {
                prop_assert_eq!(child_sum, 0);
                prop_assert_eq!(tree.value(n), tree.raw_value(n));
                continue;
            }
            prop_assert_eq!(visits, 1 + child_sum);
            // The mean of all backed-up returns: raw value once, plus n_a * Q(a) for every child.
            let total: f64 = f64::from(tree.raw_value(n).unwrap_or(0.0))
                + (0..a)
                    .map(|act| {
                        f64::from(tree.child_visit_count(n, act).unwrap_or(0)) * f64::from(tree.qvalue(n, act).unwrap_or(0.0))
                    })
                    .sum::<f64>();
            let mean = total / f64::from(visits);
            let value = f64::from(tree.value(n).unwrap_or(f32::NAN));
            prop_assert!((mean - value).abs() < 1e-4 * (1.0 + mean.abs()), "node {}: {} vs {}", n, value, mean);
        }
    }

    #[test]
    fn the_seed_alone_determines_the_tree((config, a, discount, seed) in configs()) {
        let first = selfplay_search::export::to_mctx_json(&run(config, a, discount, seed));
        let second = selfplay_search::export::to_mctx_json(&run(config, a, discount, seed));
        prop_assert_eq!(first, second);
    }
}
