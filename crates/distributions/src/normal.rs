//! `Normal` (element-wise Gaussian; diagonal once wrapped in `Independent`) and
//! `StandardNormal`.

use crate::accessors::distribution_accessors;
use crate::shape::{check_event, check_same_shape, extend, sum_rightmost};
use crate::traits::{Distribution, Entropy, Moments, Reparameterize};
use crate::validate;
use candle::{DType, Device, Result, Shape, Tensor};
use vaekit_core::NoiseSource;
use vaekit_ops::{
    HALF_LN_2PI, normal_log_prob_sum, normal_reparameterize, standard_normal_log_prob_sum,
};

/// Independent Gaussians `N(loc, scale²)`, one per element of `loc`.
///
/// Wrap it in [`crate::Independent`] to get a diagonal multivariate Gaussian (the usual VAE
/// posterior): `Independent::new(Normal::new(loc, scale)?, 1)?`.
///
/// # Shapes
/// `batch_shape = loc.shape()`, `event_shape = []`.
///
/// # References
/// Kingma, Welling, "Auto-encoding variational Bayes", arXiv 1312.6114 (the
/// reparameterization `loc + scale * eps`).
#[derive(Debug, Clone)]
pub struct Normal {
    loc: Tensor,
    scale: Tensor,
    log_scale: Tensor,
    batch_shape: Shape,
    event_shape: Shape,
}

impl Normal {
    /// From a mean and a standard deviation of the same shape.
    ///
    /// # Errors
    /// Different shapes, a non-float dtype, a non-finite `loc`, a `scale` that is not finite
    /// and `> 0`.
    pub fn new(loc: Tensor, scale: Tensor) -> Result<Self> {
        validate::float("Normal", "loc", &loc)?;
        validate::finite("Normal", "loc", &loc)?;
        validate::positive("Normal", "scale", &scale, false)?;
        let log_scale = scale.log()?;
        Self::build(loc, scale, log_scale)
    }

    /// From a mean and a log standard deviation (what an encoder outputs); the scale is
    /// `exp(log_scale)`, so any finite `log_scale` whose exponential is finite and non-zero in
    /// the dtype is valid (in f32: about -87 to 88).
    ///
    /// # Errors
    /// Different shapes, a non-float dtype, non-finite parameters.
    pub fn from_log_scale(loc: Tensor, log_scale: Tensor) -> Result<Self> {
        validate::float("Normal", "loc", &loc)?;
        validate::finite("Normal", "loc", &loc)?;
        validate::finite("Normal", "log_scale", &log_scale)?;
        let scale = log_scale.exp()?;
        Self::build(loc, scale, log_scale)
    }

    /// [`Normal::from_log_scale`] checking only shapes and dtypes: for hot paths (encoders)
    /// where the caller checks the resulting log-densities instead.
    ///
    /// # Errors
    /// Different shapes or a non-float dtype.
    pub fn from_log_scale_unchecked(loc: Tensor, log_scale: Tensor) -> Result<Self> {
        validate::float("Normal", "loc", &loc)?;
        let scale = log_scale.exp()?;
        Self::build(loc, scale, log_scale)
    }

    fn build(loc: Tensor, scale: Tensor, log_scale: Tensor) -> Result<Self> {
        check_same_shape("Normal", "loc and scale", &loc, &scale)?;
        if loc.dtype() != scale.dtype() {
            candle::bail!(
                "Normal: loc and scale must share a dtype, got {:?} and {:?}",
                loc.dtype(),
                scale.dtype()
            );
        }
        let batch_shape = loc.shape().clone();
        Ok(Self {
            loc,
            scale,
            log_scale,
            batch_shape,
            event_shape: Shape::from(()),
        })
    }

    /// The mean.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }

    /// The standard deviation.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }

    /// The log standard deviation.
    pub fn log_scale(&self) -> &Tensor {
        &self.log_scale
    }
}

impl Distribution for Normal {
    distribution_accessors!("Normal", tensor loc);
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        Ok(self.rsample(sample_shape, noise)?.detach())
    }
    /// `-(x - loc)² / (2 scale²) - ln scale - ½ ln 2π`.
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        check_event("Normal", value, &self.event_shape)?;
        // Parameters repeated over the value's leading (sample) dimensions by
        // `expand_leading`, whose backward is a contiguous block sum; other broadcasts as
        // candle's. The arithmetic is that of `broadcast_sub` / `broadcast_div`.
        let shape = value
            .shape()
            .broadcast_shape_binary_op(self.loc.shape(), "Normal::log_prob")?;
        let expand = |t: &Tensor| vaekit_core::expand_leading(t, &shape);
        let (value, loc) = (expand(value)?, expand(&self.loc)?);
        let z = ((value - loc)? / expand(&self.scale)?)?;
        ((z.sqr()? * -0.5)? - expand(&self.log_scale)?)? - HALF_LN_2PI
    }
    /// On CPU one fused op for the parameters broadcast over leading (sample) dimensions or
    /// over one run of size-1 dimensions (`[B, 1, D]` against `[B, S, D]`): see
    /// `normal_fused`. The terms are summed in f64.
    fn log_prob_summed(&self, value: &Tensor, n: usize) -> Result<Tensor> {
        check_event("Normal", value, &self.event_shape)?;
        match normal_log_prob_sum(value, &self.loc, &self.log_scale, n)? {
            Some(lp) => Ok(lp),
            None => sum_rightmost(&self.log_prob(value)?, n),
        }
    }
    fn as_reparameterize(&self) -> Option<&dyn Reparameterize> {
        Some(self)
    }
}

