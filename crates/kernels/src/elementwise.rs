//! Element-wise kernels of one or two inputs (`cuda/elementwise.cu`).

use crate::launch::{ELEMENTWISE, Float, grid, launch, view};
use candle::backend::BackendStorage;
use candle::{CudaStorage, DType, Layout, Result, bail};

/// One-input kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unary {
    /// `tanh(x)`.
    Tanh,
    /// ELU with `α = 1`: `x` for `x > 0`, `e^x − 1` (as `expm1`) otherwise.
    Elu,
}

/// Two-input kernels `f(a, b)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// `g (1 − y²)` from `a = y = tanh(x)` and `b = g`.
    TanhGrad,
    /// `g` where `y > 0`, `g (y + 1)` elsewhere, from `a = y = elu(x)` and `b = g`.
    EluGrad,
    /// `log Bernoulli(x; l) = −x softplus(−l) − (1 − x) softplus(l)` from `a = l`, `b = x`,
    /// in f64 per element.
    BernoulliLogProb,
    /// `x − σ(l)` from `a = l`, `b = x`, in f64 per element.
    BernoulliScore,
}

impl Unary {
    fn kernel(self) -> &'static str {
        match self {
            Unary::Tanh => "vk_tanh",
            Unary::Elu => "vk_elu",
        }
    }
}

impl Binary {
    fn kernel(self) -> &'static str {
        match self {
            Binary::TanhGrad => "vk_tanh_grad",
            Binary::EluGrad => "vk_elu_grad",
            Binary::BernoulliLogProb => "vk_bernoulli_log_prob",
            Binary::BernoulliScore => "vk_bernoulli_score",
        }
    }
}

fn unary_t<T: Float>(op: Unary, s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    let x = view::<T>(s, l, op.kernel())?;
    let n = l.shape().elem_count();
    let dev = s.device();
    // SAFETY: every element is written by the kernel before it is read.
    #[allow(unsafe_code)]
    let mut out = unsafe { dev.alloc::<T>(n)? };
    launch!(
        dev,
        ELEMENTWISE,
        op.kernel(),
        T::SUFFIX,
        grid(n),
        &n,
        &x,
        &mut out
    );
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}

fn binary_t<T: Float>(
    op: Binary,
    a: &CudaStorage,
    la: &Layout,
    b: &CudaStorage,
    lb: &Layout,
) -> Result<CudaStorage> {
    let n = la.shape().elem_count();
    if lb.shape().elem_count() != n {
        bail!(
            "{}: {:?} and {:?} differ in size",
            op.kernel(),
            la.shape(),
            lb.shape()
        );
    }
    let (x, y) = (
        view::<T>(a, la, op.kernel())?,
        view::<T>(b, lb, op.kernel())?,
    );
    let dev = a.device();
    // SAFETY: every element is written by the kernel before it is read.
    #[allow(unsafe_code)]
    let mut out = unsafe { dev.alloc::<T>(n)? };
    launch!(
        dev,
        ELEMENTWISE,
        op.kernel(),
        T::SUFFIX,
        grid(n),
        &n,
        &x,
        &y,
        &mut out
    );
    Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
}

/// `op(x)` element-wise, into new storage of `l`'s element count.
///
/// # Errors
/// A non-contiguous layout, a dtype other than f32 / f64, or a CUDA error.
pub fn unary(op: Unary, s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    match s.dtype() {
        DType::F32 => unary_t::<f32>(op, s, l),
        DType::F64 => unary_t::<f64>(op, s, l),
        d => bail!("{}: f32 or f64 only, got {d:?}", op.kernel()),
    }
}

/// `op(a, b)` element-wise over two contiguous inputs of one size and dtype.
///
/// # Errors
/// Sizes or dtypes that differ, a non-contiguous layout, another dtype, or a CUDA error.
pub fn binary(
    op: Binary,
    a: &CudaStorage,
    la: &Layout,
    b: &CudaStorage,
    lb: &Layout,
) -> Result<CudaStorage> {
    match (a.dtype(), b.dtype()) {
        (DType::F32, DType::F32) => binary_t::<f32>(op, a, la, b, lb),
        (DType::F64, DType::F64) => binary_t::<f64>(op, a, la, b, lb),
        (x, y) => bail!(
            "{}: f32 or f64 of one dtype, got {x:?} and {y:?}",
            op.kernel()
        ),
    }
}
