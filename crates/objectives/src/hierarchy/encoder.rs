//! Bottom-up inference: `q(z_1|x) Π_l q(z_l|z_{l-1})`.

use super::config::{HierarchyConfig, split};
use super::decoder::HierarchicalPrior;
use super::gaussian::{
    head_and_context, kl_to_standard, log_density, net_over_draws, over_draws, reparameterize,
};
use super::layer_flow::{LayerFlows, through};
use crate::mlp::Mlp;
use crate::model::{InferenceNetwork, LatentSample, LayeredKl, Posterior};
use candle::{D, Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::Arc;
use vaekit_core::NoiseSource;
use vaekit_distributions::Distribution;
use vaekit_nets::Pass;

/// The inference network of a [`HierarchyConfig`]: layer `l` maps `x` (`l = 0`) or `z_{l-1}`
/// through its hidden layers to the location and log-scale of `z_l` (and, with
/// [`HierarchyConfig::iaf`], a context for the layer's IAF steps, which then transform the
/// Gaussian draw; [`crate::LayerIaf`]).
#[derive(Debug, Clone)]
pub struct HierarchicalEncoder {
    layers: Vec<Mlp>,
    units: Vec<usize>,
    flows: Option<Arc<LayerFlows>>,
}

impl HierarchicalEncoder {
    /// The encoder of `config`, parameters at `vb.pp("layer{l}")`.
    ///
    /// # Errors
    /// [`HierarchyConfig::validate`]'s; candle's.
    pub fn new(config: &HierarchyConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let units = config.units();
        let (flows, context) = LayerFlows::of_config(config, &vb)?;
        let mut below = config.input_dim;
        let mut layers = Vec::with_capacity(config.layers.len());
        for (l, layer) in config.layers.iter().enumerate() {
            layers.push(Mlp::new(
                below,
                &layer.hidden,
                2 * layer.units + context,
                config.activation,
                &vb.pp(format!("layer{l}")),
            )?);
            below = layer.units;
        }
        Ok(Self {
            layers,
            units,
            flows,
        })
    }

    /// The latent dimension `D = Σ_l D_l`.
    pub fn latent_dim(&self) -> usize {
        self.units.iter().sum()
    }
}

/// `q(z|x)` of a [`HierarchicalEncoder`] for one batch: `z = [z_1, .., z_L]`, drawn layer by
/// layer from standard-normal noise of the same shape.
///
/// Without layer flows, `log_prob` at arbitrary points is exact (each conditional is a
/// diagonal Gaussian), so score-function estimators and DReG apply; `log_q_stopped` runs
/// every conditional with detached parameters but attached inputs, so its gradient flows
/// through `z` only. With them, the density is known along the sampling path only
/// ([`crate::LayerIaf`]).
#[derive(Debug)]
pub struct HierarchicalPosterior<'a> {
    encoder: &'a HierarchicalEncoder,
    /// `q(z_1|x)`: `[B, D_1]` each.
    first: (Tensor, Tensor),
    /// The first layer's flow context, `[B, C]`.
    first_context: Option<Tensor>,
    pass: Pass<'a>,
}

/// A layer's Gaussian and its flow context, `[B, S, D_l]` each and `[B, S, C]` or
/// `[B, 1, C]`.
type Conditional = ((Tensor, Tensor), Option<Tensor>);

impl HierarchicalPosterior<'_> {
    /// `(loc, log_scale)` of layer `l >= 1` given `z_{l-1}: [B, S, D_{l-1}]`, each
    /// `[B, S, D_l]`, with the parameters detached when `stopped`.
    fn conditional(&self, l: usize, below: &Tensor, stopped: bool) -> Result<(Tensor, Tensor)> {
        Ok(self.conditional_with_context(l, below, stopped)?.0)
    }

    /// [`Self::conditional`] with the layer's flow context.
    fn conditional_with_context(
        &self,
        l: usize,
        below: &Tensor,
        stopped: bool,
    ) -> Result<Conditional> {
        let out = net_over_draws(&self.encoder.layers[l], below, stopped, self.pass)?;
        head_and_context(&out, self.encoder.units[l])
    }

    fn first(&self, stopped: bool) -> Result<(Tensor, Tensor)> {
        over_draws(&self.first, stopped)
    }
}

