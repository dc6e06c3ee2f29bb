//! The Bernoulli log-likelihood of logits, fused: `x l - softplus(l)` in one pass.

use super::elementwise::collect_indexed;
use super::softplus::{sigmoid_f64, softplus_f64};
use candle::backend::BackendStorage;
use candle::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

/// `log p(x | l) = -x softplus(-l) - (1 - x) softplus(l)` in f64: for binary `x` one softplus
/// per element (the branch that does not cancel), for fractional `x` both.
fn log_prob_f64(l: f64, x: f64) -> f64 {
    if x == 1.0 {
        -softplus_f64(-l)
    } else if x == 0.0 {
        -softplus_f64(l)
    } else {
        -x * softplus_f64(-l) - (1.0 - x) * softplus_f64(l)
    }
}

/// `∂/∂l = x - sigmoid(l)`.
fn score_f64(l: f64, x: f64) -> f64 {
    x - sigmoid_f64(l)
}

struct Binary {
    name: &'static str,
    f: fn(f64, f64) -> f64,
}

impl Binary {
    fn run<T: Copy + Send + Sync>(
        &self,
        l: &[T],
        x: &[T],
        to: impl Fn(T) -> f64 + Send + Sync,
        from: impl Fn(f64) -> T + Send + Sync,
    ) -> Vec<T> {
        let f = self.f;
        collect_indexed(l.len().min(x.len()), |i| from(f(to(l[i]), to(x[i]))))
    }

