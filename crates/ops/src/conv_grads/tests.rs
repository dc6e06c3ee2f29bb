use super::*;
use crate::conv_gemm::{conv_transpose2d_gemm, conv2d_gemm};
use crate::im2col::ConvGeometry;
use crate::testing::assert_all_close;
use candle::{DType, Device, Var};
use vaekit_core::{NoiseSource, SeededNoise};

/// `(dx, dw)` of `Σ conv_transpose2d(x, w) ⊙ g` through autograd (the combined op, where
/// the direct path applies) and the same two maps run as their own ops: the convolution of
/// `g` (`dx`) and the kernel gradient of `Σ conv2d(g, w) ⊙ x` (`dw`).
fn both_ways(x: &Tensor, w: &Tensor, g: &Tensor) -> Result<[[Tensor; 2]; 2]> {
    let geometry = ConvGeometry {
        padding: 1,
        stride: 2,
        dilation: 1,
    };
    let (xv, wv) = (Var::from_tensor(x)?, Var::from_tensor(w)?);
    let y = conv_transpose2d_gemm(xv.as_tensor(), wv.as_tensor(), 1, 2, 1)?;
    let grads = (y * g)?.sum_all()?.backward()?;
    let fused = [
        grads.get(xv.as_tensor()).expect("dx").clone(),
        grads.get(wv.as_tensor()).expect("dw").clone(),
    ];
    // With a bias, the bias gradient is `g`'s channel sums, and dx, dw are unchanged.
    let (xv, wv) = (Var::from_tensor(x)?, Var::from_tensor(w)?);
    let bv = Var::from_tensor(&Tensor::zeros(g.dim(1)?, DType::F32, g.device())?)?;
    let y = crate::conv_bias::conv_transpose2d_bias(
        xv.as_tensor(),
        wv.as_tensor(),
        bv.as_tensor(),
        (1, 2, 1),
    )?;
    let with_bias = (y * g)?.sum_all()?.backward()?;
    for (t, want) in [(&xv, &fused[0]), (&wv, &fused[1])] {
        assert_eq!(
            flat(with_bias.get(t.as_tensor()).expect("tracked"))?,
            flat(want)?
        );
    }
    let db = with_bias.get(bv.as_tensor()).expect("db");
    let db_ref = crate::channel_affine::bias_grad(g)?;
    assert_eq!(flat(db)?, flat(&db_ref)?, "the bias gradient");
    let dx = conv2d_gemm(g, w, geometry)?;
    let w2 = Var::from_tensor(w)?;
    let dw = (conv2d_gemm(g, w2.as_tensor(), geometry)? * x)?
        .sum_all()?
        .backward()?
        .get(w2.as_tensor())
        .expect("dw")
        .clone();
    Ok([fused, [dx, dw]])
}

