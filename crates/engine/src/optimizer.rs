//! AdamW over a model's weights: the learn crate's optimiser walked over [`ModelWeights`] tensor by tensor, in
//! layout order (slices of the flat parameter and gradient buffers), with the usual exemptions from weight
//! decay (norms, biases, value-head bias) and global-norm clipping.

use selfplay_learn::LearnError;
use selfplay_learn::optim::{AdamW, AdamWConfig, AdamWState, clip_grad_norm_with};
use selfplay_learn::schedule::WarmupCosine;
use selfplay_model::ModelWeights;

/// Hyper-parameters of one optimisation phase (SFT or RL).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimConfig {
    pub lr: f32,
    pub weight_decay: f32,
    pub warmup_steps: u64,
    pub total_steps: u64,
    /// Global gradient-norm clip (`f32::INFINITY` disables it).
    pub max_grad_norm: f32,
    /// Where the cosine decay ends, as a fraction of `lr` (0: down to nothing; 1: a constant rate after warm-up).
    pub min_lr_ratio: f32,
}

impl OptimConfig {
    /// `steps` updates at peak `lr`: linear warm-up over the first 5%, then cosine decay; gradients clipped at
    /// global norm 1 (policy initialisation and the value model).
    pub fn warmup_cosine(lr: f32, weight_decay: f32, steps: u64) -> Self {
        OptimConfig {
            lr,
            weight_decay,
            warmup_steps: steps / 20,
            total_steps: steps,
            max_grad_norm: 1.0,
            min_lr_ratio: 0.0,
        }
    }
}

/// AdamW plus its learning-rate schedule, bound to one model's parameter layout.
#[derive(Debug, Clone)]
pub struct ModelOptimizer {
    adamw: AdamW,
    schedule: WarmupCosine,
    config: OptimConfig,
}

/// What one update did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateStats {
    /// Gradient norm before clipping.
    pub grad_norm: f32,
    /// Learning rate used.
    pub lr: f32,
}

/// Whether weight decay applies to a parameter, by its name (the static part of a layer's name ends as the
/// full name does).
fn decays(name: &str) -> bool {
    !(name.ends_with("norm.weight") || name.ends_with(".bias"))
}

impl ModelOptimizer {
    /// An optimiser for `weights`' layout with zeroed moments.
    pub fn new(weights: &ModelWeights, config: OptimConfig) -> Result<Self, LearnError> {
        let lens: Vec<usize> = weights.iter().map(|(e, _)| e.numel()).collect();
        let adamw_config = AdamWConfig { weight_decay: config.weight_decay, ..AdamWConfig::default() };
        adamw_config.validate()?;
        let mut adamw = AdamW::new(adamw_config, &lens);
        let mask: Vec<bool> = weights.iter().map(|(e, _)| decays(e.name.name)).collect();
        adamw.set_weight_decay_mask(&mask)?;
        let schedule = WarmupCosine {
            min_lr_ratio: f64::from(config.min_lr_ratio),
            ..WarmupCosine::new(config.warmup_steps, config.total_steps.max(1))
        };
        schedule.validate()?;
        Ok(ModelOptimizer { adamw, schedule, config })
    }

    /// Clips `grads` and applies one AdamW step at the schedule's learning rate for the current step. Walks
    /// parameters and gradients in place, one tensor's slice of each flat buffer at a time (the squares summed
    /// per tensor in layout order, as clipping a list of tensors does, so the numbers are those of the learn
    /// crate's slice API): allocates nothing.
    pub fn step(&mut self, weights: &mut ModelWeights, grads: &mut ModelWeights) -> Result<UpdateStats, LearnError> {
        let grad_norm = clip_grad_norm_with(self.config.max_grad_norm, |visit| {
            grads.for_each_mut(|_, g| visit(g));
        });
        let lr = self.schedule.lr(self.config.lr, self.adamw.step_count());
        self.adamw.step_with(lr, |visit| weights.for_each_pair_mut(grads, |p, g| visit(p, g)))?;
        // A value head loaded as a stand-in (zeros, from a file without one) becomes real once it learns.
        if !weights.has_value_head() && grads.value_head().iter().chain(grads.value_bias()).any(|&g| g != 0.0) {
            weights.mark_value_head_trained();
        }
        Ok(UpdateStats { grad_norm, lr })
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.adamw.step_count()
    }

