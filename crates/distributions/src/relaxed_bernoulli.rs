//! `RelaxedBernoulli`: the binary Concrete distribution.

use crate::accessors::distribution_accessors;
use crate::categorical::open_unit_bounds;
use crate::shape::{check_event, extend};
use crate::traits::{Distribution, Reparameterize};
use crate::validate;
use candle::{Result, Shape, Tensor};
use vaekit_core::{NoiseSource, log_sigmoid, softplus};

/// The binary Concrete (relaxed Bernoulli) distribution on `(0, 1)` with `temperature > 0`
/// and `logits`: `y = sigmoid((logits + L) / temperature)` with logistic noise `L`. As the
/// temperature goes to 0 it approaches `Bernoulli(logits)`.
///
/// Values are clamped to `[tiny, 1 - eps]` of the dtype (as PyTorch's `clamp_probs`), so that
/// `log_prob` of a saturated sample stays finite at low temperatures.
///
/// # Shapes
/// `batch_shape = logits.shape()`, `event_shape = []`.
///
/// # References
/// Maddison, Mnih, Teh, "The Concrete distribution", arXiv 1611.00712 (binary Concrete,
/// appendix B); Jang, Gu, Poole, "Categorical reparameterization with Gumbel-softmax",
/// arXiv 1611.01144.
#[derive(Debug, Clone)]
pub struct RelaxedBernoulli {
    temperature: f64,
    logits: Tensor,
    batch_shape: Shape,
    event_shape: Shape,
}

impl RelaxedBernoulli {
    /// From a temperature and logits.
    ///
    /// # Errors
    /// `temperature` not finite and `> 0`; a non-float dtype; non-finite logits.
    pub fn new(temperature: f64, logits: Tensor) -> Result<Self> {
        validate::positive_scalar("RelaxedBernoulli", "temperature", temperature)?;
        validate::float("RelaxedBernoulli", "logits", &logits)?;
        validate::finite("RelaxedBernoulli", "logits", &logits)?;
        let batch_shape = logits.shape().clone();
        Ok(Self {
            temperature,
            logits,
            batch_shape,
            event_shape: Shape::from(()),
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

    /// A relaxed sample `y` whose value is rounded to `{0, 1}` while its gradient is that of
    /// `y` (straight-through: `hard + y - detach(y)`).
    ///
    /// # Shapes
    /// `sample_shape ++ batch_shape`.
    ///
    /// # References
    /// Bengio, Léonard, Courville, arXiv 1308.3432; Jang et al., arXiv 1611.01144, section 2.2.
    pub fn rsample_straight_through(
        &self,
        sample_shape: &[usize],
        noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        let y = self.rsample(sample_shape, noise)?;
        let hard = y.gt(0.5)?.to_dtype(y.dtype())?;
        hard + (&y - y.detach())?
    }
}

impl Distribution for RelaxedBernoulli {
    distribution_accessors!("RelaxedBernoulli", tensor logits);
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        Ok(self.rsample(sample_shape, noise)?.detach())
    }
    /// With `x = logit(y)` and `d = logits - temperature * x`:
    /// `ln temperature + d - 2 softplus(d) - ln y - ln(1 - y)`.
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        check_event("RelaxedBernoulli", value, &self.event_shape)?;
        let (tiny, top) = open_unit_bounds(value.dtype());
        let y = value.clamp(tiny, top)?;
        let log_y = y.log()?;
        let log_1my = y.neg()?.affine(1.0, 1.0)?.log()?;
        let x = (&log_y - &log_1my)?;
        let d = self.logits.broadcast_sub(&(x * self.temperature)?)?;
        ((d.clone() - (softplus(&d)? * 2.0)?)? + self.temperature.ln())?
            .broadcast_sub(&log_y)?
            .broadcast_sub(&log_1my)
    }
    fn as_reparameterize(&self) -> Option<&dyn Reparameterize> {
        Some(self)
    }
}

impl Reparameterize for RelaxedBernoulli {
    /// `sigmoid((logits + ln u - ln(1 - u)) / temperature)`, computed as
    /// `exp(log_sigmoid(..))` and clamped into the open unit interval.
    fn rsample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        let shape = extend(sample_shape, &self.batch_shape);
        let (tiny, top) = open_unit_bounds(self.dtype());
        let u = noise
            .uniform(&shape, self.dtype(), self.device())?
            .clamp(tiny, top)?;
        let logistic = (u.log()? - u.neg()?.affine(1.0, 1.0)?.log()?)?;
        let x = (logistic.broadcast_add(&self.logits)? / self.temperature)?;
        log_sigmoid(&x)?.exp()?.clamp(tiny, top)
    }
}
