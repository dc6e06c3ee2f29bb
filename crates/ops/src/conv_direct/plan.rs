//! One tile convolution: a register-tiled sum of shifted runs of a bordered source.

use super::kernel;
use super::{LANES, MR, NV};

/// `out[co, (a, b)] = Σ_j Σ_ci weight(co, ci, j) · src[offs[j] + ci·plane + a·wp + b]` for
/// the output pixels `a < oh`, `b < ow`: `src` holds `c_in` channels `plane` elements apart
/// from each offset, rows `wp` wide; the offsets place each tap (and, for a strided
/// convolution, its phase plane).
///
/// Two register tilings, chosen per plan by the share of the work that is useful:
/// - [`Tiling::Pixels`]: [`kernel::PX`] pixels by up to 64 output channels in vectors,
///   each pixel's input broadcast, the results scattered into the output: no wasted
///   columns, but channels padded to 16 (best from 16 output channels on);
/// - [`Tiling::Grid`]: [`MR`] output channels by up to `NV·16` consecutive grid columns
///   (`a·wp + b`, including the `wp - ow` border columns of each row, computed and dropped),
///   each weight broadcast; for few output channels.
pub(crate) struct Plan {
    shape: PlanShape,
    offs: Vec<usize>,
    tiling: Tiling,
}

/// How a [`Plan`] tiles its work, with its kernel packed for it.
enum Tiling {
    /// `[offs.len()][c_in][c_out rounded up to 16]`.
    Pixels(Vec<f32>),
    /// `[c_out rounded up to MR / MR][offs.len()][c_in][MR]`.
    Grid(Vec<f32>),
}

/// The sizes of a [`Plan`]: channels in and out, and the output grid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanShape {
    /// Source channels summed.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Elements between source channels.
    pub plane: usize,
    /// Source row width.
    pub wp: usize,
    /// Output rows.
    pub oh: usize,
    /// Output columns.
    pub ow: usize,
}

/// The pixel tiling's efficiency relative to the grid's at equal useful work (measured
/// on 64 channels at 14x14: 77 % against 88 % of the FMA peak per computed element).
const PIXEL_KERNEL_EFFICIENCY: f64 = 0.9;

impl Plan {
    /// The plan of `shape` with tap offsets `offs` and `weight(co, ci, j)` for tap `j`.
    pub(crate) fn new(
        shape: PlanShape,
        offs: Vec<usize>,
        weight: impl Fn(usize, usize, usize) -> f32 + Sync,
    ) -> Self {
        let c_out = shape.c_out;
        let useful = (shape.oh * shape.ow * c_out) as f64;
        let by_pixels = useful / (shape.oh * shape.ow * c_out.next_multiple_of(LANES)) as f64;
        let cols = (shape.oh * shape.wp).next_multiple_of(LANES);
        let by_grid = useful / (cols * c_out.next_multiple_of(MR)) as f64;
        Self::tiled(
            shape,
            offs,
            weight,
            by_pixels * PIXEL_KERNEL_EFFICIENCY >= by_grid,
        )
    }

    /// The plan with the pixel tiling (`pixels`) or the grid tiling.
    fn tiled(
        shape: PlanShape,
        offs: Vec<usize>,
        weight: impl Fn(usize, usize, usize) -> f32 + Sync,
        pixels: bool,
    ) -> Self {
        let PlanShape { c_in, c_out, .. } = shape;
        let tiling = if pixels {
            let ldw = c_out.next_multiple_of(LANES);
            let mut packed = vec![0f32; offs.len() * c_in * ldw];
            // Blocks of 64 rows on rayon's threads for large kernels (a serial stretch the
            // other workers waited through).
            crate::for_chunks(&mut packed, 64 * ldw, |first, rows| {
                for (r, row) in rows.chunks_exact_mut(ldw).enumerate() {
                    let i = first / ldw + r;
                    let (j, ci) = (i / c_in, i % c_in);
                    for (co, v) in row[..c_out].iter_mut().enumerate() {
                        *v = weight(co, ci, j);
                    }
                }
            });
            Tiling::Pixels(packed)
        } else {
            let mut packed = vec![0f32; c_out.next_multiple_of(MR) * offs.len() * c_in];
            let panel = (offs.len() * c_in * MR).max(1);
            for (p, block) in packed.chunks_exact_mut(panel).enumerate() {
                for (i, group) in block.chunks_exact_mut(MR).enumerate() {
                    let (j, ci) = (i / c_in, i % c_in);
                    for (r, v) in group.iter_mut().enumerate() {
                        let co = p * MR + r;
                        if co < c_out {
                            *v = weight(co, ci, j);
                        }
                    }
                }
            }
            Tiling::Grid(packed)
        };
        Self {
            shape,
            offs,
            tiling,
        }
    }

