//! Fused CPU ops for Gaussians over sample dimensions: the reparameterized sample
//! `loc + scale · eps` and the log-density summed over event dimensions, each one pass
//! forward and one pass (one op) backward.
//!
//! Composed of candle primitives, `Independent<Normal>::log_prob` of samples `[S, B, D]` is
//! about ten graph nodes of the samples' size (the parameters' expansions, a subtraction, a
//! division, a square, two shifts, a sum), and `rsample` four more. candle's backward then
//! allocates a zero tensor and adds into it for every edge of the graph (`GradStore::or_insert`
//! and `add`), besides its own element-wise backward ops. In an IWAE-50 step (latents
//! `100 × 50 × 50`) that was 27 zero-filled copies and additions of 1 MB each per step.
//! Here each of [`normal_log_prob_sum`], [`normal_reparameterize`] and
//! [`standard_normal_log_prob_sum`] is one node.
//!
//! Parameters broadcast against the value as `[A, 1, C]` against `[A, M, C]` ([`Plan`]):
//! leading sample dimensions (`[S, B, D]` against `[B, D]`: `A = 1`) and batch-first samples
//! (`[B, S, D]` against `[B, 1, D]`: `A = B`) alike. Terms are evaluated and summed in f64;
//! every output element and every parameter gradient is computed by one thread in a fixed
//! order, so results do not depend on the thread count. CPU f32 and f64 only: the callers
//! fall back to the composition elsewhere. The backward ops are not differentiable: with
//! candle's `CANDLE_GRAD_DO_NOT_DETACH` set (candle's switch for gradients of gradients) the
//! callers compose from candle primitives instead.

use crate::{PAR_MIN_ELEMS, contiguous_slice, for_chunks_above, has_cpu_kernel};
use candle::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType};

/// Runs `f` on the f32 or f64 contents of three CPU storages.
macro_rules! typed3 {
    ($name:expr, $s:expr, $f:ident, $($arg:tt)*) => {
        match $s.0 {
            CpuStorage::F32(_) => CpuStorage::F32($f::<f32>($s, $($arg)*)?),
            CpuStorage::F64(_) => CpuStorage::F64($f::<f64>($s, $($arg)*)?),
            _ => candle::bail!("{}: f32 or f64 expected", $name),
        }
    };
}
mod log_prob;
mod reparameterize;
mod standard;
#[cfg(test)]
mod tests;

pub use log_prob::normal_log_prob_sum;
pub use reparameterize::normal_reparameterize;
pub use standard::standard_normal_log_prob_sum;

/// `½ ln 2π`.
pub const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// Elements of input per parallel block.
const BLOCK: usize = 1 << 14;

/// A value `[A, M, C]` against parameters `[A, 1, C]`, the trailing `w` elements of each
/// row of `C` summed into one output (`w = 1`: nothing summed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    a: usize,
    m: usize,
    c: usize,
    w: usize,
}

impl Plan {
    /// The plan for a value of shape `value` against parameters of shape `params`
    /// (right-aligned, as in numpy broadcasting; the parameters are never larger), summing
    /// the last `n` dimensions of the value. `None` where the dimensions the parameters are
    /// broadcast over are not one run, where the summed dimensions reach into that run, or
    /// where a dimension is empty.
    pub(crate) fn new(value: &[usize], params: &[usize], n: usize) -> Option<Plan> {
        let r = value.len();
        if params.len() > r || n > r || value.contains(&0) {
            return None;
        }
        let padded: Vec<usize> = std::iter::repeat_n(1, r - params.len())
            .chain(params.iter().copied())
            .collect();
        let broadcast: Vec<usize> = (0..r).filter(|&k| padded[k] != value[k]).collect();
        if broadcast.iter().any(|&k| padded[k] != 1) {
            return None;
        }
        let (i, j) = match (broadcast.first(), broadcast.last()) {
            (Some(&i), Some(&l)) => (i, l + 1),
            _ => (0, 0),
        };
        if padded[i..j].iter().any(|&d| d != 1) || r - n < j {
            return None;
        }
        let prod = |d: &[usize]| d.iter().product::<usize>();
        Some(Plan {
            a: prod(&value[..i]),
            m: prod(&value[i..j]),
            c: prod(&value[j..]),
            w: prod(&value[r - n..]),
        })
    }

    fn value_len(&self) -> usize {
        self.a * self.m * self.c
    }

    fn param_len(&self) -> usize {
        self.a * self.c
    }

    /// Outputs per row of `C`.
    fn groups(&self) -> usize {
        self.c / self.w
    }

    /// Rows of the value (`A · M`) per parallel block of at least [`BLOCK`] elements.
    fn rows_per_block(&self) -> usize {
        BLOCK.div_ceil(self.c)
    }

    /// The parameter index of value row `row`'s first element.
    fn param_row(&self, row: usize) -> usize {
        (row / self.m) * self.c
    }

    /// Calls `f(param_index, value_row)` for every value row `value_row` that the
    /// parameters `offset..offset + len` (a run of `[A, C]`) meet, in order of `M`, with the
    /// run's part of that row: `f(p0, row, c0, c1)` covers parameters `p0..p0 + c1 - c0`
    /// and value elements `row · C + c0..row · C + c1`.
    fn for_param_run(
        &self,
        offset: usize,
        len: usize,
        mut f: impl FnMut(usize, usize, usize, usize),
    ) {
        let mut p = offset;
        while p < offset + len {
            let (a, c0) = (p / self.c, p % self.c);
            let c1 = self.c.min(c0 + offset + len - p);
            for mi in 0..self.m {
                f(p - offset, a * self.m + mi, c0, c1);
            }
            p += c1 - c0;
        }
    }

