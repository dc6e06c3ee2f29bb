//! A fused CPU kernel for an element-wise function evaluated in f64, with a backward pass.

use candle::backend::BackendStorage;
use candle::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Inputs at least this long are split across rayon's threads (transcendental functions in
/// f64 cost tens of nanoseconds per element; below this size the split costs more).
pub(crate) const PARALLEL_MIN: usize = 1 << 15;

/// `[f(0), ..., f(n - 1)]`, split across rayon's threads for long outputs (the result is
/// identical either way).
pub(crate) fn collect_indexed<T: Send>(n: usize, f: impl Fn(usize) -> T + Send + Sync) -> Vec<T> {
    if n >= PARALLEL_MIN {
        (0..n)
            .into_par_iter()
            .with_min_len(PARALLEL_MIN / 2)
            .map(f)
            .collect()
    } else {
        (0..n).map(f).collect()
    }
}

/// `f` over `v`, in parallel for long inputs.
fn map_slice<T: Copy + Send + Sync>(v: &[T], f: impl Fn(T) -> T + Send + Sync) -> Vec<T> {
    collect_indexed(v.len(), |i| f(v[i]))
}

/// A plain scalar function.
pub(crate) type F64Fn = fn(f64) -> f64;

/// A scalar function applied element-wise on CPU. f32 and f64 storage are supported; the
/// value is computed in f64 and rounded once.
#[derive(Clone, Copy)]
pub(crate) struct Map<F> {
    pub name: &'static str,
    pub f: F,
}

impl<F: Fn(f64) -> f64 + Send + Sync> CustomOp1 for Map<F> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle::bail!("{}: input must be contiguous", self.name)
        };
        let f = &self.f;
        let out = match storage {
            CpuStorage::F32(v) => {
                CpuStorage::F32(map_slice(&v[start..end], |x| f(f64::from(x)) as f32))
            }
            CpuStorage::F64(v) => CpuStorage::F64(map_slice(&v[start..end], f)),
            other => candle::bail!(
                "{}: f32 or f64 expected, got {:?}",
                self.name,
                other.dtype()
            ),
        };
        Ok((out, layout.shape().clone()))
    }
}

/// An element-wise function `f` with derivative `df`, both as CPU kernels. The backward is
/// `grad * df(x)`.
#[derive(Clone, Copy)]
pub(crate) struct Differentiable<F, G> {
    pub value: Map<F>,
    pub derivative: Map<G>,
}

impl<F, G> CustomOp1 for Differentiable<F, G>
where
    F: Fn(f64) -> f64 + Send + Sync,
    G: Fn(f64) -> f64 + Send + Sync + Clone,
{
    fn name(&self) -> &'static str {
        self.value.name
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        self.value.cpu_fwd(storage, layout)
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let slope = arg.contiguous()?.apply_op1_no_bwd(&self.derivative)?;
        Ok(Some(grad_res.mul(&slope)?))
    }
}

/// Applies `op` on CPU (f32/f64 directly, f16/bf16 through f32), or `fallback` elsewhere.
pub(crate) fn apply<F, G>(
    x: &Tensor,
    op: Differentiable<F, G>,
    fallback: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor>
where
    F: Fn(f64) -> f64 + Send + Sync + 'static,
    G: Fn(f64) -> f64 + Send + Sync + Clone + 'static,
{
    if !x.device().is_cpu() {
        return fallback(x);
    }
    match x.dtype() {
        DType::F32 | DType::F64 => x.contiguous()?.apply_op1(op),
        DType::F16 | DType::BF16 => x
            .to_dtype(DType::F32)?
            .contiguous()?
            .apply_op1(op)?
            .to_dtype(x.dtype()),
        other => candle::bail!("{}: float dtype expected, got {other:?}", op.value.name),
    }
}

/// Applies the scalar function `f`, with derivative `df`, element-wise and differentiably.
///
/// On CPU this is one fused pass evaluated in f64 (f16/bf16 go through f32). On other devices
/// the tensor is moved to the CPU and back, which is exact but costs two copies: meant for
/// special functions of small parameter tensors (a concentration, a temperature), not for
/// activations.
///
/// # Shapes
/// Element-wise; the result has `x`'s shape, dtype and device.
///
/// # Errors
/// Non-float dtypes.
pub fn map_elementwise<F, G>(x: &Tensor, name: &'static str, f: F, df: G) -> Result<Tensor>
where
    F: Fn(f64) -> f64 + Send + Sync + 'static,
    G: Fn(f64) -> f64 + Send + Sync + Clone + 'static,
{
    let op = Differentiable {
        value: Map { name, f },
        derivative: Map { name, f: df },
    };
    let on_cpu = x.to_device(&Device::Cpu)?;
    let y = apply(&on_cpu, op, |_| candle::bail!("{name}: not on the CPU"))?;
    y.to_device(x.device())
}
