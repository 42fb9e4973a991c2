//! Reads length-prefixed frames from a socket through one reusable buffer, so a burst of
//! pipelined requests costs one read syscall, not two per request.

use futures_lite::{AsyncRead, AsyncReadExt};
use std::io;

#[derive(Debug)]
pub enum FrameError {
    /// The peer closed the connection (cleanly, between frames).
    Eof,
    Io(io::Error),
    /// ZooKeeper's "Len error": negative, or over jute.maxbuffer.
    BadLength(i64),
}

pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

const INITIAL: usize = 64 * 1024;

impl FrameReader {
    pub fn new() -> Self {
        FrameReader { buf: vec![0; INITIAL], start: 0, end: 0 }
    }

    /// Makes at least `n` bytes available from `start`.
    async fn fill<R: AsyncRead + Unpin>(&mut self, rd: &mut R, n: usize) -> Result<(), FrameError> {
        while self.end - self.start < n {
            if self.start > 0 && (self.buf.len() - self.start < n || self.start == self.end) {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() < n {
                self.buf.resize(n, 0);
            }
            let got = match rd.read(&mut self.buf[self.end..]).await {
                Ok(got) => got,
                // A TLS peer that closed its socket without close_notify (most ZooKeeper
                // clients do): between frames this is an ordinary end, as in plaintext;
                // inside a frame it stays an error below.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(FrameError::Io(e)),
            };
            if got == 0 {
                return Err(if self.end == self.start {
                    FrameError::Eof
                } else {
                    FrameError::Io(io::ErrorKind::UnexpectedEof.into())
                });
            }
            self.end += got;
        }
        Ok(())
    }

    /// The first 4 bytes of a connection, without consuming them.
    pub async fn peek4<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> Result<[u8; 4], FrameError> {
        self.fill(rd, 4).await?;
        let b = &self.buf[self.start..self.start + 4];
        Ok([b[0], b[1], b[2], b[3]])
    }

    /// The next frame's body (without its length prefix).
    pub async fn next<R: AsyncRead + Unpin>(&mut self, rd: &mut R, max_len: u32) -> Result<&[u8], FrameError> {
        // Give back memory after an unusually large frame, once nothing is buffered.
        if self.start == self.end && self.buf.len() > 4 * INITIAL {
            self.buf = vec![0; INITIAL];
            self.start = 0;
            self.end = 0;
        }
        self.fill(rd, 4).await?;
        let b = &self.buf[self.start..self.start + 4];
        let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if len < 0 || len as u32 > max_len {
            return Err(FrameError::BadLength(len as i64));
        }
        let total = 4 + len as usize;
        self.fill(rd, total).await?;
        let frame_start = self.start + 4;
        self.start += total;
        Ok(&self.buf[frame_start..frame_start + len as usize])
    }
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::new()
    }
}
