//! One stochastic layer of discrete units: draws, log-probabilities and the Concrete
//! relaxation, on logits `[N, W]`.

use crate::relaxation::Relaxation;
use candle::{D, DType, Result, Tensor};
use serde::{Deserialize, Serialize};
use vaekit_core::{NoiseSource, log_softmax, softplus};
use vaekit_distributions::{Bernoulli, Categorical, Distribution, special::ln_gamma};

/// What one layer of an ancestral pass produces: `(stored z, value for the next network,
/// log-density [N])`.
pub(crate) type LayerDraw = (Tensor, Tensor, Tensor);

/// The units of one stochastic layer.
///
/// Values are `0.0 / 1.0` for binary units and one-hot rows (flattened, variable-major) for
/// categorical ones, so a layer of `width()` values feeds the next network directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LatentUnits {
    /// Independent binary units (a sigmoid belief network layer).
    Bernoulli {
        /// Number of units.
        units: usize,
    },
    /// Independent categorical variables, each one-hot over `classes`.
    Categorical {
        /// Number of variables.
        variables: usize,
        /// Classes per variable (`>= 2`).
        classes: usize,
    },
}

impl LatentUnits {
    /// Values per draw: `units`, or `variables · classes`.
    pub fn width(&self) -> usize {
        match *self {
            LatentUnits::Bernoulli { units } => units,
            LatentUnits::Categorical { variables, classes } => variables * classes,
        }
    }

    /// Whether the layer is well-formed (non-empty, at least two classes).
    pub fn is_valid(&self) -> bool {
        match *self {
            LatentUnits::Bernoulli { units } => units > 0,
            LatentUnits::Categorical { variables, classes } => variables > 0 && classes >= 2,
        }
    }

    /// `[N, V·C]` to `[N, V, C]` (categorical layers).
    fn grouped(&self, t: &Tensor) -> Result<Tensor> {
        match *self {
            LatentUnits::Bernoulli { .. } => Ok(t.clone()),
            LatentUnits::Categorical { variables, classes } => {
                t.reshape((t.dim(0)?, variables, classes))
            }
        }
    }

    /// `log p(value)` summed over the layer: `logits, value: [N, W]` give `[N]`;
    /// differentiable in both (straight-through values carry a gradient).
    ///
    /// # Errors
    /// Shape errors.
    pub fn log_prob(&self, logits: &Tensor, value: &Tensor) -> Result<Tensor> {
        match self {
            LatentUnits::Bernoulli { .. } => {
                vaekit_core::bernoulli_log_prob(logits, value)?.sum(D::Minus1)
            }
            LatentUnits::Categorical { .. } => {
                let lp = log_softmax(&self.grouped(logits)?, D::Minus1)?;
                (lp * self.grouped(value)?)?.sum((1, 2))
            }
        }
    }

    /// A discrete draw (detached), `[N, W]`.
    ///
    /// # Errors
    /// Non-finite logits, shape errors.
    pub fn sample(&self, logits: &Tensor, noise: &mut dyn NoiseSource) -> Result<Tensor> {
        let logits = logits.detach();
        match self {
            LatentUnits::Bernoulli { .. } => Bernoulli::new_unchecked(logits)?.sample(&[], noise),
            LatentUnits::Categorical { classes, .. } => {
                let index = Categorical::new(self.grouped(&logits)?)?.sample(&[], noise)?;
                one_hot(&index, *classes, logits.dtype())?.reshape(logits.shape())
            }
        }
    }

    /// A relaxed draw in the relaxation's unconstrained space, differentiable in `logits`:
    /// `(logits + L) / τ` with logistic noise `L` (binary units), or
    /// `log_softmax((logits + G) / τ)` with Gumbel noise `G` (categorical).
    ///
    /// # Errors
    /// Shape errors.
    pub fn relaxed_sample(
        &self,
        logits: &Tensor,
        temperature: f64,
        noise: &mut dyn NoiseSource,
    ) -> Result<Tensor> {
        let u = open_uniform(logits, noise)?;
        match self {
            LatentUnits::Bernoulli { .. } => {
                let l = (u.log()? - u.affine(-1.0, 1.0)?.log()?)?.to_dtype(logits.dtype())?;
                (logits + l)? / temperature
            }
            LatentUnits::Categorical { .. } => {
                let g = u.log()?.neg()?.log()?.neg()?.to_dtype(logits.dtype())?;
                let y = ((logits + g)? / temperature)?;
                log_softmax(&self.grouped(&y)?, D::Minus1)?.reshape(logits.shape())
            }
        }
    }