    fn cpu(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<CpuStorage> {
        let (Some((a0, a1)), Some((b0, b1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle::bail!("{}: inputs must be contiguous", self.name)
        };
        if l1.shape() != l2.shape() {
            candle::bail!(
                "{}: shapes differ: {:?} vs {:?}",
                self.name,
                l1.shape(),
                l2.shape()
            );
        }
        Ok(match (s1, s2) {
            (CpuStorage::F32(l), CpuStorage::F32(x)) => {
                CpuStorage::F32(self.run(&l[a0..a1], &x[b0..b1], f64::from, |v| v as f32))
            }
            (CpuStorage::F64(l), CpuStorage::F64(x)) => {
                CpuStorage::F64(self.run(&l[a0..a1], &x[b0..b1], |v| v, |v| v))
            }
            (a, b) => candle::bail!(
                "{}: f32 or f64 of one dtype expected, got {:?} and {:?}",
                self.name,
                a.dtype(),
                b.dtype()
            ),
        })
    }
}

/// The forward value (`log p`) and its logit derivative (`x - σ(l)`) as one op type.
#[derive(Clone, Copy)]
enum Op {
    LogProb,
    Score,
}

impl CustomOp2 for Op {
    fn name(&self) -> &'static str {
        self.kernel().name
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        Ok((self.kernel().cpu(s1, l1, s2, l2)?, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle::CudaStorage,
        l1: &Layout,
        s2: &candle::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle::CudaStorage, Shape)> {
        let op = match self {
            Self::LogProb => vaekit_kernels::Binary::BernoulliLogProb,
            Self::Score => vaekit_kernels::Binary::BernoulliScore,
        };
        if l1.shape() != l2.shape() {
            candle::bail!(
                "{}: shapes differ: {:?} vs {:?}",
                self.name(),
                l1.shape(),
                l2.shape()
            );
        }
        Ok((
            vaekit_kernels::binary(op, s1, l1, s2, l2)?,
            l1.shape().clone(),
        ))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        value: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        if let Self::Score = self {
            candle::bail!("bernoulli-score: no second derivative");
        }
        let score = logits.apply_op2_no_bwd(value, &Self::Score)?;
        // ∂/∂x (x l - softplus(l)) = l.
        Ok((Some(grad.mul(&score)?), Some(grad.mul(logits)?)))
    }
}

impl Op {
    fn kernel(self) -> Binary {
        match self {
            Self::LogProb => Binary {
                name: "bernoulli-log-prob",
                f: log_prob_f64,
            },
            Self::Score => Binary {
                name: "bernoulli-score",
                f: score_f64,
            },
        }
    }
}

/// `log Bernoulli(x; logits) = x l - softplus(l)`, element-wise, evaluated without
/// cancellation as `-x softplus(-l) - (1 - x) softplus(l)` (`log p(1) = -e^{-50}` at `l = 50`,
/// not 0). On CPU one fused f64 pass (a single softplus per element for binary `x`) with a
/// fused backward (`x - sigmoid(l)` for the logits, `l` for `x`); on CUDA (feature `cuda`)
/// the same pair as kernels, in f64 per element; elsewhere the same formula from candle
/// primitives.
///
/// # Shapes
/// `logits` and `value` broadcast to a common shape, which the result has.
///
/// # Errors
/// Shapes that do not broadcast; non-float or mismatched dtypes.
pub fn bernoulli_log_prob(logits: &Tensor, value: &Tensor) -> Result<Tensor> {
    let shape = logits
        .shape()
        .broadcast_shape_binary_op(value.shape(), "bernoulli_log_prob")?;
    let value = value.to_dtype(logits.dtype())?;
    let (l, x) = if logits.shape() == &shape && value.shape() == &shape {
        (logits.clone(), value)
    } else {
        (logits.broadcast_as(&shape)?, value.broadcast_as(&shape)?)
    };
    let fast = crate::has_kernel(&l, &[DType::F32, DType::F64]);
    if fast {
        l.contiguous()?.apply_op2(&x.contiguous()?, Op::LogProb)
    } else {
        composite(&l, &x)
    }
}

/// The same formula from candle primitives and `softplus` (devices without the kernel; the
/// reference the kernel is tested against).
fn composite(l: &Tensor, x: &Tensor) -> Result<Tensor> {
    let one = x.mul(&super::softplus(&l.neg()?)?)?;
    let zero = x.affine(-1.0, 1.0)?.mul(&super::softplus(l)?)?;
    (one + zero)?.neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::elementwise::PARALLEL_MIN;
    use crate::testing::assert_all_close;
    use candle::{Device, Var};

    /// The unfused composition, for reference.
    use super::composite as reference;

    #[test]
    fn values_and_gradients_match_the_composition() {
        let dev = Device::Cpu;
        let logits = [-800.0, -50.0, -3.0, -1e-3, 0.0, 0.7, 20.0, 50.0, 800.0];
        let mut ls = Vec::new();
        let mut xs = Vec::new();
        for &l in &logits {
            for x in [0.0, 1.0, 0.25] {
                ls.push(l);
                xs.push(x);
            }
        }
        let n = ls.len();
        for dtype in [DType::F64, DType::F32] {
            let lv = Var::from_tensor(
                &Tensor::from_vec(ls.clone(), n, &dev)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap(),
            )
            .unwrap();
            let xv = Var::from_tensor(
                &Tensor::from_vec(xs.clone(), n, &dev)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap(),
            )
            .unwrap();
            let fused = bernoulli_log_prob(lv.as_tensor(), xv.as_tensor()).unwrap();
            let unfused = reference(lv.as_tensor(), xv.as_tensor()).unwrap();
            let tol = if dtype == DType::F64 { 1e-14 } else { 1e-6 };
            assert_all_close(&fused, &unfused, tol, tol).unwrap();
            let gf = fused.sum_all().unwrap().backward().unwrap();
            let gu = unfused.sum_all().unwrap().backward().unwrap();
            for v in [&lv, &xv] {
                assert_all_close(
                    gf.get(v.as_tensor()).unwrap(),
                    gu.get(v.as_tensor()).unwrap(),
                    tol,
                    tol,
                )
                .unwrap();
            }
        }
        // No cancellation at large logits: log p(1 | 50) = -e^-50.
        let v = bernoulli_log_prob(
            &Tensor::new(&[50.0f64], &dev).unwrap(),
            &Tensor::new(&[1.0f64], &dev).unwrap(),
        )
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()[0];
        assert!((v / -(-50.0f64).exp() - 1.0).abs() < 1e-14, "{v}");
    }

    #[test]
    fn long_inputs_split_across_threads_give_the_scalar_values() {
        let n = 3 * PARALLEL_MIN + 7;
        let ls: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() * 30.0).collect();
        let xs: Vec<f64> = (0..n).map(|i| [0.0, 1.0, 0.3][i % 3]).collect();
        let dev = Device::Cpu;
        let l = Tensor::from_vec(ls.clone(), n, &dev).unwrap();
        let x = Tensor::from_vec(xs.clone(), n, &dev).unwrap();
        let got = bernoulli_log_prob(&l, &x)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        for i in 0..n {
            assert_eq!(got[i], log_prob_f64(ls[i], xs[i]), "element {i}");
        }
        let sp = crate::softplus(&l).unwrap().to_vec1::<f64>().unwrap();
        for i in 0..n {
            assert_eq!(sp[i], softplus_f64(ls[i]), "element {i}");
        }
    }

    #[test]
    fn broadcasting_matches_explicit_expansion() {
        let dev = Device::Cpu;
        let l = Tensor::new(&[[0.3f64, -2.0, 5.0]], &dev).unwrap(); // [1, 3]
        let x = Tensor::new(&[[1.0f64, 0.0, 1.0], [0.0, 1.0, 0.5]], &dev).unwrap(); // [2, 3]
        let a = bernoulli_log_prob(&l, &x).unwrap();
        let b = reference(&l.broadcast_as((2, 3)).unwrap(), &x).unwrap();
        assert_all_close(&a, &b, 1e-14, 1e-14).unwrap();
        assert!(bernoulli_log_prob(&l, &Tensor::zeros(4, DType::F64, &dev).unwrap()).is_err());
    }
}
