//! Access to CPU storage inside custom ops.

use candle::{CpuStorage, DType, Layout, Result, Tensor, WithDType};

/// The part of `v` that a contiguous `layout` covers; an error naming `what` otherwise.
/// For custom ops' `cpu_fwd`, which receive whole storage buffers.
///
/// # Errors
/// A strided (non-contiguous) layout.
pub fn contiguous_part<'a, T>(v: &'a [T], layout: &Layout, what: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle::bail!("{what} must be contiguous"),
    }
}

/// The contiguous part of CPU `storage` as `T` (see [`contiguous_part`]).
///
/// # Errors
/// A strided layout, or storage of another dtype than `T`.
pub fn contiguous_slice<'a, T: WithDType>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a [T]> {
    contiguous_part(storage.as_slice::<T>()?, layout, what)
}

/// Whether a CPU-only fused op covers `t`: a CPU tensor of f32 or f64. For the ops that have
/// no CUDA kernel because candle's own CUDA ops serve (the layers' kernels); elsewhere they fall back
/// to their composition of candle primitives.
pub fn has_cpu_kernel(t: &Tensor) -> bool {
    t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64)
}

/// Whether a fused op's kernel covers `t`: on CPU for the dtypes in `cpu`, on CUDA (with
/// the `cuda` feature, kernels of `vaekit-kernels`) for f32 and f64. Elsewhere the op falls
/// back to its composition of candle primitives.
pub fn has_kernel(t: &Tensor, cpu: &[DType]) -> bool {
    let dev = t.device();
    if dev.is_cpu() {
        return cpu.contains(&t.dtype());
    }
    cfg!(feature = "cuda") && dev.is_cuda() && matches!(t.dtype(), DType::F32 | DType::F64)
}
