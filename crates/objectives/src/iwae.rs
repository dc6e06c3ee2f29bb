//! The IWAE bound `E[log (1/S) Σ_s w_s]` with its standard or doubly reparameterized
//! (DReG) gradient.

use crate::context::EvalContext;
use crate::draw::{Draw, reparameterized_posterior};
use crate::evaluation::Evaluation;
use crate::objective::IwaeGradient;
use candle::{D, DType, Result, Tensor};
use vaekit_core::log_mean_exp;

/// The IWAE bound with `num_samples` draws per data point on `ctx`'s batch.
///
/// # Errors
/// A posterior that is not reparameterized in a training pass; DReG with a posterior whose
/// density cannot be evaluated with detached parameters (a flow); candle's.
///
/// # References
/// Burda, Grosse, Salakhutdinov, arXiv 1509.00519; Tucker, Lawson, Gu, Maddison, arXiv
/// 1810.04152 (DReG).
pub(crate) fn iwae(
    gradient: IwaeGradient,
    num_samples: usize,
    ctx: EvalContext,
) -> Result<Evaluation> {
    let (x, pass) = (ctx.x, ctx.pass);
    let posterior = reparameterized_posterior(ctx.inference, x, pass)?;
    let sample = posterior.rsample_with_log_prob(num_samples, ctx.noise)?;
    let log_q_stopped = sample.log_q_stopped.clone();
    let draw = Draw::score(sample, ctx.model, x, pass)?;
    // Differentiable log-weights (the draw's own `log_w64` is detached), [B, S].
    let log_w64 = (&draw.log_p - &draw.log_q)?.to_dtype(DType::F64)?;
    let bound_b = log_mean_exp(&log_w64, D::Minus1, false)?; // [B]
    let bound = bound_b.mean_all()?;
    let (loss, inference_loss) = match gradient {
        IwaeGradient::Standard => (bound.neg()?.to_dtype(x.dtype())?, None),
        IwaeGradient::Dreg => {
            let Some(log_q_stopped) = &log_q_stopped else {
                candle::bail!(
                    "objective: DReG needs a posterior whose density can be evaluated with detached parameters; flow posteriors cannot"
                );
            };
            // Normalised weights w̃ (detached), [B, S].
            let w_tilde = log_w64
                .broadcast_sub(&bound_b.unsqueeze(1)?)?
                .exp()?
                .affine(1.0 / num_samples as f64, 0.0)?
                .detach();
            // A sample with log-weight −∞ has w̃ = 0 and contributes nothing, as in the
            // standard estimator; its 0 · (−∞) would be NaN, so it is masked out of
            // both surrogates (gradients reach only the kept samples).
            let kept = log_w64.detach().ne(f64::NEG_INFINITY)?;
            let zeros = log_w64.zeros_like()?;
            let masked = |t: Tensor| kept.where_cond(&t, &zeros);
            let model_sur = (&w_tilde * masked(log_w64.clone())?)?
                .sum(D::Minus1)?
                .mean_all()?;
            let log_w_stop_q = (&draw.log_p - log_q_stopped)?.to_dtype(DType::F64)?;
            let inf_sur = (w_tilde.sqr()? * masked(log_w_stop_q)?)?
                .sum(D::Minus1)?
                .mean_all()?;
            (
                model_sur.neg()?.to_dtype(x.dtype())?,
                Some(inf_sur.neg()?.to_dtype(x.dtype())?),
            )
        }
    };
    draw.evaluation(loss, inference_loss, bound.to_scalar::<f64>()?)
}