    /// Parallel threshold for work over the parameters: they are `M` times fewer than the
    /// value's elements that the work reads.
    fn param_min(&self) -> usize {
        PAR_MIN_ELEMS.div_ceil(self.m)
    }

    /// `out[i] = f(row, j, i)` over the value's elements (`i = row · C + j`), in parallel
    /// blocks of whole rows.
    fn for_values<T: Send>(&self, out: &mut [T], f: impl Fn(usize, usize, usize) -> T + Sync) {
        let c = self.c;
        for_chunks_above(
            out,
            self.rows_per_block() * c,
            PAR_MIN_ELEMS,
            |off, block| {
                for (k, o) in block.iter_mut().enumerate() {
                    let i = off + k;
                    *o = f(i / c, i % c, i);
                }
            },
        );
    }

    /// Two gradients of the parameters, each a sum over `M` of one of `term(row, j)`'s two
    /// values for the value element `(row, j)` (summed in f64, in order of `M`), written to
    /// `out = [first | second]`, `2 · A · C` elements.
    fn param_sums<T: WithDType>(
        &self,
        out: &mut [T],
        term: impl Fn(usize, usize) -> [f64; 2] + Sync,
    ) {
        let pn = self.param_len();
        let mut pairs = vec![[0f64; 2]; pn];
        for_chunks_above(
            &mut pairs,
            BLOCK.div_ceil(self.m),
            self.param_min(),
            |off, block| {
                self.for_param_run(off, block.len(), |k0, row, c0, c1| {
                    for (j, acc) in (c0..c1).zip(&mut block[k0..]) {
                        let [a, b] = term(row, j);
                        acc[0] += a;
                        acc[1] += b;
                    }
                });
            },
        );
        let (first, second) = out.split_at_mut(pn);
        for ((pair, f), s) in pairs.iter().zip(first).zip(second) {
            *f = T::from_f64(pair[0]);
            *s = T::from_f64(pair[1]);
        }
    }
}

/// Which of the three inputs of a fused op need a gradient.
#[derive(Debug, Clone, Copy)]
struct Needs([bool; 3]);

impl Needs {
    fn of(ts: [&Tensor; 3]) -> Self {
        Needs(ts.map(Tensor::track_op))
    }
}

/// The gradient buffer `[d0 | d1 | d2]` of a backward op, split into tensors of the
/// inputs' shapes (views of one allocation), `None` for inputs without a gradient.
fn split_grads(
    flat: &Tensor,
    shapes: [&Shape; 3],
    needs: Needs,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let mut start = 0;
    let mut parts = [None, None, None];
    for (k, part) in parts.iter_mut().enumerate() {
        let len = shapes[k].elem_count();
        if needs.0[k] {
            *part = Some(flat.narrow(0, start, len)?.reshape(shapes[k])?);
        }
        start += len;
    }
    let [a, b, c] = parts;
    Ok((a, b, c))
}

type Storages<'a> = (
    &'a CpuStorage,
    &'a Layout,
    &'a CpuStorage,
    &'a Layout,
    &'a CpuStorage,
    &'a Layout,
);

/// The three inputs as contiguous slices.
fn three<'a, T: WithDType>(s: Storages<'a>, name: &str) -> Result<[&'a [T]; 3]> {
    Ok([
        contiguous_slice::<T>(s.0, s.1, name)?,
        contiguous_slice::<T>(s.2, s.3, name)?,
        contiguous_slice::<T>(s.4, s.5, name)?,
    ])
}

fn check_lens(name: &str, got: [usize; 3], want: [usize; 3]) -> Result<()> {
    if got != want {
        candle::bail!("{name}: input sizes {got:?}, expected {want:?}");
    }
    Ok(())
}

/// A gradient kernel: three inputs to `[d0 | d1 | d2]`.
type GradFn<T> = fn(Storages, Plan, &str) -> Result<Vec<T>>;

/// The backward op of a fused op: `[d value | d param | d param]`, `value_len + 2 · param_len`
/// elements, by an f32 and an f64 kernel. Not differentiable itself.
struct GradOp {
    name: &'static str,
    plan: Plan,
    f32: GradFn<f32>,
    f64: GradFn<f64>,
}

impl CustomOp3 for GradOp {
    fn name(&self) -> &'static str {
        self.name
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
        let s = (s1, l1, s2, l2, s3, l3);
        let out = match s1 {
            CpuStorage::F32(_) => CpuStorage::F32((self.f32)(s, self.plan, self.name)?),
            CpuStorage::F64(_) => CpuStorage::F64((self.f64)(s, self.plan, self.name)?),
            _ => candle::bail!("{}: f32 or f64 expected", self.name),
        };
        let n = self.plan.value_len() + 2 * self.plan.param_len();
        Ok((out, Shape::from(n)))
    }
}

/// The plan when every tensor is on the CPU in one float dtype and the parameters share a
/// shape (and gradients are first-order, see [`crate::second_order_gradients`]).
fn fused_plan(value: &Tensor, params: [&Tensor; 2], n: usize) -> Option<Plan> {
    let same = params
        .iter()
        .all(|p| p.dtype() == value.dtype() && p.dims() == params[0].dims());
    if !(has_cpu_kernel(value) && params.iter().all(|p| has_cpu_kernel(p)) && same)
        || crate::second_order_gradients()
    {
        return None;
    }
    Plan::new(value.dims(), params[0].dims(), n)
}
