//! The [`Backend`] seam of [`Model<B>`]: a model on a wrapping backend that counts every op and
//! delegates it to [`CpuBackend`] gives the CPU model's numbers bit for bit through every entry point
//! (forward, cached prefill/fork/decode, generation, training statistics, backward with every
//! gradient term, the SFT step), and the counters show the ops really ran on the wrapper.
//!
//! Two wrappers: the library's [`CountingBackend`] computes on host slices like the CPU ([`HostAccess`] says
//! so), so the model uses its weights and gradient buffers in place; [`Device`] keeps its buffers in its own type
//! and keeps [`HostAccess`]'s defaults, as a GPU backend does, so the model uploads its weights
//! (again after `weights_mut`), uploads loss gradients, downloads outputs and gradients.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;

use common::{expected, fixture};
use selfplay_model::backend::{AttnShape, AttnSpan, BackendResult, Gemm, PagedSpan, RopeDirection};
use selfplay_model::{
    Backend, CountingBackend, CpuBackend, GenerationConfig, HostAccess, KvCache, Model, ModelDir, SamplingParams,
    SeqId, SequenceGrads,
};

/// Op name → number of calls.
#[derive(Debug, Default)]
struct Counts(Mutex<BTreeMap<&'static str, usize>>);

impl Counts {
    fn tick(&self, op: &'static str) {
        *self.0.lock().unwrap().entry(op).or_default() += 1;
    }

    fn get(&self, op: &str) -> usize {
        self.0.lock().unwrap().get(op).copied().unwrap_or(0)
    }
}

/// A device buffer stand-in: host memory the model cannot see as such.
#[derive(Debug, Clone, PartialEq)]
struct DevBuf(Vec<f32>);

/// A device-style backend: its own buffer type, so the model takes the upload/download path.
#[derive(Debug, Default)]
struct Device(Counts);

impl HostAccess for Device {}

/// Implements every op of `Backend<f32>` by counting it and delegating to `CpuBackend`, with `$h`
/// turning `&Buf` into `&[f32]` and `$m` `&mut Buf` into `&mut [f32]`.
macro_rules! delegate {
    ($ty:ty, $buf:ty, $owned:ty, $wrap:expr, |$x:ident| $h:expr, |$y:ident| $m:expr) => {
        impl Backend<f32> for $ty {
            type Buf = $buf;
            type Owned = $owned;

            fn zeros(&self, len: usize) -> BackendResult<$owned> {
                self.0.tick("zeros");
                Ok($wrap(vec![0.0; len]))
            }
            fn upload(&self, data: &[f32]) -> BackendResult<$owned> {
                self.0.tick("upload");
                Ok($wrap(data.to_vec()))
            }
            fn download(&self, buf: &$buf, out: &mut [f32]) -> BackendResult {
                self.0.tick("download");
                let $x = buf;
                CpuBackend.download($h, out)
            }
            fn fill_zero(&self, buf: &mut $buf) -> BackendResult {
                self.0.tick("fill_zero");
                let $y = buf;
                Backend::<f32>::fill_zero(&CpuBackend, $m)
            }
            fn copy_rows(
                &self,
                src: &$buf,
                sr: usize,
                dst: &mut $buf,
                dr: usize,
                rows: usize,
                cols: usize,
            ) -> BackendResult {
                self.0.tick("copy_rows");
                let ($x, $y) = (src, dst);
                CpuBackend.copy_rows($h, sr, $m, dr, rows, cols)
            }
            fn embedding(&self, table: &$buf, ids: &[u32], dim: usize, out: &mut $buf) -> BackendResult {
                self.0.tick("embedding");
                let ($x, $y) = (table, out);
                CpuBackend.embedding($h, ids, dim, $m)
            }
            fn embedding_backward(&self, d_out: &$buf, ids: &[u32], dim: usize, d_table: &mut $buf) -> BackendResult {
                self.0.tick("embedding_backward");
                let ($x, $y) = (d_out, d_table);
                CpuBackend.embedding_backward($h, ids, dim, $m)
            }
            fn gemm(&self, g: Gemm, a: &$buf, b: &$buf, c: &mut $buf) -> BackendResult {
                self.0.tick("gemm");
                let a = {
                    let $x = a;
                    $h
                };
                let b = {
                    let $x = b;
                    $h
                };
                let $y = c;
                CpuBackend.gemm(g, a, b, $m)
            }
            fn add_bias(&self, x: &mut $buf, bias: &$buf, cols: usize) -> BackendResult {
                self.0.tick("add_bias");
                let ($x, $y) = (bias, x);
                CpuBackend.add_bias($m, $h, cols)
            }
            fn bias_backward(&self, d_y: &$buf, cols: usize, d_bias: &mut $buf) -> BackendResult {
                self.0.tick("bias_backward");
                let ($x, $y) = (d_y, d_bias);
                CpuBackend.bias_backward($h, cols, $m)
            }
            fn add(&self, x: &mut $buf, y: &$buf) -> BackendResult {
                self.0.tick("add");
                let ($x, $y) = (y, x);
                CpuBackend.add($m, $h)
            }
            fn rms_norm(
                &self,
                x: &$buf,
                w: &$buf,
                eps: f64,
                cols: usize,
                out: &mut $buf,
                inv: &mut $buf,
            ) -> BackendResult {
                self.0.tick("rms_norm");
                let (x, w) = (
                    {
                        let $x = x;
                        $h
                    },
                    {
                        let $x = w;
                        $h
                    },
                );
                let out = {
                    let $y = out;
                    $m
                };
                let $y = inv;
                CpuBackend.rms_norm(x, w, eps, cols, out, $m)
            }
            fn rms_norm_backward(
                &self,
                d_out: &$buf,
                x: &$buf,
                w: &$buf,
                inv: &$buf,
                cols: usize,
                d_x: &mut $buf,
                d_w: &mut $buf,
            ) -> BackendResult {
                self.0.tick("rms_norm_backward");
                let (d_out, x, w, inv) = (
                    {
                        let $x = d_out;
                        $h
                    },
                    {
                        let $x = x;
                        $h
                    },
                    {
                        let $x = w;
                        $h
                    },
                    {
                        let $x = inv;
                        $h
                    },
                );
                let d_x = {
                    let $y = d_x;
                    $m
                };
                let $y = d_w;
                CpuBackend.rms_norm_backward(d_out, x, w, inv, cols, d_x, $m)
            }
            fn rope(
                &self,
                x: &mut $buf,
                pos: &[u32],
                heads: usize,
                hd: usize,
                theta: f64,
                dir: RopeDirection,
            ) -> BackendResult {
                self.0.tick("rope");
                let $y = x;
                CpuBackend.rope($m, pos, heads, hd, theta, dir)
            }
            fn attention(
                &self,
                q: &$buf,
                k: &$buf,
                v: &$buf,
                spans: &[AttnSpan],
                shape: AttnShape,
                out: &mut $buf,
                lse: Option<&mut $buf>,
            ) -> BackendResult {
                self.0.tick("attention");
                let (q, k, v) = (
                    {
                        let $x = q;
                        $h
                    },
                    {
                        let $x = k;
                        $h
                    },
                    {
                        let $x = v;
                        $h
                    },
                );
                let out = {
                    let $y = out;
                    $m
                };
                let lse = lse.map(|$y| $m);
                CpuBackend.attention(q, k, v, spans, shape, out, lse)
            }
            fn paged_attention(
                &self,
                q: &$buf,
                k_pool: &$buf,
                v_pool: &$buf,
                spans: &[PagedSpan<'_>],
                block_size: usize,
                shape: AttnShape,
                out: &mut $buf,
                lse: Option<&mut $buf>,
            ) -> BackendResult {
                self.0.tick("paged_attention");
                let (q, k, v) = (
                    {
                        let $x = q;
                        $h
                    },
                    {
                        let $x = k_pool;
                        $h
                    },
                    {
                        let $x = v_pool;
                        $h
                    },
                );
                let out = {
                    let $y = out;
                    $m
                };
                let lse = lse.map(|$y| $m);
                CpuBackend.paged_attention(q, k, v, spans, block_size, shape, out, lse)
            }
            fn copy_rows_within(
                &self,
                buf: &mut $buf,
                sr: usize,
                dr: usize,
                rows: usize,
                cols: usize,
            ) -> BackendResult {
                self.0.tick("copy_rows_within");
                let $y = buf;
                Backend::<f32>::copy_rows_within(&CpuBackend, $m, sr, dr, rows, cols)
            }
            fn attention_backward(
                &self,
                q: &$buf,
                k: &$buf,
                v: &$buf,
                out: &$buf,
                d_out: &$buf,
                lse: &$buf,
                spans: &[AttnSpan],
                shape: AttnShape,
                d_q: &mut $buf,
                d_k: &mut $buf,
                d_v: &mut $buf,
            ) -> BackendResult {
                self.0.tick("attention_backward");
                let (q, k, v) = (
                    {
                        let $x = q;
                        $h
                    },
                    {
                        let $x = k;
                        $h
                    },
                    {
                        let $x = v;
                        $h
                    },
                );
                let (out, d_out, lse) = (
                    {
                        let $x = out;
                        $h
                    },
                    {
                        let $x = d_out;
                        $h
                    },
                    {
                        let $x = lse;
                        $h
                    },
                );
                let (d_q, d_k) = (
                    {
                        let $y = d_q;
                        $m
                    },
                    {
                        let $y = d_k;
                        $m
                    },
                );
                let $y = d_v;
                CpuBackend.attention_backward(q, k, v, out, d_out, lse, spans, shape, d_q, d_k, $m)
            }
            fn swiglu(&self, gate: &$buf, up: &$buf, out: &mut $buf) -> BackendResult {
                self.0.tick("swiglu");
                let (gate, up) = (
                    {
                        let $x = gate;
                        $h
                    },
                    {
                        let $x = up;
                        $h
                    },
                );
                let $y = out;
                CpuBackend.swiglu(gate, up, $m)
            }
            fn swiglu_backward(
                &self,
                gate: &$buf,
                up: &$buf,
                d_out: &$buf,
                d_gate: &mut $buf,
                d_up: &mut $buf,
            ) -> BackendResult {
                self.0.tick("swiglu_backward");
                let (gate, up, d_out) = (
                    {
                        let $x = gate;
                        $h
                    },
                    {
                        let $x = up;
                        $h
                    },
                    {
                        let $x = d_out;
                        $h
                    },
                );
                let d_gate = {
                    let $y = d_gate;
                    $m
                };
                let $y = d_up;
                CpuBackend.swiglu_backward(gate, up, d_out, d_gate, $m)
            }
            fn log_softmax_stats(
                &self,
                logits: &$buf,
                vocab: usize,
                lse: &mut $buf,
                entropy: &mut $buf,
            ) -> BackendResult {
                self.0.tick("log_softmax_stats");
                let logits = {
                    let $x = logits;
                    $h
                };
                let lse = {
                    let $y = lse;
                    $m
                };
                let $y = entropy;
                CpuBackend.log_softmax_stats(logits, vocab, lse, $m)
            }
            fn log_softmax_backward(
                &self,
                logits: &$buf,
                lse: &$buf,
                entropy: &$buf,
                targets: &[u32],
                d_logprob: &$buf,
                d_entropy: &$buf,
                d_logits: &mut $buf,
            ) -> BackendResult {
                self.0.tick("log_softmax_backward");
                let (logits, lse, entropy) = (
                    {
                        let $x = logits;
                        $h
                    },
                    {
                        let $x = lse;
                        $h
                    },
                    {
                        let $x = entropy;
                        $h
                    },
                );
                let (d_logprob, d_entropy) = (
                    {
                        let $x = d_logprob;
                        $h
                    },
                    {
                        let $x = d_entropy;
                        $h
                    },
                );
                let $y = d_logits;
                CpuBackend.log_softmax_backward(logits, lse, entropy, targets, d_logprob, d_entropy, $m)
            }
        }
    };
}

delegate!(Device, DevBuf, DevBuf, DevBuf, |x| &x.0[..], |y| &mut y.0[..]);

fn bits(xs: &[f32]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits()).collect()
}

/// Every number the entry points produce, as bits, in a fixed order.
fn everything<B: HostAccess>(model: &Model<B>, seqs: &[&[u32]], accumulate: bool) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    for o in model.forward(seqs).unwrap() {
        out.push(bits(o.logits.data()));
        out.push(bits(&o.values));
    }
    // Prefill two tokens, fork every sequence (copy-on-write of a partly filled block), decode.
    let mut cache = KvCache::new(model.backend(), model.config(), 64, 3).unwrap();
    let prompts: Vec<&[u32]> = seqs.iter().map(|s| &s[..2]).collect();
    let parents: Vec<SeqId> = seqs.iter().map(|_| cache.add_sequence().unwrap()).collect();
    for o in model.forward_cached(&mut cache, &parents, &prompts).unwrap() {
        out.push(bits(o.logits.data()));
    }
    let ids: Vec<SeqId> = parents.iter().map(|&p| cache.fork(p).unwrap()).collect();
    for t in 2..seqs.iter().map(|s| s.len()).max().unwrap() {
        let live: Vec<usize> = (0..seqs.len()).filter(|&s| t < seqs[s].len()).collect();
        let tokens: Vec<&[u32]> = live.iter().map(|&s| &seqs[s][t..=t]).collect();
        let live_ids: Vec<SeqId> = live.iter().map(|&s| ids[s]).collect();
        for o in model.forward_cached(&mut cache, &live_ids, &tokens).unwrap() {
            out.push(bits(o.logits.data()));
            out.push(bits(&o.values));
        }
    }
    // Training statistics and a backward pass with every gradient term.
    let pass = model.forward_train(seqs).unwrap();
    let stats = pass.token_stats();
    let vocab = model.config().vocab_size;
    let wave = |n: usize, k: f32| (0..n).map(|j| ((j as f32 + 1.0) * 0.37 + k).sin()).collect::<Vec<f32>>();
    let terms: Vec<[Vec<f32>; 4]> = stats
        .iter()
        .enumerate()
        .map(|(i, s)| {
            out.extend([bits(&s.logprobs), bits(&s.entropies), bits(&s.values)]);
            out.push(bits(pass.seq_logits(i).unwrap()));
            let k = i as f32;
            let len = s.values.len();
            [wave(len - 1, k), wave(len - 1, k + 0.5), wave(len, k + 0.9), wave(len * vocab, k + 1.3)]
        })
        .collect();
    let grads: Vec<SequenceGrads<'_>> = terms
        .iter()
        .map(|[lp, h, v, z]| SequenceGrads {
            d_logprobs: lp,
            d_entropies: Some(h),
            d_values: Some(v),
            d_logits: Some(z),
        })
        .collect();
    let mut g = model.weights().zeros_like();
    model.backward(&pass, &grads, &mut g).unwrap();
    if accumulate {
        model.backward(&pass, &grads, &mut g).unwrap(); // into a non-zero buffer
    }
    g.for_each(|_, t| out.push(bits(t)));
    model.recycle(pass);
    // The SFT step twice (the second reuses the recycled activations).
    let w: Vec<Vec<f32>> = seqs.iter().map(|s| (1..s.len()).map(|j| (j % 3) as f32).collect()).collect();
    let w: Vec<&[f32]> = w.iter().map(|v| v.as_slice()).collect();
    for _ in 0..2 {
        let (loss, g) = model.sft_loss_and_grads(seqs, &w).unwrap();
        out.push(bits(&[loss]));
        g.for_each(|_, t| out.push(bits(t)));
    }
    // Generation: shared prompts (prefilled once, forked), sampled rows.
    let prompts: Vec<&[u32]> = seqs.iter().chain(seqs).map(|s| &s[..3]).collect();
    let seeds: Vec<u64> = (0..prompts.len() as u64).collect();
    let sampling = SamplingParams { temperature: 0.9, top_k: 20, top_p: 0.95, min_p: 0.0 };
    let cfg = GenerationConfig { max_new_tokens: 12, sampling, stop_tokens: vec![] };
    for g in model.generate(&prompts, &cfg, &seeds).unwrap() {
        out.push(g.tokens.clone());
        out.extend([bits(&g.logprobs), bits(&g.model_logprobs), bits(&g.values)]);
    }
    out
}

