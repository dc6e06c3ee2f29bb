//! Convolution and transposed convolution on CPU as one small GEMM per image.
//!
//! A convolution `y = conv(x, W)` is bilinear, and its three maps are:
//! - forward: `y[b] = W · im2col(x[b])`, with `W: [O, C·k·k]`;
//! - data gradient: `dx[b] = col2im(Wᵀ · dy[b])`, which is also the transposed convolution;
//! - weight gradient: `dW = Σ_b dy[b] · im2col(x[b])ᵀ`.
//!
//! [`ConvOp`] computes any one of them, and its backward is the other two, so every
//! gradient (of any order) runs on the same kernels. Each image's patch matrix lives in a
//! per-task scratch buffer that stays in cache for its GEMM, and `W · cols` lands directly
//! in the `[B, O, OH, OW]` output: no batch-wide patch matrix (14 MiB for 64 channels, 3x3,
//! batch 32 at 14x14), no permutation copy. Images run in parallel, each GEMM on one
//! thread; a single image runs its GEMMs threaded instead.
//!
//! The weight gradient sums images in fixed blocks of [`IMAGE_BLOCK`], then the blocks in
//! order, so its rounding does not depend on the thread count.
//!
//! In f32, the three maps of a convolution with an odd kernel, padding `(k - 1) / 2`,
//! dilation 1 and stride 1 (or 2 on even images) skip the patch matrix and the GEMM where
//! the CPU has AVX-512F and images run in parallel: [`DirectConv`] computes them from
//! zero-bordered phase planes (`conv_direct/`). That covers the ResNet blocks, their
//! downsampling and the stride-2 transposed convolutions.

use crate::FusedActivation;
use crate::conv_direct::DirectConv;
use crate::gemm::{Accumulate, MatRef, gemm_into};
use crate::im2col::IMAGE_BLOCK;
use crate::im2col::{ConvGeometry, Grid};
use candle::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

/// Multiply-adds below which images run in order, with threaded GEMMs.
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// Which of a convolution's three bilinear maps a [`ConvOp`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Map {
    /// `(x [B, C, H, W], w [O, C, k, k])` to `y [B, O, OH, OW]`.
    Forward,
    /// `(dy [B, O, OH, OW], w [O, C, k, k])` to `dx [B, C, H, W]`.
    DataGrad,
    /// `(x [B, C, H, W], dy [B, O, OH, OW])` to `dw [O, C, k, k]`.
    WeightGrad,
}

/// One map of the convolution on `grid` with `o` output channels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvOp {
    grid: Grid,
    o: usize,
    map: Map,
    /// An activation applied to the image `x` before it is convolved (the forward map and
    /// the weight gradient, f32 only): `conv(f(x), w)` without `f(x)` as a tensor.
    pre: Option<FusedActivation>,
}

impl ConvOp {
    /// The map `map` of the same convolution, its image pre-activated by `pre`.
    fn to(self, map: Map, pre: Option<FusedActivation>) -> Self {
        Self { map, pre, ..self }
    }

    /// This op with its image pre-activated by `pre` (the forward map only).
    pub(crate) fn pre_activated(self, pre: Option<FusedActivation>) -> Self {
        Self { pre, ..self }
    }

    /// The shapes of the two arguments and of the result.
    fn shapes(&self) -> [Shape; 3] {
        let g = &self.grid;
        let image = Shape::from((g.b, g.c, g.h, g.w));
        let out = Shape::from((g.b, self.o, g.oh, g.ow));
        let weight = Shape::from((self.o, g.c, g.k, g.k));
        match self.map {
            Map::Forward => [image, weight, out],
            Map::DataGrad => [out, weight, image],
            Map::WeightGrad => [image, out, weight],
        }
    }

    /// Whether images run in parallel (each GEMM on one thread).
    fn images_in_parallel(&self) -> bool {
        let g = &self.grid;
        g.b > 1 && g.b * self.o * g.rows() * g.ohw() >= PARALLEL_MIN_MACS
    }

    /// The direct form of the convolution, where its f32 maps run on it: images in parallel
    /// and a geometry and CPU [`DirectConv`] covers.
    fn direct(&self) -> Option<DirectConv> {
        match self.images_in_parallel() {
            true => DirectConv::new(&self.grid, self.o),
            false => None,
        }
    }

