//! A direct "same" convolution in f32 for CPUs with AVX-512F: stride 1, dilation 1, an odd
//! square kernel, padding `(k - 1) / 2`. It computes the forward map of such a layer and its
//! data gradient without a patch matrix.
//!
//! Each input channel is copied into a zero-bordered plane of width `Wp = W + k - 1`. On that
//! grid, output pixel `(y, x)` sits at column `n = y·Wp + x`, and kernel tap `(ky, kx)` reads
//! column `n + ky·Wp + kx` of every plane: for a run of columns, one contiguous load per tap
//! and channel. A register tile of [`MR`] output channels by up to `NV·16` grid columns sums
//! weight × run over taps and channels (an FMA with a broadcast weight per row), and the
//! tile's valid columns (`x < W`) are copied out. The `k - 1` columns of each grid row past
//! the image are computed and dropped: 1/8 of the work at 14×14 with a 3×3 kernel, paid for
//! by having no patch matrix to write and read (9× the image) and no packing.
//!
//! The data gradient of the same layer is the same convolution of `dy`, with the kernel
//! transposed over channels and flipped in both axes (see [`SameConv::data_grad`]).
//! The weight gradient `dW[co, ci, t] = Σ_pixels dy[co, pixel] · x_bordered[ci, pixel + tap t]`
//! runs on a second tile ([`SameConv::weight_grad_image`]): `dy` transposed to pixel-major
//! rows of output channels (vectors), [`WG_MR`] input channels broadcast from the bordered
//! planes, one tile per tap; only the image's own pixels are visited.
//! Sums run over taps, then channels (or pixels), in a fixed order: results do not depend
//! on threads.

use crate::im2col::Grid;

/// Output channels per register tile (the weights broadcast per column step).
pub(crate) const MR: usize = 8;

/// f32 lanes of one AVX-512 register.
const LANES: usize = 16;

/// Registers of grid columns per tile: 8 × 3 accumulators, 3 column loads and one
/// broadcast weight keep 28 of the 32 vector registers busy.
const NV: usize = 3;

/// Input channels per weight-gradient tile: 6 × 4 accumulators, 4 loads of `dy` and one
/// broadcast input keep 29 of the 32 vector registers busy.
pub(crate) const WG_MR: usize = 6;

/// Output channels per weight-gradient tile: four registers.
const WG_NV: usize = 4;

/// One direct "same" convolution: `c_in` planes of `h × w` to `c_out`, kernel `k × k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SameConv {
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    k: usize,
}

impl SameConv {
    /// The direct form of the forward map on `grid` with `o` output channels, or `None`
    /// where it does not apply: the geometry (stride 1, dilation 1, odd kernel, "same"
    /// padding) or a CPU without AVX-512F.
    pub(crate) fn forward(grid: &Grid, o: usize) -> Option<Self> {
        let g = &grid.g;
        let same =
            g.stride == 1 && g.dilation == 1 && grid.k % 2 == 1 && 2 * g.padding + 1 == grid.k;
        (same && kernel::available()).then_some(Self {
            c_in: grid.c,
            c_out: o,
            h: grid.h,
            w: grid.w,
            k: grid.k,
        })
    }

    /// The direct form of the data gradient on `grid` with `o` output channels: the same
    /// convolution from `o` channels of `dy` to `grid.c` channels of `dx`, with
    /// [`Self::data_grad_weights`]. `None` where [`Self::forward`] is.
    pub(crate) fn data_grad(grid: &Grid, o: usize) -> Option<Self> {
        Self::forward(grid, o).map(|f| Self {
            c_in: f.c_out,
            c_out: f.c_in,
            ..f
        })
    }

    /// Width of a bordered plane.
    fn wp(&self) -> usize {
        self.w + self.k - 1
    }

    /// Grid columns computed per output channel: the image's `h` grid rows, rounded up to
    /// whole registers.
    fn cols(&self) -> usize {
        (self.h * self.wp()).next_multiple_of(LANES)
    }

    /// Elements of one bordered plane.
    fn plane(&self) -> usize {
        (self.h + self.k - 1) * self.wp()
    }

