//! The four MNIST files: names, layouts and canonical checksums.

use serde::Serialize;
use std::path::{Path, PathBuf};

/// One of the four files of MNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MnistFile {
    /// `train-images-idx3-ubyte`: 60000 x 28 x 28.
    TrainImages,
    /// `train-labels-idx1-ubyte`: 60000.
    TrainLabels,
    /// `t10k-images-idx3-ubyte`: 10000 x 28 x 28.
    TestImages,
    /// `t10k-labels-idx1-ubyte`: 10000.
    TestLabels,
}

impl MnistFile {
    /// All four, in the canonical order.
    pub const ALL: [MnistFile; 4] = [
        MnistFile::TrainImages,
        MnistFile::TrainLabels,
        MnistFile::TestImages,
        MnistFile::TestLabels,
    ];

    /// The canonical file name, without `.gz`.
    pub fn file_name(self) -> &'static str {
        match self {
            MnistFile::TrainImages => "train-images-idx3-ubyte",
            MnistFile::TrainLabels => "train-labels-idx1-ubyte",
            MnistFile::TestImages => "t10k-images-idx3-ubyte",
            MnistFile::TestLabels => "t10k-labels-idx1-ubyte",
        }
    }

    /// The md5 of the canonical, uncompressed file.
    pub fn canonical_md5(self) -> &'static str {
        match self {
            MnistFile::TrainImages => "6bbc9ace898e44ae57da46a324031adb",
            MnistFile::TrainLabels => "a25bea736e30d166cdddb491f175f624",
            MnistFile::TestImages => "2646ac647ad5339dbf082846283269ea",
            MnistFile::TestLabels => "27ae3e4e09519cfbb04c329615203637",
        }
    }

    /// Number of IDX dimensions: 3 for images, 1 for labels.
    pub fn ndims(self) -> u8 {
        match self {
            MnistFile::TrainImages | MnistFile::TestImages => 3,
            MnistFile::TrainLabels | MnistFile::TestLabels => 1,
        }
    }

    /// "images" or "labels".
    pub fn kind(self) -> &'static str {
        if self.ndims() == 3 {
            "images"
        } else {
            "labels"
        }
    }

    /// The names this file may have in `dir`, in the order they are tried: the canonical name
    /// gzipped and plain, and the `train-images.idx3-ubyte` spelling some mirrors use.
    pub fn candidates(self, dir: &Path) -> Vec<PathBuf> {
        let name = self.file_name();
        let dotted = name.replacen("-idx", ".idx", 1);
        vec![
            dir.join(format!("{name}.gz")),
            dir.join(name),
            dir.join(format!("{dotted}.gz")),
            dir.join(dotted),
        ]
    }
}

/// A file that was read: where, its content checksum, and whether that is MNIST's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceFile {
    /// Which of the four files.
    pub role: MnistFile,
    /// The path read.
    pub path: PathBuf,
    /// md5 of the uncompressed content, lower-case hex.
    pub md5: String,
    /// Whether `md5` is the canonical checksum of this file.
    pub canonical: bool,
}
