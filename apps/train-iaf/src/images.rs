//! Pictures of a run: image grids and learning curves, as PNG.

use anyhow::{Context, Result};
use std::path::Path;

fn write_png(
    path: &Path,
    width: u32,
    height: u32,
    color: png::ColorType,
    data: &[u8],
) -> Result<()> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width, height);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()?.write_image_data(data)?;
    }
    vaekit_train::write_atomic(path, &bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A grid of grey images (`values` in `[0, 1]`, one `side x side` image per entry), `cols`
/// images per row, 2-pixel gaps.
pub fn write_grid(path: &Path, images: &[Vec<f32>], side: usize, cols: usize) -> Result<()> {
    let rows = images.len().div_ceil(cols.max(1));
    let gap = 2;
    let (w, h) = (cols * (side + gap) + gap, rows * (side + gap) + gap);
    let mut canvas = vec![40u8; w * h];
    for (k, img) in images.iter().enumerate() {
        let (r, c) = (k / cols, k % cols);
        for (p, v) in img.iter().enumerate().take(side * side) {
            let (y, x) = (
                gap + r * (side + gap) + p / side,
                gap + c * (side + gap) + p % side,
            );
            canvas[y * w + x] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    write_png(path, w as u32, h as u32, png::ColorType::Grayscale, &canvas)
}

/// Train (blue) and test (red) curves of a quantity against epoch, with a light grid; the
/// numbers themselves are in `metrics.jsonl`.
pub fn write_curves(path: &Path, train: &[(f64, f64)], test: &[(f64, f64)]) -> Result<()> {
    let (w, h, m) = (640usize, 400usize, 30usize);
    let mut canvas = vec![255u8; w * h * 3];
    let all: Vec<(f64, f64)> = train
        .iter()
        .chain(test)
        .copied()
        .filter(|(_, v)| v.is_finite())
        .collect();
    if all.is_empty() {
        return write_png(path, w as u32, h as u32, png::ColorType::Rgb, &canvas);
    }
    let (x0, x1) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (x, _)| {
            (a.min(*x), b.max(*x))
        });
    let (y0, y1) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (_, y)| {
            (a.min(*y), b.max(*y))
        });
    let (xs, ys) = ((x1 - x0).max(1e-9), (y1 - y0).max(1e-9));
    let to_px = |x: f64, y: f64| -> (i64, i64) {
        let px = m as f64 + (x - x0) / xs * (w - 2 * m) as f64;
        let py = (h - m) as f64 - (y - y0) / ys * (h - 2 * m) as f64;
        (px.round() as i64, py.round() as i64)
    };
    let mut put = |x: i64, y: i64, rgb: [u8; 3]| {
        if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
            let i = (y as usize * w + x as usize) * 3;
            canvas[i..i + 3].copy_from_slice(&rgb);
        }
    };
    for k in 0..=10 {
        let (gx, _) = to_px(x0 + xs * k as f64 / 10.0, y0);
        let (_, gy) = to_px(x0, y0 + ys * k as f64 / 10.0);
        for t in m..w - m {
            put(t as i64, gy, [225, 225, 225]);
        }
        for t in m..h - m {
            put(gx, t as i64, [225, 225, 225]);
        }
    }
    for t in m..=w - m {
        put(t as i64, (h - m) as i64, [0, 0, 0]);
    }
    for t in m..=h - m {
        put(m as i64, t as i64, [0, 0, 0]);
    }
    for (series, rgb) in [(train, [30u8, 90, 200]), (test, [210u8, 40, 40])] {
        let pts: Vec<(i64, i64)> = series
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|&(x, y)| to_px(x, y))
            .collect();
        for pair in pts.windows(2) {
            let ((ax, ay), (bx, by)) = (pair[0], pair[1]);
            let n = (bx - ax).abs().max((by - ay).abs()).max(1);
            for s in 0..=n {
                let (x, y) = (ax + (bx - ax) * s / n, ay + (by - ay) * s / n);
                put(x, y, rgb);
                put(x, y + 1, rgb);
            }
        }
        for &(x, y) in &pts {
            for dx in -2..=2 {
                for dy in -2..=2 {
                    put(x + dx, y + dy, rgb);
                }
            }
        }
    }
    write_png(path, w as u32, h as u32, png::ColorType::Rgb, &canvas)
}