    /// Channels of the result's axis 1 (what a bias must have).
    pub(crate) fn out_channels(&self) -> usize {
        match self.map {
            Map::Forward => self.o,
            _ => self.grid.c,
        }
    }

    /// The map of the CPU arguments `(s1, l1)` and `(s2, l2)` (f32 or f64, of the shapes
    /// [`Self::shapes`] gives), plus `bias` per output channel when given.
    ///
    /// # Errors
    /// Other shapes or dtypes.
    pub(crate) fn compute(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let [a, b, out] = self.shapes();
        let name = self.name();
        if l1.shape() != &a || l2.shape() != &b {
            candle::bail!(
                "{name}: arguments {:?} and {:?}, expected {a:?} and {b:?}",
                l1.shape(),
                l2.shape()
            );
        }
        if let Some((_, l)) = bias
            && (self.map == Map::WeightGrad || l.shape().elem_count() != self.out_channels())
        {
            candle::bail!("{name}: bias {:?} for {out:?}", l.shape());
        }
        use crate::contiguous_part as part;
        let result = match (s1, s2, bias) {
            (CpuStorage::F32(a), CpuStorage::F32(b), bias) => {
                let bias = match bias {
                    Some((CpuStorage::F32(v), l)) => Some(part(v, l, name)?),
                    Some(_) => candle::bail!("{name}: a bias of another dtype"),
                    None => None,
                };
                CpuStorage::F32(self.run_f32(part(a, l1, name)?, part(b, l2, name)?, bias)?)
            }
            (CpuStorage::F64(a), CpuStorage::F64(b), bias) => {
                if self.pre.is_some() {
                    candle::bail!("{name}: a pre-activation needs f32");
                }
                let bias = match bias {
                    Some((CpuStorage::F64(v), l)) => Some(part(v, l, name)?),
                    Some(_) => candle::bail!("{name}: a bias of another dtype"),
                    None => None,
                };
                CpuStorage::F64(self.run(part(a, l1, name)?, part(b, l2, name)?, bias)?)
            }
            _ => candle::bail!("{name}: f32 or f64 of one dtype expected"),
        };
        Ok((result, out))
    }

    fn run<T: WithDType>(&self, a: &[T], b: &[T], bias: Option<&[T]>) -> Result<Vec<T>> {
        match self.map {
            Map::Forward => self.forward(a, b, bias),
            Map::DataGrad => self.data_grad(a, b, bias),
            Map::WeightGrad => self.weight_grad(a, b),
        }
    }

