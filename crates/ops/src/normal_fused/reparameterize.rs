//! `loc + scale · eps` with the parameters broadcast over samples, fused.

use super::{GradOp, Needs, Plan, Storages, check_lens, fused_plan, split_grads, three};
use crate::{PAR_MIN_ELEMS, for_chunks_above};
use candle::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType};

/// `loc + scale · eps`: inputs `(eps, loc, scale)`.
struct Reparameterize {
    plan: Plan,
}

fn reparameterize<T: WithDType>(s: Storages, plan: Plan, name: &str) -> Result<Vec<T>> {
    let [eps, loc, scale] = three::<T>(s, name)?;
    check_lens(
        name,
        [eps.len(), loc.len(), scale.len()],
        [plan.value_len(), plan.param_len(), plan.param_len()],
    )?;
    let c = plan.c;
    let mut out = vec![T::zero(); plan.value_len()];
    for_chunks_above(
        &mut out,
        plan.rows_per_block() * c,
        PAR_MIN_ELEMS,
        |off, block| {
            for (r, rows) in block.chunks_mut(c).enumerate() {
                let row = off / c + r;
                let p = plan.param_row(row);
                let e = &eps[row * c..(row + 1) * c];
                for (((o, &e), &s), &l) in rows
                    .iter_mut()
                    .zip(e)
                    .zip(&scale[p..p + c])
                    .zip(&loc[p..p + c])
                {
                    // The composition's two roundings: `eps · scale`, then `+ loc`.
                    *o = e * s + l;
                }
            }
        },
    );
    Ok(out)
}

fn reparameterize_grad<T: WithDType>(s: Storages, plan: Plan, name: &str) -> Result<Vec<T>> {
    let [eps, scale, grad] = three::<T>(s, name)?;
    let (pn, c) = (plan.param_len(), plan.c);
    check_lens(
        name,
        [eps.len(), scale.len(), grad.len()],
        [plan.value_len(), pn, plan.value_len()],
    )?;
    let mut out = vec![T::zero(); plan.value_len() + 2 * pn];
    let (de, dp) = out.split_at_mut(plan.value_len());
    // d eps = g scale; d loc = Σ_M g, d scale = Σ_M g eps.
    plan.for_values(de, |row, j, i| grad[i] * scale[plan.param_row(row) + j]);
    plan.param_sums(dp, |row, j| {
        let i = row * c + j;
        let gv = grad[i].to_f64();
        [gv, gv * eps[i].to_f64()]
    });
    Ok(out)
}

impl CustomOp3 for Reparameterize {
    fn name(&self) -> &'static str {
        "normal-reparameterize"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let s = (s1, l1, s2, l2, s3, l3);
        let out = typed3!(self.name(), s, reparameterize, self.plan, self.name());
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        eps: &Tensor,
        loc: &Tensor,
        scale: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let needs = Needs::of([eps, loc, scale]);
        let flat = eps.apply_op3_no_bwd(
            scale,
            &grad.contiguous()?,
            &GradOp {
                name: "normal-reparameterize-backward",
                plan: self.plan,
                f32: reparameterize_grad::<f32>,
                f64: reparameterize_grad::<f64>,
            },
        )?;
        split_grads(&flat, [eps.shape(), loc.shape(), scale.shape()], needs)
    }
}

/// `loc + scale · eps` with the parameters broadcast against `eps`, as one fused op with one
/// backward op; `None` where the fused op does not apply (see [`normal_log_prob_sum`]).
///
/// # Shapes
/// `eps: [..]`, `loc`, `scale` of one shape broadcastable to it give `eps`'s shape.
///
/// # Errors
/// Tensor errors.
pub fn normal_reparameterize(eps: &Tensor, loc: &Tensor, scale: &Tensor) -> Result<Option<Tensor>> {
    let Some(plan) = fused_plan(eps, [loc, scale], 0) else {
        return Ok(None);
    };
    Ok(Some(eps.contiguous()?.apply_op3_arc(
        &loc.contiguous()?,
        &scale.contiguous()?,
        std::sync::Arc::new(Box::new(Reparameterize { plan })),
    )?))
}
