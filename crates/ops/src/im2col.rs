//! The patch matrix of a convolution ("im2col") and its adjoint ("col2im"), one image at a
//! time.
//!
//! For one image `x: [C, H, W]` the patch matrix is `[C·k·k, OH·OW]`: row `(c, kh, kw)`
//! holds `x[c, oy·s + kh·d - p, ox·s + kw·d - p]` (zero outside the image) at column
//! `(oy, ox)`, copied as contiguous runs of the input's rows. A convolution with
//! `W: [O, C·k·k]` is then `W · cols` (the output image `[O, OH·OW]` in place), and its
//! input gradient is `col2im(Wᵀ · dy)`. One image's matrix (450 KiB for 64 channels, 3x3 at
//! 14x14) stays in cache between the copy and its GEMM; [`crate::conv_gemm`] builds the
//! convolution ops on these.

use candle::{Result, WithDType};

/// Images per partial sum of a convolution's weight gradient (`conv_gemm`, `conv_grads`):
/// fixed blocks, summed in order, so the result does not depend on the thread count.
pub(crate) const IMAGE_BLOCK: usize = 4;

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

/// An image batch `[B, C, H, W]`, a square kernel and a geometry: the convolution's grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grid {
    pub b: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub g: ConvGeometry,
    pub oh: usize,
    pub ow: usize,
}

