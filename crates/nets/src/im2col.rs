//! Convolution and transposed convolution as one GEMM each way, around differentiable
//! `im2col` / `col2im` CPU ops.
//!
//! candle 0.11's CPU `conv2d` builds its im2col tiles with a scalar, cache-unfriendly loop
//! (40 % of a 3x3 convolution's time in a profile) and its `conv_transpose2d` is a direct
//! loop. Here the patch matrix is laid out `[C·k·k, B·OH·OW]` (the batch folded into the
//! GEMM's long side), copied row by row from the input, so that:
//! - `conv2d(x, w) = W[O, C·k·k] · im2col(x)`, reshaped to `[B, O, OH, OW]`;
//! - `conv_transpose2d(x, w) = col2im(W[Ci, Co·k·k]ᵀ · x[Ci, B·H·W])`, its adjoint.
//!
//! `im2col` and `col2im` are each other's adjoints, so each is the other's backward, and
//! candle's matmul backward supplies the rest: every gradient is a GEMM plus one of the two.

use candle::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;
use vaekit_core::contiguous_part;

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

/// Work below this many elements stays on one thread.
const PARALLEL_MIN: usize = 1 << 16;

/// An image batch `[B, C, H, W]`, a square kernel and a geometry: the convolution's grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grid {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    g: ConvGeometry,
    oh: usize,
    ow: usize,
}

impl Grid {
    fn new(image: (usize, usize, usize, usize), k: usize, g: ConvGeometry) -> Result<Self> {
        let (b, c, h, w) = image;
        let span = g.dilation * (k.max(1) - 1) + 1;
        if g.stride == 0
            || g.dilation == 0
            || k == 0
            || h + 2 * g.padding < span
            || w + 2 * g.padding < span
        {
            candle::bail!(
                "im2col: kernel {k} (dilation {}) does not fit a {h}x{w} image padded by {} with stride {}",
                g.dilation,
                g.padding,
                g.stride
            );
        }
        let oh = (h + 2 * g.padding - span) / g.stride + 1;
        let ow = (w + 2 * g.padding - span) / g.stride + 1;
        Ok(Self {
            b,
            c,
            h,
            w,
            k,
            g,
            oh,
            ow,
        })
    }

    /// Columns of the patch matrix.
    fn n(&self) -> usize {
        self.b * self.oh * self.ow
    }

