//! [`HostAccess`]: how a [`crate::Model`] reaches a backend's buffers from host memory, the one thing
//! it needs beyond the ops of [`Backend<f32>`].
//!
//! The model keeps its weights (and takes gradient buffers) as host tensors, reads its outputs on
//! the host, and hands per-token loss gradients in from the host. A backend that computes on host
//! slices (the CPU) says so, and all of that happens in place, with no copy. A device backend keeps
//! the defaults (`None`): the model then uploads its weights once (and again after
//! [`crate::Model::weights_mut`]), uploads loss gradients, downloads outputs, and runs backward into
//! device buffers whose gradients it downloads and adds into the host ones.

use crate::backend::{Backend, CpuBackend};

/// Host-memory access of a backend the [`crate::Model`] runs on (see the module docs). Every method
/// defaults to `None` ("this backend's buffers are not host memory"), so a device backend implements
/// it with an empty `impl HostAccess for MyBackend {}`.
pub trait HostAccess: Backend<f32> {
    /// A buffer's elements as host memory, when they are.
    fn as_host(buf: &Self::Buf) -> Option<&[f32]> {
        let _ = buf;
        None
    }

    /// Host memory as a buffer the ops read, when the backend computes on host memory.
    fn from_host(data: &[f32]) -> Option<&Self::Buf> {
        let _ = data;
        None
    }

    /// Host memory as a buffer the ops write, when the backend computes on host memory.
    fn from_host_mut(data: &mut [f32]) -> Option<&mut Self::Buf> {
        let _ = data;
        None
    }
}

/// The CPU computes on host slices: weights, gradients and outputs are used in place.
impl HostAccess for CpuBackend {
    fn as_host(buf: &[f32]) -> Option<&[f32]> {
        Some(buf)
    }

    fn from_host(data: &[f32]) -> Option<&[f32]> {
        Some(data)
    }

    fn from_host_mut(data: &mut [f32]) -> Option<&mut [f32]> {
        Some(data)
    }
}
