//! `Categorical` on logits, sampled by Gumbel-max.

use crate::accessors::distribution_accessors;
use crate::shape::{check_event, extend};
use crate::traits::{Distribution, Entropy};
use crate::validate;
use candle::{D, DType, Device, Result, Shape, Tensor};
use vaekit_core::{NoiseSource, is_finite, log_softmax};

/// Categorical variables over `K` classes with `P(k) = softmax(logits)_k`. A logit of `-inf`
/// marks an impossible class.
///
/// # Shapes
/// `logits: [batch.., K]`; `batch_shape = [batch..]`, `event_shape = []`; values are class
/// indices (`u32`).
///
/// # References
/// Gumbel-max sampling: E. J. Gumbel, 1954; Maddison, Tarlow, Minka, "A* sampling", 2014.
#[derive(Debug, Clone)]
pub struct Categorical {
    logits: Tensor,
    log_probs: Tensor,
    batch_shape: Shape,
    event_shape: Shape,
}

impl Categorical {
    /// From unnormalised logits.
    ///
    /// # Errors
    /// Rank 0, zero classes, a non-float dtype, NaN or `+inf` logits, or a row with no finite
    /// logit.
    pub fn new(logits: Tensor) -> Result<Self> {
        validate::float("Categorical", "logits", &logits)?;
        let dims = logits.dims();
        if dims.is_empty() || dims[dims.len() - 1] == 0 {
            candle::bail!("Categorical: logits must be [batch.., K] with K >= 1, got {dims:?}");
        }
        if logits.elem_count() > 0 {
            let bad = (logits.ne(&logits)?.to_dtype(DType::U32)?
                + logits.eq(f64::INFINITY)?.to_dtype(DType::U32)?)?;
            if bad.flatten_all()?.max(0)?.to_scalar::<u32>()? != 0 {
                candle::bail!("Categorical: logits must not be NaN or +inf");
            }
            let any_finite = is_finite(&logits)?.max(D::Minus1)?.flatten_all()?.min(0)?;
            if any_finite.to_scalar::<u8>()? == 0 {
                candle::bail!("Categorical: every row of logits needs at least one finite entry");
            }
        }
        let log_probs = log_softmax(&logits, D::Minus1)?;
        let batch_shape = Shape::from(dims[..dims.len() - 1].to_vec());
        Ok(Self {
            logits,
            log_probs,
            batch_shape,
            event_shape: Shape::from(()),
        })
    }

    /// The logits as given.
    pub fn logits(&self) -> &Tensor {
        &self.logits
    }

    /// Normalised log-probabilities, `log_softmax(logits)`.
    pub fn log_probs(&self) -> &Tensor {
        &self.log_probs
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.logits.dim(D::Minus1).unwrap_or(0)
    }

    /// Samples as one-hot vectors in the logits' dtype.
    ///
    /// # Shapes
    /// `sample_shape ++ batch_shape ++ [K]`.
    pub fn sample_one_hot(
        &self,
        sample_shape: &[usize],
        noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        let idx = self.sample(sample_shape, noise)?;
        one_hot(&idx, self.num_classes(), self.dtype())
    }
}

/// One-hot encoding of `u32` indices: `[..]` gives `[.., k]` in `dtype`.
pub(crate) fn one_hot(indices: &Tensor, k: usize, dtype: DType) -> Result<Tensor> {
    let classes = Tensor::arange(0u32, k as u32, indices.device())?;
    indices
        .unsqueeze(D::Minus1)?
        .broadcast_eq(&classes)?
        .to_dtype(dtype)
}

/// Gumbel noise `-ln(-ln u)` for `u ~ U[0, 1)`, with `u` clamped away from 0 and 1.
pub(crate) fn gumbel(
    shape: &Shape,
    dtype: DType,
    device: &Device,
    noise: &mut dyn NoiseSource,
) -> Result<Tensor> {
    let u = noise.uniform(shape, dtype, device)?;
    let (tiny, top) = open_unit_bounds(dtype);
    u.clamp(tiny, top)?.log()?.neg()?.log()?.neg()
}

/// The smallest positive normal number and the largest number below 1 of a float dtype.
pub(crate) fn open_unit_bounds(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F64 => (f64::MIN_POSITIVE, 1.0 - f64::EPSILON / 2.0),
        DType::F16 => (6.104e-5, 1.0 - 4.883e-4),
        DType::BF16 => (1.176e-38, 1.0 - 3.907e-3),
        _ => (
            f64::from(f32::MIN_POSITIVE),
            1.0 - f64::from(f32::EPSILON) / 2.0,
        ),
    }
}

impl Distribution for Categorical {
    distribution_accessors!("Categorical", tensor logits);
    /// `argmax_k(logits_k + G_k)` with Gumbel noise `G`.
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        let shape = extend(sample_shape, self.logits.shape());
        let g = gumbel(&shape, self.dtype(), self.device(), noise)?;
        g.broadcast_add(&self.logits.detach())?.argmax(D::Minus1)
    }
    /// `log_softmax(logits)[value]`; `value` holds class indices (integer dtypes; floats are
    /// truncated).
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        check_event("Categorical", value, &self.event_shape)?;
        let value = value.to_dtype(DType::U32)?;
        let k = self.num_classes();
        let target = value
            .shape()
            .broadcast_shape_binary_op(&self.batch_shape, "Categorical::log_prob")?;
        let value = value.broadcast_as(&target)?;
        let mut with_classes = target.dims().to_vec();
        with_classes.push(k);
        let lp = self.log_probs.broadcast_as(with_classes)?.contiguous()?;
        lp.gather(&value.contiguous()?.unsqueeze(D::Minus1)?, D::Minus1)?
            .squeeze(D::Minus1)
    }
}

impl Entropy for Categorical {
    /// `-Σ_k p_k ln p_k`, with impossible classes (`p_k = 0`) contributing 0.
    fn entropy(&self) -> Result<Tensor> {
        let finite = is_finite(&self.log_probs)?;
        let safe = finite.where_cond(&self.log_probs, &self.log_probs.zeros_like()?)?;
        (safe.exp()? * &safe)?.sum(D::Minus1)?.neg()
    }
}
