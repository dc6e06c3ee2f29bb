//! `f(x · Wᵀ + b)` as one op, for `f` = tanh or ELU.
//!
//! Unfused, a hidden layer is two autograd nodes, and candle's backward accumulates each
//! node's gradient into a zeroed buffer (`zeros_like` + `add`): for the IWAE decoder's
//! `[5000, 200]` hidden layers that is a memset and an add over 4 MB per node, plus the
//! activation's own pass and output buffer. Here the activation is applied to the GEMM's
//! output (itself started as the bias), and the backward forms `g f'(x)` from the saved
//! output (the kernels of `vaekit_core::tanh` / `elu`) before the linear layer's three
//! products: the same op as `linear_t` ([`vaekit_ops::LinearT`]), with an activation.

use candle::{DType, Result, Tensor};
use vaekit_core::FusedActivation;
use vaekit_ops::{LinearT, linear_t};

/// `f(x · wᵀ + b)` for `x: [N, in]`, `w: [out, in]`, `b: [out]`, giving `[N, out]`: one
/// fused op for f32 on CPU, else [`linear_t`] followed by `vaekit_core::tanh` / `elu`.
///
/// # Errors
/// Shapes other than `[N, in]`, `[out, in]` and `[out]`.
pub(crate) fn linear_act(x: &Tensor, w: &Tensor, b: &Tensor, f: FusedActivation) -> Result<Tensor> {
    let fused = [x, w, b]
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32);
    if fused && x.rank() == 2 {
        return x
            .contiguous()?
            .apply_op3(&w.contiguous()?, &b.contiguous()?, LinearT(Some(f)));
    }
    f.apply(&linear_t(x, w, b)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::{Device, Var};
    use vaekit_core::testing::{assert_all_close, gradient_of};
    use vaekit_core::{NoiseSource, SeededNoise};

    /// Values and the three gradients against the unfused composition (`linear_t`, then the
    /// activation op), f32, every combination of tracked operands, small and above the
    /// kernels' threading thresholds.
    #[test]
    fn matches_the_unfused_composition() -> Result<()> {
        let mut noise = SeededNoise::new(21);
        let dev = &Device::Cpu;
        for (n, k, m) in [(5, 7, 3), (600, 40, 120)] {
            let x = noise.standard_normal(&(n, k).into(), DType::F32, dev)?;
            let w = (noise.standard_normal(&(m, k).into(), DType::F32, dev)? * 0.3)?;
            let b = noise.standard_normal(&(m,).into(), DType::F32, dev)?;
            let r = noise.standard_normal(&(n, m).into(), DType::F32, dev)?;
            for f in [FusedActivation::Tanh, FusedActivation::Elu] {
                for tracked in [
                    [true, true, true],
                    [false, true, true],
                    [true, false, false],
                ] {
                    let [xv, wv, bv] = [&x, &w, &b].map(Var::from_tensor);
                    let (xv, wv, bv) = (xv?, wv?, bv?);
                    let pick = |v: &Var, t: &Tensor, on: bool| {
                        if on { v.as_tensor().clone() } else { t.clone() }
                    };
                    let xs = pick(&xv, &x, tracked[0]);
                    let ws = pick(&wv, &w, tracked[1]);
                    let bs = pick(&bv, &b, tracked[2]);
                    let ours = linear_act(&xs, &ws, &bs, f)?;
                    let pre = linear_t(&xs, &ws, &bs)?;
                    let theirs = match f {
                        FusedActivation::Tanh => vaekit_core::tanh(&pre)?,
                        FusedActivation::Elu => vaekit_core::elu(&pre)?,
                    };
                    assert_eq!(ours.to_vec2::<f32>()?, theirs.to_vec2::<f32>()?);
                    let g1 = (&ours * &r)?.sum_all()?.backward()?;
                    let g2 = (&theirs * &r)?.sum_all()?.backward()?;
                    for (v, on) in [(&xv, tracked[0]), (&wv, tracked[1]), (&bv, tracked[2])] {
                        if on {
                            assert_all_close(
                                &gradient_of(&g1, v.as_tensor())?,
                                &gradient_of(&g2, v.as_tensor())?,
                                1e-6,
                                1e-6,
                            )?;
                        } else {
                            assert!(g1.get(v.as_tensor()).is_none());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The gradient `g f'(x)` from the output, against candle's autograd of its own `tanh`
    /// and `elu` in f64 (the fallback path) and the f32 kernel path.
    #[test]
    fn activation_gradient_matches_autograd() -> Result<()> {
        let mut noise = SeededNoise::new(22);
        let dev = &Device::Cpu;
        for dtype in [DType::F64, DType::F32] {
            let x = Var::from_tensor(&noise.standard_normal(&(4, 9).into(), dtype, dev)?)?;
            let g = noise.standard_normal(&(4, 9).into(), dtype, dev)?;
            for f in [FusedActivation::Tanh, FusedActivation::Elu] {
                let y = match f {
                    FusedActivation::Tanh => x.as_tensor().tanh()?,
                    FusedActivation::Elu => x.as_tensor().elu(1.0)?,
                };
                let want = gradient_of(&(&y * &g)?.sum_all()?.backward()?, x.as_tensor())?;
                let tol = if dtype == DType::F64 { 1e-12 } else { 1e-6 };
                assert_all_close(&f.grad(&y.detach(), &g)?, &want, tol, tol)?;
            }
        }
        Ok(())
    }
}
