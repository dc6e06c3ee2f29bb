//! Priors `p(z)` of Gaussian-latent models: the standard normal, a learned mixture of
//! Gaussians, and the VampPrior.

mod mixture;
mod prior_ref;
mod standard;
mod vamp;

pub use mixture::MixturePrior;
pub use prior_ref::PriorRef;
pub use standard::StandardNormalPrior;
pub use vamp::VampPrior;

use candle::Result;
use vaekit_nets::Pass;

/// A prior over `D` latent dimensions whose density may depend on trainable parameters.
///
/// [`crate::DecoderModel`] holds one; [`crate::GenerativeModel::prior`] asks it for the
/// distribution of the current parameter values, once per use, so that an optimizer's
/// in-place updates and the autograd graph are always current.
pub trait LatentPrior: std::fmt::Debug + Send + Sync {
    /// `D`.
    fn latent_dim(&self) -> usize;

    /// `p(z)` for a forward pass of kind `pass`: event `[D]`, batch `[]`.
    ///
    /// # Errors
    /// Non-finite parameters; candle's.
    fn distribution(&self, pass: Pass) -> Result<PriorRef<'_>>;
}