impl Grid {
    /// The grid of images `image = (B, C, H, W)` under a `k x k` kernel.
    ///
    /// # Errors
    /// A zero stride, dilation or kernel, or a kernel larger than the padded image.
    pub fn new(image: (usize, usize, usize, usize), k: usize, g: ConvGeometry) -> Result<Self> {
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

    /// Output pixels per image: the patch matrix's columns.
    pub fn ohw(&self) -> usize {
        self.oh * self.ow
    }

    /// Rows of the patch matrix, `C·k·k`.
    pub fn rows(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Elements of one input image, `C·H·W`.
    pub fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Input column for output column `o` and kernel column `kw`, if inside the image.
    #[inline]
    fn source(&self, o: usize, kk: usize, size: usize) -> Option<usize> {
        let i = (o * self.g.stride + kk * self.g.dilation) as isize - self.g.padding as isize;
        (i >= 0 && (i as usize) < size).then_some(i as usize)
    }

    /// The outputs `[lo, hi)` (of `outputs` along an axis of `size` input pixels) whose input
    /// for kernel tap `kk` lies inside the image.
    fn valid_range(&self, kk: usize, outputs: usize, size: usize) -> (usize, usize) {
        let inside = |o: usize| self.source(o, kk, size).is_some();
        match (0..outputs).find(|&o| inside(o)) {
            None => (0, 0),
            Some(lo) => (lo, lo + (lo..outputs).take_while(|&o| inside(o)).count()),
        }
    }

    /// The valid output columns `[lo, hi)` for every kernel column, and the input column of
    /// the first one.
    fn column_runs(&self) -> Vec<(usize, usize, usize)> {
        (0..self.k)
            .map(|kw| {
                let (lo, hi) = self.valid_range(kw, self.ow, self.w);
                let start =
                    (lo * self.g.stride + kw * self.g.dilation).saturating_sub(self.g.padding);
                (lo, hi, start)
            })
            .collect()
    }

    /// Where each kernel tap `(kh, kw)` reads a channel plane, in row order of the patch
    /// matrix; `None` for a tap whose rows lie wholly in the padding. Computed once per image
    /// (`k²` entries), so the per-row loops do no index arithmetic.
    fn tap_maps(&self) -> Vec<Option<RowMap>> {
        let runs = self.column_runs();
        let (s, d, p) = (self.g.stride, self.g.dilation, self.g.padding);
        (0..self.k)
            .flat_map(|kh| {
                let (oy0, oy1) = self.valid_range(kh, self.oh, self.h);
                runs.iter().map(move |&(lo, hi, start)| {
                    (oy0 < oy1 && lo < hi).then(|| RowMap {
                        lo,
                        hi,
                        start,
                        oy0,
                        oy1,
                        iy0: oy0 * s + kh * d - p,
                    })
                })
            })
            .collect()
    }

    /// Whether patch-matrix rows are shifted copies of image planes (stride 1, `OW = W`).
    fn shifted(&self) -> bool {
        self.g.stride == 1 && self.ow == self.w
    }

    /// The patch matrix `dst: [C·k·k, OH·OW]` of one image `x: [C, H, W]`; every entry is
    /// written.
    ///
    /// With stride 1 and `OW = W` (a "same" convolution) a row of the patch matrix is the
    /// image plane shifted by a constant offset: one copy, then zeros where the shift
    /// wrapped across a row edge. A strided convolution whose phase planes are as wide as
    /// the output does the same on phase planes (`im2col_phase`). Otherwise row by row.
    pub fn im2col_image<T: WithDType>(&self, x: &[T], dst: &mut [T]) {
        if self.phased() {
            return self.im2col_phased(x, dst);
        }
        let (ohw, hw, ow, s) = (self.ohw(), self.h * self.w, self.ow, self.g.stride);
        let shifted = self.shifted();
        let taps = self.tap_maps();
        let channels = dst.chunks_exact_mut(ohw * taps.len()).take(self.c);
        let rows = channels.enumerate().flat_map(|(c, block)| {
            let plane = &x[c * hw..][..hw];
            block
                .chunks_exact_mut(ohw)
                .zip(&taps)
                .map(move |(p, t)| (plane, p, t))
        });
        for (plane, patch, &tap) in rows {
            let Some(m) = tap else {
                patch.fill(T::zero());
                continue;
            };
            if shifted {
                m.copy_shifted(patch, plane, ow);
                continue;
            }
            patch[..m.oy0 * ow].fill(T::zero());
            patch[m.oy1 * ow..].fill(T::zero());
            for (i, seg) in patch[m.oy0 * ow..m.oy1 * ow]
                .chunks_exact_mut(ow)
                .enumerate()
            {
                // Consecutive output rows read input rows `s` apart.
                let src = &plane[(m.iy0 + i * s) * self.w..][..self.w];
                zero_outside(seg, m.lo, m.hi);
                let run = &mut seg[m.lo..m.hi];
                if s == 1 {
                    run.copy_from_slice(&src[m.start..m.start + run.len()]);
                } else {
                    for (v, &x) in run.iter_mut().zip(src[m.start..].iter().step_by(s)) {
                        *v = x;
                    }
                }
            }
        }
    }

    /// Adds every entry of one image's patch matrix `cols: [C·k·k, OH·OW]` back into
    /// `dst: [C, H, W]` (the adjoint of [`Grid::im2col_image`]). Entries of `cols` that fall
    /// outside the image are left out, and may be overwritten with zeros.
    ///
    /// The same shifted fast path as `im2col_image`: zero the wrapped entries of a row of
    /// `cols`, then add it to the plane as one contiguous run.
    pub fn col2im_image<T: WithDType>(&self, cols: &mut [T], dst: &mut [T]) {
        if self.phased() {
            return self.col2im_phased(cols, dst);
        }
        let (ohw, hw, ow, s) = (self.ohw(), self.h * self.w, self.ow, self.g.stride);
        let shifted = self.shifted();
        let taps = self.tap_maps();
        let channels = cols.chunks_exact_mut(ohw * taps.len()).take(self.c);
        for (block, plane) in channels.zip(dst.chunks_exact_mut(hw)) {
            for (patch, &tap) in block.chunks_exact_mut(ohw).zip(&taps) {
                let Some(m) = tap else {
                    continue;
                };
                if shifted {
                    m.add_shifted(patch, plane, ow);
                    continue;
                }
                for (i, src) in patch[m.oy0 * ow..m.oy1 * ow].chunks_exact(ow).enumerate() {
                    let out = &mut plane[(m.iy0 + i * s) * self.w..][..self.w];
                    let run = &src[m.lo..m.hi];
                    if s == 1 {
                        // A contiguous run: a slice add, which vectorizes.
                        for (o, &v) in out[m.start..m.start + run.len()].iter_mut().zip(run) {
                            *o += v;
                        }
                    } else {
                        for (o, &v) in out[m.start..].iter_mut().step_by(s).zip(run) {
                            *o += v;
                        }
                    }
                }
            }
        }
    }
}

/// Where one patch-matrix row reads its channel's plane: output rows `[oy0, oy1)` and
/// columns `[lo, hi)` lie inside it; output `(oy0, lo)` reads input row `iy0`, column
/// `start`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowMap {
    pub lo: usize,
    pub hi: usize,
    pub start: usize,
    pub oy0: usize,
    pub oy1: usize,
    pub iy0: usize,
}

impl RowMap {
    /// Writes one patch-matrix row `patch: [OH·OW]` from a plane exactly `ow` wide that it
    /// reads with stride 1: zeros outside rows `[oy0, oy1)`, one contiguous copy, then
    /// zeros where the copy wrapped across a row edge.
    pub fn copy_shifted<T: WithDType>(&self, patch: &mut [T], plane: &[T], ow: usize) {
        patch[..self.oy0 * ow].fill(T::zero());
        patch[self.oy1 * ow..].fill(T::zero());
        let (j0, j1) = self.shifted_span(ow);
        let s0 = self.iy0 * ow + self.start;
        patch[j0..j1].copy_from_slice(&plane[s0..s0 + (j1 - j0)]);
        self.zero_wrapped(patch, ow);
    }

