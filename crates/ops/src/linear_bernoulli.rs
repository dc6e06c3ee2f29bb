//! A dense decoder's output layer and its Bernoulli log-likelihood as one op:
//! `log p(x|h) = Σ_p log Bernoulli(x_bp; l_rp)` with logits `l = h · Wᵀ + b`, rows
//! `r = b·S + s`.
//!
//! Composed ([`crate::matmul::linear_t`], then [`crate::bernoulli_log_prob_sum`]), the
//! logits are a tensor of candle's graph, and their gradient `g_r (x - σ(l))` is a second one
//! of the same size, which candle's backward adds into a zero-filled copy before the layer's
//! backward reads it. At IWAE's `B·S = 5000` rows of 784 pixels that is three passes over
//! 15.7 MB on one thread per step. Here the forward computes the logits, the row sums and,
//! in the same pass, the local gradient `x - σ(l)` in place of the logits, and keeps that
//! buffer for the backward; the backward scales its rows by the upstream gradient (summing
//! the bias gradient on the way) and runs the two GEMMs of the layer's gradients. No tensor of
//! `[B·S, P]` enters the graph.
//!
//! The backward is not differentiable; with candle's `CANDLE_GRAD_DO_NOT_DETACH`
//! ([`crate::second_order_gradients`]) the composition is used instead.

use crate::gemm::{Accumulate, MatRef, gemm_into};
use crate::matmul::{linear_dims, linear_t, linear_t_cpu};
use crate::matmul_grads::grads_cpu;
use crate::{PAR_MIN_ELEMS, contiguous_slice};
use candle::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;
use std::sync::Mutex;

/// The forward op: `(h [N, K], w [P, K], b [P])` with the values `x [B, P]` held, giving
/// `[B, N/B]`. Keeps the local gradient `x - σ(l)` (`[N, P]`) for its backward.
struct LinearBernoulli {
    x: Tensor,
    /// `x - σ(l)` from the last forward run, taken by the backward.
    score: Mutex<Option<Vec<f32>>>,
}

/// The backward op: `(h, w, g [B, S])` to `[dh | dw | db]`, flat, each part present when
/// its flag is set; it consumes the forward's `x - σ(l)` (its own, so no other backward can
/// take it).
struct LinearBernoulliGrad {
    score: Mutex<Option<Vec<f32>>>,
    need: [bool; 3],
}

impl LinearBernoulli {
    /// The values as an f32 slice, with `B`.
    fn with_values<R>(&self, f: impl FnOnce(&[f32], usize) -> Result<R>) -> Result<R> {
        let (b, _) = self.x.dims2()?;
        let (storage, layout) = self.x.storage_and_layout();
        match &*storage {
            Storage::Cpu(cpu) => f(contiguous_slice::<f32>(cpu, layout, "the values")?, b),
            _ => candle::bail!("linear-bernoulli: the values must be on the CPU"),
        }
    }
}

impl CustomOp3 for LinearBernoulli {
    fn name(&self) -> &'static str {
        "linear-bernoulli-sum"
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
        let (n, k, m) = linear_dims(l1, l2, l3, name)?;
        let (h, w, bias) = (
            contiguous_slice::<f32>(s1, l1, name)?,
            contiguous_slice::<f32>(s2, l2, name)?,
            contiguous_slice::<f32>(s3, l3, name)?,
        );
        self.with_values(|x, b| {
            if b == 0 || !n.is_multiple_of(b) || x.len() != b * m {
                candle::bail!("{name}: values {:?} for {n} rows of {m}", self.x.dims());
            }
            let mut logits = linear_t_cpu(h, w, bias, (n, k, m))?;
            let sums = crate::bernoulli_sum_and_score(&mut logits, x, m)?;
            *self.score.lock().map_err(|_| poisoned())? = Some(logits);
            Ok((CpuStorage::F32(sums), Shape::from((b, n / b))))
        })
    }

    fn bwd(
        &self,
        h: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let need = [h.track_op(), w.track_op(), b.track_op()];
        if need == [false; 3] {
            return Ok((None, None, None));
        }
        // The forward's buffer, taken under the lock; a second backward over the same graph
        // finds it taken and runs the forward again on a fresh op (with the parameters'
        // values at that time).
        let saved = self.score.lock().map_err(|_| poisoned())?.take();
        let score = match saved {
            Some(score) => score,
            None => {
                let again = LinearBernoulli {
                    x: self.x.clone(),
                    score: Mutex::new(None),
                };
                h.apply_op3_no_bwd(w, b, &again)?;
                again
                    .score
                    .into_inner()
                    .map_err(|_| poisoned())?
                    .ok_or_else(|| {
                        candle::Error::Msg("linear-bernoulli: the forward saved nothing".into())
                    })?
            }
        };
        let op = LinearBernoulliGrad {
            score: Mutex::new(Some(score)),
            need,
        };
        let flat = h.apply_op3_no_bwd(w, &grad.contiguous()?, &op)?;
        let mut at = 0;
        let mut take = |t: &Tensor, needed: bool| -> Result<Option<Tensor>> {
            if !needed {
                return Ok(None);
            }
            let len = t.elem_count();
            let part = flat.narrow(0, at, len)?.reshape(t.shape())?;
            at += len;
            Ok(Some(part))
        };
        Ok((take(h, need[0])?, take(w, need[1])?, take(b, need[2])?))
    }
}

