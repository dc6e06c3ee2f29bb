//! Both gradients of `y = x · wᵀ` at once, side by side on CPU.
//!
//! For an output gradient `g: [N, out]`, `dx = g · w` and `dw = gᵀ · x` cost the same
//! `N·out·in` multiply-adds and share nothing. Run one after the other, each is split
//! across the threads on its own, with a fork and a join per GEMM; the dense VAE's GEMMs
//! (batch 100, widths 200 to 784) are small enough for that to cost as much as it saves.
//! [`MatmulGrads`] runs the two on two rayon tasks instead, each GEMM on one thread
//! (or threaded, on pools of more than two threads), and returns them in one buffer
//! (`[dx | dw]`) that [`matmul_t_grad_pair`] splits into views.
//!
//! The op is differentiable like the composition it replaces (`g.matmul(w)`,
//! `g.t().matmul(x)`): its backward is written with candle's matmul, so gradients of any
//! order still flow through a linear layer.

use crate::gemm::{Accumulate, MatRef, gemm_into};
use candle::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType};

/// `(g [N, out], x [N, in], w [out, in])` to `[dx | dw]`, flat, `N·in + out·in` elements.
struct MatmulGrads;

/// `(N, in, out)` of `g: [N, out]`, `x: [N, in]`, `w: [out, in]`.
fn dims(g: &Layout, x: &Layout, w: &Layout) -> Result<(usize, usize, usize)> {
    let (n, m) = g.shape().dims2()?;
    let (n2, k) = x.shape().dims2()?;
    let (m2, k2) = w.shape().dims2()?;
    if n != n2 || m != m2 || k != k2 {
        candle::bail!(
            "matmul-grads: g {:?}, x {:?} and w {:?} do not match",
            g.shape(),
            x.shape(),
            w.shape()
        );
    }
    Ok((n, k, m))
}

/// `[dx | dw]` on slices.
pub(crate) fn grads_cpu<T: WithDType>(
    g: &[T],
    x: &[T],
    w: &[T],
    (n, k, m): (usize, usize, usize),
) -> Result<Vec<T>> {
    let mut out = vec![T::zero(); n * k + m * k];
    let (dx, dw) = out.split_at_mut(n * k);
    let g = MatRef::row_major(g, n, m);
    let threaded = rayon::current_num_threads() > 2;
    let (a, b) = rayon::join(
        || gemm_into(dx, g, MatRef::row_major(w, m, k), Accumulate::No, threaded),
        || {
            gemm_into(
                dw,
                g.t(),
                MatRef::row_major(x, n, k),
                Accumulate::No,
                threaded,
            )
        },
    );
    a.and(b)?;
    Ok(out)
}

impl CustomOp3 for MatmulGrads {
    fn name(&self) -> &'static str {
        "matmul-grads"
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
        let name = self.name();
        use crate::contiguous_part as part;
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(g), CpuStorage::F32(x), CpuStorage::F32(w)) => {
                let (g, x, w) = (part(g, l1, name)?, part(x, l2, name)?, part(w, l3, name)?);
                CpuStorage::F32(grads_cpu(g, x, w, d)?)
            }
            (CpuStorage::F64(g), CpuStorage::F64(x), CpuStorage::F64(w)) => {
                let (g, x, w) = (part(g, l1, name)?, part(x, l2, name)?, part(w, l3, name)?);
                CpuStorage::F64(grads_cpu(g, x, w, d)?)
            }
            _ => candle::bail!("{name}: f32 or f64 of one dtype expected"),
        };
        let (n, k, m) = d;
        Ok((out, Shape::from(n * k + m * k)))
    }

    /// For upstream gradients `(Gx, Gw)` of `(dx, dw)`: `∂g = Gx · wᵀ + x · Gwᵀ`,
    /// `∂x = g · Gw`, `∂w = gᵀ · Gx`.
    fn bwd(
        &self,
        g: &Tensor,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (gx, gw) = split(grad, x.dims(), w.dims())?;
        let dg = (gx.matmul(&w.t()?)? + x.matmul(&gw.t()?)?)?;
        Ok((Some(dg), Some(g.matmul(&gw)?), Some(g.t()?.matmul(&gx)?)))
    }
}

