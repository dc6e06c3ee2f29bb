//! The von Mises–Fisher distribution on the sphere, and the uniform distribution on it.

use crate::accessors::distribution_accessors;
use crate::host_rng::HostRng;
use crate::shape::{check_event, extend, sample_dims};
use crate::special::{log_sphere_area, vmf_log_normalizer, vmf_mean_resultant};
use crate::traits::{Distribution, Entropy, Moments, Reparameterize};
use crate::validate;
use candle::{D, DType, Device, Result, Shape, Tensor};
use vaekit_core::NoiseSource;

/// The von Mises–Fisher distribution on the unit sphere `S^{m-1} ⊂ R^m`:
/// `p(x) = C_m(κ) exp(κ μᵀx)`, with mean direction `loc = μ` (unit norm) and concentration
/// `κ >= 0` (`κ = 0` is the uniform distribution).
///
/// Sampling uses Wood's rejection sampler for `w = μᵀx` and a Householder reflection; `rsample`
/// carries pathwise gradients to `loc` and `concentration` (the reparameterization of the
/// hyperspherical VAE). For an unbiased gradient of `E[f(x)]` in `κ`, also add the
/// rejection-sampling correction from [`VonMisesFisher::rsample_with_score`].
///
/// # Shapes
/// `loc: [batch.., m]`, `concentration: [batch..]`; `batch_shape = [batch..]`,
/// `event_shape = [m]`, `m >= 2`.
///
/// # References
/// A. T. A. Wood, "Simulation of the von Mises Fisher distribution", 1994; Davidson et al.,
/// "Hyperspherical variational auto-encoders", arXiv 1804.00891; Naesseth et al.,
/// "Reparameterization gradients through acceptance-rejection sampling algorithms",
/// arXiv 1610.05683.
#[derive(Debug, Clone)]
pub struct VonMisesFisher {
    loc: Tensor,
    concentration: Tensor,
    dim: usize,
    batch_shape: Shape,
    event_shape: Shape,
}

impl VonMisesFisher {
    /// From a unit-norm mean direction and a non-negative concentration.
    ///
    /// # Errors
    /// `m < 2`, inconsistent shapes, a non-float dtype, a `loc` whose norm is not 1 (within
    /// 1e-3 in f32, 1e-6 in f64), a `concentration` not finite and `>= 0`.
    pub fn new(loc: Tensor, concentration: Tensor) -> Result<Self> {
        validate::float("VonMisesFisher", "loc", &loc)?;
        validate::finite("VonMisesFisher", "loc", &loc)?;
        validate::positive("VonMisesFisher", "concentration", &concentration, true)?;
        let dims = loc.dims();
        if dims.is_empty()
            || dims[dims.len() - 1] < 2
            || concentration.dims() != &dims[..dims.len() - 1]
        {
            candle::bail!(
                "VonMisesFisher: need loc [batch.., m] with m >= 2 and concentration [batch..], got {dims:?} and {:?}",
                concentration.dims()
            );
        }
        let tol = if loc.dtype() == DType::F64 {
            1e-6
        } else {
            1e-3
        };
        if loc.elem_count() > 0 {
            let dev = (loc.sqr()?.sum(D::Minus1)?.sqrt()? - 1.0)?
                .abs()?
                .flatten_all()?
                .max(0)?;
            let dev = dev.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            if dev > tol {
                candle::bail!("VonMisesFisher: loc must have unit norm (off by {dev:e} > {tol:e})");
            }
        }
        let dim = dims[dims.len() - 1];
        let batch_shape = concentration.shape().clone();
        Ok(Self {
            loc,
            concentration,
            dim,
            batch_shape,
            event_shape: Shape::from(dim),
        })
    }

    /// The mean direction.
    pub fn loc(&self) -> &Tensor {
        &self.loc
    }

    /// The concentration.
    pub fn concentration(&self) -> &Tensor {
        &self.concentration
    }

    /// `ln C_m(κ)`. Shape `batch_shape`.
    pub fn log_normalizer(&self) -> Result<Tensor> {
        vmf_log_normalizer(&self.concentration, self.dim)
    }

