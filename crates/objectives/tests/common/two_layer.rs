//! The two-layer linear-Gaussian model the hierarchy tests share.
#![allow(clippy::unwrap_used)]

use candle::{Device, Tensor};
use vaekit_objectives::LinearHierarchy;

/// Observed dimensions.
pub const P: usize = 3;
/// The loadings `W` of `x | z_1 ~ N(W z_1 + b, s² I)`.
pub const W: [[f64; 2]; P] = [[1.0, 0.5], [-0.3, 0.8], [0.6, -1.1]];
/// The offset `b`.
pub const B: [f64; P] = [0.2, -0.4, 0.1];
/// The noise scale `s`.
pub const S: f64 = 0.5;

/// `A = [1.2, -0.7]ᵀ`, `a = [0.3, -0.1]`, `log σ = [-0.5, 0.2]` with `W`, `B`, `S`.
pub fn model() -> LinearHierarchy {
    let t = |v: &[f64]| Tensor::new(v, &Device::Cpu).unwrap();
    LinearHierarchy::new(
        &t(&[1.2, -0.7]).unsqueeze(1).unwrap(),
        &t(&[0.3, -0.1]),
        &t(&[-0.5, 0.2]),
        &Tensor::new(&W, &Device::Cpu).unwrap(),
        &t(&B),
        S,
    )
    .unwrap()
}
