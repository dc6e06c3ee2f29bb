//! `x · Wᵀ` whose backward computes only the gradients autograd will use.
//!
//! candle's matmul backward always computes both operand gradients. Two of the hot paths
//! waste one GEMM in three that way: a network's first layer (the data `x` needs no
//! gradient; about a sixth of the dense VAE's training FLOPs) and HMC through a frozen
//! decoder (the weights need none; a third of a leapfrog step's GEMMs). This op checks
//! `track_op` on each operand first.

use crate::FusedActivation;
use crate::gemm::{MatRef, gemm_acc};
use crate::matmul_grads::matmul_t_grad_pair;
use candle::backend::BackendStorage;
use candle::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, WithDType};

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
        matmul_t_grads(x, w, grad)
    }
}

/// The gradients of `x · wᵀ` for an output gradient `grad: [N, out]`, each only when
/// autograd tracks its operand: `grad · w` and `gradᵀ · x` (both at once, side by side,
/// through [`matmul_t_grad_pair`]).
fn matmul_t_grads(
    x: &Tensor,
    w: &Tensor,
    grad: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    if x.track_op() && w.track_op() {
        let (dx, dw) = matmul_t_grad_pair(grad, x, w)?;
        return Ok((Some(dx), Some(dw)));
    }
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

/// `x · Wᵀ + b` in one op, optionally followed by a fused activation `f`: the output starts
/// as `b` in every row and the GEMM accumulates into it (no zeroed output, no separate bias
/// pass), then `f` is applied to it in place of a second op. The backward forms `g f'(x)`
/// from the saved output (when there is an `f`) and computes only the gradients autograd
/// tracks. With an activation, f32 only (the kernels of `crate::tanh` / `elu`).
pub struct LinearT(pub Option<FusedActivation>);

/// Elements per parallel task of the bias fill ([`crate::for_chunks`]).
const FILL_CHUNK: usize = 1 << 15;

/// `(N, in, out)` of `x: [N, in]`, `w: [out, in]`, `b: [out]`.
///
/// # Errors
/// Other shapes, naming the op `name`.
pub(crate) fn linear_dims(
    x: &Layout,
    w: &Layout,
    b: &Layout,
    name: &str,
) -> Result<(usize, usize, usize)> {
    let (n, k) = x.shape().dims2()?;
    let (m, k2) = w.shape().dims2()?;
    if k != k2 || b.shape().elem_count() != m {
        candle::bail!(
            "{name}: x {:?}, w {:?} and b {:?} do not match",
            x.shape(),
            w.shape(),
            b.shape()
        );
    }
    Ok((n, k, m))
}

/// `x · wᵀ + b` on slices: `x: [n, k]`, `w: [m, k]`, `b: [m]` give `[n, m]`.
///
/// # Errors
/// Mismatched sizes.
pub(crate) fn linear_t_cpu<T: WithDType>(
    x: &[T],
    w: &[T],
    b: &[T],
    (n, k, m): (usize, usize, usize),
) -> Result<Vec<T>> {
    let mut out = vec![T::zero(); n * m];
    let m1 = m.max(1);
    crate::for_chunks(&mut out, FILL_CHUNK.div_ceil(m1) * m1, |_, block| {
        block.chunks_mut(m1).for_each(|row| row.copy_from_slice(b))
    });
    gemm_acc(
        &mut out,
        MatRef::row_major(x, n, k),
        MatRef::row_major(w, m, k).t(),
    )?;
    Ok(out)
}

impl CustomOp3 for LinearT {
    fn name(&self) -> &'static str {
        match self.0 {
            None => "linear-t",
            Some(FusedActivation::Tanh) => "linear-tanh",
            Some(FusedActivation::Elu) => "linear-elu",
        }
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
        let name = self.name();
        let (n, k, m) = linear_dims(l1, l2, l3, name)?;
        use crate::contiguous_part as part;
        let out = match (s1, s2, s3, self.0) {
            (CpuStorage::F32(x), CpuStorage::F32(w), CpuStorage::F32(b), act) => {
                let (x, w, b) = (part(x, l1, name)?, part(w, l2, name)?, part(b, l3, name)?);
                let pre = linear_t_cpu(x, w, b, (n, k, m))?;
                CpuStorage::F32(match act {
                    Some(f) => f.apply_f32(&pre),
                    None => pre,
                })
            }
            (CpuStorage::F64(x), CpuStorage::F64(w), CpuStorage::F64(b), None) => {
                let (x, w, b) = (part(x, l1, name)?, part(w, l2, name)?, part(b, l3, name)?);
                CpuStorage::F64(linear_t_cpu(x, w, b, (n, k, m))?)
            }
            _ => candle::bail!("{name}: f32 (f64 without an activation) of one dtype expected"),
        };
        Ok((out, Shape::from((n, m))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let pre_grad;
        let grad = match self.0 {
            Some(f) => {
                pre_grad = f.grad(res, grad)?;
                &pre_grad
            }
            None => grad,
        };
        let (dx, dw) = matmul_t_grads(x, w, grad)?;
        let db = if b.track_op() {
            Some(crate::channel_affine::bias_grad(grad)?.reshape(b.shape())?)
        } else {
            None
        };
        Ok((dx, dw, db))
    }
}

/// `x · wᵀ + b` for `x: [N, in]`, `w: [out, in]`, `b: [out]`, giving `[N, out]`; on CPU
/// (f32, f64) one op ([`LinearT`]), elsewhere `matmul_t` and a broadcast add.
///
/// # Errors
/// Shapes other than `[N, in]`, `[out, in]` and `[out]`.
pub fn linear_t(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if crate::has_cpu_kernel(x) && x.rank() == 2 {
        x.contiguous()?
            .apply_op3(&w.contiguous()?, &b.contiguous()?, LinearT(None))
    } else {
        matmul_t(x, w)?.broadcast_add(b)
    }
}

/// `x · wᵀ` for `x: [N, in]`, `w: [out, in]`, giving `[N, out]`; on CPU (f32, f64) a custom
/// op whose backward skips the gradient of an operand autograd does not track, elsewhere
/// candle's `matmul`.
///
/// # Errors
/// Shapes other than `[N, in]` and `[out, in]`.
pub fn matmul_t(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    if crate::has_cpu_kernel(x) && x.rank() == 2 {
        x.contiguous()?.apply_op2(&w.contiguous()?, MatmulT)
    } else {
        x.broadcast_matmul(&w.t()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_all_close;
    use candle::{DType, Device, Var};
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

    /// `linear_t` against candle's `matmul` + `broadcast_add` in f64 (values and all three
    /// gradients, each operand tracked or not), small and large (parallel bias fill, gemm's
    /// threaded path), and in f32 within rounding.
    #[test]
    fn linear_t_matches_matmul_plus_bias() -> Result<()> {
        let mut noise = SeededNoise::new(9);
        let dev = Device::Cpu;
        for (n, k, m) in [(5, 7, 3), (300, 120, 250)] {
            let x = noise.standard_normal(&(n, k).into(), DType::F64, &dev)?;
            let w = noise.standard_normal(&(m, k).into(), DType::F64, &dev)?;
            let b = noise.standard_normal(&m.into(), DType::F64, &dev)?;
            let g = noise.standard_normal(&(n, m).into(), DType::F64, &dev)?;
            for tracked in [
                [true, true, true],
                [false, true, true],
                [true, false, false],
            ] {
                let vars = [
                    Var::from_tensor(&x)?,
                    Var::from_tensor(&w)?,
                    Var::from_tensor(&b)?,
                ];
                let ts: Vec<Tensor> = vars
                    .iter()
                    .zip([&x, &w, &b])
                    .zip(tracked)
                    .map(|((v, t), on)| if on { v.as_tensor().clone() } else { t.clone() })
                    .collect();
                let ours = linear_t(&ts[0], &ts[1], &ts[2])?;
                let reference = ts[0].matmul(&ts[1].t()?)?.broadcast_add(&ts[2])?;
                assert_all_close(&ours, &reference, 1e-12, 1e-12)?;
                let grads = (&ours * &g)?.sum_all()?.backward()?;
                let want = (&reference * &g)?.sum_all()?.backward()?;
                for (on, t) in tracked.iter().zip(&ts) {
                    match (on, grads.get(t), want.get(t)) {
                        (true, Some(a), Some(e)) => assert_all_close(a, e, 1e-11, 1e-11)?,
                        (false, None, _) => {}
                        other => panic!("unexpected gradients: {:?}", other.0),
                    }
                }
            }
            let (x32, w32, b32) = (
                x.to_dtype(DType::F32)?,
                w.to_dtype(DType::F32)?,
                b.to_dtype(DType::F32)?,
            );
            let ours = linear_t(&x32, &w32, &b32)?.to_dtype(DType::F64)?;
            let reference = x.matmul(&w.t()?)?.broadcast_add(&b)?;
            assert_all_close(&ours, &reference, 1e-4, 1e-4)?;
        }
        Ok(())
    }

    #[test]
    fn linear_t_rejects_mismatched_shapes() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::zeros((2, 3), DType::F32, &dev)?;
        let w = Tensor::zeros((4, 3), DType::F32, &dev)?;
        assert!(linear_t(&x, &w, &Tensor::zeros(5, DType::F32, &dev)?).is_err());
        assert!(linear_t(&x, &w.t()?, &Tensor::zeros(4, DType::F32, &dev)?).is_err());
        Ok(())
    }
}
