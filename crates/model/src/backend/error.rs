//! [`BackendError`]: why a [`super::Backend`] op failed. It carries the op's name and the backend's own
//! error as its source, so the model crate needs to know nothing about devices while a caller can
//! still reach the device error (e.g. a CUDA driver code) through `std::error::Error::source` or
//! [`BackendError::downcast_ref`].

use std::error::Error;

/// A backend op that could not run: a device launch failure, out of memory, a lost device, or
/// arguments a device backend refused.
#[derive(Debug, thiserror::Error)]
#[error("backend op {op} failed: {source}")]
pub struct BackendError {
    /// The op, e.g. `"gemm"`.
    pub op: &'static str,
    /// The backend's own error.
    #[source]
    pub source: Box<dyn Error + Send + Sync + 'static>,
}

impl BackendError {
    /// Wraps a backend's error for op `op`.
    pub fn new(op: &'static str, source: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        BackendError { op, source: source.into() }
    }

    /// The backend's own error, if it is an `E`.
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref::<E>()
    }
}

/// What every [`super::Backend`] op returns.
pub type BackendResult<T = ()> = Result<T, BackendError>;