    /// Grid columns per output channel (the grid tiling).
    fn cols(&self) -> usize {
        (self.shape.oh * self.shape.wp).next_multiple_of(LANES)
    }

    /// Scratch elements [`Self::run`] needs besides its source: the grid tiling's grid.
    pub(crate) fn scratch_len(&self) -> usize {
        match self.tiling {
            Tiling::Pixels(_) => 0,
            Tiling::Grid(_) => self.shape.c_out.next_multiple_of(MR) * self.cols(),
        }
    }

    /// Elements of the source [`Self::run`] reads, from its start.
    pub(crate) fn reach(&self) -> usize {
        let s = &self.shape;
        let last = self.offs.iter().max().copied().unwrap_or(0);
        last + (s.c_in.max(1) - 1) * s.plane + self.cols()
    }

    /// Writes output pixel `(a, b)` of channel `co` to `out[co·ld + at(a, b)]`, from `src`
    /// (of at least [`Self::reach`]), with `scratch` of [`Self::scratch_len`]. Outputs no
    /// tap reaches (a plan without taps) are left as they are.
    ///
    /// # Panics
    /// Shorter slices, or positions outside them.
    pub(crate) fn run(
        &self,
        src: &[f32],
        scratch: &mut [f32],
        out: &mut [f32],
        ld: usize,
        at: impl Fn(usize, usize) -> usize,
    ) {
        let s = &self.shape;
        if self.offs.is_empty() || s.c_in == 0 || s.oh * s.ow == 0 {
            return;
        }
        match &self.tiling {
            Tiling::Pixels(packed) => self.run_pixels(packed, src, out, ld, at),
            Tiling::Grid(packed) => {
                let cols = self.cols();
                let grid = &mut scratch[..self.scratch_len()];
                self.run_grid(packed, src, grid);
                for (co, rows) in grid.chunks_exact(cols).take(s.c_out).enumerate() {
                    let plane = &mut out[co * ld..];
                    for (a, row) in rows.chunks_exact(s.wp).take(s.oh).enumerate() {
                        for (b, &v) in row[..s.ow].iter().enumerate() {
                            plane[at(a, b)] = v;
                        }
                    }
                }
            }
        }
    }

    /// The pixel tiling (see [`Plan`]).
    fn run_pixels(
        &self,
        packed: &[f32],
        src: &[f32],
        out: &mut [f32],
        ld: usize,
        at: impl Fn(usize, usize) -> usize,
    ) {
        let s = &self.shape;
        let (ldw, n) = (s.c_out.next_multiple_of(LANES), s.oh * s.ow);
        let shape = (s.c_in, s.plane);
        for first in (0..n).step_by(kernel::PX) {
            // A last, short tile repeats its last pixel (the same value written twice).
            let pick = |r: usize| {
                let i = (first + r).min(n - 1);
                (i / s.ow, i % s.ow)
            };
            let px = kernel::Pixels {
                src: std::array::from_fn(|r| pick(r).0 * s.wp + pick(r).1),
                out: std::array::from_fn(|r| at(pick(r).0, pick(r).1)),
            };
            for co0 in (0..ldw).step_by(4 * LANES) {
                let (w, o) = (&packed[co0..], &mut out[co0 * ld..]);
                let c = (ld, (s.c_out - co0).min(4 * LANES));
                let offs = &self.offs;
                match ((ldw - co0) / LANES).min(4) {
                    4 => kernel::px_tile::<4>(w, ldw, src, offs, shape, &px, o, c),
                    3 => kernel::px_tile::<3>(w, ldw, src, offs, shape, &px, o, c),
                    2 => kernel::px_tile::<2>(w, ldw, src, offs, shape, &px, o, c),
                    _ => kernel::px_tile::<1>(w, ldw, src, offs, shape, &px, o, c),
                }
            }
        }
    }

