//! An inverse autoregressive flow on each stochastic layer's Gaussian.

use super::config::HierarchyConfig;
use candle::{D, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use vaekit_flows::{Flow, FlowChain, IafVariant, MadeConfig, iaf_chain};
use vaekit_nets::{Activation, Normalization, Pass};

/// IAF steps after every layer's Gaussian in a hierarchical posterior (the IAF paper's
/// hierarchical models, Kingma et al., arXiv 1606.04934, section 4 and appendix C): layer `l`
/// draws `u_l` from its diagonal Gaussian, then `z_l = f_l(u_l; c_l)` through `steps` IAF
/// steps on a MADE conditioned on a context `c_l` that the layer's inference network emits
/// beside the Gaussian, and `log q(z_l | ..) = log N(u_l) − log |det ∂f_l/∂u_l|`.
///
/// Bottom-up, `c_l` comes from the same network as `u_l`'s Gaussian (from `x` for the first
/// layer, from the draw `z_{l-1}` above it); top-down, from the deterministic bottom-up pass
/// over `x` (`head{l}`), the base Gaussian being the product of the prior conditional and the
/// bottom-up Gaussian as without the flow.
///
/// The density is exact along the sampling path only: such a posterior has no `log_prob` at
/// arbitrary points, no stopped density (no DReG) and no closed-form layered KL, as for a
/// one-layer flow posterior. The ELBO (with a Monte Carlo KL), IWAE, importance sampling and
/// HAIS from the posterior (in its noise space) apply; score-function estimators (REINFORCE,
/// NVIL, VIMCO, RWS) and DReG do not, and BDMC's reverse chain starts from the prior.
///
/// Parameters: `flow{l}.iaf{k}.*` beside the encoder's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerIaf {
    /// IAF steps per layer, 1 to 64 (a reversal between consecutive steps).
    pub steps: usize,
    /// The MADE's hidden widths, at least one layer; each a positive multiple of every
    /// layer's units (200 serves layers of 100 and 50).
    pub hidden: Vec<usize>,
    /// Width of each layer's context, 1 to 4096.
    pub context_dim: usize,
    /// Gated (`forget_bias` finite), affine (`max_log_scale` finite and > 0) or shift update;
    /// in a file, `variant = { kind = "gated", forget_bias = 1.0 }`.
    pub variant: IafVariant,
}

impl LayerIaf {
    /// `steps` gated steps (forget bias 1, as in the IAF paper) on a MADE of `hidden` widths
    /// with a `context_dim`-wide context.
    pub fn gated(steps: usize, hidden: Vec<usize>, context_dim: usize) -> Self {
        Self {
            steps,
            hidden,
            context_dim,
            variant: IafVariant::Gated { forget_bias: 1.0 },
        }
    }

    /// Checks the counts against the layers' `units`.
    ///
    /// # Errors
    /// A count outside its range or a width that is not a multiple of some layer's units,
    /// naming the field.
    pub fn validate(&self, units: &[usize]) -> Result<()> {
        if !(1..=64).contains(&self.steps) {
            candle::bail!("latent.iaf.steps = {}: must be 1 to 64", self.steps);
        }
        if !(1..=4096).contains(&self.context_dim) {
            candle::bail!(
                "latent.iaf.context_dim = {}: must be 1 to 4096",
                self.context_dim
            );
        }
        if self.hidden.is_empty() {
            candle::bail!("latent.iaf.hidden: a MADE needs at least one hidden layer");
        }
        match self.variant {
            IafVariant::Gated { forget_bias } if !forget_bias.is_finite() => {
                candle::bail!("latent.iaf.variant.forget_bias = {forget_bias}: must be finite")
            }
            IafVariant::Affine { max_log_scale }
                if !(max_log_scale.is_finite() && max_log_scale > 0.0) =>
            {
                candle::bail!(
                    "latent.iaf.variant.max_log_scale = {max_log_scale}: must be finite and > 0"
                )
            }
            _ => {}
        }
        for &w in &self.hidden {
            if let Some(u) = units.iter().find(|&&u| w == 0 || w % u != 0) {
                candle::bail!(
                    "latent.iaf.hidden: width {w} must be a positive multiple of every layer's units ({u} of {units:?})"
                );
            }
        }
        Ok(())
    }
}

/// One IAF chain per layer, built from a [`LayerIaf`].
#[derive(Debug)]
pub(crate) struct LayerFlows {
    chains: Vec<FlowChain>,
    context_dim: usize,
}

impl LayerFlows {
    /// The chains of `config` for layers of `units`, layer `l`'s at `vb.pp("flow{l}")`.
    pub(crate) fn new(config: &LayerIaf, units: &[usize], vb: &VarBuilder) -> Result<Self> {
        config.validate(units)?;
        let chains = units
            .iter()
            .enumerate()
            .map(|(l, &dim)| {
                let made = MadeConfig {
                    dim,
                    hidden: config.hidden.clone(),
                    context_dim: config.context_dim,
                    activation: Activation::Elu,
                    norm: Normalization::None,
                    ..MadeConfig::default()
                };
                iaf_chain(
                    config.steps,
                    &made,
                    config.variant,
                    vb.pp(format!("flow{l}")),
                )
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            chains,
            context_dim: config.context_dim,
        })
    }

    /// The flows of `config.iaf` (none without it) and the context width the inference
    /// networks add to their outputs (0 without flows).
    pub(crate) fn of_config(
        config: &HierarchyConfig,
        vb: &VarBuilder,
    ) -> Result<(Option<Arc<Self>>, usize)> {
        let Some(iaf) = &config.iaf else {
            return Ok((None, 0));
        };
        let flows = Self::new(iaf, &config.units(), vb)?;
        let context = flows.context_dim;
        Ok((Some(Arc::new(flows)), context))
    }

    /// Layer `l`'s flow on `u: [B, S, D_l]` with `context: [B, S, C]` or `[B, 1, C]`:
    /// `(z, log |det ∂z/∂u|)`, `[B, S, D_l]` and `[B, S]`.
    ///
    /// # Errors
    /// No context (an inference network that emitted none), shapes, candle's.
    pub(crate) fn push(
        &self,
        l: usize,
        u: &Tensor,
        context: Option<&Tensor>,
        pass: Pass,
    ) -> Result<(Tensor, Tensor)> {
        let Some(context) = context else {
            candle::bail!("layer IAF {l}: the inference network emitted no context");
        };
        let (b, s, d) = u.dims3()?;
        let c = context.dim(D::Minus1)?;
        let context = context
            .broadcast_as((b, s, c))?
            .contiguous()?
            .reshape((b * s, c))?;
        let out = self.chains[l].forward(&u.reshape((b * s, d))?, Some(&context), pass)?;
        Ok((
            out.value.reshape((b, s, d))?,
            out.log_det_jacobian.reshape((b, s))?,
        ))
    }
}

/// Layer `l`'s draw from its base draw `u: [B, S, D_l]` and the base draw's `log q` (`[B, S]`):
/// through the layer's flow when there are `flows` (`log q` less its `log |det|`; `context`
/// `[B, S, C]` or `[B, 1, C]`), else unchanged.
///
/// # Errors
/// Those of [`LayerFlows::push`].
pub(crate) fn through(
    flows: Option<&LayerFlows>,
    l: usize,
    (u, log_q): (Tensor, Tensor),
    context: Option<&Tensor>,
    pass: Pass,
) -> Result<(Tensor, Tensor)> {
    match flows {
        Some(flows) => {
            let (z, log_det) = flows.push(l, &u, context, pass)?;
            Ok((z, (log_q - log_det)?))
        }
        None => Ok((u, log_q)),
    }
}
