//! A two-layer linear-Gaussian hierarchy whose `log p(x)` is exact: the reference model of
//! the hierarchy tests.

use crate::hierarchy::{HierarchicalDecoder, HierarchyConfig, HierarchyInference, StochasticLayer};
use crate::linear_gaussian::LinearGaussian;
use crate::model::GenerativeModel;
use crate::prior::PriorRef;
use candle::{D, Result, Tensor};
use candle_nn::VarBuilder;
use std::collections::HashMap;
use vaekit_distributions::Distribution;
use vaekit_nets::{Activation, Likelihood, Pass};

/// `z_2 ~ N(0, I)`, `z_1 | z_2 ~ N(A z_2 + a, diag(exp(2 log σ)))`,
/// `x | z_1 ~ N(W z_1 + b, s² I)`, over the latent vector `[z_1, z_2]`.
///
/// The prior is a [`HierarchicalDecoder`]'s (linear layers set to `A`, `a`, `log σ`), so the
/// library's hierarchical prior is what the tests score against. Marginally
/// `x = W A z_2 + W diag(σ) ε + W a + b + s η`: a one-layer [`LinearGaussian`] with loading
/// `[W A, W diag(σ)]` and offset `W a + b`, whose `log p(x)` is exact.
///
/// # Shapes
/// `a: [D1, D2]`, `a0: [D1]`, `log_sigma: [D1]`, `w: [P, D1]`, `b: [P]`.
#[derive(Debug)]
pub struct LinearHierarchy {
    prior: HierarchicalDecoder,
    likelihood: LinearGaussian,
    marginal: LinearGaussian,
    units: (usize, usize),
}

impl LinearHierarchy {
    /// The model with these parameters and observation noise `s > 0`.
    ///
    /// # Errors
    /// Inconsistent shapes, `s <= 0`.
    pub fn new(
        a: &Tensor,
        a0: &Tensor,
        log_sigma: &Tensor,
        w: &Tensor,
        b: &Tensor,
        s: f64,
    ) -> Result<Self> {
        let (d1, d2) = a.dims2()?;
        let (p, d1w) = w.dims2()?;
        if d1w != d1 || a0.dims() != [d1] || log_sigma.dims() != [d1] || b.dims() != [p] {
            candle::bail!(
                "LinearHierarchy: need a [D1, D2], a0 [D1], log_sigma [D1], w [P, D1], b [P]"
            );
        }
        let config = Self::config(p, d1, d2);
        let (dtype, device) = (a.dtype(), a.device());
        let mut tensors = HashMap::new();
        // loc = A z_2 + a; log-scale = log σ, whatever z_2.
        tensors.insert(
            "layer0.fc0.weight".to_string(),
            Tensor::cat(&[a, &a.zeros_like()?], 0)?,
        );
        tensors.insert(
            "layer0.fc0.bias".to_string(),
            Tensor::cat(&[a0, log_sigma], 0)?,
        );
        // The hierarchy's own pixel network is not used: x is scored by `likelihood`.
        tensors.insert("pixels.fc0.weight".to_string(), w.zeros_like()?);
        tensors.insert("pixels.fc0.bias".to_string(), b.zeros_like()?);
        let vb = VarBuilder::from_tensors(tensors, dtype, device);
        let prior = HierarchicalDecoder::new(&config, Likelihood::Bernoulli, vb)?;
        let loading = Tensor::cat(
            &[
                w.matmul(a)?,
                w.broadcast_mul(&log_sigma.exp()?.unsqueeze(0)?)?,
            ],
            1,
        )?;
        let offset = (w.matmul(&a0.unsqueeze(1)?)?.squeeze(1)? + b)?;
        Ok(Self {
            prior,
            likelihood: LinearGaussian::new(w.clone(), b.clone(), s)?,
            marginal: LinearGaussian::new(loading, offset, s)?,
            units: (d1, d2),
        })
    }

    /// The [`HierarchyConfig`] of this model's shapes: layers of `d1` and `d2` units with no
    /// hidden layers (every conditional linear), over `p` observed values.
    pub fn config(p: usize, d1: usize, d2: usize) -> HierarchyConfig {
        HierarchyConfig {
            input_dim: p,
            layers: vec![
                StochasticLayer {
                    units: d1,
                    hidden: vec![],
                },
                StochasticLayer {
                    units: d2,
                    hidden: vec![],
                },
            ],
            activation: Activation::Identity,
            inference: HierarchyInference::BottomUp,
            iaf: None,
        }
    }

    /// The hierarchical decoder that holds the prior (for a [`crate::TopDownEncoder`], which
    /// shares its conditionals).
    pub fn decoder(&self) -> &HierarchicalDecoder {
        &self.prior
    }

    /// The exact `log p(x)` per row, in f64.
    ///
    /// # Shapes
    /// `x: [B, P]` gives `[B]`.
    ///
    /// # Errors
    /// Shape errors.
    pub fn log_marginal(&self, x: &Tensor) -> Result<Tensor> {
        self.marginal.log_marginal(x)
    }
}

impl GenerativeModel for LinearHierarchy {
    /// `p(x | z_1)` for `z: [N, D1 + D2]`.
    fn forward(&self, z: &Tensor, pass: Pass) -> Result<Box<dyn Distribution>> {
        self.likelihood
            .forward(&z.narrow(D::Minus1, 0, self.units.0)?, pass)
    }

    fn prior(&self, pass: Pass) -> Result<PriorRef<'_>> {
        self.prior.prior(pass)
    }
}
