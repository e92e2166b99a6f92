//! The one error type of this crate.

/// Everything the CUDA backend can report. Bad shapes and ids are caught on the host before a launch,
/// so a kernel never reads out of bounds because of caller input.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// libnvrtc could not be loaded.
    #[error(
        "NVRTC library not found: put the directory holding libnvrtc.so.13 on LD_LIBRARY_PATH (tools/ci_nvrtc.sh installs one from PyPI)"
    )]
    NvrtcMissing,
    /// libcuda could not be loaded (no NVIDIA driver).
    #[error("CUDA driver library (libcuda) not found")]
    DriverMissing,
    /// NVRTC rejected a kernel source.
    #[error("NVRTC failed to compile {program} for {arch}: {log}")]
    Compile {
        /// Which `.cu` file.
        program: &'static str,
        /// The target, e.g. `compute_90`.
        arch: String,
        /// NVRTC's log.
        log: String,
    },
    /// A CUDA driver call failed.
    #[error("CUDA driver: {0}")]
    Driver(#[from] cudarc::driver::DriverError),
    /// cuBLAS failed.
    #[error("cuBLAS: {0}")]
    Blas(#[from] cudarc::cublas::result::CublasError),
    /// A kernel name listed in the sources is absent from its compiled module.
    #[error("kernel {0} missing from its compiled module")]
    MissingKernel(String),
    /// The model refused a request or a pass failed (a GPU op's own failure is inside, as
    /// `ModelError::Backend` with this crate's error as its source).
    #[error(transparent)]
    Model(#[from] selfplay_model::ModelError),
    /// Arguments whose sizes, ids or values do not fit the operation.
    #[error("invalid arguments to {op}: {reason}")]
    Invalid {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Shorthand for this crate's results.
pub type Result<T> = std::result::Result<T, KernelError>;

/// Builds an [`KernelError::Invalid`].
pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> KernelError {
    KernelError::Invalid { op, reason: reason.into() }
}
