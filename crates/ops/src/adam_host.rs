//! Adam / Adamax in one pass over the parameter, for moments the optimizer holds in host
//! memory ([`HostMoments`]).
//!
//! [`crate::adam_update`] keeps the moments as tensors, so it runs three in-place passes
//! (first moment, second moment, parameter: candle gives an in-place op one mutable operand):
//! ten streams of the parameter's size per step and three dispatches per parameter. Here the
//! moments are plain vectors the op borrows mutably beside the parameter's storage, so one
//! pass reads the gradient and updates the first moment, the second moment (or infinity norm)
//! and the parameter element by element: seven streams, one dispatch. The arithmetic of each
//! element is that of the three passes, in the same order, so both give the same bits.

use std::sync::Mutex;

use candle::{CpuStorage, DType, Layout, Result, Shape, Tensor, bail};
use rayon::prelude::*;

use crate::AdamStep;
use crate::adam_update::{ParamPass, ParamRule, Real, first_moment, infinity_norm, second_moment};

/// Adam's moments of one parameter in host memory, for [`adam_update_host`]: `m` (the first
/// moment) and `v` (the second moment, or Adamax's infinity norm), each with the parameter's
/// element count in its own float type, row-major in the parameter's shape.
#[derive(Debug, Clone, PartialEq)]
pub enum HostMoments {
    /// Moments of an f32 parameter.
    F32 {
        /// First moment.
        m: Vec<f32>,
        /// Second moment or infinity norm.
        v: Vec<f32>,
    },
    /// Moments of an f64 parameter.
    F64 {
        /// First moment.
        m: Vec<f64>,
        /// Second moment or infinity norm.
        v: Vec<f64>,
    },
}

impl HostMoments {
    /// Zero moments for `param` (f32 or f64, any device: only its dtype and element count are
    /// read).
    ///
    /// # Errors
    /// A dtype other than f32 or f64.
    pub fn zeros(param: &Tensor) -> Result<Self> {
        let n = param.elem_count();
        match param.dtype() {
            DType::F32 => Ok(Self::F32 {
                m: vec![0.0; n],
                v: vec![0.0; n],
            }),
            DType::F64 => Ok(Self::F64 {
                m: vec![0.0; n],
                v: vec![0.0; n],
            }),
            other => bail!("host moments: f32 or f64 parameters only, got {other:?}"),
        }
    }

    /// The moments held in tensors `m` and `v` (same shape and dtype, f32 or f64, any device),
    /// copied to host vectors in row-major order.
    ///
    /// # Errors
    /// Different shapes or dtypes, or a dtype other than f32 or f64.
    pub fn from_tensors(m: &Tensor, v: &Tensor) -> Result<Self> {
        if m.shape() != v.shape() || m.dtype() != v.dtype() {
            bail!(
                "host moments: m {:?} {:?} and v {:?} {:?} differ",
                m.shape(),
                m.dtype(),
                v.shape(),
                v.dtype()
            );
        }
        let (m, v) = (m.flatten_all()?, v.flatten_all()?);
        match m.dtype() {
            DType::F32 => Ok(Self::F32 {
                m: m.to_vec1()?,
                v: v.to_vec1()?,
            }),
            DType::F64 => Ok(Self::F64 {
                m: m.to_vec1()?,
                v: v.to_vec1()?,
            }),
            other => bail!("host moments: f32 or f64 only, got {other:?}"),
        }
    }

    /// Copies of the moments as CPU tensors of `shape` (for checkpoints).
    ///
    /// # Errors
    /// A `shape` whose element count is not the moments' length.
    pub fn to_tensors(&self, shape: &Shape) -> Result<(Tensor, Tensor)> {
        let dev = &candle::Device::Cpu;
        match self {
            Self::F32 { m, v } => Ok((
                Tensor::from_slice(m, shape, dev)?,
                Tensor::from_slice(v, shape, dev)?,
            )),
            Self::F64 { m, v } => Ok((
                Tensor::from_slice(m, shape, dev)?,
                Tensor::from_slice(v, shape, dev)?,
            )),
        }
    }

