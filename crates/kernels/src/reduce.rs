//! Reducing kernels (`cuda/reduce.cu`): the decoder's Bernoulli log-likelihood summed over
//! pixels with its backward, and a gradient's sum of squares. Sums run in f64 in a fixed
//! tree order, so results do not depend on scheduling.

use crate::launch::{BLOCK, Float, REDUCE, grid, launch, view};
use candle::backend::BackendStorage;
use candle::cuda_backend::cudarc::driver::LaunchConfig;
use candle::{CudaStorage, DType, Layout, Result, bail};

fn rows_config(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.clamp(1, 65535) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn check(name: &str, ll: &Layout, xl: &Layout, (b, s, p): (usize, usize, usize)) -> Result<()> {
    if ll.shape().elem_count() != b * s * p || xl.shape().elem_count() != b * p {
        bail!(
            "{name}: logits {:?} and values {:?} are not [{b}, {s}, {p}] and [{b}, {p}]",
            ll.shape(),
            xl.shape()
        );
    }
    Ok(())
}

fn sum_t<T: Float>(
    l: (&CudaStorage, &Layout),
    x: (&CudaStorage, &Layout),
    (b, s, p): (usize, usize, usize),
) -> Result<CudaStorage> {
    const NAME: &str = "vk_bernoulli_sum";
    check(NAME, l.1, x.1, (b, s, p))?;
    let (lv, xv) = (view::<T>(l.0, l.1, NAME)?, view::<T>(x.0, x.1, NAME)?);
    let dev = l.0.device();
    let rows = b * s;
    // SAFETY: the kernel writes every row before it is read.
    #[allow(unsafe_code)]
    let mut out = unsafe { dev.alloc::<T>(rows)? };
    launch!(
        dev,
        REDUCE,
        NAME,
        T::SUFFIX,
        rows_config(rows),
        &rows,
        &s,
        &p,
        &lv,
        &xv,
        &mut out
    );
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}

fn score_t<T: Float>(
    l: (&CudaStorage, &Layout),
    x: (&CudaStorage, &Layout),
    g: (&CudaStorage, &Layout),
    (b, s, p): (usize, usize, usize),
) -> Result<CudaStorage> {
    const NAME: &str = "vk_bernoulli_sum_score";
    check(NAME, l.1, x.1, (b, s, p))?;
    if g.1.shape().elem_count() != b * s {
        bail!("{NAME}: gradient {:?} is not [{b}, {s}]", g.1.shape());
    }
    let (lv, xv, gv) = (
        view::<T>(l.0, l.1, NAME)?,
        view::<T>(x.0, x.1, NAME)?,
        view::<T>(g.0, g.1, NAME)?,
    );
    let dev = l.0.device();
    let (rows, n) = (b * s, b * s * p);
    // SAFETY: the kernel writes every element before it is read.
    #[allow(unsafe_code)]
    let mut out = unsafe { dev.alloc::<T>(n)? };
    launch!(
        dev,
        REDUCE,
        NAME,
        T::SUFFIX,
        grid(n),
        &rows,
        &s,
        &p,
        &lv,
        &xv,
        &gv,
        &mut out
    );
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}

fn sum_squares_t<T: Float>(x: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    const NAME: &str = "vk_sum_squares_partial";
    let xv = view::<T>(x, l, NAME)?;
    let n = l.shape().elem_count();
    let dev = x.device();
    // At most 1024 partial sums: the second pass is one block.
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, 1024);
    let mut partial = dev.alloc_zeros::<f64>(blocks)?;
    let cfg = LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    };
    launch!(dev, REDUCE, NAME, T::SUFFIX, cfg, &n, &xv, &mut partial);
    let mut out = dev.alloc_zeros::<f64>(1)?;
    let one = LaunchConfig {
        grid_dim: (1, 1, 1),
        ..cfg
    };
    // `vk_sum_f64` has no dtype suffix: its name is split as `vk_sum` + `f64`.
    launch!(
        dev, REDUCE, "vk_sum", "f64", one, &blocks, &partial, &mut out
    );
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}

/// `out[b, s] = Σ_p log Bernoulli(x[b, p]; l[b, s, p])` for contiguous logits `[B, S, P]` and
/// values `[B, P]`; returns `[B, S]` storage of the logits' dtype.
///
/// # Errors
/// Sizes that do not match `dims`, dtypes that differ or are not f32 / f64, a non-contiguous
/// layout, or a CUDA error.
pub fn bernoulli_sum(
    l: (&CudaStorage, &Layout),
    x: (&CudaStorage, &Layout),
    dims: (usize, usize, usize),
) -> Result<CudaStorage> {
    match (l.0.dtype(), x.0.dtype()) {
        (DType::F32, DType::F32) => sum_t::<f32>(l, x, dims),
        (DType::F64, DType::F64) => sum_t::<f64>(l, x, dims),
        (a, b) => bail!("vk_bernoulli_sum: f32 or f64 of one dtype, got {a:?} and {b:?}"),
    }
}

/// The logits' gradient of [`bernoulli_sum`]: `g[b, s] (x[b, p] − σ(l[b, s, p]))`, `[B, S, P]`.
///
/// # Errors
/// As [`bernoulli_sum`], and a gradient that is not `[B, S]`.
pub fn bernoulli_sum_score(
    l: (&CudaStorage, &Layout),
    x: (&CudaStorage, &Layout),
    g: (&CudaStorage, &Layout),
    dims: (usize, usize, usize),
) -> Result<CudaStorage> {
    match (l.0.dtype(), x.0.dtype(), g.0.dtype()) {
        (DType::F32, DType::F32, DType::F32) => score_t::<f32>(l, x, g, dims),
        (DType::F64, DType::F64, DType::F64) => score_t::<f64>(l, x, g, dims),
        (a, b, c) => {
            bail!("vk_bernoulli_sum_score: f32 or f64 of one dtype, got {a:?}, {b:?}, {c:?}")
        }
    }
}

/// `Σ x²` of a contiguous f32 / f64 tensor, as a one-element f64 storage.
///
/// # Errors
/// A non-contiguous layout, another dtype, or a CUDA error.
pub fn sum_squares(x: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    match x.dtype() {
        DType::F32 => sum_squares_t::<f32>(x, l),
        DType::F64 => sum_squares_t::<f64>(x, l),
        d => bail!("vk_sum_squares: f32 or f64 only, got {d:?}"),
    }
}
