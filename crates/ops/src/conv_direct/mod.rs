//! A direct convolution in f32 for CPUs with AVX-512F: dilation 1, an odd square kernel,
//! padding `(k - 1) / 2`, stride 1, or stride 2 on images of even height and width (the
//! ResNet blocks' convolutions, their downsampling, and the transposed convolutions that
//! upsample). It computes the three maps of such a layer without a patch matrix.
//!
//! **Forward.** Each input channel is split into its `s × s` phase planes
//! (`x[c, py::s, px::s]`, one plane at stride 1) and copied into zero-bordered planes of
//! width `Wp` (applying a pre-activation `f` on the way, if the layer has one). On that
//! grid, output pixel `(y, x)` reads kernel tap `(ky, kx)` of every channel at
//! `y·Wp + x + shift(ky, kx)` of one phase plane: a constant shift per tap, no index
//! arithmetic per pixel. [`plan::Plan`] sums weight × input over taps and channels on one
//! of two register tilings, chosen per layer by the share of useful work:
//! - 6 pixels by up to 64 output channels in vectors, each pixel's input broadcast, the
//!   results scattered into the output planes (`kernel::px_tile`): no border columns, only
//!   the output channels padded to a multiple of 16;
//! - [`MR`] output channels by `NV·16` consecutive grid columns `y·Wp + x`, each weight
//!   broadcast (`kernel::tile`), the border columns of each grid row computed and dropped
//!   (1/8 of the work at 14×14): for few output channels.
//!
//! **Data gradient.** For each phase `(py, px)` of the input, the taps whose stride-`s`
//! steps land on it form a small stride-1 convolution of the bordered `dy` (all `k²` taps,
//! flipped, at stride 1; for a 3×3 kernel at stride 2, one, two, two and four taps), run on
//! the same tilings and written straight to the phase's pixels.
//!
//! **Weight gradient** `dW[co, ci, t] = Σ_pixels dy[co, pixel] · x_phase[ci, pixel + tap t]`
//! ([`DirectConv::weight_grad_image`]): `dy` transposed to pixel-major rows of output
//! channels (vectors), [`WG_MR`] input channels broadcast from the bordered planes, one tile
//! per tap (`kernel::wg_tile`); only the output's own pixels are visited.
//!
//! Sums run over taps, then channels (or pixels), in a fixed order, and images in fixed
//! blocks: results do not depend on the thread count. `kernel.rs` holds the only unsafe
//! code (AVX-512 loads, stores and scatters through raw pointers, each tile's reach checked
//! against its slices first).

mod kernel;
mod plan;

use crate::FusedActivation;
use crate::im2col::Grid;
use plan::{Plan, PlanShape};

/// Output channels per register tile (the weights broadcast per column step).
const MR: usize = 8;

/// f32 lanes of one AVX-512 register.
const LANES: usize = 16;

/// Registers of grid columns per tile: 8 × 3 accumulators, 3 column loads and one
/// broadcast weight keep 28 of the 32 vector registers busy.
const NV: usize = 3;

/// Input channels per weight-gradient tile: 6 × 4 accumulators, 4 loads of `dy` and one
/// broadcast input keep 29 of the 32 vector registers busy.
const WG_MR: usize = 6;

/// Output channels per weight-gradient tile: four registers.
const WG_NV: usize = 4;

/// One direct convolution layer: `c` input channels of `h × w` to `o` output channels of
/// `h/s × w/s`, kernel `k × k`, padding `p = (k - 1) / 2`, stride `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirectConv {
    c: usize,
    o: usize,
    h: usize,
    w: usize,
    k: usize,
    p: usize,
    s: usize,
    /// An activation applied to the layer's input as it is bordered (the forward map and
    /// the weight gradient).
    pre: Option<FusedActivation>,
}

/// The bordered phase planes of the layer's input: `s·s` groups of `group` planes, each
/// `plane` elements, `wp` wide, the image starting `bl` rows and columns in.
#[derive(Debug, Clone, Copy)]
struct Bordered {
    bl: usize,
    wp: usize,
    plane: usize,
    group: usize,
}

/// Data-gradient phase plans: `(py, px, plan)`.
type PhasePlans = Vec<(usize, usize, Plan)>;

/// The forward map or the data gradient of a [`DirectConv`], its kernel packed: image by
/// image through [`Job::image`].
pub(crate) enum Job {
    /// The forward map's one plan.
    Forward(Plan),
    /// The data gradient's plans, one per input phase some tap reaches.
    DataGrad(PhasePlans),
}

