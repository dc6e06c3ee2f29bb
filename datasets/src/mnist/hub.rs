//! MNIST from the Hugging Face Hub (`ylecun/mnist`): parquet files of PNG images, converted
//! once into the four canonical IDX files in vaekit's cache.

use super::file::MnistFile;
use super::origin::{DataOrigin, ResolvedDir};
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
    fetch_with(&hf_hub::Cache::from_env(), out_dir)
}

/// [`fetch`] with an explicit Hub cache.
fn fetch_with(cache: &hf_hub::Cache, out_dir: &Path) -> Result<ResolvedDir> {
    let repo = hf_hub::Repo::new(HUB_REPO.to_string(), hf_hub::RepoType::Dataset);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mnist;
    use parquet::basic::Compression;
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    use std::sync::Arc;

    /// The schema `datasets` writes for `ylecun/mnist`.
    const SCHEMA: &str = "message schema {
        optional group image { optional binary bytes; optional binary path (STRING); }
        optional int64 label;
    }";

    fn png(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()
            .unwrap()
            .write_image_data(pixels)
            .unwrap();
        out
    }

    fn image(i: usize) -> Vec<u8> {
        (0..784).map(|p| ((p * 31 + i * 17) % 256) as u8).collect()
    }

    /// Writes a parquet file of `labels.len()` images; image `i` is `image(i)` unless `odd`
    /// replaces it with a 27x28 PNG.
    fn write_parquet(path: &Path, labels: &[i64], odd: Option<usize>) {
        let schema = Arc::new(parse_message_type(SCHEMA).unwrap());
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build(),
        );
        let file = std::fs::File::create(path).unwrap();
        let mut writer = SerializedFileWriter::new(file, schema, props).unwrap();
        let mut group = writer.next_row_group().unwrap();
        let n = labels.len();
        let pngs: Vec<ByteArray> = (0..n)
            .map(|i| {
                if Some(i) == odd {
                    png(27, 28, &[0; 27 * 28])
                } else {
                    png(28, 28, &image(i))
                }
            })
            .map(ByteArray::from)
            .collect();
        let mut col = group.next_column().unwrap().unwrap();
        col.typed::<ByteArrayType>()
            .write_batch(&pngs, Some(&vec![2; n]), None)
            .unwrap();
        col.close().unwrap();
        let mut col = group.next_column().unwrap().unwrap();
        col.typed::<ByteArrayType>()
            .write_batch(&[], Some(&vec![1; n]), None)
            .unwrap();
        col.close().unwrap();
        let mut col = group.next_column().unwrap().unwrap();
        col.typed::<Int64Type>()
            .write_batch(labels, Some(&vec![1; n]), None)
            .unwrap();
        col.close().unwrap();
        group.close().unwrap();
        writer.close().unwrap();
    }

    #[test]
    fn parquet_of_pngs_becomes_idx() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("train.parquet");
        write_parquet(&path, &[3, 1, 4, 1, 5], None);
        let (images, labels) = parquet_to_idx(&path).unwrap();
        let images = crate::idx::parse_idx(&images, 3, &path, "images").unwrap();
        let labels = crate::idx::parse_idx(&labels, 1, &path, "labels").unwrap();
        assert_eq!(images.dims, vec![5, 28, 28]);
        assert_eq!(labels.data, vec![3, 1, 4, 1, 5]);
        let expected: Vec<u8> = (0..5).flat_map(image).collect();
        assert_eq!(images.data, expected);
    }

    #[test]
    fn bad_rows_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("bad.parquet");
        write_parquet(&path, &[0, 1, 2], Some(1));
        let msg = parquet_to_idx(&path).unwrap_err().to_string();
        assert!(msg.contains("bad.parquet: row 1: PNG is 27x28"), "{msg}");
        write_parquet(&path, &[0, 12], None);
        let msg = parquet_to_idx(&path).unwrap_err().to_string();
        assert!(msg.contains("row 1: label 12 is not a digit"), "{msg}");
        std::fs::write(&path, b"not parquet").unwrap();
        let msg = parquet_to_idx(&path).unwrap_err().to_string();
        assert!(
            msg.contains("bad.parquet: not a readable parquet file"),
            "{msg}"
        );
    }

    /// A Hub cache laid out as hf-hub lays it out: converted without any network.
    #[test]
    fn hub_cache_is_converted_offline() {
        let tmp = tempfile::tempdir().unwrap();
        let hub = tmp.path().join("hub");
        let repo = hub.join("datasets--ylecun--mnist");
        let snapshot = repo.join("snapshots").join("abc123").join("mnist");
        std::fs::create_dir_all(&snapshot).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs").join("main"), "abc123").unwrap();
        write_parquet(
            &snapshot.join("train-00000-of-00001.parquet"),
            &[7, 8, 9, 0],
            None,
        );
        write_parquet(&snapshot.join("test-00000-of-00001.parquet"), &[2, 2], None);
        let out = tmp.path().join("vaekit").join("mnist");
        let found = fetch_with(&hf_hub::Cache::new(hub), &out).unwrap();
        assert_eq!(found.origin, DataOrigin::HubCache);
        let mnist = Mnist::load_dir(&found.dir).unwrap();
        assert_eq!((mnist.train.len(), mnist.test.len()), (4, 2));
        assert_eq!(mnist.train.labels(), &[7, 8, 9, 0]);
        assert_eq!(&mnist.test.images_u8()[..784], image(0).as_slice());
        assert!(!out.join("train-images-idx3-ubyte.partial").exists());
    }
}
