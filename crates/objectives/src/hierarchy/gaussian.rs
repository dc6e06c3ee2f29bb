//! The diagonal Gaussian conditionals of a hierarchy.

use candle::{D, Result, Tensor};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// A network output `[.., 2 D]` as `(loc, log_scale)`, each `[.., D]`.
pub(crate) fn head(out: &Tensor) -> Result<(Tensor, Tensor)> {
    let d = out.dim(D::Minus1)? / 2;
    Ok((out.narrow(D::Minus1, 0, d)?, out.narrow(D::Minus1, d, d)?))
}

/// `Σ_d log N(z_d; loc_d, exp(log_scale_d))` over the last dimension (broadcasting).
pub(crate) fn log_density(z: &Tensor, loc: &Tensor, log_scale: &Tensor) -> Result<Tensor> {
    let u = z.broadcast_sub(loc)?.broadcast_div(&log_scale.exp()?)?;
    let per = ((u.sqr()? * -0.5)?.broadcast_sub(log_scale)? - HALF_LN_2PI)?;
    per.sum(D::Minus1)
}

/// `z = loc + exp(log_scale) ε` and its log-density `Σ_d (-ε²/2 - log_scale - ln √(2π))`
/// (exact along the sampling path, no division).
pub(crate) fn reparameterize(
    eps: &Tensor,
    loc: &Tensor,
    log_scale: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let z = loc.broadcast_add(&log_scale.exp()?.broadcast_mul(eps)?)?;
    let per = ((eps.sqr()? * -0.5)?.broadcast_sub(log_scale)? - HALF_LN_2PI)?;
    Ok((z, per.sum(D::Minus1)?))
}
