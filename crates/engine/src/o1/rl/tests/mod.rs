//! Tests of the RL step against independent references: finite differences of a loss written out
//! directly from the model's logits, hand-computed advantages, the SFT loss, and behaviour on a toy task.

mod advantages;
mod expert;
mod gradient;
mod proposing;
mod rollouts;
mod training;

use selfplay_model::{Architecture, CharTokenizer, Model, ModelConfig, ModelWeights, Tokenizer, init_weights};
use selfplay_reward::{Reward, Verdict};
use selfplay_tasks::{Split, Task, TasksError};

/// A task a random tiny model already solves a quarter of the time, so every algorithm has signal from
/// the first step: answer the prompt `"<C>:"` with any lowercase letter first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LowercaseTask;

impl Task for LowercaseTask {
    type Problem = char;

    fn name(&self) -> &'static str {
        "lowercase"
    }

    fn prompt(&self, problem: &char) -> String {
        format!("{problem}:")
    }

    fn reward(&self, _problem: &char, completion: &[u8]) -> Reward {
        if completion.first().is_some_and(u8::is_ascii_lowercase) {
            Reward { value: 1.0, verdict: Verdict::Correct }
        } else {
            Reward { value: 0.0, verdict: Verdict::WrongValue }
        }
    }

    fn answer_key(&self, _problem: &char, completion: &[u8]) -> Option<String> {
        completion.first().map(|&b| char::from(b).to_string())
    }

    fn solution_trace(&self, problem: &char) -> Option<String> {
        Some(problem.to_ascii_lowercase().to_string())
    }

    fn generate(&self, _split: Split, n: usize, seed: u64) -> Result<Vec<char>, TasksError> {
        Ok((0..n).map(|i| char::from(b'A' + ((i as u64 + seed) % 26) as u8)).collect())
    }
}

/// The tokenizer every test uses.
pub(crate) fn tokenizer() -> CharTokenizer {
    CharTokenizer::ascii()
}

/// A one-layer transformer over the character vocabulary, initialised with `std` from `seed`.
pub(crate) fn tiny_model(std: f32, seed: u64) -> Model {
    let tok = tokenizer();
    let config = ModelConfig {
        architecture: Architecture::Llama,
        vocab_size: tok.vocab_size(),
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        head_dim: 8,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        max_position_embeddings: 16,
        tie_word_embeddings: true,
        attention_bias: false,
        o_proj_bias: false,
        bos_token_id: tok.bos_id(),
        eos_token_id: tok.eos_id(),
    };
    let weights = init_weights(&config, std, seed).expect("valid tiny config");
    Model::new(config, weights).expect("weights match their config")
}

/// Every weight of a model, flattened in name order.
pub(super) fn flat_weights(model: &Model) -> Vec<f32> {
    model.weights().named().into_iter().flat_map(|(_, t)| t.data().to_vec()).collect()
}

/// The loss of `rows` under `plan` and its gradient with respect to `model`'s weights, through the trainer every
/// RL update takes.
pub(super) fn loss_and_grads(
    model: &Model,
    rows: &[&crate::o1::rl::update::Row],
    plan: &crate::o1::rl::update::Plan,
) -> Result<(crate::o1::rl::Terms, ModelWeights), crate::o1::rl::RlError> {
    let tokens: Vec<&[u32]> = rows.iter().map(|r| r.tokens.as_slice()).collect();
    let mut trainer = crate::train::Trainer::new();
    let terms = trainer.gradient(model, &selfplay_collective::SingleProcess, &tokens, |pass| {
        crate::o1::rl::update::loss(rows, plan, pass.stats)
    })?;
    let grads = trainer.gradient_buffer().cloned().ok_or(crate::o1::rl::RlError::Internal("no gradient"))?;
    Ok((terms, grads))
}

/// Proposes [`LowercaseTask`] problems: the prompt `"?:"`, a proposal is one capital letter. `Q` is refused as
/// unsolvable and `Z` as held out, to see every kind of rejection counted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LetterProposer;

impl selfplay_tasks::Propose for LetterProposer {
    type Problem = char;

    fn proposer_prompt(&self) -> String {
        "?:".into()
    }

    fn proposal(&self, problem: &char) -> Option<String> {
        Some(problem.to_string())
    }

    fn certify(&self, completion: &[u8]) -> Result<char, selfplay_tasks::Rejection> {
        use selfplay_tasks::Rejection;
        match completion {
            [b'Q'] => Err(Rejection::Unsolvable),
            [b'Z'] => Err(Rejection::HeldOut),
            [c] if c.is_ascii_uppercase() => Ok(char::from(*c)),
            [c] if c.is_ascii_lowercase() => Err(Rejection::OutOfRange),
            _ => Err(Rejection::Malformed),
        }
    }
}
