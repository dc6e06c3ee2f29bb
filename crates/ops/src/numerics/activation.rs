//! `tanh` and ELU as fused CPU ops: one vectorized pass forward (the branch-free f32
//! functions of `fast_f32` instead of scalar `tanhf` / `expf`) and one backward pass from
//! the output alone (`1 - y²`; `1` or `y + 1`).

use super::dispatch::avx2_dispatch;
use super::elementwise::PARALLEL_MIN;
use super::fast_f32;
use candle::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// An activation with fused kernels ([`tanh`], [`elu`]), for ops that apply it inside their
/// own output pass (vaekit-nets' fused linear layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FusedActivation {
    /// `tanh(x)`.
    Tanh,
    /// ELU with `α = 1`.
    Elu,
}

use FusedActivation as Kind;

impl FusedActivation {
    /// `f(x)` over an f32 slice with the vectorized kernels of [`tanh`] / [`elu`], on rayon's
    /// threads for long inputs.
    pub fn apply_f32(self, x: &[f32]) -> Vec<f32> {
        match self {
            Kind::Tanh => par_fill(x.len(), |r, o| tanh_slice(o, &x[r])),
            Kind::Elu => par_fill(x.len(), |r, o| elu_slice(o, &x[r])),
        }
    }

    /// `g f'(x)` from the input `x` and the upstream gradient `g` (same shape), for ops that
    /// never materialize `f(x)`: one pass that recomputes `f(x)` on CPU in f32 (the same
    /// arithmetic as [`Self::grad`] of the output), `self.grad(f(x), g)` elsewhere. Not
    /// differentiable further.
    ///
    /// # Errors
    /// Mismatched shapes, non-float dtypes.
    pub fn grad_from_input(self, x: &Tensor, g: &Tensor) -> Result<Tensor> {
        if crate::has_cpu_kernel(x) && x.dtype() == DType::F32 && g.dtype() == DType::F32 {
            return x
                .contiguous()?
                .apply_op2_no_bwd(&g.contiguous()?, &Grad(self, true));
        }
        self.grad(&self.apply(&x.detach())?, g)
    }

    /// `f(x)`, differentiable: [`tanh`] or [`elu`].
    ///
    /// # Errors
    /// Non-float dtypes.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        apply(x, self)
    }

    /// `dst[i] = f(src[i])` on the calling thread, with the kernels of [`Self::apply_f32`]
    /// (for ops that apply the activation to a block they hold in cache).
    ///
    /// # Panics
    /// Slices of different lengths.
    pub fn apply_into(self, src: &[f32], dst: &mut [f32]) {
        assert_eq!(
            src.len(),
            dst.len(),
            "FusedActivation::apply_into: lengths differ"
        );
        match self {
            Kind::Tanh => tanh_slice(dst, src),
            Kind::Elu => elu_slice(dst, src),
        }
    }

    /// The gradient with respect to the input, `g f'(x)`, from the output `y = f(x)` and the
    /// upstream gradient `g` (same shape): the one-pass backward kernel of [`tanh`] /
    /// [`elu`] for f32 on CPU (and CUDA with the `cuda` feature), candle's ops elsewhere
    /// (`g (1 - y²)`; `g` where `y > 0`, else `g (y + 1)`). Not differentiable further.
    ///
    /// # Errors
    /// Mismatched shapes, non-float dtypes.
    pub fn grad(self, y: &Tensor, g: &Tensor) -> Result<Tensor> {
        if crate::has_kernel(y, &[DType::F32]) && g.dtype() == DType::F32 {
            return y
                .contiguous()?
                .apply_op2_no_bwd(&g.contiguous()?, &Grad(self, false));
        }
        match self {
            Kind::Tanh => g * y.sqr()?.affine(-1.0, 1.0)?,
            Kind::Elu => y.gt(0.0)?.where_cond(g, &(g * (y + 1.0)?)?),
        }
    }
}

avx2_dispatch! {
fn tanh_slice(out: &mut [f32], x: &[f32]) -> () {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = fast_f32::tanh(x);
    }
}
}

avx2_dispatch! {
fn elu_slice(out: &mut [f32], x: &[f32]) -> () {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = fast_f32::elu(x);
    }
}
}

avx2_dispatch! {
/// `g (1 - y²)`.
fn tanh_grad_slice(out: &mut [f32], y: &[f32], g: &[f32]) -> () {
    for ((o, &y), &g) in out.iter_mut().zip(y).zip(g) {
        *o = g * (1.0 - y * y);
    }
}
}

avx2_dispatch! {
/// `g (1 - tanh(x)²)`, from the input.
fn tanh_grad_input_slice(out: &mut [f32], x: &[f32], g: &[f32]) -> () {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
        let y = fast_f32::tanh(x);
        *o = g * (1.0 - y * y);
    }
}
}

