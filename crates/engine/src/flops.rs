//! Compute accounting: forward FLOPs per token of a transformer, the unit every scaling curve is drawn in.

use selfplay_model::ModelConfig;

/// Multiply-adds count two FLOPs. A token's forward pass costs twice the weights it multiplies (every
/// linear layer and the output projection; embedding lookups are free) plus attention over `context`
/// earlier positions (scores and weighted sum: `4 · context · q_dim` per layer).
pub fn forward_flops_per_token(config: &ModelConfig, context: usize) -> f64 {
    let (h, q, kv, i) = (config.hidden_size, config.q_dim(), config.kv_dim(), config.intermediate_size);
    let per_layer = h * q + 2 * h * kv + q * h + 3 * h * i;
    let matmul = config.num_hidden_layers * per_layer + config.vocab_size * h + h;
    let attention = 4 * config.num_hidden_layers * context * q;
    2.0 * matmul as f64 + attention as f64
}

/// Forward plus backward: the backward pass costs about twice the forward.
pub fn train_flops_per_token(config: &ModelConfig, context: usize) -> f64 {
    3.0 * forward_flops_per_token(config, context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfplay_model::Architecture;

    #[test]
    fn counts_linear_layers_and_attention() {
        let config = ModelConfig {
            architecture: Architecture::Llama,
            vocab_size: 10,
            hidden_size: 4,
            intermediate_size: 8,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            head_dim: 2,
            rms_norm_eps: 1e-6,
            rope_theta: 10000.0,
            max_position_embeddings: 16,
            tie_word_embeddings: true,
            attention_bias: false,
            o_proj_bias: false,
            bos_token_id: None,
            eos_token_id: None,
        };
        // q 16 + k,v 2·8 + o 16 + mlp 3·32 = 144; lm head 40; value head 4 → 188 MACs; attention 4·1·3·4 = 48.
        assert_eq!(forward_flops_per_token(&config, 3), 2.0 * 188.0 + 48.0);
        assert_eq!(train_flops_per_token(&config, 0), 3.0 * 376.0);
    }
}
