//! `RelaxedOneHotCategorical`: the Concrete / Gumbel-softmax distribution.

use crate::accessors::distribution_accessors;
use crate::categorical::{gumbel, one_hot, open_unit_bounds};
use crate::shape::{check_event, extend};
use crate::special::ln_gamma;
use crate::traits::{Distribution, Reparameterize};
use crate::validate;
use candle::{D, Result, Shape, Tensor};
use vaekit_core::{NoiseSource, log_softmax, log_sum_exp};

/// The Concrete (Gumbel-softmax) distribution on the `K`-simplex with `temperature > 0` and
/// `logits`: `y = softmax((logits + G) / temperature)` with Gumbel noise `G`. As the
/// temperature goes to 0 it approaches a one-hot `Categorical(logits)`.
///
/// Values are clamped below at the dtype's smallest normal number so that `log_prob` of a
/// saturated sample stays finite at low temperatures.
///
/// # Shapes
/// `logits: [batch.., K]`; `batch_shape = [batch..]`, `event_shape = [K]`.
///
/// # References
/// Maddison, Mnih, Teh, arXiv 1611.00712 (density, eq. 8); Jang, Gu, Poole, arXiv 1611.01144.
#[derive(Debug, Clone)]
pub struct RelaxedOneHotCategorical {
    temperature: f64,
    logits: Tensor,
    batch_shape: Shape,
    event_shape: Shape,
}

impl RelaxedOneHotCategorical {
    /// From a temperature and logits `[batch.., K]`, `K >= 2`.
    ///
    /// # Errors
    /// `temperature` not finite and `> 0`; fewer than 2 classes; a non-float dtype;
    /// non-finite logits.
    pub fn new(temperature: f64, logits: Tensor) -> Result<Self> {
        validate::positive_scalar("RelaxedOneHotCategorical", "temperature", temperature)?;
        validate::float("RelaxedOneHotCategorical", "logits", &logits)?;
        validate::finite("RelaxedOneHotCategorical", "logits", &logits)?;
        let dims = logits.dims();
        if dims.is_empty() || dims[dims.len() - 1] < 2 {
            candle::bail!(
                "RelaxedOneHotCategorical: logits must be [batch.., K] with K >= 2, got {dims:?}"
            );
        }
        let batch_shape = Shape::from(dims[..dims.len() - 1].to_vec());
        let event_shape = Shape::from(dims[dims.len() - 1]);
        Ok(Self {
            temperature,
            logits,
            batch_shape,
            event_shape,
        })
    }

    /// The temperature.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The logits.
    pub fn logits(&self) -> &Tensor {
        &self.logits
    }

    fn num_classes(&self) -> usize {
        self.event_shape.dims()[0]
    }

    /// A relaxed sample whose value is the one-hot vector of its argmax while its gradient is
    /// that of the relaxed sample (straight-through Gumbel-softmax).
    ///
    /// # Shapes
    /// `sample_shape ++ batch_shape ++ [K]`.
    ///
    /// # References
    /// Jang et al., arXiv 1611.01144, section 2.2.
    pub fn rsample_straight_through(
        &self,
        sample_shape: &[usize],
        noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        let y = self.rsample(sample_shape, noise)?;
        let hard = one_hot(&y.argmax(D::Minus1)?, self.num_classes(), y.dtype())?;
        hard + (&y - y.detach())?
    }
}

impl Distribution for RelaxedOneHotCategorical {
    distribution_accessors!("RelaxedOneHotCategorical", tensor logits);
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        Ok(self.rsample(sample_shape, noise)?.detach())
    }
    /// `ln (K-1)! + (K-1) ln τ + Σ_k (l_k - (τ+1) ln y_k) - K lse_k(l_k - τ ln y_k)`.
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        check_event("RelaxedOneHotCategorical", value, &self.event_shape)?;
        let k = self.num_classes() as f64;
        let tau = self.temperature;
        let (tiny, _) = open_unit_bounds(value.dtype());
        let log_y = value.clamp(tiny, 1.0)?.log()?;
        let scores = self.logits.broadcast_sub(&(&log_y * tau)?)?;
        let first = scores
            .sum(D::Minus1)?
            .broadcast_sub(&log_y.sum(D::Minus1)?)?;
        let constant = ln_gamma(k) + (k - 1.0) * tau.ln();
        (first - (log_sum_exp(&scores, D::Minus1, false)? * k)?)? + constant
    }
    fn as_reparameterize(&self) -> Option<&dyn Reparameterize> {
        Some(self)
    }
}

impl Reparameterize for RelaxedOneHotCategorical {
    /// `exp(log_softmax((logits + G) / τ))`, clamped below at the dtype's tiny.
    fn rsample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        let shape = extend(sample_shape, self.logits.shape());
        let g = gumbel(&shape, self.dtype(), self.device(), noise)?;
        let x = (g.broadcast_add(&self.logits)? / self.temperature)?;
        let (tiny, _) = open_unit_bounds(self.dtype());
        log_softmax(&x, D::Minus1)?.exp()?.clamp(tiny, 1.0)
    }
}
