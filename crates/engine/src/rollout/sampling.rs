//! Sampling many completions per prompt through the model's batched generation loop.
//!
//! Rows are generated in chunks so the preallocated KV caches stay small, and every row's seed is a
//! function of (seed, prompt index, sample index) alone: a completion never depends on the chunking or
//! on which other prompts share its batch.

use selfplay_model::HostAccess;
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{Generation, GenerationConfig};
use selfplay_model::{IoError, Model, ModelError};

/// Rows per call of the generation loop: large enough to keep the GEMMs busy, small enough for the cache.
const ROWS_PER_CHUNK: usize = 256;

/// The token ids a prompt is fed as: BOS, then the prompt's characters.
pub fn encode_prompt(tokenizer: &dyn Tokenizer, prompt: &str) -> Result<Vec<u32>, IoError> {
    let mut ids: Vec<u32> = tokenizer.bos_id().into_iter().collect();
    ids.extend(tokenizer.encode(prompt)?);
    Ok(ids)
}

/// The text of a completion's tokens up to its stop token, if any (what verifiers read).
pub fn completion_text(tokenizer: &dyn Tokenizer, tokens: &[u32]) -> Result<String, IoError> {
    let eos = tokenizer.eos_id();
    let end = tokens.iter().position(|&t| Some(t) == eos).unwrap_or(tokens.len());
    tokenizer.decode(&tokens[..end])
}

/// SplitMix64 of the three inputs: independent, well-spread seeds for each (prompt, sample) row.
pub fn row_seed(seed: u64, prompt: u64, sample: u64) -> u64 {
    let mut z = seed ^ prompt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ sample.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `samples` completions for each prompt; `out[p][s]` is sample `s` of prompt `p`. `prompt_ids[p]` names
/// prompt `p` for seeding (e.g. its index in the problem set), so the same problem gets the same samples
/// whichever batch it is drawn in.
pub fn sample<B: HostAccess>(
    model: &Model<B>,
    prompts: &[Vec<u32>],
    prompt_ids: &[u64],
    samples: usize,
    config: &GenerationConfig,
    seed: u64,
) -> Result<Vec<Vec<Generation>>, ModelError> {
    let rows: Vec<(usize, usize)> = (0..prompts.len()).flat_map(|p| (0..samples).map(move |s| (p, s))).collect();
    let mut out: Vec<Vec<Generation>> = prompts.iter().map(|_| Vec::with_capacity(samples)).collect();
    for chunk in rows.chunks(ROWS_PER_CHUNK) {
        let inputs: Vec<&[u32]> = chunk.iter().map(|&(p, _)| prompts[p].as_slice()).collect();
        let seeds: Vec<u64> = chunk.iter().map(|&(p, s)| row_seed(seed, prompt_ids[p], s as u64)).collect();
        for (&(p, _), generation) in chunk.iter().zip(model.generate(&inputs, config, &seeds)?) {
            out[p].push(generation);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_seeds_differ_and_repeat() {
        assert_eq!(row_seed(1, 2, 3), row_seed(1, 2, 3));
        assert_ne!(row_seed(1, 2, 3), row_seed(1, 3, 2));
        assert_ne!(row_seed(1, 0, 0), row_seed(2, 0, 0));
    }
}
