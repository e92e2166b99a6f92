//! The CUDA sources, embedded in the binary and compiled at run time by NVRTC (no nvcc, no build.rs).

/// Helpers every program starts with: bf16/f16 bit conversions, storage-type policies, reductions.
pub const PRELUDE: &str = include_str!("../cuda/prelude.cuh");

/// Storage types every templated kernel is instantiated for, as kernel-name suffixes.
pub const DTYPE_SUFFIXES: [&str; 3] = ["f32", "bf16", "f16"];

/// One `.cu` file: compiled as one NVRTC program into one module.
#[derive(Debug, Clone, Copy)]
pub struct KernelSource {
    /// File name, used in compile errors and `#line` directives.
    pub name: &'static str,
    /// The file's text.
    pub code: &'static str,
    /// Kernels instantiated once per storage type (`<base>_<suffix>`).
    pub per_dtype: &'static [&'static str],
    /// Kernels with one instance.
    pub single: &'static [&'static str],
}

impl KernelSource {
    /// The program NVRTC compiles: the prelude, then the file (with `#line` so errors point into it).
    pub fn program(&self) -> String {
        format!("{PRELUDE}\n#line 1 \"{}\"\n{}", self.name, self.code)
    }

    /// Every kernel name the module must export.
    pub fn kernel_names(&self) -> Vec<String> {
        let templated =
            self.per_dtype.iter().flat_map(|base| DTYPE_SUFFIXES.iter().map(move |s| format!("{base}_{s}")));
        templated.chain(self.single.iter().map(|s| (*s).to_string())).collect()
    }
}

/// Every kernel source of the crate.
pub const SOURCES: [KernelSource; 5] = [
    KernelSource {
        name: "elementwise.cu",
        code: include_str!("../cuda/elementwise.cu"),
        per_dtype: &["embedding", "rms_norm", "rope", "swiglu", "add_assign", "add_bias", "to_f32"],
        single: &[],
    },
    KernelSource {
        name: "attention.cu",
        code: include_str!("../cuda/attention.cu"),
        per_dtype: &["attention_prefill", "attention_prefill_paged", "attention_decode", "attention_decode_merge"],
        single: &[],
    },
    KernelSource {
        name: "kv_cache.cu",
        code: include_str!("../cuda/kv_cache.cu"),
        per_dtype: &["kv_append", "kv_copy_blocks"],
        single: &[],
    },
    KernelSource {
        name: "sampling.cu",
        code: include_str!("../cuda/sampling.cu"),
        per_dtype: &[],
        single: &["sample_rows"],
    },
    KernelSource {
        name: "training.cu",
        code: include_str!("../cuda/training.cu"),
        per_dtype: &[],
        single: &[
            "embedding_backward_f32",
            "rms_norm_backward_f32",
            "swiglu_backward_f32",
            "bias_backward_f32",
            "log_softmax_stats_f32",
            "log_softmax_backward_f32",
            "attention_backward_f32",
        ],
    },
];

/// Largest head dimension the attention kernels support (`MAX_HEAD_DIM` in attention.cu).
pub const MAX_HEAD_DIM: usize = 128;
