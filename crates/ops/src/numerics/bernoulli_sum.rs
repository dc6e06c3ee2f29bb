//! `Σ_p log Bernoulli(x_bp; l_bsp)`: the decoder's log-likelihood of every sample in one
//! pass, without broadcasting `x` over the samples or materialising the per-pixel terms.

use super::dispatch::avx2_dispatch;
use super::elementwise::PARALLEL_MIN;
use super::fast_f32;
use candle::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

avx2_dispatch! {
/// `Σ_p log p(x_p; l_p)` of one row, terms in f32, the sum in f64, rounded once.
fn row_sum(l: &[f32], x: &[f32]) -> f32 {
    // Terms into a block buffer (a plain element-wise loop, which vectorizes), then the
    // block summed into eight f64 accumulators.
    const BLOCK: usize = 64;
    let mut acc = [0f64; 8];
    let mut buf = [0f32; BLOCK];
    for (lb, xb) in l.chunks(BLOCK).zip(x.chunks(BLOCK)) {
        let n = lb.len().min(xb.len());
        for ((t, &l), &x) in buf[..n].iter_mut().zip(lb).zip(xb) {
            *t = fast_f32::bernoulli_log_prob(l, x);
        }
        buf[n..].fill(0.0);
        for t8 in buf.chunks_exact(8) {
            for (a, &t) in acc.iter_mut().zip(t8) {
                *a += f64::from(t);
            }
        }
    }
    acc.iter().sum::<f64>() as f32
}
}

avx2_dispatch! {
/// One row of the logits' gradient: `g (x - σ(l))`.
fn score_row(out: &mut [f32], l: &[f32], x: &[f32], g: f32) -> () {
    for ((o, &l), &x) in out.iter_mut().zip(l).zip(x) {
        *o = g * (x - fast_f32::sigmoid(l));
    }
}
}

avx2_dispatch! {
/// [`row_sum`] of one row (the same terms, summed in the same order), overwriting each
/// logit with the term's derivative in it, `x - σ(l)`. (A copy of `row_sum`'s loop, not a
/// shared helper taking a closure: that form ran importance sampling 35 % slower, 20.0 →
/// 27.3 ms, its closure not compiled for the dispatched instruction set.)
fn row_sum_score(l: &mut [f32], x: &[f32]) -> f32 {
    const BLOCK: usize = 64;
    let mut acc = [0f64; 8];
    let mut buf = [0f32; BLOCK];
    for (lb, xb) in l.chunks_mut(BLOCK).zip(x.chunks(BLOCK)) {
        let n = lb.len().min(xb.len());
        for ((t, l), &x) in buf[..n].iter_mut().zip(lb.iter_mut()).zip(xb) {
            *t = fast_f32::bernoulli_log_prob(*l, x);
            *l = x - fast_f32::sigmoid(*l);
        }
        buf[n..].fill(0.0);
        for t8 in buf.chunks_exact(8) {
            for (a, &t) in acc.iter_mut().zip(t8) {
                *a += f64::from(t);
            }
        }
    }
    acc.iter().sum::<f64>() as f32
}
}

/// The forward pass and the local gradient of [`bernoulli_log_prob_sum`] at once, on
/// slices, for a fused op that owns the logits (a decoder's output layer and its
/// likelihood): returns the `B·S` sums `Σ_p log Bernoulli(x_bp; l_rp)`, `r = b·S + s`, equal
/// to [`bernoulli_log_prob_sum`]'s f32 CPU results bit for bit, and overwrites every logit
/// `l_rp` with `x_bp - σ(l_rp)`, the sum's derivative in it (the logits' gradient for an
/// upstream gradient of one). Rows run on rayon's threads when there are many elements.
///
/// # Shapes
/// `logits: [B·S, P]` (rows sample-minor), `x: [B, P]`, flat.
///
/// # Errors
/// `P = 0`, or lengths that are not `[B·S, P]` against `[B, P]` with `B > 0`.
pub fn bernoulli_sum_and_score(logits: &mut [f32], x: &[f32], p: usize) -> Result<Vec<f32>> {
    let valid = p > 0
        && x.len().is_multiple_of(p)
        && !x.is_empty()
        && logits.len().is_multiple_of(p)
        && (logits.len() / p).is_multiple_of(x.len() / p);
    if !valid {
        candle::bail!(
            "bernoulli_sum_and_score: {} logits and {} values do not form [B·S, {p}] and [B, {p}]",
            logits.len(),
            x.len()
        );
    }
    let s = logits.len() / x.len();
    let row = |(r, l): (usize, &mut [f32])| {
        let i = r / s;
        row_sum_score(l, &x[i * p..(i + 1) * p])
    };
    Ok(if logits.len() >= PARALLEL_MIN {
        let min_len = (PARALLEL_MIN / p).max(1);
        logits
            .par_chunks_mut(p)
            .enumerate()
            .with_min_len(min_len)
            .map(row)
            .collect()
    } else {
        logits.chunks_mut(p).enumerate().map(row).collect()
    })
}

