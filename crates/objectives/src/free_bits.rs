//! Free bits: the KL floored per group of latent dimensions.

use crate::objective::FreeBits;
use candle::{D, Result, Tensor};
use vaekit_distributions::default_registry;

/// The base distributions of a factorized posterior and prior whose per-dimension KL has a
/// closed form.
pub(crate) fn per_dim_pair<'a>(
    q: &'a dyn vaekit_distributions::Distribution,
    p: &'a dyn vaekit_distributions::Distribution,
) -> Option<(
    &'a dyn vaekit_distributions::Distribution,
    &'a dyn vaekit_distributions::Distribution,
)> {
    match (q.reinterpreted(), p.reinterpreted()) {
        (Some((bq, 1)), Some((bp, 1))) if default_registry().has_analytic(bq, bp) => Some((bq, bp)),
        _ => None,
    }
}

/// `Σ_j max(λ |g_j|, mean_batch KL_j)` with per-dimension KLs `[B, D]` when available, else
/// one group over the per-datapoint KL `[B]` with floor `λ · latent_dim`.
pub(crate) fn free_bits_term(
    kl: &Tensor,
    per_dim: Option<&Tensor>,
    fb: FreeBits,
    latent_dim: usize,
) -> Result<Tensor> {
    match per_dim {
        Some(per_dim) => {
            let d = per_dim.dim(D::Minus1)?;
            let groups = fb.groups.clamp(1, d);
            let mut total: Option<Tensor> = None;
            for g in 0..groups {
                let (start, end) = (g * d / groups, (g + 1) * d / groups);
                let kl_g = per_dim
                    .narrow(D::Minus1, start, end - start)?
                    .sum(D::Minus1)?
                    .mean_all()?;
                let floor = fb.nats_per_dim * (end - start) as f64;
                let term = kl_g.maximum(floor)?;
                total = Some(match total {
                    Some(t) => (t + term)?,
                    None => term,
                });
            }
            match total {
                Some(t) => Ok(t),
                None => kl.mean_all(),
            }
        }
        None => kl.mean_all()?.maximum(fb.nats_per_dim * latent_dim as f64),
    }
}
