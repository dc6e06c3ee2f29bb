//! `Logistic` and `DiscretizedLogistic`.

use crate::accessors::distribution_accessors;
use crate::categorical::open_unit_bounds;
use crate::shape::{check_event, check_same_shape, extend};
use crate::traits::{Distribution, Entropy, Moments, Reparameterize};
use crate::validate;
use candle::{DType, Device, Result, Shape, Tensor};
use vaekit_core::{NoiseSource, log_sigmoid, log1mexp, softplus};

/// Independent logistic variables with location `loc` and scale `scale`:
/// CDF `sigmoid((x - loc) / scale)`.
///
/// # Shapes
/// `batch_shape = loc.shape()`, `event_shape = []`.
///
/// # References
/// N. Balakrishnan, "Handbook of the Logistic Distribution", 1992.
#[derive(Debug, Clone)]
pub struct Logistic {
    loc: Tensor,
    scale: Tensor,
    log_scale: Tensor,
    batch_shape: Shape,
    event_shape: Shape,
}

impl Logistic {
    /// From a location and a scale of the same shape.
    ///
    /// # Errors
    /// Different shapes, a non-float dtype, non-finite `loc`, `scale` not finite and `> 0`.
    pub fn new(loc: Tensor, scale: Tensor) -> Result<Self> {
        validate::float("Logistic", "loc", &loc)?;
        validate::finite("Logistic", "loc", &loc)?;
        validate::positive("Logistic", "scale", &scale, false)?;
        check_same_shape("Logistic", "loc and scale", &loc, &scale)?;
        let log_scale = scale.log()?;
        let batch_shape = loc.shape().clone();
        Ok(Self {
            loc,
            scale,
            log_scale,
            batch_shape,
            event_shape: Shape::from(()),
        })
    }

    /// The location.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }

    /// The scale.
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }
}

/// Logistic noise `ln u - ln(1 - u)`, `u ~ U(0, 1)` clamped away from 0 and 1.
fn logistic_noise(
    shape: &Shape,
    dtype: DType,
    device: &Device,
    noise: &mut dyn NoiseSource,
) -> Result<Tensor> {
    let (tiny, top) = open_unit_bounds(dtype);
    let u = noise.uniform(shape, dtype, device)?.clamp(tiny, top)?;
    u.log()? - u.neg()?.affine(1.0, 1.0)?.log()?
}

impl Distribution for Logistic {
    distribution_accessors!("Logistic", tensor loc);
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        Ok(self.rsample(sample_shape, noise)?.detach())
    }
    /// With `z = (x - loc) / scale`: `-z - ln scale - 2 softplus(-z)`.
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        check_event("Logistic", value, &self.event_shape)?;
        let z = value.broadcast_sub(&self.loc)?.broadcast_div(&self.scale)?;
        (z.neg()? - (softplus(&z.neg()?)? * 2.0)?)?.broadcast_sub(&self.log_scale)
    }
    fn as_reparameterize(&self) -> Option<&dyn Reparameterize> {
        Some(self)
    }
}

impl Reparameterize for Logistic {
    /// `loc + scale * (ln u - ln(1 - u))`.
    fn rsample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        let shape = extend(sample_shape, &self.batch_shape);
        logistic_noise(&shape, self.dtype(), self.device(), noise)?
            .broadcast_mul(&self.scale)?
            .broadcast_add(&self.loc)
    }
}

impl Entropy for Logistic {
    /// `ln scale + 2`.
    fn entropy(&self) -> Result<Tensor> {
        self.log_scale.affine(1.0, 2.0)
    }
}

impl Moments for Logistic {
    fn mean(&self) -> Result<Tensor> {
        Ok(self.loc.clone())
    }
    /// `scale² π² / 3`.
    fn variance(&self) -> Result<Tensor> {
        self.scale.sqr()? * (std::f64::consts::PI.powi(2) / 3.0)
    }
}