/// `[dx | dw]` as `dx` shaped like `x` and `dw` shaped like `w`.
fn split(flat: &Tensor, x: &[usize], w: &[usize]) -> Result<(Tensor, Tensor)> {
    let nx: usize = x.iter().product();
    let nw: usize = w.iter().product();
    Ok((
        flat.narrow(0, 0, nx)?.reshape(x)?,
        flat.narrow(0, nx, nw)?.reshape(w)?,
    ))
}

/// `(g · w, gᵀ · x)`, the gradients of `x · wᵀ` in `x: [N, in]` and `w: [out, in]` for
/// `g: [N, out]`: on CPU (f32, f64) one [`MatmulGrads`] op running the two GEMMs side by
/// side, elsewhere two matmuls.
///
/// # Errors
/// Mismatched shapes.
pub(crate) fn matmul_t_grad_pair(g: &Tensor, x: &Tensor, w: &Tensor) -> Result<(Tensor, Tensor)> {
    if crate::has_cpu_kernel(g) && g.rank() == 2 {
        let flat = g
            .contiguous()?
            .apply_op3(&x.contiguous()?, &w.contiguous()?, MatmulGrads)?;
        split(&flat, x.dims(), w.dims())
    } else {
        Ok((g.matmul(w)?, g.t()?.matmul(x)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_all_close, gradient_of};
    use candle::{DType, Device, Var};
    use vaekit_core::{NoiseSource, SeededNoise};

    /// Values against the two matmuls, and the gradients of a weighted sum of both results
    /// in `g`, `x` and `w` (the second-order path) against candle's autograd through them.
    #[test]
    fn values_and_gradients_match_two_matmuls() -> Result<()> {
        let mut noise = SeededNoise::new(31);
        let dev = &Device::Cpu;
        let mut normal = |shape: (usize, usize)| -> Result<Var> {
            Var::from_tensor(&noise.standard_normal(&shape.into(), DType::F64, dev)?)
        };
        let (n, k, m) = (5, 7, 3);
        let (g, x, w) = (normal((n, m))?, normal((n, k))?, normal((m, k))?);
        let (a, b) = (normal((n, k))?, normal((m, k))?);
        type Pair<'a> = &'a dyn Fn(&Tensor, &Tensor, &Tensor) -> Result<(Tensor, Tensor)>;
        let run = |f: Pair| {
            let (dx, dw) = f(g.as_tensor(), x.as_tensor(), w.as_tensor())?;
            let loss = ((&dx * a.as_tensor())?.sum_all()? + (&dw * b.as_tensor())?.sum_all()?)?;
            let grads = loss.backward()?;
            let mut out = vec![dx, dw];
            for v in [&g, &x, &w] {
                out.push(gradient_of(&grads, v.as_tensor())?);
            }
            Ok::<_, candle::Error>(out)
        };
        let ours = run(&|g, x, w| matmul_t_grad_pair(g, x, w))?;
        let reference = run(&|g, x, w| Ok((g.matmul(w)?, g.t()?.matmul(x)?)))?;
        for (o, r) in ours.iter().zip(&reference) {
            assert_all_close(o, r, 1e-12, 1e-12)?;
        }
        Ok(())
    }

    /// f32 on a pool of two threads (the tasks side by side) gives the GEMMs' own results.
    #[test]
    fn f32_on_two_threads_matches_the_single_gemms() -> Result<()> {
        let mut noise = SeededNoise::new(32);
        let dev = &Device::Cpu;
        let mut normal =
            |shape: (usize, usize)| noise.standard_normal(&shape.into(), DType::F32, dev);
        let (g, x, w) = (
            normal((100, 200))?,
            normal((100, 784))?,
            normal((200, 784))?,
        );
        let pool = crate::testing::thread_pool(2)?;
        let (dx, dw) = pool.install(|| matmul_t_grad_pair(&g, &x, &w))?;
        assert_all_close(&dx, &g.matmul(&w)?, 1e-5, 1e-4)?;
        assert_all_close(&dw, &g.t()?.matmul(&x)?, 1e-5, 1e-4)?;
        Ok(())
    }
}