    /// `A_m(κ) = E[μᵀx]`. Shape `batch_shape`.
    pub fn mean_resultant_length(&self) -> Result<Tensor> {
        vmf_mean_resultant(&self.concentration, self.dim)
    }

    /// Wood's rejection loop on the host: the accepted Beta draws `ε`, `[sample.., batch..]`,
    /// in f64.
    fn accepted_eps(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        let kappas = self
            .concentration
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        let n_samples: usize = sample_shape.iter().product();
        let mm1 = (self.dim - 1) as f64;
        let mut rng = HostRng::new(noise);
        let mut eps = Vec::with_capacity(n_samples * kappas.len());
        for _ in 0..n_samples {
            for &kappa in &kappas {
                let b = mm1 / (2.0 * kappa + (4.0 * kappa * kappa + mm1 * mm1).sqrt());
                let x0 = (1.0 - b) / (1.0 + b);
                let c = kappa * x0 + mm1 * (1.0 - x0 * x0).ln();
                loop {
                    let e = rng.beta(mm1 / 2.0, mm1 / 2.0)?;
                    let w = (1.0 - (1.0 + b) * e) / (1.0 - (1.0 - b) * e);
                    let u = rng.uniform_open()?;
                    if kappa * w + mm1 * (1.0 - x0 * w).ln() - c >= u.ln() {
                        eps.push(e);
                        break;
                    }
                }
            }
        }
        let shape = extend(sample_shape, &self.batch_shape);
        Tensor::from_vec(eps, &shape, self.device())
    }

    /// `w = μᵀx` of accepted draws `ε` (f64), in f64 whatever the distribution's dtype: for
    /// large `κ`, `b ≈ (m − 1) / 4κ` and `1 − w ≈ 2bε` lie below f32's resolution near 1, and
    /// computed in f32 the samples collapse onto the mean. Returns `w`, `1 − w²` (from
    /// `1 − w = 2bε / (1 − (1 − b)ε)`, without cancellation), `b` and the denominator
    /// `1 − (1 − b)ε`; all differentiable in `κ` (cast to f64).
    fn w_of_eps(&self, eps: &Tensor) -> Result<WoodDraw> {
        let mm1 = (self.dim - 1) as f64;
        let k = self.concentration.to_dtype(DType::F64)?;
        let root = ((k.sqr()? * 4.0)? + mm1 * mm1)?.sqrt()?;
        let b = (((&k * 2.0)? + root)?.recip()? * mm1)?;
        let den = eps
            .broadcast_mul(&b.neg()?.affine(1.0, 1.0)?)?
            .neg()?
            .affine(1.0, 1.0)?;
        let one_minus_w = (eps.broadcast_mul(&b)?.affine(2.0, 0.0)? / &den)?;
        let w = one_minus_w.neg()?.affine(1.0, 1.0)?;
        let one_minus_w2 = (&one_minus_w * w.affine(1.0, 1.0)?)?;
        Ok(WoodDraw {
            w,
            one_minus_w2,
            b,
            den,
        })
    }

    /// A sample and the score of its accepted proposal,
    /// `ln π(ε; κ) = ln r(w(ε, κ); κ) + ln |∂w/∂ε|` up to terms free of `κ`, where
    /// `r(w; κ) ∝ C_m(κ) e^{κw} (1 - w²)^{(m-3)/2}` is the density of `w = μᵀx` and
    /// `∂w/∂ε = -2b / (1 - (1 - b) ε)²`. The unbiased gradient of `E[f(x)]` is the pathwise
    /// gradient of `f(x)` plus the gradient of `detach(f(x)) * score` (Naesseth et al.,
    /// eq. 7, the `g_cor` term of Davidson et al.). The score is computed in f64 and returned
    /// in the distribution's dtype.
    ///
    /// # Shapes
    /// `(sample_shape ++ batch_shape ++ [m], sample_shape ++ batch_shape)`.
    pub fn rsample_with_score(
        &self,
        sample_shape: &[usize],
        noise: &mut dyn NoiseSource,
    ) -> Result<(Tensor, Tensor)> {
        let eps = self.accepted_eps(sample_shape, noise)?;
        let draw = self.w_of_eps(&eps)?;
        let x = self.place(&draw, sample_shape, noise)?;
        let m = self.dim as f64;
        let one_minus_w2 = draw.one_minus_w2.clamp(f64::MIN_POSITIVE, 1.0)?;
        let log_jac = (draw
            .b
            .log()?
            .affine(1.0, std::f64::consts::LN_2)?
            .broadcast_sub(&(draw.den.log()? * 2.0)?))?;
        let kappa = self.concentration.to_dtype(DType::F64)?;
        let log_norm = self.log_normalizer()?.to_dtype(DType::F64)?;
        let score = draw
            .w
            .broadcast_mul(&kappa)?
            .broadcast_add(&log_norm)?
            .add(&(one_minus_w2.log()? * ((m - 3.0) / 2.0))?)?
            .add(&log_jac)?;
        Ok((x, score.to_dtype(self.dtype())?))
    }

