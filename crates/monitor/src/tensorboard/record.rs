//! TFRecord framing: length, masked CRC-32C of the length, payload, masked CRC-32C of it.

use std::io::{self, Read, Write};

const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// TensorFlow's masked CRC-32C: the checksum rotated right by 15 bits plus a constant, so
/// that a checksum of data holding checksums stays informative.
pub(crate) fn masked_crc32c(bytes: &[u8]) -> u32 {
    let crc = CASTAGNOLI.checksum(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Writes one record holding `payload`.
pub(crate) fn write_record(out: &mut dyn Write, payload: &[u8]) -> io::Result<()> {
    let len = (payload.len() as u64).to_le_bytes();
    let mut record = Vec::with_capacity(payload.len() + 16);
    record.extend_from_slice(&len);
    record.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    record.extend_from_slice(payload);
    record.extend_from_slice(&masked_crc32c(payload).to_le_bytes());
    out.write_all(&record)
}

/// Reads the next record's payload: `Ok(None)` at the end of the input or at a record cut
/// short by a crash (as TensorBoard treats it); an error for a checksum that does not match.
pub(crate) fn read_record(input: &mut dyn Read) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 12];
    if !read_full(input, &mut header)? {
        return Ok(None);
    }
    let (len, crc) = header.split_at(8);
    if masked_crc32c(len) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "record length's checksum does not match",
        ));
    }
    let n = u64::from_le_bytes([
        len[0], len[1], len[2], len[3], len[4], len[5], len[6], len[7],
    ]);
    let n = usize::try_from(n)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "record length too large"))?;
    // Read through `take`, so that a damaged length cannot make us allocate it up front.
    let mut payload = Vec::new();
    let got = Read::take(&mut *input, n as u64).read_to_end(&mut payload)?;
    let mut crc = [0u8; 4];
    if got < n || !read_full(input, &mut crc)? {
        return Ok(None);
    }
    if masked_crc32c(&payload) != u32::from_le_bytes(crc) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "record payload's checksum does not match",
        ));
    }
    Ok(Some(payload))
}

/// Fills `buf`; `false` when the input ends first.
fn read_full(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_published_check_value() {
        // CRC-32C of "123456789" is 0xE3069283 (RFC 3720, B.4).
        assert_eq!(CASTAGNOLI.checksum(b"123456789"), 0xe306_9283);
        // TensorFlow's mask, `((crc >> 15) | (crc << 17)) + 0xa282ead8` (crc32c.h), worked out
        // by hand for that value.
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
    }

    #[test]
    fn records_round_trip_and_a_cut_tail_ends_the_stream() {
        let mut bytes = Vec::new();
        write_record(&mut bytes, b"first").unwrap_or_else(|e| panic!("{e}"));
        write_record(&mut bytes, b"second").unwrap_or_else(|e| panic!("{e}"));
        let cut = &bytes[..bytes.len() - 3];
        let mut input: &[u8] = cut;
        assert_eq!(
            read_record(&mut input).ok().flatten().as_deref(),
            Some(&b"first"[..])
        );
        assert!(matches!(read_record(&mut input), Ok(None)));
        let mut damaged = bytes.clone();
        damaged[14] ^= 1;
        let mut input: &[u8] = &damaged;
        assert!(read_record(&mut input).is_err());
    }
}