/// `[rows]` of `f(r)`, over rayon's threads when `rows · width` is large.
fn rows_par<T: Send>(rows: usize, width: usize, f: impl Fn(usize) -> T + Send + Sync) -> Vec<T> {
    if rows * width >= PARALLEL_MIN {
        let min_len = (PARALLEL_MIN / width.max(1)).max(1);
        (0..rows)
            .into_par_iter()
            .with_min_len(min_len)
            .map(f)
            .collect()
    } else {
        (0..rows).map(f).collect()
    }
}

/// Logits and values as contiguous f32 slices, with `(B, S, P)`.
struct Rows<'a> {
    l: &'a [f32],
    x: &'a [f32],
    b: usize,
    s: usize,
    p: usize,
}

/// `(B, S, P)` of logits `[B, S, P]` or `[B·S, P]` (rows sample-minor) against values
/// `[B, P]`.
fn sizes(name: &str, logits: &Shape, values: &Shape) -> Result<(usize, usize, usize)> {
    let (b, p) = values.dims2()?;
    let s = match *logits.dims() {
        [lb, s, lp] if lb == b && lp == p => Some(s),
        [rows, lp] if lp == p && b > 0 && rows % b == 0 => Some(rows / b),
        _ => None,
    };
    match s {
        Some(s) => Ok((b, s, p)),
        None => candle::bail!(
            "{name}: values {values:?} do not match logits {logits:?} (want [{b}, S, {p}] or [{b}·S, {p}])"
        ),
    }
}

/// Logits `[B, S, P]` (or `[B·S, P]`) and values `[B, P]` as contiguous f32 slices with
/// their sizes.
fn slices<'a>(
    name: &str,
    s1: &'a CpuStorage,
    l1: &Layout,
    s2: &'a CpuStorage,
    l2: &Layout,
) -> Result<Rows<'a>> {
    let (b, s, p) = sizes(name, l1.shape(), l2.shape())?;
    Ok(Rows {
        l: crate::contiguous_slice::<f32>(s1, l1, name)?,
        x: crate::contiguous_slice::<f32>(s2, l2, name)?,
        b,
        s,
        p,
    })
}

/// The forward op: logits `[B, S, P]` or `[B·S, P]`, values `[B, P]` give `[B, S]`.
struct SumOp;

