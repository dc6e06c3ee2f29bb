//! The product of a weight-normalised, optionally masked linear layer as one op:
//! `y = (x · vᵀ) ⊙ s` with `v = W ⊙ M` and `s_i = g_i / |v_i|` (Salimans & Kingma 2016;
//! the mask of a MADE layer, Germain et al. 2015).
//!
//! Composed from [`crate::masked`], [`crate::row_norm`], [`crate::matmul_t`] and a
//! per-channel scale, a layer is four graph nodes, and candle's backward adds every
//! gradient into a zero-filled copy of its tensor: for `v` two weight-sized gradients (the
//! product's and the norm's) each summed into a zeroed buffer, then the mask's pass and the
//! weight's own zeroed accumulation, about fifteen weight-sized streams per step. On the
//! IAF's 1920 × 1920 MADE layers (14.7 MB each) those passes held the step. Here the forward
//! masks the weight and takes its row norms in one pass and keeps `v`, the norms and
//! `t = x · vᵀ` for the backward, which forms
//! `dW = M ⊙ (s ⊙ (Gᵀ x) − (s c / |v|²) ⊙ v)` with `c_i = Σ_b G_bi t_bi` from one GEMM
//! and one pass; `dx = (G ⊙ s) · v` and `dg = c / |v|`.

use std::sync::{Arc, Mutex};

use candle::{CpuStorage, CustomOp3, Layout, Result, Shape, Storage, Tensor, WithDType, bail};
use rayon::prelude::*;

use crate::gemm::{Accumulate, MatRef, gemm_into};
use crate::weight_ops::{norm_of_row, row_norms};
use crate::{contiguous_slice, has_cpu_kernel};

/// What the forward keeps for the backward (CPU tensors of the layer's dtype).
#[derive(Debug)]
struct Saved {
    /// `W ⊙ M` (`None` without a mask: `v` is the weight itself), `[out, in]`.
    v: Option<Tensor>,
    /// `|v_i|`, `[out]`.
    norms: Tensor,
    /// `x · vᵀ`, `[N, out]`.
    t: Tensor,
}

/// The forward op on `(x [N, in], W [out, in], g [out])`.
struct WeightNormLinear {
    /// The mask, contiguous, of the weight's dtype.
    mask: Option<Tensor>,
    saved: Mutex<Option<Arc<Saved>>>,
}

/// The weight gradient on `(G ⊙ s [N, out], x [N, in], s c / |v|² [out])`.
struct WeightGrad {
    v: Tensor,
    mask: Option<Tensor>,
}

/// `f` with the contiguous CPU slice of `t` as `T`.
fn with_slice<T: WithDType, R>(t: &Tensor, what: &str, f: impl FnOnce(&[T]) -> R) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => Ok(f(contiguous_slice::<T>(cpu, layout, what)?)),
        _ => bail!("weight-norm linear: {what} must be on the CPU"),
    }
}

/// `v = W ⊙ M` (when masked) and the row norms of `v` (as [`crate::row_norm`]'s), rows in
/// parallel.
fn masked_rows<T: WithDType>(w: &[T], mask: Option<&[T]>, k: usize) -> (Option<Vec<T>>, Vec<T>) {
    let Some(m) = mask else {
        return (None, row_norms(w, k));
    };
    let k = k.max(1);
    let mut v = vec![T::zero(); w.len()];
    let mut norms = vec![T::zero(); w.len() / k];
    let row = |(i, (v, n)): (usize, (&mut [T], &mut T))| {
        let (w, m) = (&w[i * k..(i + 1) * k], &m[i * k..(i + 1) * k]);
        for ((v, &w), &m) in v.iter_mut().zip(w).zip(m) {
            *v = w * m;
        }
        *n = norm_of_row(v);
    };
    if w.len() >= crate::PAR_MIN_ELEMS {
        v.par_chunks_mut(k)
            .zip(norms.par_iter_mut())
            .enumerate()
            .for_each(row);
    } else {
        v.chunks_mut(k)
            .zip(norms.iter_mut())
            .enumerate()
            .for_each(row);
    }
    (Some(v), norms)
}

/// A kernel over three float slices and the layer's `(N, in, out)`, for [`on_floats`].
trait FloatKernel {
    fn run<T: WithDType>(
        &self,
        a: &[T],
        b: &[T],
        c: &[T],
        d: (usize, usize, usize),
    ) -> Result<Vec<T>>;
}

