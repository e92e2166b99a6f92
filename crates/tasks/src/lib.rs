//! Reasoning tasks.