impl DirectConv {
    /// The direct form of the convolution on `grid` with `o` output channels, or `None`
    /// where it does not apply: the geometry (see the module docs), images of 16 M pixels
    /// or more (the scatter's offsets are i32), or a CPU without AVX-512F.
    pub(crate) fn new(grid: &Grid, o: usize) -> Option<Self> {
        let g = &grid.g;
        let even = grid.h.is_multiple_of(2) && grid.w.is_multiple_of(2);
        // The pixel tile scatters with i32 offsets up to 128 channel planes apart.
        let small = grid.h.saturating_mul(grid.w).saturating_mul(128) < i32::MAX as usize;
        let fits = g.dilation == 1
            && grid.k % 2 == 1
            && 2 * g.padding + 1 == grid.k
            && (g.stride == 1 || (g.stride == 2 && even))
            && small;
        (fits && kernel::available()).then_some(Self {
            c: grid.c,
            o,
            h: grid.h,
            w: grid.w,
            k: grid.k,
            p: g.padding,
            s: g.stride,
            pre: None,
        })
    }

    /// The same convolution of `f(x)` for `pre = Some(f)`: the forward map and the weight
    /// gradient apply `f` to each input plane as they border it.
    pub(crate) fn pre_activated(self, pre: Option<FusedActivation>) -> Self {
        Self { pre, ..self }
    }

    /// Output channels.
    pub(crate) fn out_channels(&self) -> usize {
        self.o
    }

    /// Elements of one output image, `o · h/s · w/s`.
    pub(crate) fn out_len(&self) -> usize {
        let (oh, ow) = self.out_dims();
        self.o * oh * ow
    }

    /// Output height and width.
    fn out_dims(&self) -> (usize, usize) {
        (self.h / self.s, self.w / self.s)
    }

    /// The input's bordered layout: a tap reads its phase plane shifted by
    /// `q = ⌊(k_y - p) / s⌋ ∈ [-⌈p/s⌉, ⌊p/s⌋]`, so `⌈p/s⌉` border before and `⌊p/s⌋` after.
    fn bordered(&self) -> Bordered {
        let (oh, ow) = self.out_dims();
        let (bl, br) = (self.p.div_ceil(self.s), self.p / self.s);
        let wp = ow + bl + br;
        Bordered {
            bl,
            wp,
            plane: (oh + bl + br) * wp,
            group: self.c.next_multiple_of(WG_MR),
        }
    }

    /// Offset of each tap `t = ky·k + kx` in the bordered input: its phase plane's group
    /// and its shift.
    fn tap_offsets(&self) -> Vec<usize> {
        let (b, s, p) = (self.bordered(), self.s as isize, self.p as isize);
        let axis = |kk: usize| {
            let r = kk as isize - p;
            (
                r.rem_euclid(s) as usize,
                (r.div_euclid(s) + b.bl as isize) as usize,
            )
        };
        (0..self.k * self.k)
            .map(|t| {
                let ((py, qy), (px, qx)) = (axis(t / self.k), axis(t % self.k));
                (py * self.s + px) * b.group * b.plane + qy * b.wp + qx
            })
            .collect()
    }

    /// Copies the image `x: [c, h, w]` (or `f(x)` with a pre-activation `f`) into the
    /// interiors of its bordered phase planes.
    fn border_input(&self, x: &[f32], dst: &mut [f32]) {
        let (b, s, w) = (self.bordered(), self.s, self.w);
        let mut activated = vec![0f32; if self.pre.is_some() { self.h * w } else { 0 }];
        for (ci, img) in x.chunks_exact(self.h * w).enumerate() {
            let img = match self.pre {
                Some(f) => {
                    f.apply_into(img, &mut activated);
                    &activated[..]
                }
                None => img,
            };
            let first = ci * b.plane + b.bl * b.wp + b.bl;
            if s == 1 {
                for (row, start) in img.chunks_exact(w).zip((first..).step_by(b.wp)) {
                    dst[start..][..w].copy_from_slice(row);
                }
                continue;
            }
            // Stride 2: rows alternate between the phase groups (py = 0, 1), and within
            // a row even and odd columns go to phases px = 0 and 1, `group` planes apart.
            let (half, phase) = (w / 2, b.group * b.plane);
            for (rows, start) in img.chunks_exact(2 * w).zip((first..).step_by(b.wp)) {
                for (py, row) in rows.chunks_exact(w).enumerate() {
                    let at = start + 2 * py * phase;
                    let (lo, hi) = dst.split_at_mut(at + phase);
                    let pairs = lo[at..at + half].iter_mut().zip(&mut hi[..half]);
                    for ((e, o), two) in pairs.zip(row.chunks_exact(2)) {
                        (*e, *o) = (two[0], two[1]);
                    }
                }
            }
        }
    }

