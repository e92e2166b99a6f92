//! What a search spends: tokens generated and forward FLOPs, per problem.

use selfplay_model::ModelConfig;

use crate::flops::forward_flops_per_token;

/// What a search spends on one problem (or one expansion): tokens generated, positions run through the model and
/// their forward FLOPs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    /// Tokens generated (sampled or decoded greedily).
    pub tokens: usize,
    /// Positions run through the model: the part of each prefix the KV cache did not hold (prefill), then every
    /// generated token but the last of each row (decode). Several proposals of one prefix share its prefill.
    pub forward_tokens: usize,
    /// Positions a search without any KV reuse would run for the same proposals: every proposal prefills its
    /// whole prefix and decodes its own tokens. `forward_tokens / recompute_tokens` is what the cache saves.
    pub recompute_tokens: usize,
    /// Forward FLOPs of `forward_tokens`, each position attending over all before it.
    pub flops: f64,
}

impl Spent {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: Spent) {
        self.tokens += other.tokens;
        self.forward_tokens += other.forward_tokens;
        self.recompute_tokens += other.recompute_tokens;
        self.flops += other.flops;
    }

    /// The cost of prefilling a `prefix_len`-token prefix whose first `cached` positions the KV cache held, then
    /// sampling `new_tokens[r]` tokens in each row `r` forked from it.
    pub fn expansion(config: &ModelConfig, prefix_len: usize, cached: usize, new_tokens: &[usize]) -> Spent {
        let cached = cached.min(prefix_len);
        let mut spent = Spent {
            tokens: 0,
            forward_tokens: prefix_len - cached,
            recompute_tokens: 0,
            flops: positions_flops(config, cached, prefix_len),
        };
        for &new in new_tokens.iter().filter(|&&n| n > 0) {
            spent.tokens += new;
            spent.forward_tokens += new - 1;
            spent.recompute_tokens += prefix_len + new - 1;
            spent.flops += positions_flops(config, prefix_len, prefix_len + new - 1);
        }
        spent
    }

    /// The cost of a judge reading a `len`-token sequence whose first `cached` positions its KV cache held, for its
    /// value at the last position: the uncached positions, where without reuse it would read all `len`.
    pub fn judged(config: &ModelConfig, len: usize, cached: usize) -> Spent {
        let cached = cached.min(len);
        Spent {
            tokens: 0,
            forward_tokens: len - cached,
            recompute_tokens: len,
            flops: positions_flops(config, cached, len),
        }
    }
}

/// Forward FLOPs of running positions `from..to` of one sequence through the model, the position at `i` attending
/// over `i + 1` positions (those before it cached or computed in the same pass). [`forward_flops_per_token`] is
/// affine in that context, so the sum has a closed form.
pub fn positions_flops(config: &ModelConfig, from: usize, to: usize) -> f64 {
    if to <= from {
        return 0.0;
    }
    let base = forward_flops_per_token(config, 0);
    let per_context = forward_flops_per_token(config, 1) - base;
    // Σ_{i<n} (base + per_context·(i + 1)).
    let prefix_sum = |n: f64| n * base + per_context * n * (n + 1.0) / 2.0;
    prefix_sum(to as f64) - prefix_sum(from as f64)
}

/// FLOPs of one forward pass over `len` tokens (a value-head query of a prefix that was never expanded).
pub fn forward_flops(config: &ModelConfig, len: usize) -> f64 {
    positions_flops(config, 0, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfplay_model::Architecture;

    fn config() -> ModelConfig {
        ModelConfig {
            architecture: Architecture::Llama,
            vocab_size: 10,
            hidden_size: 4,
            intermediate_size: 8,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            head_dim: 2,
            rms_norm_eps: 1e-6,
            rope_theta: 10000.0,
            max_position_embeddings: 64,
            tie_word_embeddings: true,
            attention_bias: false,
            o_proj_bias: false,
            bos_token_id: None,
            eos_token_id: None,
        }
    }

    /// The closed form equals summing the per-token cost position by position.
    #[test]
    fn closed_form_matches_the_sum_over_positions() {
        let c = config();
        for (from, to) in [(0, 1), (0, 5), (3, 11), (13, 42)] {
            let direct: f64 = (from..to).map(|i| forward_flops_per_token(&c, i + 1)).sum();
            let closed = positions_flops(&c, from, to);
            assert!((closed - direct).abs() <= 1e-9 * direct, "{from}..{to}: {closed} vs {direct}");
        }
        assert_eq!(positions_flops(&c, 9, 9), 0.0);
        assert_eq!(positions_flops(&c, 9, 4), 0.0);
        let split = positions_flops(&c, 0, 7) + positions_flops(&c, 7, 20);
        assert!((split - positions_flops(&c, 0, 20)).abs() <= 1e-9 * split);
        let direct = (1..=3).map(|i| forward_flops_per_token(&c, i)).sum::<f64>();
        assert!((forward_flops(&c, 3) - direct).abs() <= 1e-9 * direct);
    }

    /// An expansion prefills the uncached part of its prefix once and decodes each row; without reuse, every row
    /// would have prefilled the whole prefix itself.
    #[test]
    fn an_expansion_pays_its_uncached_prefix_once() {
        let c = config();
        let spent = Spent::expansion(&c, 10, 8, &[3, 1, 0, 5]);
        assert_eq!(spent.tokens, 9);
        // The uncached 2 of the prefix, then each row but the empty one feeds back all its tokens but the last.
        assert_eq!(spent.forward_tokens, 2 + 2 + 4);
        assert_eq!(spent.recompute_tokens, 12 + 10 + 14);
        let direct = positions_flops(&c, 8, 10) + positions_flops(&c, 10, 12) + positions_flops(&c, 10, 14);
        assert!((spent.flops - direct).abs() <= 1e-9 * direct);
        // Nothing cached, one row: exactly a generation, the 10 prompt positions and 3 tokens fed back.
        let alone = Spent::expansion(&c, 10, 0, &[4]);
        assert_eq!((alone.forward_tokens, alone.recompute_tokens), (13, 13));
        assert!((alone.flops - positions_flops(&c, 0, 13)).abs() <= 1e-9 * alone.flops);
    }

    /// A judge pays for the positions its cache lacks, where without reuse it would read the whole sequence.
    #[test]
    fn a_judge_pays_its_uncached_positions() {
        let c = config();
        let spent = Spent::judged(&c, 12, 8);
        assert_eq!((spent.tokens, spent.forward_tokens, spent.recompute_tokens), (0, 4, 12));
        assert!((spent.flops - positions_flops(&c, 8, 12)).abs() <= 1e-9 * spent.flops);
        assert_eq!(Spent::judged(&c, 5, 9).forward_tokens, 0);
    }
}
