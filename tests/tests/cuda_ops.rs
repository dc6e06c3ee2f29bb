//! Every CUDA kernel of `vaekit-kernels` against the CPU op it mirrors: values and
//! gradients, f32 and f64, through the public functions the models call. Needs a GPU:
//! `cargo test -p vaekit-tests --features cuda --test cuda_ops` (docs/gpu.md). Without the
//! `cuda` feature this file compiles to nothing.
#![cfg(feature = "cuda")]

use candle::{DType, Device, Result, Shape, Tensor, Var};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_train::{Optimizer, OptimizerConfig, OptimizerKind, global_norm};

fn gpu() -> Device {
    vaekit_core::parse_device("cuda:0").expect("these tests need a CUDA GPU (device 0)")
}

/// A seeded normal tensor of `shape`, scaled, on the CPU.
fn normal(seed: u64, shape: &[usize], scale: f64, dtype: DType) -> Result<Tensor> {
    SeededNoise::new(seed)
        .standard_normal(&Shape::from(shape), DType::F64, &Device::Cpu)?
        .affine(scale, 0.0)?
        .to_dtype(dtype)
}

fn tol(dtype: DType) -> f64 {
    if dtype == DType::F32 { 2e-5 } else { 1e-11 }
}

/// Asserts that `a` (the CPU's) and `b` (the GPU's) are finite and within `rel` of the
/// largest magnitude of `a` (at least 1) everywhere. NaN anywhere fails, unlike a max-reduction.
fn assert_close(what: &str, a: &Tensor, b: &Tensor, rel: f64) -> Result<()> {
    let a = a.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let b = b.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    assert_eq!(a.len(), b.len(), "{what}: sizes differ");
    let scale = a.iter().fold(1f64, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(x.is_finite() && y.is_finite(), "{what}[{i}]: {x} vs {y}");
        assert!((x - y).abs() <= rel * scale, "{what}[{i}]: {x} vs {y}");
    }
    Ok(())
}

/// The rows `1..` of `t`: the same data at a non-zero storage offset, as the kernels see
/// narrowed tensors in real use.
fn offset_view(t: &Tensor) -> Result<Tensor> {
    let pad = Tensor::cat(&[&t.narrow(0, 0, 1)?, t], 0)?;
    pad.narrow(0, 1, t.dim(0)?)
}

/// `f` on the CPU and on the GPU, values and the gradients of `Σ w ⊙ f(x)` for each input,
/// compared elementwise. The inputs reach `f` at a non-zero storage offset.
fn check(
    name: &str,
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    rel: f64,
) -> Result<()> {
    let run = |dev: &Device| -> Result<(Tensor, Vec<Tensor>)> {
        let vars = inputs
            .iter()
            .map(|t| Var::from_tensor(&t.to_device(dev)?))
            .collect::<Result<Vec<_>>>()?;
        let ts = vars
            .iter()
            .map(|v| offset_view(v.as_tensor()))
            .collect::<Result<Vec<_>>>()?;
        let y = f(&ts)?;
        let w = normal(99, y.dims(), 1.0, y.dtype())?.to_device(dev)?;
        let grads = (&y * &w)?.sum_all()?.backward()?;
        let g = vars
            .iter()
            .map(|v| match grads.get(v.as_tensor()) {
                Some(g) => g.to_device(&Device::Cpu),
                None => candle::bail!("{name}: no gradient"),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((y.to_device(&Device::Cpu)?, g))
    };
    let (yc, gc) = run(&Device::Cpu)?;
    let (yg, gg) = run(&gpu())?;
    assert_close(&format!("{name} values"), &yc, &yg, rel)?;
    for (i, (a, b)) in gc.iter().zip(&gg).enumerate() {
        assert_close(&format!("{name} gradient {i}"), a, b, rel)?;
    }
    Ok(())
}

#[test]
fn activations_match_the_cpu_op() -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        let x = normal(1, &[3, 1000], 3.0, dtype)?;
        check(
            "tanh",
            std::slice::from_ref(&x),
            |t| vaekit_core::tanh(&t[0]),
            tol(dtype),
        )?;
        check("elu", &[x], |t| vaekit_core::elu(&t[0]), tol(dtype))?;
    }
    Ok(())
}