impl Normal {
    /// `loc + scale · eps` for given standard-normal noise `eps`: the reparameterized sample
    /// that [`Reparameterize::rsample`] draws, for callers that draw (or reorder) the noise
    /// themselves. On CPU one fused op with one backward op.
    ///
    /// # Shapes
    /// `eps: [..]` broadcast against the parameters gives the broadcast shape (`eps`'s own
    /// when the parameters broadcast to it).
    ///
    /// # Errors
    /// Shapes that do not broadcast; a dtype other than the parameters'.
    pub fn reparameterize(&self, eps: &Tensor) -> Result<Tensor> {
        if let Some(z) = normal_reparameterize(eps, &self.loc, &self.scale)? {
            return Ok(z);
        }
        let shape = eps
            .shape()
            .broadcast_shape_binary_op(self.loc.shape(), "Normal::reparameterize")?;
        let expand = |t: &Tensor| vaekit_core::expand_leading(t, &shape);
        (expand(eps)? * expand(&self.scale)?)? + expand(&self.loc)?
    }
}

impl Reparameterize for Normal {
    /// `loc + scale * eps`, `eps ~ N(0, 1)`.
    fn rsample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        let shape = extend(sample_shape, &self.batch_shape);
        let eps = noise.standard_normal(&shape, self.dtype(), self.device())?;
        self.reparameterize(&eps)
    }
}

impl Entropy for Normal {
    /// `½ + ½ ln 2π + ln scale`.
    fn entropy(&self) -> Result<Tensor> {
        self.log_scale.affine(1.0, 0.5 + HALF_LN_2PI)
    }
}

impl Moments for Normal {
    fn mean(&self) -> Result<Tensor> {
        Ok(self.loc.clone())
    }
    fn variance(&self) -> Result<Tensor> {
        self.scale.sqr()
    }
}

/// `N(0, 1)` with a batch shape, a dtype and a device, and no parameter tensors: the usual
/// VAE prior (wrap it in [`crate::Independent`] for a latent vector).
///
/// # Shapes
/// `batch_shape` as given, `event_shape = []`.
#[derive(Debug, Clone)]
pub struct StandardNormal {
    batch_shape: Shape,
    event_shape: Shape,
    dtype: DType,
    device: Device,
}

impl StandardNormal {
    /// A batch of standard normals.
    ///
    /// # Errors
    /// A non-float dtype.
    pub fn new(batch_shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Self> {
        if !dtype.is_float() {
            candle::bail!("StandardNormal: dtype must be a float dtype, got {dtype:?}");
        }
        Ok(Self {
            batch_shape: batch_shape.into(),
            event_shape: Shape::from(()),
            dtype,
            device: device.clone(),
        })
    }
}

impl Distribution for StandardNormal {
    distribution_accessors!("StandardNormal", fields);
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        self.rsample(sample_shape, noise)
    }
    /// `-x²/2 - ½ ln 2π`, broadcast to the batch shape.
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let lp = (value.sqr()? * -0.5)?.affine(1.0, -HALF_LN_2PI)?;
        let zeros = Tensor::zeros(&self.batch_shape, self.dtype, &self.device)?;
        lp.broadcast_add(&zeros)
    }
    /// On CPU one fused op when the value's shape ends in the batch shape (so that the
    /// result needs no broadcast) and its dtype and device are the distribution's; the terms
    /// are summed in f64.
    fn log_prob_summed(&self, value: &Tensor, n: usize) -> Result<Tensor> {
        let (v, b) = (value.dims(), self.batch_shape.dims());
        if v.len() >= b.len()
            && &v[v.len() - b.len()..] == b
            && value.dtype() == self.dtype
            && value.device().same_device(&self.device)
            && let Some(lp) = standard_normal_log_prob_sum(value, n)?
        {
            return Ok(lp);
        }
        sum_rightmost(&self.log_prob(value)?, n)
    }
    fn as_reparameterize(&self) -> Option<&dyn Reparameterize> {
        Some(self)
    }
}

impl Reparameterize for StandardNormal {
    fn rsample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        noise.standard_normal(
            &extend(sample_shape, &self.batch_shape),
            self.dtype,
            &self.device,
        )
    }
}

impl Entropy for StandardNormal {
    fn entropy(&self) -> Result<Tensor> {
        Tensor::full(0.5 + HALF_LN_2PI, &self.batch_shape, &self.device)?.to_dtype(self.dtype)
    }
}

impl Moments for StandardNormal {
    fn mean(&self) -> Result<Tensor> {
        Tensor::zeros(&self.batch_shape, self.dtype, &self.device)
    }
    fn variance(&self) -> Result<Tensor> {
        Tensor::ones(&self.batch_shape, self.dtype, &self.device)
    }
}