fn fixture_model(name: &str) -> (ModelDir, Vec<Vec<u32>>) {
    let dir = ModelDir::load(&fixture(name)).unwrap();
    let seqs = expected(name).sequences.into_iter().map(|s| s.tokens).filter(|t| t.len() >= 3).collect();
    (dir, seqs)
}

#[test]
fn a_counting_backend_gives_the_cpu_numbers_bit_for_bit() {
    for name in ["llama_gqa", "qwen2_tied", "llama_bias"] {
        let (dir, seqs) = fixture_model(name);
        let seqs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
        let cpu = Model::new(dir.config.clone(), dir.weights.clone()).unwrap();
        let counted = Model::with_backend(dir.config, dir.weights, CountingBackend::new(CpuBackend)).unwrap();
        assert!(everything(&cpu, &seqs, true) == everything(&counted, &seqs, true), "{name}: numbers differ");
        let counts = counted.backend().counts();
        let get = |op: &str| counts.get(op).copied().unwrap_or(0);
        for op in [
            "embedding",
            "gemm",
            "rms_norm",
            "rope",
            "attention",
            "paged_attention",
            "copy_rows_within",
            "swiglu",
            "log_softmax_stats",
            "log_softmax_backward",
            "attention_backward",
            "rms_norm_backward",
            "swiglu_backward",
            "embedding_backward",
            "add",
        ] {
            assert!(get(op) > 0, "{name}: {op} never ran on the wrapper");
        }
        // Host memory: the weights and gradients were used in place, nothing was uploaded.
        assert_eq!((get("upload"), get("download")), (0, 0), "{name}");
    }
}

