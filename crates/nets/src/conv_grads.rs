//! Both gradients of a transposed convolution in one pass over the images.
//!
//! A transposed convolution is the data-gradient map of a convolution
//! ([`crate::conv_gemm`]). For an output gradient `g`, its input's gradient is the forward
//! map of `g` and its kernel's gradient the weight-gradient map of `g` against the input;
//! on the direct path ([`DirectConv`]) each starts by copying every image of `g` into
//! zero-bordered phase planes. Run as two ops, that is two bordering passes and two
//! parallel regions; here each image of `g` is bordered once, and both maps run on it in
//! the same task: the same results, bit for bit (the kernel's gradient is summed in the
//! same image blocks, in the same order).
//!
//! The op is not differentiable; with candle's `CANDLE_GRAD_DO_NOT_DETACH`
//! ([`vaekit_core::second_order_gradients`]) the two maps run as their own ops instead.

use crate::channel_affine::lane_sum;
use crate::conv_direct::DirectConv;
use crate::conv_gemm::IMAGE_BLOCK;
use crate::im2col::Grid;
use candle::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use vaekit_core::contiguous_part;

/// `(g [B, C, H, W], x [B, O, OH, OW], w [O, C, k, k])` to `[dx | dw]`, flat: the gradients
/// of `x` and `w` in the transposed convolution `conv_transpose(x, w)` (the data-gradient
/// map of the convolution on `grid`) for its output's gradient `g`; with `bias`, also
/// `db [C]`, the gradient of a per-channel bias added to the output (`[dx | dw | db]`).
pub(crate) struct TransposedGrads {
    pub grid: Grid,
    pub conv: DirectConv,
    pub bias: bool,
}

impl TransposedGrads {
    /// `[dx | dw]` (and `db`) on slices.
    fn run(&self, g: &[f32], x: &[f32], w: &[f32]) -> Vec<f32> {
        let (grid, conv) = (&self.grid, &self.conv);
        let job = conv.job(true, w);
        let (g_len, x_len, hw) = (grid.image_len(), conv.out_len(), grid.h * grid.w);
        let size = conv.wg_partial_len();
        let mut dx = vec![0f32; grid.b * x_len];
        let mut partial = vec![0f32; grid.b.div_ceil(IMAGE_BLOCK) * size];
        // Per image and channel, `Σ g` over the pixels (the bias gradient's terms); one
        // unused slot per image without a bias, so that the blocks still zip.
        let c = if self.bias { grid.c } else { 1 };
        let mut planes = vec![0f64; grid.b * c];
        let scratch_len = conv.both_scratch_len(&job);
        dx.par_chunks_mut(IMAGE_BLOCK * x_len)
            .zip(partial.par_chunks_mut(size))
            .zip(planes.par_chunks_mut(IMAGE_BLOCK * c))
            .enumerate()
            .for_each(|(blk, ((dx_blk, part), sums))| {
                let mut scratch = vec![0f32; scratch_len];
                for (j, dxi) in dx_blk.chunks_mut(x_len).enumerate() {
                    let i = blk * IMAGE_BLOCK + j;
                    let (gi, xi) = (&g[i * g_len..][..g_len], &x[i * x_len..][..x_len]);
                    conv.forward_and_weight_grad_image(&job, gi, xi, dxi, part, &mut scratch);
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

impl CustomOp3 for TransposedGrads {
    fn name(&self) -> &'static str {
        "conv-transpose2d-grads"
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
        let want = [
            Shape::from((grid.b, grid.c, grid.h, grid.w)),
            Shape::from((grid.b, o, grid.oh, grid.ow)),
            Shape::from((o, grid.c, grid.k, grid.k)),
        ];
        for (l, want) in [l1, l2, l3].iter().zip(&want) {
            if l.shape() != want {
                candle::bail!("{name}: an argument of {:?}, expected {want:?}", l.shape());
            }
        }
        let (g, x, w) = match (s1, s2, s3) {
            (CpuStorage::F32(g), CpuStorage::F32(x), CpuStorage::F32(w)) => (
                contiguous_part(g, l1, name)?,
                contiguous_part(x, l2, name)?,
                contiguous_part(w, l3, name)?,
            ),
            _ => candle::bail!("{name}: f32 expected"),
        };
        let out = self.run(g, x, w);
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

/// The gradients of `x` and `w` in the transposed convolution on `grid` (see
/// [`TransposedGrads`]) for the output gradient `g`, shaped like `x` and `w`, and with
/// `bias` the gradient `[C]` of a per-channel bias on the output.
///
/// # Errors
/// Shapes other than the grid's; non-f32 tensors.
pub(crate) fn transposed_grads(
    grid: Grid,
    conv: DirectConv,
    (g, x, w): (&Tensor, &Tensor, &Tensor),
    bias: bool,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    let flat = g.contiguous()?.apply_op3_no_bwd(
        &x.contiguous()?,
        &w.contiguous()?,
        &TransposedGrads { grid, conv, bias },
    )?;
    let (nx, nw) = (x.elem_count(), w.elem_count());
    let db = match bias {
        true => Some(flat.narrow(0, nx + nw, grid.c)?),
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
