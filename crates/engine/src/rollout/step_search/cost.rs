//! What a search spends: tokens generated and forward FLOPs, per problem.

use selfplay_model::ModelConfig;

use crate::flops::forward_flops_per_token;

/// Tokens generated and forward FLOPs spent (on one problem, or by one expansion).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    pub tokens: usize,
    pub flops: f64,
}

impl Spent {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: Spent) {
        self.tokens += other.tokens;
        self.flops += other.flops;
    }
}

/// Forward FLOPs of generating `new_tokens` after a `prompt_len`-token prompt without a prefix cache: the prompt is
/// recomputed in full (prefill), then every new token but the last is fed back. The token fed at position `i`
/// attends over `i + 1` positions; [`forward_flops_per_token`] is affine in that context, so the sum over positions
/// has a closed form.
pub fn generation_flops(config: &ModelConfig, prompt_len: usize, new_tokens: usize) -> f64 {
    if new_tokens == 0 {
        return 0.0;
    }
    let fed = (prompt_len + new_tokens - 1) as f64;
    let base = forward_flops_per_token(config, 0);
    let per_context = forward_flops_per_token(config, 1) - base;
    fed * base + per_context * fed * (fed + 1.0) / 2.0
}

/// FLOPs of one forward pass over `len` tokens (a value-head query of a prefix that was never expanded).
pub fn forward_flops(config: &ModelConfig, len: usize) -> f64 {
    generation_flops(config, len, 1)
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
        for (prompt, new) in [(1, 1), (5, 1), (5, 7), (13, 30)] {
            let direct: f64 = (0..prompt + new - 1).map(|i| forward_flops_per_token(&c, i + 1)).sum();
            let closed = generation_flops(&c, prompt, new);
            assert!((closed - direct).abs() <= 1e-9 * direct, "{prompt}+{new}: {closed} vs {direct}");
        }
        assert_eq!(generation_flops(&c, 9, 0), 0.0);
        assert_eq!(forward_flops(&c, 3), (1..=3).map(|i| forward_flops_per_token(&c, i)).sum::<f64>());
    }
}
