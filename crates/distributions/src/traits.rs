//! The capability traits every distribution implements a subset of.

use candle::{DType, Device, Result, Shape, Tensor};
use std::any::Any;
use vaekit_core::NoiseSource;

/// A batch of probability distributions over tensors.
///
/// # Shapes
/// A distribution has a `batch_shape` (independent, not identically distributed members)
/// and an `event_shape` (the shape of one draw). Samples have shape
/// `sample_shape ++ batch_shape ++ event_shape`; `log_prob(value)` takes any value whose
/// shape ends in `event_shape` and broadcasts against `batch_shape ++ event_shape`, and
/// returns the value's shape without the event dimensions (the log-density is summed over
/// the event).
pub trait Distribution: Any + std::fmt::Debug + Send + Sync {
    /// The family's name ("Normal"), used in messages and by the KL registry.
    fn name(&self) -> &'static str;

    /// Shape of the batch of distributions.
    fn batch_shape(&self) -> &Shape;

    /// Shape of one draw.
    fn event_shape(&self) -> &Shape;

    /// Number of event dimensions.
    fn event_ndims(&self) -> usize {
        self.event_shape().rank()
    }

    /// dtype of samples and log-densities.
    fn dtype(&self) -> DType;

    /// Device of the parameters.
    fn device(&self) -> &Device;

    /// Draws `sample_shape` independent samples, detached from the parameters.
    ///
    /// # Shapes
    /// `sample_shape ++ batch_shape ++ event_shape`.
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor>;

    /// The log-density (or log-mass) of `value`, summed over the event dimensions.
    ///
    /// # Shapes
    /// `[.., event_shape]` gives `[..]` (broadcast against `batch_shape`).
    fn log_prob(&self, value: &Tensor) -> Result<Tensor>;

    /// [`Distribution::log_prob`] summed over the value's last `n` dimensions (what
    /// [`crate::Independent`] asks of its base). Families with a fused kernel override it
    /// ([`crate::Normal`], [`crate::StandardNormal`]); the default sums `log_prob`.
    ///
    /// # Shapes
    /// `[.., event_shape]` gives `[..]` without its last `n` dimensions.
    ///
    /// # Errors
    /// Those of `log_prob`; `n` above the rank of its result.
    fn log_prob_summed(&self, value: &Tensor, n: usize) -> Result<Tensor> {
        crate::shape::sum_rightmost(&self.log_prob(value)?, n)
    }

    /// This distribution as [`Reparameterize`], when its samples can carry gradients.
    fn as_reparameterize(&self) -> Option<&dyn Reparameterize> {
        None
    }

    /// For a distribution that reinterprets batch dimensions of a base distribution as event
    /// dimensions ([`crate::Independent`]): the base and the number of dimensions.
    fn reinterpreted(&self) -> Option<(&dyn Distribution, usize)> {
        None
    }
}

/// Distributions whose samples are differentiable functions of the parameters (pathwise,
/// implicit or rejection-sampling reparameterization).
pub trait Reparameterize: Distribution {
    /// Draws `sample_shape` samples that carry gradients to the parameters.
    ///
    /// # Shapes
    /// `sample_shape ++ batch_shape ++ event_shape`.
    fn rsample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor>;
}

/// Distributions with a closed-form entropy.
pub trait Entropy: Distribution {
    /// The differential entropy (or entropy, for discrete families), summed over the event.
    ///
    /// # Shapes
    /// `batch_shape`.
    fn entropy(&self) -> Result<Tensor>;
}

/// Distributions with closed-form first and second moments.
pub trait Moments: Distribution {
    /// The mean.
    ///
    /// # Shapes
    /// `batch_shape ++ event_shape`.
    fn mean(&self) -> Result<Tensor>;

    /// The element-wise variance (the diagonal of the covariance).
    ///
    /// # Shapes
    /// `batch_shape ++ event_shape`.
    fn variance(&self) -> Result<Tensor>;
}
