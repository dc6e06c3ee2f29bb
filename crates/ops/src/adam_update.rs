//! The optimizer's CPU hot path: Adam / Adamax updated in place, without temporaries.
//!
//! The composed update (`vaekit_train::Optimizer` on other devices) runs about fifteen candle ops per
//! parameter, each allocating and streaming a full-size tensor. Here three in-place passes
//! (first moment, second moment or infinity norm, parameter) touch each element once per
//! pass and allocate nothing. Arithmetic is done in the storage type. With the `cuda`
//! feature the same three passes run as CUDA kernels (`vaekit-kernels`).

use candle::{CpuStorage, Layout, Result, Tensor, WithDType, bail};

/// Adam or Adamax, as the update kernels see them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// Adamax (the infinity norm `u ← max(β2 u, |g|)`) instead of Adam's second moment.
    pub adamax: bool,
    /// `β1`, in `[0, 1)`.
    pub beta1: f64,
    /// `β2`, in `[0, 1)`.
    pub beta2: f64,
    /// `ε`, `> 0`.
    pub eps: f64,
    /// Decoupled weight decay per unit of learning rate, `>= 0`.
    pub weight_decay: f64,
}

/// Which state array a pass updates.
#[derive(Debug, Clone, Copy)]
enum Pass {
    /// `m ← β1 m + (1 − β1) g`.
    FirstMoment { beta1: f64 },
    /// `v ← β2 v + (1 − β2) g²` (Adam).
    SecondMoment { beta2: f64 },
    /// `u ← max(β2 u, |g|)` (Adamax).
    InfinityNorm { beta2: f64 },
}

/// A state pass: `dst` is the moment, the source the gradient.
struct StatePass(Pass);

/// The parameter pass: `dst` is the parameter, the sources `m` and `v` (or `u`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParamPass {
    pub(crate) adamax: bool,
    /// `lr / (1 − β1^t)`.
    step_m: f64,
    /// `1 / (1 − β2^t)` (Adam only).
    scale_v: f64,
    eps: f64,
    /// `lr · weight_decay`.
    decay: f64,
}

/// Elements per parallel task of the passes ([`crate::for_chunks`]); every element's
/// update is independent, so the result does not depend on the split.
const PAR_CHUNK: usize = 1 << 14;

fn range(l: &Layout, what: &str) -> Result<(usize, usize)> {
    match l.contiguous_offsets() {
        Some(r) => Ok(r),
        None => bail!("fused optimizer update: {what} is not contiguous"),
    }
}

/// The float operations the kernels need, in the storage type's own precision so that the
/// loops vectorize at full width.
pub(crate) trait Real: WithDType {
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn larger(self, other: Self) -> Self;
    /// `self`, or zero when it is subnormal (see [`flush`]).
    fn flushed(self) -> Self;
}

/// A moment below the smallest normal number is stored as zero. A parameter whose gradient
/// is zero for many steps (an input pixel that is almost never on) lets its moments decay
/// geometrically into the subnormal range, and on many x86 CPUs every multiplication that
/// reads or writes a subnormal takes a microcode assist of about a hundred cycles: in the
/// IWAE dense VAE's training about 7000 first moments of the input layer were subnormal
/// after the first epoch, and the update's time per step grew with them. The step a zeroed
/// first moment would have made is below `lr / (1 − β1^t) · 1.2e-38 / ε` (f32); a zeroed
/// second moment changes the divisor `sqrt(v̂) + ε` by less than `1.1e-19 / sqrt(1 − β2^t)`,
/// negligible against any `ε` above about `1e-15` (the presets use `1e-8` and `1e-4`).
#[inline(always)]
fn flush<T: Real>(x: T) -> T {
    x.flushed()
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn larger(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            fn flushed(self) -> Self {
                if <$t>::abs(self) < <$t>::MIN_POSITIVE {
                    0.0
                } else {
                    self
                }
            }
        }
    };
}
real!(f32);
real!(f64);

// The per-element rules, shared by these three passes and the one pass of `adam_host.rs`,
// so that both give the same bits.

/// `m ← β1 m + (1 − β1) g`, flushed (`a = β1`, `b = 1 − β1`).
#[inline(always)]
pub(crate) fn first_moment<T: Real>(m: T, g: T, a: T, b: T) -> T {
    flush(a * m + b * g)
}

/// `v ← β2 v + (1 − β2) g²`, flushed (`a = β2`, `b = 1 − β2`).
#[inline(always)]
pub(crate) fn second_moment<T: Real>(v: T, g: T, a: T, b: T) -> T {
    flush(a * v + b * (g * g))
}

