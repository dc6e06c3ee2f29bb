//! The IDX file format (LeCun's MNIST files), gzipped or not.
//!
//! Layout: a 4-byte magic `00 00 TT NN` (type `TT`, `0x08` = unsigned byte; `NN` dimensions),
//! then `NN` big-endian `u32` sizes, then the data in row-major order.

use crate::error::{DataError, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// The IDX type code for unsigned bytes, the only one MNIST uses.
pub const IDX_UBYTE: u8 = 0x08;

/// A decoded IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The sizes from the header, outermost first.
    pub dims: Vec<usize>,
    /// The data, row-major, `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

/// Reads a file whole, decompressing it when it starts with the gzip magic `1f 8b`
/// (whatever its name).
///
/// # Errors
/// [`DataError::Io`] when it cannot be read, [`DataError::CorruptGzip`] when the gzip
/// stream is damaged or cut short.
pub fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|source| DataError::CorruptGzip {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses IDX bytes that must hold unsigned bytes in `ndims` dimensions; `path` and `kind`
/// ("images", "labels") only serve the error messages.
///
/// # Errors
/// [`DataError::Truncated`], [`DataError::BadMagic`] or [`DataError::TrailingBytes`].
pub fn parse_idx(bytes: &[u8], ndims: u8, path: &Path, kind: &'static str) -> Result<IdxArray> {
    let expected_magic = u32::from(IDX_UBYTE) << 8 | u32::from(ndims);
    let header = 4 + 4 * usize::from(ndims);
    if bytes.len() < 4 {
        return Err(truncated(path, "header", header, bytes.len()));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != expected_magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            expected: expected_magic,
            found: magic,
            kind,
        });
    }
    if bytes.len() < header {
        return Err(truncated(path, "header", header, bytes.len()));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::BadDims {
            path: path.to_path_buf(),
            reason: format!("dimensions {dims:?} overflow"),
        })?;
    let data = &bytes[header..];
    if data.len() < count {
        return Err(truncated(path, "data", count, data.len()));
    }
    if data.len() > count {
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            expected: count,
            found: data.len(),
        });
    }
    Ok(IdxArray {
        dims,
        data: data.to_vec(),
    })
}

fn truncated(path: &Path, what: &'static str, expected: usize, found: usize) -> DataError {
    DataError::Truncated {
        path: path.to_path_buf(),
        what,
        expected,
        found,
    }
}

/// Encodes an IDX array of unsigned bytes (for fixtures and for the Hub conversion).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, IDX_UBYTE, dims.len() as u8]);
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn p() -> PathBuf {
        PathBuf::from("x-idx3-ubyte")
    }

    #[test]
    fn round_trip() -> Result<()> {
        let data: Vec<u8> = (0..24).collect();
        let bytes = encode_idx(&[2, 3, 4], &data);
        let arr = parse_idx(&bytes, 3, &p(), "images")?;
        assert_eq!(arr.dims, vec![2, 3, 4]);
        assert_eq!(arr.data, data);
        Ok(())
    }

    #[test]
    fn rejects_bad_files_with_the_reason() {
        let good = encode_idx(&[2, 2, 2], &[7; 8]);
        let msg = |r: Result<IdxArray>| r.unwrap_err().to_string();
        assert!(
            msg(parse_idx(&good, 1, &p(), "labels")).contains("bad IDX magic number 0x00000803")
        );
        assert!(msg(parse_idx(&good[..3], 3, &p(), "images")).contains("truncated: header"));
        assert!(
            msg(parse_idx(&good[..10], 3, &p(), "images")).contains("truncated: header needs 16")
        );
        assert!(
            msg(parse_idx(&good[..20], 3, &p(), "images"))
                .contains("truncated: data needs 8 bytes, the file holds 4")
        );
        let mut long = good.clone();
        long.push(0);
        assert!(
            msg(parse_idx(&long, 3, &p(), "images"))
                .contains("9 bytes of data where the header promises 8")
        );
        let mut float = good;
        float[2] = 0x0d;
        assert!(msg(parse_idx(&float, 3, &p(), "images")).contains("not an MNIST images file"));
        let huge = encode_idx(&[usize::MAX >> 32, usize::MAX >> 32, usize::MAX >> 32], &[]);
        assert!(msg(parse_idx(&huge, 3, &p(), "images")).contains("overflow"));
    }
}
