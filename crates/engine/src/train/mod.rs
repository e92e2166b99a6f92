//! The one batching path every training loop of the engine takes (policy initialisation, RL, the value
//! model, and next AlphaZero's network): a batch of token sequences, one forward pass, a loss written in the
//! pass's per-token statistics, one backward pass into a gradient buffer kept from step to step, one optimizer
//! update. A loop supplies only its batch and its loss.
//!
//! * [`Trainer`]: that update, with the gradient buffer and the statistics it reuses.
//! * [`draw_with_replacement`]: a step's batch drawn by a generator seeded from `(seed, step)` alone, so a
//!   resumed run draws exactly the batches it would have drawn.
//! * [`Layout`]: between the model's positions and the learn crate's padded `[rows, width]` matrices of
//!   completion tokens (gathering statistics in, scattering loss gradients back out as [`RowGrads`]).

mod gathered;
mod layout;
mod trainer;

pub use layout::{Layout, LayoutError, RowGrads, ValueSlot};
pub use trainer::{PassView, Trainer, draw_with_replacement};