    /// The forward map (`forward`) or the data gradient for the kernel `w: [o, c, k, k]`.
    pub(crate) fn job(&self, forward: bool, w: &[f32]) -> Job {
        match forward {
            true => Job::Forward(self.forward_plan(w)),
            false => Job::DataGrad(self.data_grad_plans(w)),
        }
    }

    /// Scratch elements [`Self::image`] needs for `job`; zero it once: the borders are
    /// never written, so one buffer serves any number of images.
    pub(crate) fn scratch_len(&self, job: &Job) -> usize {
        match job {
            Job::Forward(plan) => self.forward_scratch_len(plan),
            Job::DataGrad(plans) => self.data_grad_scratch_len(plans),
        }
    }

    /// One image of `job`: `x: [c, h, w]` to `y: [o, h/s, w/s]` (forward), or
    /// `dy: [o, h/s, w/s]` to `dx: [c, h, w]` (zeroed by the caller: pixels no tap reaches
    /// stay zero), in `scratch` of [`Self::scratch_len`].
    ///
    /// # Panics
    /// Slices shorter than the geometry says.
    pub(crate) fn image(&self, job: &Job, src: &[f32], out: &mut [f32], scratch: &mut [f32]) {
        match job {
            Job::Forward(plan) => self.forward_image(plan, src, out, scratch),
            Job::DataGrad(plans) => self.data_grad_image(plans, src, out, scratch),
        }
    }

    /// The forward plan for the kernel `w: [o, c, k, k]`.
    fn forward_plan(&self, w: &[f32]) -> Plan {
        let ((oh, ow), b, kk) = (self.out_dims(), self.bordered(), self.k * self.k);
        let shape = PlanShape {
            c_in: self.c,
            c_out: self.o,
            plane: b.plane,
            wp: b.wp,
            oh,
            ow,
        };
        Plan::new(shape, self.tap_offsets(), |co, ci, t| {
            w[(co * self.c + ci) * kk + t]
        })
    }

    /// Length of the bordered input, with the columns a forward tile reads past it.
    fn input_len(&self, plan: &Plan) -> usize {
        self.bordered_len().max(plan.reach())
    }

    /// Scratch elements [`Self::forward_image`] needs.
    fn forward_scratch_len(&self, plan: &Plan) -> usize {
        self.input_len(plan) + plan.scratch_len()
    }

    /// One image of the forward map (see [`Self::image`]).
    fn forward_image(&self, plan: &Plan, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        let (bordered, rest) = scratch.split_at_mut(self.input_len(plan));
        self.border_input(x, bordered);
        let (oh, ow) = self.out_dims();
        plan.run(bordered, rest, y, oh * ow, |a, b| a * ow + b);
    }

    /// `dy`'s bordered layout for the data gradient: `(before, wp, plane)`. Input phase
    /// `py` reads `dy` row `a + d` for input row `s·a + py` and tap `ky` with
    /// `d = (py + p - ky) / s` exact.
    fn dy_layout(&self) -> (usize, usize, usize) {
        let (s, p) = (self.s as isize, self.p as isize);
        let ds = (0..s).flat_map(|py| {
            (0..self.k as isize)
                .filter(move |ky| (py + p - ky).rem_euclid(s) == 0)
                .map(move |ky| (py + p - ky) / s)
        });
        let (lo, hi) = ds.fold((0, 0), |(lo, hi), d| (d.min(lo), d.max(hi)));
        let (before, after) = ((-lo) as usize, hi as usize);
        let (oh, ow) = self.out_dims();
        let wp = ow + before + after;
        (before, wp, (oh + before + after) * wp)
    }

