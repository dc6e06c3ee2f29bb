//! Loading MNIST from a directory of IDX files.

use super::file::{MnistFile, SourceFile};
use crate::error::{DataError, Result};
use crate::idx::{IdxArray, parse_idx, read_maybe_gzipped};
use crate::image_set::ImageSet;
use md5::{Digest, Md5};
use std::path::{Path, PathBuf};

/// MNIST's training and test sets, with the files they came from.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// The training set (60000 images in the canonical files).
    pub train: ImageSet,
    /// The test set (10000 images in the canonical files).
    pub test: ImageSet,
    /// The four files read, with checksums.
    pub files: Vec<SourceFile>,
}

impl Mnist {
    /// Loads the four IDX files (gzipped or not) from `dir`.
    ///
    /// Magic numbers, dimensions (28 x 28 images; files of any count are accepted, so small
    /// fixtures load too), image/label counts and label values are validated, and each file's
    /// md5 is compared with the canonical one ([`Mnist::is_canonical`]).
    ///
    /// # Errors
    /// A [`DataError`] naming the file and the problem.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let mut files = Vec::with_capacity(4);
        let mut read = |role: MnistFile| -> Result<IdxArray> {
            let path = find_file(dir, role)?;
            let bytes = read_maybe_gzipped(&path)?;
            let md5 = hex(&Md5::digest(&bytes));
            let array = parse_idx(&bytes, role.ndims(), &path, role.kind())?;
            files.push(SourceFile {
                role,
                canonical: md5 == role.canonical_md5(),
                md5,
                path,
            });
            Ok(array)
        };
        let train_images = read(MnistFile::TrainImages)?;
        let train_labels = read(MnistFile::TrainLabels)?;
        let test_images = read(MnistFile::TestImages)?;
        let test_labels = read(MnistFile::TestLabels)?;
        let train = image_set(train_images, train_labels, &files[0].path, &files[1].path)?;
        let test = image_set(test_images, test_labels, &files[2].path, &files[3].path)?;
        Ok(Self { train, test, files })
    }

    /// Whether all four files carry the canonical checksums.
    pub fn is_canonical(&self) -> bool {
        self.files.len() == 4 && self.files.iter().all(|f| f.canonical)
    }
}

/// The first existing candidate name for `role` in `dir`.
pub(crate) fn find_file(dir: &Path, role: MnistFile) -> Result<PathBuf> {
    let tried = role.candidates(dir);
    tried
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| DataError::MissingFile {
            expected: dir.join(role.file_name()),
            tried,
        })
}

/// Whether `dir` holds all four files under some accepted name.
pub(crate) fn has_all_files(dir: &Path) -> bool {
    MnistFile::ALL
        .iter()
        .all(|&role| find_file(dir, role).is_ok())
}

fn image_set(images: IdxArray, labels: IdxArray, ipath: &Path, lpath: &Path) -> Result<ImageSet> {
    let (n, rows, cols) = (images.dims[0], images.dims[1], images.dims[2]);
    if (rows, cols) != (28, 28) {
        return Err(DataError::BadDims {
            path: ipath.to_path_buf(),
            reason: format!("images are {rows}x{cols}, MNIST images are 28x28"),
        });
    }
    if labels.dims[0] != n {
        return Err(DataError::CountMismatch {
            images: ipath.to_path_buf(),
            n_images: n,
            labels: lpath.to_path_buf(),
            n_labels: labels.dims[0],
        });
    }
    if let Some((index, &value)) = labels.data.iter().enumerate().find(|(_, l)| **l > 9) {
        return Err(DataError::BadLabel {
            path: lpath.to_path_buf(),
            index,
            value,
        });
    }
    ImageSet::new(images.data, labels.data, rows, cols)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