    /// Elements per moment.
    pub fn len(&self) -> usize {
        match self {
            Self::F32 { m, .. } => m.len(),
            Self::F64 { m, .. } => m.len(),
        }
    }

    /// Whether the moments have no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the moments are of `dtype`.
    pub fn matches(&self, dtype: DType) -> bool {
        matches!(
            (self, dtype),
            (Self::F32 { .. }, DType::F32) | (Self::F64 { .. }, DType::F64)
        )
    }
}

/// The step's constants: the moments' `β1`, `β2` and the parameter pass of
/// [`crate::adam_update`].
#[derive(Debug, Clone, Copy)]
struct Constants {
    beta1: f64,
    beta2: f64,
    param: ParamPass,
}

/// The three passes' rules ([`first_moment`], [`second_moment`] or [`infinity_norm`], then
/// [`ParamRule`]) applied element by element in one pass.
#[inline(always)]
fn one_pass<T: Real>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], c: &Constants) {
    let (b1, nb1) = (T::from_f64(c.beta1), T::from_f64(1.0 - c.beta1));
    let (b2, nb2) = (T::from_f64(c.beta2), T::from_f64(1.0 - c.beta2));
    let rule = ParamRule::<T>::new(&c.param);
    let n = p.len().min(g.len()).min(m.len()).min(v.len());
    let (p, g, m, v) = (&mut p[..n], &g[..n], &mut m[..n], &mut v[..n]);
    let elements = p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut());
    if c.param.adamax {
        for (((p, &g), m), u) in elements {
            *m = first_moment(*m, g, b1, nb1);
            *u = infinity_norm(*u, g, b2);
            *p = rule.adamax(*p, *m, *u);
        }
    } else {
        for (((p, &g), m), v) in elements {
            *m = first_moment(*m, g, b1, nb1);
            *v = second_moment(*v, g, b2, nb2);
            *p = rule.adam(*p, *m, *v);
        }
    }
}

crate::avx2_dispatch! {
    fn one_pass_f32(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: &Constants) -> () {
        one_pass(p, g, m, v, c)
    }
}

/// Elements per parallel task; every element's update is independent, so the result does
/// not depend on the split.
const PAR_CHUNK: usize = 1 << 14;

/// `kernel` over `(p, g, m, v)` in matching chunks, split across rayon's threads from
/// [`crate::PAR_MIN_ELEMS`] elements on.
fn chunked<T: Send + Sync>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    kernel: impl Fn(&mut [T], &[T], &mut [T], &mut [T]) + Sync,
) {
    if p.len() >= crate::PAR_MIN_ELEMS {
        p.par_chunks_mut(PAR_CHUNK)
            .zip(m.par_chunks_mut(PAR_CHUNK))
            .zip(v.par_chunks_mut(PAR_CHUNK))
            .enumerate()
            .for_each(|(i, ((p, m), v))| {
                let o = i * PAR_CHUNK;
                kernel(p, &g[o..o + p.len()], m, v)
            });
    } else {
        kernel(p, g, m, v)
    }
}

/// The in-place op on the parameter's storage, the gradient its source, the moments
/// borrowed through a lock (candle's in-place ops take `&self`).
struct OnePass<'a> {
    c: Constants,
    moments: Mutex<&'a mut HostMoments>,
}

impl candle::InplaceOp2 for OnePass<'_> {
    fn name(&self) -> &'static str {
        "fused-optimizer-one-pass"
    }

    fn cpu_fwd(&self, p: &mut CpuStorage, pl: &Layout, g: &CpuStorage, gl: &Layout) -> Result<()> {
        let (Some((a, b)), Some((ga, gb))) = (pl.contiguous_offsets(), gl.contiguous_offsets())
        else {
            bail!("fused optimizer update: the parameter and its gradient must be contiguous");
        };
        let mut guard = match self.moments.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let n = guard.len();
        if b - a != n || gb - ga != n {
            bail!(
                "fused optimizer update: parameter of {} elements, gradient of {}, moments of {n}",
                b - a,
                gb - ga
            );
        }
        let c = self.c;
        match (p, &mut **guard) {
            (CpuStorage::F32(d), HostMoments::F32 { m, v }) => {
                let g = &g.as_slice::<f32>()?[ga..gb];
                chunked(&mut d[a..b], g, m, v, |p, g, m, v| {
                    one_pass_f32(p, g, m, v, &c)
                });
            }
            (CpuStorage::F64(d), HostMoments::F64 { m, v }) => {
                let g = &g.as_slice::<f64>()?[ga..gb];
                chunked(&mut d[a..b], g, m, v, |p, g, m, v| one_pass(p, g, m, v, &c));
            }
            _ => bail!("fused optimizer update: parameter, gradient and moments of one float type"),
        }
        Ok(())
    }
}

