//! The diagonal Gaussian conditionals of a hierarchy.

use crate::mlp::Mlp;
use candle::{D, Result, Tensor};
use vaekit_nets::Pass;

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// A network output `[.., 2 D]` as `(loc, log_scale)`, each `[.., D]`.
pub(crate) fn head(out: &Tensor) -> Result<(Tensor, Tensor)> {
    let d = out.dim(D::Minus1)? / 2;
    Ok((out.narrow(D::Minus1, 0, d)?, out.narrow(D::Minus1, d, d)?))
}

/// A network output `[.., 2 D + C]` as `((loc, log_scale), context)`, `[.., D]` each and
/// `[.., C]` (`None` when `C` is 0).
pub(crate) fn head_and_context(
    out: &Tensor,
    units: usize,
) -> Result<((Tensor, Tensor), Option<Tensor>)> {
    let width = out.dim(D::Minus1)?;
    let Some(c) = width.checked_sub(2 * units) else {
        candle::bail!("a layer's output of width {width} cannot hold a Gaussian of {units} units");
    };
    let pair = (
        out.narrow(D::Minus1, 0, units)?,
        out.narrow(D::Minus1, units, units)?,
    );
    let context = (c > 0)
        .then(|| out.narrow(D::Minus1, 2 * units, c))
        .transpose()?;
    Ok((pair, context))
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

/// `KL(N(q_loc, exp(q_log_scale)) || N(p_loc, exp(p_log_scale)))` summed over the last
/// dimension (broadcasting): `Σ_d [log σ_p − log σ_q + (σ_q² + (μ_q − μ_p)²) / (2 σ_p²) − ½]`.
pub(crate) fn kl(
    q_loc: &Tensor,
    q_log_scale: &Tensor,
    p_loc: &Tensor,
    p_log_scale: &Tensor,
) -> Result<Tensor> {
    let ratio = q_log_scale.broadcast_sub(p_log_scale)?; // log σ_q − log σ_p
    let diff = q_loc
        .broadcast_sub(p_loc)?
        .broadcast_div(&p_log_scale.exp()?)?;
    let per = ((((ratio.clone() * 2.0)?.exp()? + diff.sqr()?)? * 0.5)? - ratio)?;
    (per - 0.5)?.sum(D::Minus1)
}

/// `KL(N(loc, exp(log_scale)) || N(0, I))` summed over the last dimension:
/// `Σ_d [(σ² + μ²) / 2 − log σ − ½]`.
pub(crate) fn kl_to_standard(loc: &Tensor, log_scale: &Tensor) -> Result<Tensor> {
    let per = ((((log_scale * 2.0)?.exp()? + loc.sqr()?)? * 0.5)? - log_scale)?;
    (per - 0.5)?.sum(D::Minus1)
}

/// A conditional network over draws `[B, S, D_in]` (rows `B S` at once), with its parameters
/// detached when `stopped`: `(loc, log_scale)`, each `[B, S, D_out]`.
pub(crate) fn conditional_over_draws(
    net: &Mlp,
    given: &Tensor,
    stopped: bool,
    pass: Pass,
) -> Result<(Tensor, Tensor)> {
    head(&net_over_draws(net, given, stopped, pass)?)
}

/// A network over draws `[B, S, D_in]` (rows `B S` at once), its parameters detached when
/// `stopped`: its output `[B, S, out]`.
pub(crate) fn net_over_draws(
    net: &Mlp,
    given: &Tensor,
    stopped: bool,
    pass: Pass,
) -> Result<Tensor> {
    let (b, s, d) = given.dims3()?;
    let rows = given.reshape((b * s, d))?;
    let out = if stopped {
        net.detached().forward(&rows, pass)?
    } else {
        net.forward(&rows, pass)?
    };
    out.reshape((b, s, out.dim(D::Minus1)?))
}

/// A per-data-point `(loc, log_scale)`, `[B, D]` each, as `[B, 1, D]` to broadcast over draws,
/// detached when `stopped`.
pub(crate) fn over_draws(pair: &(Tensor, Tensor), stopped: bool) -> Result<(Tensor, Tensor)> {
    let (loc, log_scale) = pair;
    let (loc, log_scale) = if stopped {
        (loc.detach(), log_scale.detach())
    } else {
        (loc.clone(), log_scale.clone())
    };
    Ok((loc.unsqueeze(1)?, log_scale.unsqueeze(1)?))
}