    /// Offset of each kernel tap `t = ky·k + kx` on the grid.
    fn taps(&self) -> Vec<usize> {
        let (k, wp) = (self.k, self.wp());
        (0..k * k).map(|t| (t / k) * wp + t % k).collect()
    }

    /// Length of the bordered input: every plane, plus the columns the last plane's tiles
    /// read past its end (they land only in dropped columns).
    fn bordered_len(&self) -> usize {
        let reach = (self.k - 1) * (self.wp() + 1) + self.cols();
        (self.c_in * self.plane()).max((self.c_in.max(1) - 1) * self.plane() + reach)
    }

    /// Output channels rounded up to whole tiles.
    fn rows(&self) -> usize {
        self.c_out.next_multiple_of(MR)
    }

    /// Scratch elements [`Self::image`] needs; zero it once: the planes' borders are never
    /// written, so one buffer serves any number of images.
    pub(crate) fn scratch_len(&self) -> usize {
        self.bordered_len() + self.rows() * self.cols()
    }

    /// Input channels rounded up to whole weight-gradient tiles.
    fn wg_planes(&self) -> usize {
        self.c_in.next_multiple_of(WG_MR)
    }

    /// Output channels rounded up to whole registers.
    fn wg_outputs(&self) -> usize {
        self.c_out.next_multiple_of(LANES)
    }

    /// Elements of one image block's weight-gradient partial sum, laid out
    /// `[k·k][wg_planes][wg_outputs]` (see [`Self::weight_grad_image`]).
    pub(crate) fn wg_partial_len(&self) -> usize {
        self.k * self.k * self.wg_planes() * self.wg_outputs()
    }

    /// Scratch elements [`Self::weight_grad_image`] needs, zeroed once like
    /// [`Self::scratch_len`]'s: bordered planes (every tap's reads of the image's pixels
    /// stay within them) and `dy` transposed.
    pub(crate) fn wg_scratch_len(&self) -> usize {
        self.wg_planes() * self.plane() + self.h * self.w * self.wg_outputs()
    }

    /// Copies the image `src: [c, h, w]` into the interiors of bordered planes.
    fn border(&self, src: &[f32], bordered: &mut [f32]) {
        let (h, w, wp, p) = (self.h, self.w, self.wp(), (self.k - 1) / 2);
        for (dst, img) in bordered
            .chunks_mut(self.plane())
            .zip(src.chunks_exact(h * w))
        {
            for (y, row) in img.chunks_exact(w).enumerate() {
                dst[(y + p) * wp + p..][..w].copy_from_slice(row);
            }
        }
    }

    /// Adds one image's weight gradient to `partial` (see [`Self::wg_partial_len`]):
    /// `partial[t, ci, co] += Σ_pixels x[ci, pixel + tap t] · dy[co, pixel]` for
    /// `x: [c_in, h, w]` and `dy: [c_out, h, w]`, in `scratch` of [`Self::wg_scratch_len`]
    /// (zeroed before its first use).
    ///
    /// # Panics
    /// Slices shorter than the geometry says.
    pub(crate) fn weight_grad_image(
        &self,
        x: &[f32],
        dy: &[f32],
        partial: &mut [f32],
        scratch: &mut [f32],
    ) {
        let (hw, plane, wp) = (self.h * self.w, self.plane(), self.wp());
        let (planes, outs) = (self.wg_planes(), self.wg_outputs());
        let (bordered, dyt) = scratch.split_at_mut(planes * plane);
        self.border(x, bordered);
        for (co, img) in dy.chunks_exact(hw).take(self.c_out).enumerate() {
            for (row, &v) in dyt.chunks_exact_mut(outs).zip(img) {
                row[co] = v;
            }
        }
        let shape = kernel::WgShape {
            plane,
            wp,
            h: self.h,
            w: self.w,
            ld: outs,
        };
        for (t, &off) in self.taps().iter().enumerate() {
            for panel in 0..planes / WG_MR {
                for co0 in (0..outs).step_by(WG_NV * LANES) {
                    let x = &bordered[panel * WG_MR * plane + off..];
                    let c = &mut partial[(t * planes + panel * WG_MR) * outs + co0..];
                    match ((outs - co0) / LANES).min(WG_NV) {
                        4 => kernel::wg_tile::<4>(x, &dyt[co0..], &shape, c, outs),
                        3 => kernel::wg_tile::<3>(x, &dyt[co0..], &shape, c, outs),
                        2 => kernel::wg_tile::<2>(x, &dyt[co0..], &shape, c, outs),
                        _ => kernel::wg_tile::<1>(x, &dyt[co0..], &shape, c, outs),
                    }
                }
            }
        }
    }

