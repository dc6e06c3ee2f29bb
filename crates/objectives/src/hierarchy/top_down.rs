//! Top-down inference that shares the generative path: `q(z_L|x) Π_l q(z_l|z_{l+1}, x)`.

use super::config::{HierarchyConfig, split};
use super::decoder::{HierarchicalDecoder, HierarchicalPrior};
use super::encoder::no_flows;
use super::gaussian::{
    conditional_over_draws, head_and_context, kl, kl_to_standard, log_density, over_draws,
    reparameterize,
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

/// The inference network of a [`HierarchyConfig`] with
/// [`crate::HierarchyInference::TopDown`], the ladder VAE's (Sønderby et al., arXiv
/// 1602.02282): a deterministic bottom-up pass `d_l = up_l(d_{l-1})` (`d_{-1} = x`, through
/// layer `l`'s hidden widths) and a Gaussian `N(μ_l(d_l), σ_l(d_l))` from each (`head{l}`);
/// then, top first, `q(z_L|x) = N(μ_L, σ_L)` and, for `l < L`,
/// `q(z_l|z_{l+1}, x) ∝ p(z_l|z_{l+1}) N(z_l; μ_l, σ_l)`: the precisions add,
/// `σ_q⁻² = σ_p⁻² + σ_l⁻²`, and `μ_q = σ_q² (σ_p⁻² μ_p + σ_l⁻² μ_l)`, where `p(z_l|z_{l+1})` is
/// the decoder's own conditional at the drawn `z_{l+1}` (its variables are shared, so the
/// generative path is trained by both terms of the ELBO).
///
/// In a two-layer linear-Gaussian model whose likelihood factor `p(x|z_1)` is a diagonal
/// Gaussian in `z_1` (orthogonal loadings), the exact posterior is in this family (the tests
/// set it); in general it is not.
///
/// Parameter groups: the shared conditionals are the decoder's (generative group). Under
/// DReG they get the IWAE gradient (unbiased; DReG's variance reduction does not reach their
/// role in `q`); under reweighted wake-sleep they follow the wake-θ update only. Each posterior conditional and its prior conditional
/// share their conditioning variable, so every layer's KL has a closed form given the layer
/// above ([`Posterior::layered_kl`]).
///
/// With [`HierarchyConfig::iaf`], each `head{l}` also emits a context and the layer's IAF
/// steps transform its draw ([`crate::LayerIaf`]); the layer below is then conditioned on the
/// transformed draw.
///
/// Parameters: `up{l}.fc{i}`, `head{l}.fc0` and, with layer flows, `flow{l}.iaf{k}.*`, plus
/// the decoder's `layer{l}.*`.
#[derive(Debug, Clone)]
pub struct TopDownEncoder {
    up: Vec<Mlp>,
    heads: Vec<Mlp>,
    down: Vec<Mlp>,
    units: Vec<usize>,
    flows: Option<Arc<LayerFlows>>,
}

impl TopDownEncoder {
    /// The encoder of `config` over `decoder`'s generative conditionals, its own parameters
    /// at `vb`.
    ///
    /// # Errors
    /// [`HierarchyConfig::validate`]'s; a decoder of other layers; candle's.
    pub fn new(
        config: &HierarchyConfig,
        vb: VarBuilder,
        decoder: &HierarchicalDecoder,
    ) -> Result<Self> {
        config.validate()?;
        let units = config.units();
        let down = decoder.conditionals().to_vec();
        if decoder.units() != units.as_slice() || down.len() + 1 != units.len() {
            candle::bail!(
                "TopDownEncoder: the decoder's layers {:?} differ from the configuration's {units:?}",
                decoder.units()
            );
        }
        let (flows, context) = LayerFlows::of_config(config, &vb)?;
        let mut below = config.input_dim;
        let (mut up, mut widths) = (Vec::new(), Vec::new());
        for (l, layer) in config.layers.iter().enumerate() {
            up.push(Mlp::stack(
                below,
                &layer.hidden,
                config.activation,
                &vb.pp(format!("up{l}")),
            )?);
            below = layer.hidden.last().copied().unwrap_or(below);
            widths.push(below);
        }
        let heads = (0..units.len())
            .map(|l| {
                Mlp::new(
                    widths[l],
                    &[],
                    2 * units[l] + context,
                    config.activation,
                    &vb.pp(format!("head{l}")),
                )
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            up,
            heads,
            down,
            units,
            flows,
        })
    }

    /// The latent dimension `D = Σ_l D_l`.
    pub fn latent_dim(&self) -> usize {
        self.units.iter().sum()
    }
}

/// `q(z|x)` of a [`TopDownEncoder`] for one batch: `z = [z_1, .., z_L]` (bottom first, as
/// the decoder reads it), drawn from the top down from standard-normal noise of the same
/// shape. Without layer flows, `log_prob` at arbitrary points is exact, so IS, HAIS,
/// score-function estimators and DReG (whose stopped density detaches every parameter, the
/// shared generative path's too) apply; with them, the density is known along the sampling
/// path only ([`crate::LayerIaf`]).
#[derive(Debug)]
pub struct TopDownPosterior<'a> {
    encoder: &'a TopDownEncoder,
    /// The bottom-up Gaussians `(μ_l, log σ_l)`, `[B, D_l]` each, for every layer (the top
    /// one is `q(z_L|x)`).
    bottom_up: Vec<(Tensor, Tensor)>,
    /// Each layer's flow context, `[B, C]` (with layer flows).
    contexts: Vec<Option<Tensor>>,
    pass: Pass<'a>,
}