/// `u ← max(β2 u, |g|)`, flushed (`a = β2`).
#[inline(always)]
pub(crate) fn infinity_norm<T: Real>(u: T, g: T, a: T) -> T {
    flush((a * u).larger(g.abs()))
}

/// The parameter pass's constants in the storage type.
#[derive(Clone, Copy)]
pub(crate) struct ParamRule<T> {
    step_m: T,
    scale_v: T,
    eps: T,
    keep: T,
}

impl<T: Real> ParamRule<T> {
    pub(crate) fn new(c: &ParamPass) -> Self {
        Self {
            step_m: T::from_f64(c.step_m),
            scale_v: T::from_f64(c.scale_v),
            eps: T::from_f64(c.eps),
            keep: T::from_f64(1.0 - c.decay),
        }
    }

    /// Adam: `p ← (1 − lr λ) p − step_m m / (sqrt(v · scale_v) + ε)`.
    #[inline(always)]
    pub(crate) fn adam(&self, p: T, m: T, v: T) -> T {
        self.keep * p - self.step_m * m / ((v * self.scale_v).sqrt() + self.eps)
    }

    /// Adamax: `p ← (1 − lr λ) p − step_m m / (u + ε)`.
    #[inline(always)]
    pub(crate) fn adamax(&self, p: T, m: T, u: T) -> T {
        self.keep * p - self.step_m * m / (u + self.eps)
    }
}

#[inline(always)]
fn state_kernel<T: Real>(dst: &mut [T], g: &[T], pass: Pass) {
    match pass {
        Pass::FirstMoment { beta1 } => {
            let (a, b) = (T::from_f64(beta1), T::from_f64(1.0 - beta1));
            for (m, &g) in dst.iter_mut().zip(g) {
                *m = first_moment(*m, g, a, b);
            }
        }
        Pass::SecondMoment { beta2 } => {
            let (a, b) = (T::from_f64(beta2), T::from_f64(1.0 - beta2));
            for (v, &g) in dst.iter_mut().zip(g) {
                *v = second_moment(*v, g, a, b);
            }
        }
        Pass::InfinityNorm { beta2 } => {
            let a = T::from_f64(beta2);
            for (u, &g) in dst.iter_mut().zip(g) {
                *u = infinity_norm(*u, g, a);
            }
        }
    }
}

#[inline(always)]
fn param_kernel<T: Real>(p: &mut [T], m: &[T], v: &[T], c: &ParamPass) {
    let rule = ParamRule::new(c);
    if c.adamax {
        for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
            *p = rule.adamax(*p, m, v);
        }
    } else {
        for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
            *p = rule.adam(*p, m, v);
        }
    }
}

// The f32 kernels, 8 lanes wide where the CPU has AVX2 (the crate is built for baseline
// x86-64): the square root and division of Adam dominate the update.
crate::avx2_dispatch! {
    fn state_f32(dst: &mut [f32], g: &[f32], pass: Pass) -> () {
        state_kernel(dst, g, pass)
    }
}

crate::avx2_dispatch! {
    fn param_f32(p: &mut [f32], m: &[f32], v: &[f32], c: &ParamPass) -> () {
        param_kernel(p, m, v, c)
    }
}

impl candle::InplaceOp2 for StatePass {
    fn name(&self) -> &'static str {
        "fused-optimizer-state"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout, g: &CpuStorage, gl: &Layout) -> Result<()> {
        let (a, b) = range(l, "the optimizer state")?;
        let (ga, gb) = range(gl, "the gradient")?;
        if b - a != gb - ga {
            bail!(
                "fused optimizer update: state of {} and gradient of {} elements",
                b - a,
                gb - ga
            );
        }
        let pass = self.0;
        match s {
            CpuStorage::F32(d) => {
                let g = &g.as_slice::<f32>()?[ga..gb];
                crate::for_chunks(&mut d[a..b], PAR_CHUNK, |o, d| {
                    state_f32(d, &g[o..o + d.len()], pass)
                })
            }
            CpuStorage::F64(d) => {
                let g = &g.as_slice::<f64>()?[ga..gb];
                crate::for_chunks(&mut d[a..b], PAR_CHUNK, |o, d| {
                    state_kernel(d, &g[o..o + d.len()], pass)
                })
            }
            _ => bail!("fused optimizer update: f32 or f64 parameters only"),
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &mut candle::CudaStorage,
        l: &Layout,
        g: &candle::CudaStorage,
        gl: &Layout,
    ) -> Result<()> {
        use vaekit_kernels::StateUpdate;
        let pass = match self.0 {
            Pass::FirstMoment { beta1 } => StateUpdate::FirstMoment { beta1 },
            Pass::SecondMoment { beta2 } => StateUpdate::SecondMoment { beta2 },
            Pass::InfinityNorm { beta2 } => StateUpdate::InfinityNorm { beta2 },
        };
        vaekit_kernels::state_update(s, l, g, gl, pass)
    }
}