/// `kernel` on three CPU operands of one float type (f32 or f64), each contiguous.
fn on_floats<K: FloatKernel>(
    kernel: &K,
    [(s1, l1), (s2, l2), (s3, l3)]: [(&CpuStorage, &Layout); 3],
    [n1, n2, n3]: [&str; 3],
    d: (usize, usize, usize),
) -> Result<CpuStorage> {
    Ok(match (s1, s2, s3) {
        (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
            CpuStorage::F32(kernel.run::<f32>(
                contiguous_slice(s1, l1, n1)?,
                contiguous_slice(s2, l2, n2)?,
                contiguous_slice(s3, l3, n3)?,
                d,
            )?)
        }
        (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
            CpuStorage::F64(kernel.run::<f64>(
                contiguous_slice(s1, l1, n1)?,
                contiguous_slice(s2, l2, n2)?,
                contiguous_slice(s3, l3, n3)?,
                d,
            )?)
        }
        _ => bail!("weight-norm linear: f32 or f64 operands of one dtype expected"),
    })
}

impl FloatKernel for WeightNormLinear {
    fn run<T: WithDType>(
        &self,
        x: &[T],
        w: &[T],
        g: &[T],
        d: (usize, usize, usize),
    ) -> Result<Vec<T>> {
        self.forward(x, w, g, d)
    }
}

impl FloatKernel for WeightGrad {
    fn run<T: WithDType>(
        &self,
        gs: &[T],
        x: &[T],
        coef: &[T],
        d: (usize, usize, usize),
    ) -> Result<Vec<T>> {
        self.grad(gs, x, coef, d)
    }
}

impl WeightNormLinear {
    fn forward<T: WithDType>(
        &self,
        x: &[T],
        w: &[T],
        g: &[T],
        (n, k, o): (usize, usize, usize),
    ) -> Result<Vec<T>> {
        let (v, norms) = match &self.mask {
            Some(m) => with_slice::<T, _>(m, "the mask", |m| masked_rows(w, Some(m), k))?,
            None => masked_rows(w, None, k),
        };
        let vs: &[T] = v.as_deref().unwrap_or(w);
        let mut t = vec![T::zero(); n * o];
        gemm_into(
            &mut t,
            MatRef::row_major(x, n, k),
            MatRef::row_major(vs, o, k).t(),
            Accumulate::No,
            true,
        )?;
        let s: Vec<T> = g.iter().zip(&norms).map(|(&g, &n)| g / n).collect();
        let mut y = t.clone();
        for row in y.chunks_mut(o.max(1)) {
            for (y, &s) in row.iter_mut().zip(&s) {
                *y *= s;
            }
        }
        let dev = &candle::Device::Cpu;
        let saved = Saved {
            v: v.map(|v| Tensor::from_vec(v, (o, k), dev)).transpose()?,
            norms: Tensor::from_vec(norms, o, dev)?,
            t: Tensor::from_vec(t, (n, o), dev)?,
        };
        *self.saved.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(saved));
        Ok(y)
    }
}

/// `(N, in, out)` of `x [N, in]`, `W [out, in]`, `g [out]`.
fn dims(l1: &Layout, l2: &Layout, l3: &Layout) -> Result<(usize, usize, usize)> {
    let (n, k) = l1.shape().dims2()?;
    let (o, k2) = l2.shape().dims2()?;
    if k != k2 || l3.shape().elem_count() != o {
        bail!(
            "weight-norm linear: x {:?}, weight {:?} and g {:?} do not match",
            l1.shape(),
            l2.shape(),
            l3.shape()
        );
    }
    Ok((n, k, o))
}

