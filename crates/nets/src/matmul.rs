//! `x · Wᵀ` whose backward computes only the gradients autograd will use.
//!
//! candle's matmul backward always computes both operand gradients. Two of the hot paths
//! waste one GEMM in three that way: a network's first layer (the data `x` needs no
//! gradient; about a sixth of the dense VAE's training FLOPs) and HMC through a frozen
//! decoder (the weights need none; a third of a leapfrog step's GEMMs). This op checks
//! `track_op` on each operand first.

use candle::backend::BackendStorage;
use candle::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

/// `x: [N, in]`, `w: [out, in]` give `[N, out]`.
struct MatmulT;

impl CustomOp2 for MatmulT {
    fn name(&self) -> &'static str {
        "matmul-t"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, k) = l1.shape().dims2()?;
        let (m, k2) = l2.shape().dims2()?;
        if k != k2 {
            candle::bail!(
                "matmul-t: x {:?} and w {:?} do not match",
                l1.shape(),
                l2.shape()
            );
        }
        let wt = l2.transpose(0, 1)?;
        Ok((s1.matmul(s2, (1, n, m, k), l1, &wt)?, Shape::from((n, m))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dx = if x.track_op() {
            Some(grad.matmul(w)?)
        } else {
            None
        };
        let dw = if w.track_op() {
            Some(grad.t()?.matmul(x)?)
        } else {
            None
        };
        Ok((dx, dw))
    }
}

/// `x · wᵀ` for `x: [N, in]`, `w: [out, in]`, giving `[N, out]`; on CPU (f32, f64) a custom
/// op whose backward skips the gradient of an operand autograd does not track, elsewhere
/// candle's `matmul`.
///
/// # Errors
/// Shapes other than `[N, in]` and `[out, in]`.
pub(crate) fn matmul_t(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if vaekit_core::has_cpu_kernel(x) && x.rank() == 2 {
        x.contiguous()?.apply_op2(&w.contiguous()?, MatmulT)
    } else {
        x.broadcast_matmul(&w.t()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::{DType, Device, Var};
    use vaekit_core::testing::assert_all_close;
    use vaekit_core::{NoiseSource, SeededNoise};

    /// Values and gradients against candle's matmul with every combination of tracked
    /// operands; an untracked operand gets no gradient.
    #[test]
    fn matches_candle_and_skips_untracked_operands() -> Result<()> {
        let mut noise = SeededNoise::new(7);
        let dev = Device::Cpu;
        let x = noise.standard_normal(&(5, 7).into(), DType::F64, &dev)?;
        let w = noise.standard_normal(&(3, 7).into(), DType::F64, &dev)?;
        let g = noise.standard_normal(&(5, 3).into(), DType::F64, &dev)?;
        for (track_x, track_w) in [(true, true), (true, false), (false, true)] {
            let (xv, wv) = (Var::from_tensor(&x)?, Var::from_tensor(&w)?);
            let xt = if track_x {
                xv.as_tensor().clone()
            } else {
                x.clone()
            };
            let wt = if track_w {
                wv.as_tensor().clone()
            } else {
                w.clone()
            };
            let ours = matmul_t(&xt, &wt)?;
            let reference = xt.matmul(&wt.t()?)?;
            assert_all_close(&ours, &reference, 1e-12, 1e-12)?;
            let grads = (&ours * &g)?.sum_all()?.backward()?;
            let want = (&reference * &g)?.sum_all()?.backward()?;
            for (tracked, v) in [(track_x, &xt), (track_w, &wt)] {
                match (tracked, grads.get(v), want.get(v)) {
                    (true, Some(a), Some(b)) => assert_all_close(a, b, 1e-12, 1e-12)?,
                    (false, None, _) => {}
                    other => panic!("unexpected gradients: {:?}", other.0),
                }
            }
        }
        Ok(())
    }
}
