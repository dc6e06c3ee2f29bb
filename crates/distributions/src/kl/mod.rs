//! KL divergences: analytic pairs, a registry for type-erased distributions, and a Monte
//! Carlo fallback.

mod analytic;
mod registry;

pub use registry::{KlEstimate, KlMethod, KlRegistry, default_registry};

use candle::{Result, Tensor};

/// `KL(self || q)` in closed form for a statically known pair of families.
///
/// # Shapes
/// The broadcast of both batch shapes.
pub trait KlDivergence<Q> {
    /// `E_self[ln self(x) - ln q(x)]`.
    fn kl_divergence(&self, q: &Q) -> Result<Tensor>;
}
