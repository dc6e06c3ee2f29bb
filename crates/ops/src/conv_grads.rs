//! A convolution's backward in one pass over the images: the gradients of its image, its
//! kernel and (optionally) a per-channel bias on its output.
//!
//! A convolution and a transposed convolution (the data-gradient map of a convolution,
//! [`crate::conv_gemm`]) each have three maps; the backward of one is the other two, plus
//! the output gradient's channel sums for a bias. Run as their own ops, that is three
//! parallel regions, each reading every image of the output gradient again. Here each
//! image goes through all of them in one task:
//! - transposed (`conv_transpose(x, w)` for the output gradient `g`): `g`'s image is
//!   bordered once for its convolution (`x`'s gradient) and its weight-gradient pairing
//!   with `x` ([`DirectConv::forward_and_weight_grad_image`]);
//! - forward (`conv(x, w)`, optionally of `f(x)`): the data-gradient map of `g`'s image and
//!   the weight-gradient pairing of `x`'s image with it.
//!
//! The results equal the separate maps' bit for bit: the same per-image computations, and
//! the kernel's gradient summed in the same image blocks, the bias's in image order.
//!
//! The op is not differentiable; with candle's `CANDLE_GRAD_DO_NOT_DETACH`
//! ([`crate::second_order_gradients`]) the maps run as their own ops instead.

use crate::channel_affine::lane_sum;
use crate::contiguous_slice;
use crate::conv_direct::DirectConv;
use crate::im2col::Grid;
use crate::im2col::IMAGE_BLOCK;
use candle::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `(g, x, w)` to `[dx | dw]`, flat, or `[dx | dw | db]` with `bias`: the gradients of `x`,
/// `w` and a per-channel bias on the output, for the output gradient `g`, of the
/// convolution on `grid` (`transposed = false`: `x [B, C, H, W]`, `g [B, O, OH, OW]`) or of
/// its transpose (`x [B, O, OH, OW]`, `g [B, C, H, W]`); `w [O, C, k, k]` either way. The
/// direct form `conv` carries the convolution's pre-activation, if any: `dx` is then the
/// gradient reaching `f(x)`.
pub(crate) struct ConvGrads {
    pub grid: Grid,
    pub conv: DirectConv,
    pub transposed: bool,
    pub bias: bool,
}

impl ConvGrads {
    /// Elements of one image of `(g, x)`, and `g`'s pixels per channel.
    fn image_lens(&self) -> (usize, usize, usize) {
        let (image, out) = (self.grid.image_len(), self.conv.out_len());
        let (hw, ohw) = (self.grid.h * self.grid.w, self.grid.oh * self.grid.ow);
        match self.transposed {
            true => (image, out, hw),
            false => (out, image, ohw),
        }
    }