/// Whether [`adam_update_host`] applies to `param`: a contiguous f32 or f64 tensor on the CPU.
pub fn adam_update_host_applies(param: &Tensor) -> bool {
    param.device().is_cpu()
        && matches!(param.dtype(), DType::F32 | DType::F64)
        && param.is_contiguous()
}

/// One Adam / Adamax update of `param` (CPU, contiguous) with gradient `g` (same shape and
/// dtype) at step `t >= 1` with learning rate `lr`, in one pass that also updates `moments`:
/// the same values, bit for bit, as [`crate::adam_update`] with the moments as tensors.
///
/// # Errors
/// A parameter off the CPU or not contiguous, a gradient of another shape or dtype, moments
/// of another length or float type.
pub fn adam_update_host(
    c: &AdamStep,
    lr: f64,
    t: i32,
    param: &Tensor,
    g: &Tensor,
    moments: &mut HostMoments,
) -> Result<()> {
    if !adam_update_host_applies(param) {
        bail!(
            "fused optimizer update: a contiguous f32 or f64 CPU parameter, got {:?} on {:?}",
            param.dtype(),
            param.device().location()
        );
    }
    if g.shape() != param.shape() || g.dtype() != param.dtype() {
        bail!(
            "fused optimizer update: parameter {:?} {:?}, gradient {:?} {:?}",
            param.shape(),
            param.dtype(),
            g.shape(),
            g.dtype()
        );
    }
    let op = OnePass {
        c: Constants {
            beta1: c.beta1,
            beta2: c.beta2,
            param: ParamPass::new(c, lr, t),
        },
        moments: Mutex::new(moments),
    };
    param.inplace_op2(&g.contiguous()?, &op)
}

/// One parameter's part in [`adam_update_host_all`].
#[derive(Debug)]
pub struct HostUpdate<'a> {
    /// The parameter (CPU, contiguous, f32 or f64), updated in place.
    pub param: &'a Tensor,
    /// Its gradient: same shape and dtype.
    pub grad: &'a Tensor,
    /// Its moments, updated in place.
    pub moments: &'a mut HostMoments,
}

