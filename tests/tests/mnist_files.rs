//! End to end: MNIST directories, good and damaged, through `Mnist::load_dir`.
#![allow(clippy::unwrap_used)] // tests panic on purpose

use candle::{DType, Device};
use std::path::{Path, PathBuf};
use vaekit_core::SeededNoise;
use vaekit_datasets::idx::encode_idx;
use vaekit_datasets::{Binarization, DataError, Mnist, binarize_fixed, write_synthetic_mnist};
use vaekit_tests::real_mnist_dir;

fn fixture(gzip: bool) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnist");
    write_synthetic_mnist(&dir, 40, 20, gzip).unwrap();
    (tmp, dir)
}

fn load_err(dir: &Path) -> (DataError, String) {
    let err = Mnist::load_dir(dir).unwrap_err();
    let msg = err.to_string();
    (err, msg)
}

#[test]
fn truncated_gzip_names_the_file() {
    let (_tmp, dir) = fixture(true);
    let path = dir.join("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let (err, msg) = load_err(&dir);
    assert!(matches!(err, DataError::CorruptGzip { .. }), "{err:?}");
    assert!(
        msg.contains("train-images-idx3-ubyte.gz") && msg.contains("gzip"),
        "{msg}"
    );
}

#[test]
fn corrupt_gzip_names_the_file() {
    let (_tmp, dir) = fixture(true);
    let path = dir.join("t10k-labels-idx1-ubyte.gz");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    for b in &mut bytes[12..n - 8] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let (err, msg) = load_err(&dir);
    assert!(matches!(err, DataError::CorruptGzip { .. }), "{err:?}");
    assert!(msg.contains("t10k-labels-idx1-ubyte.gz"), "{msg}");
}

#[test]
fn truncated_plain_file_names_the_file_and_sizes() {
    let (_tmp, dir) = fixture(false);
    let path = dir.join("t10k-images-idx3-ubyte");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..1000]).unwrap();
    let (err, msg) = load_err(&dir);
    assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
    assert!(
        msg.contains(
            "t10k-images-idx3-ubyte: truncated: data needs 15680 bytes, the file holds 984"
        ),
        "{msg}"
    );
    std::fs::write(&path, []).unwrap();
    assert!(load_err(&dir).1.contains("truncated: header"));
}

#[test]
fn wrong_magic_names_the_file() {
    let (_tmp, dir) = fixture(false);
    // A label file where the training images should be.
    std::fs::copy(
        dir.join("train-labels-idx1-ubyte"),
        dir.join("train-images-idx3-ubyte"),
    )
    .unwrap();
    let (err, msg) = load_err(&dir);
    assert!(matches!(err, DataError::BadMagic { .. }), "{err:?}");
    assert!(
        msg.contains(
            "train-images-idx3-ubyte: bad IDX magic number 0x00000801, expected 0x00000803"
        ),
        "{msg}"
    );
}

#[test]
fn count_mismatch_names_both_files() {
    let (_tmp, dir) = fixture(false);
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        encode_idx(&[19], &[1; 19]),
    )
    .unwrap();
    let (err, msg) = load_err(&dir);
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                n_images: 20,
                n_labels: 19,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        msg.contains("t10k-images-idx3-ubyte holds 20 images but")
            && msg.contains("t10k-labels-idx1-ubyte holds 19 labels"),
        "{msg}"
    );
}

#[test]
fn missing_file_bad_label_bad_size() {
    let (_tmp, dir) = fixture(false);
    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
    let (err, msg) = load_err(&dir);
    assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
    assert!(
        msg.contains("t10k-labels-idx1-ubyte: file not found (looked for"),
        "{msg}"
    );

    let mut labels = vec![3u8; 20];
    labels[7] = 11;
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        encode_idx(&[20], &labels),
    )
    .unwrap();
    let (err, msg) = load_err(&dir);
    assert!(
        matches!(
            err,
            DataError::BadLabel {
                index: 7,
                value: 11,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        msg.contains("t10k-labels-idx1-ubyte: label 11 at index 7"),
        "{msg}"
    );

    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        encode_idx(&[40, 32, 32], &vec![0; 40 * 1024]),
    )
    .unwrap();
    let msg = load_err(&dir).1;
    assert!(
        msg.contains("train-images-idx3-ubyte: images are 32x32, MNIST images are 28x28"),
        "{msg}"
    );
}

#[test]
fn fixture_trains_through_the_batcher_pipeline() {
    let (_tmp, dir) = fixture(true);
    let mnist = Mnist::load_dir(&dir).unwrap();
    let (train, valid) = mnist.train.split_last(10).unwrap();
    assert_eq!((train.len(), valid.len()), (30, 10));
    let x = train.images_f32(&Device::Cpu).unwrap();
    let b = Binarization::Dynamic
        .apply(&x, &mut SeededNoise::new(0))
        .unwrap();
    assert_eq!(b.dims(), &[30, 784]);
    assert_eq!(b.dtype(), DType::F32);
}

/// Real MNIST: counts, the canonical checksums and mean intensity, and the statistics of the
/// binarizations (the mean of Bernoulli(x) draws is the mean intensity).
#[test]
fn real_mnist_loads_and_binarizes() {
    let Some(dir) = real_mnist_dir("real_mnist_loads_and_binarizes") else {
        return;
    };
    let mnist = Mnist::load_dir(&dir).unwrap();
    assert_eq!((mnist.train.len(), mnist.test.len()), (60_000, 10_000));
    assert!(mnist.is_canonical(), "{:?}", mnist.files);
    assert!((mnist.train.mean_intensity() - 0.13066).abs() < 5e-6);
    assert_eq!(
        mnist.test.label_counts(),
        vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );

    let x = mnist.test.images_f32(&Device::Cpu).unwrap();
    let fixed = binarize_fixed(&x, 123).unwrap();
    let again = binarize_fixed(&x, 123).unwrap();
    assert_eq!(
        fixed.sum_all().unwrap().to_scalar::<f32>().unwrap(),
        again.sum_all().unwrap().to_scalar::<f32>().unwrap()
    );
    let n = (10_000 * 784) as f64;
    let mean = f64::from(fixed.sum_all().unwrap().to_scalar::<f32>().unwrap()) / n;
    // Sum of independent Bernoullis: variance <= n/4, so 6 sd is 3/sqrt(n) in the mean.
    assert!(
        (mean - mnist.test.mean_intensity()).abs() < 3.0 / n.sqrt(),
        "{mean}"
    );
}