avx2_dispatch! {
/// `elu_grad_slice` from the input: `y = elu(x)` first, the same arithmetic after.
fn elu_grad_input_slice(out: &mut [f32], x: &[f32], g: &[f32]) -> () {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
        let y = fast_f32::elu(x);
        *o = if y > 0.0 { g } else { g * (y + 1.0) };
    }
}
}

avx2_dispatch! {
/// `g` where `y > 0` (`x > 0`), `g (y + 1) = g e^x` elsewhere; NaN in `y` propagates.
fn elu_grad_slice(out: &mut [f32], y: &[f32], g: &[f32]) -> () {
    for ((o, &y), &g) in out.iter_mut().zip(y).zip(g) {
        *o = if y > 0.0 { g } else { g * (y + 1.0) };
    }
}
}

/// `out[i] = f(chunks of the inputs)`, over rayon's threads for long inputs.
fn par_fill(n: usize, f: impl Fn(std::ops::Range<usize>, &mut [f32]) + Send + Sync) -> Vec<f32> {
    let mut out = vec![0f32; n];
    let chunk = PARALLEL_MIN / 2;
    if n >= PARALLEL_MIN {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(c, o)| f(c * chunk..c * chunk + o.len(), o));
    } else {
        f(0..n, &mut out);
    }
    out
}

impl CustomOp1 for Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Tanh => "fast-tanh",
            Kind::Elu => "fast-elu",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = crate::contiguous_slice::<f32>(s, l, self.name())?;
        Ok((CpuStorage::F32(self.apply_f32(x)), l.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle::CudaStorage,
        l: &Layout,
    ) -> Result<(candle::CudaStorage, Shape)> {
        let op = match self {
            Kind::Tanh => vaekit_kernels::Unary::Tanh,
            Kind::Elu => vaekit_kernels::Unary::Elu,
        };
        Ok((vaekit_kernels::unary(op, s, l)?, l.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(res.contiguous()?.apply_op2_no_bwd(
            &grad.contiguous()?,
            &Grad(*self, false),
        )?))
    }
}

/// The backward pass: `(y or x, g)` to `g f'(x)`, from the output `y`, or from the input
/// `x` when `.1` is set (`f(x)` recomputed in the same pass).
struct Grad(Kind, bool);

impl CustomOp2 for Grad {
    fn name(&self) -> &'static str {
        match self {
            Grad(Kind::Tanh, false) => "fast-tanh-backward",
            Grad(Kind::Elu, false) => "fast-elu-backward",
            Grad(Kind::Tanh, true) => "fast-tanh-backward-from-input",
            Grad(Kind::Elu, true) => "fast-elu-backward-from-input",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = crate::contiguous_slice::<f32>(s1, l1, self.name())?;
        let g = crate::contiguous_slice::<f32>(s2, l2, self.name())?;
        if y.len() != g.len() {
            candle::bail!(
                "{}: {} outputs, {} gradients",
                self.name(),
                y.len(),
                g.len()
            );
        }
        let out = match (self.0, self.1) {
            (Kind::Tanh, false) => {
                par_fill(y.len(), |r, o| tanh_grad_slice(o, &y[r.clone()], &g[r]))
            }
            (Kind::Elu, false) => par_fill(y.len(), |r, o| elu_grad_slice(o, &y[r.clone()], &g[r])),
            (Kind::Tanh, true) => par_fill(y.len(), |r, o| {
                tanh_grad_input_slice(o, &y[r.clone()], &g[r])
            }),
            (Kind::Elu, true) => par_fill(y.len(), |r, o| {
                elu_grad_input_slice(o, &y[r.clone()], &g[r])
            }),
        };
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle::CudaStorage,
        l1: &Layout,
        s2: &candle::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle::CudaStorage, Shape)> {
        if self.1 {
            candle::bail!("{}: CPU only", self.name());
        }
        let op = match self.0 {
            Kind::Tanh => vaekit_kernels::Binary::TanhGrad,
            Kind::Elu => vaekit_kernels::Binary::EluGrad,
        };
        Ok((
            vaekit_kernels::binary(op, s1, l1, s2, l2)?,
            l1.shape().clone(),
        ))
    }
}

fn apply(x: &Tensor, kind: Kind) -> Result<Tensor> {
    if crate::has_kernel(x, &[DType::F32]) {
        x.contiguous()?.apply_op1(kind)
    } else {
        match kind {
            Kind::Tanh => x.tanh(),
            Kind::Elu => x.elu(1.0),
        }
    }
}

/// `tanh(x)`, differentiable. On CPU in f32 a fused vectorized op (absolute error below
/// `2e-7`, relative below `1e-6`) with a one-pass backward `g (1 - y²)`; on CUDA (feature
/// `cuda`) the same pair of kernels in f32 / f64; elsewhere candle's.
///
/// # Shapes
/// Element-wise.
///
/// # Errors
/// Non-float dtypes.
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    apply(x, Kind::Tanh)
}