    /// The adjoint of `copy_shifted`: adds `patch` to the plane (its wrapped entries zeroed
    /// first, so that one contiguous add is exact).
    pub fn add_shifted<T: WithDType>(&self, patch: &mut [T], plane: &mut [T], ow: usize) {
        self.zero_wrapped(patch, ow);
        let (j0, j1) = self.shifted_span(ow);
        let s0 = self.iy0 * ow + self.start;
        for (o, &v) in plane[s0..s0 + (j1 - j0)].iter_mut().zip(&patch[j0..j1]) {
            *o += v;
        }
    }

    /// The span `[j0, j1)` of a shifted row that one contiguous copy covers.
    fn shifted_span(&self, ow: usize) -> (usize, usize) {
        (self.oy0 * ow + self.lo, (self.oy1 - 1) * ow + self.hi)
    }

    /// Zeros the columns outside `[lo, hi)` of output rows `[oy0, oy1)` of `patch`.
    fn zero_wrapped<T: WithDType>(&self, patch: &mut [T], ow: usize) {
        if self.lo > 0 || self.hi < ow {
            for seg in patch[self.oy0 * ow..self.oy1 * ow].chunks_exact_mut(ow) {
                zero_outside(seg, self.lo, self.hi);
            }
        }
    }
}

/// Zeros `seg` outside `[lo, hi)` (element by element: the runs are a pixel or two, too short
/// for a `memset` call to pay).
fn zero_outside<T: WithDType>(seg: &mut [T], lo: usize, hi: usize) {
    seg[..lo].iter_mut().for_each(|v| *v = T::zero());
    seg[hi..].iter_mut().for_each(|v| *v = T::zero());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `col2im` is the adjoint of `im2col`: `<im2col(x), c> = <x, col2im(c)>`, exactly in
    /// small integers, over paddings, strides and dilations; and `im2col` copies the right
    /// pixel into every entry.
    #[test]
    fn col2im_is_the_adjoint_of_im2col() -> Result<()> {
        for (c, h, w, k, p, s, d) in [
            (2, 5, 6, 3, 1, 1, 1),
            (3, 7, 7, 3, 0, 2, 1),
            (1, 9, 8, 3, 2, 1, 2),
            (2, 6, 6, 5, 2, 2, 1),
            // Kernel columns 0 and 4 never land inside the 2-pixel-wide image.
            (2, 3, 2, 5, 2, 1, 1),
            (1, 4, 3, 3, 3, 2, 2),
            (2, 8, 7, 3, 1, 3, 1),
            (2, 7, 9, 3, 1, 2, 1),
        ] {
            let g = ConvGeometry {
                padding: p,
                stride: s,
                dilation: d,
            };
            let grid = Grid::new((1, c, h, w), k, g)?;
            let x: Vec<f64> = (0..grid.image_len())
                .map(|i| (i % 7) as f64 - 3.0)
                .collect();
            let cv: Vec<f64> = (0..grid.rows() * grid.ohw())
                .map(|i| (i % 5) as f64 - 2.0)
                .collect();
            let mut cols = vec![f64::NAN; cv.len()];
            grid.im2col_image(&x, &mut cols);
            for row in 0..grid.rows() {
                let (ch, kh, kw) = (row / (k * k), (row / k) % k, row % k);
                for oy in 0..grid.oh {
                    for ox in 0..grid.ow {
                        let iy = (oy * s + kh * d) as isize - p as isize;
                        let ix = (ox * s + kw * d) as isize - p as isize;
                        let want = if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix)
                        {
                            x[(ch * h + iy as usize) * w + ix as usize]
                        } else {
                            0.0
                        };
                        assert_eq!(cols[row * grid.ohw() + oy * grid.ow + ox], want);
                    }
                }
            }
            let mut back = vec![0.0; x.len()];
            grid.col2im_image(&mut cv.clone(), &mut back);
            let lhs: f64 = cols.iter().zip(&cv).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "{c} {h}x{w} k{k} p{p} s{s} d{d}");
        }
        Ok(())
    }
}
