//! A linear-Gaussian VAE whose marginal likelihood is exact: the reference model every
//! objective and estimator is tested against.

use crate::model::GenerativeModel;
use crate::prior::PriorRef;
use candle::{DType, Device, Result, Tensor};
use vaekit_distributions::{Distribution, Independent, Normal, StandardNormal};
use vaekit_nets::{Encoder, EncoderOutput, Pass};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// `W` (rows), `b`, `P`, `D` on the host in f64.
type HostParams = (Vec<Vec<f64>>, Vec<f64>, usize, usize);

/// `z ~ N(0, I_D)`, `x | z ~ N(W z + b, σ² I_P)`, so `x ~ N(b, W Wᵀ + σ² I)` and the posterior
/// is `N(M⁻¹ Wᵀ (x - b) / σ², M⁻¹)` with `M = I + Wᵀ W / σ²`.
///
/// # Shapes
/// `weight: [P, D]`, `bias: [P]`.
///
/// # References
/// Tipping & Bishop, "Probabilistic principal component analysis", 1999; Burda et al.,
/// arXiv 1509.00519, section 5 (a model with exact log p(x) to check bounds against).
#[derive(Debug)]
pub struct LinearGaussian {
    weight: Tensor,
    bias: Tensor,
    noise_scale: f64,
    prior: Independent<StandardNormal>,
}

impl LinearGaussian {
    /// A model with loading `weight`, offset `bias` and observation noise `noise_scale`.
    ///
    /// # Errors
    /// Shape mismatches, `noise_scale <= 0`.
    pub fn new(weight: Tensor, bias: Tensor, noise_scale: f64) -> Result<Self> {
        let (p, d) = weight.dims2()?;
        if bias.dims() != [p] || noise_scale.is_nan() || noise_scale <= 0.0 {
            candle::bail!("LinearGaussian: need weight [P, D], bias [P] and noise_scale > 0");
        }
        let prior = Independent::new(StandardNormal::new(d, weight.dtype(), weight.device())?, 1)?;
        Ok(Self {
            weight,
            bias,
            noise_scale,
            prior,
        })
    }

    fn host(&self) -> Result<HostParams> {
        let w = self.weight.to_dtype(DType::F64)?.to_vec2::<f64>()?;
        let b = self.bias.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let (p, d) = self.weight.dims2()?;
        Ok((w, b, p, d))
    }

    /// `M = I + Wᵀ W / σ²` and its Cholesky factor.
    fn precision(&self, w: &[Vec<f64>], d: usize) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let s2 = self.noise_scale * self.noise_scale;
        let mut m = vec![vec![0.0; d]; d];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = w.iter().map(|r| r[i] * r[j]).sum::<f64>() / s2
                    + if i == j { 1.0 } else { 0.0 };
            }
        }
        let l = cholesky(&m);
        (m, l)
    }

    /// The exact `log p(x)` per row, in f64.
    ///
    /// # Shapes
    /// `x: [B, P]` gives `[B]`.
    ///
    /// # Errors
    /// Shape errors.
    pub fn log_marginal(&self, x: &Tensor) -> Result<Tensor> {
        let (w, b, p, d) = self.host()?;
        let s2 = self.noise_scale * self.noise_scale;
        let (_, l) = self.precision(&w, d);
        let log_det_m: f64 = (0..d).map(|i| 2.0 * l[i][i].ln()).sum();
        let rows = x.to_dtype(DType::F64)?.to_vec2::<f64>()?;
        let out: Vec<f64> = rows
            .iter()
            .map(|xr| {
                let r: Vec<f64> = xr.iter().zip(&b).map(|(x, b)| x - b).collect();
                let wtr: Vec<f64> = (0..d)
                    .map(|j| w.iter().zip(&r).map(|(row, ri)| row[j] * ri).sum::<f64>() / s2)
                    .collect();
                let y = cholesky_solve(&l, &wtr);
                let quad = r.iter().map(|v| v * v).sum::<f64>() / s2
                    - wtr.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>();
                -0.5 * (p as f64 * (LN_2PI + s2.ln()) + log_det_m + quad)
            })
            .collect();
        Tensor::from_vec(out, rows.len(), &Device::Cpu)?.to_device(x.device())
    }

    /// The exact posterior's means `[B, D]` and its covariance `[D, D]` (shared by all rows).
    ///
    /// # Errors
    /// Shape errors.
    pub fn exact_posterior(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (w, b, _, d) = self.host()?;
        let s2 = self.noise_scale * self.noise_scale;
        let (_, l) = self.precision(&w, d);
        let rows = x.to_dtype(DType::F64)?.to_vec2::<f64>()?;
        let mut means = Vec::with_capacity(rows.len() * d);
        for xr in &rows {
            let r: Vec<f64> = xr.iter().zip(&b).map(|(x, b)| x - b).collect();
            let wtr: Vec<f64> = (0..d)
                .map(|j| w.iter().zip(&r).map(|(row, ri)| row[j] * ri).sum::<f64>() / s2)
                .collect();
            means.extend(cholesky_solve(&l, &wtr));
        }
        let mut cov = Vec::with_capacity(d * d);
        for j in 0..d {
            let mut e = vec![0.0; d];
            e[j] = 1.0;
            cov.extend(cholesky_solve(&l, &e));
        }
        Ok((
            Tensor::from_vec(means, (rows.len(), d), &Device::Cpu)?,
            Tensor::from_vec(cov, (d, d), &Device::Cpu)?,
        ))
    }

    /// The linear encoder closest to the exact posterior: its mean map `x ↦ A x + c` (exact,
    /// since the posterior mean is linear in `x`) and the exact marginal standard deviations.
    /// It is the exact posterior when `Wᵀ W` is diagonal (the covariance is then diagonal).
    ///
    /// # Shapes
    /// `a: [D, P]`, `c: [D]`, `log_scale: [D]`, in f64 on the CPU.
    ///
    /// # Errors
    /// Tensor errors.
    pub fn posterior_encoder(&self) -> Result<LinearEncoder> {
        let (p, d) = self.weight.dims2()?;
        let (c, cov) = self.exact_posterior(&Tensor::zeros((1, p), DType::F64, &Device::Cpu)?)?;
        // The posterior means of the unit vectors are the columns of A, plus c.
        let (cols, _) = self.exact_posterior(&Tensor::eye(p, DType::F64, &Device::Cpu)?)?;
        let a = cols.broadcast_sub(&c)?.t()?.contiguous()?;
        let v = cov.to_vec2::<f64>()?;
        let log_scale: Vec<f64> = (0..d).map(|i| 0.5 * v[i][i].ln()).collect();
        Ok(LinearEncoder {
            a,
            c: c.squeeze(0)?,
            log_scale: Tensor::from_vec(log_scale, d, &Device::Cpu)?,
        })
    }
}