    /// [`Self::run`] in f32: the three maps run direct ([`DirectConv`]) where it applies
    /// and images run in parallel.
    fn run_f32(&self, a: &[f32], b: &[f32], bias: Option<&[f32]>) -> Result<Vec<f32>> {
        let g = &self.grid;
        let direct = self.direct();
        let pre = match self.map {
            Map::DataGrad => None,
            _ => self.pre,
        };
        let Some(conv) = direct.map(|c| c.pre_activated(pre)) else {
            return match pre {
                Some(f) => self.run(&f.apply_f32(a), b, bias),
                None => self.run(a, b, bias),
            };
        };
        let (x_len, y_len) = (g.image_len(), self.o * g.ohw());
        let (forward, src_len, out_len) = match self.map {
            Map::Forward => (true, x_len, y_len),
            Map::DataGrad => (false, y_len, x_len),
            Map::WeightGrad => return self.weight_grad_direct(conv, a, b),
        };
        let job = conv.job(forward, b);
        let mut out = vec![0f32; g.b * out_len];
        self.each(
            &mut out,
            out_len,
            conv.scratch_len(&job),
            |i, oi, scratch, _| {
                conv.image(&job, &a[i * src_len..][..src_len], oi, scratch);
                add_bias(oi, bias);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// The weight gradient on [`DirectConv`]'s tile, summed over images in the blocks and
    /// order of [`Self::weight_grad`].
    fn weight_grad_direct(&self, conv: DirectConv, x: &[f32], dy: &[f32]) -> Result<Vec<f32>> {
        let g = &self.grid;
        let (len, dy_len, size) = (g.image_len(), self.o * g.ohw(), conv.wg_partial_len());
        let blocks = g.b.div_ceil(IMAGE_BLOCK).max(1);
        let mut partial = vec![0f32; blocks * size];
        self.each(
            &mut partial,
            size,
            conv.wg_scratch_len(),
            |blk, part, scratch, _| {
                for i in blk * IMAGE_BLOCK..((blk + 1) * IMAGE_BLOCK).min(g.b) {
                    let (xi, dyi) = (&x[i * len..][..len], &dy[i * dy_len..][..dy_len]);
                    conv.weight_grad_image(xi, dyi, part, scratch);
                }
                Ok(())
            },
        )?;
        Ok(conv.weight_grad_sum(&partial))
    }

    /// Calls `f(i, out_i, scratch, threaded)` for the `chunk`-sized pieces of `out` in
    /// parallel (each task reusing one `scratch` buffer of `scratch_len`) or in order.
    fn each<T: WithDType>(
        &self,
        out: &mut [T],
        chunk: usize,
        scratch_len: usize,
        f: impl Fn(usize, &mut [T], &mut [T], bool) -> Result<()> + Sync,
    ) -> Result<()> {
        let chunk = chunk.max(1);
        if self.images_in_parallel() {
            // A few tasks per thread, each allocating its scratch once.
            let pieces = out.len().div_ceil(chunk);
            let per_task = pieces.div_ceil(4 * rayon::current_num_threads()).max(1);
            out.par_chunks_mut(chunk * per_task)
                .enumerate()
                .try_for_each(|(t, group)| {
                    let mut scratch = vec![T::zero(); scratch_len];
                    group
                        .chunks_mut(chunk)
                        .enumerate()
                        .try_for_each(|(j, piece)| f(t * per_task + j, piece, &mut scratch, false))
                })
        } else {
            let mut scratch = vec![T::zero(); scratch_len];
            out.chunks_mut(chunk)
                .enumerate()
                .try_for_each(|(i, piece)| f(i, piece, &mut scratch, true))
        }
    }

    fn forward<T: WithDType>(&self, x: &[T], w: &[T], bias: Option<&[T]>) -> Result<Vec<T>> {
        let (g, o) = (&self.grid, self.o);
        let (rows, ohw, len) = (g.rows(), g.ohw(), g.image_len());
        let mut y = vec![T::zero(); g.b * o * ohw];
        let w = MatRef::row_major(w, o, rows);
        self.each(&mut y, o * ohw, rows * ohw, |i, yi, cols, threaded| {
            g.im2col_image(&x[i * len..][..len], cols);
            let cols = MatRef::row_major(cols, rows, ohw);
            gemm_into(yi, w, cols, Accumulate::No, threaded)?;
            add_bias(yi, bias);
            Ok(())
        })?;
        Ok(y)
    }

    fn data_grad<T: WithDType>(&self, dy: &[T], w: &[T], bias: Option<&[T]>) -> Result<Vec<T>> {
        let (g, o) = (&self.grid, self.o);
        let (rows, ohw, len) = (g.rows(), g.ohw(), g.image_len());
        let mut dx = vec![T::zero(); g.b * len];
        let wt = MatRef::row_major(w, o, rows).t();
        self.each(&mut dx, len, rows * ohw, |i, dxi, cols, threaded| {
            let dyi = MatRef::row_major(&dy[i * o * ohw..][..o * ohw], o, ohw);
            gemm_into(cols, wt, dyi, Accumulate::No, threaded)?;
            g.col2im_image(cols, dxi);
            add_bias(dxi, bias);
            Ok(())
        })?;
        Ok(dx)
    }

    fn weight_grad<T: WithDType>(&self, x: &[T], dy: &[T]) -> Result<Vec<T>> {
        let (g, o) = (&self.grid, self.o);
        let (rows, ohw, len) = (g.rows(), g.ohw(), g.image_len());
        let size = o * rows;
        let blocks = g.b.div_ceil(IMAGE_BLOCK).max(1);
        let mut partial = vec![T::zero(); blocks * size];
        self.each(&mut partial, size, rows * ohw, |blk, dw, cols, threaded| {
            let end = ((blk + 1) * IMAGE_BLOCK).min(g.b);
            for i in blk * IMAGE_BLOCK..end {
                g.im2col_image(&x[i * len..][..len], cols);
                let dyi = MatRef::row_major(&dy[i * o * ohw..][..o * ohw], o, ohw);
                let colst = MatRef::row_major(&*cols, rows, ohw).t();
                gemm_into(dw, dyi, colst, Accumulate::Yes, threaded)?;
            }
            Ok(())
        })?;
        let (first, rest) = partial.split_at_mut(size);
        for block in rest.chunks_exact(size) {
            for (a, &b) in first.iter_mut().zip(block) {
                *a += b;
            }
        }
        partial.truncate(size);
        Ok(partial)
    }
}

/// `out += bias[c]` over each channel plane of one image `out: [C, ...]`, when given.
fn add_bias<T: WithDType>(out: &mut [T], bias: Option<&[T]>) {
    let Some(bias) = bias.filter(|b| !b.is_empty()) else {
        return;
    };
    for (plane, &b) in out.chunks_exact_mut(out.len() / bias.len()).zip(bias) {
        for v in plane {
            *v += b;
        }
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        match self.map {
            Map::Forward => "conv2d-gemm",
            Map::DataGrad => "conv2d-data-grad",
            Map::WeightGrad => "conv2d-weight-grad",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.compute((s1, l1), (s2, l2), None)
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        self.grads(a, b, grad)
    }
}

impl ConvOp {
    /// The gradients of the map's two arguments for the result's gradient `grad`, each
    /// only when autograd tracks its argument: the other two maps.
    ///
    /// # Errors
    /// As the maps.
    pub(crate) fn grads(
        &self,
        a: &Tensor,
        b: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (da, db, _) = self.grads_with_bias(a, b, grad, false)?;
        Ok((da, db))
    }

    /// [`Self::grads`], and with `bias` the gradient `[channels]` of a per-channel bias
    /// added to the result (its channel sums).
    ///
    /// # Errors
    /// As the maps.
    pub(crate) fn grads_with_bias(
        &self,
        a: &Tensor,
        b: &Tensor,
        grad: &Tensor,
        bias: bool,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == candle::DType::F32;
        if self.map != Map::WeightGrad
            && a.track_op()
            && b.track_op()
            && [a, b, &grad].into_iter().all(f32_cpu)
            && !crate::second_order_gradients()
            && let Some(conv) = self.direct()
        {
            // All gradients in one pass over the images (`conv_grads.rs`). A pre-activation
            // belongs to the forward map's image only (as in `run_f32`). The bias sums go
            // along unless the gradient's planes are single pixels, whose channel sums
            // `bias_grad` blocks differently (over rows of channels).
            let (transposed, g) = (self.map == Map::DataGrad, &self.grid);
            let plane = if transposed { g.h * g.w } else { g.oh * g.ow };
            let op = crate::conv_grads::ConvGrads {
                grid: self.grid,
                conv: conv.pre_activated(if transposed { None } else { self.pre }),
                transposed,
                bias: bias && plane > 1,
            };
            let (da, db, dbias) = crate::conv_grads::conv_grads(op, (&grad, a, b))?;
            let dbias = match (bias, dbias) {
                (true, None) => Some(crate::channel_affine::bias_grad(&grad)?),
                (_, d) => d,
            };
            let da = match self.pre {
                // The gradient reaching f(x), times f'(x) (f(x) recomputed in the same pass).
                Some(f) if self.map == Map::Forward => f.grad_from_input(a, &da)?,
                _ => da,
            };
            return Ok((Some(da), Some(db), dbias));
        }
        // (map for a's gradient, its arguments), (map for b's, its arguments); a
        // pre-activation stays with the image `x` (argument a of the forward map and of
        // the weight gradient).
        let (pre, none) = (self.pre, None);
        let (da, db) = match self.map {
            Map::Forward => (
                (Map::DataGrad, &grad, b, none),
                (Map::WeightGrad, a, &grad, pre),
            ),
            Map::DataGrad => (
                (Map::Forward, &grad, b, none),
                (Map::WeightGrad, &grad, a, none),
            ),
            Map::WeightGrad => (
                (Map::DataGrad, b, &grad, none),
                (Map::Forward, a, &grad, pre),
            ),
        };
        let apply = |tracked: bool, (map, u, v, pre): (Map, &Tensor, &Tensor, _)| -> Result<_> {
            if tracked {
                Ok(Some(u.apply_op2(v, self.to(map, pre))?))
            } else {
                Ok(None)
            }
        };
        let da = match (apply(a.track_op(), da)?, self.pre) {
            // The gradient reaching f(x), times f'(x) (f(x) recomputed in the same pass).
            (Some(d), Some(f)) if self.map != Map::DataGrad => Some(f.grad_from_input(a, &d)?),
            (d, _) => d,
        };
        let dbias = match bias {
            true => Some(crate::channel_affine::bias_grad(&grad)?),
            false => None,
        };
        Ok((da, apply(b.track_op(), db)?, dbias))
    }
}

/// `conv2d(x, w)` (one group, no bias): one GEMM per image on CPU (the module docs);
/// candle's `conv2d` elsewhere.
///
/// # Shapes
/// `x: [B, C, H, W]`, `w: [O, C, k, k]` give `[B, O, OH, OW]`,
/// `OH = (H + 2p - d(k - 1) - 1) / s + 1`.
///
/// # Errors
/// Mismatched channels, a non-square kernel, a kernel larger than the padded image.
pub fn conv2d_gemm(x: &Tensor, w: &Tensor, geometry: ConvGeometry) -> Result<Tensor> {
    if !crate::has_cpu_kernel(x) {
        return x.conv2d(w, geometry.padding, geometry.stride, geometry.dilation, 1);
    }
    x.contiguous()?
        .apply_op2(&w.contiguous()?, conv2d_op(x, w, geometry)?)
}

/// The forward map of `conv2d(x, w)`, its shapes checked (see [`conv2d_gemm`]).
///
/// # Errors
/// As [`conv2d_gemm`].
pub(crate) fn conv2d_op(x: &Tensor, w: &Tensor, geometry: ConvGeometry) -> Result<ConvOp> {
    let (o, c, kh, kw) = w.dims4()?;
    if kh != kw || x.dim(1)? != c {
        candle::bail!(
            "conv2d_gemm: input {:?} and kernel {:?} do not match (square kernels only)",
            x.dims(),
            w.dims()
        );
    }
    Ok(ConvOp {
        grid: Grid::new(x.dims4()?, kh, geometry)?,
        o,
        map: Map::Forward,
        pre: None,
    })
}

/// `conv_transpose2d(x, w)` (one group, no bias, dilation 1): the data gradient of the
/// convolution whose output `x` is, one GEMM per image on CPU; candle's `conv_transpose2d`
/// elsewhere.
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
    if !crate::has_cpu_kernel(x) {
        return x.conv_transpose2d(w, padding, output_padding, stride, 1);
    }
    let op = conv_transpose2d_op(x, w, padding, stride, output_padding)?;
    x.contiguous()?.apply_op2(&w.contiguous()?, op)
}

/// The data-gradient map that is `conv_transpose2d(x, w)`, its shapes checked (see
/// [`conv_transpose2d_gemm`]).
///
/// # Errors
/// As [`conv_transpose2d_gemm`].
pub(crate) fn conv_transpose2d_op(
    x: &Tensor,
    w: &Tensor,
    padding: usize,
    stride: usize,
    output_padding: usize,
) -> Result<ConvOp> {
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
    Ok(ConvOp {
        grid,
        o: ci,
        map: Map::DataGrad,
        pre: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_all_close;
    use candle::{DType, Device, Var};
    use vaekit_core::{NoiseSource, SeededNoise};

    /// Values and the gradients of input and kernel (of a weighted sum of the output)
    /// against `reference`, in f64.
    fn check(
        x: &Tensor,
        w: &Tensor,
        ours: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
        reference: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
    ) -> Result<()> {
        check_to(x, w, ours, reference, 1e-10)
    }

    /// [`check`] with tolerance `tol`, `ours` running in `x`'s dtype and `reference` in
    /// f64.
    fn check_to(
        x: &Tensor,
        w: &Tensor,
        ours: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
        reference: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
        tol: f64,
    ) -> Result<()> {
        type Map<'a> = &'a dyn Fn(&Tensor, &Tensor) -> Result<Tensor>;
        let run = |f: Map, x: &Tensor, w: &Tensor| -> Result<Vec<Tensor>> {
            let (xv, wv) = (Var::from_tensor(x)?, Var::from_tensor(w)?);
            let y = f(xv.as_tensor(), wv.as_tensor())?;
            let weights = Tensor::arange(0f64, y.elem_count() as f64, x.device())?
                .affine(0.37, 0.0)?
                .sin()?
                .reshape(y.shape())?
                .to_dtype(y.dtype())?;
            let g = (&y * &weights)?.sum_all()?.backward()?;
            let gx = crate::testing::gradient_of(&g, xv.as_tensor())?;
            let gw = crate::testing::gradient_of(&g, wv.as_tensor())?;
            [y, gx, gw]
                .map(|t| t.to_dtype(DType::F64))
                .into_iter()
                .collect()
        };
        let (x64, w64) = (x.to_dtype(DType::F64)?, w.to_dtype(DType::F64)?);
        for (a, b) in run(&ours, x, w)?
            .iter()
            .zip(run(&reference, &x64, &w64)?.iter())
        {
            assert_eq!(a.dims(), b.dims());
            assert_all_close(a, b, tol, tol)?;
        }
        Ok(())
    }

    #[test]
    fn conv2d_matches_candle() -> Result<()> {
        let mut noise = SeededNoise::new(3);
        // (batch, c_in, c_out, h, w, k, padding, stride, dilation); the last two run images
        // in parallel, 9 images making two full weight-gradient blocks and a partial one.
        for (n, ci, co, h, wd, k, p, s, d) in [
            (2, 3, 4, 8, 8, 3, 1, 1, 1),
            (2, 2, 5, 9, 7, 3, 0, 2, 1),
            (2, 4, 3, 10, 10, 5, 2, 2, 1),
            (2, 2, 2, 11, 11, 3, 2, 1, 2),
            (2, 3, 2, 7, 9, 1, 0, 1, 1),
            (2, 2, 3, 14, 14, 3, 1, 2, 1),
            (2, 2, 2, 6, 6, 3, 3, 1, 1),
            (1, 3, 2, 5, 5, 3, 1, 1, 1),
            (9, 8, 6, 12, 12, 3, 1, 1, 1),
            (5, 6, 7, 13, 11, 3, 1, 2, 1),
        ] {
            let x = noise.standard_normal(&(n, ci, h, wd).into(), DType::F64, &Device::Cpu)?;
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

    /// f32 on the direct path where the CPU has AVX-512F ([`DirectConv`]: batches large
    /// enough to run images in parallel), against candle's f64 `conv2d` and
    /// `conv_transpose2d`: stride 1, stride 2, and the stride-2 transposed convolution.
    #[test]
    fn f32_direct_path_matches_candle() -> Result<()> {
        let mut noise = SeededNoise::new(8);
        let dev = &Device::Cpu;
        for (n, ci, co, h, k, s) in [
            (8, 16, 16, 14, 3, 1),
            (6, 12, 20, 9, 5, 1),
            (8, 16, 24, 14, 3, 2),
        ] {
            let x = noise.standard_normal(&(n, ci, h, h).into(), DType::F32, dev)?;
            let w = noise.standard_normal(&(co, ci, k, k).into(), DType::F32, dev)?;
            let p = (k - 1) / 2;
            let g = ConvGeometry {
                padding: p,
                stride: s,
                dilation: 1,
            };
            let op = ConvOp {
                grid: Grid::new(x.dims4()?, k, g)?,
                o: co,
                map: Map::Forward,
                pre: None,
            };
            assert!(op.images_in_parallel(), "the test misses the direct path");
            check_to(
                &x,
                &w,
                |x, w| conv2d_gemm(x, w, g),
                |x, w| x.conv2d(w, p, s, 1, 1),
                1e-3,
            )?;
        }
        // 7x7 -> 14x14, as in the ResNet decoder's upsampling.
        let x = noise.standard_normal(&(8, 24, 7, 7).into(), DType::F32, dev)?;
        let w = noise.standard_normal(&(24, 16, 3, 3).into(), DType::F32, dev)?;
        check_to(
            &x,
            &w,
            |x, w| conv_transpose2d_gemm(x, w, 1, 2, 1),
            |x, w| x.conv_transpose2d(w, 1, 1, 2, 1),
            1e-3,
        )
    }

    #[test]
    fn conv_transpose2d_matches_candle() -> Result<()> {
        let mut noise = SeededNoise::new(4);
        // (batch, c_in, c_out, h, w, k, padding, stride, output_padding); the last runs
        // images in parallel.
        for (n, ci, co, h, wd, k, p, s, op) in [
            (2, 3, 4, 7, 7, 3, 1, 2, 1),
            (2, 2, 3, 5, 6, 3, 0, 1, 0),
            (2, 4, 2, 4, 4, 5, 2, 2, 0),
            (2, 2, 2, 7, 7, 3, 1, 2, 0),
            (2, 3, 3, 3, 5, 1, 0, 2, 1),
            (6, 8, 8, 7, 7, 3, 1, 2, 1),
        ] {
            let x = noise.standard_normal(&(n, ci, h, wd).into(), DType::F64, &Device::Cpu)?;
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

    /// The weight-gradient map alone, and its own gradients (the second-order path):
    /// `WG(x, dy) = ∂/∂w Σ conv(x, w) ⊙ dy`, and `<G, WG(x, dy)> = Σ conv(x, G) ⊙ dy`, whose
    /// gradients in `x` and `dy` candle's `conv2d` supplies.
    #[test]
    fn weight_gradient_map_and_its_gradients_match_candle() -> Result<()> {
        let mut noise = SeededNoise::new(5);
        let dev = &Device::Cpu;
        for (n, ci, co, h, k, p, s) in [(3, 2, 3, 6, 3, 1, 1), (6, 5, 4, 9, 3, 1, 2)] {
            let g = ConvGeometry {
                padding: p,
                stride: s,
                dilation: 1,
            };
            let x = Var::from_tensor(&noise.standard_normal(
                &(n, ci, h, h).into(),
                DType::F64,
                dev,
            )?)?;
            let w = noise.standard_normal(&(co, ci, k, k).into(), DType::F64, dev)?;
            let gw = noise.standard_normal(&(co, ci, k, k).into(), DType::F64, dev)?;
            let oh = (h + 2 * p - k) / s + 1;
            let dy = Var::from_tensor(&noise.standard_normal(
                &(n, co, oh, oh).into(),
                DType::F64,
                dev,
            )?)?;
            let op = ConvOp {
                grid: Grid::new(x.dims4()?, k, g)?,
                o: co,
                map: Map::WeightGrad,
                pre: None,
            };
            // The value against candle's own weight gradient.
            let wv = Var::from_tensor(&w)?;
            let reference = (x.as_tensor().conv2d(wv.as_tensor(), p, s, 1, 1)? * dy.as_tensor())?
                .sum_all()?
                .backward()?;
            let got = x.as_tensor().apply_op2(dy.as_tensor(), op)?;
            assert_all_close(
                &got,
                &crate::testing::gradient_of(&reference, wv.as_tensor())?,
                1e-10,
                1e-10,
            )?;
            // Its gradients in both arguments.
            let ours = (&got * &gw)?.sum_all()?.backward()?;
            let theirs = (x.as_tensor().conv2d(&gw, p, s, 1, 1)? * dy.as_tensor())?
                .sum_all()?
                .backward()?;
            for v in [&x, &dy] {
                assert_all_close(
                    &crate::testing::gradient_of(&ours, v.as_tensor())?,
                    &crate::testing::gradient_of(&theirs, v.as_tensor())?,
                    1e-10,
                    1e-10,
                )?;
            }
        }
        Ok(())
    }

    /// f32 results and gradients are bit-identical on one rayon thread and on three.
    #[test]
    fn results_do_not_depend_on_the_thread_count() -> Result<()> {
        let mut noise = SeededNoise::new(6);
        let dev = &Device::Cpu;
        let x = noise.standard_normal(&(10, 8, 12, 12).into(), DType::F32, dev)?;
        let w = noise.standard_normal(&(8, 8, 3, 3).into(), DType::F32, dev)?;
        let run = |threads: usize| -> Result<Vec<Vec<f32>>> {
            let pool = crate::testing::thread_pool(threads)?;
            pool.install(|| {
                let (xv, wv) = (Var::from_tensor(&x)?, Var::from_tensor(&w)?);
                let y = conv2d_gemm(
                    xv.as_tensor(),
                    wv.as_tensor(),
                    ConvGeometry {
                        padding: 1,
                        ..ConvGeometry::default()
                    },
                )?;
                let g = y.sqr()?.sum_all()?.backward()?;
                let gx = crate::testing::gradient_of(&g, xv.as_tensor())?;
                let gw = crate::testing::gradient_of(&g, wv.as_tensor())?;
                [y, gx, gw]
                    .iter()
                    .map(|t| t.flatten_all()?.to_vec1::<f32>())
                    .collect()
            })
        };
        assert_eq!(run(1)?, run(3)?);
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