    /// The weight gradient `[c_out, c_in, k, k]` from consecutive partial sums (see
    /// [`Self::wg_partial_len`]), added in order.
    pub(crate) fn weight_grad_sum(&self, partials: &[f32]) -> Vec<f32> {
        let (kk, planes, outs) = (self.k * self.k, self.wg_planes(), self.wg_outputs());
        let mut parts = partials.chunks_exact(self.wg_partial_len());
        let mut total = parts.next().map(<[f32]>::to_vec).unwrap_or_default();
        for part in parts {
            for (a, &b) in total.iter_mut().zip(part) {
                *a += b;
            }
        }
        let mut dw = vec![0f32; self.c_out * self.c_in * kk];
        for (t, taps) in total.chunks_exact(planes * outs).enumerate() {
            for (ci, row) in taps.chunks_exact(outs).take(self.c_in).enumerate() {
                for (co, &v) in row[..self.c_out].iter().enumerate() {
                    dw[(co * self.c_in + ci) * kk + t] = v;
                }
            }
        }
        dw
    }

    /// Packs a kernel for [`Self::image`]: `weight(co, ci, t)` is the weight from input
    /// channel `ci` to output channel `co` at tap `t = ky·k + kx`. Layout
    /// `[rows / MR][k·k][c_in][MR]`, zero past `c_out`.
    fn pack(&self, weight: impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
        let kk = self.k * self.k;
        let mut packed = vec![0f32; self.rows() * kk * self.c_in];
        for (panel, block) in packed.chunks_exact_mut(kk * self.c_in * MR).enumerate() {
            for (i, group) in block.chunks_exact_mut(MR).enumerate() {
                let (t, ci) = (i / self.c_in, i % self.c_in);
                for (r, v) in group.iter_mut().enumerate() {
                    let co = panel * MR + r;
                    if co < self.c_out {
                        *v = weight(co, ci, t);
                    }
                }
            }
        }
        packed
    }

    /// The forward kernel `w: [c_out, c_in, k, k]` packed.
    pub(crate) fn forward_weights(&self, w: &[f32]) -> Vec<f32> {
        let kk = self.k * self.k;
        self.pack(|co, ci, t| w[(co * self.c_in + ci) * kk + t])
    }

    /// The data-gradient kernel from the forward layer's `w: [c_in', c_out', k, k]`, where
    /// this convolution's `c_out` is the layer's input channels and `c_in` its outputs:
    /// `w'[ci, co, t] = w[co', ci', k·k - 1 - t]` (transposed and flipped).
    pub(crate) fn data_grad_weights(&self, w: &[f32]) -> Vec<f32> {
        let kk = self.k * self.k;
        self.pack(|co, ci, t| w[(ci * self.c_out + co) * kk + kk - 1 - t])
    }

    /// One image: `src: [c_in, h, w]` to `out: [c_out, h, w]` with `packed` from
    /// [`Self::forward_weights`] or [`Self::data_grad_weights`], in `scratch` of
    /// [`Self::scratch_len`] (zeroed before its first use).
    ///
    /// # Panics
    /// Slices shorter than the geometry says.
    pub(crate) fn image(&self, packed: &[f32], src: &[f32], out: &mut [f32], scratch: &mut [f32]) {
        let (h, w, wp) = (self.h, self.w, self.wp());
        let (plane, cols) = (self.plane(), self.cols());
        let (bordered, grid) = scratch.split_at_mut(self.bordered_len());
        self.border(src, bordered);
        let taps = self.taps();
        let panel_len = taps.len() * self.c_in * MR;
        for n0 in (0..cols).step_by(NV * LANES) {
            let nv = ((cols - n0) / LANES).min(NV);
            for (panel, a) in packed.chunks_exact(panel_len).enumerate() {
                let c = &mut grid[panel * MR * cols + n0..];
                let b = &bordered[n0..];
                match nv {
                    3 => kernel::tile::<3>(a, b, &taps, self.c_in, plane, c, cols),
                    2 => kernel::tile::<2>(a, b, &taps, self.c_in, plane, c, cols),
                    _ => kernel::tile::<1>(a, b, &taps, self.c_in, plane, c, cols),
                }
            }
        }
        for (dst, rows) in out.chunks_exact_mut(h * w).zip(grid.chunks_exact(cols)) {
            for (y, row) in dst.chunks_exact_mut(w).enumerate() {
                row.copy_from_slice(&rows[y * wp..][..w]);
            }
        }
    }
}

