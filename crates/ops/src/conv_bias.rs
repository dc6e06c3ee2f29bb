//! A convolution or transposed convolution with its bias added in the same op.
//!
//! As a separate op, a per-channel bias is one more activation-sized node: a pass forward,
//! and backward candle's zeroed gradient buffer plus an add, on one thread (about 0.15 ms
//! each for a `[32, 64, 14, 14]` output here). [`ConvBias`] adds the bias to each image's
//! output while it is still in cache, and its backward is the convolution's own maps plus
//! the channel sums of the output gradient.
//!
//! [`conv2d_bias`] also takes a pre-activation `f` (tanh or ELU, f32): `conv(f(x), w) + b`
//! with `f(x)` applied per image as the direct path borders it (or per batch on the GEMM
//! path), never a tensor of its own. The ResNet block's `conv(elu(h))` is then one node
//! instead of two; the backward forms `f'(x)` from `f(x)` recomputed.

use crate::FusedActivation;
use crate::conv_gemm::{ConvOp, conv_transpose2d_op, conv2d_op};
use crate::im2col::ConvGeometry;
use candle::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};

/// `(x, w, bias)` to the map of `(x, w)` plus `bias[c]` on output channel `c`.
struct ConvBias(ConvOp);

impl CustomOp3 for ConvBias {
    fn name(&self) -> &'static str {
        "conv2d-bias"
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
        self.0.compute((s1, l1), (s2, l2), Some((s3, l3)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = self.0.grads_with_bias(x, w, grad, bias.track_op())?;
        let db = db.map(|d| d.reshape(bias.shape())).transpose()?;
        Ok((dx, dw, db))
    }
}

/// `conv2d(f(x), w) + bias` per output channel (see [`crate::conv2d_gemm`]), with `f` the
/// identity for `pre = None`; `f` fused on CPU in f32 only, composed elsewhere (candle's
/// `conv2d` and a broadcast add off CPU).
///
/// # Shapes
/// `x: [B, C, H, W]`, `w: [O, C, k, k]`, `bias: [O]` give `[B, O, OH, OW]`.
///
/// # Errors
/// As [`crate::conv2d_gemm`], and a bias of another length.
pub fn conv2d_bias(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    geometry: ConvGeometry,
    pre: Option<FusedActivation>,
) -> Result<Tensor> {
    let fused = crate::has_cpu_kernel(x) && (pre.is_none() || x.dtype() == DType::F32);
    if !fused {
        let x = match pre {
            Some(f) => f.apply(x)?,
            None => x.clone(),
        };
        let y = crate::conv2d_gemm(&x, w, geometry)?;
        return crate::channel_affine::bias_add(&y, bias);
    }
    let op = ConvBias(conv2d_op(x, w, geometry)?.pre_activated(pre));
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &bias.contiguous()?, op)
}

