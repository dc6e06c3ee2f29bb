//! One tile convolution: a register-tiled sum of shifted runs of a bordered source.

use super::kernel;
use super::{LANES, MR, NV};

/// `grid[co, n] = Σ_j Σ_ci weight(co, ci, j) · src[offs[j] + ci·plane + n]` over grid
/// columns `n`: `oh` rows of `wp` columns, the first `ow` of each valid (the rest read past
/// the row and are dropped), rounded up to whole registers. `src` holds `c_in` channels
/// `plane` elements apart from each offset; the offsets place each tap (and, for a strided
/// convolution, its phase plane).
pub(crate) struct Plan {
    c_in: usize,
    c_out: usize,
    plane: usize,
    wp: usize,
    oh: usize,
    ow: usize,
    offs: Vec<usize>,
    /// `weight` packed `[rows / MR][offs.len()][c_in][MR]`, zero past `c_out`.
    packed: Vec<f32>,
}

/// The sizes of a [`Plan`]: channels in and out, and the grid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanShape {
    /// Source channels summed.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Elements between source channels.
    pub plane: usize,
    /// Grid row width.
    pub wp: usize,
    /// Grid rows.
    pub oh: usize,
    /// Valid columns per grid row.
    pub ow: usize,
}

impl Plan {
    /// The plan of `shape` with tap offsets `offs` and `weight(co, ci, j)` for tap `j`.
    pub(crate) fn new(
        shape: PlanShape,
        offs: Vec<usize>,
        weight: impl Fn(usize, usize, usize) -> f32,
    ) -> Self {
        let PlanShape {
            c_in,
            c_out,
            plane,
            wp,
            oh,
            ow,
        } = shape;
        let mut packed = vec![0f32; c_out.next_multiple_of(MR) * offs.len() * c_in];
        for (panel, block) in packed
            .chunks_exact_mut((offs.len() * c_in * MR).max(1))
            .enumerate()
        {
            for (i, group) in block.chunks_exact_mut(MR).enumerate() {
                let (j, ci) = (i / c_in, i % c_in);
                for (r, v) in group.iter_mut().enumerate() {
                    let co = panel * MR + r;
                    if co < c_out {
                        *v = weight(co, ci, j);
                    }
                }
            }
        }
        Self {
            c_in,
            c_out,
            plane,
            wp,
            oh,
            ow,
            offs,
            packed,
        }
    }

    /// Grid columns per output channel.
    fn cols(&self) -> usize {
        (self.oh * self.wp).next_multiple_of(LANES)
    }

    /// Elements of the grid [`Self::run`] writes.
    pub(crate) fn grid_len(&self) -> usize {
        self.c_out.next_multiple_of(MR) * self.cols()
    }

    /// Elements of the source [`Self::run`] reads, from its start.
    pub(crate) fn reach(&self) -> usize {
        let last = self.offs.iter().max().copied().unwrap_or(0);
        last + (self.c_in.max(1) - 1) * self.plane + self.cols()
    }

    /// Fills `grid` (of [`Self::grid_len`]) from `src` (of at least [`Self::reach`]).
    ///
    /// # Panics
    /// Shorter slices.
    pub(crate) fn run(&self, src: &[f32], grid: &mut [f32]) {
        let cols = self.cols();
        let panel_len = self.offs.len() * self.c_in * MR;
        if panel_len == 0 {
            grid.fill(0.0);
            return;
        }
        for n0 in (0..cols).step_by(NV * LANES) {
            for (panel, a) in self.packed.chunks_exact(panel_len).enumerate() {
                let c = &mut grid[panel * MR * cols + n0..];
                let (b, offs, ci, pl) = (&src[n0..], &self.offs[..], self.c_in, self.plane);
                match ((cols - n0) / LANES).min(NV) {
                    3 => kernel::tile::<3>(a, b, offs, ci, pl, c, cols),
                    2 => kernel::tile::<2>(a, b, offs, ci, pl, c, cols),
                    _ => kernel::tile::<1>(a, b, offs, ci, pl, c, cols),
                }
            }
        }
    }

    /// The valid part of each grid row of output channel `co < c_out`: `ow` values for
    /// output rows `0..oh`.
    pub(crate) fn rows<'a>(&self, grid: &'a [f32], co: usize) -> impl Iterator<Item = &'a [f32]> {
        let (wp, ow) = (self.wp, self.ow);
        grid[co * self.cols()..][..self.oh * wp]
            .chunks_exact(wp)
            .map(move |r| &r[..ow])
    }
}
