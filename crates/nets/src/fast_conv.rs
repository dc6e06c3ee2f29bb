//! `conv2d` whose input gradient is a convolution, not candle's `conv_transpose2d` loop.

use candle::{CpuStorage, CustomOp2, DType, Device, Layout, Result, Shape, Tensor};

/// The geometry of a 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Zero padding on every side.
    pub padding: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
}

impl Default for ConvGeometry {
    fn default() -> Self {
        Self {
            padding: 0,
            stride: 1,
            dilation: 1,
        }
    }
}

struct FastConv2d(ConvGeometry);

fn host_tensor(s: &CpuStorage, l: &Layout) -> Result<Tensor> {
    let Some((a, b)) = l.contiguous_offsets() else {
        candle::bail!("conv2d_fast_backward: inputs must be contiguous")
    };
    match s {
        CpuStorage::F32(v) => Tensor::from_slice(&v[a..b], l.shape(), &Device::Cpu),
        CpuStorage::F64(v) => Tensor::from_slice(&v[a..b], l.shape(), &Device::Cpu),
        _ => candle::bail!("conv2d_fast_backward: f32 or f64 expected"),
    }
}

impl CustomOp2 for FastConv2d {
    fn name(&self) -> &'static str {
        "conv2d-fast-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w) = (host_tensor(s1, l1)?, host_tensor(s2, l2)?);
        let g = self.0;
        let y = x.conv2d(&w, g.padding, g.stride, g.dilation, 1)?;
        let shape = y.shape().clone();
        let flat = y.flatten_all()?;
        let storage = match y.dtype() {
            DType::F64 => CpuStorage::F64(flat.to_vec1()?),
            _ => CpuStorage::F32(flat.to_vec1()?),
        };
        Ok((storage, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let ConvGeometry {
            padding,
            stride,
            dilation,
        } = self.0;
        // Kernel gradient: the same convolution candle's own backward uses.
        let grad_w = x
            .transpose(0, 1)?
            .conv2d(&grad.transpose(0, 1)?, padding, dilation, stride, 1)?
            .transpose(0, 1)?;
        let (_, _, kh, kw) = w.dims4()?;
        let grad_w = grad_w.narrow(2, 0, kh)?.narrow(3, 0, kw)?;
        Ok((Some(input_gradient(x, w, grad, self.0)?), Some(grad_w)))
    }
}

/// `dL/dx` of `y = conv2d(x, w)` as a stride-1 convolution of the stride-dilated, padded
/// output gradient with the spatially flipped, in/out-transposed kernel.
fn input_gradient(x: &Tensor, w: &Tensor, grad: &Tensor, g: ConvGeometry) -> Result<Tensor> {
    let (_, _, h_in, w_in) = x.dims4()?;
    let (_, _, kh, kw) = w.dims4()?;
    let d = g.dilation;
    if g.padding > d * (kh - 1) || g.padding > d * (kw - 1) {
        // Padding wider than the kernel: fall back to the transposed convolution.
        let (_, _, gh, _) = grad.dims4()?;
        let out = (gh - 1) * g.stride + d * (kh - 1) + 1 - 2 * g.padding;
        return grad.conv_transpose2d(w, g.padding, h_in - out, g.stride, d);
    }
    let dilated = dilate(&dilate(grad, 2, g.stride)?, 3, g.stride)?;
    let (_, _, gh, gw) = dilated.dims4()?;
    let (lo_h, lo_w) = (d * (kh - 1) - g.padding, d * (kw - 1) - g.padding);
    let extra_h = h_in - (gh + d * (kh - 1) - 2 * g.padding);
    let extra_w = w_in - (gw + d * (kw - 1) - 2 * g.padding);
    let padded = dilated
        .pad_with_zeros(2, lo_h, lo_h + extra_h)?
        .pad_with_zeros(3, lo_w, lo_w + extra_w)?;
    let flipped = w.flip(&[2, 3])?.transpose(0, 1)?.contiguous()?;
    padded.conv2d(&flipped, 0, 1, d, 1)
}

/// Inserts `stride - 1` zeros between consecutive entries along `dim` (3 or 4 of a 4-D tensor).
fn dilate(t: &Tensor, dim: usize, stride: usize) -> Result<Tensor> {
    if stride == 1 {
        return Ok(t.clone());
    }
    let n = t.dim(dim)?;
    let mut zero_dims = t.dims().to_vec();
    zero_dims.insert(dim + 1, stride - 1);
    let zeros = Tensor::zeros(zero_dims, t.dtype(), t.device())?;
    let mut merged = t.dims().to_vec();
    merged[dim] = n * stride;
    Tensor::cat(&[t.unsqueeze(dim + 1)?, zeros], dim + 1)?
        .reshape(merged)?
        .narrow(dim, 0, (n - 1) * stride + 1)
}

/// `conv2d(x, w)` (no bias, one group) whose backward computes the input gradient with the
/// fast (im2col + GEMM) convolution instead of candle's `conv_transpose2d`. On CPU this is a
/// custom op; on other devices it is candle's `conv2d` (see issue 9 for GPU kernels).
///
/// # Shapes
/// `x: [B, C_in, H, W]`, `w: [C_out, C_in, kh, kw]` give `[B, C_out, H', W']`.
///
/// # Errors
/// Those of candle's `conv2d`.
pub fn conv2d_fast_backward(x: &Tensor, w: &Tensor, geometry: ConvGeometry) -> Result<Tensor> {
    if !x.device().is_cpu() || !matches!(x.dtype(), DType::F32 | DType::F64) {
        return x.conv2d(w, geometry.padding, geometry.stride, geometry.dilation, 1);
    }
    x.contiguous()?
        .apply_op2(&w.contiguous()?, FastConv2d(geometry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaekit_core::testing::assert_all_close;
    use vaekit_core::{NoiseSource, SeededNoise};

    /// Values and both gradients against candle's own conv2d, over strides, paddings,
    /// dilations, kernel sizes and odd spatial sizes.
    #[test]
    fn matches_candle_values_and_gradients() -> Result<()> {
        let mut noise = SeededNoise::new(0);
        let cases = [
            // (c_in, c_out, h, w, k, padding, stride, dilation)
            (3, 4, 8, 8, 3, 1, 1, 1),
            (2, 5, 9, 7, 3, 0, 2, 1),
            (4, 3, 10, 10, 5, 2, 2, 1),
            (2, 2, 11, 11, 3, 2, 1, 2),
            (3, 2, 7, 9, 1, 0, 1, 1),
            (2, 3, 14, 14, 3, 1, 2, 1),
            (2, 2, 6, 6, 3, 3, 1, 1),
        ];
        for (c_in, c_out, h, w_, k, padding, stride, dilation) in cases {
            let x =
                noise.standard_normal(&Shape::from((2, c_in, h, w_)), DType::F64, &Device::Cpu)?;
            let w = noise.standard_normal(
                &Shape::from((c_out, c_in, k, k)),
                DType::F64,
                &Device::Cpu,
            )?;
            let geometry = ConvGeometry {
                padding,
                stride,
                dilation,
            };
            let (xv, wv) = (candle::Var::from_tensor(&x)?, candle::Var::from_tensor(&w)?);
            let fast = conv2d_fast_backward(xv.as_tensor(), wv.as_tensor(), geometry)?;
            let plain = xv
                .as_tensor()
                .conv2d(wv.as_tensor(), padding, stride, dilation, 1)?;
            assert_all_close(&fast, &plain, 1e-12, 1e-12)?;
            let weights = noise.standard_normal(fast.shape(), DType::F64, &Device::Cpu)?;
            let gf = (fast * &weights)?.sum_all()?.backward()?;
            let gp = (plain * &weights)?.sum_all()?.backward()?;
            for v in [&xv, &wv] {
                let (a, b) = (gf.get(v.as_tensor()), gp.get(v.as_tensor()));
                assert_all_close(a.expect("fast grad"), b.expect("candle grad"), 1e-10, 1e-10)?;
            }
        }
        Ok(())
    }
}
