//! `Σ log N(x; 0, 1)` over event dimensions, fused.

use super::{BLOCK, HALF_LN_2PI};
use crate::{PAR_MIN_ELEMS, contiguous_slice, for_chunks_above, has_cpu_kernel};
use candle::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, WithDType};

/// `Σ_w (-x²/2 - ½ ln 2π)` over the last `w` elements: one input, the output `out`.
struct StandardLogProbSum {
    w: usize,
    out: Shape,
}

fn standard_sum<T: WithDType>(v: &[T], w: usize) -> Vec<T> {
    let mut out = vec![T::zero(); v.len() / w];
    let shift = w as f64 * HALF_LN_2PI;
    for_chunks_above(
        &mut out,
        BLOCK.div_ceil(w),
        PAR_MIN_ELEMS.div_ceil(w),
        |off, block| {
            for (k, o) in block.iter_mut().enumerate() {
                let row = &v[(off + k) * w..(off + k + 1) * w];
                let acc: f64 = row.iter().map(|x| x.to_f64() * x.to_f64()).sum();
                *o = T::from_f64(-0.5 * acc - shift);
            }
        },
    );
    out
}

impl CustomOp1 for StandardLogProbSum {
    fn name(&self) -> &'static str {
        "standard-normal-log-prob-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let out = match s {
            CpuStorage::F32(_) => {
                CpuStorage::F32(standard_sum(contiguous_slice::<f32>(s, l, name)?, self.w))
            }
            CpuStorage::F64(_) => {
                CpuStorage::F64(standard_sum(contiguous_slice::<f64>(s, l, name)?, self.w))
            }
            _ => candle::bail!("{name}: f32 or f64 expected"),
        };
        Ok((out, self.out.clone()))
    }

    fn bwd(&self, value: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let d =
            value.apply_op2_no_bwd(&grad.contiguous()?, &StandardLogProbSumGrad { w: self.w })?;
        Ok(Some(d))
    }
}

/// Its backward: inputs `(value, grad)`, output `-g x` with `g` repeated over the `w`
/// summed elements.
struct StandardLogProbSumGrad {
    w: usize,
}

fn standard_sum_grad<T: WithDType>(v: &[T], g: &[T], w: usize) -> Result<Vec<T>> {
    if v.len() != g.len() * w {
        candle::bail!(
            "standard-normal-log-prob-sum-backward: {} values for {} gradients of {w}",
            v.len(),
            g.len()
        );
    }
    let mut out = vec![T::zero(); v.len()];
    for_chunks_above(&mut out, BLOCK, PAR_MIN_ELEMS, |off, block| {
        for (k, o) in block.iter_mut().enumerate() {
            *o = T::zero() - g[(off + k) / w] * v[off + k];
        }
    });
    Ok(out)
}

impl CustomOp2 for StandardLogProbSumGrad {
    fn name(&self) -> &'static str {
        "standard-normal-log-prob-sum-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let out = match s1 {
            CpuStorage::F32(_) => CpuStorage::F32(standard_sum_grad(
                contiguous_slice::<f32>(s1, l1, name)?,
                contiguous_slice::<f32>(s2, l2, name)?,
                self.w,
            )?),
            CpuStorage::F64(_) => CpuStorage::F64(standard_sum_grad(
                contiguous_slice::<f64>(s1, l1, name)?,
                contiguous_slice::<f64>(s2, l2, name)?,
                self.w,
            )?),
            _ => candle::bail!("{name}: f32 or f64 expected"),
        };
        Ok((out, l1.shape().clone()))
    }
}

/// `Σ log N(value; 0, 1)` over the last `n` dimensions of `value`, as one fused op; `None`
/// off the CPU or for dtypes other than f32 / f64.
///
/// # Shapes
/// `value: [..]` gives `value`'s shape without its last `n` dimensions.
///
/// # Errors
/// `n` above the value's rank; tensor errors.
pub fn standard_normal_log_prob_sum(value: &Tensor, n: usize) -> Result<Option<Tensor>> {
    let dims = value.dims();
    if n > dims.len() {
        candle::bail!("standard_normal_log_prob_sum: {n} event dims of a {dims:?} value");
    }
    let w: usize = dims[dims.len() - n..].iter().product();
    if !has_cpu_kernel(value)
        || w == 0
        || value.elem_count() == 0
        || crate::second_order_gradients()
    {
        return Ok(None);
    }
    let out = Shape::from(&dims[..dims.len() - n]);
    Ok(Some(value.contiguous()?.apply_op1_arc(
        std::sync::Arc::new(Box::new(StandardLogProbSum { w, out })),
    )?))
}
