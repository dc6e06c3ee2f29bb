//! What every launcher needs: the PTX modules, a kernel by name and dtype, contiguous views
//! of candle's storage, and grid sizes.

use candle::cuda_backend::CudaDType;
use candle::cuda_backend::cudarc::driver::{CudaView, CudaViewMut, LaunchConfig};
use candle::{CudaStorage, Layout, Result, bail};

/// A PTX module compiled by `build.rs`.
pub(crate) struct Module {
    pub(crate) name: &'static str,
    pub(crate) ptx: &'static str,
}

/// `cuda/elementwise.cu`.
pub(crate) const ELEMENTWISE: Module = Module {
    name: "vaekit-elementwise",
    ptx: include_str!(concat!(env!("OUT_DIR"), "/elementwise.ptx")),
};

/// `cuda/reduce.cu`.
pub(crate) const REDUCE: Module = Module {
    name: "vaekit-reduce",
    ptx: include_str!(concat!(env!("OUT_DIR"), "/reduce.ptx")),
};

/// Threads per block; `reduce.cu`'s `BLOCK` must match.
pub(crate) const BLOCK: u32 = 256;

/// The float types the kernels are instantiated for, with their name suffix.
pub(crate) trait Float:
    CudaDType + candle::cuda_backend::cudarc::driver::DeviceRepr + candle::WithDType + Copy
{
    /// `f32` or `f64`, the suffix of the kernels' names.
    const SUFFIX: &'static str;
}

impl Float for f32 {
    const SUFFIX: &'static str = "f32";
}

impl Float for f64 {
    const SUFFIX: &'static str = "f64";
}

/// Launches kernel `{name}_{suffix}` of a [`Module`] (loaded once per device) on the
/// device's stream with the given arguments, as `launch!(dev, MODULE, "name", suffix, cfg,
/// &arg, ...)`: each argument a reference (`&mut` for a view written in place) to a value
/// that lives until the launch returns.
macro_rules! launch {
    ($dev:expr, $module:expr, $name:expr, $suffix:expr, $cfg:expr, $($arg:expr),+ $(,)?) => {{
        use candle::cuda_backend::WrapErr as _;
        use candle::cuda_backend::cudarc::driver::PushKernelArg as _;
        let module = &$module;
        let func = $dev.get_or_load_custom_func(
            &format!("{}_{}", $name, $suffix),
            module.name,
            module.ptx,
        )?;
        let mut builder = func.builder();
        $(builder.arg($arg);)+
        // SAFETY: the arguments match the kernel's signature in `cuda/*.cu` (sizes as
        // `size_t`, then pointers and scalars of the launcher's float type), every pointer
        // covers the element count passed with it, and outputs do not alias inputs.
        unsafe { builder.launch($cfg) }.w()?;
    }};
}
pub(crate) use launch;

/// The `[start, end)` storage offsets of a contiguous layout.
pub(crate) fn offsets(l: &Layout, op: &str) -> Result<(usize, usize)> {
    match l.contiguous_offsets() {
        Some(r) => Ok(r),
        None => bail!(
            "{op}: CUDA kernels need contiguous inputs, got strides {:?}",
            l.stride()
        ),
    }
}

/// The contiguous view of `s` under `l`.
pub(crate) fn view<'a, T: Float>(
    s: &'a CudaStorage,
    l: &Layout,
    op: &str,
) -> Result<CudaView<'a, T>> {
    let (a, b) = offsets(l, op)?;
    Ok(s.as_cuda_slice::<T>()?.slice(a..b))
}

/// The contiguous mutable view of `s` under `l`.
pub(crate) fn view_mut<'a, T: Float>(
    s: &'a mut CudaStorage,
    l: &Layout,
    op: &str,
) -> Result<CudaViewMut<'a, T>> {
    let (a, b) = offsets(l, op)?;
    Ok(s.as_cuda_slice_mut::<T>()?.slice_mut(a..b))
}

/// A grid-stride launch over `n` elements: `BLOCK` threads, at most 65535 blocks.
pub(crate) fn grid(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, 65535) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}
