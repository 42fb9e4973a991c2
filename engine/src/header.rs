//! The 32-byte header that starts every log segment and snapshot file, encoded and checked
//! over bytes (no I/O). Layout, little-endian:
//!
//! ```text
//!  0  magic       8 bytes  identifies the file kind ("WRNLOG01", "WRNSNAP1")
//!  8  version     u32      format version of that kind
//! 12  reserved    u32      0
//! 16  zxid        i64      first zxid of a log segment / start zxid of a snapshot
//! 24  reserved    u32      0
//! 28  crc         u32      crc32c of bytes 0..28
//! ```

pub const HEADER_LEN: usize = 32;

const _: () = assert!(HEADER_LEN == 8 + 4 + 4 + 8 + 4 + 4);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("file is shorter than its {HEADER_LEN}-byte header")]
    Short,
    #[error("bad magic: not the expected kind of Warren file")]
    BadMagic,
    #[error("unsupported format version {0}")]
    Version(u32),
    #[error("header checksum mismatch")]
    Checksum,
}

pub fn encode(magic: &[u8; 8], version: u32, zxid: i64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(magic);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h[16..24].copy_from_slice(&zxid.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks magic, checksum and version; returns the zxid.
pub fn decode(b: &[u8], magic: &[u8; 8], version: u32) -> Result<i64, HeaderError> {
    if b.len() < HEADER_LEN {
        return Err(HeaderError::Short);
    }
    if &b[0..8] != magic {
        return Err(HeaderError::BadMagic);
    }
    let crc = u32::from_le_bytes(b[28..32].try_into().expect("4 bytes"));
    if crc != crc32c::crc32c(&b[0..28]) {
        return Err(HeaderError::Checksum);
    }
    let v = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if v != version {
        return Err(HeaderError::Version(v));
    }
    Ok(i64::from_le_bytes(b[16..24].try_into().expect("8 bytes")))
}
