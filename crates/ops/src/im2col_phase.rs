//! Strided `im2col` / `col2im` on phase planes.
//!
//! With stride `s`, output `o` reads input `o·s + r` for a kernel tap's offset `r`. Split
//! each channel plane into its `s·s` phases `x[c, py::s, px::s]` (each `[⌈H/s⌉, ⌈W/s⌉]`)
//! and every patch-matrix row reads one phase with stride 1, shifted by a constant: when a
//! phase is exactly as wide as the output (stride 2 on an even image with "same" padding,
//! as in the transposed convolution's backward and the ResNet encoder's downsampling), a row
//! is one contiguous copy (`RowMap::copy_shifted`) instead of one short strided gather per
//! output row. `col2im` accumulates into phases and merges them back.

use crate::im2col::{Grid, RowMap};
use candle::WithDType;

impl Grid {
    /// Whether a strided convolution runs on phase planes: stride above 1 and phase planes
    /// exactly as wide as the output (stride 2 on an even-sized image with "same" padding,
    /// as in the ResNet encoder's downsampling and the transposed convolution's backward).
    pub(crate) fn phased(&self) -> bool {
        self.g.stride > 1 && self.w.div_ceil(self.g.stride) == self.ow
    }

    /// The size `[PH, PW] = [⌈H/s⌉, ⌈W/s⌉]` of one phase plane (see `split_phases`).
    fn phase_dims(&self) -> (usize, usize) {
        let s = self.g.stride;
        (self.h.div_ceil(s), self.w.div_ceil(s))
    }

    /// Kernel tap `kk` along an axis of `outputs` outputs and `size` phase pixels: output `o`
    /// reads input `o·s + kk·d - p = (o + q)·s + phase`, so phase pixel `o + q`. Returns the
    /// phase, the outputs `[lo, hi)` that read inside the phase plane, and the pixel `lo`
    /// reads.
    fn phase_axis(&self, kk: usize, outputs: usize, size: usize) -> (usize, usize, usize, usize) {
        let s = self.g.stride as isize;
        let r = (kk * self.g.dilation) as isize - self.g.padding as isize;
        let (phase, q) = (r.rem_euclid(s) as usize, r.div_euclid(s));
        let lo = (-q).max(0) as usize;
        let hi = (size as isize - q).clamp(0, outputs as isize) as usize;
        (phase, lo, hi, (lo as isize + q).max(0) as usize)
    }

    /// For every kernel tap `(kh, kw)`, in row order of the patch matrix: the phase plane
    /// `py·s + px` it reads and where (in phase coordinates, stride 1), or `None` when it
    /// reads only padding.
    fn phase_taps(&self) -> Vec<(usize, Option<RowMap>)> {
        let (s, (ph, pw)) = (self.g.stride, self.phase_dims());
        let cols: Vec<_> = (0..self.k)
            .map(|kw| self.phase_axis(kw, self.ow, pw))
            .collect();
        (0..self.k)
            .flat_map(|kh| {
                let (py, oy0, oy1, iy0) = self.phase_axis(kh, self.oh, ph);
                cols.iter().map(move |&(px, lo, hi, start)| {
                    let map = (oy0 < oy1 && lo < hi).then_some(RowMap {
                        lo,
                        hi,
                        start,
                        oy0,
                        oy1,
                        iy0,
                    });
                    (py * s + px, map)
                })
            })
            .collect()
    }