#[test]
fn a_device_style_backend_gives_the_cpu_numbers_bit_for_bit() {
    for name in ["llama_gqa", "qwen2_tied", "llama_bias"] {
        let (dir, seqs) = fixture_model(name);
        let seqs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
        let mut cpu = Model::new(dir.config.clone(), dir.weights.clone()).unwrap();
        let mut device = Model::with_backend(dir.config, dir.weights, Device::default()).unwrap();
        // Backward adds into zeroed gradient buffers (a device adds its downloaded gradient to the host
        // buffer, the CPU accumulates in place: the same numbers when the buffer starts at zero).
        assert!(everything(&cpu, &seqs, false) == everything(&device, &seqs, false), "{name}: numbers differ");
        let counts = &device.backend().0;
        for op in ["upload", "download", "gemm", "paged_attention", "attention_backward", "log_softmax_backward"] {
            assert!(counts.get(op) > 0, "{name}: {op} never ran on the wrapper");
        }
        // The weights were uploaded once, not on every pass.
        let tensors = cpu.weights().layout().entries().len();
        let uploads = counts.get("upload");
        // Once for the weights, plus the loss gradients of each backward (3 or 4 per pass, 3 passes).
        assert!(uploads <= tensors + 12, "{name}: {uploads} uploads for {tensors} tensors");
        // After weights_mut the device copy is refreshed.
        for m in [cpu.weights_mut(), device.weights_mut()] {
            m.head_mut().norm.iter_mut().for_each(|x| *x *= 1.5);
        }
        let (a, b) = (cpu.forward(&seqs).unwrap(), device.forward(&seqs).unwrap());
        assert_eq!(a, b, "{name}: a stale device copy of the weights");
    }
}