/// The register tile, the one place with raw-pointer loads.
#[allow(unsafe_code)]
mod kernel {
    use super::{LANES, MR, WG_MR};

    /// Whether this CPU runs [`tile`].
    pub(super) fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// `c[r·ldc + j] = Σ_t Σ_i a[(t·c_in + i)·MR + r] · b[offs[t] + i·plane + j]` for rows
    /// `r < MR` and columns `j < NV·16`.
    ///
    /// # Panics
    /// On a CPU without AVX-512F, or slices too short for those reads and writes.
    pub(super) fn tile<const NV: usize>(
        a: &[f32],
        b: &[f32],
        offs: &[usize],
        c_in: usize,
        plane: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        let reach = offs
            .iter()
            .max()
            .map_or(0, |&o| o + (c_in.max(1) - 1) * plane);
        assert!(available(), "conv_direct: AVX-512F is not available");
        assert!(
            a.len() >= offs.len() * c_in * MR,
            "conv_direct: short kernel panel"
        );
        assert!(b.len() >= reach + NV * LANES, "conv_direct: short input");
        assert!(
            c.len() >= (MR - 1) * ldc + NV * LANES,
            "conv_direct: short output"
        );
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F is available (checked above); every read of `a` and `b` and
        // every write of `c` stays within the lengths asserted above.
        unsafe {
            tile_avx512::<NV>(
                a.as_ptr(),
                b.as_ptr(),
                offs,
                c_in,
                plane,
                c.as_mut_ptr(),
                ldc,
            );
        }
    }

    /// The geometry of a weight-gradient tile's reads: bordered planes of `plane`
    /// elements and width `wp` holding `h × w` images, transposed `dy` rows `ld` apart.
    pub(super) struct WgShape {
        pub plane: usize,
        pub wp: usize,
        pub h: usize,
        pub w: usize,
        pub ld: usize,
    }

    /// `c[r·ldc + j] += Σ_{y < h, x < w} a[r·plane + y·wp + x] · b[(y·w + x)·ld + j]` for
    /// rows `r < WG_MR` and columns `j < NV·16`: one tap's weight gradient for
    /// [`super::WG_MR`] input channels (`a`: bordered planes from the tap's offset) and
    /// `NV·16` output channels (`b`: transposed `dy` from the first of them).
    ///
    /// # Panics
    /// On a CPU without AVX-512F, or slices too short for those reads and writes.
    pub(super) fn wg_tile<const NV: usize>(
        a: &[f32],
        b: &[f32],
        s: &WgShape,
        c: &mut [f32],
        ldc: usize,
    ) {
        let pixels = s.h * s.w;
        assert!(available(), "conv_direct: AVX-512F is not available");
        assert!(
            s.w <= s.wp && pixels > 0,
            "conv_direct: bad weight-gradient shape"
        );
        let a_reach = (WG_MR - 1) * s.plane + (s.h - 1) * s.wp + s.w;
        assert!(a.len() >= a_reach, "conv_direct: short input planes");
        assert!(
            b.len() >= (pixels - 1) * s.ld + NV * LANES,
            "conv_direct: short dy"
        );
        assert!(
            c.len() >= (WG_MR - 1) * ldc + NV * LANES,
            "conv_direct: short output"
        );
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F is available (checked above); every read of `a` and `b` and
        // every read and write of `c` stays within the lengths asserted above.
        unsafe {
            wg_avx512::<NV>(a.as_ptr(), b.as_ptr(), s, c.as_mut_ptr(), ldc);
        }
    }

