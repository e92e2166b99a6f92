//! Batched sampling (sampling.cu): one launch for a whole batch, each row with its own parameters and stream.

use cudarc::driver::{CudaSlice, PushKernelArg};
use selfplay_model::{Sampled, SamplingParams};

use super::{SAMPLE_THREADS, need, per_row, to_i32};
use crate::device::GpuContext;
use crate::error::{Result, invalid};

/// One row's sampling request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRequest {
    /// Filters and temperature.
    pub params: SamplingParams,
    /// The row's stream key (derive it from the run seed and the sequence, not the batch slot).
    pub seed: u64,
    /// The row's counter: the decode step.
    pub step: u64,
}

impl GpuContext {
    /// Samples one token per row of `logits` (`[rows, vocab]`, f32) in one launch.
    pub fn sample(&self, logits: &CudaSlice<f32>, vocab: usize, rows: &[SampleRequest]) -> Result<Vec<Sampled>> {
        const OP: &str = "sample";
        if vocab == 0 {
            return Err(invalid(OP, "empty vocabulary"));
        }
        need(OP, "logits", logits.len(), rows.len() * vocab)?;
        for (i, r) in rows.iter().enumerate() {
            r.params.validate().map_err(|e| invalid(OP, format!("row {i}: {e}")))?;
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.stream();
        let temps: Vec<f32> = rows.iter().map(|r| r.params.temperature).collect();
        let top_ks: Vec<i32> = rows.iter().map(|r| i32::try_from(r.params.top_k).unwrap_or(i32::MAX)).collect();
        let top_ps: Vec<f32> = rows.iter().map(|r| r.params.top_p).collect();
        let min_ps: Vec<f32> = rows.iter().map(|r| r.params.min_p).collect();
        let seeds: Vec<u64> = rows.iter().map(|r| r.seed).collect();
        let steps: Vec<u64> = rows.iter().map(|r| r.step).collect();
        let (t, k, p, m) =
            (s.clone_htod(&temps)?, s.clone_htod(&top_ks)?, s.clone_htod(&top_ps)?, s.clone_htod(&min_ps)?);
        let (seed_dev, step_dev) = (s.clone_htod(&seeds)?, s.clone_htod(&steps)?);
        let mut tokens = s.alloc_zeros::<u32>(rows.len())?;
        let mut logprobs = s.alloc_zeros::<f32>(rows.len())?;
        let mut model_logprobs = s.alloc_zeros::<f32>(rows.len())?;
        let v = to_i32(OP, "vocab", vocab)?;
        let mut b = s.launch_builder(self.function("sample_rows")?);
        b.arg(logits).arg(&v).arg(&t).arg(&k).arg(&p).arg(&m).arg(&seed_dev).arg(&step_dev);
        b.arg(&mut tokens).arg(&mut logprobs).arg(&mut model_logprobs);
        // SAFETY: arguments match sample_rows; logits hold rows * vocab and every per-row array holds rows entries.
        unsafe { b.launch(per_row(OP, rows.len(), SAMPLE_THREADS)?) }?;
        let (tokens, logprobs, model_logprobs) =
            (s.clone_dtoh(&tokens)?, s.clone_dtoh(&logprobs)?, s.clone_dtoh(&model_logprobs)?);
        tokens
            .into_iter()
            .zip(logprobs)
            .zip(model_logprobs)
            .enumerate()
            .map(|(i, ((token, logprob), model_logprob))| {
                if token as usize >= vocab {
                    return Err(invalid(OP, format!("row {i}: logits hold NaN or +inf, or every token is -inf")));
                }
                Ok(Sampled { token, logprob, model_logprob })
            })
            .collect()
    }
}
