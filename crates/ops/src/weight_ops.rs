//! Weight-side ops of masked and weight-normalised layers, one pass each way.
//!
//! A MADE layer recomputes `W = v ⊙ M` and `|W|` per row in every forward. Composed from
//! candle ops that is three weight-sized passes forward and about six backward (candle's
//! `mul` backward also computes the mask's gradient; `sqr` and `sum` each add passes), on
//! weights of 1920 x 1920. These two ops take one pass each way.

use crate::contiguous_part;
use candle::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use candle::{WithDType, backend::BackendStorage};
use rayon::prelude::*;

/// Elements per parallel task (a MADE layer of 1920 x 1920 has 3.7 M).
const PAR_CHUNK: usize = 1 << 15;

/// `out` (`cols` wide, row-major) filled by `f(first_row, block)` over blocks of whole rows,
/// on rayon's threads for large outputs ([`crate::for_chunks`]).
fn for_row_blocks<T: Send>(out: &mut [T], cols: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let cols = cols.max(1);
    crate::for_chunks(out, PAR_CHUNK.div_ceil(cols) * cols, |off, block| {
        f(off / cols, block)
    });
}

/// `v ⊙ m`; backward `g ⊙ m` for `v` only (the mask is a constant).
struct Mask;

impl CustomOp2 for Mask {
    fn name(&self) -> &'static str {
        "masked-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle::bail!("masked weight: {:?} and mask {:?}", l1.shape(), l2.shape());
        }
        fn mul<T: WithDType>(a: &[T], b: &[T]) -> Vec<T> {
            let mut out = vec![T::zero(); a.len()];
            for_row_blocks(&mut out, 1, |first, block| {
                let (a, b) = (&a[first..], &b[first..]);
                for ((o, &a), &b) in block.iter_mut().zip(a).zip(b) {
                    *o = a * b;
                }
            });
            out
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(v), CpuStorage::F32(m)) => CpuStorage::F32(mul(
                contiguous_part(v, l1, "v")?,
                contiguous_part(m, l2, "the mask")?,
            )),
            (CpuStorage::F64(v), CpuStorage::F64(m)) => CpuStorage::F64(mul(
                contiguous_part(v, l1, "v")?,
                contiguous_part(m, l2, "the mask")?,
            )),
            (a, b) => candle::bail!(
                "masked weight: f32 or f64 of one dtype expected, got {:?} and {:?}",
                a.dtype(),
                b.dtype()
            ),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _v: &Tensor,
        m: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.contiguous()?.apply_op2_no_bwd(m, &Mask)?), None))
    }
}

/// `|w_i| = sqrt(Σ_j w_ij² + 1e-12)` per row of `[R, C]`, accumulated in f64.
struct RowNorm;

/// The floor under the squared norm (an all-masked row has norm 1e-6, not 0).
const FLOOR: f64 = 1e-12;

/// `sqrt(Σ_j row_j² + 1e-12)`, summed in f64.
pub(crate) fn norm_of_row<T: WithDType>(row: &[T]) -> T {
    let s: f64 = row.iter().map(|&x| x.to_f64() * x.to_f64()).sum();
    T::from_f64((s + FLOOR).sqrt())
}

/// [`norm_of_row`] of each `cols`-wide row of `w`, rows in parallel for large `w`.
pub(crate) fn row_norms<T: WithDType>(w: &[T], cols: usize) -> Vec<T> {
    let norm = norm_of_row::<T>;
    if w.len() >= crate::PAR_MIN_ELEMS {
        w.par_chunks(cols.max(1)).map(norm).collect()
    } else {
        w.chunks(cols.max(1)).map(norm).collect()
    }
}

impl CustomOp1 for RowNorm {
    fn name(&self) -> &'static str {
        "row-norm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (rows, cols) = l.shape().dims2()?;
        let out = match s {
            CpuStorage::F32(w) => CpuStorage::F32(row_norms(contiguous_part(w, l, "w")?, cols)),
            CpuStorage::F64(w) => CpuStorage::F64(row_norms(contiguous_part(w, l, "w")?, cols)),
            other => candle::bail!("row norm: f32 or f64 expected, got {:?}", other.dtype()),
        };
        Ok((out, Shape::from(rows)))
    }

    fn bwd(&self, w: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(w.contiguous()?.apply_op3_no_bwd(
            &res.contiguous()?,
            &grad.contiguous()?,
            &RowNormGrad,
        )?))
    }
}

/// `∂|w_i| / ∂w_ij · g_i = g_i w_ij / |w_i|`, from `(w, |w|, g)`.
struct RowNormGrad;

