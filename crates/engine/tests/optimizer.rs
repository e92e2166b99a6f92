//! The optimizer step over a model's weights: the same bits as AdamW and clipping over lists of slices (the
//! learn crate's reference path), and no allocation after the first step (counted by a global allocator),
//! alone and after a whole training step.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use selfplay_engine::optimizer::{ModelOptimizer, OptimConfig};
use selfplay_learn::optim::{AdamW, AdamWConfig, clip_grad_norm};
use selfplay_model::backend::counting;
use selfplay_model::{
    Architecture, CountingBackend, CpuBackend, Model, ModelConfig, ModelWeights, SequenceGrads, init_weights,
};

/// Counts allocations (and reallocations) made on each thread, outside backend ops.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // A thread being torn down has no counter left; it is not the one measured. Allocations inside a
    // backend op are the CPU kernels', whose own test counts them.
    if !counting::inside_op() {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: defers every call to the system allocator unchanged; counting touches only a const-initialised
// thread-local, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc`/`realloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as for `dealloc`, and `new_size` is the caller's, valid by `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn config() -> ModelConfig {
    ModelConfig {
        architecture: Architecture::Llama,
        vocab_size: 19,
        hidden_size: 16,
        intermediate_size: 24,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        head_dim: 8,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        max_position_embeddings: 32,
        tie_word_embeddings: false,
        attention_bias: true,
        o_proj_bias: true,
        bos_token_id: None,
        eos_token_id: None,
    }
}

/// Gradients with a recognisable pattern, large enough for clipping to act.
fn gradients(weights: &ModelWeights, step: usize) -> ModelWeights {
    let mut grads = weights.zeros_like();
    let mut k = step;
    grads.for_each_mut(|_, t| {
        for x in t {
            k = k.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            *x = ((k >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0;
        }
    });
    grads
}

#[test]
fn the_model_optimizer_takes_the_reference_steps_and_allocates_nothing_after_the_first() {
    let config = config();
    let start = init_weights(&config, 0.02, 3).unwrap();
    let optim = OptimConfig {
        lr: 1e-2,
        weight_decay: 0.1,
        warmup_steps: 1,
        total_steps: 6,
        max_grad_norm: 1.0,
        min_lr_ratio: 0.0,
    };
    let mut ours = start.clone();
    let mut optimizer = ModelOptimizer::new(&ours, optim).unwrap();

    // The reference: the learn crate's slice API over the same tensors, same decay mask and schedule.
    let mut reference = start.clone();
    let lens: Vec<usize> = reference.iter().map(|(e, _)| e.numel()).collect();
    let mut adamw = AdamW::new(AdamWConfig { weight_decay: 0.1, ..AdamWConfig::default() }, &lens);
    let mask: Vec<bool> =
        reference.named().iter().map(|(n, _)| !(n.ends_with("norm.weight") || n.ends_with(".bias"))).collect();
    adamw.set_weight_decay_mask(&mask).unwrap();
    let schedule = selfplay_learn::schedule::WarmupCosine::new(1, 6);

    let mut counted = Vec::new();
    for step in 0..6 {
        let mut grads = gradients(&start, step);
        let mut reference_grads = grads.clone();
        let before = allocations();
        let stats = optimizer.step(&mut ours, &mut grads).unwrap();
        counted.push(allocations() - before);

        let mut g: Vec<&mut [f32]> = reference_grads.iter_mut().map(|(_, t)| t).collect();
        let norm = clip_grad_norm(&mut g, 1.0);
        let lr = schedule.lr(1e-2, adamw.step_count());
        let g: Vec<&[f32]> = g.iter().map(|g| &**g).collect();
        let mut p: Vec<&mut [f32]> = reference.iter_mut().map(|(_, t)| t).collect();
        adamw.step(&mut p, &g, lr).unwrap();
        assert_eq!((stats.grad_norm.to_bits(), stats.lr.to_bits()), (norm.to_bits(), lr.to_bits()), "step {step}");
        let bits = |w: &ModelWeights| w.as_flat().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(bits(&ours) == bits(&reference), "step {step}: weights differ from the reference");
    }
    // Counted on this thread only: after the first step, the optimizer allocates nothing.
    assert!(counted[1..].iter().all(|&n| n == 0), "allocations per step: {counted:?}");
}

/// A whole training step (forward, statistics, backward into a reused gradient buffer) and then the
/// optimizer step over the flat weights and gradients: after the first, no allocation outside the CPU
/// kernels. The weights keep changing, so every step does real work.
#[test]
fn a_training_step_and_an_optimizer_step_allocate_nothing_after_the_first() {
    let config = config();
    let weights = init_weights(&config, 0.1, 5).unwrap();
    let mut model = Model::with_backend(config, weights, CountingBackend::<CpuBackend>::default()).unwrap();
    let optim = OptimConfig {
        lr: 1e-2,
        weight_decay: 0.1,
        warmup_steps: 1,
        total_steps: 6,
        max_grad_norm: 1.0,
        min_lr_ratio: 0.0,
    };
    let mut optimizer = ModelOptimizer::new(model.weights(), optim).unwrap();
    let seqs: [Vec<u32>; 3] =
        [(0..11).map(|i| (i * 7 + 3) % 19).collect(), (0..6).map(|i| (i * 5 + 1) % 19).collect(), vec![4, 9, 2]];
    let batch: [&[u32]; 3] = std::array::from_fn(|i| seqs[i].as_slice());
    // Cross-entropy on every next token and value regression to 0.5, in buffers reused from step to step.
    let d_logprobs: [Vec<f32>; 3] = std::array::from_fn(|i| vec![-1.0 / (seqs[i].len() - 1) as f32; seqs[i].len() - 1]);
    let mut d_values: [Vec<f32>; 3] = std::array::from_fn(|i| vec![0.0; seqs[i].len()]);
    let mut grads = model.weights().zeros_like();
    let mut stats = Vec::new();
    let (mut counted, mut norms) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        let before = allocations();
        grads.fill_zero();
        let pass = model.forward_train(&batch).unwrap();
        pass.token_stats_into(&mut stats);
        for (d, s) in d_values.iter_mut().zip(&stats) {
            d.iter_mut().zip(&s.values).for_each(|(d, &v)| *d = v - 0.5);
        }
        let g: [SequenceGrads<'_>; 3] = std::array::from_fn(|i| SequenceGrads {
            d_logprobs: &d_logprobs[i],
            d_entropies: None,
            d_values: Some(&d_values[i]),
            d_logits: None,
        });
        model.backward(&pass, &g, &mut grads).unwrap();
        model.recycle(pass);
        let update = optimizer.step(model.weights_mut(), &mut grads).unwrap();
        counted.push(allocations() - before);
        norms.push(update.grad_norm);
    }
    assert!(norms.iter().all(|n| n.is_finite() && *n > 0.0) && norms[0] != norms[3], "{norms:?}");
    // The first step allocates the model's reused buffers (so the count sees them); later ones nothing.
    assert!(
        counted[0] > 0 && counted[1..].iter().all(|&n| n == 0),
        "allocations per step outside the kernels: {counted:?}"
    );
}