    /// Rows of the patch matrix.
    fn rows(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Input column for output column `o` and kernel column `kw`, if inside the image.
    #[inline]
    fn source(&self, o: usize, kk: usize, size: usize) -> Option<usize> {
        let i = (o * self.g.stride + kk * self.g.dilation) as isize - self.g.padding as isize;
        (i >= 0 && (i as usize) < size).then_some(i as usize)
    }

    /// The output columns `[lo, hi)` whose input column for `kw` lies inside the image.
    fn valid_columns(&self, kw: usize) -> (usize, usize) {
        let lo = (0..self.ow).find(|&o| self.source(o, kw, self.w).is_some());
        match lo {
            None => (0, 0),
            Some(lo) => {
                let hi = (lo..self.ow)
                    .take_while(|&o| self.source(o, kw, self.w).is_some())
                    .count();
                (lo, lo + hi)
            }
        }
    }

    /// Fills row `(c, kh, kw)` of the patch matrix from `x`.
    fn im2col_row<T: WithDType>(&self, row: usize, x: &[T], dst: &mut [T]) {
        let (c, kh, kw) = (
            row / (self.k * self.k),
            (row / self.k) % self.k,
            row % self.k,
        );
        let (lo, hi) = self.valid_columns(kw);
        for b in 0..self.b {
            for oy in 0..self.oh {
                let seg = &mut dst[(b * self.oh + oy) * self.ow..][..self.ow];
                let Some(iy) = self.source(oy, kh, self.h) else {
                    seg.fill(T::zero());
                    continue;
                };
                let src = &x[((b * self.c + c) * self.h + iy) * self.w..][..self.w];
                seg[..lo].fill(T::zero());
                seg[hi..].fill(T::zero());
                if self.g.stride == 1 {
                    let start = lo + kw * self.g.dilation - self.g.padding;
                    seg[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                } else {
                    for (o, v) in seg[lo..hi].iter_mut().enumerate() {
                        let ix = (lo + o) * self.g.stride + kw * self.g.dilation - self.g.padding;
                        *v = src[ix];
                    }
                }
            }
        }
    }

    /// Adds every patch entry of image `(b, c)` back into `dst: [H, W]`.
    fn col2im_image<T: WithDType>(&self, bc: usize, cols: &[T], dst: &mut [T]) {
        let (b, c) = (bc / self.c, bc % self.c);
        let n = self.n();
        for kh in 0..self.k {
            for kw in 0..self.k {
                let row = (c * self.k + kh) * self.k + kw;
                let (lo, hi) = self.valid_columns(kw);
                for oy in 0..self.oh {
                    let Some(iy) = self.source(oy, kh, self.h) else {
                        continue;
                    };
                    let src = &cols[row * n + (b * self.oh + oy) * self.ow..][..self.ow];
                    let out = &mut dst[iy * self.w..][..self.w];
                    if self.g.stride == 1 {
                        // A contiguous run: a slice add, which vectorizes.
                        let start = lo + kw * self.g.dilation - self.g.padding;
                        for (o, &v) in out[start..start + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                            *o += v;
                        }
                    } else {
                        for (o, &v) in src.iter().enumerate().take(hi).skip(lo) {
                            out[o * self.g.stride + kw * self.g.dilation - self.g.padding] += v;
                        }
                    }
                }
            }
        }
    }

    fn im2col<T: WithDType>(&self, x: &[T]) -> Vec<T> {
        let n = self.n();
        let mut out = vec![T::zero(); self.rows() * n];
        if out.len() >= PARALLEL_MIN {
            out.par_chunks_mut(n)
                .enumerate()
                .for_each(|(r, dst)| self.im2col_row(r, x, dst));
        } else {
            out.chunks_mut(n)
                .enumerate()
                .for_each(|(r, dst)| self.im2col_row(r, x, dst));
        }
        out
    }

    fn col2im<T: WithDType>(&self, cols: &[T]) -> Vec<T> {
        let hw = self.h * self.w;
        let mut out = vec![T::zero(); self.b * self.c * hw];
        if cols.len() >= PARALLEL_MIN {
            out.par_chunks_mut(hw)
                .enumerate()
                .for_each(|(bc, dst)| self.col2im_image(bc, cols, dst));
        } else {
            out.chunks_mut(hw)
                .enumerate()
                .for_each(|(bc, dst)| self.col2im_image(bc, cols, dst));
        }
        out
    }
}

/// `[B, C, H, W]` to the patch matrix `[C·k·k, B·OH·OW]`.
struct Im2Col(Grid);

/// The patch matrix back to `[B, C, H, W]`, overlapping entries summed.
struct Col2Im(Grid);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        if l.shape().dims() != [g.b, g.c, g.h, g.w] {
            candle::bail!("im2col: input {:?} is not the grid's image", l.shape());
        }
        let out = match s {
            CpuStorage::F32(v) => CpuStorage::F32(g.im2col(contiguous_part(v, l, "im2col")?)),
            CpuStorage::F64(v) => CpuStorage::F64(g.im2col(contiguous_part(v, l, "im2col")?)),
            _ => candle::bail!("im2col: f32 or f64 expected"),
        };
        Ok((out, Shape::from((g.rows(), g.n()))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Col2Im(self.0))?))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        if l.shape().dims() != [g.rows(), g.n()] {
            candle::bail!(
                "col2im: patch matrix {:?}, expected [{}, {}]",
                l.shape(),
                g.rows(),
                g.n()
            );
        }
        let out = match s {
            CpuStorage::F32(v) => CpuStorage::F32(g.col2im(contiguous_part(v, l, "col2im")?)),
            CpuStorage::F64(v) => CpuStorage::F64(g.col2im(contiguous_part(v, l, "col2im")?)),
            _ => candle::bail!("col2im: f32 or f64 expected"),
        };
        Ok((out, Shape::from((g.b, g.c, g.h, g.w))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Im2Col(self.0))?))
    }
}

