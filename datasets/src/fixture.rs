//! Synthetic MNIST-format files, for tests and examples that must run without the real data.

use crate::error::{DataError, Result};
use crate::idx::encode_idx;
use crate::mnist::MnistFile;
use std::io::Write;
use std::path::Path;

/// Writes the four MNIST files with `n_train` and `n_test` synthetic 28x28 images to `dir`
/// (created if needed), gzipped when `gzip`, else plain. Image `i` is a deterministic
/// pattern (a bright stroke on a dark background whose position depends on its label
/// `i % 10`), so the files are identical on every run and every machine.
///
/// # Errors
/// [`DataError::Io`] when the directory or a file cannot be written.
pub fn write_synthetic_mnist(dir: &Path, n_train: usize, n_test: usize, gzip: bool) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for (n, images, labels) in [
        (n_train, MnistFile::TrainImages, MnistFile::TrainLabels),
        (n_test, MnistFile::TestImages, MnistFile::TestLabels),
    ] {
        let label_bytes: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let mut pixels = Vec::with_capacity(n * 784);
        for (i, &label) in label_bytes.iter().enumerate() {
            pixels.extend(synthetic_image(i, label));
        }
        write_file(dir, images, &encode_idx(&[n, 28, 28], &pixels), gzip)?;
        write_file(dir, labels, &encode_idx(&[n], &label_bytes), gzip)?;
    }
    Ok(())
}

/// A 28x28 image: a vertical stroke at column `4 + 2 * label`, intensities varying with `i`.
fn synthetic_image(i: usize, label: u8) -> impl Iterator<Item = u8> {
    let col = 4 + 2 * usize::from(label);
    (0..784usize).map(move |p| {
        let (r, c) = (p / 28, p % 28);
        if (4..24).contains(&r) && c.abs_diff(col) <= 1 {
            (255 - (i * 7 + r * 3) % 64) as u8
        } else {
            ((i + p) % 13) as u8
        }
    })
}

fn write_file(dir: &Path, role: MnistFile, bytes: &[u8], gzip: bool) -> Result<()> {
    let (path, data) = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes)
            .and_then(|()| enc.finish())
            .map(|gz| (dir.join(format!("{}.gz", role.file_name())), gz))
            .map_err(|source| DataError::Io {
                path: dir.join(role.file_name()),
                source,
            })?
    } else {
        (dir.join(role.file_name()), bytes.to_vec())
    };
    std::fs::write(&path, data).map_err(|source| DataError::Io { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mnist;

    #[test]
    fn fixture_loads_gzipped_and_plain_identically() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(|source| DataError::Io {
            path: "tmp".into(),
            source,
        })?;
        write_synthetic_mnist(&tmp.path().join("gz"), 30, 12, true)?;
        write_synthetic_mnist(&tmp.path().join("plain"), 30, 12, false)?;
        let a = Mnist::load_dir(&tmp.path().join("gz"))?;
        let b = Mnist::load_dir(&tmp.path().join("plain"))?;
        assert_eq!((a.train.len(), a.test.len()), (30, 12));
        assert_eq!(a.train, b.train);
        assert_eq!(a.test, b.test);
        assert_eq!(a.files[0].md5, b.files[0].md5);
        assert!(!a.is_canonical());
        assert_eq!(a.test.label_counts(), vec![2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
        Ok(())
    }
}