impl CustomOp3 for WeightNormLinear {
    fn name(&self) -> &'static str {
        "weight-norm-linear"
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
        let d = dims(l1, l2, l3)?;
        let out = on_floats(
            self,
            [(s1, l1), (s2, l2), (s3, l3)],
            ["x", "the weight", "g"],
            d,
        )?;
        Ok((out, Shape::from((d.0, d.2))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        g: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let saved = self.saved.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(saved) = saved else {
            bail!("weight-norm linear: backward before forward");
        };
        // The gradients are plain tensors: the operands enter detached. Without a mask `v` is
        // the live weight, read as it is now (as the composed path's backward reads it).
        let v = match &saved.v {
            Some(v) => v.clone(),
            None => w.detach(),
        };
        let grad = grad.contiguous()?;
        let s = (g.detach() / &saved.norms)?;
        let gs = grad.broadcast_mul(&s.unsqueeze(0)?)?;
        let dx = match x.track_op() {
            true => Some(gs.matmul(&v)?),
            false => None,
        };
        if !(g.track_op() || w.track_op()) {
            return Ok((dx, None, None));
        }
        // c_i = Σ_b G_bi t_bi.
        let c = (&grad * &saved.t)?.sum(0)?;
        let dg = match g.track_op() {
            true => Some((&c / &saved.norms)?),
            false => None,
        };
        let dw = match w.track_op() {
            true => {
                let coef = ((&c * &s)? / saved.norms.sqr()?)?;
                let op = WeightGrad {
                    v,
                    mask: self.mask.clone(),
                };
                Some(gs.apply_op3_no_bwd(&x.contiguous()?, &coef.contiguous()?, &op)?)
            }
            false => None,
        };
        Ok((dx, dw, dg))
    }
}

impl WeightGrad {
    fn grad<T: WithDType>(
        &self,
        gs: &[T],
        x: &[T],
        coef: &[T],
        (n, k, o): (usize, usize, usize),
    ) -> Result<Vec<T>> {
        let mut dw = vec![T::zero(); o * k];
        gemm_into(
            &mut dw,
            MatRef::row_major(gs, n, o).t(),
            MatRef::row_major(x, n, k),
            Accumulate::No,
            true,
        )?;
        let finish = |v: &[T], m: Option<&[T]>, dw: &mut [T]| {
            let row = |(i, d): (usize, &mut [T])| {
                let (c, v) = (coef[i], &v[i * k..(i + 1) * k]);
                match m {
                    Some(m) => {
                        let m = &m[i * k..(i + 1) * k];
                        for ((d, &v), &m) in d.iter_mut().zip(v).zip(m) {
                            *d = (*d - c * v) * m;
                        }
                    }
                    None => {
                        for (d, &v) in d.iter_mut().zip(v) {
                            *d -= c * v;
                        }
                    }
                }
            };
            if dw.len() >= crate::PAR_MIN_ELEMS {
                dw.par_chunks_mut(k.max(1)).enumerate().for_each(row);
            } else {
                dw.chunks_mut(k.max(1)).enumerate().for_each(row);
            }
        };
        with_slice::<T, _>(&self.v, "v", |v| match &self.mask {
            Some(m) => with_slice::<T, _>(m, "the mask", |m| finish(v, Some(m), &mut dw)),
            None => {
                finish(v, None, &mut dw);
                Ok(())
            }
        })??;
        Ok(dw)
    }
}

impl CustomOp3 for WeightGrad {
    fn name(&self) -> &'static str {
        "weight-norm-linear-weight-grad"
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
        let (n, o) = l1.shape().dims2()?;
        let (n2, k) = l2.shape().dims2()?;
        if n != n2 || l3.shape().elem_count() != o || self.v.dims() != [o, k] {
            bail!(
                "weight-norm linear gradient: {:?}, {:?}, {:?} and v {:?} do not match",
                l1.shape(),
                l2.shape(),
                l3.shape(),
                self.v.dims()
            );
        }
        let names = ["the scaled gradient", "x", "the norm coefficient"];
        let out = on_floats(self, [(s1, l1), (s2, l2), (s3, l3)], names, (n, k, o))?;
        Ok((out, Shape::from((o, k))))
    }
}

/// `(x · vᵀ) ⊙ (g / |v|)` per output channel, with `v = w ⊙ mask` (or `w`) and
/// `|v_i| = sqrt(Σ_j v_ij² + 1e-12)`: the matrix part of a weight-normalised linear layer
/// (its bias is added after). One op with a fused backward for f32 or f64 on the CPU
/// (see the module's notes); elsewhere the composition of [`crate::masked`],
/// [`crate::row_norm`] and [`crate::matmul_t`].
///
/// # Shapes
/// `x: [N, in]`, `w: [out, in]`, `mask: [out, in]` (constant: no gradient), `g: [out]`
/// give `[N, out]`.
///
/// # Errors
/// Mismatched shapes or dtypes; `x` of another rank than 2.
pub fn weight_norm_linear(
    x: &Tensor,
    w: &Tensor,
    mask: Option<&Tensor>,
    g: &Tensor,
) -> Result<Tensor> {
    let (_, k) = x.dims2()?;
    let (o, k2) = w.dims2()?;
    if k != k2 || g.elem_count() != o || mask.is_some_and(|m| m.dims() != [o, k]) {
        bail!(
            "weight_norm_linear: x {:?}, weight {:?}, mask {:?} and g {:?} do not match",
            x.dims(),
            w.dims(),
            mask.map(|m| m.dims().to_vec()),
            g.dims()
        );
    }
    let g = g.flatten_all()?;
    let fused = [x, w, &g]
        .iter()
        .all(|t| has_cpu_kernel(t) && t.dtype() == w.dtype());
    if fused && mask.is_none_or(|m| m.device().is_cpu()) {
        let mask = mask
            .map(|m| m.to_dtype(w.dtype())?.contiguous())
            .transpose()?;
        let op = WeightNormLinear {
            mask,
            saved: Mutex::new(None),
        };
        return x
            .contiguous()?
            .apply_op3(&w.contiguous()?, &g.contiguous()?, op);
    }
    let v = match mask {
        Some(m) => crate::masked(w, m)?,
        None => w.clone(),
    };
    let s = (g / crate::row_norm(&v)?)?;
    crate::matmul_t(x, &v)?.broadcast_mul(&s.unsqueeze(0)?)
}

#[cfg(test)]
mod tests;
