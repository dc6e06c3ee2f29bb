//! Pictures of a run: image grids as PNG.

use anyhow::{Context, Result};
use std::path::Path;

/// 8-bit `data` of `color` as the bytes of a PNG file.
pub fn encode_png(width: u32, height: u32, color: png::ColorType, data: &[u8]) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width, height);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()?.write_image_data(data)?;
    }
    Ok(bytes)
}

/// Writes 8-bit `data` of `color` as a PNG file (atomically).
pub fn write_png(
    path: &Path,
    width: u32,
    height: u32,
    color: png::ColorType,
    data: &[u8],
) -> Result<()> {
    let bytes = encode_png(width, height, color, data)?;
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
