//! `Bernoulli` on logits.

use crate::accessors::distribution_accessors;
use crate::shape::{check_event, extend};
use crate::traits::{Distribution, Entropy, Moments};
use crate::validate;
use candle::{DType, Result, Shape, Tensor};
use vaekit_core::{NoiseSource, bernoulli_log_prob, log_sigmoid, softplus};

/// Independent Bernoulli variables with `P(x = 1) = sigmoid(logits)`, parameterised by finite
/// logits only (never probabilities), so that saturated decoders stay finite: `log_prob` at
/// logits ±50 is exact, not `-inf`.
///
/// # Shapes
/// `batch_shape = logits.shape()`, `event_shape = []`; values are 0.0 / 1.0 in the logits'
/// dtype.
///
/// # References
/// The binarized-MNIST likelihood of Kingma & Welling (arXiv 1312.6114) and Burda et al.
/// (arXiv 1509.00519).
#[derive(Debug, Clone)]
pub struct Bernoulli {
    logits: Tensor,
    batch_shape: Shape,
    event_shape: Shape,
}

impl Bernoulli {
    /// From logits.
    ///
    /// # Errors
    /// A non-float dtype; non-finite logits (use [`crate::Categorical`] with `-inf` logits to
    /// mask impossible outcomes).
    pub fn new(logits: Tensor) -> Result<Self> {
        validate::float("Bernoulli", "logits", &logits)?;
        validate::finite("Bernoulli", "logits", &logits)?;
        let batch_shape = logits.shape().clone();
        Ok(Self {
            logits,
            batch_shape,
            event_shape: Shape::from(()),
        })
    }

    /// From logits, checking only the dtype: for hot paths (decoders) where the caller checks
    /// the resulting log-densities instead (non-finite logits give non-finite log-densities,
    /// which vaekit's objectives detect and the trainer skips).
    ///
    /// # Errors
    /// A non-float dtype.
    pub fn new_unchecked(logits: Tensor) -> Result<Self> {
        validate::float("Bernoulli", "logits", &logits)?;
        let batch_shape = logits.shape().clone();
        Ok(Self {
            logits,
            batch_shape,
            event_shape: Shape::from(()),
        })
    }

    /// The logits.
    pub fn logits(&self) -> &Tensor {
        &self.logits
    }

    /// `P(x = 1)`, computed as `exp(log_sigmoid(logits))`.
    pub fn probs(&self) -> Result<Tensor> {
        log_sigmoid(&self.logits)?.exp()
    }
}

impl Distribution for Bernoulli {
    distribution_accessors!("Bernoulli", tensor logits);
    /// `1` where `ln u < log_sigmoid(logits)` for `u ~ U[0, 1)` drawn in f64, so the
    /// probabilities are honoured down to the uniform's resolution, 2^-53 (logits > -36).
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        let shape = extend(sample_shape, &self.batch_shape);
        let u = noise.uniform(&shape, DType::F64, self.device())?;
        let threshold = log_sigmoid(&self.logits.detach().to_dtype(DType::F64)?)?;
        u.log()?.broadcast_lt(&threshold)?.to_dtype(self.dtype())
    }
    /// `x * logits - softplus(logits)`, evaluated as the identical
    /// `-x softplus(-logits) - (1 - x) softplus(logits)`, which does not cancel: at logits 50,
    /// `log p(1) = -e^-50` instead of the `0` the first form rounds to. One fused pass on CPU
    /// ([`vaekit_core::bernoulli_log_prob`]).
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        check_event("Bernoulli", value, &self.event_shape)?;
        bernoulli_log_prob(&self.logits, value)
    }
}

impl Entropy for Bernoulli {
    /// `p softplus(-l) + (1 - p) softplus(l)`.
    fn entropy(&self) -> Result<Tensor> {
        let p = log_sigmoid(&self.logits)?.exp()?;
        let q = log_sigmoid(&self.logits.neg()?)?.exp()?;
        (p * softplus(&self.logits.neg()?)?)? + (q * softplus(&self.logits)?)?
    }
}

impl Moments for Bernoulli {
    fn mean(&self) -> Result<Tensor> {
        self.probs()
    }
    /// `p (1 - p) = exp(log_sigmoid(l) + log_sigmoid(-l))`.
    fn variance(&self) -> Result<Tensor> {
        (log_sigmoid(&self.logits)? + log_sigmoid(&self.logits.neg()?)?)?.exp()
    }
}