/// [`adam_update_host`] for several parameters at once, as tasks on the threads of the
/// rayon pool it runs on (a large parameter is split further): a step's parameters are
/// updated in one parallel region instead of one after another, each of which is too short
/// to share on its own. Each parameter's values are those of [`adam_update_host`].
///
/// The parameters must not share storage (each update holds its parameter's storage lock).
///
/// # Errors
/// One failing parameter's error (those of [`adam_update_host`]); the others may have been
/// updated.
pub fn adam_update_host_all(
    c: &AdamStep,
    lr: f64,
    t: i32,
    updates: &mut [HostUpdate<'_>],
) -> Result<()> {
    updates
        .par_iter_mut()
        .with_max_len(1)
        .map(|u| adam_update_host(c, lr, t, u.param, u.grad, u.moments))
        .collect::<Result<Vec<()>>>()
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;

    /// Adam (or Adamax) with `(β1, β2)`, `ε` and weight decay.
    fn adam(adamax: bool, (beta1, beta2): (f64, f64), eps: f64, weight_decay: f64) -> AdamStep {
        AdamStep {
            adamax,
            beta1,
            beta2,
            eps,
            weight_decay,
        }
    }

    /// Five steps of the one pass against the three passes of `adam_update`, Adam and
    /// Adamax with weight decay, f32 and f64, below and above the threading threshold:
    /// parameter and moments equal bit for bit.
    #[test]
    fn equals_the_three_passes_bit_for_bit() -> Result<()> {
        let dev = &Device::Cpu;
        for adamax in [false, true] {
            for n in [1003, 3 * crate::PAR_MIN_ELEMS + 17] {
                for dtype in [DType::F32, DType::F64] {
                    let step = adam(adamax, (0.9, 0.999), 1e-4, 0.01);
                    let init = Tensor::arange(0f64, n as f64, dev)?
                        .affine(3.6 / n as f64, -1.7)?
                        .to_dtype(dtype)?;
                    let (p1, p2) = (init.copy()?, init.copy()?);
                    let (m, v) = (init.zeros_like()?, init.zeros_like()?);
                    let mut host = HostMoments::zeros(&init)?;
                    for t in 1..=5 {
                        let g = p1.sin()?.affine(f64::from(t), 0.1)?;
                        crate::adam_update(&step, 0.01, t, &p1, &g, &m, &v)?;
                        adam_update_host(&step, 0.01, t, &p2, &g, &mut host)?;
                        let (hm, hv) = host.to_tensors(init.shape())?;
                        for (x, y) in [(&p1, &p2), (&m, &hm), (&v, &hv)] {
                            let (x, y) = (
                                x.to_dtype(DType::F64)?.to_vec1::<f64>()?,
                                y.to_dtype(DType::F64)?.to_vec1::<f64>()?,
                            );
                            assert!(
                                x.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()),
                                "adamax {adamax}, {n} elements, {dtype:?}, step {t}"
                            );
                        }
                    }
                    let moved = (&p2 - &init)?.abs()?.to_dtype(DType::F64)?.sum_all()?;
                    assert!(moved.to_scalar::<f64>()? > 1e-3);
                }
            }
        }
        Ok(())
    }

    /// Several parameters at once equal one at a time, bit for bit.
    #[test]
    fn all_at_once_equals_one_by_one() -> Result<()> {
        let dev = &Device::Cpu;
        let step = adam(false, (0.9, 0.999), 1e-8, 0.0);
        let sizes = [5, crate::PAR_MIN_ELEMS + 3, 200, 2 * crate::PAR_MIN_ELEMS];
        let init: Vec<Tensor> = sizes
            .iter()
            .map(|&n| Tensor::arange(0f32, n as f32, dev)?.affine(1e-5, -0.3))
            .collect::<Result<_>>()?;
        let one: Vec<Tensor> = init.iter().map(|t| t.copy()).collect::<Result<_>>()?;
        let all: Vec<Tensor> = init.iter().map(|t| t.copy()).collect::<Result<_>>()?;
        let mut m1: Vec<HostMoments> =
            init.iter().map(HostMoments::zeros).collect::<Result<_>>()?;
        let mut m2 = m1.clone();
        for t in 1..=3 {
            let grads: Vec<Tensor> = one
                .iter()
                .map(|p| p.cos()?.affine(f64::from(t), 0.0))
                .collect::<Result<_>>()?;
            for ((p, g), m) in one.iter().zip(&grads).zip(&mut m1) {
                adam_update_host(&step, 1e-2, t, p, g, m)?;
            }
            let mut updates: Vec<HostUpdate> = all
                .iter()
                .zip(&grads)
                .zip(&mut m2)
                .map(|((param, grad), moments)| HostUpdate {
                    param,
                    grad,
                    moments,
                })
                .collect();
            adam_update_host_all(&step, 1e-2, t, &mut updates)?;
        }
        for (a, b) in one.iter().zip(&all) {
            assert_eq!(a.to_vec1::<f32>()?, b.to_vec1::<f32>()?);
        }
        assert_eq!(m1, m2);
        Ok(())
    }

    /// A gradient that stops: the moments decay to zero without ever holding a subnormal
    /// number (f32 and f64, Adam and Adamax, both kernels), and the parameter stops moving.
    #[test]
    fn decaying_moments_skip_the_subnormal_range() -> Result<()> {
        let dev = &Device::Cpu;
        for adamax in [false, true] {
            for dtype in [DType::F32, DType::F64] {
                let step = adam(adamax, (0.5, 0.5), 1e-8, 0.0);
                let p = Tensor::ones(3, dtype, dev)?;
                let p3 = p.copy()?;
                let (m3, v3) = (p.zeros_like()?, p.zeros_like()?);
                let mut host = HostMoments::zeros(&p)?;
                let tiny = if dtype == DType::F32 {
                    f64::from(f32::MIN_POSITIVE)
                } else {
                    f64::MIN_POSITIVE
                };
                // 0.5^k passes f64's smallest normal number after about 1022 steps.
                let mut settled = None;
                for t in 1..=1100 {
                    if t == 1050 {
                        settled = Some(p.to_dtype(DType::F64)?.to_vec1::<f64>()?);
                    }
                    let g = if t == 1 {
                        p.ones_like()?
                    } else {
                        p.zeros_like()?
                    };
                    adam_update_host(&step, 1e-3, t, &p, &g, &mut host)?;
                    crate::adam_update(&step, 1e-3, t, &p3, &g, &m3, &v3)?;
                    let (m, v) = host.to_tensors(p.shape())?;
                    for x in [m, v, m3.clone(), v3.clone()] {
                        for x in x.to_dtype(DType::F64)?.to_vec1::<f64>()? {
                            assert!(x == 0.0 || x.abs() >= tiny, "{dtype:?} step {t}: {x:e}");
                        }
                    }
                }
                // With both moments zero the parameter no longer moves.
                assert_eq!(Some(p.to_dtype(DType::F64)?.to_vec1::<f64>()?), settled);
                let (m, v) = host.to_tensors(p.shape())?;
                assert_eq!(m.to_dtype(DType::F64)?.to_vec1::<f64>()?, vec![0.0; 3]);
                assert_eq!(v.to_dtype(DType::F64)?.to_vec1::<f64>()?, vec![0.0; 3]);
                assert_eq!(
                    p.to_dtype(DType::F64)?.to_vec1::<f64>()?,
                    p3.to_dtype(DType::F64)?.to_vec1::<f64>()?
                );
            }
        }
        Ok(())
    }

    #[test]
    fn converts_to_and_from_tensors() -> Result<()> {
        let dev = &Device::Cpu;
        let m = Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], dev)?;
        let v = Tensor::new(&[[5f32, 6.0], [7.0, 8.0]], dev)?;
        let host = HostMoments::from_tensors(&m, &v)?;
        assert_eq!(
            host,
            HostMoments::F32 {
                m: vec![1.0, 2.0, 3.0, 4.0],
                v: vec![5.0, 6.0, 7.0, 8.0]
            }
        );
        let (m2, v2) = host.to_tensors(m.shape())?;
        assert_eq!(m2.to_vec2::<f32>()?, m.to_vec2::<f32>()?);
        assert_eq!(v2.to_vec2::<f32>()?, v.to_vec2::<f32>()?);
        assert!(HostMoments::from_tensors(&m, &v.to_dtype(DType::F64)?).is_err());
        Ok(())
    }

    #[test]
    fn refuses_mismatches() -> Result<()> {
        let dev = &Device::Cpu;
        let step = adam(false, (0.9, 0.999), 1e-8, 0.0);
        let p = Tensor::zeros(4, DType::F32, dev)?;
        let mut short = HostMoments::zeros(&Tensor::zeros(3, DType::F32, dev)?)?;
        let g = Tensor::ones(4, DType::F32, dev)?;
        let e = adam_update_host(&step, 0.1, 1, &p, &g, &mut short).unwrap_err();
        assert!(e.to_string().contains("moments of 3"), "{e}");
        let mut wide = HostMoments::zeros(&Tensor::zeros(4, DType::F64, dev)?)?;
        assert!(adam_update_host(&step, 0.1, 1, &p, &g, &mut wide).is_err());
        let g64 = g.to_dtype(DType::F64)?;
        let mut ok = HostMoments::zeros(&p)?;
        assert!(adam_update_host(&step, 0.1, 1, &p, &g64, &mut ok).is_err());
        let strided = Tensor::zeros((2, 2), DType::F32, dev)?.t()?;
        assert!(!adam_update_host_applies(&strided));
        Ok(())
    }
}