    /// The moments and step count, for a checkpoint.
    pub fn state(&self) -> &AdamWState {
        self.adamw.state()
    }

    /// Continues from a checkpoint's moments and step count (lengths and values are checked).
    pub fn restore(&mut self, state: AdamWState) -> Result<(), LearnError> {
        self.adamw.import_state(state)
    }
}

#[cfg(test)]
mod tests {
    use selfplay_model::safetensors_io::weights_from_tensors;
    use selfplay_model::{Architecture, ModelConfig};
    use selfplay_tensor::Tensor;

    use super::*;

    /// The schedule's floor: a cosine from `lr` down to `min_lr_ratio · lr` at the last update, held there after.
    #[test]
    fn the_decay_ends_at_the_floor() {
        let config = ModelConfig {
            architecture: Architecture::Llama,
            vocab_size: 8,
            hidden_size: 4,
            intermediate_size: 8,
            num_hidden_layers: 1,
            num_attention_heads: 1,
            num_key_value_heads: 1,
            head_dim: 4,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: 8,
            tie_word_embeddings: true,
            attention_bias: false,
            o_proj_bias: false,
            bos_token_id: None,
            eos_token_id: None,
        };
        let mut weights = ModelWeights::zeros(&config).unwrap();
        for (floor, expected) in [(0.0, [1e-3, 0.5e-3, 0.0, 0.0]), (0.25, [1e-3, 0.625e-3, 0.25e-3, 0.25e-3])] {
            let optim = OptimConfig {
                lr: 1e-3,
                weight_decay: 0.0,
                warmup_steps: 0,
                total_steps: 4,
                max_grad_norm: 1.0,
                min_lr_ratio: floor,
            };
            let mut optimizer = ModelOptimizer::new(&weights, optim).unwrap();
            let mut grads = weights.zeros_like();
            let lrs: Vec<f32> = (0..6).map(|_| optimizer.step(&mut weights, &mut grads).unwrap().lr).collect();
            // Updates 0, 2, 4 and 5: the peak, halfway down the cosine, the floor, and still the floor past the end.
            for (got, want) in [lrs[0], lrs[2], lrs[4], lrs[5]].into_iter().zip(expected) {
                assert!((got - want).abs() < 1e-9, "floor {floor}: {lrs:?}");
            }
        }
    }

    /// A value head loaded as zeros from a file without one stays "none" through steps that do not touch it (it
    /// saves without it), and becomes a real head with the first step that updates it.
    #[test]
    fn a_loaded_stand_in_value_head_becomes_real_once_trained() {
        let config = ModelConfig {
            architecture: Architecture::Llama,
            vocab_size: 8,
            hidden_size: 4,
            intermediate_size: 8,
            num_hidden_layers: 1,
            num_attention_heads: 1,
            num_key_value_heads: 1,
            head_dim: 4,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            max_position_embeddings: 8,
            tie_word_embeddings: true,
            attention_bias: false,
            o_proj_bias: false,
            bos_token_id: None,
            eos_token_id: None,
        };
        let tensors = ModelWeights::zeros(&config)
            .unwrap()
            .iter()
            .filter(|(entry, _)| !entry.name.to_string().starts_with("value_head."))
            .map(|(entry, data)| {
                (entry.name.to_string(), Tensor::from_vec(entry.dims().to_vec(), data.to_vec()).unwrap())
            })
            .collect();
        let mut weights = weights_from_tensors(&config, tensors).unwrap();
        let mut optimizer = ModelOptimizer::new(&weights, OptimConfig::warmup_cosine(1e-3, 0.0, 10)).unwrap();
        let mut grads = weights.zeros_like();
        grads.embed_tokens_mut().fill(0.5);
        optimizer.step(&mut weights, &mut grads).unwrap();
        assert!(!weights.has_value_head(), "a step that leaves the head alone");
        grads.head_mut().value_bias[0] = 1.0;
        optimizer.step(&mut weights, &mut grads).unwrap();
        assert!(weights.has_value_head(), "a step that trains the head");
    }
}
