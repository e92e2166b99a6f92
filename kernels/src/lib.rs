//! CUDA backend for selfplay-model.