/// `conv2d(x, w)` (one group, no bias) as `W · im2col(x)`; candle's `conv2d` off the CPU.
///
/// # Shapes
/// `x: [B, C, H, W]`, `w: [O, C, k, k]` give `[B, O, OH, OW]`,
/// `OH = (H + 2p - d(k - 1) - 1) / s + 1`.
///
/// # Errors
/// Mismatched channels, a non-square kernel, a kernel larger than the padded image.
pub fn conv2d_gemm(x: &Tensor, w: &Tensor, geometry: ConvGeometry) -> Result<Tensor> {
    if !vaekit_core::has_cpu_kernel(x) {
        return x.conv2d(w, geometry.padding, geometry.stride, geometry.dilation, 1);
    }
    let (o, c, kh, kw) = w.dims4()?;
    if kh != kw || x.dim(1)? != c {
        candle::bail!(
            "conv2d_gemm: input {:?} and kernel {:?} do not match (square kernels only)",
            x.dims(),
            w.dims()
        );
    }
    let grid = Grid::new(x.dims4()?, kh, geometry)?;
    let cols = x.contiguous()?.apply_op1(Im2Col(grid))?;
    w.reshape((o, grid.rows()))?
        .matmul(&cols)?
        .reshape((o, grid.b, grid.oh, grid.ow))?
        .permute((1, 0, 2, 3))?
        .contiguous()
}