    /// `[dx | dw]` (and `db`) on slices.
    fn run(&self, g: &[f32], x: &[f32], w: &[f32]) -> Vec<f32> {
        let (grid, conv) = (&self.grid, &self.conv);
        // The transpose's input gradient is the convolution's forward map of `g`; the
        // convolution's is its data-gradient map.
        let job = conv.job(self.transposed, w);
        let (g_len, x_len, hw) = self.image_lens();
        let size = conv.wg_partial_len();
        // Room for `dw` and `db` after `dx`, so that appending them does not move `dx`.
        let o = conv.out_channels();
        let extra = o * grid.c * grid.k * grid.k + o.max(grid.c);
        let mut dx = Vec::with_capacity(grid.b * x_len + extra);
        dx.resize(grid.b * x_len, 0f32);
        let mut partial = vec![0f32; grid.b.div_ceil(IMAGE_BLOCK) * size];
        // Per image and channel, `Σ g` over the pixels (the bias gradient's terms); one
        // unused slot per image without a bias, so that the blocks still zip.
        let c = if self.bias { g_len / hw } else { 1 };
        let mut planes = vec![0f64; grid.b * c];
        let (main_len, wg_len) = match self.transposed {
            true => (conv.both_scratch_len(&job), 0),
            false => (conv.scratch_len(&job), conv.wg_scratch_len()),
        };
        dx.par_chunks_mut(IMAGE_BLOCK * x_len)
            .zip(partial.par_chunks_mut(size))
            .zip(planes.par_chunks_mut(IMAGE_BLOCK * c))
            .enumerate()
            .for_each(|(blk, ((dx_blk, part), sums))| {
                let mut scratch = vec![0f32; main_len + wg_len];
                let (main, wg) = scratch.split_at_mut(main_len);
                for (j, dxi) in dx_blk.chunks_mut(x_len).enumerate() {
                    let i = blk * IMAGE_BLOCK + j;
                    let (gi, xi) = (&g[i * g_len..][..g_len], &x[i * x_len..][..x_len]);
                    if self.transposed {
                        conv.forward_and_weight_grad_image(&job, gi, xi, dxi, part, main);
                    } else {
                        conv.image(&job, gi, dxi, main);
                        conv.weight_grad_image(xi, gi, part, wg);
                    }
                    if self.bias {
                        let sums = &mut sums[j * c..][..c];
                        for (s, plane) in sums.iter_mut().zip(gi.chunks_exact(hw)) {
                            *s = lane_sum(hw, |p| f64::from(plane[p]));
                        }
                    }
                }
            });
        dx.extend(conv.weight_grad_sum(&partial));
        if self.bias {
            // The images' sums added in image order, as `channel_affine::bias_grad` adds them.
            let mut db = vec![0f64; c];
            for image in planes.chunks_exact(c) {
                db.iter_mut().zip(image).for_each(|(s, v)| *s += v);
            }
            dx.extend(db.iter().map(|&v| v as f32));
        }
        dx
    }
}

impl CustomOp3 for ConvGrads {
    fn name(&self) -> &'static str {
        match self.transposed {
            true => "conv-transpose2d-grads",
            false => "conv2d-grads",
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
        let (grid, o) = (&self.grid, self.conv.out_channels());
        let (image, out) = (
            Shape::from((grid.b, grid.c, grid.h, grid.w)),
            Shape::from((grid.b, o, grid.oh, grid.ow)),
        );
        let (g, x) = match self.transposed {
            true => (image, out),
            false => (out, image),
        };
        let want = [g, x, Shape::from((o, grid.c, grid.k, grid.k))];
        for (l, want) in [l1, l2, l3].iter().zip(&want) {
            if l.shape() != want {
                candle::bail!("{name}: an argument of {:?}, expected {want:?}", l.shape());
            }
        }
        let (g, x, w) = (
            contiguous_slice::<f32>(s1, l1, name)?,
            contiguous_slice::<f32>(s2, l2, name)?,
            contiguous_slice::<f32>(s3, l3, name)?,
        );
        let out = self.run(g, x, w);
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

/// The gradients of `x` and `w` (and with `op.bias` of a per-channel bias `[channels of g]`)
/// for the output gradient `g` (see [`ConvGrads`]), shaped like `x` and `w`.
///
/// # Errors
/// Shapes other than the grid's; non-f32 tensors.
pub(crate) fn conv_grads(
    op: ConvGrads,
    (g, x, w): (&Tensor, &Tensor, &Tensor),
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    let (bias, channels) = (op.bias, g.dim(1)?);
    let flat = g
        .contiguous()?
        .apply_op3_no_bwd(&x.contiguous()?, &w.contiguous()?, &op)?;
    let (nx, nw) = (x.elem_count(), w.elem_count());
    let db = match bias {
        true => Some(flat.narrow(0, nx + nw, channels)?),
        false => None,
    };
    Ok((
        flat.narrow(0, 0, nx)?.reshape(x.shape())?,
        flat.narrow(0, nx, nw)?.reshape(w.shape())?,
        db,
    ))
}

#[cfg(test)]
mod tests;
