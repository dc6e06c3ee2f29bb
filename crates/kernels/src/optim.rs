//! The fused Adam / Adamax passes, in place (`cuda/elementwise.cu`), mirroring
//! `vaekit-train`'s CPU `fused_update`: arithmetic in the storage type.

use crate::launch::{ELEMENTWISE, Float, grid, launch, view, view_mut};
use candle::backend::BackendStorage;
use candle::{CudaStorage, DType, Layout, Result, bail};

/// A pass over one optimizer state array, reading the gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StateUpdate {
    /// `m ← β1 m + (1 − β1) g`.
    FirstMoment {
        /// `β1`.
        beta1: f64,
    },
    /// `v ← β2 v + (1 − β2) g²` (Adam).
    SecondMoment {
        /// `β2`.
        beta2: f64,
    },
    /// `u ← max(β2 u, |g|)` (Adamax).
    InfinityNorm {
        /// `β2`.
        beta2: f64,
    },
}

/// The parameter pass, `p ← (1 − decay) p − step_m m / (√(v scale_v) + eps)` (Adam) or
/// `p ← (1 − decay) p − step_m m / (u + eps)` (Adamax).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamUpdate {
    /// Adamax (infinity norm) rather than Adam.
    pub adamax: bool,
    /// `lr / (1 − β1^t)`.
    pub step_m: f64,
    /// `1 / (1 − β2^t)` (Adam only).
    pub scale_v: f64,
    /// `ε`.
    pub eps: f64,
    /// `lr · weight_decay`.
    pub decay: f64,
}

const NAME: &str = "fused-optimizer (CUDA)";

fn state_t<T: Float>(
    dst: &mut CudaStorage,
    dl: &Layout,
    g: &CudaStorage,
    gl: &Layout,
    pass: StateUpdate,
) -> Result<()> {
    let n = dl.shape().elem_count();
    if gl.shape().elem_count() != n {
        bail!("{NAME}: state {:?}, gradient {:?}", dl.shape(), gl.shape());
    }
    let dev = dst.device().clone();
    let g = view::<T>(g, gl, NAME)?;
    let mut d = view_mut::<T>(dst, dl, NAME)?;
    match pass {
        StateUpdate::FirstMoment { beta1 } => {
            let (a, b) = (T::from_f64(beta1), T::from_f64(1.0 - beta1));
            launch!(
                dev,
                ELEMENTWISE,
                "vk_first_moment",
                T::SUFFIX,
                grid(n),
                &n,
                &mut d,
                &g,
                &a,
                &b
            );
        }
        StateUpdate::SecondMoment { beta2 } => {
            let (a, b) = (T::from_f64(beta2), T::from_f64(1.0 - beta2));
            launch!(
                dev,
                ELEMENTWISE,
                "vk_second_moment",
                T::SUFFIX,
                grid(n),
                &n,
                &mut d,
                &g,
                &a,
                &b
            );
        }
        StateUpdate::InfinityNorm { beta2 } => {
            let a = T::from_f64(beta2);
            launch!(
                dev,
                ELEMENTWISE,
                "vk_infinity_norm",
                T::SUFFIX,
                grid(n),
                &n,
                &mut d,
                &g,
                &a
            );
        }
    }
    Ok(())
}

fn param_t<T: Float>(
    p: &mut CudaStorage,
    pl: &Layout,
    m: (&CudaStorage, &Layout),
    v: (&CudaStorage, &Layout),
    c: &ParamUpdate,
) -> Result<()> {
    let n = pl.shape().elem_count();
    if m.1.shape().elem_count() != n || v.1.shape().elem_count() != n {
        bail!(
            "{NAME}: parameter {:?}, moments {:?} {:?}",
            pl.shape(),
            m.1.shape(),
            v.1.shape()
        );
    }
    let dev = p.device().clone();
    let mv = view::<T>(m.0, m.1, NAME)?;
    let vv = view::<T>(v.0, v.1, NAME)?;
    let mut pv = view_mut::<T>(p, pl, NAME)?;
    let (step_m, eps, keep) = (
        T::from_f64(c.step_m),
        T::from_f64(c.eps),
        T::from_f64(1.0 - c.decay),
    );
    if c.adamax {
        launch!(
            dev,
            ELEMENTWISE,
            "vk_adamax_param",
            T::SUFFIX,
            grid(n),
            &n,
            &mut pv,
            &mv,
            &vv,
            &step_m,
            &eps,
            &keep
        );
    } else {
        let scale_v = T::from_f64(c.scale_v);
        launch!(
            dev,
            ELEMENTWISE,
            "vk_adam_param",
            T::SUFFIX,
            grid(n),
            &n,
            &mut pv,
            &mv,
            &vv,
            &step_m,
            &scale_v,
            &eps,
            &keep
        );
    }
    Ok(())
}

/// One state pass in place on `dst` (the moment) from the gradient `g`, both contiguous
/// and of one size and dtype.
///
/// # Errors
/// Sizes or dtypes that differ, a non-contiguous layout, a dtype other than f32 / f64, or a
/// CUDA error.
pub fn state_update(
    dst: &mut CudaStorage,
    dl: &Layout,
    g: &CudaStorage,
    gl: &Layout,
    pass: StateUpdate,
) -> Result<()> {
    match (dst.dtype(), g.dtype()) {
        (DType::F32, DType::F32) => state_t::<f32>(dst, dl, g, gl, pass),
        (DType::F64, DType::F64) => state_t::<f64>(dst, dl, g, gl, pass),
        (a, b) => bail!("{NAME}: f32 or f64 of one dtype, got {a:?} and {b:?}"),
    }
}

/// The parameter pass in place on `p` from the moments `m` and `v` (or `u`).
///
/// # Errors
/// As [`state_update`].
pub fn param_update(
    p: &mut CudaStorage,
    pl: &Layout,
    m: (&CudaStorage, &Layout),
    v: (&CudaStorage, &Layout),
    c: &ParamUpdate,
) -> Result<()> {
    match (p.dtype(), m.0.dtype(), v.0.dtype()) {
        (DType::F32, DType::F32, DType::F32) => param_t::<f32>(p, pl, m, v, c),
        (DType::F64, DType::F64, DType::F64) => param_t::<f64>(p, pl, m, v, c),
        (a, b, d) => bail!("{NAME}: f32 or f64 of one dtype, got {a:?}, {b:?}, {d:?}"),
    }
}