fn poisoned() -> candle::Error {
    candle::Error::Msg("linear-bernoulli: a thread panicked holding the saved gradient".into())
}

/// `score[r] *= g[r]` for every row, and (with `bias`) the column sums of the scaled rows,
/// accumulated in f64 over fixed blocks of rows added in order: the blocks and order of
/// `channel_affine::bias_grad`, so the sums round as the composition's do.
fn scale_rows(score: &mut [f32], g: &[f32], m: usize, bias: bool) -> Vec<f32> {
    let per = crate::channel_affine::rows_per_block(m);
    let block = |(bi, rows): (usize, &mut [f32])| -> Vec<f64> {
        let mut sums = vec![0f64; if bias { m } else { 0 }];
        for (j, row) in rows.chunks_exact_mut(m).enumerate() {
            let gr = g[bi * per + j];
            row.iter_mut().for_each(|v| *v *= gr);
            for (s, &v) in sums.iter_mut().zip(row.iter()) {
                *s += f64::from(v);
            }
        }
        sums
    };
    let blocks: Vec<Vec<f64>> = if score.len() >= PAR_MIN_ELEMS {
        score
            .par_chunks_mut(per * m)
            .enumerate()
            .map(block)
            .collect()
    } else {
        score.chunks_mut(per * m).enumerate().map(block).collect()
    };
    let mut total = vec![0f64; if bias { m } else { 0 }];
    for part in &blocks {
        for (t, &v) in total.iter_mut().zip(part) {
            *t += v;
        }
    }
    total.into_iter().map(|v| v as f32).collect()
}

impl CustomOp3 for LinearBernoulliGrad {
    fn name(&self) -> &'static str {
        "linear-bernoulli-sum-backward"
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
        let (h, w, g) = (
            contiguous_slice::<f32>(s1, l1, name)?,
            contiguous_slice::<f32>(s2, l2, name)?,
            contiguous_slice::<f32>(s3, l3, name)?,
        );
        let (n, k) = l1.shape().dims2()?;
        let (m, _) = l2.shape().dims2()?;
        let mut score = self
            .score
            .lock()
            .map_err(|_| poisoned())?
            .take()
            .ok_or_else(|| candle::Error::Msg(format!("{name}: no saved forward")))?;
        if g.len() != n || score.len() != n * m {
            candle::bail!("{name}: gradient of {} values for {n} rows", g.len());
        }
        let [need_h, need_w, need_b] = self.need;
        let db = scale_rows(&mut score, g, m, need_b);
        let r = MatRef::row_major(&score, n, m);
        let mut out = match (need_h, need_w) {
            (true, true) => grads_cpu(&score, h, w, (n, k, m))?,
            (true, false) => {
                let mut dh = vec![0f32; n * k];
                gemm_into(&mut dh, r, MatRef::row_major(w, m, k), Accumulate::No, true)?;
                dh
            }
            (false, true) => {
                let mut dw = vec![0f32; m * k];
                let hm = MatRef::row_major(h, n, k);
                gemm_into(&mut dw, r.t(), hm, Accumulate::No, true)?;
                dw
            }
            (false, false) => Vec::with_capacity(m),
        };
        out.extend_from_slice(&db);
        let len = out.len();
        Ok((CpuStorage::F32(out), Shape::from(len)))
    }
}

/// `Σ_p log Bernoulli(x_bp; l_rp)` of the logits `l = h · Wᵀ + b` of a plain linear output
/// layer, `r = b·S + s`, differentiable in `h`, `w` and `b` (not in `x`).
///
/// One op on CPU in f32 when `h` or a parameter is tracked by autograd (module docs): it
/// then also forms `x - σ(l)` and keeps it (`[B·S, P]`) until the backward or until the
/// graph is dropped. The composition ([`linear_t`] then
/// [`crate::bernoulli_log_prob_sum`], the same values bit for bit) otherwise: on
/// other devices and dtypes, with nothing tracked (evaluation with detached parameters),
/// with `x` differentiated, and under `CANDLE_GRAD_DO_NOT_DETACH`. Both convert `x` to
/// the logits' dtype.
///
/// # Shapes
/// `h: [B·S, K]` (rows sample-minor), `w: [P, K]`, `b: [P]`, `x: [B, P]` give `[B, S]`.
///
/// # Errors
/// Mismatched shapes.
pub fn linear_bernoulli_sum(h: &Tensor, w: &Tensor, b: &Tensor, x: &Tensor) -> Result<Tensor> {
    let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
    let fused = [h, w, b].iter().all(|t| f32_cpu(t))
        && h.rank() == 2
        && x.rank() == 2
        && x.dim(0)? > 0
        && x.device().is_cpu()
        && !x.track_op()
        && (h.track_op() || w.track_op() || b.track_op())
        && !crate::second_order_gradients();
    if !fused {
        return crate::bernoulli_log_prob_sum(&linear_t(h, w, b)?, x);
    }
    let op = LinearBernoulli {
        x: x.to_dtype(DType::F32)?.contiguous()?,
        score: Mutex::new(None),
    };
    h.contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, op)
}

#[cfg(test)]
mod tests;