impl TopDownPosterior<'_> {
    /// `(loc, log_scale)` of `z_l` (`l < L - 1`) given `z_{l+1}: [B, S, D_{l+1}]` and `x`,
    /// each `[B, S, D_l]`, with every parameter detached when `stopped`: the prior
    /// conditional and the bottom-up Gaussian multiplied, in log space (the weights
    /// `σ_p⁻² / σ_q⁻²` and `σ_l⁻² / σ_q⁻²` by a log-sum-exp).
    fn conditional(&self, l: usize, above: &Tensor, stopped: bool) -> Result<(Tensor, Tensor)> {
        let (p_loc, p_log_scale) =
            conditional_over_draws(&self.encoder.down[l], above, stopped, self.pass)?;
        let (u_loc, u_log_scale) = self.bottom_up(l, stopped)?;
        // log precisions, [B, S, D_l] and [B, 1, D_l].
        let (a, c) = ((p_log_scale * -2.0)?, (u_log_scale * -2.0)?);
        let m = a.broadcast_maximum(&c)?;
        let lse = (((a.broadcast_sub(&m)?.exp()? + c.broadcast_sub(&m)?.exp()?)?.log()?) + &m)?;
        let (wp, wu) = (a.broadcast_sub(&lse)?.exp()?, c.broadcast_sub(&lse)?.exp()?);
        let loc = ((wp * p_loc)? + wu.broadcast_mul(&u_loc)?)?;
        Ok((loc, (lse * -0.5)?))
    }

    /// Layer `l`'s bottom-up Gaussian as `[B, 1, D_l]` each, detached when `stopped`.
    fn bottom_up(&self, l: usize, stopped: bool) -> Result<(Tensor, Tensor)> {
        over_draws(&self.bottom_up[l], stopped)
    }

    /// `q(z_L|x)` as `[B, 1, D_L]` each, detached when `stopped`.
    fn top(&self, stopped: bool) -> Result<(Tensor, Tensor)> {
        self.bottom_up(self.bottom_up.len() - 1, stopped)
    }

    /// Layer `l`'s draw from its base draw and `log q` of it, through the layer's flow when
    /// there is one (its context broadcast over the draws).
    fn flow(&self, l: usize, base: (Tensor, Tensor)) -> Result<(Tensor, Tensor)> {
        let context = self.contexts[l]
            .as_ref()
            .map(|c| c.unsqueeze(1))
            .transpose()?;
        through(
            self.encoder.flows.as_deref(),
            l,
            base,
            context.as_ref(),
            self.pass,
        )
    }

    /// The sampling path of `eps: [B, S, D]`, with DReG's stopped density when `stopped`
    /// (none with layer flows).
    fn path(&self, eps: &Tensor, stopped: bool) -> Result<LatentSample> {
        let stopped = stopped && self.encoder.flows.is_none();
        let parts = split(eps, &self.encoder.units)?;
        let last = parts.len() - 1;
        let (loc, log_scale) = self.top(false)?;
        let (z_top, mut log_q) =
            self.flow(last, reparameterize(&parts[last], &loc, &log_scale)?)?;
        let mut log_q_stopped = if stopped {
            let (loc, log_scale) = self.top(true)?;
            Some(log_density(&z_top, &loc, &log_scale)?)
        } else {
            None
        };
        let mut zs = vec![z_top];
        for l in (0..last).rev() {
            let above = zs.last().cloned().unwrap_or_else(|| unreachable!());
            let (loc, log_scale) = self.conditional(l, &above, false)?;
            let (z, lq) = self.flow(l, reparameterize(&parts[l], &loc, &log_scale)?)?;
            log_q = (log_q + lq)?;
            if let Some(acc) = log_q_stopped {
                let (loc, log_scale) = self.conditional(l, &above, true)?;
                log_q_stopped = Some((acc + log_density(&z, &loc, &log_scale)?)?);
            }
            zs.push(z);
        }
        zs.reverse();
        Ok(LatentSample {
            z: Tensor::cat(&zs, D::Minus1)?,
            log_q,
            log_q_stopped,
        })
    }
}

