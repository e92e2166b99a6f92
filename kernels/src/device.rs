//! A CUDA context with every kernel compiled for its device and loaded, plus its stream.

use std::collections::HashMap;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaStream};

use crate::compile::{Arch, compile};
use crate::error::{KernelError, Result};
use crate::sources::SOURCES;

/// Whether the CUDA driver library (libcuda) can be loaded.
pub fn driver_available() -> bool {
    // SAFETY: only tries to dlopen libcuda's candidate names; no CUDA call is made.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// One device: its context, the stream every op runs on, and the kernels compiled for its compute
/// capability (compiled once per context; the PTX is also cached per process and architecture).
#[derive(Debug)]
pub struct GpuContext {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    arch: Arch,
    functions: HashMap<String, CudaFunction>,
}

impl GpuContext {
    /// Opens device `ordinal` and compiles every kernel for it.
    pub fn new(ordinal: usize) -> Result<Self> {
        if !driver_available() {
            return Err(KernelError::DriverMissing);
        }
        let ctx = CudaContext::new(ordinal)?;
        let (major, minor) = ctx.compute_capability()?;
        let arch = Arch {
            major: u32::try_from(major)
                .map_err(|_| crate::error::invalid("GpuContext::new", "negative compute capability"))?,
            minor: u32::try_from(minor)
                .map_err(|_| crate::error::invalid("GpuContext::new", "negative compute capability"))?,
        };
        let mut functions = HashMap::new();
        for source in &SOURCES {
            let module = ctx.load_module(compile(source, arch)?).map_err(|err| {
                if err.0 == cudarc::driver::sys::CUresult::CUDA_ERROR_UNSUPPORTED_PTX_VERSION {
                    let nvrtc = crate::compile::nvrtc_version();
                    crate::error::invalid(
                        "GpuContext::new",
                        format!(
                            "the driver cannot load PTX from NVRTC {nvrtc:?}: use a driver at least as new as that \
                             NVRTC (r580+ for 13.x) or put a matching older libnvrtc first on LD_LIBRARY_PATH"
                        ),
                    )
                } else {
                    KernelError::Driver(err)
                }
            })?;
            for name in source.kernel_names() {
                let function = module.load_function(&name).map_err(|_| KernelError::MissingKernel(name.clone()))?;
                functions.insert(name, function);
            }
        }
        let stream = ctx.default_stream();
        Ok(Self { ctx, stream, arch, functions })
    }

    /// The driver context.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// The stream all ops of this context are queued on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The architecture the kernels were compiled for.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Device name and compute capability, for reports.
    pub fn describe(&self) -> String {
        let name = self.ctx.name().unwrap_or_else(|_| "unknown device".into());
        format!("{name} (sm_{}{})", self.arch.major, self.arch.minor)
    }

    pub(crate) fn function(&self, name: &str) -> Result<&CudaFunction> {
        self.functions.get(name).ok_or_else(|| KernelError::MissingKernel(name.into()))
    }
}