/// A logistic distribution discretised into `num_bins` equal bins on `[0, 1]`: the value
/// `k / (num_bins - 1)` owns the interval of half-width `1 / (2 (num_bins - 1))` around it,
/// and the two end bins extend to `-inf` and `+inf`, so the masses sum to 1 (8-bit pixels:
/// `num_bins = 256`).
///
/// # Shapes
/// `batch_shape = loc.shape()`, `event_shape = []`; values in `{0, 1/(n-1), .., 1}`.
///
/// # References
/// Kingma et al., "Improved variational inference with inverse autoregressive flow",
/// arXiv 1606.04934 (the IAF paper's image likelihood); Salimans et al., "PixelCNN++",
/// arXiv 1701.05517 (edge bins).
#[derive(Debug, Clone)]
pub struct DiscretizedLogistic {
    loc: Tensor,
    scale: Tensor,
    num_bins: usize,
    batch_shape: Shape,
    event_shape: Shape,
}

impl DiscretizedLogistic {
    /// From a location and a scale (in data units on `[0, 1]`) and the number of bins.
    ///
    /// # Errors
    /// Fewer than 2 bins, and the rules of [`Logistic::new`].
    pub fn new(loc: Tensor, scale: Tensor, num_bins: usize) -> Result<Self> {
        if num_bins < 2 {
            candle::bail!("DiscretizedLogistic: num_bins must be >= 2, got {num_bins}");
        }
        let base = Logistic::new(loc, scale)?;
        Ok(Self {
            batch_shape: base.batch_shape.clone(),
            event_shape: Shape::from(()),
            loc: base.loc,
            scale: base.scale,
            num_bins,
        })
    }

    /// [`DiscretizedLogistic::new`] checking only shapes, dtypes and `num_bins`: for hot
    /// paths (decoders) where the caller checks the resulting log-densities instead.
    ///
    /// # Errors
    /// Fewer than 2 bins, different shapes, a non-float dtype.
    pub fn new_unchecked(loc: Tensor, scale: Tensor, num_bins: usize) -> Result<Self> {
        if num_bins < 2 {
            candle::bail!("DiscretizedLogistic: num_bins must be >= 2, got {num_bins}");
        }
        validate::float("DiscretizedLogistic", "loc", &loc)?;
        check_same_shape("DiscretizedLogistic", "loc and scale", &loc, &scale)?;
        let batch_shape = loc.shape().clone();
        Ok(Self {
            loc,
            scale,
            num_bins,
            batch_shape,
            event_shape: Shape::from(()),
        })
    }

    /// Number of bins.
    pub fn num_bins(&self) -> usize {
        self.num_bins
    }

    fn half_width(&self) -> f64 {
        0.5 / (self.num_bins - 1) as f64
    }
}

impl Distribution for DiscretizedLogistic {
    distribution_accessors!("DiscretizedLogistic", tensor loc);
    /// A logistic draw rounded to the nearest bin value and clipped to `[0, 1]`.
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        let shape = extend(sample_shape, &self.batch_shape);
        let x = logistic_noise(&shape, self.dtype(), self.device(), noise)?
            .broadcast_mul(&self.scale.detach())?
            .broadcast_add(&self.loc.detach())?;
        let n = (self.num_bins - 1) as f64;
        (x.clamp(0.0, 1.0)? * n)?.round()? / n
    }
    /// The mass of the bin holding `value`. With `a`, `b` the standardised bin edges,
    /// `ln(σ(b) - σ(a)) = log_sigmoid(b) + log_sigmoid(-a) + log1mexp(a - b)`, which is finite
    /// for every scale; the end bins use `log_sigmoid(b)` and `log_sigmoid(-a)`.
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        check_event("DiscretizedLogistic", value, &self.event_shape)?;
        let h = self.half_width();
        let centred = value.broadcast_sub(&self.loc)?;
        let b = (&centred + h)?.broadcast_div(&self.scale)?;
        let a = (&centred - h)?.broadcast_div(&self.scale)?;
        let ls_b = log_sigmoid(&b)?;
        let ls_neg_a = log_sigmoid(&a.neg()?)?;
        let middle = ((&ls_b + &ls_neg_a)? + log1mexp(&(&a - &b)?)?)?;
        let first = value.le(h)?.broadcast_as(middle.shape())?;
        let last = value.ge(1.0 - h)?.broadcast_as(middle.shape())?;
        let inner = last.where_cond(&ls_neg_a, &middle)?;
        first.where_cond(&ls_b, &inner)
    }
}