    /// One image `x: [C, H, W]` as `C·s·s` phase planes `[PH, PW]`, plane `(c, py, px)`
    /// holding `x[c, py::s, px::s]`, into `out` (zeroed by the caller; entries past the
    /// image's edge stay zero).
    fn split_phases<T: WithDType>(&self, x: &[T], out: &mut [T]) {
        let (s, (ph, pw), hw) = (self.g.stride, self.phase_dims(), self.h * self.w);
        let plane = ph * pw;
        for (img, planes) in x.chunks_exact(hw).zip(out.chunks_exact_mut(s * s * plane)) {
            for (iy, src) in img.chunks_exact(self.w).enumerate() {
                let (r, py) = (iy / s, iy % s);
                let rows = &mut planes[py * s * plane..][..s * plane];
                if s == 2 && self.w.is_multiple_of(2) {
                    // Stride 2 on an even row: one de-interleaving pass, which vectorizes.
                    let (even, odd) = rows.split_at_mut(plane);
                    let pairs = even[r * pw..][..pw]
                        .iter_mut()
                        .zip(&mut odd[r * pw..][..pw]);
                    for ((e, o), two) in pairs.zip(src.chunks_exact(2)) {
                        (*e, *o) = (two[0], two[1]);
                    }
                    continue;
                }
                for (px, row) in rows.chunks_exact_mut(plane).enumerate() {
                    let row = &mut row[r * pw..][..pw];
                    for (o, chunk) in row.iter_mut().zip(src.chunks(s)) {
                        if let Some(&v) = chunk.get(px) {
                            *o = v;
                        }
                    }
                }
            }
        }
    }

    /// Adds phase planes (laid out as `split_phases` writes them) back into the image
    /// `dst: [C, H, W]`; entries past the image's edge are dropped.
    fn merge_phases<T: WithDType>(&self, planes: &[T], dst: &mut [T]) {
        let (s, (ph, pw), hw) = (self.g.stride, self.phase_dims(), self.h * self.w);
        let plane = ph * pw;
        for (img, planes) in dst
            .chunks_exact_mut(hw)
            .zip(planes.chunks_exact(s * s * plane))
        {
            for (iy, out) in img.chunks_exact_mut(self.w).enumerate() {
                let (r, py) = (iy / s, iy % s);
                let rows = &planes[py * s * plane..][..s * plane];
                if s == 2 && self.w.is_multiple_of(2) {
                    // Stride 2 on an even row: one interleaving pass, which vectorizes.
                    let (even, odd) = rows.split_at(plane);
                    let pairs = even[r * pw..][..pw].iter().zip(&odd[r * pw..][..pw]);
                    for ((&e, &o), two) in pairs.zip(out.chunks_exact_mut(2)) {
                        two[0] += e;
                        two[1] += o;
                    }
                    continue;
                }
                for (px, row) in rows.chunks_exact(plane).enumerate() {
                    let row = &row[r * pw..][..pw];
                    for (chunk, &v) in out.chunks_mut(s).zip(row) {
                        if let Some(o) = chunk.get_mut(px) {
                            *o += v;
                        }
                    }
                }
            }
        }
    }

    /// `im2col_image` on phase planes (see `phased`).
    pub(crate) fn im2col_phased<T: WithDType>(&self, x: &[T], dst: &mut [T]) {
        let (s, (ph, pw)) = (self.g.stride, self.phase_dims());
        let (plane, ohw) = (ph * pw, self.ohw());
        let mut phases = vec![T::zero(); self.c * s * s * plane];
        self.split_phases(x, &mut phases);
        let taps = self.phase_taps();
        let channels = dst.chunks_exact_mut(ohw * taps.len());
        for (planes, block) in phases.chunks_exact(s * s * plane).zip(channels) {
            for (patch, &(phase, tap)) in block.chunks_exact_mut(ohw).zip(&taps) {
                match tap {
                    None => patch.fill(T::zero()),
                    Some(m) => m.copy_shifted(patch, &planes[phase * plane..][..plane], self.ow),
                }
            }
        }
    }

    /// `col2im_image` on phase planes (see `phased`).
    pub(crate) fn col2im_phased<T: WithDType>(&self, cols: &mut [T], dst: &mut [T]) {
        let (s, (ph, pw)) = (self.g.stride, self.phase_dims());
        let (plane, ohw) = (ph * pw, self.ohw());
        let mut phases = vec![T::zero(); self.c * s * s * plane];
        let taps = self.phase_taps();
        let channels = cols.chunks_exact_mut(ohw * taps.len());
        for (planes, block) in phases.chunks_exact_mut(s * s * plane).zip(channels) {
            for (patch, &(phase, tap)) in block.chunks_exact_mut(ohw).zip(&taps) {
                if let Some(m) = tap {
                    m.add_shifted(patch, &mut planes[phase * plane..][..plane], self.ow);
                }
            }
        }
        self.merge_phases(&phases, dst);
    }
}
