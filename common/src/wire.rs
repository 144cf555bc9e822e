//! The Confluent wire format: a zero magic byte, the schema id as a 4-byte
//! big-endian integer, then the Avro binary body.
use thiserror::Error;

/// The first byte of every Confluent-framed record.
pub const MAGIC_BYTE: u8 = 0;
/// Length of the magic byte plus the schema id.
pub const HEADER_LEN: usize = 5;

/// Why a record is not Confluent-framed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    /// Fewer than five bytes.
    #[error("record of {0} bytes is too short for the Confluent wire format (5-byte header)")]
    TooShort(usize),
    /// The first byte is not zero.
    #[error("record starts with byte {0:#04x}, not the Confluent magic byte 0x00")]
    BadMagic(u8),
}

/// Writes the header for `schema_id` followed by `body` into `out`.
pub fn frame_into(schema_id: u32, body: &[u8], out: &mut Vec<u8>) {
    out.reserve(HEADER_LEN + body.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(body);
}

/// Splits a framed record into its schema id and Avro body.
pub fn unframe(record: &[u8]) -> Result<(u32, &[u8]), WireError> {
    if record.len() < HEADER_LEN {
        return Err(WireError::TooShort(record.len()));
    }
    if record[0] != MAGIC_BYTE {
        return Err(WireError::BadMagic(record[0]));
    }
    let id = u32::from_be_bytes([record[1], record[2], record[3], record[4]]);
    Ok((id, &record[HEADER_LEN..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_record_unframes_to_its_schema_id_and_body() {
        let mut out = Vec::new();
        frame_into(0x0102_0304, b"avro", &mut out);
        assert_eq!(out, [0, 1, 2, 3, 4, b'a', b'v', b'r', b'o']);
        assert_eq!(unframe(&out), Ok((0x0102_0304, &b"avro"[..])));
    }

    #[test]
    fn short_record_is_refused() {
        assert_eq!(unframe(&[0, 0, 1]), Err(WireError::TooShort(3)));
    }

    #[test]
    fn record_without_magic_byte_is_refused() {
        assert_eq!(unframe(b"{\"json\":1}"), Err(WireError::BadMagic(b'{')));
    }
}