impl Posterior for TopDownPosterior<'_> {
    fn rsample_with_log_prob(
        &self,
        num_samples: usize,
        noise: &mut dyn NoiseSource,
    ) -> Result<LatentSample> {
        let (loc, _) = &self.bottom_up[0];
        let b = loc.dim(0)?;
        let shape = (num_samples, b, self.encoder.latent_dim());
        let eps = noise.standard_normal(&shape.into(), loc.dtype(), loc.device())?;
        self.path(&eps.transpose(0, 1)?.contiguous()?, true)
    }

    /// `eps: [B, S, D]` (bottom first, as `z`): `z_L = μ_L(x) + σ_L(x) ε_L`, then each `z_l`
    /// from `z_{l+1}`; no stopped density.
    fn reparameterize(&self, eps: &Tensor) -> Result<LatentSample> {
        self.path(eps, false)
    }

    /// # Errors
    /// With layer flows, whose density is known along the sampling path only.
    fn log_prob(&self, z: &Tensor) -> Result<Tensor> {
        no_flows(self.encoder.flows.is_some())?;
        let parts = split(z, &self.encoder.units)?;
        let last = parts.len() - 1;
        let (loc, log_scale) = self.top(false)?;
        let mut log_q = log_density(&parts[last], &loc, &log_scale)?;
        for l in 0..last {
            let (loc, log_scale) = self.conditional(l, &parts[l + 1], false)?;
            log_q = (log_q + log_density(&parts[l], &loc, &log_scale)?)?;
        }
        Ok(log_q)
    }

    fn as_distribution(&self) -> Option<&dyn Distribution> {
        None
    }

    /// Against a [`HierarchicalPrior`] of the same layers, every layer in closed form: the
    /// top's KL to `N(0, I)` and each lower layer's KL to `p(z_l|z_{l+1})` at the drawn
    /// `z_{l+1}`. `None` with layer flows.
    fn layered_kl(&self, z: &Tensor, prior: &dyn Distribution) -> Result<Option<LayeredKl>> {
        if self.encoder.flows.is_some() {
            return Ok(None);
        }
        let Some(prior) = HierarchicalPrior::matching(prior, &self.encoder.units) else {
            return Ok(None);
        };
        let parts = split(z, &self.encoder.units)?;
        let last = parts.len() - 1;
        let (b, s, _) = z.dims3()?;
        let (loc, log_scale) = self.top(false)?;
        let mut per_draw = kl_to_standard(&loc, &log_scale)?.broadcast_as((b, s))?;
        for l in 0..last {
            let (q_loc, q_log_scale) = self.conditional(l, &parts[l + 1], false)?;
            let (p_loc, p_log_scale) = prior.conditional_draws(l, &parts[l + 1])?;
            per_draw = (per_draw + kl(&q_loc, &q_log_scale, &p_loc, &p_log_scale)?)?;
        }
        Ok(Some(LayeredKl {
            per_draw,
            analytic_layers: parts.len(),
            layers: parts.len(),
        }))
    }
}

impl InferenceNetwork for TopDownEncoder {
    fn forward<'a>(&'a self, x: &Tensor, pass: Pass<'a>) -> Result<Box<dyn Posterior + 'a>> {
        let (mut bottom_up, mut contexts) = (Vec::new(), Vec::new());
        let mut d = x.clone();
        for ((up, head_net), &units) in self.up.iter().zip(&self.heads).zip(&self.units) {
            d = up.forward_activated(&d, pass)?;
            let (pair, context) = head_and_context(&head_net.forward(&d, pass)?, units)?;
            bottom_up.push(pair);
            contexts.push(context);
        }
        Ok(Box::new(TopDownPosterior {
            encoder: self,
            bottom_up,
            contexts,
            pass,
        }))
    }
}
