//! Shared helpers of the integration tests: fixture loading and finite-difference checks.
#![allow(dead_code)]

use selfplay_learn::{LossAgg, SeqShape};
use serde_json::Value;

/// A fixture file from `tests/fixtures/` (written by `tools/make_learn_fixtures.py`).
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn f64s(case: &Value, key: &str) -> Vec<f64> {
    case[key].as_array().unwrap_or_else(|| panic!("missing {key}")).iter().map(|x| x.as_f64().unwrap()).collect()
}

pub fn f32s(case: &Value, key: &str) -> Vec<f32> {
    f64s(case, key).into_iter().map(|x| x as f32).collect()
}

pub fn num(case: &Value, key: &str) -> f64 {
    case[key].as_f64().unwrap_or_else(|| panic!("missing {key}"))
}

pub fn mask(case: &Value) -> Vec<bool> {
    f64s(case, "mask").into_iter().map(|m| m != 0.0).collect()
}

pub fn shape(case: &Value) -> SeqShape {
    SeqShape::new(case["batch"].as_u64().unwrap() as usize, case["len"].as_u64().unwrap() as usize)
}

pub fn agg(case: &Value) -> LossAgg {
    case["agg"].as_str().unwrap().parse().unwrap()
}

/// `|a - b| <= atol + rtol * |b|` element-wise, with a message naming the first failure.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= atol + rtol * w.abs(), "{what}[{i}]: got {g}, want {w}");
    }
}

/// Only the unmasked slots of `xs` (the references keep arbitrary values in padding).
pub fn unmasked(xs: &[f64], mask: &[bool]) -> Vec<f64> {
    xs.iter().zip(mask).filter(|(_, m)| **m).map(|(x, _)| *x).collect()
}

/// Central finite differences of `f` at `x`, compared with `grad` element-wise.
pub fn check_gradient(what: &str, f: impl Fn(&[f64]) -> f64, x: &[f64], grad: &[f64]) {
    let h = 1e-6;
    let mut xp = x.to_vec();
    let numeric: Vec<f64> = (0..x.len())
        .map(|i| {
            xp[i] = x[i] + h;
            let up = f(&xp);
            xp[i] = x[i] - h;
            let down = f(&xp);
            xp[i] = x[i];
            (up - down) / (2.0 * h)
        })
        .collect();
    assert_close(what, grad, &numeric, 1e-7, 1e-5);
}

/// A seeded stream of uniform numbers in [0, 1) (SplitMix64): test inputs that are the same on every run.
pub struct Stream(u64);

impl Stream {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` numbers uniform in `[lo, hi)`.
    pub fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| lo + (hi - lo) * self.uniform()).collect()
    }

    /// A prefix mask per row (1..=len tokens), with one interior hole when `len > 3`, and the last row empty
    /// when `empty_row`.
    pub fn mask(&mut self, shape: SeqShape, empty_row: bool) -> Vec<bool> {
        let mut m = vec![false; shape.batch * shape.len];
        for i in 0..shape.batch {
            let n = 1 + (self.uniform() * shape.len as f64) as usize;
            for t in 0..n.min(shape.len) {
                m[i * shape.len + t] = true;
            }
        }
        if shape.len > 3 {
            m[2] = false;
            m[0] = true;
        }
        if empty_row {
            let last = (shape.batch - 1) * shape.len;
            m[last..].iter_mut().for_each(|x| *x = false);
        }
        m
    }
}
