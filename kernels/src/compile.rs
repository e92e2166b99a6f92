//! NVRTC compilation of the embedded sources, for the device's compute capability, cached per process.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};

use crate::error::{KernelError, Result};
use crate::sources::KernelSource;

/// A virtual GPU architecture: NVRTC emits PTX for it and the driver finishes the job for the actual device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Arch {
    /// Compute capability major version.
    pub major: u32,
    /// Compute capability minor version.
    pub minor: u32,
}

impl Arch {
    /// Hopper (H100/H200): the fixed target of the compile-only checks.
    pub const SM90: Arch = Arch { major: 9, minor: 0 };
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "compute_{}{}", self.major, self.minor)
    }
}

/// Whether libnvrtc can be loaded (searched on the dynamic loader's path, e.g. `LD_LIBRARY_PATH`).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen the candidate library names; loading NVRTC runs no user code.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// NVRTC's version, when the library loads.
pub fn nvrtc_version() -> Option<(i32, i32)> {
    if !nvrtc_available() {
        return None;
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is loaded (checked above) and both pointers are valid for writes.
    let status = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    (status == cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS).then_some((major, minor))
}

type PtxCache = Mutex<HashMap<(&'static str, Arch), Ptx>>;

/// Compiles one source for `arch`, reusing an earlier result for the same pair.
pub fn compile(source: &KernelSource, arch: Arch) -> Result<Ptx> {
    static CACHE: OnceLock<PtxCache> = OnceLock::new();
    let cache = CACHE.get_or_init(PtxCache::default);
    if let Some(ptx) = cache.lock().ok().and_then(|c| c.get(&(source.name, arch)).cloned()) {
        return Ok(ptx);
    }
    let ptx = compile_uncached(source, arch)?;
    if let Ok(mut c) = cache.lock() {
        c.insert((source.name, arch), ptx.clone());
    }
    Ok(ptx)
}

fn compile_uncached(source: &KernelSource, arch: Arch) -> Result<Ptx> {
    if !nvrtc_available() {
        return Err(KernelError::NvrtcMissing);
    }
    let options = CompileOptions {
        options: vec![format!("--gpu-architecture={arch}"), "--std=c++17".into()],
        name: Some(source.name.into()),
        ..CompileOptions::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(source.program(), options).map_err(|err| KernelError::Compile {
        program: source.name,
        arch: arch.to_string(),
        log: match err {
            CompileError::CompileError { log, .. } => log.to_string_lossy().into_owned(),
            other => format!("{other:?}"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::SOURCES;

    fn require_nvrtc() -> bool {
        std::env::var("SELFPLAY_REQUIRE_NVRTC").is_ok_and(|v| v == "1")
    }

    /// Compiles every kernel for sm_90 and checks each expected entry point is in the PTX.
    #[test]
    fn every_kernel_compiles_with_nvrtc() {
        if !nvrtc_available() {
            assert!(!require_nvrtc(), "SELFPLAY_REQUIRE_NVRTC=1 but libnvrtc cannot be loaded");
            println!("SKIP (no NVRTC)");
            return;
        }
        println!("NVRTC {:?}", nvrtc_version());
        let mut failures = Vec::new();
        for source in &SOURCES {
            match compile(source, Arch::SM90) {
                Ok(ptx) => {
                    let text = ptx.to_src();
                    for name in source.kernel_names() {
                        if !text.contains(&format!(".entry {name}(")) {
                            failures.push(format!("{}: no entry {name}", source.name));
                        }
                    }
                }
                Err(err) => failures.push(err.to_string()),
            }
        }
        assert!(failures.is_empty(), "kernel compilation failed:\n{}", failures.join("\n"));
    }

    #[test]
    fn a_broken_source_is_a_typed_error() {
        if !nvrtc_available() {
            println!("SKIP (no NVRTC)");
            return;
        }
        let broken = KernelSource {
            name: "broken.cu",
            code: "extern \"C\" __global__ void k() { undefined_thing; }",
            per_dtype: &[],
            single: &["k"],
        };
        match compile(&broken, Arch::SM90) {
            Err(KernelError::Compile { program, log, .. }) => {
                assert_eq!(program, "broken.cu");
                assert!(log.contains("undefined_thing"), "{log}");
            }
            other => panic!("expected a compile error, got {other:?}"),
        }
    }
}