    /// The data-gradient plans for the kernel `w: [o, c, k, k]`, one per input phase that
    /// some tap reaches.
    fn data_grad_plans(&self, w: &[f32]) -> PhasePlans {
        let ((oh, ow), (before, wp, plane)) = (self.out_dims(), self.dy_layout());
        let (s, p, k) = (self.s, self.p as isize, self.k);
        let taps = |ph: usize| -> Vec<(usize, usize)> {
            (0..k)
                .filter(|&kk| (ph as isize + p - kk as isize).rem_euclid(s as isize) == 0)
                .map(|kk| {
                    (
                        kk,
                        ((ph as isize + p - kk as isize) / s as isize + before as isize) as usize,
                    )
                })
                .collect()
        };
        let shape = PlanShape {
            c_in: self.o,
            c_out: self.c,
            plane,
            wp,
            oh,
            ow,
        };
        let mut plans = Vec::new();
        for py in 0..s {
            for px in 0..s {
                let (ys, xs) = (taps(py), taps(px));
                let pairs: Vec<_> = ys
                    .iter()
                    .flat_map(|&y| xs.iter().map(move |&x| (y, x)))
                    .collect();
                if pairs.is_empty() {
                    continue;
                }
                let offs = pairs
                    .iter()
                    .map(|&((_, dy), (_, dx))| dy * wp + dx)
                    .collect();
                let plan = Plan::new(shape, offs, |c, o, j| {
                    let ((ky, _), (kx, _)) = pairs[j];
                    w[((o * self.c + c) * k + ky) * k + kx]
                });
                plans.push((py, px, plan));
            }
        }
        plans
    }

    /// Length of the bordered `dy`, with the columns the tiles read past it.
    fn dy_len(&self, plans: &PhasePlans) -> usize {
        let reach = plans.iter().map(|(_, _, p)| p.reach()).max().unwrap_or(0);
        (self.o * self.dy_layout().2).max(reach)
    }

    /// Scratch elements [`Self::data_grad_image`] needs.
    fn data_grad_scratch_len(&self, plans: &PhasePlans) -> usize {
        let rest = plans
            .iter()
            .map(|(_, _, p)| p.scratch_len())
            .max()
            .unwrap_or(0);
        self.dy_len(plans) + rest
    }

    /// One image of the data gradient (see [`Self::image`]).
    fn data_grad_image(&self, plans: &PhasePlans, dy: &[f32], dx: &mut [f32], scratch: &mut [f32]) {
        let ((oh, ow), (before, wp, plane), s) = (self.out_dims(), self.dy_layout(), self.s);
        let (bordered, rest) = scratch.split_at_mut(self.dy_len(plans));
        for (co, img) in dy.chunks_exact(oh * ow).enumerate() {
            for (y, row) in img.chunks_exact(ow).enumerate() {
                bordered[co * plane + (y + before) * wp + before..][..ow].copy_from_slice(row);
            }
        }
        let w = self.w;
        for &(py, px, ref plan) in plans {
            plan.run(bordered, rest, dx, self.h * w, |a, b| {
                (s * a + py) * w + s * b + px
            });
        }
    }

    /// Output channels rounded up to whole registers (the weight gradient's vectors).
    fn wg_outputs(&self) -> usize {
        self.o.next_multiple_of(LANES)
    }

    /// Elements of one image block's weight-gradient partial sum, laid out
    /// `[k·k][group][wg_outputs]` (see [`Self::weight_grad_image`]).
    pub(crate) fn wg_partial_len(&self) -> usize {
        self.k * self.k * self.bordered().group * self.wg_outputs()
    }

    /// Scratch elements [`Self::weight_grad_image`] needs, zeroed once: bordered phase
    /// planes (every tap's reads of the output's pixels stay within them) and `dy`
    /// transposed.
    pub(crate) fn wg_scratch_len(&self) -> usize {
        let (oh, ow) = self.out_dims();
        self.bordered_len() + oh * ow * self.wg_outputs()
    }