    /// [`wg_tile`] on raw pointers.
    ///
    /// # Safety
    /// AVX-512F available; `a`, `b` and `c` valid for the accesses [`wg_tile`] checks.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn wg_avx512<const NV: usize>(
        a: *const f32,
        b: *const f32,
        s: &WgShape,
        c: *mut f32,
        ldc: usize,
    ) {
        use std::arch::x86_64::{
            _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
        };
        let mut acc = [[_mm512_setzero_ps(); NV]; WG_MR];
        // SAFETY (every block below): within the bounds `wg_tile` checked.
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, sum) in row.iter_mut().enumerate() {
                *sum = unsafe { _mm512_loadu_ps(c.add(r * ldc + v * LANES)) };
            }
        }
        let mut bp = b;
        for y in 0..s.h {
            let line = unsafe { a.add(y * s.wp) };
            for x in 0..s.w {
                let mut bv = [_mm512_setzero_ps(); NV];
                for (v, reg) in bv.iter_mut().enumerate() {
                    *reg = unsafe { _mm512_loadu_ps(bp.add(v * LANES)) };
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(unsafe { *line.add(r * s.plane + x) });
                    for (sum, &bx) in row.iter_mut().zip(&bv) {
                        *sum = _mm512_fmadd_ps(av, bx, *sum);
                    }
                }
                bp = unsafe { bp.add(s.ld) };
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, &sum) in row.iter().enumerate() {
                unsafe { _mm512_storeu_ps(c.add(r * ldc + v * LANES), sum) };
            }
        }
    }

    /// [`tile`] on raw pointers.
    ///
    /// # Safety
    /// AVX-512F available; `a`, `b` and `c` valid for the reads and writes [`tile`] checks.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile_avx512<const NV: usize>(
        a: *const f32,
        b: *const f32,
        offs: &[usize],
        c_in: usize,
        plane: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        use std::arch::x86_64::{
            _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
        };
        let mut acc = [[_mm512_setzero_ps(); NV]; MR];
        let mut ap = a;
        for &off in offs {
            // SAFETY (this block and the stores): within the bounds `tile` checked.
            unsafe {
                let mut bp = b.add(off);
                for _ in 0..c_in {
                    let mut bv = [_mm512_setzero_ps(); NV];
                    for (v, reg) in bv.iter_mut().enumerate() {
                        *reg = _mm512_loadu_ps(bp.add(v * LANES));
                    }
                    for (r, row) in acc.iter_mut().enumerate() {
                        let av = _mm512_set1_ps(*ap.add(r));
                        for (sum, &bx) in row.iter_mut().zip(&bv) {
                            *sum = _mm512_fmadd_ps(av, bx, *sum);
                        }
                    }
                    ap = ap.add(MR);
                    bp = bp.add(plane);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, &sum) in row.iter().enumerate() {
                // SAFETY: see above.
                unsafe { _mm512_storeu_ps(c.add(r * ldc + v * LANES), sum) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::im2col::ConvGeometry;
    use candle::{DType, Device, Result, Tensor};
    use vaekit_core::testing::assert_all_close;
    use vaekit_core::{NoiseSource, SeededNoise};

    /// Both maps image by image against candle's f64 `conv2d` and `conv_transpose2d`, over
    /// geometries that reach every tile width (1, 2 and 3 registers) and a partial panel of
    /// output channels.
    #[test]
    fn both_maps_match_candle_in_f64() -> Result<()> {
        if !kernel::available() {
            eprintln!("conv_direct: no AVX-512F on this CPU, direct path not tested");
            return Ok(());
        }
        let dev = &Device::Cpu;
        let mut noise = SeededNoise::new(21);
        // (batch, c_in, c_out, h, w, k): grid columns 224 (3+3+3+3+2 registers), 144
        // (3+3+3), 64 (3+1) and 64 again with k = 1; 11 and 3 outputs fill part of a panel.
        // Weight-gradient tiles: 11, 8, 9 and 3 outputs take one register, 20 two, 40
        // three, 70 four and one; 5, 3 and 4 inputs fill part of a panel.
        for (b, ci, co, h, w, k) in [
            (2, 6, 11, 14, 14, 3),
            (3, 5, 8, 9, 13, 3),
            (2, 3, 9, 6, 5, 5),
            (2, 4, 3, 7, 7, 1),
            (2, 7, 20, 5, 6, 3),
            (1, 2, 40, 4, 4, 3),
            (2, 13, 70, 3, 5, 3),
        ] {
            let x = noise.standard_normal(&(b, ci, h, w).into(), DType::F64, dev)?;
            let wt = noise.standard_normal(&(co, ci, k, k).into(), DType::F64, dev)?;
            let dy = noise.standard_normal(&(b, co, h, w).into(), DType::F64, dev)?;
            let p = (k - 1) / 2;
            let g = ConvGeometry {
                padding: p,
                stride: 1,
                dilation: 1,
            };
            let grid = Grid::new((b, ci, h, w), k, g)?;
            let f32s = |t: &Tensor| t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>();
            let run = |conv: SameConv, packed: &[f32], src: &Tensor, c_out: usize| {
                let src = f32s(src)?;
                let (len_in, len_out) = (src.len() / b, c_out * h * w);
                let mut out = vec![0f32; b * len_out];
                let mut scratch = vec![0f32; conv.scratch_len()];
                for (img, dst) in src.chunks_exact(len_in).zip(out.chunks_exact_mut(len_out)) {
                    conv.image(packed, img, dst, &mut scratch);
                }
                Tensor::from_vec(out, (b, c_out, h, w), dev)?.to_dtype(DType::F64)
            };
            let fwd = SameConv::forward(&grid, co).expect("a same convolution");
            let y = run(fwd, &fwd.forward_weights(&f32s(&wt)?), &x, co)?;
            assert_all_close(&y, &x.conv2d(&wt, p, 1, 1, 1)?, 1e-4, 1e-4)?;
            let bwd = SameConv::data_grad(&grid, co).expect("a same convolution");
            let dx = run(bwd, &bwd.data_grad_weights(&f32s(&wt)?), &dy, ci)?;
            assert_all_close(&dx, &dy.conv_transpose2d(&wt, p, 0, 1, 1)?, 1e-4, 1e-4)?;
            // dW = ∂/∂w Σ conv(x, w) ⊙ dy, by candle's autograd; images in two blocks.
            let wv = candle::Var::from_tensor(&wt)?;
            let g = (x.conv2d(wv.as_tensor(), p, 1, 1, 1)? * &dy)?
                .sum_all()?
                .backward()?;
            let expected = vaekit_core::testing::gradient_of(&g, wv.as_tensor())?;
            let (xs, dys) = (f32s(&x)?, f32s(&dy)?);
            let mut partials = vec![0f32; 2 * fwd.wg_partial_len()];
            let mut scratch = vec![0f32; fwd.wg_scratch_len()];
            let (xl, dl) = (xs.len() / b, dys.len() / b);
            for i in 0..b {
                let part = &mut partials[(i % 2) * fwd.wg_partial_len()..];
                let (xi, dyi) = (&xs[i * xl..][..xl], &dys[i * dl..][..dl]);
                fwd.weight_grad_image(xi, dyi, part, &mut scratch);
            }
            let dw = Tensor::from_vec(fwd.weight_grad_sum(&partials), (co, ci, k, k), dev)?;
            assert_all_close(&dw.to_dtype(DType::F64)?, &expected, 1e-4, 1e-4)?;
        }
        Ok(())
    }

    #[test]
    fn applies_to_same_convolutions_only() -> Result<()> {
        let grid = |k, padding, stride, dilation| {
            let g = ConvGeometry {
                padding,
                stride,
                dilation,
            };
            Grid::new((1, 2, 8, 8), k, g)
        };
        let direct = kernel::available();
        assert_eq!(SameConv::forward(&grid(3, 1, 1, 1)?, 4).is_some(), direct);
        assert_eq!(SameConv::forward(&grid(5, 2, 1, 1)?, 4).is_some(), direct);
        for g in [
            grid(3, 0, 1, 1)?,
            grid(3, 1, 2, 1)?,
            grid(3, 2, 1, 2)?,
            grid(4, 1, 1, 1)?,
        ] {
            assert!(SameConv::forward(&g, 4).is_none());
            assert!(SameConv::data_grad(&g, 4).is_none());
        }
        Ok(())
    }
}
