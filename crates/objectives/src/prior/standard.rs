//! The standard-normal prior.

use super::{LatentPrior, PriorRef};
use candle::{DType, Device, Result};
use vaekit_distributions::{Distribution, Independent, StandardNormal};
use vaekit_nets::Pass;

/// `p(z) = N(0, I_D)`: no parameters; analytic KLs against Gaussian posteriors.
#[derive(Debug, Clone)]
pub struct StandardNormalPrior(Independent<StandardNormal>);

impl StandardNormalPrior {
    /// `N(0, I_dim)` of `dtype` on `device`.
    ///
    /// # Errors
    /// A non-float dtype.
    pub fn new(dim: usize, dtype: DType, device: &Device) -> Result<Self> {
        Ok(Self(Independent::new(
            StandardNormal::new(dim, dtype, device)?,
            1,
        )?))
    }
}

impl LatentPrior for StandardNormalPrior {
    fn latent_dim(&self) -> usize {
        self.0.event_shape().dims().first().copied().unwrap_or(0)
    }

    fn distribution(&self, _pass: Pass) -> Result<PriorRef<'_>> {
        Ok(PriorRef::Fixed(&self.0))
    }
}