    /// The grid tiling (see [`Plan`]): fills `grid` (`[c_out rounded up to MR][cols]`).
    fn run_grid(&self, packed: &[f32], src: &[f32], grid: &mut [f32]) {
        let (s, cols) = (&self.shape, self.cols());
        let panel_len = self.offs.len() * s.c_in * MR;
        for n0 in (0..cols).step_by(NV * LANES) {
            for (panel, a) in packed.chunks_exact(panel_len).enumerate() {
                let c = &mut grid[panel * MR * cols + n0..];
                let (b, offs, ci, pl) = (&src[n0..], &self.offs[..], s.c_in, s.plane);
                match ((cols - n0) / LANES).min(NV) {
                    3 => kernel::tile::<3>(a, b, offs, ci, pl, c, cols),
                    2 => kernel::tile::<2>(a, b, offs, ci, pl, c, cols),
                    _ => kernel::tile::<1>(a, b, offs, ci, pl, c, cols),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaekit_core::{NoiseSource, SeededNoise};

    /// Both tilings against the defining sum, in f64, over channel counts that leave
    /// partial registers and panels, short last pixel tiles, and a transposed output
    /// position map.
    #[test]
    fn both_tilings_compute_the_sum() -> candle::Result<()> {
        if !kernel::available() {
            eprintln!("conv_direct: no AVX-512F on this CPU, tilings not tested");
            return Ok(());
        }
        let mut noise = SeededNoise::new(51);
        // (c_in, c_out, oh, ow, wp, offsets)
        for (c_in, c_out, oh, ow, wp, offs) in [
            (3, 1, 5, 7, 9, vec![0, 1, 10, 20]),
            (4, 70, 3, 4, 6, vec![0, 7]),
            (2, 17, 7, 7, 8, vec![9]),
            (5, 64, 2, 14, 16, vec![0, 1, 2, 16, 17, 18, 32, 33, 34]),
        ] {
            let plane = (oh + 3) * wp;
            let shape = PlanShape {
                c_in,
                c_out,
                plane,
                wp,
                oh,
                ow,
            };
            let n_w = c_out * c_in * offs.len();
            let w = noise.uniform(&n_w.into(), candle::DType::F32, &candle::Device::Cpu)?;
            let w: Vec<f32> = w.to_vec1()?;
            let weight = |co: usize, ci: usize, j: usize| w[(co * c_in + ci) * offs.len() + j];
            let probe = Plan::tiled(shape, offs.clone(), weight, true);
            let n_src = probe.reach() + 1;
            let src =
                noise.standard_normal(&n_src.into(), candle::DType::F32, &candle::Device::Cpu)?;
            let src: Vec<f32> = src.to_vec1()?;
            // Output pixel (a, b) of channel co at co·ld + b·oh + a (transposed).
            let ld = oh * ow + 3;
            let mut want = vec![0f64; c_out * ld];
            for co in 0..c_out {
                for a in 0..oh {
                    for b in 0..ow {
                        let mut sum = 0f64;
                        for (j, &off) in offs.iter().enumerate() {
                            for ci in 0..c_in {
                                let x = src[off + ci * plane + a * wp + b];
                                sum += weight(co, ci, j) as f64 * x as f64;
                            }
                        }
                        want[co * ld + b * oh + a] = sum;
                    }
                }
            }
            for pixels in [true, false] {
                let plan = Plan::tiled(shape, offs.clone(), weight, pixels);
                let mut scratch = vec![0f32; plan.scratch_len()];
                let mut out = vec![0f32; c_out * ld];
                plan.run(&src, &mut scratch, &mut out, ld, |a, b| b * oh + a);
                for (i, (&o, &e)) in out.iter().zip(&want).enumerate() {
                    let what = format!("pixels {pixels}, {c_in}->{c_out} {oh}x{ow}, at {i}");
                    assert!(
                        (o as f64 - e).abs() <= 1e-4 * (1.0 + e.abs()),
                        "{what}: {o} vs {e}"
                    );
                }
            }
        }
        Ok(())
    }
}
