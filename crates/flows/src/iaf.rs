//! Inverse autoregressive flow steps on a (conditional) MADE.

use crate::flow::{Flow, FlowOutput};
use crate::made::{Made, MadeConfig, made};
use candle::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use vaekit_core::log_sigmoid;
use vaekit_nets::Pass;

/// How an IAF step uses the MADE's outputs `(m, s)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum IafVariant {
    /// The numerically stable update of the IAF paper: `σ = sigmoid(s + forget_bias)`,
    /// `z' = σ ⊙ z + (1 - σ) ⊙ m`, `log det = Σ log_sigmoid(s + forget_bias)`.
    Gated {
        /// Added to `s` (1 to 2 keeps early steps close to the identity).
        forget_bias: f64,
    },
    /// `z' = z ⊙ exp(l) + m` with the log-scale soft-clamped to `(-max, max)`:
    /// `l = max · tanh(s / max)`; `log det = Σ l`.
    Affine {
        /// Bound on the log-scale.
        max_log_scale: f64,
    },
    /// `z' = z + m`, volume preserving (`log det = 0`); the MADE has one head.
    Shift,
}

impl Default for IafVariant {
    fn default() -> Self {
        IafVariant::Gated { forget_bias: 1.0 }
    }
}

/// One IAF step: `(m, s) = MADE(z, h)`, then the update of its [`IafVariant`]. Because `m`
/// and `s` for dimension `i` depend only on earlier dimensions, the Jacobian is triangular
/// in the MADE's ordering and its log-determinant is the sum of the diagonal's logs.
///
/// # Shapes
/// `z: [N, D]`, `context: [N, C]`.
///
/// # References
/// Kingma, Salimans, Jozefowicz, Chen, Sutskever, Welling, "Improved variational inference
/// with inverse autoregressive flow", arXiv 1606.04934, eq. 14-15.
#[derive(Debug, Clone)]
pub struct IafStep {
    made: Made,
    variant: IafVariant,
}

/// Builds an IAF step at `vb`'s path (`made.*`); `config.heads` is set from the variant.
///
/// # Errors
/// A non-positive bound for `Affine`; MADE errors.
pub fn iaf_step(config: &MadeConfig, variant: IafVariant, vb: VarBuilder) -> Result<IafStep> {
    if let IafVariant::Affine { max_log_scale } = variant
        && !(max_log_scale.is_finite() && max_log_scale > 0.0)
    {
        candle::bail!("iaf_step: max_log_scale must be finite and > 0, got {max_log_scale}");
    }
    let heads = if variant == IafVariant::Shift { 1 } else { 2 };
    let config = MadeConfig {
        heads,
        ..config.clone()
    };
    Ok(IafStep {
        made: made(&config, vb.pp("made"))?,
        variant,
    })
}

impl IafStep {
    /// The MADE.
    pub fn made(&self) -> &Made {
        &self.made
    }

    /// `f(z)` and the diagonal of its log-Jacobian, `[N, D]` (`None` for the shift variant,
    /// whose Jacobian is the identity).
    fn apply(
        &self,
        z: &Tensor,
        context: Option<&Tensor>,
        pass: Pass,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let out = self.made.forward(z, context, pass)?;
        let m = &out[0];
        match self.variant {
            IafVariant::Gated { forget_bias } => {
                let gate_logit = (&out[1] + forget_bias)?;
                let log_sigma = log_sigmoid(&gate_logit)?;
                let sigma = log_sigma.exp()?;
                // z' = σ z + (1 - σ) m = m + σ (z - m)
                let value = (m + (sigma * (z - m)?)?)?;
                Ok((value, Some(log_sigma)))
            }
            IafVariant::Affine { max_log_scale } => {
                let l = ((&out[1] / max_log_scale)?.tanh()? * max_log_scale)?;
                let value = ((z * l.exp()?)? + m)?;
                Ok((value, Some(l)))
            }
            IafVariant::Shift => Ok(((z + m)?, None)),
        }
    }
}

impl Flow for IafStep {
    fn forward(&self, z: &Tensor, context: Option<&Tensor>, pass: Pass) -> Result<FlowOutput> {
        let (value, log_det) = self.apply(z, context, pass)?;
        Ok(FlowOutput {
            value,
            log_det_jacobian: match log_det {
                Some(l) => l.sum(1)?,
                None => Tensor::zeros(z.dim(0)?, z.dtype(), z.device())?,
            },
        })
    }
    fn forward_per_dim(
        &self,
        z: &Tensor,
        context: Option<&Tensor>,
        pass: Pass,
        acc: &Tensor,
    ) -> Result<Option<(FlowOutput, Tensor)>> {
        let (value, log_det) = self.apply(z, context, pass)?;
        let (log_det_jacobian, acc) = match log_det {
            Some(l) => (l.sum(1)?, (acc + l)?),
            None => (
                Tensor::zeros(z.dim(0)?, z.dtype(), z.device())?,
                acc.clone(),
            ),
        };
        Ok(Some((
            FlowOutput {
                value,
                log_det_jacobian,
            },
            acc,
        )))
    }
    fn dim(&self) -> usize {
        self.made.config().dim
    }
}
