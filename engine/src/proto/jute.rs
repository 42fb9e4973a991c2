//! Jute, ZooKeeper's serialization: big-endian fixed-width integers, length-prefixed
//! buffers and strings (length -1 means null), length-prefixed vectors.
//!
//! The reader never trusts a length: every length is checked against the bytes that remain
//! before anything is allocated, so a hostile 2 GiB prefix costs nothing.

use thiserror::Error;

/// Why a frame could not be decoded. Any of these closes the offending connection.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("frame truncated: needed {needed} bytes at offset {offset}, {remaining} remain")]
    Truncated { offset: usize, needed: usize, remaining: usize },
    #[error("negative length {0} at offset {1}")]
    NegativeLength(i32, usize),
    #[error("string at offset {0} is not valid UTF-8")]
    InvalidUtf8(usize),
    #[error("unknown opcode {0}")]
    UnknownOpcode(i32),
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
    #[error("invalid value: {0}")]
    Invalid(&'static str),
}

pub type DecodeResult<T> = Result<T, DecodeError>;

/// Cursor over one frame's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> DecodeResult<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    fn take(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated { offset: self.pos, needed: n, remaining: self.remaining() });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Exactly `N` raw bytes (no length prefix).
    pub fn fixed<const N: usize>(&mut self) -> DecodeResult<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    pub fn i32(&mut self) -> DecodeResult<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self) -> DecodeResult<i64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn bool(&mut self) -> DecodeResult<bool> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A length prefix: -1 is null (`None`); other negatives are malformed.
    fn len(&mut self) -> DecodeResult<Option<usize>> {
        let at = self.pos;
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::NegativeLength(n, at)),
            n => Ok(Some(n as usize)),
        }
    }

    /// A buffer; null decodes as empty, as ZooKeeper's server treats it.
    pub fn buffer(&mut self) -> DecodeResult<Vec<u8>> {
        Ok(self.opt_buffer()?.unwrap_or_default())
    }

    pub fn opt_buffer(&mut self) -> DecodeResult<Option<Vec<u8>>> {
        match self.len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }

    /// A string; null decodes as empty (paths are then rejected by validation).
    pub fn string(&mut self) -> DecodeResult<String> {
        match self.len()? {
            None => Ok(String::new()),
            Some(n) => {
                let at = self.pos;
                let b = self.take(n)?;
                std::str::from_utf8(b).map(str::to_owned).map_err(|_| DecodeError::InvalidUtf8(at))
            }
        }
    }

    /// A vector; null decodes as empty. Each element needs at least `min_elem` bytes, which
    /// bounds the element count before allocating.
    pub fn vec<T>(&mut self, min_elem: usize, mut f: impl FnMut(&mut Self) -> DecodeResult<T>) -> DecodeResult<Vec<T>> {
        let n = match self.len()? {
            None => return Ok(Vec::new()),
            Some(n) => n,
        };
        if n.saturating_mul(min_elem.max(1)) > self.remaining() {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n * min_elem.max(1),
                remaining: self.remaining(),
            });
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(f(self)?);
        }
        Ok(v)
    }

    pub fn strings(&mut self) -> DecodeResult<Vec<String>> {
        self.vec(4, |r| r.string())
    }
}

/// Appends jute-encoded values to a byte vector.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    /// A writer that reserves 4 bytes for the frame length, filled by `finish_frame`.
    pub fn framed() -> Self {
        Writer { buf: vec![0; 4] }
    }

    pub fn finish_frame(mut self) -> Vec<u8> {
        let n = (self.buf.len() - 4) as u32;
        self.buf[..4].copy_from_slice(&n.to_be_bytes());
        self.buf
    }

    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(v as u8);
        self
    }

    pub fn buffer(&mut self, v: &[u8]) -> &mut Self {
        self.i32(v.len() as i32);
        self.buf.extend_from_slice(v);
        self
    }

    pub fn opt_buffer(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.i32(-1),
            Some(b) => self.buffer(b),
        }
    }

    pub fn string(&mut self, v: &str) -> &mut Self {
        self.buffer(v.as_bytes())
    }

    pub fn strings(&mut self, v: &[String]) -> &mut Self {
        self.i32(v.len() as i32);
        for s in v {
            self.string(s);
        }
        self
    }
}
