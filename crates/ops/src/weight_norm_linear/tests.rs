use super::*;
use crate::testing::assert_all_close;
use candle::{DType, Device, Var};
use vaekit_core::{NoiseSource, SeededNoise};

/// The layer from candle's own ops: `v = w ⊙ m`, `|v|` per row with the floor, the product
/// and the per-channel scale, all differentiated by candle.
fn reference(x: &Tensor, w: &Tensor, m: Option<&Tensor>, g: &Tensor) -> Result<Tensor> {
    let v = match m {
        Some(m) => (w * m)?,
        None => w.clone(),
    };
    let norms = (v.sqr()?.sum(1)? + 1e-12)?.sqrt()?;
    x.matmul(&v.t()?)?
        .broadcast_mul(&(g / norms)?.unsqueeze(0)?)
}

/// A 0/1 mask with a MADE-like pattern and one all-masked row (norm = the floor's root).
fn mask(o: usize, k: usize, dtype: DType) -> Result<Tensor> {
    let m: Vec<f64> = (0..o * k)
        .map(|e| {
            let (i, j) = (e / k, e % k);
            if i == 1 || (i * 3) % 7 < j % 5 {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    Tensor::from_vec(m, (o, k), &Device::Cpu)?.to_dtype(dtype)
}

/// Values and the three gradients against the reference, f32 and f64, with and without a
/// mask, below and above the kernels' threading thresholds, for every subset of tracked
/// operands that has one.
#[test]
fn matches_candles_own_ops() -> Result<()> {
    let mut noise = SeededNoise::new(5);
    let dev = &Device::Cpu;
    for (n, k, o) in [(5, 7, 3), (100, 300, 200)] {
        for dtype in [DType::F64, DType::F32] {
            let tol = if dtype == DType::F32 { 2e-4 } else { 1e-10 };
            let x = noise.standard_normal(&(n, k).into(), dtype, dev)?;
            let w = (noise.standard_normal(&(o, k).into(), dtype, dev)? * 0.2)?;
            let g = (noise.standard_normal(&(o,).into(), dtype, dev)?.abs()? + 0.5)?;
            let r = noise.standard_normal(&(n, o).into(), dtype, dev)?;
            for m in [None, Some(mask(o, k, dtype)?)] {
                for tracked in [
                    [true, true, true],
                    [false, true, false],
                    [true, false, true],
                    [true, false, false],
                    [false, false, true],
                ] {
                    let vars = [&x, &w, &g].map(Var::from_tensor);
                    let [xv, wv, gv] = vars;
                    let (xv, wv, gv) = (xv?, wv?, gv?);
                    let pick = |v: &Var, t: &Tensor, on: bool| {
                        if on { v.as_tensor().clone() } else { t.clone() }
                    };
                    let (xa, wa, ga) = (
                        pick(&xv, &x, tracked[0]),
                        pick(&wv, &w, tracked[1]),
                        pick(&gv, &g, tracked[2]),
                    );
                    let fused = weight_norm_linear(&xa, &wa, m.as_ref(), &ga)?;
                    let want = reference(&xa, &wa, m.as_ref(), &ga)?;
                    assert_all_close(&fused, &want, tol, tol)?;
                    let gf = (&fused * &r)?.sum_all()?.backward()?;
                    let gw = (&want * &r)?.sum_all()?.backward()?;
                    for (on, v, what) in [
                        (tracked[0], &xv, "dx"),
                        (tracked[1], &wv, "dw"),
                        (tracked[2], &gv, "dg"),
                    ] {
                        match (gf.get(v.as_tensor()), gw.get(v.as_tensor())) {
                            (Some(a), Some(b)) => assert_all_close(a, b, tol, tol)?,
                            (None, None) => assert!(!on, "{what}: no gradient"),
                            _ => panic!("{what}: a gradient on one side only"),
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// A layer applied twice in one graph (`f(f(x))`, shared weights: each call its own op and
/// saved state) against the reference, values and gradients.
#[test]
fn a_layer_applied_twice_matches_the_reference() -> Result<()> {
    let mut noise = SeededNoise::new(8);
    let dev = &Device::Cpu;
    let x = Var::from_tensor(&noise.standard_normal(&(5, 6).into(), DType::F64, dev)?)?;
    let w = Var::from_tensor(&(noise.standard_normal(&(6, 6).into(), DType::F64, dev)? * 0.3)?)?;
    let g = Var::from_tensor(
        &(noise
            .standard_normal(&(6,).into(), DType::F64, dev)?
            .abs()?
            + 0.5)?,
    )?;
    let m = mask(6, 6, DType::F64)?;
    let (xa, wa, ga) = (x.as_tensor(), w.as_tensor(), g.as_tensor());
    let fused = weight_norm_linear(
        &weight_norm_linear(xa, wa, Some(&m), ga)?.tanh()?,
        wa,
        Some(&m),
        ga,
    )?;
    let want = reference(&reference(xa, wa, Some(&m), ga)?.tanh()?, wa, Some(&m), ga)?;
    assert_all_close(&fused, &want, 1e-10, 1e-10)?;
    let (gf, gw) = (fused.sum_all()?.backward()?, want.sum_all()?.backward()?);
    for v in [&x, &w, &g] {
        let (a, b) = (gf.get(v.as_tensor()), gw.get(v.as_tensor()));
        assert_all_close(a.expect("gradient"), b.expect("gradient"), 1e-10, 1e-10)?;
    }
    Ok(())
}

/// Two backward passes over one graph (an estimator with separate losses runs two) get the
/// same gradients: the forward's saved tensors are shared, not consumed.
#[test]
fn two_backward_passes_agree() -> Result<()> {
    let mut noise = SeededNoise::new(6);
    let dev = &Device::Cpu;
    let x = noise.standard_normal(&(4, 6).into(), DType::F64, dev)?;
    let w = Var::from_tensor(&noise.standard_normal(&(3, 6).into(), DType::F64, dev)?)?;
    let g = Var::from_tensor(&Tensor::ones(3, DType::F64, dev)?)?;
    let m = mask(3, 6, DType::F64)?;
    let y = weight_norm_linear(&x, w.as_tensor(), Some(&m), g.as_tensor())?;
    let a = y.sqr()?.sum_all()?.backward()?;
    let b = y.sqr()?.sum_all()?.backward()?;
    for v in [&w, &g] {
        let (da, db) = (a.get(v.as_tensor()), b.get(v.as_tensor()));
        assert_all_close(da.expect("gradient"), db.expect("gradient"), 0.0, 0.0)?;
    }
    // The masked entries get no gradient.
    let dw = a.get(w.as_tensor()).expect("dw");
    let leak = (dw * (1.0 - &m)?)?.abs()?.sum_all()?.to_scalar::<f64>()?;
    assert_eq!(leak, 0.0);
    Ok(())
}

#[test]
fn refuses_mismatched_shapes() -> Result<()> {
    let dev = &Device::Cpu;
    let x = Tensor::zeros((2, 3), DType::F32, dev)?;
    let w = Tensor::zeros((4, 3), DType::F32, dev)?;
    let g = Tensor::ones(4, DType::F32, dev)?;
    assert!(weight_norm_linear(&x, &w, None, &Tensor::ones(3, DType::F32, dev)?).is_err());
    assert!(weight_norm_linear(&x, &w.t()?, None, &g).is_err());
    let bad = Tensor::ones((4, 2), DType::F32, dev)?;
    let e = weight_norm_linear(&x, &w, Some(&bad), &g).unwrap_err();
    assert!(e.to_string().contains("do not match"), "{e}");
    Ok(())
}