    /// Turns `w = μᵀx` into a point on the sphere: `(w, sqrt(1 - w²) v)` with `v` uniform on
    /// `S^{m-2}`, reflected so that `e_1` goes to `loc`. The radius comes from `1 − w²` in
    /// f64, so the tangential part survives the cast when `w` rounds to 1.
    fn place(
        &self,
        draw: &WoodDraw,
        sample_shape: &[usize],
        noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        let m = self.dim;
        let v_shape = sample_dims(sample_shape, &self.batch_shape, &Shape::from(m - 1));
        let v = noise.standard_normal(&v_shape, self.dtype(), self.device())?;
        let v = v.broadcast_div(&v.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)?;
        let radius = draw
            .one_minus_w2
            .clamp(f64::MIN_POSITIVE, 1.0)?
            .sqrt()?
            .to_dtype(self.dtype())?;
        let w = draw.w.to_dtype(self.dtype())?;
        let x = Tensor::cat(
            &[
                w.unsqueeze(D::Minus1)?,
                v.broadcast_mul(&radius.unsqueeze(D::Minus1)?)?,
            ],
            D::Minus1,
        )?;
        // Householder: u = (e1 - μ) / |e1 - μ|; x ↦ x - 2 (uᵀx) u (identity when μ = e1).
        let e1 = Tensor::cat(
            &[
                Tensor::ones(1, self.dtype(), self.device())?,
                Tensor::zeros(m - 1, self.dtype(), self.device())?,
            ],
            0,
        )?;
        let u = e1.broadcast_sub(&self.loc)?;
        // |u|² is 0 when loc = e1: divide by 1 there instead ("double where"), which keeps the
        // value (u = 0, identity reflection) and the gradient (no 0/0 in sqrt's backward).
        let n2 = u.sqr()?.sum_keepdim(D::Minus1)?;
        let nonzero = n2.gt(1e-30)?;
        let safe = nonzero.where_cond(&n2, &n2.ones_like()?)?;
        let u = u.broadcast_div(&safe.sqrt()?)?;
        let proj = x.broadcast_mul(&u)?.sum_keepdim(D::Minus1)?;
        x - proj.broadcast_mul(&u)?.affine(2.0, 0.0)?
    }
}

/// Wood's `w = μᵀx` of accepted draws and the pieces its score needs, all f64.
struct WoodDraw {
    w: Tensor,
    one_minus_w2: Tensor,
    b: Tensor,
    den: Tensor,
}

impl Distribution for VonMisesFisher {
    distribution_accessors!("VonMisesFisher", tensor loc);
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        Ok(self.rsample(sample_shape, noise)?.detach())
    }
    /// `ln C_m(κ) + κ μᵀx`.
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        check_event("VonMisesFisher", value, &self.event_shape)?;
        let dot = value.broadcast_mul(&self.loc)?.sum(D::Minus1)?;
        dot.broadcast_mul(&self.concentration)?
            .broadcast_add(&self.log_normalizer()?)
    }
    fn as_reparameterize(&self) -> Option<&dyn Reparameterize> {
        Some(self)
    }
}