impl ParamPass {
    /// The parameter pass of step `t` with learning rate `lr`.
    pub(crate) fn new(c: &AdamStep, lr: f64, t: i32) -> Self {
        Self {
            adamax: c.adamax,
            step_m: lr / (1.0 - c.beta1.powi(t)),
            scale_v: 1.0 / (1.0 - c.beta2.powi(t)),
            eps: c.eps,
            decay: lr * c.weight_decay,
        }
    }
}

impl candle::InplaceOp3 for ParamPass {
    fn name(&self) -> &'static str {
        "fused-optimizer-param"
    }

    fn cpu_fwd(
        &self,
        p: &mut CpuStorage,
        pl: &Layout,
        m: &CpuStorage,
        ml: &Layout,
        v: &CpuStorage,
        vl: &Layout,
    ) -> Result<()> {
        let (a, b) = range(pl, "the parameter")?;
        let (ma, mb) = range(ml, "the first moment")?;
        let (va, vb) = range(vl, "the second moment")?;
        if b - a != mb - ma || b - a != vb - va {
            bail!(
                "fused optimizer update: parameter of {} elements, moments of {} and {}",
                b - a,
                mb - ma,
                vb - va
            );
        }
        match p {
            CpuStorage::F32(d) => {
                let (m, v) = (&m.as_slice::<f32>()?[ma..mb], &v.as_slice::<f32>()?[va..vb]);
                crate::for_chunks(&mut d[a..b], PAR_CHUNK, |o, d| {
                    let r = o..o + d.len();
                    param_f32(d, &m[r.clone()], &v[r], self)
                })
            }
            CpuStorage::F64(d) => {
                let (m, v) = (&m.as_slice::<f64>()?[ma..mb], &v.as_slice::<f64>()?[va..vb]);
                crate::for_chunks(&mut d[a..b], PAR_CHUNK, |o, d| {
                    let r = o..o + d.len();
                    param_kernel(d, &m[r.clone()], &v[r], self)
                })
            }
            _ => bail!("fused optimizer update: f32 or f64 parameters only"),
        }
        Ok(())
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        p: &mut candle::CudaStorage,
        pl: &Layout,
        m: &candle::CudaStorage,
        ml: &Layout,
        v: &candle::CudaStorage,
        vl: &Layout,
    ) -> Result<()> {
        let c = vaekit_kernels::ParamUpdate {
            adamax: self.adamax,
            step_m: self.step_m,
            scale_v: self.scale_v,
            eps: self.eps,
            decay: self.decay,
        };
        vaekit_kernels::param_update(p, pl, (m, ml), (v, vl), &c)
    }
}

/// Whether the fused path applies: a CPU parameter (or, with the `cuda` feature, a CUDA one)
/// of a float type the kernels cover.
pub fn adam_update_applies(param: &Tensor) -> bool {
    use candle::DType::{F32, F64};
    crate::has_kernel(param, &[F32, F64])
}

/// One fused update of `param` with gradient `g` (same dtype and shape) at step `t`,
/// mutating `param`, `m` and `v` in place. `m` and `v` must not share storage with anything
/// else.
///
/// # Errors
/// Shape mismatches, non-contiguous tensors, or an unsupported dtype.
pub fn adam_update(
    c: &AdamStep,
    lr: f64,
    t: i32,
    param: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
) -> Result<()> {
    if g.shape() != param.shape() || m.shape() != param.shape() || v.shape() != param.shape() {
        bail!(
            "fused optimizer update: parameter {:?}, gradient {:?}, moments {:?} {:?}",
            param.shape(),
            g.shape(),
            m.shape(),
            v.shape()
        );
    }
    let g = g.contiguous()?;
    m.inplace_op2(&g, &StatePass(Pass::FirstMoment { beta1: c.beta1 }))?;
    let second = if c.adamax {
        Pass::InfinityNorm { beta2: c.beta2 }
    } else {
        Pass::SecondMoment { beta2: c.beta2 }
    };
    v.inplace_op2(&g, &StatePass(second))?;
    param.inplace_op3(m, v, &ParamPass::new(c, lr, t))
}