/// `conv_transpose2d(x, w)` (one group, no bias, dilation 1) as `col2im(Wᵀ · x)`; candle's
/// `conv_transpose2d` off the CPU.
///
/// # Shapes
/// `x: [B, Ci, H, W]`, `w: [Ci, Co, k, k]` give `[B, Co, OH, OW]`,
/// `OH = (H - 1) s - 2p + k + output_padding`.
///
/// # Errors
/// Mismatched channels, a non-square kernel, `output_padding >= stride`, a padding larger
/// than the output.
pub fn conv_transpose2d_gemm(
    x: &Tensor,
    w: &Tensor,
    padding: usize,
    stride: usize,
    output_padding: usize,
) -> Result<Tensor> {
    if !vaekit_core::has_cpu_kernel(x) {
        return x.conv_transpose2d(w, padding, output_padding, stride, 1);
    }
    let (ci, co, kh, kw) = w.dims4()?;
    let (b, c, h, wd) = x.dims4()?;
    if kh != kw || c != ci || output_padding >= stride.max(1) {
        candle::bail!(
            "conv_transpose2d_gemm: input {:?}, kernel {:?}, output padding {output_padding}, stride {stride}",
            x.dims(),
            w.dims()
        );
    }
    let full = |n: usize| (n - 1) * stride + kh + output_padding;
    let (oh, ow) = (full(h), full(wd));
    if oh <= 2 * padding || ow <= 2 * padding {
        candle::bail!("conv_transpose2d_gemm: padding {padding} leaves no output");
    }
    let geometry = ConvGeometry {
        padding,
        stride,
        dilation: 1,
    };
    let grid = Grid::new((b, co, oh - 2 * padding, ow - 2 * padding), kh, geometry)?;
    if (grid.oh, grid.ow) != (h, wd) {
        candle::bail!(
            "conv_transpose2d_gemm: inconsistent geometry for input {:?}",
            x.dims()
        );
    }
    let xf = x
        .permute((1, 0, 2, 3))?
        .contiguous()?
        .reshape((ci, b * h * wd))?;
    w.reshape((ci, grid.rows()))?
        .t()?
        .matmul(&xf)?
        .apply_op1(Col2Im(grid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::{DType, Device, Var};
    use vaekit_core::testing::assert_all_close;
    use vaekit_core::{NoiseSource, SeededNoise};

    /// Values and the gradients of input and kernel (of a weighted sum of the output)
    /// against `reference`, in f64.
    fn check(
        x: &Tensor,
        w: &Tensor,
        ours: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
        reference: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
    ) -> Result<()> {
        let run = |f: &dyn Fn(&Tensor, &Tensor) -> Result<Tensor>| -> Result<Vec<Tensor>> {
            let (xv, wv) = (Var::from_tensor(x)?, Var::from_tensor(w)?);
            let y = f(xv.as_tensor(), wv.as_tensor())?;
            let weights = Tensor::arange(0f64, y.elem_count() as f64, x.device())?
                .affine(0.37, 0.0)?
                .sin()?
                .reshape(y.shape())?;
            let g = (&y * &weights)?.sum_all()?.backward()?;
            let gx = vaekit_core::testing::gradient_of(&g, xv.as_tensor())?;
            let gw = vaekit_core::testing::gradient_of(&g, wv.as_tensor())?;
            Ok(vec![y, gx, gw])
        };
        for (a, b) in run(&ours)?.iter().zip(run(&reference)?.iter()) {
            assert_eq!(a.dims(), b.dims());
            assert_all_close(a, b, 1e-10, 1e-10)?;
        }
        Ok(())
    }

    #[test]
    fn conv2d_matches_candle() -> Result<()> {
        let mut noise = SeededNoise::new(3);
        // (c_in, c_out, h, w, k, padding, stride, dilation)
        for (ci, co, h, wd, k, p, s, d) in [
            (3, 4, 8, 8, 3, 1, 1, 1),
            (2, 5, 9, 7, 3, 0, 2, 1),
            (4, 3, 10, 10, 5, 2, 2, 1),
            (2, 2, 11, 11, 3, 2, 1, 2),
            (3, 2, 7, 9, 1, 0, 1, 1),
            (2, 3, 14, 14, 3, 1, 2, 1),
            (2, 2, 6, 6, 3, 3, 1, 1),
        ] {
            let x = noise.standard_normal(&(2, ci, h, wd).into(), DType::F64, &Device::Cpu)?;
            let w = noise.standard_normal(&(co, ci, k, k).into(), DType::F64, &Device::Cpu)?;
            let g = ConvGeometry {
                padding: p,
                stride: s,
                dilation: d,
            };
            check(
                &x,
                &w,
                |x, w| conv2d_gemm(x, w, g),
                |x, w| x.conv2d(w, p, s, d, 1),
            )?;
        }
        Ok(())
    }

    #[test]
    fn conv_transpose2d_matches_candle() -> Result<()> {
        let mut noise = SeededNoise::new(4);
        // (c_in, c_out, h, w, k, padding, stride, output_padding)
        for (ci, co, h, wd, k, p, s, op) in [
            (3, 4, 7, 7, 3, 1, 2, 1),
            (2, 3, 5, 6, 3, 0, 1, 0),
            (4, 2, 4, 4, 5, 2, 2, 0),
            (2, 2, 7, 7, 3, 1, 2, 0),
            (3, 3, 3, 5, 1, 0, 2, 1),
        ] {
            let x = noise.standard_normal(&(2, ci, h, wd).into(), DType::F64, &Device::Cpu)?;
            let w = noise.standard_normal(&(ci, co, k, k).into(), DType::F64, &Device::Cpu)?;
            check(
                &x,
                &w,
                |x, w| conv_transpose2d_gemm(x, w, p, s, op),
                |x, w| x.conv_transpose2d(w, p, op, s, 1),
            )?;
        }
        Ok(())
    }

    #[test]
    fn bad_geometry_is_an_error() -> Result<()> {
        let x = Tensor::zeros((1, 2, 3, 3), DType::F32, &Device::Cpu)?;
        let w = Tensor::zeros((4, 2, 5, 5), DType::F32, &Device::Cpu)?;
        assert!(conv2d_gemm(&x, &w, ConvGeometry::default()).is_err());
        let w3 = Tensor::zeros((4, 3, 3, 3), DType::F32, &Device::Cpu)?;
        assert!(conv2d_gemm(&x, &w3, ConvGeometry::default()).is_err());
        let wt = Tensor::zeros((2, 4, 3, 3), DType::F32, &Device::Cpu)?;
        assert!(conv_transpose2d_gemm(&x, &wt, 0, 2, 2).is_err());
        Ok(())
    }
}