impl Reparameterize for VonMisesFisher {
    /// The pathwise part of the reparameterization: gradients reach `loc` through the
    /// reflection and `concentration` through `w(ε, κ)` with the accepted `ε` held fixed.
    fn rsample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        let eps = self.accepted_eps(sample_shape, noise)?;
        let draw = self.w_of_eps(&eps)?;
        self.place(&draw, sample_shape, noise)
    }
}

impl Entropy for VonMisesFisher {
    /// `-ln C_m(κ) - κ A_m(κ)`.
    fn entropy(&self) -> Result<Tensor> {
        let ka = (&self.concentration * self.mean_resultant_length()?)?;
        (self.log_normalizer()? + ka)?.neg()
    }
}

impl Moments for VonMisesFisher {
    /// `A_m(κ) μ`.
    fn mean(&self) -> Result<Tensor> {
        self.loc
            .broadcast_mul(&self.mean_resultant_length()?.unsqueeze(D::Minus1)?)
    }
    /// The diagonal of `E[xxᵀ] - E[x]E[x]ᵀ`, with `E[xxᵀ] = (A/κ) I + (1 - m A/κ) μμᵀ`
    /// (`A/κ → 1/m` at `κ = 0`).
    fn variance(&self) -> Result<Tensor> {
        let m = self.dim as f64;
        let a = self.mean_resultant_length()?;
        let positive = self.concentration.gt(0.0)?;
        let safe_k = positive.where_cond(&self.concentration, &self.concentration.ones_like()?)?;
        let a_over_k =
            positive.where_cond(&(&a / &safe_k)?, &a.ones_like()?.affine(1.0 / m, 0.0)?)?;
        let mu2 = self.loc.sqr()?;
        let coef = (a_over_k.affine(-m, 1.0)? - a.sqr()?)?.unsqueeze(D::Minus1)?;
        mu2.broadcast_mul(&coef)?
            .broadcast_add(&a_over_k.unsqueeze(D::Minus1)?)
    }
}

/// The uniform distribution on the unit sphere `S^{m-1} ⊂ R^m`: the hyperspherical VAE's
/// prior.
///
/// # Shapes
/// `batch_shape` as given, `event_shape = [m]`.
#[derive(Debug, Clone)]
pub struct SphereUniform {
    dim: usize,
    batch_shape: Shape,
    event_shape: Shape,
    dtype: DType,
    device: Device,
}

impl SphereUniform {
    /// The uniform distribution on `S^{m-1}`, `m >= 2`.
    ///
    /// # Errors
    /// `m < 2`, a non-float dtype.
    pub fn new(
        dim: usize,
        batch_shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        if dim < 2 {
            candle::bail!("SphereUniform: the ambient dimension must be >= 2, got {dim}");
        }
        if !dtype.is_float() {
            candle::bail!("SphereUniform: dtype must be a float dtype, got {dtype:?}");
        }
        Ok(Self {
            dim,
            batch_shape: batch_shape.into(),
            event_shape: Shape::from(dim),
            dtype,
            device: device.clone(),
        })
    }

    /// The ambient dimension `m`.
    pub fn dim(&self) -> usize {
        self.dim
    }
}

impl Distribution for SphereUniform {
    distribution_accessors!("SphereUniform", fields);
    /// A normalised Gaussian vector.
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        let shape = sample_dims(sample_shape, &self.batch_shape, &self.event_shape);
        let g = noise.standard_normal(&shape, self.dtype, &self.device)?;
        g.broadcast_div(&g.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
    }
    /// `-ln |S^{m-1}|` (the value is assumed to lie on the sphere).
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        check_event("SphereUniform", value, &self.event_shape)?;
        let lead = value.sum(D::Minus1)?.zeros_like()?;
        let zeros = Tensor::zeros(&self.batch_shape, self.dtype, &self.device)?;
        lead.broadcast_add(&zeros)?
            .affine(1.0, -log_sphere_area(self.dim))
    }
}

impl Entropy for SphereUniform {
    /// `ln |S^{m-1}|`.
    fn entropy(&self) -> Result<Tensor> {
        Tensor::full(log_sphere_area(self.dim), &self.batch_shape, &self.device)?
            .to_dtype(self.dtype)
    }
}
