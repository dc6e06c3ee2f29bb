//! `Independent`: reinterpret the rightmost batch dimensions as event dimensions.

use crate::shape::{check_event, sum_rightmost};
use crate::traits::{Distribution, Entropy, Moments, Reparameterize};
use candle::{DType, Device, Result, Shape, Tensor};
use vaekit_core::NoiseSource;

/// Treats the last `n` batch dimensions of `base` as event dimensions: `log_prob` and
/// `entropy` are summed over them. `Independent::new(Normal::new(loc, scale)?, 1)?` with
/// `loc: [B, D]` is a batch of `B` diagonal Gaussians on `R^D`.
///
/// # Shapes
/// `batch_shape = base.batch_shape[..len - n]`,
/// `event_shape = base.batch_shape[len - n..] ++ base.event_shape`.
///
/// # References
/// Pyro's and TFP's `Independent`.
#[derive(Debug, Clone)]
pub struct Independent<D> {
    base: D,
    reinterpreted: usize,
    batch_shape: Shape,
    event_shape: Shape,
}

impl<D: Distribution> Independent<D> {
    /// Reinterprets `n` batch dimensions of `base`.
    ///
    /// # Errors
    /// `n` larger than the base's batch rank.
    pub fn new(base: D, n: usize) -> Result<Self> {
        let batch = base.batch_shape().dims();
        if n > batch.len() {
            candle::bail!(
                "Independent: cannot reinterpret {n} dimensions of a batch shape {batch:?}"
            );
        }
        let split = batch.len() - n;
        let mut event = batch[split..].to_vec();
        event.extend_from_slice(base.event_shape().dims());
        let batch_shape = Shape::from(batch[..split].to_vec());
        Ok(Self {
            base,
            reinterpreted: n,
            batch_shape,
            event_shape: Shape::from(event),
        })
    }

    /// The base distribution.
    pub fn base(&self) -> &D {
        &self.base
    }

    /// Number of reinterpreted dimensions.
    pub fn reinterpreted_ndims(&self) -> usize {
        self.reinterpreted
    }
}

impl<D: Distribution> Distribution for Independent<D> {
    fn name(&self) -> &'static str {
        "Independent"
    }
    fn batch_shape(&self) -> &Shape {
        &self.batch_shape
    }
    fn event_shape(&self) -> &Shape {
        &self.event_shape
    }
    fn dtype(&self) -> DType {
        self.base.dtype()
    }
    fn device(&self) -> &Device {
        self.base.device()
    }
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        self.base.sample(sample_shape, noise)
    }
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        check_event("Independent", value, &self.event_shape)?;
        self.base.log_prob_summed(value, self.reinterpreted)
    }
    fn log_prob_summed(&self, value: &Tensor, n: usize) -> Result<Tensor> {
        check_event("Independent", value, &self.event_shape)?;
        self.base.log_prob_summed(value, self.reinterpreted + n)
    }
    fn as_reparameterize(&self) -> Option<&dyn Reparameterize> {
        self.base
            .as_reparameterize()
            .map(|_| self as &dyn Reparameterize)
    }
    fn reinterpreted(&self) -> Option<(&dyn Distribution, usize)> {
        Some((&self.base, self.reinterpreted))
    }
}

impl<D: Distribution> Reparameterize for Independent<D> {
    fn rsample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        match self.base.as_reparameterize() {
            Some(base) => base.rsample(sample_shape, noise),
            None => candle::bail!("Independent: the base {} has no rsample", self.base.name()),
        }
    }
}

impl<D: Entropy> Entropy for Independent<D> {
    fn entropy(&self) -> Result<Tensor> {
        sum_rightmost(&self.base.entropy()?, self.reinterpreted)
    }
}

impl<D: Moments> Moments for Independent<D> {
    fn mean(&self) -> Result<Tensor> {
        self.base.mean()
    }
    fn variance(&self) -> Result<Tensor> {
        self.base.variance()
    }
}
