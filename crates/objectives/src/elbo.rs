//! The ELBO: `E_q[log p(x|z)] - KL(q(z|x) || p(z))`, the KL in closed form where the
//! registry has the pair (or layer by layer for a hierarchy, [`crate::LayeredKl`]), with KL
//! warm-up and free bits (in groups through an IAF).

use crate::context::EvalContext;
use crate::draw::{Draw, reparameterized_posterior};
use crate::evaluation::Evaluation;
use crate::free_bits::{free_bits_term, per_dim_pair};
use crate::objective::ObjectiveConfig;
use candle::{D, DType, Result, Tensor};
use vaekit_distributions::{KlMethod, default_registry};

fn mean_f64(t: &Tensor) -> Result<f64> {
    t.to_dtype(DType::F64)?.mean_all()?.to_scalar::<f64>()
}

/// The ELBO of `config` (whose objective is [`crate::Objective::Elbo`]) on `ctx`'s batch.
///
/// # Errors
/// A posterior that is not reparameterized in a training pass; grouped free bits where
/// the posterior or prior gives no per-dimension KL; candle's.
pub(crate) fn elbo(
    config: &ObjectiveConfig,
    analytic_kl: bool,
    num_samples: usize,
    ctx: EvalContext,
) -> Result<Evaluation> {
    let (model, x, epoch, noise, pass) = (ctx.model, ctx.x, ctx.epoch, ctx.noise, ctx.pass);
    let posterior = reparameterized_posterior(ctx.inference, x, pass)?;
    // Free bits in several groups need per-dimension KLs: in closed form for a plain
    // Gaussian posterior with the analytic KL, otherwise through the flow (Monte Carlo, with
    // `log q` split over the dimensions along the sampling path).
    let grouped_free_bits = config
        .free_bits
        .filter(|fb| fb.groups > 1)
        .map(|fb| fb.groups);
    // The KL in closed form: a posterior without a flow whose pair the registry has.
    let prior = model.prior(pass)?;
    let analytic = match posterior.as_distribution() {
        Some(q) if analytic_kl && default_registry().has_analytic(q, &*prior) => Some(q),
        _ => None,
    };
    let per_dim_closed_form = analytic.is_some_and(|q| per_dim_pair(q, &*prior).is_some());
    let (sample, log_q_dims) = match grouped_free_bits {
        Some(groups) if !per_dim_closed_form => {
            match posterior.rsample_with_log_prob_per_dim(num_samples, noise)? {
                Some((sample, dims)) => (sample, Some(dims)),
                None => candle::bail!(
                    "objective: free bits in {groups} groups need per-dimension KLs, which this posterior does not split (planar and Sylvester steps mix the dimensions): use free_bits.groups = 1"
                ),
            }
        }
        _ => (posterior.rsample_with_log_prob(num_samples, noise)?, None),
    };
    let latent_dim = sample.z.dim(D::Minus1)?;
    let z = sample.z.clone();
    // A layered posterior's KL: closed forms layer by layer where the pair allows.
    let layered = match (analytic, grouped_free_bits) {
        (None, None) if analytic_kl => posterior.layered_kl(&z, &*prior)?,
        _ => None,
    };
    let draw = Draw::score_with_prior(sample, model, &*prior, x, pass)?;
    let (kl, method, per_dim) = if let Some(layered) = layered {
        (
            layered.per_draw.mean(D::Minus1)?,
            KlMethod::PerLayer {
                analytic_layers: layered.analytic_layers,
                layers: layered.layers,
                num_samples,
            },
            None,
        )
    } else {
        match analytic {
            Some(q) => {
                let per_dim = match per_dim_pair(q, &*prior) {
                    Some((bq, bp)) => Some(default_registry().analytic(bq, bp)?),
                    None => None,
                };
                (
                    default_registry().analytic(q, &*prior)?,
                    KlMethod::Analytic,
                    per_dim,
                )
            }
            None => {
                // `log q_d − log p_d` per dimension, averaged over the draws: [B, D].
                let per_dim = match (&log_q_dims, prior.reinterpreted()) {
                    (Some(dims), Some((bp, 1))) => {
                        Some((dims - bp.log_prob(&z)?)?.mean(D::Minus2)?)
                    }
                    (Some(_), _) => candle::bail!(
                        "objective: grouped free bits need a prior that factorizes over the latent dimensions"
                    ),
                    (None, _) => None,
                };
                (
                    (&draw.log_q - &draw.log_prior)?.mean(D::Minus1)?,
                    KlMethod::MonteCarlo { num_samples },
                    per_dim,
                )
            }
        }
    };
    if let (Some(groups), None) = (grouped_free_bits, &per_dim) {
        candle::bail!(
            "objective: free bits in {groups} groups need per-dimension KLs, which this posterior and prior do not give: use free_bits.groups = 1"
        );
    }
    let recon_b = draw.log_lik.mean(D::Minus1)?; // [B]
    let beta = config.warmup.map_or(1.0, |w| w.beta(epoch));
    let kl_term = match config.free_bits {
        Some(fb) => free_bits_term(&kl, per_dim.as_ref(), fb, latent_dim)?,
        None => kl.mean_all()?,
    };
    let objective = (recon_b.mean_all()? - (kl_term * beta)?)?;
    let kl_mean = mean_f64(&kl)?;
    let base = draw.evaluation(objective.neg()?, None, f64::NAN)?;
    Ok(Evaluation {
        bound: base.reconstruction - kl_mean,
        kl: kl_mean,
        kl_method: method,
        ..base
    })
}
