use super::*;
use crate::testing::assert_all_close;
use candle::{Device, Var};
use vaekit_core::{NoiseSource, SeededNoise};

/// Inputs of `[B·S, K]`, `[P, K]`, `[P]` and binary values `[B, P]` (a few fractional).
struct Case {
    h: Tensor,
    w: Tensor,
    b: Tensor,
    x: Tensor,
    /// Upstream gradient `[B, S]`.
    g: Tensor,
}

fn case(seed: u64, (b, s, k, p): (usize, usize, usize, usize)) -> Result<Case> {
    let mut noise = SeededNoise::new(seed);
    let dev = Device::Cpu;
    let f32n = |noise: &mut SeededNoise, shape: Shape, scale: f64| -> Result<Tensor> {
        noise
            .standard_normal(&shape, DType::F32, &dev)?
            .affine(scale, 0.0)
    };
    let h = f32n(&mut noise, (b * s, k).into(), 1.0)?;
    let w = f32n(&mut noise, (p, k).into(), 2.0 / (k as f64).sqrt())?;
    let bias = f32n(&mut noise, p.into(), 1.0)?;
    let g = f32n(&mut noise, (b, s).into(), 1.0)?;
    let u = noise.uniform(&(b, p).into(), DType::F32, &dev)?;
    // Binary pixels, with every seventh pixel fractional.
    let frac: Vec<f32> = (0..b * p)
        .map(|i| if i % 7 == 3 { 0.25 } else { -1.0 })
        .collect();
    let frac = Tensor::from_vec(frac, (b, p), &dev)?;
    let binary = u.ge(0.5)?.to_dtype(DType::F32)?;
    let x = frac.ge(0.0)?.where_cond(&frac, &binary)?;
    Ok(Case {
        h,
        w,
        b: bias,
        x,
        g,
    })
}

/// The composition the op replaces, in `dtype`.
fn composed(h: &Tensor, w: &Tensor, b: &Tensor, x: &Tensor) -> Result<Tensor> {
    crate::bernoulli_log_prob_sum(&linear_t(h, w, b)?, x)
}

/// `(value, [dh, dw, db])` of `Σ g · f(h, w, b)` with the operands `tracked`, untracked
/// gradients `None`.
#[allow(clippy::type_complexity)]
fn run(
    c: &Case,
    dtype: DType,
    tracked: [bool; 3],
    f: impl Fn(&Tensor, &Tensor, &Tensor, &Tensor) -> Result<Tensor>,
) -> Result<(Tensor, Vec<Option<Tensor>>)> {
    let ts: Vec<Tensor> = [&c.h, &c.w, &c.b]
        .iter()
        .zip(tracked)
        .map(|(t, on)| -> Result<Tensor> {
            let t = t.to_dtype(dtype)?;
            Ok(if on {
                Var::from_tensor(&t)?.as_tensor().clone()
            } else {
                t
            })
        })
        .collect::<Result<_>>()?;
    let y = f(&ts[0], &ts[1], &ts[2], &c.x.to_dtype(dtype)?)?;
    let grads = (&y * c.g.to_dtype(dtype)?)?.sum_all()?.backward()?;
    let d = ts.iter().map(|t| grads.get(t).cloned()).collect();
    Ok((y, d))
}

/// Values and all three gradients equal the f32 composition's bit for bit (the same GEMMs,
/// row sums and bias-gradient blocks), and match the f64 composition within f32 rounding,
/// for every combination of tracked operands; untracked operands get none. Sizes on both
/// sides of the parallel thresholds.
#[test]
fn matches_the_composition() -> Result<()> {
    for dims in [(2, 3, 5, 11), (10, 50, 20, 784)] {
        let c = case(3, dims)?;
        for tracked in [
            [true, true, true],
            [true, false, false],
            [false, true, true],
            [false, false, true],
        ] {
            let (ours, d) = run(&c, DType::F32, tracked, linear_bernoulli_sum)?;
            let (want, dw) = run(&c, DType::F32, tracked, composed)?;
            let (want64, d64) = run(&c, DType::F64, tracked, composed)?;
            assert_eq!(
                ours.flatten_all()?.to_vec1::<f32>()?,
                want.flatten_all()?.to_vec1::<f32>()?,
                "values differ from the composition's"
            );
            assert_all_close(&ours.to_dtype(DType::F64)?, &want64, 1e-5, 1e-4)?;
            for ((a, b), (c64, on)) in d.iter().zip(&dw).zip(d64.iter().zip(tracked)) {
                match (a, b, c64) {
                    (Some(a), Some(b), Some(c64)) if on => {
                        assert_eq!(
                            a.flatten_all()?.to_vec1::<f32>()?,
                            b.flatten_all()?.to_vec1::<f32>()?
                        );
                        assert_all_close(&a.to_dtype(DType::F64)?, c64, 1e-4, 1e-4)?;
                    }
                    (None, None, None) if !on => {}
                    _ => panic!("gradients present {tracked:?} for tracked {tracked:?}"),
                }
            }
        }
    }
    Ok(())
}

