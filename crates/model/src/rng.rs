//! The crate's random draws from a seeded stream: uniform on `(0, 1]` and standard normal. A leaf
//! module, so both the sampler and weight initialisation use it without depending on each other.

use rand_core::Rng;

/// A standard normal draw (Box–Muller, in `f64`).
pub fn standard_normal(rng: &mut impl Rng) -> f32 {
    let u1 = unit_open(rng);
    let u2 = unit_open(rng);
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Uniform in `(0, 1]` with 53 random bits.
pub fn unit_open(rng: &mut impl Rng) -> f64 {
    ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
}