fn row_norm_grad<T: WithDType>(w: &[T], n: &[T], g: &[T], cols: usize) -> Vec<T> {
    let cols = cols.max(1);
    let mut out = vec![T::zero(); w.len()];
    for_row_blocks(&mut out, cols, |first, block| {
        let rows = block.chunks_mut(cols).zip(w[first * cols..].chunks(cols));
        for ((o, row), (&n, &g)) in rows.zip(n[first..].iter().zip(&g[first..])) {
            let scale = g / n;
            for (o, &x) in o.iter_mut().zip(row) {
                *o = x * scale;
            }
        }
    });
    out
}

impl CustomOp3 for RowNormGrad {
    fn name(&self) -> &'static str {
        "row-norm-backward"
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
        let (rows, cols) = l1.shape().dims2()?;
        if l2.shape().elem_count() != rows || l3.shape().elem_count() != rows {
            candle::bail!(
                "row norm backward: {rows} rows, norms {:?}, gradient {:?}",
                l2.shape(),
                l3.shape()
            );
        }
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(w), CpuStorage::F32(n), CpuStorage::F32(g)) => {
                CpuStorage::F32(row_norm_grad(
                    contiguous_part(w, l1, "w")?,
                    contiguous_part(n, l2, "|w|")?,
                    contiguous_part(g, l3, "g")?,
                    cols,
                ))
            }
            (CpuStorage::F64(w), CpuStorage::F64(n), CpuStorage::F64(g)) => {
                CpuStorage::F64(row_norm_grad(
                    contiguous_part(w, l1, "w")?,
                    contiguous_part(n, l2, "|w|")?,
                    contiguous_part(g, l3, "g")?,
                    cols,
                ))
            }
            _ => candle::bail!("row norm backward: f32 or f64 of one dtype expected"),
        };
        Ok((out, l1.shape().clone()))
    }
}

/// `v ⊙ mask`, differentiable in `v` (the mask is a constant).
///
/// # Shapes
/// `v` and `mask` of one shape.
///
/// # Errors
/// Different shapes or dtypes.
pub fn masked(v: &Tensor, mask: &Tensor) -> Result<Tensor> {
    if crate::has_cpu_kernel(v) {
        v.contiguous()?
            .apply_op2(&mask.to_dtype(v.dtype())?.contiguous()?, Mask)
    } else {
        v * mask
    }
}

/// `sqrt(Σ_j w_ij² + 1e-12)` per row, differentiable.
///
/// # Shapes
/// `w: [R, C]` gives `[R]`.
///
/// # Errors
/// A rank other than 2.
pub fn row_norm(w: &Tensor) -> Result<Tensor> {
    if crate::has_cpu_kernel(w) {
        w.contiguous()?.apply_op1(RowNorm)
    } else {
        (w.sqr()?.sum(1)? + FLOOR)?.sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_all_close;
    use candle::{DType, Device, Var};
    use vaekit_core::{NoiseSource, SeededNoise};

    /// `g · (v ⊙ m) / |v ⊙ m|`-style use: values and the gradient of `v` against the candle
    /// composition, with an all-masked row; small (one pass) and large (row blocks on
    /// rayon's threads, with a partial last block).
    #[test]
    fn masked_row_norm_matches_the_composition() -> Result<()> {
        check_masked_row_norm(6, 9)?;
        check_masked_row_norm(301, 333)
    }

    fn check_masked_row_norm(rows: usize, cols: usize) -> Result<()> {
        let mut noise = SeededNoise::new(8);
        let dev = Device::Cpu;
        let v = noise.standard_normal(&(rows, cols).into(), DType::F64, &dev)?;
        let mut m = noise
            .uniform(&(rows, cols).into(), DType::F64, &dev)?
            .ge(0.4)?
            .to_dtype(DType::F64)?;
        m = m.slice_assign(
            &[0..1, 0..cols],
            &Tensor::zeros((1, cols), DType::F64, &dev)?,
        )?;
        let w = noise.standard_normal(&(rows, cols).into(), DType::F64, &dev)?;
        let run = |fused: bool| -> Result<Vec<Tensor>> {
            let vv = Var::from_tensor(&v)?;
            let (wm, n) = if fused {
                let wm = masked(vv.as_tensor(), &m)?;
                let n = row_norm(&wm)?;
                (wm, n)
            } else {
                let wm = (vv.as_tensor() * &m)?;
                let n = (wm.sqr()?.sum(1)? + FLOOR)?.sqrt()?;
                (wm, n)
            };
            let y = wm.broadcast_div(&n.unsqueeze(1)?)?;
            let g = (&y * &w)?.sum_all()?.backward()?;
            let dv = crate::testing::gradient_of(&g, vv.as_tensor())?;
            Ok(vec![wm, n, dv])
        };
        for (a, e) in run(true)?.iter().zip(run(false)?.iter()) {
            assert_all_close(a, e, 1e-12, 1e-12)?;
        }
        Ok(())
    }
}