/// `conv_transpose2d(x, w) + bias` per output channel (see
/// [`crate::conv_transpose2d_gemm`]); candle's ops off CPU.
///
/// # Shapes
/// `x: [B, Ci, H, W]`, `w: [Ci, Co, k, k]`, `bias: [Co]` give `[B, Co, OH, OW]`.
///
/// # Errors
/// As [`crate::conv_transpose2d_gemm`], and a bias of another length.
pub fn conv_transpose2d_bias(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    (padding, stride, output_padding): (usize, usize, usize),
) -> Result<Tensor> {
    if !crate::has_cpu_kernel(x) {
        let y = crate::conv_transpose2d_gemm(x, w, padding, stride, output_padding)?;
        return crate::channel_affine::bias_add(&y, bias);
    }
    let op = ConvBias(conv_transpose2d_op(x, w, padding, stride, output_padding)?);
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &bias.contiguous()?, op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_all_close, gradient_of};
    use candle::{DType, Device, Var};
    use vaekit_core::{NoiseSource, SeededNoise};

    /// Values and the gradients of all three arguments against the unfused pair (the
    /// convolution, then candle's broadcast add), in f64 (the GEMM path) and in f32 with
    /// images in parallel (the direct path where the CPU has AVX-512F).
    #[test]
    fn matches_the_convolution_then_a_bias_add() -> Result<()> {
        let mut noise = SeededNoise::new(41);
        let dev = &Device::Cpu;
        type Conv<'a> = &'a dyn Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>;
        let conv: (Conv, Conv) = (
            &|x, w, b| {
                let g = ConvGeometry {
                    padding: 1,
                    ..Default::default()
                };
                conv2d_bias(x, w, b, g, None)
            },
            &|x, w, b| {
                let g = ConvGeometry {
                    padding: 1,
                    ..Default::default()
                };
                crate::conv2d_gemm(x, w, g)?.broadcast_add(&b.reshape((1, (), 1, 1))?)
            },
        );
        let transposed: (Conv, Conv) = (
            &|x, w, b| conv_transpose2d_bias(x, w, b, (1, 2, 1)),
            &|x, w, b| {
                let y = crate::conv_transpose2d_gemm(x, w, 1, 2, 1)?;
                y.broadcast_add(&b.reshape((1, (), 1, 1))?)
            },
        );
        for (dtype, n, tol) in [(DType::F64, 2, 1e-10), (DType::F32, 8, 1e-3)] {
            for ((ours, reference), xs, ws, c) in [
                (conv, (n, 16, 14, 14), (24, 16, 3, 3), 24),
                (transposed, (n, 24, 7, 7), (24, 16, 3, 3), 16),
            ] {
                let x = noise.standard_normal(&xs.into(), dtype, dev)?;
                let w = noise.standard_normal(&ws.into(), dtype, dev)?;
                let b = noise.standard_normal(&c.into(), dtype, dev)?;
                let run = |f: Conv| -> Result<Vec<Tensor>> {
                    let (xv, wv, bv) = (
                        Var::from_tensor(&x)?,
                        Var::from_tensor(&w)?,
                        Var::from_tensor(&b)?,
                    );
                    let y = f(xv.as_tensor(), wv.as_tensor(), bv.as_tensor())?;
                    let weights = y.ones_like()?.cumsum(3)?.sin()?;
                    let g = (&y * &weights)?.sum_all()?.backward()?;
                    let mut out = vec![y.to_dtype(DType::F64)?];
                    for v in [&xv, &wv, &bv] {
                        out.push(gradient_of(&g, v.as_tensor())?.to_dtype(DType::F64)?);
                    }
                    Ok(out)
                };
                for (a, e) in run(ours)?.iter().zip(run(reference)?.iter()) {
                    assert_all_close(a, e, tol, tol)?;
                }
            }
        }
        Ok(())
    }

    /// `conv(f(x), w) + b` against `f` applied first (vaekit's own fused activation), for
    /// tanh and ELU, values and all three gradients, on the direct path (8 images in
    /// parallel, stride 1 and 2) and the GEMM path (one image); f64 input composes.
    #[test]
    fn pre_activation_matches_the_activation_first() -> Result<()> {
        let mut noise = SeededNoise::new(42);
        let dev = &Device::Cpu;
        for (n, stride, f) in [
            (8, 1, FusedActivation::Elu),
            (8, 2, FusedActivation::Tanh),
            (1, 1, FusedActivation::Elu),
        ] {
            let g = ConvGeometry {
                padding: 1,
                stride,
                ..Default::default()
            };
            let x = noise.standard_normal(&(n, 16, 14, 14).into(), DType::F32, dev)?;
            let w = noise.standard_normal(&(24, 16, 3, 3).into(), DType::F32, dev)?;
            let b = noise.standard_normal(&24.into(), DType::F32, dev)?;
            let act = |x: &Tensor| f.apply(x);
            let run = |fused: bool, x: &Tensor| -> Result<Vec<Tensor>> {
                let (xv, wv, bv) = (
                    Var::from_tensor(x)?,
                    Var::from_tensor(&w)?,
                    Var::from_tensor(&b)?,
                );
                let (w, b) = (
                    wv.as_tensor().to_dtype(x.dtype())?,
                    bv.as_tensor().to_dtype(x.dtype())?,
                );
                let y = match fused {
                    true => conv2d_bias(xv.as_tensor(), &w, &b, g, Some(f))?,
                    false => conv2d_bias(&act(xv.as_tensor())?, &w, &b, g, None)?,
                };
                let weights = y.ones_like()?.cumsum(3)?.sin()?;
                let grads = (&y * &weights)?.sum_all()?.backward()?;
                let mut out = vec![y.to_dtype(DType::F64)?];
                for v in [&xv, &wv, &bv] {
                    out.push(gradient_of(&grads, v.as_tensor())?.to_dtype(DType::F64)?);
                }
                Ok(out)
            };
            let want = run(false, &x)?;
            for (a, e) in run(true, &x)?.iter().zip(&want) {
                assert_all_close(a, e, 1e-4, 1e-4)?;
            }
            for (a, e) in run(true, &x.to_dtype(DType::F64)?)?.iter().zip(&want) {
                assert_all_close(a, e, 1e-4, 1e-4)?;
            }
        }
        Ok(())
    }

    #[test]
    fn a_bias_of_another_length_is_an_error() -> Result<()> {
        let dev = &Device::Cpu;
        let x = Tensor::zeros((1, 2, 5, 5), DType::F32, dev)?;
        let w = Tensor::zeros((3, 2, 3, 3), DType::F32, dev)?;
        let b = Tensor::zeros(4, DType::F32, dev)?;
        assert!(conv2d_bias(&x, &w, &b, ConvGeometry::default(), None).is_err());
        Ok(())
    }
}