#[test]
fn bernoulli_log_prob_matches_the_cpu_op() -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        // Logits up to ±60 (saturated sigmoid) and values 0, 1 and fractional.
        let l = normal(2, &[4, 777], 20.0, dtype)?;
        let u = normal(3, &[4, 777], 1.0, DType::F64)?;
        let x = u.ge(0.5)?.where_cond(
            &Tensor::ones_like(&u)?,
            &u.lt(-0.5)?
                .where_cond(&u.zeros_like()?, &u.abs()?.clamp(0.0, 1.0)?)?,
        )?;
        let x = x.to_dtype(dtype)?;
        check(
            "bernoulli_log_prob",
            &[l, x],
            |t| vaekit_core::bernoulli_log_prob(&t[0], &t[1]),
            tol(dtype),
        )?;
    }
    Ok(())
}

#[test]
fn bernoulli_log_prob_sum_matches_the_cpu_op() -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        // P = 784 spans several threads per row; S = 7 rows per data point.
        let l = normal(4, &[5, 7, 784], 4.0, dtype)?;
        let x = normal(5, &[5, 784], 1.0, DType::F64)?
            .ge(0.0)?
            .to_dtype(dtype)?;
        check(
            "bernoulli_log_prob_sum",
            &[l, x],
            |t| vaekit_core::bernoulli_log_prob_sum(&t[0], &t[1]),
            tol(dtype),
        )?;
    }
    Ok(())
}

#[test]
fn global_norm_matches_the_cpu_op() -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        // One tensor longer than 1024 blocks of 256, to exercise the grid-stride partials.
        let grads = [
            normal(6, &[300_000], 1.0, dtype)?,
            normal(7, &[3, 5], 2.0, dtype)?,
        ];
        let cpu = global_norm(&grads)?;
        let on_gpu = grads
            .iter()
            .map(|g| offset_view(&g.to_device(&gpu())?))
            .collect::<Result<Vec<_>>>()?;
        let gpu_norm = global_norm(&on_gpu)?;
        assert!(
            (cpu - gpu_norm).abs() <= 1e-12 * cpu,
            "{dtype:?}: {cpu} vs {gpu_norm}"
        );
    }
    Ok(())
}

#[test]
fn fused_optimizer_matches_the_cpu_op() -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        for kind in [OptimizerKind::Adam, OptimizerKind::Adamax] {
            let config = OptimizerConfig {
                kind,
                weight_decay: 0.01,
                ..Default::default()
            };
            let init = normal(8, &[257, 33], 1.0, dtype)?;
            let run = |dev: &Device| -> Result<Tensor> {
                let var = Var::from_tensor(&init.to_device(dev)?)?;
                let params = vec![("w".to_string(), var.clone())];
                let mut opt = Optimizer::new(config);
                for step in 0..5u64 {
                    // A gradient at a storage offset, as a narrowed tensor would be.
                    let g =
                        offset_view(&normal(10 + step, &[257, 33], 0.5, dtype)?.to_device(dev)?)?;
                    opt.step(&params, &[g], 1e-2)?;
                }
                var.as_tensor().to_device(&Device::Cpu)
            };
            let what = format!("{kind:?} {dtype:?} parameters");
            assert_close(&what, &run(&Device::Cpu)?, &run(&gpu())?, tol(dtype))?;
        }
    }
    Ok(())
}

#[test]
fn seeded_noise_is_the_same_on_cuda() -> Result<()> {
    let shape = Shape::from((3, 1001));
    for dtype in [DType::F32, DType::F64] {
        let c = SeededNoise::new(42).standard_normal(&shape, dtype, &Device::Cpu)?;
        let g = SeededNoise::new(42).standard_normal(&shape, dtype, &gpu())?;
        assert!(g.device().is_cuda());
        let (c, g) = (
            c.to_dtype(DType::F64)?,
            g.to_device(&Device::Cpu)?.to_dtype(DType::F64)?,
        );
        assert_eq!(
            c.flatten_all()?.to_vec1::<f64>()?,
            g.flatten_all()?.to_vec1::<f64>()?
        );
    }
    Ok(())
}
