use super::*;
use crate::im2col::ConvGeometry;
use crate::testing::{assert_all_close, gradient_of};
use candle::{DType, Device, Result, Tensor, Var};
use vaekit_core::{NoiseSource, SeededNoise};

fn geometry(k: usize, s: usize) -> ConvGeometry {
    ConvGeometry {
        padding: (k - 1) / 2,
        stride: s,
        dilation: 1,
    }
}

/// The three maps image by image against candle's f64 `conv2d`, `conv_transpose2d` and
/// autograd, at stride 1 and 2, over geometries that reach every tile width (1, 2 and 3
/// registers of grid columns; 1 to 4 of weight-gradient outputs) and partial panels.
#[test]
fn three_maps_match_candle_in_f64() -> Result<()> {
    if !kernel::available() {
        eprintln!("conv_direct: no AVX-512F on this CPU, direct path not tested");
        return Ok(());
    }
    let dev = &Device::Cpu;
    let mut noise = SeededNoise::new(21);
    // (batch, c_in, c_out, h, w, k, stride)
    for (b, ci, co, h, w, k, s) in [
        (2, 6, 11, 14, 14, 3, 1),
        (3, 5, 8, 9, 13, 3, 1),
        (2, 3, 9, 6, 5, 5, 1),
        (2, 4, 3, 7, 7, 1, 1),
        (2, 7, 20, 5, 6, 3, 1),
        (1, 2, 40, 4, 4, 3, 1),
        (2, 13, 70, 3, 5, 3, 1),
        (2, 6, 11, 14, 14, 3, 2),
        (3, 5, 20, 10, 8, 3, 2),
        (2, 3, 9, 12, 6, 5, 2),
        (2, 4, 3, 6, 6, 1, 2),
        (2, 9, 40, 4, 2, 3, 2),
    ] {
        let (oh, ow) = (h / s, w / s);
        let x = noise.standard_normal(&(b, ci, h, w).into(), DType::F64, dev)?;
        let wt = noise.standard_normal(&(co, ci, k, k).into(), DType::F64, dev)?;
        let dy = noise.standard_normal(&(b, co, oh, ow).into(), DType::F64, dev)?;
        let (p, what) = (
            (k - 1) / 2,
            format!("{b}x{ci}x{h}x{w} -> {co}, k {k}, s {s}"),
        );
        let grid = Grid::new((b, ci, h, w), k, geometry(k, s))?;
        let conv = DirectConv::new(&grid, co).expect("a direct convolution");
        let f32s = |t: &Tensor| t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>();
        type Image<'a> = &'a dyn Fn(&[f32], &mut [f32], &mut [f32]);
        let images = |src: &Tensor, dims: (usize, usize, usize), scratch_len: usize, f: Image| {
            let src = f32s(src)?;
            let len = dims.0 * dims.1 * dims.2;
            let mut out = vec![0f32; b * len];
            let mut scratch = vec![0f32; scratch_len];
            for (img, dst) in src
                .chunks_exact(src.len() / b)
                .zip(out.chunks_exact_mut(len))
            {
                f(img, dst, &mut scratch);
            }
            Tensor::from_vec(out, (b, dims.0, dims.1, dims.2), dev)?.to_dtype(DType::F64)
        };
        let wf = f32s(&wt)?;
        let job = conv.job(true, &wf);
        let y = images(&x, (co, oh, ow), conv.scratch_len(&job), &|i, o, sc| {
            conv.image(&job, i, o, sc)
        })?;
        eprintln!("{what}: forward");
        assert_all_close(&y, &x.conv2d(&wt, p, s, 1, 1)?, 1e-4, 1e-4)?;
        let job = conv.job(false, &wf);
        let dx = images(&dy, (ci, h, w), conv.scratch_len(&job), &|i, o, sc| {
            conv.image(&job, i, o, sc)
        })?;
        eprintln!("{what}: data gradient");
        let expected = dy.conv_transpose2d(&wt, p, s - 1, s, 1)?;
        assert_all_close(&dx, &expected, 1e-4, 1e-4)?;
        // dW = ∂/∂w Σ conv(x, w) ⊙ dy, by candle's autograd; images in two blocks.
        let wv = Var::from_tensor(&wt)?;
        let g = (x.conv2d(wv.as_tensor(), p, s, 1, 1)? * &dy)?
            .sum_all()?
            .backward()?;
        let expected = gradient_of(&g, wv.as_tensor())?;
        let (xs, dys) = (f32s(&x)?, f32s(&dy)?);
        let mut partials = vec![0f32; 2 * conv.wg_partial_len()];
        let mut scratch = vec![0f32; conv.wg_scratch_len()];
        let (xl, dl) = (xs.len() / b, dys.len() / b);
        for i in 0..b {
            let part = &mut partials[(i % 2) * conv.wg_partial_len()..];
            let (xi, dyi) = (&xs[i * xl..][..xl], &dys[i * dl..][..dl]);
            conv.weight_grad_image(xi, dyi, part, &mut scratch);
        }
        let dw = Tensor::from_vec(conv.weight_grad_sum(&partials), (co, ci, k, k), dev)?;
        eprintln!("{what}: weight gradient");
        assert_all_close(&dw.to_dtype(DType::F64)?, &expected, 1e-4, 1e-4)?;
    }
    Ok(())
}

#[test]
fn applies_to_its_geometries_only() -> Result<()> {
    let grid = |k, padding, stride, dilation, h| {
        let g = ConvGeometry {
            padding,
            stride,
            dilation,
        };
        Grid::new((1, 2, h, 8), k, g)
    };
    let direct = kernel::available();
    for g in [
        grid(3, 1, 1, 1, 8)?,
        grid(5, 2, 1, 1, 7)?,
        grid(3, 1, 2, 1, 8)?,
    ] {
        assert_eq!(DirectConv::new(&g, 4).is_some(), direct);
    }
    for g in [
        grid(3, 0, 1, 1, 8)?,
        grid(3, 1, 2, 1, 7)?,
        grid(3, 2, 1, 2, 8)?,
        grid(4, 1, 1, 1, 8)?,
        grid(3, 1, 3, 1, 9)?,
    ] {
        assert!(DirectConv::new(&g, 4).is_none());
    }
    Ok(())
}