    /// Adds one image's weight gradient to `partial` (see [`Self::wg_partial_len`]):
    /// `partial[t, ci, co] += Σ_pixels x_phase[ci, pixel + tap t] · dy[co, pixel]` for
    /// `x: [c, h, w]` and `dy: [o, h/s, w/s]`, in `scratch` of [`Self::wg_scratch_len`].
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
        let (bordered, dyt) = scratch.split_at_mut(self.bordered_len());
        self.border_input(x, bordered);
        self.weight_grad_bordered(bordered, dy, partial, dyt);
    }

    /// Elements of the bordered phase planes of one input image.
    fn bordered_len(&self) -> usize {
        let b = self.bordered();
        self.s * self.s * b.group * b.plane
    }

    /// [`Self::weight_grad_image`] of an image already bordered (`bordered`, at least
    /// [`Self::bordered_len`] long), `dyt` the scratch for `dy` transposed (`oh·ow` rows of
    /// [`Self::wg_outputs`], zeroed once).
    fn weight_grad_bordered(
        &self,
        bordered: &[f32],
        dy: &[f32],
        partial: &mut [f32],
        dyt: &mut [f32],
    ) {
        let (b, (oh, ow), outs) = (self.bordered(), self.out_dims(), self.wg_outputs());
        for (co, img) in dy.chunks_exact(oh * ow).take(self.o).enumerate() {
            for (row, &v) in dyt.chunks_exact_mut(outs).zip(img) {
                row[co] = v;
            }
        }
        let shape = kernel::WgShape {
            plane: b.plane,
            wp: b.wp,
            h: oh,
            w: ow,
            ld: outs,
        };
        for (t, &off) in self.tap_offsets().iter().enumerate() {
            for panel in 0..b.group / WG_MR {
                for co0 in (0..outs).step_by(WG_NV * LANES) {
                    let x = &bordered[panel * WG_MR * b.plane + off..];
                    let c = &mut partial[(t * b.group + panel * WG_MR) * outs + co0..];
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

    /// Scratch elements [`Self::forward_and_weight_grad_image`] needs for the forward `job`,
    /// zeroed once.
    pub(crate) fn both_scratch_len(&self, job: &Job) -> usize {
        let (oh, ow) = self.out_dims();
        self.scratch_len(job) + oh * ow * self.wg_outputs()
    }

    /// The forward map of `x: [c, h, w]` into `y: [o, h/s, w/s]` and the weight gradient of
    /// `x` against `dy: [o, h/s, w/s]` added to `partial`, the image bordered once for both:
    /// the same results as [`Self::image`] and [`Self::weight_grad_image`]. For a backward
    /// that needs both (a transposed convolution's: its input's gradient is the forward map
    /// of the output's gradient, and its kernel's gradient pairs the same image with the
    /// input). `job` is a forward job; `scratch` of [`Self::both_scratch_len`].
    ///
    /// # Panics
    /// A data-gradient `job`; slices shorter than the geometry says.
    pub(crate) fn forward_and_weight_grad_image(
        &self,
        job: &Job,
        x: &[f32],
        dy: &[f32],
        y: &mut [f32],
        partial: &mut [f32],
        scratch: &mut [f32],
    ) {
        let Job::Forward(plan) = job else {
            panic!("forward_and_weight_grad_image needs a forward job");
        };
        let (bordered, rest) = scratch.split_at_mut(self.input_len(plan));
        let (plan_scratch, dyt) = rest.split_at_mut(plan.scratch_len());
        self.border_input(x, bordered);
        let (oh, ow) = self.out_dims();
        plan.run(bordered, plan_scratch, y, oh * ow, |a, b| a * ow + b);
        self.weight_grad_bordered(bordered, dy, partial, dyt);
    }

    /// The weight gradient `[o, c, k, k]` from consecutive partial sums (see
    /// [`Self::wg_partial_len`]), added in order (element blocks on rayon's threads).
    pub(crate) fn weight_grad_sum(&self, partials: &[f32]) -> Vec<f32> {
        let (kk, group, outs) = (self.k * self.k, self.bordered().group, self.wg_outputs());
        let size = self.wg_partial_len();
        let parts = partials.len() / size.max(1);
        let mut total = vec![0f32; if parts > 0 { size } else { 0 }];
        // Each element's parts added in order (the first copied), in blocks on rayon's
        // threads: the same sums as one pass, part by part.
        crate::for_chunks(&mut total, 1 << 12, |first, block| {
            let len = block.len();
            block.copy_from_slice(&partials[first..][..len]);
            for p in 1..parts {
                for (a, &b) in block.iter_mut().zip(&partials[p * size + first..][..len]) {
                    *a += b;
                }
            }
        });
        let mut dw = vec![0f32; self.o * self.c * kk];
        for (t, taps) in total.chunks_exact(group * outs).enumerate() {
            for (ci, row) in taps.chunks_exact(outs).take(self.c).enumerate() {
                for (co, &v) in row[..self.o].iter().enumerate() {
                    dw[(co * self.c + ci) * kk + t] = v;
                }
            }
        }
        dw
    }
}

#[cfg(test)]
mod tests;
