//! MNIST from the Hugging Face Hub (`ylecun/mnist`): parquet files of PNG images, converted
//! once into the four canonical IDX files in vaekit's cache.

use super::file::MnistFile;
use super::resolve::{DataOrigin, ResolvedDir};
use crate::error::{DataError, Result};
use crate::idx::encode_idx;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use std::path::{Path, PathBuf};

/// The Hub dataset.
pub(crate) const HUB_REPO: &str = "ylecun/mnist";
/// Its two parquet files: (path in the repository, image file, label file).
const HUB_FILES: [(&str, MnistFile, MnistFile); 2] = [
    (
        "mnist/train-00000-of-00001.parquet",
        MnistFile::TrainImages,
        MnistFile::TrainLabels,
    ),
    (
        "mnist/test-00000-of-00001.parquet",
        MnistFile::TestImages,
        MnistFile::TestLabels,
    ),
];

fn hub_err(what: impl std::fmt::Display) -> DataError {
    DataError::Hub {
        message: what.to_string(),
    }
}

/// Fills `out_dir` from the Hub cache when both parquet files are already there, else by
/// downloading them (into the Hub cache, `$HF_HOME`), then converts them to IDX.
pub(crate) fn fetch(out_dir: &Path) -> Result<ResolvedDir> {
    let repo = hf_hub::Repo::new(HUB_REPO.to_string(), hf_hub::RepoType::Dataset);
    let cache = hf_hub::Cache::from_env();
    let cached: Option<Vec<PathBuf>> = HUB_FILES
        .iter()
        .map(|(name, _, _)| cache.repo(repo.clone()).get(name))
        .collect();
    let (paths, origin) = match cached {
        Some(paths) => (paths, DataOrigin::HubCache),
        None => {
            let api = hf_hub::api::sync::ApiBuilder::from_env()
                .with_progress(true)
                .build()
                .map_err(|e| hub_err(format!("cannot set up the client: {e}")))?;
            let api_repo = api.repo(repo);
            let paths = HUB_FILES
                .iter()
                .map(|(name, _, _)| {
                    api_repo.get(name).map_err(|e| {
                        hub_err(format!(
                            "downloading {HUB_REPO}/{name} failed: {e}. Without a network, pass \
                             --data-dir DIR (or set VAEKIT_DATA_DIR) to a directory holding the \
                             four MNIST IDX files"
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            (paths, DataOrigin::Download)
        }
    };
    std::fs::create_dir_all(out_dir).map_err(|source| DataError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    for ((_, images_role, labels_role), parquet) in HUB_FILES.iter().zip(&paths) {
        let (images, labels) = parquet_to_idx(parquet)?;
        write_atomic(&out_dir.join(images_role.file_name()), &images)?;
        write_atomic(&out_dir.join(labels_role.file_name()), &labels)?;
    }
    Ok(ResolvedDir {
        dir: out_dir.to_path_buf(),
        origin,
    })
}

/// Converts one `ylecun/mnist` parquet file (columns `image: struct<bytes: binary, path:
/// string>` holding a 28x28 8-bit grey PNG, and `label: int64`) to IDX image and label bytes.
///
/// # Errors
/// [`DataError::Hub`] naming the file and row for anything unexpected.
pub(crate) fn parquet_to_idx(path: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let at = |row: usize, what: String| hub_err(format!("{}: row {row}: {what}", path.display()));
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = SerializedFileReader::new(file).map_err(|e| {
        hub_err(format!(
            "{}: not a readable parquet file: {e}",
            path.display()
        ))
    })?;
    let rows = usize::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
    let mut pixels = Vec::with_capacity(rows * 784);
    let mut labels = Vec::with_capacity(rows);
    let iter = reader
        .get_row_iter(None)
        .map_err(|e| hub_err(format!("{}: {e}", path.display())))?;
    for (i, row) in iter.enumerate() {
        let row = row.map_err(|e| at(i, e.to_string()))?;
        let mut png_bytes = None;
        let mut label = None;
        for (name, field) in row.get_column_iter() {
            match (name.as_str(), field) {
                ("image", Field::Group(image)) => {
                    for (inner, value) in image.get_column_iter() {
                        if let ("bytes", Field::Bytes(b)) = (inner.as_str(), value) {
                            png_bytes = Some(b.data().to_vec());
                        }
                    }
                }
                ("label", Field::Long(v)) => label = Some(*v),
                ("label", Field::Int(v)) => label = Some(i64::from(*v)),
                _ => {}
            }
        }
        let png_bytes = png_bytes.ok_or_else(|| at(i, "no image.bytes column".into()))?;
        let label = label.ok_or_else(|| at(i, "no integer label column".into()))?;
        let label = u8::try_from(label)
            .ok()
            .filter(|l| *l <= 9)
            .ok_or_else(|| at(i, format!("label {label} is not a digit")))?;
        decode_png_28x28(&png_bytes, &mut pixels).map_err(|e| at(i, e))?;
        labels.push(label);
    }
    let n = labels.len();
    Ok((encode_idx(&[n, 28, 28], &pixels), encode_idx(&[n], &labels)))
}

/// Decodes an 8-bit grey 28x28 PNG and appends its 784 pixels to `out`.
fn decode_png_28x28(bytes: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().map_err(|e| format!("bad PNG: {e}"))?;
    let size = reader.output_buffer_size().ok_or("PNG too large")?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("bad PNG: {e}"))?;
    if (info.width, info.height) != (28, 28)
        || info.color_type != png::ColorType::Grayscale
        || info.bit_depth != png::BitDepth::Eight
    {
        return Err(format!(
            "PNG is {}x{} {:?}/{:?}, expected 28x28 8-bit grey",
            info.width, info.height, info.color_type, info.bit_depth
        ));
    }
    out.extend_from_slice(&buf[..784]);
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it into place.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("partial");
    let io = |source: std::io::Error| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
