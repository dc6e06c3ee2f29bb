//! `Σ log N(x; loc, exp(log_scale))` over event dimensions, fused.

use super::{
    GradOp, HALF_LN_2PI, Needs, Plan, Storages, check_lens, fused_plan, split_grads, three,
};
use crate::{PAR_MIN_ELEMS, for_chunks_above};
use candle::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType};

/// `Σ_event log N(value; loc, exp(log_scale))`: inputs `(value, loc, log_scale)`.
struct LogProbSum {
    plan: Plan,
    out: Shape,
}

fn log_prob_sum<T: WithDType>(s: Storages, plan: Plan, name: &str) -> Result<Vec<T>> {
    let [v, loc, ls] = three::<T>(s, name)?;
    check_lens(
        name,
        [v.len(), loc.len(), ls.len()],
        [plan.value_len(), plan.param_len(), plan.param_len()],
    )?;
    let inv: Vec<f64> = ls.iter().map(|s| (-s.to_f64()).exp()).collect();
    let (c, w, g) = (plan.c, plan.w, plan.groups());
    let mut out = vec![T::zero(); plan.a * plan.m * g];
    let shift = w as f64 * HALF_LN_2PI;
    for_chunks_above(
        &mut out,
        plan.rows_per_block() * g,
        PAR_MIN_ELEMS.div_ceil(w),
        |off, block| {
            for (k, o) in block.iter_mut().enumerate() {
                let (row, grp) = ((off + k) / g, (off + k) % g);
                let (vb, pb) = (row * c + grp * w, plan.param_row(row) + grp * w);
                let mut acc = 0f64;
                for j in 0..w {
                    let d = (v[vb + j].to_f64() - loc[pb + j].to_f64()) * inv[pb + j];
                    acc += -0.5 * d * d - ls[pb + j].to_f64();
                }
                *o = T::from_f64(acc - shift);
            }
        },
    );
    Ok(out)
}

fn log_prob_sum_grad<T: WithDType>(s: Storages, plan: Plan, name: &str) -> Result<Vec<T>> {
    let [v, params, grad] = three::<T>(s, name)?;
    let (pn, c, w, g) = (plan.param_len(), plan.c, plan.w, plan.groups());
    check_lens(
        name,
        [v.len(), params.len(), grad.len()],
        [plan.value_len(), 2 * pn, plan.a * plan.m * g],
    )?;
    let (loc, ls) = params.split_at(pn);
    let inv: Vec<f64> = ls.iter().map(|s| (-s.to_f64()).exp()).collect();
    let mut out = vec![T::zero(); plan.value_len() + 2 * pn];
    let (dv, dp) = out.split_at_mut(plan.value_len());
    // (g, (x - loc) / scale) of value element `(row, j)` at its parameter `p`.
    let parts = |row: usize, j: usize| {
        let p = plan.param_row(row) + j;
        let d = (v[row * c + j].to_f64() - loc[p].to_f64()) * inv[p];
        (grad[row * g + j / w].to_f64(), d, p)
    };
    // d value = -g (x - loc) / scale².
    plan.for_values(dv, |row, j, _| {
        let (gv, d, p) = parts(row, j);
        T::from_f64(-gv * d * inv[p])
    });
    // d loc = Σ_M g (x - loc) / scale², d log_scale = Σ_M g ((x - loc)² / scale² - 1).
    plan.param_sums(dp, |row, j| {
        let (gv, d, p) = parts(row, j);
        [gv * d * inv[p], gv * (d * d - 1.0)]
    });
    Ok(out)
}

impl CustomOp3 for LogProbSum {
    fn name(&self) -> &'static str {
        "normal-log-prob-sum"
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
        let out = typed3!(self.name(), s, log_prob_sum, self.plan, self.name());
        Ok((out, self.out.clone()))
    }

    fn bwd(
        &self,
        value: &Tensor,
        loc: &Tensor,
        log_scale: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let needs = Needs::of([value, loc, log_scale]);
        let params = Tensor::cat(&[loc.flatten_all()?, log_scale.flatten_all()?], 0)?;
        let flat = value.apply_op3_no_bwd(
            &params,
            &grad.contiguous()?,
            &GradOp {
                name: "normal-log-prob-sum-backward",
                plan: self.plan,
                f32: log_prob_sum_grad::<f32>,
                f64: log_prob_sum_grad::<f64>,
            },
        )?;
        split_grads(
            &flat,
            [value.shape(), loc.shape(), log_scale.shape()],
            needs,
        )
    }
}

/// `Σ log N(value; loc, exp(log_scale))` over the last `n` dimensions of `value`, the
/// parameters broadcast against it, as one fused op with one backward op; `None` where the
/// fused op does not apply (not CPU f32 / f64, mixed dtypes, or a broadcast other than
/// [`Plan`]'s), for the caller to compose instead.
///
/// # Shapes
/// `value: [.., batch.., event..]`, `loc`, `log_scale` of one shape broadcastable to it give
/// `value`'s shape without its last `n` dimensions.
///
/// # Errors
/// Tensor errors.
pub fn normal_log_prob_sum(
    value: &Tensor,
    loc: &Tensor,
    log_scale: &Tensor,
    n: usize,
) -> Result<Option<Tensor>> {
    let Some(plan) = fused_plan(value, [loc, log_scale], n) else {
        return Ok(None);
    };
    let dims = value.dims();
    let out = Shape::from(&dims[..dims.len() - n]);
    Ok(Some(value.contiguous()?.apply_op3_arc(
        &loc.contiguous()?,
        &log_scale.contiguous()?,
        std::sync::Arc::new(Box::new(LogProbSum { plan, out })),
    )?))
}