fn cholesky(m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = m.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            if i == j {
                l[i][j] = (m[i][i] - s).sqrt();
            } else {
                l[i][j] = (m[i][j] - s) / l[j][j];
            }
        }
    }
    l
}

/// Solves `L Lᵀ y = v`.
fn cholesky_solve(l: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    let n = v.len();
    let mut t = vec![0.0; n];
    for i in 0..n {
        t[i] = (v[i] - (0..i).map(|k| l[i][k] * t[k]).sum::<f64>()) / l[i][i];
    }
    let mut y = vec![0.0; n];
    for i in (0..n).rev() {
        y[i] = (t[i] - (i + 1..n).map(|k| l[k][i] * y[k]).sum::<f64>()) / l[i][i];
    }
    y
}

impl GenerativeModel for LinearGaussian {
    fn forward(&self, z: &Tensor, _pass: Pass) -> Result<Box<dyn Distribution>> {
        let mean = z.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?;
        // Unchecked, as a network's likelihood would be: a non-finite `z` (an HMC trajectory
        // that diverged) gives a non-finite density, which the sampler rejects, not an error.
        let log_scale = mean.zeros_like()?.affine(0.0, self.noise_scale.ln())?;
        Ok(Box::new(Independent::new(
            Normal::from_log_scale_unchecked(mean, log_scale)?,
            1,
        )?))
    }
    fn prior(&self, _pass: Pass) -> Result<PriorRef<'_>> {
        Ok(PriorRef::Fixed(&self.prior))
    }
}

/// A linear Gaussian encoder `q(z|x) = N(A x + c, diag(exp(2 log_scale)))`, for tests and
/// for the linear-Gaussian reference model (its exact posterior is of this form when
/// `Wᵀ W` is diagonal).
///
/// # Shapes
/// `a: [D, P]`, `c: [D]`, `log_scale: [D]`.
#[derive(Debug, Clone)]
pub struct LinearEncoder {
    /// `A`.
    pub a: Tensor,
    /// `c`.
    pub c: Tensor,
    /// Per-dimension log standard deviations.
    pub log_scale: Tensor,
}

impl Encoder for LinearEncoder {
    fn forward(&self, x: &Tensor, _pass: Pass) -> Result<EncoderOutput> {
        let loc = x.matmul(&self.a.t()?)?.broadcast_add(&self.c)?;
        let log_scale = loc.zeros_like()?.broadcast_add(&self.log_scale)?;
        let context = Tensor::zeros((x.dim(0)?, 0), x.dtype(), x.device())?;
        Ok(EncoderOutput {
            loc,
            log_scale,
            context,
        })
    }
    fn latent_dim(&self) -> usize {
        self.c.dim(0).unwrap_or(0)
    }
    fn context_dim(&self) -> usize {
        0
    }
}