impl CustomOp2 for SumOp {
    fn name(&self) -> &'static str {
        "bernoulli-log-prob-sum"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let Rows { l, x, b, s, p } = slices(self.name(), s1, l1, s2, l2)?;
        let out = rows_par(b * s, p, |r| {
            let i = r / s;
            row_sum(&l[r * p..(r + 1) * p], &x[i * p..(i + 1) * p])
        });
        Ok((CpuStorage::F32(out), Shape::from((b, s))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle::CudaStorage,
        l1: &Layout,
        s2: &candle::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle::CudaStorage, Shape)> {
        let (b, s, p) = sizes(self.name(), l1.shape(), l2.shape())?;
        let out = vaekit_kernels::bernoulli_sum((s1, l1), (s2, l2), (b, s, p))?;
        Ok((out, Shape::from((b, s))))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        value: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let d_logits = logits.apply_op3_no_bwd(value, &grad.contiguous()?, &ScoreOp)?;
        // ∂/∂x_bp = Σ_s g_bs l_bsp, only when the values are being differentiated.
        let d_value = if value.track_op() {
            let (b, s, p) = sizes("bernoulli_log_prob_sum", logits.shape(), value.shape())?;
            let logits = logits.reshape((b, s, p))?;
            Some(grad.unsqueeze(1)?.matmul(&logits)?.squeeze(1)?)
        } else {
            None
        };
        Ok((Some(d_logits), d_value))
    }
}

/// The logits' gradient `g_bs (x_bp - σ(l_bsp))`: logits `[B, S, P]`, values `[B, P]`,
/// upstream gradient `[B, S]`.
struct ScoreOp;

impl CustomOp3 for ScoreOp {
    fn name(&self) -> &'static str {
        "bernoulli-log-prob-sum-backward"
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
        let Rows { l, x, b, s, p } = slices(self.name(), s1, l1, s2, l2)?;
        let g = crate::contiguous_slice::<f32>(s3, l3, self.name())?;
        if g.len() != b * s {
            candle::bail!(
                "{}: gradient of {} values for [{b}, {s}]",
                self.name(),
                g.len()
            );
        }
        let mut out = vec![0f32; b * s * p];
        let fill = |(r, row): (usize, &mut [f32])| {
            let i = r / s;
            score_row(row, &l[r * p..(r + 1) * p], &x[i * p..(i + 1) * p], g[r]);
        };
        if out.len() >= PARALLEL_MIN {
            let min_len = (PARALLEL_MIN / p.max(1)).max(1);
            out.par_chunks_mut(p.max(1))
                .enumerate()
                .with_min_len(min_len)
                .for_each(fill);
        } else {
            out.chunks_mut(p.max(1)).enumerate().for_each(fill);
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle::CudaStorage,
        l1: &Layout,
        s2: &candle::CudaStorage,
        l2: &Layout,
        s3: &candle::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle::CudaStorage, Shape)> {
        let dims = sizes(self.name(), l1.shape(), l2.shape())?;
        let out = vaekit_kernels::bernoulli_sum_score((s1, l1), (s2, l2), (s3, l3), dims)?;
        Ok((out, l1.shape().clone()))
    }
}

/// `log p(x | l) = Σ_p log Bernoulli(x_bp; l_bsp)` for logits `l: [B, S, P]` (one row per
/// sample `s` of data point `b`) and values `x: [B, P]`, giving `[B, S]`. Differentiable in
/// both. The logits may also come as rows `[B·S, P]` (sample-minor, as a decoder applied to
/// `z: [B, S, D]` folded to rows gives them): the same result, and the logits' gradient keeps
/// that shape, so no reshape sits between the decoder and this op (each view in candle's
/// graph costs its backward a zero-filled copy of the tensor and an addition).
///
/// On CPU in f32 one fused pass: the per-pixel terms use the branch-free f32 softplus of
/// `fast_f32` (relative error below `5e-7` each) and are summed in f64; `x` is never
/// broadcast to `[B, S, P]`; the backward is one pass `g (x - σ(l))`. On CUDA (feature
/// `cuda`) the same pair as kernels in f32 / f64 (one block per row, terms and sum in f64).
/// Elsewhere, and in f64 on CPU, [`super::bernoulli_log_prob`] summed over `P`.
///
/// # Errors
/// Shapes other than `[B, S, P]` or `[B·S, P]` against `[B, P]`; non-float dtypes.
pub fn bernoulli_log_prob_sum(logits: &Tensor, value: &Tensor) -> Result<Tensor> {
    let (b, s, p) = sizes("bernoulli_log_prob_sum", logits.shape(), value.shape())?;
    let value = value.to_dtype(logits.dtype())?;
    if crate::has_kernel(logits, &[DType::F32]) {
        logits.contiguous()?.apply_op2(&value.contiguous()?, SumOp)
    } else {
        composite(&logits.reshape((b, s, p))?, &value)
    }
}

/// The unfused reference: element-wise log-probabilities of the broadcast values, summed.
fn composite(logits: &Tensor, value: &Tensor) -> Result<Tensor> {
    let x = value.unsqueeze(1)?.broadcast_as(logits.shape())?;
    super::bernoulli_log_prob(logits, &x)?.sum(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::{Device, Var};

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        crate::testing::max_abs_diff(a, b).unwrap()
    }

    /// `bernoulli_sum_and_score` gives the fused op's sums and, in place of the logits, its
    /// backward's gradient for an upstream gradient of one, bit for bit, serial and parallel;
    /// sizes that do not fit are errors.
    #[test]
    fn sum_and_score_match_the_op_and_its_backward() {
        let dev = Device::Cpu;
        for (b, s, p) in [(3, 4, 13), (5, 70, 100)] {
            let l: Vec<f32> = (0..b * s * p)
                .map(|i| match i % 97 {
                    0 => 800.0,
                    _ => ((i * 7919) % 1201) as f32 / 10.0 - 60.0,
                })
                .collect();
            let x: Vec<f32> = (0..b * p)
                .map(|i| if i % 11 == 0 { 0.25 } else { (i % 2) as f32 })
                .collect();
            let lt = Var::from_vec(l.clone(), (b * s, p), &dev).unwrap();
            let xt = Tensor::from_vec(x.clone(), (b, p), &dev).unwrap();
            let y = bernoulli_log_prob_sum(lt.as_tensor(), &xt).unwrap();
            let grad = y.sum_all().unwrap().backward().unwrap();
            let want_score = grad.get(lt.as_tensor()).unwrap().flatten_all().unwrap();
            let mut scored = l.clone();
            let sums = bernoulli_sum_and_score(&mut scored, &x, p).unwrap();
            assert_eq!(sums, y.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            assert_eq!(scored, want_score.to_vec1::<f32>().unwrap());
        }
        let mut l = vec![0f32; 12];
        assert!(bernoulli_sum_and_score(&mut l, &[0.0; 5], 5).is_err());
        assert!(bernoulli_sum_and_score(&mut l, &[], 4).is_err());
        assert!(bernoulli_sum_and_score(&mut l, &[0.0; 4], 0).is_err());
    }

    /// Logits spread over `[-60, 60]` (with ±800 mixed in), binary and fractional values;
    /// the fused f32 op against the f64 composition, for values and both gradients. Sizes
    /// cross the parallel threshold.
    #[test]
    fn fused_sum_matches_the_f64_composition() {
        let dev = Device::Cpu;
        for (b, s, p) in [(3, 4, 13), (5, 70, 100)] {
            let n = b * s * p;
            let l: Vec<f64> = (0..n)
                .map(|i| match i % 97 {
                    0 => 800.0,
                    1 => -800.0,
                    _ => ((i * 7919) % 1201) as f64 / 10.0 - 60.0,
                })
                .collect();
            let x: Vec<f64> = (0..b * p)
                .map(|i| if i % 11 == 0 { 0.25 } else { (i % 2) as f64 })
                .collect();
            let weights = Tensor::arange(0f64, (b * s) as f64, &dev)
                .unwrap()
                .affine(0.01, 0.5)
                .unwrap()
                .reshape((b, s))
                .unwrap();
            let run = |dtype: DType, fused: bool| {
                let lv = Var::from_tensor(
                    &Tensor::from_vec(l.clone(), (b, s, p), &dev)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap(),
                )
                .unwrap();
                let xv = Var::from_tensor(
                    &Tensor::from_vec(x.clone(), (b, p), &dev)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap(),
                )
                .unwrap();
                let out = if fused {
                    bernoulli_log_prob_sum(lv.as_tensor(), xv.as_tensor()).unwrap()
                } else {
                    composite(lv.as_tensor(), xv.as_tensor()).unwrap()
                };
                let w = weights.to_dtype(dtype).unwrap();
                let grads = (&out * &w).unwrap().sum_all().unwrap().backward().unwrap();
                let gl = grads.get(lv.as_tensor()).unwrap().clone();
                let gx = grads.get(xv.as_tensor()).unwrap().clone();
                (out, gl, gx)
            };
            let (v32, gl32, gx32) = run(DType::F32, true);
            let (v64, gl64, gx64) = run(DType::F64, false);
            // Sums of up to 100 terms of size up to 800: f32 rounding of the inputs and of
            // the result dominate.
            let scale = v64.abs().unwrap().max_keepdim(1).unwrap().max(0).unwrap();
            let scale = scale
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            assert!(max_abs_diff(&v32, &v64) <= 2e-6 * scale, "values");
            assert!(max_abs_diff(&gl32, &gl64) <= 2e-6, "logit gradients");
            assert!(
                max_abs_diff(&gx32, &gx64) <= 1e-6 * 800.0 * s as f64,
                "value gradients"
            );
            // Not vacuous: the gradients are of order one.
            assert!(
                gl64.abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
                    > 1.0
            );
        }
    }

    #[test]
    fn f64_and_shape_errors() {
        let dev = Device::Cpu;
        let l = Tensor::zeros((2, 3, 4), DType::F64, &dev).unwrap();
        let x = Tensor::ones((2, 4), DType::F64, &dev).unwrap();
        // f64 takes the composition: log σ(0) · 4 per row.
        let v = bernoulli_log_prob_sum(&l, &x)
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        assert!((v[1][2] - 4.0 * 0.5f64.ln()).abs() < 1e-15);
        let bad = Tensor::ones((3, 4), DType::F64, &dev).unwrap();
        assert!(bernoulli_log_prob_sum(&l, &bad).is_err());
        // No data points: `[0, S]`, S taken from the logits.
        let none = Tensor::zeros((0, 3, 4), DType::F64, &dev).unwrap();
        let empty = Tensor::zeros((0, 4), DType::F64, &dev).unwrap();
        assert_eq!(
            bernoulli_log_prob_sum(&none, &empty).unwrap().dims(),
            [0, 3]
        );
        // Rows `[B·S, P]` need a multiple of B rows and the same width.
        let rows3 = Tensor::ones((3, 4), DType::F64, &dev).unwrap();
        assert!(bernoulli_log_prob_sum(&rows3, &x).is_err());
        let wide = Tensor::ones((4, 5), DType::F64, &dev).unwrap();
        assert!(bernoulli_log_prob_sum(&wide, &x).is_err());
        assert!(bernoulli_log_prob_sum(&x, &x.flatten_all().unwrap()).is_err());
    }

    /// Logits as rows `[B·S, P]` give what `[B, S, P]` gives, and a gradient of their own
    /// shape, fused (f32) and composed (f64).
    #[test]
    fn rows_match_the_three_dimensional_form() {
        let dev = Device::Cpu;
        let (b, s, p) = (3, 5, 7);
        let l: Vec<f64> = (0..b * s * p)
            .map(|i| ((i * 37) % 23) as f64 / 2.0 - 5.0)
            .collect();
        let x: Vec<f64> = (0..b * p).map(|i| (i % 3 == 0) as u8 as f64).collect();
        for dtype in [DType::F32, DType::F64] {
            let x = Tensor::from_vec(x.clone(), (b, p), &dev)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let run = |shape: &[usize]| {
                let lv = Var::from_tensor(
                    &Tensor::from_vec(l.clone(), shape, &dev)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap(),
                )
                .unwrap();
                let out = bernoulli_log_prob_sum(lv.as_tensor(), &x).unwrap();
                let w = Tensor::arange(1f64, (b * s + 1) as f64, &dev)
                    .unwrap()
                    .reshape((b, s))
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap();
                let grads = (&out * &w).unwrap().sum_all().unwrap().backward().unwrap();
                let g = grads.get(lv.as_tensor()).unwrap().clone();
                (out, g)
            };
            let (v3, g3) = run(&[b, s, p]);
            let (v2, g2) = run(&[b * s, p]);
            assert_eq!(v2.dims(), [b, s]);
            assert_eq!(g2.dims(), [b * s, p]);
            assert_eq!(max_abs_diff(&v2, &v3), 0.0);
            assert_eq!(max_abs_diff(&g2.reshape((b, s, p)).unwrap(), &g3), 0.0);
            assert!(
                g3.abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
                    > 1.0
            );
        }
    }
}
