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

    /// `valid_columns` for every kernel column, and the input column of the first one.
    fn column_runs(&self) -> Vec<(usize, usize, usize)> {
        (0..self.k)
            .map(|kw| {
                let (lo, hi) = self.valid_columns(kw);
                let start =
                    (lo * self.g.stride + kw * self.g.dilation).saturating_sub(self.g.padding);
                (lo, hi, start)
            })
            .collect()
    }

    /// The output rows `[lo, hi)` whose input row for kernel row `kh` lies inside the image.
    fn valid_rows(&self, kh: usize) -> (usize, usize) {
        let lo = (0..self.oh).find(|&o| self.source(o, kh, self.h).is_some());
        lo.map_or((0, 0), |lo| {
            let n = (lo..self.oh)
                .take_while(|&o| self.source(o, kh, self.h).is_some())
                .count();
            (lo, lo + n)
        })
    }

    /// The patch matrix `dst: [C·k·k, OH·OW]` of one image `x: [C, H, W]`; every entry is
    /// written.
    ///
    /// With stride 1 and `OW = W` (a "same" convolution) a row of the patch matrix is the
    /// image plane shifted by a constant offset: one copy, then zeros where the shift
    /// wrapped across a row edge. Otherwise row by row.
    pub fn im2col_image<T: WithDType>(&self, x: &[T], dst: &mut [T]) {
        let (ohw, hw, kk, s) = (self.ohw(), self.h * self.w, self.k * self.k, self.g.stride);
        let (ow, shifted) = (self.ow, s == 1 && self.ow == self.w);
        let runs = self.column_runs();
        let rows: Vec<(usize, usize)> = (0..self.k).map(|kh| self.valid_rows(kh)).collect();
        for (row, patch) in dst.chunks_exact_mut(ohw).take(self.rows()).enumerate() {
            let (c, kh, kw) = (row / kk, (row / self.k) % self.k, row % self.k);
            let (lo, hi, start) = runs[kw];
            let (oy0, oy1) = rows[kh];
            let plane = &x[c * hw..][..hw];
            if oy0 >= oy1 || lo >= hi {
                patch.fill(T::zero());
                continue;
            }
            patch[..oy0 * ow].fill(T::zero());
            patch[oy1 * ow..].fill(T::zero());
            let iy0 = oy0 * s + kh * self.g.dilation - self.g.padding;
            if shifted {
                let (j0, j1) = (oy0 * ow + lo, (oy1 - 1) * ow + hi);
                let s0 = iy0 * self.w + start;
                patch[j0..j1].copy_from_slice(&plane[s0..s0 + (j1 - j0)]);
                if lo > 0 || hi < ow {
                    for seg in patch[oy0 * ow..oy1 * ow].chunks_exact_mut(ow) {
                        seg[..lo].iter_mut().for_each(|v| *v = T::zero());
                        seg[hi..].iter_mut().for_each(|v| *v = T::zero());
                    }
                }
                continue;
            }
            let segs = patch[oy0 * ow..oy1 * ow].chunks_exact_mut(ow);
            for (i, seg) in segs.enumerate() {
                // Consecutive output rows read input rows `s` apart.
                let src = &plane[(iy0 + i * s) * self.w..][..self.w];
                seg[..lo].iter_mut().for_each(|v| *v = T::zero());
                seg[hi..].iter_mut().for_each(|v| *v = T::zero());
                if s == 1 {
                    seg[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                } else {
                    for (v, &x) in seg[lo..hi].iter_mut().zip(src[start..].iter().step_by(s)) {
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
        let (ohw, hw, kk, s) = (self.ohw(), self.h * self.w, self.k * self.k, self.g.stride);
        let (ow, shifted) = (self.ow, s == 1 && self.ow == self.w);
        let runs = self.column_runs();
        let rows: Vec<(usize, usize)> = (0..self.k).map(|kh| self.valid_rows(kh)).collect();
        for (row, patch) in cols.chunks_exact_mut(ohw).take(self.rows()).enumerate() {
            let (c, kh, kw) = (row / kk, (row / self.k) % self.k, row % self.k);
            let (lo, hi, start) = runs[kw];
            let (oy0, oy1) = rows[kh];
            if oy0 >= oy1 || lo >= hi {
                continue;
            }
            let plane = &mut dst[c * hw..][..hw];
            let iy0 = oy0 * s + kh * self.g.dilation - self.g.padding;
            if shifted {
                if lo > 0 || hi < ow {
                    for seg in patch[oy0 * ow..oy1 * ow].chunks_exact_mut(ow) {
                        seg[..lo].iter_mut().for_each(|v| *v = T::zero());
                        seg[hi..].iter_mut().for_each(|v| *v = T::zero());
                    }
                }
                let (j0, j1) = (oy0 * ow + lo, (oy1 - 1) * ow + hi);
                let s0 = iy0 * self.w + start;
                for (o, &v) in plane[s0..s0 + (j1 - j0)].iter_mut().zip(&patch[j0..j1]) {
                    *o += v;
                }
                continue;
            }
            for (i, src) in patch[oy0 * ow..oy1 * ow].chunks_exact(ow).enumerate() {
                let out = &mut plane[(iy0 + i * s) * self.w..][..self.w];
                if s == 1 {
                    // A contiguous run: a slice add, which vectorizes.
                    for (o, &v) in out[start..start + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                        *o += v;
                    }
                } else {
                    for (o, &v) in out[start..].iter_mut().step_by(s).zip(&src[lo..hi]) {
                        *o += v;
                    }
                }
            }
        }
    }
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