    /// The relaxed log-density of `z` (from [`LatentUnits::relaxed_sample`]) summed over the
    /// layer, `[N]`: for binary units the logistic density with location `logits / τ` and
    /// scale `1 / τ`; for categorical ones the ExpConcrete density
    /// `ln Γ(C) + (C-1) ln τ + Σ_c log_softmax(logits - τ z)_c`.
    ///
    /// # Errors
    /// Shape errors.
    ///
    /// # References
    /// Maddison et al., arXiv 1611.00712, appendices B and C.
    pub fn relaxed_log_prob(
        &self,
        logits: &Tensor,
        z: &Tensor,
        temperature: f64,
    ) -> Result<Tensor> {
        match *self {
            LatentUnits::Bernoulli { units } => {
                let t = ((z * temperature)? - logits)?;
                let per_unit = (t.neg()? - (softplus(&t.neg()?)? * 2.0)?)?;
                per_unit.sum(D::Minus1)? + units as f64 * temperature.ln()
            }
            LatentUnits::Categorical { variables, classes } => {
                let s = (self.grouped(logits)? - (self.grouped(z)? * temperature)?)?;
                let c = classes as f64;
                let constant = variables as f64 * (ln_gamma(c) + (c - 1.0) * temperature.ln());
                log_softmax(&s, D::Minus1)?.sum((1, 2))? + constant
            }
        }
    }

    /// The values a relaxed draw feeds to the next network: `sigmoid(z)` or `exp(z)`.
    ///
    /// # Errors
    /// Tensor errors.
    pub fn relaxed_value(&self, z: &Tensor) -> Result<Tensor> {
        match self {
            LatentUnits::Bernoulli { .. } => candle_nn::ops::sigmoid(z),
            LatentUnits::Categorical { .. } => z.exp(),
        }
    }

    /// Straight-through values: the hard value of a relaxed draw (`z > 0`, or the one-hot
    /// argmax) forward, the gradient of [`LatentUnits::relaxed_value`] backward.
    ///
    /// # Errors
    /// Tensor errors.
    pub fn straight_through(&self, z: &Tensor) -> Result<Tensor> {
        let soft = self.relaxed_value(z)?;
        let hard = match *self {
            LatentUnits::Bernoulli { .. } => z.gt(0.0)?.to_dtype(z.dtype())?,
            LatentUnits::Categorical { classes, .. } => {
                let index = self.grouped(z)?.argmax(D::Minus1)?;
                one_hot(&index, classes, z.dtype())?.reshape(z.shape())?
            }
        };
        hard + (&soft - soft.detach())?
    }

    /// One layer of a relaxed or straight-through draw: `(z, value, log q)` where `z` is
    /// what the latent vector stores, `value` what the next network reads and `log q` the
    /// relaxed (or, straight-through, the discrete) log-density `[N]`.
    ///
    /// # Errors
    /// Shape errors.
    pub fn relaxed_step(
        &self,
        logits: &Tensor,
        relaxation: Relaxation,
        noise: &mut dyn NoiseSource,
    ) -> Result<LayerDraw> {
        let z = self.relaxed_sample(logits, relaxation.temperature, noise)?;
        if relaxation.straight_through {
            let v = self.straight_through(&z)?;
            let lq = self.log_prob(logits, &v)?;
            Ok((v.clone(), v, lq))
        } else {
            let lq = self.relaxed_log_prob(logits, &z, relaxation.temperature)?;
            let v = self.relaxed_value(&z)?;
            Ok((z, v, lq))
        }
    }
}

/// `U(0, 1)` in f64 of `like`'s shape, clamped away from 0 and 1.
fn open_uniform(like: &Tensor, noise: &mut dyn NoiseSource) -> Result<Tensor> {
    noise
        .uniform(like.shape(), DType::F64, like.device())?
        .clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON / 2.0)
}

/// One-hot rows: `index: [..]` (u32) gives `[.., classes]` in `dtype`.
fn one_hot(index: &Tensor, classes: usize, dtype: DType) -> Result<Tensor> {
    let mut shape = index.dims().to_vec();
    shape.push(classes);
    let range = Tensor::arange(0u32, classes as u32, index.device())?;
    index
        .unsqueeze(D::Minus1)?
        .broadcast_as(shape.as_slice())?
        .broadcast_eq(&range)?
        .to_dtype(dtype)
}

/// Splits a latent vector `[N, Σ W]` into its layers.
///
/// # Errors
/// A width that does not match.
pub fn split_layers(z: &Tensor, layers: &[LatentUnits]) -> Result<Vec<Tensor>> {
    let total: usize = layers.iter().map(LatentUnits::width).sum();
    if z.dim(D::Minus1)? != total {
        candle::bail!(
            "discrete latent: expected {total} values per draw, got shape {:?}",
            z.dims()
        );
    }
    let mut start = 0;
    layers
        .iter()
        .map(|l| {
            let t = z.narrow(D::Minus1, start, l.width())?;
            start += l.width();
            Ok(t)
        })
        .collect()
}