impl HierarchicalPosterior<'_> {
    /// The sampling path of `eps: [B, S, D]`, with DReG's stopped density when `stopped`
    /// (each conditional run again with detached weights: training draws only; none with
    /// layer flows).
    fn path(&self, eps: &Tensor, stopped: bool) -> Result<LatentSample> {
        let stopped = stopped && self.encoder.flows.is_none();
        let parts = split(eps, &self.encoder.units)?;
        let (loc, log_scale) = self.first(false)?;
        let context = self
            .first_context
            .as_ref()
            .map(|c| c.unsqueeze(1))
            .transpose()?;
        let flows = self.encoder.flows.as_deref();
        let base = reparameterize(&parts[0], &loc, &log_scale)?;
        let (mut z, mut log_q) = through(flows, 0, base, context.as_ref(), self.pass)?;
        let mut log_q_stopped = if stopped {
            let (sloc, slog_scale) = self.first(true)?;
            Some(log_density(&z, &sloc, &slog_scale)?)
        } else {
            None
        };
        let mut zs = vec![z.clone()];
        for (l, eps_l) in parts.iter().enumerate().skip(1) {
            let ((loc, log_scale), context) = self.conditional_with_context(l, &z, false)?;
            let base = reparameterize(eps_l, &loc, &log_scale)?;
            let (next, lq) = through(flows, l, base, context.as_ref(), self.pass)?;
            log_q = (log_q + lq)?;
            if let Some(acc) = log_q_stopped {
                let (sloc, slog_scale) = self.conditional(l, &z, true)?;
                log_q_stopped = Some((acc + log_density(&next, &sloc, &slog_scale)?)?);
            }
            z = next;
            zs.push(z.clone());
        }
        Ok(LatentSample {
            z: Tensor::cat(&zs, D::Minus1)?,
            log_q,
            log_q_stopped,
        })
    }
}

impl Posterior for HierarchicalPosterior<'_> {
    fn rsample_with_log_prob(
        &self,
        num_samples: usize,
        noise: &mut dyn NoiseSource,
    ) -> Result<LatentSample> {
        let (b, _) = self.first.0.dims2()?;
        let shape = (num_samples, b, self.encoder.latent_dim());
        let (loc, _) = &self.first;
        let eps = noise.standard_normal(&shape.into(), loc.dtype(), loc.device())?;
        self.path(&eps.transpose(0, 1)?.contiguous()?, true)
    }

    /// `eps: [B, S, D]`: `z_1 = μ_1(x) + σ_1(x) ε_1`, then each `z_l` from `z_{l-1}`; no
    /// stopped density (annealing in noise space needs none).
    fn reparameterize(&self, eps: &Tensor) -> Result<LatentSample> {
        self.path(eps, false)
    }

    /// # Errors
    /// With layer flows, whose density is known along the sampling path only.
    fn log_prob(&self, z: &Tensor) -> Result<Tensor> {
        no_flows(self.encoder.flows.is_some())?;
        let parts = split(z, &self.encoder.units)?;
        let (loc, log_scale) = self.first(false)?;
        let mut log_q = log_density(&parts[0], &loc, &log_scale)?;
        for l in 1..parts.len() {
            let (loc, log_scale) = self.conditional(l, &parts[l - 1], false)?;
            log_q = (log_q + log_density(&parts[l], &loc, &log_scale)?)?;
        }
        Ok(log_q)
    }

    fn as_distribution(&self) -> Option<&dyn Distribution> {
        None
    }

    /// Against a [`HierarchicalPrior`] of the same layers: the top layer's KL to `N(0, I)` in
    /// closed form given `z_{L-1}`; each lower layer's `log q(z_l|z_{l-1}) − log p(z_l|z_{l+1})`
    /// of the draw (`z_{l+1}` is drawn after `z_l`, so no closed form applies). `None` with
    /// layer flows.
    fn layered_kl(&self, z: &Tensor, prior: &dyn Distribution) -> Result<Option<LayeredKl>> {
        if self.encoder.flows.is_some() {
            return Ok(None);
        }
        let Some(prior) = HierarchicalPrior::matching(prior, &self.encoder.units) else {
            return Ok(None);
        };
        let parts = split(z, &self.encoder.units)?;
        let top = parts.len() - 1;
        let (loc, log_scale) = self.conditional(top, &parts[top - 1], false)?;
        let mut per_draw = kl_to_standard(&loc, &log_scale)?;
        for l in 0..top {
            let (q_loc, q_log_scale) = if l == 0 {
                self.first(false)?
            } else {
                self.conditional(l, &parts[l - 1], false)?
            };
            let (p_loc, p_log_scale) = prior.conditional_draws(l, &parts[l + 1])?;
            let log_q = log_density(&parts[l], &q_loc, &q_log_scale)?;
            let log_p = log_density(&parts[l], &p_loc, &p_log_scale)?;
            per_draw = (per_draw + (log_q - log_p)?)?;
        }
        Ok(Some(LayeredKl {
            per_draw,
            analytic_layers: 1,
            layers: parts.len(),
        }))
    }
}

impl InferenceNetwork for HierarchicalEncoder {
    fn forward<'a>(&'a self, x: &Tensor, pass: Pass<'a>) -> Result<Box<dyn Posterior + 'a>> {
        let out = self.layers[0].forward(x, pass)?;
        let (first, first_context) = head_and_context(&out, self.units[0])?;
        Ok(Box::new(HierarchicalPosterior {
            encoder: self,
            first,
            first_context,
            pass,
        }))
    }
}

/// The error of `log_prob` on a posterior with layer flows.
pub(crate) fn no_flows(has_flows: bool) -> Result<()> {
    if has_flows {
        candle::bail!(
            "log_prob: a hierarchy with layer IAFs has a density only along its sampling path; use rsample_with_log_prob"
        );
    }
    Ok(())
}