fn inputs(b: usize, seed: u64) -> Result<[Tensor; 3]> {
    let mut noise = SeededNoise::new(seed);
    let dev = Device::Cpu;
    let x = noise.standard_normal(&(b, 32, 7, 7).into(), DType::F32, &dev)?;
    let w = noise
        .standard_normal(&(32, 24, 3, 3).into(), DType::F32, &dev)?
        .affine(0.1, 0.0)?;
    let g = noise.standard_normal(&(b, 24, 14, 14).into(), DType::F32, &dev)?;
    Ok([x, w, g])
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// Whether this CPU runs the direct path (AVX-512F); without it the fused backward is not
/// used and these tests compare the GEMM path with itself, which they say.
fn direct_path() -> bool {
    let geometry = ConvGeometry {
        padding: 1,
        stride: 1,
        dilation: 1,
    };
    let on = Grid::new((8, 24, 14, 14), 3, geometry)
        .ok()
        .and_then(|g| DirectConv::new(&g, 32))
        .is_some();
    if !on {
        eprintln!("no AVX-512F: the fused convolution backward is not exercised here");
    }
    on
}

/// A stride-2 transposed convolution's gradients in one op equal the two maps run
/// separately, bit for bit, for batches that fill the image blocks and that do not; and
/// they match candle's `conv_transpose2d` in f64 within f32 rounding.
#[test]
fn equals_the_two_maps_and_matches_candle() -> Result<()> {
    direct_path();
    for b in [8, 7] {
        let [x, w, g] = inputs(b, 3)?;
        let [[dx, dw], [dx_ref, dw_ref]] = both_ways(&x, &w, &g)?;
        assert_eq!(flat(&dx)?, flat(&dx_ref)?, "dx, batch {b}");
        assert_eq!(flat(&dw)?, flat(&dw_ref)?, "dw, batch {b}");
        let to64 = |t: &Tensor| t.to_dtype(DType::F64);
        let (x64, w64, g64) = (
            Var::from_tensor(&to64(&x)?)?,
            Var::from_tensor(&to64(&w)?)?,
            to64(&g)?,
        );
        let y = x64
            .as_tensor()
            .conv_transpose2d(w64.as_tensor(), 1, 1, 2, 1)?;
        let grads = (y * g64)?.sum_all()?.backward()?;
        let want = [grads.get(x64.as_tensor()), grads.get(w64.as_tensor())];
        for (ours, want) in [dx, dw].iter().zip(want) {
            assert_all_close(&to64(ours)?, want.expect("tracked"), 1e-4, 1e-4)?;
        }
    }
    Ok(())
}

/// Bit-identical on one rayon thread and on three: the transposed convolution, and a
/// stride-1 convolution with a bias and an ELU pre-activation.
#[test]
fn results_do_not_depend_on_the_thread_count() -> Result<()> {
    let [x, w, g] = inputs(9, 5)?;
    let mut noise = SeededNoise::new(6);
    let dev = Device::Cpu;
    let x2 = noise.standard_normal(&(9, 24, 14, 14).into(), DType::F32, &dev)?;
    let b2 = noise.standard_normal(&32.into(), DType::F32, &dev)?;
    let g2 = noise.standard_normal(&(9, 32, 14, 14).into(), DType::F32, &dev)?;
    let w2 = w.clone();
    let on = |threads: usize| -> Result<Vec<Vec<f32>>> {
        let pool = crate::testing::thread_pool(threads)?;
        pool.install(|| {
            let [[dx, dw], _] = both_ways(&x, &w, &g)?;
            let [xv, wv, bv] = [&x2, &w2, &b2].map(Var::from_tensor);
            let (xv, wv, bv) = (xv?, wv?, bv?);
            let geometry = ConvGeometry {
                padding: 1,
                stride: 1,
                dilation: 1,
            };
            let pre = Some(crate::FusedActivation::Elu);
            let y = crate::conv_bias::conv2d_bias(
                xv.as_tensor(),
                wv.as_tensor(),
                bv.as_tensor(),
                geometry,
                pre,
            )?;
            let grads = (y * &g2)?.sum_all()?.backward()?;
            let mut all = vec![flat(&dx)?, flat(&dw)?];
            for v in [&xv, &wv, &bv] {
                all.push(flat(grads.get(v.as_tensor()).expect("tracked"))?);
            }
            Ok(all)
        })
    };
    assert_eq!(on(1)?, on(3)?);
    Ok(())
}

/// A stride-1 convolution's gradients in one op equal the maps run as their own ops, bit
/// for bit: the input's is the transposed convolution of `g`, the kernel's the one
/// `Σ conv_transpose2d(g, w) ⊙ x` gives; and both match candle's `conv2d` in f64.
#[test]
fn forward_map_equals_the_two_maps_and_matches_candle() -> Result<()> {
    direct_path();
    let geometry = ConvGeometry {
        padding: 1,
        stride: 1,
        dilation: 1,
    };
    let mut noise = SeededNoise::new(9);
    let dev = Device::Cpu;
    let x = noise.standard_normal(&(6, 24, 14, 14).into(), DType::F32, &dev)?;
    let w = noise
        .standard_normal(&(32, 24, 3, 3).into(), DType::F32, &dev)?
        .affine(0.1, 0.0)?;
    let g = noise.standard_normal(&(6, 32, 14, 14).into(), DType::F32, &dev)?;
    let (xv, wv) = (Var::from_tensor(&x)?, Var::from_tensor(&w)?);
    let y = conv2d_gemm(xv.as_tensor(), wv.as_tensor(), geometry)?;
    let grads = (y * &g)?.sum_all()?.backward()?;
    let (dx, dw) = (
        grads.get(xv.as_tensor()).expect("dx"),
        grads.get(wv.as_tensor()).expect("dw"),
    );
    assert_eq!(flat(dx)?, flat(&conv_transpose2d_gemm(&g, &w, 1, 1, 0)?)?);
    let w2 = Var::from_tensor(&w)?;
    let dw_ref = (conv_transpose2d_gemm(&g, w2.as_tensor(), 1, 1, 0)? * &x)?
        .sum_all()?
        .backward()?;
    assert_eq!(flat(dw)?, flat(dw_ref.get(w2.as_tensor()).expect("dw"))?);
    let to64 = |t: &Tensor| t.to_dtype(DType::F64);
    let (x64, w64) = (Var::from_tensor(&to64(&x)?)?, Var::from_tensor(&to64(&w)?)?);
    let y = x64.as_tensor().conv2d(w64.as_tensor(), 1, 1, 1, 1)?;
    let want = (y * to64(&g)?)?.sum_all()?.backward()?;
    assert_all_close(
        &to64(dx)?,
        want.get(x64.as_tensor()).expect("dx"),
        1e-4,
        1e-4,
    )?;
    assert_all_close(
        &to64(dw)?,
        want.get(w64.as_tensor()).expect("dw"),
        1e-4,
        1e-4,
    )?;
    Ok(())
}

/// A stride-2 convolution of 2x2 images (1x1 output planes) with a bias, a batch of 640
/// (two of `bias_grad`'s row blocks): the fused backward leaves the bias sums to
/// `bias_grad` there, and all three gradients equal the unfused pair's (the convolution,
/// then a bias add) bit for bit. (The two ways of summing differ only in the order of f64
/// additions before one rounding to f32, which these inputs do not expose.)
#[test]
fn single_pixel_planes_with_a_bias_equal_the_unfused_pair() -> Result<()> {
    let geometry = ConvGeometry {
        padding: 1,
        stride: 2,
        dilation: 1,
    };
    let mut noise = SeededNoise::new(12);
    let dev = Device::Cpu;
    let x = noise.standard_normal(&(640, 64, 2, 2).into(), DType::F32, &dev)?;
    let w = noise
        .standard_normal(&(64, 64, 3, 3).into(), DType::F32, &dev)?
        .affine(0.05, 0.0)?;
    let b = noise.standard_normal(&64.into(), DType::F32, &dev)?;
    let g = noise.standard_normal(&(640, 64, 1, 1).into(), DType::F32, &dev)?;
    let on = Grid::new((640, 64, 2, 2), 3, geometry)
        .ok()
        .and_then(|grid| DirectConv::new(&grid, 64))
        .is_some();
    if !on {
        eprintln!("no AVX-512F: the fused convolution backward is not exercised here");
    }
    let run = |fused: bool| -> Result<Vec<Vec<f32>>> {
        let [xv, wv, bv] = [&x, &w, &b].map(Var::from_tensor);
        let (xv, wv, bv) = (xv?, wv?, bv?);
        let y = match fused {
            true => crate::conv_bias::conv2d_bias(
                xv.as_tensor(),
                wv.as_tensor(),
                bv.as_tensor(),
                geometry,
                None,
            )?,
            false => crate::channel_affine::bias_add(
                &conv2d_gemm(xv.as_tensor(), wv.as_tensor(), geometry)?,
                bv.as_tensor(),
            )?,
        };
        let grads = (y * &g)?.sum_all()?.backward()?;
        [&xv, &wv, &bv]
            .iter()
            .map(|v| flat(grads.get(v.as_tensor()).expect("tracked")))
            .collect()
    };
    assert_eq!(run(true)?, run(false)?);
    Ok(())
}