/// The fused gradients against central differences of the f64 composition, an independent
/// reference (candle's autograd plays no part in it).
#[test]
fn gradients_match_finite_differences() -> Result<()> {
    let c = case(5, (2, 2, 3, 4))?;
    let (_, d) = run(&c, DType::F32, [true; 3], linear_bernoulli_sum)?;
    let x64 = c.x.to_dtype(DType::F64)?;
    let g64 = c.g.to_dtype(DType::F64)?;
    let (h, w, b) = (
        c.h.to_dtype(DType::F64)?,
        c.w.to_dtype(DType::F64)?,
        c.b.to_dtype(DType::F64)?,
    );
    let objective = |h: &Tensor, w: &Tensor, b: &Tensor| -> Result<Tensor> {
        (composed(h, w, b, &x64)? * &g64)?.sum_all()
    };
    let fd = [
        crate::testing::finite_difference_gradient(|t| objective(t, &w, &b), &h, 1e-5)?,
        crate::testing::finite_difference_gradient(|t| objective(&h, t, &b), &w, 1e-5)?,
        crate::testing::finite_difference_gradient(|t| objective(&h, &w, t), &b, 1e-5)?,
    ];
    for (ours, want) in d.iter().zip(&fd) {
        let ours = ours.as_ref().expect("tracked").to_dtype(DType::F64)?;
        assert_all_close(&ours, want, 1e-4, 1e-5)?;
    }
    Ok(())
}

/// A second backward over the same graph (its saved buffer already taken) runs the forward
/// again and gives the same gradients.
#[test]
fn a_second_backward_gives_the_same_gradients() -> Result<()> {
    let c = case(7, (3, 4, 6, 9))?;
    let var = |t: &Tensor| -> Result<Tensor> { Ok(Var::from_tensor(t)?.as_tensor().clone()) };
    let (h, w, b) = (var(&c.h)?, var(&c.w)?, var(&c.b)?);
    let loss = (linear_bernoulli_sum(&h, &w, &b, &c.x)? * &c.g)?.sum_all()?;
    let first = loss.backward()?;
    let second = loss.backward()?;
    for t in [&h, &w, &b] {
        let (a, z) = (first.get(t).expect("first"), second.get(t).expect("second"));
        assert_eq!(
            a.flatten_all()?.to_vec1::<f32>()?,
            z.flatten_all()?.to_vec1::<f32>()?
        );
    }
    Ok(())
}

/// Values and gradients are bit-identical on one rayon thread and on three.
#[test]
fn results_do_not_depend_on_the_thread_count() -> Result<()> {
    let c = case(11, (10, 50, 20, 784))?;
    let on = |threads: usize| -> Result<Vec<Vec<f32>>> {
        let pool = crate::testing::thread_pool(threads)?;
        pool.install(|| {
            let (y, d) = run(&c, DType::F32, [true; 3], linear_bernoulli_sum)?;
            let mut all = vec![y.flatten_all()?.to_vec1::<f32>()?];
            for t in d.into_iter().flatten() {
                all.push(t.flatten_all()?.to_vec1::<f32>()?);
            }
            Ok(all)
        })
    };
    assert_eq!(on(1)?, on(3)?);
    Ok(())
}

/// Mismatched values are an error naming the op, not a panic.
#[test]
fn mismatched_values_are_an_error() -> Result<()> {
    let c = case(13, (2, 3, 5, 11))?;
    let h = Var::from_tensor(&c.h)?;
    let bad = Tensor::zeros((4, 11), DType::F32, &Device::Cpu)?;
    let err = linear_bernoulli_sum(h.as_tensor(), &c.w, &c.b, &bad)
        .expect_err("6 rows against a batch of 4");
    assert!(err.to_string().contains("linear-bernoulli"), "{err}");
    Ok(())
}