/// ELU with `α = 1`: `x` for `x > 0`, `e^x - 1` otherwise (Clevert et al., arXiv
/// 1511.07289), differentiable. On CPU in f32 a fused vectorized op (relative error below
/// `1e-6`) with a one-pass backward; on CUDA (feature `cuda`) the same pair of kernels in
/// f32 / f64; elsewhere candle's `elu`.
///
/// # Shapes
/// Element-wise.
///
/// # Errors
/// Non-float dtypes.
pub fn elu(x: &Tensor) -> Result<Tensor> {
    apply(x, Kind::Elu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::{Device, Var};

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        crate::testing::max_abs_diff(a, b).unwrap()
    }

    /// Values and gradients of the fused f32 ops against candle's f64 ops, on inputs long
    /// enough to be split across threads and short ones, with a non-trivial upstream
    /// gradient.
    #[test]
    fn fused_activations_match_candle_in_f64() {
        let dev = Device::Cpu;
        for n in [37usize, 3 * PARALLEL_MIN / 2 + 5] {
            let x: Vec<f64> = (0..n)
                .map(|i| ((i * 7919) % 4001) as f64 / 200.0 - 10.0)
                .collect();
            let w: Vec<f64> = (0..n).map(|i| 1.0 + (i % 5) as f64 * 0.25).collect();
            for kind in [Kind::Tanh, Kind::Elu] {
                let run = |dtype: DType, fused: bool| {
                    let v = Var::from_tensor(
                        &Tensor::from_vec(x.clone(), n, &dev)
                            .unwrap()
                            .to_dtype(dtype)
                            .unwrap(),
                    )
                    .unwrap();
                    let y = match (fused, kind) {
                        (true, _) => apply(v.as_tensor(), kind).unwrap(),
                        (false, Kind::Tanh) => v.as_tensor().tanh().unwrap(),
                        (false, Kind::Elu) => v.as_tensor().elu(1.0).unwrap(),
                    };
                    let wt = Tensor::from_vec(w.clone(), n, &dev)
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap();
                    let g = (&y * &wt).unwrap().sum_all().unwrap().backward().unwrap();
                    (y, g.get(v.as_tensor()).unwrap().clone())
                };
                let (y32, g32) = run(DType::F32, true);
                let (y64, g64) = run(DType::F64, false);
                assert!(max_abs_diff(&y32, &y64) < 1e-6, "{kind:?} values");
                assert!(max_abs_diff(&g32, &g64) < 4e-6, "{kind:?} gradients");
            }
        }
    }

    /// `grad_from_input(x, g)` is bit for bit `grad(f(x), g)` in f32, and matches it in
    /// f64 (the composed fallback).
    #[test]
    fn grad_from_input_matches_grad_of_the_output() {
        let dev = Device::Cpu;
        let n = 3 * PARALLEL_MIN / 2 + 5;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 4001) as f32 / 200.0 - 10.0)
            .collect();
        let g: Vec<f32> = (0..n).map(|i| 1.0 + (i % 5) as f32 * 0.25).collect();
        let (x, g) = (
            Tensor::from_vec(x, n, &dev).unwrap(),
            Tensor::from_vec(g, n, &dev).unwrap(),
        );
        for kind in [Kind::Tanh, Kind::Elu] {
            let y = apply(&x, kind).unwrap();
            let want = kind.grad(&y, &g).unwrap().to_vec1::<f32>().unwrap();
            let got = kind
                .grad_from_input(&x, &g)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_eq!(got, want, "{kind:?} f32");
            let (x64, g64) = (
                x.to_dtype(DType::F64).unwrap(),
                g.to_dtype(DType::F64).unwrap(),
            );
            let got64 = kind.grad_from_input(&x64, &g64).unwrap();
            let want64 = Tensor::from_vec(want, n, &dev)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap();
            assert!(max_abs_diff(&got64, &want64) < 1e-5, "{kind:?} f64");
        }
    }

    #[test]
    fn apply_into_matches_apply_f32() {
        let x: Vec<f32> = (0..300).map(|i| (i as f32 - 150.0) / 17.0).collect();
        for kind in [Kind::Tanh, Kind::Elu] {
            let mut out = vec![0f32; x.len()];
            kind.apply_into(&x, &mut out);
            assert_eq!(out, kind.apply_f32(&x), "{kind:?}");
        }
    }

    #[test]
    fn f64_falls_back_to_candle() {
        let x = Tensor::new(&[-1.0f64, 0.5], &Device::Cpu).unwrap();
        assert_eq!(
            tanh(&x).unwrap().to_vec1::<f64>().unwrap(),
            x.tanh().unwrap().to_vec1::<f64>().unwrap()
        );
        assert_eq!(
            elu(&x).unwrap().to_vec1::<f64>().unwrap(),
            x.elu(1.0).unwrap().to_vec1::<f64>().unwrap()
        );
    }
}
