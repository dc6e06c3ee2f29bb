//! What one evaluation of an objective returns.

use candle::{DType, Result, Tensor, Var};
use vaekit_distributions::KlMethod;

/// The result of evaluating an objective on a batch.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The scalar to minimise. With [`IwaeGradient::Dreg`] and [`Objective::Rws`] its
    /// gradient is meant for the generative model's parameters only.
    pub loss: Tensor,
    /// With DReG or RWS, the surrogate whose gradient is meant for the inference network's
    /// parameters only; `None` when `loss` serves both (see [`Evaluation::gradients`]).
    pub inference_loss: Option<Tensor>,
    /// The bound itself, mean over the batch, nats per data point (no warm-up, no free bits).
    pub bound: f64,
    /// Mean `E_q[log p(x|z)]`.
    pub reconstruction: f64,
    /// Mean KL (analytic, Monte Carlo or layer by layer, see `kl_method`).
    pub kl: f64,
    /// Mean `log p(x, z)` over samples and batch.
    pub mean_log_p: f64,
    /// Mean `log q(z|x)` over samples and batch.
    pub mean_log_q: f64,
    /// How the KL was computed.
    pub kl_method: KlMethod,
    /// Detached log-weights `log p(x, z_s) - log q(z_s|x)`, `[B, S]`, f64.
    pub log_weights: Tensor,
}

impl Evaluation {
    /// Whether the bound and the losses are finite.
    pub fn is_finite(&self) -> bool {
        let finite = |t: &Tensor| {
            t.to_dtype(DType::F64)
                .and_then(|t| t.to_scalar::<f64>())
                .map(f64::is_finite)
                .unwrap_or(false)
        };
        self.bound.is_finite()
            && finite(&self.loss)
            && self.inference_loss.as_ref().is_none_or(finite)
    }

    /// `self` when [`Evaluation::is_finite`], otherwise an error naming the bound.
    ///
    /// # Errors
    /// A non-finite bound or loss.
    pub fn checked(self) -> Result<Self> {
        if !self.is_finite() {
            candle::bail!(
                "objective: the bound is not finite ({}) on this batch",
                self.bound
            );
        }
        Ok(self)
    }

    /// Gradients for each variable: from `loss` for `model` variables, and from
    /// `inference_loss` (or `loss`) for `inference` variables. Variables that receive no
    /// gradient get zeros.
    ///
    /// # Errors
    /// Backward errors.
    pub fn gradients(&self, model: &[Var], inference: &[Var]) -> Result<Vec<Tensor>> {
        let main = self.loss.backward()?;
        let inf = match &self.inference_loss {
            Some(l) => Some(l.backward()?),
            None => None,
        };
        let pick = |store: &candle::backprop::GradStore, v: &Var| -> Result<Tensor> {
            match store.get(v.as_tensor()) {
                Some(g) => Ok(g.clone()),
                None => v.as_tensor().zeros_like(),
            }
        };
        let mut out = Vec::with_capacity(model.len() + inference.len());
        for v in model {
            out.push(pick(&main, v)?);
        }
        for v in inference {
            out.push(pick(inf.as_ref().unwrap_or(&main), v)?);
        }
        Ok(out)
    }
}
