//! Readers of Apache ZooKeeper's on-disk formats (3.4 to 3.9), for `warren import-zk`, and the
//! snapshot writer of `warren export-zk` (3.8's layout, uncompressed).
//!
//! Both kinds of file live in `version-2/` of ZooKeeper's dataDir (snapshots) and dataLogDir
//! (logs) and are named after a zxid in lower-case hex. Everything is jute (big-endian integers;
//! buffers and strings are an i32 length, -1 for null, then the bytes; vectors an i32 count).
//!
//! ```text
//! snapshot.<zxid>[.gz|.snappy]   (FileSnap; gz/snappy compress the whole stream below)
//!   FileHeader      magic i32 "ZKSN" (0x5a4b534e), version i32 (2), dbid i64
//!   sessions        count i32, then count × (id i64, timeout_ms i32)
//!   ACL cache       count i32, then count × (ref i64, vector<ACL{perms i32, scheme, id}>);
//!                   a node's acl ref -1 is world:anyone:cdrwa without an entry
//!   nodes           (path string, DataNode) until the path "/"; the root's path is "";
//!                   DataNode = data buffer, acl ref i64, StatPersisted{czxid i64, mzxid i64,
//!                   ctime i64, mtime i64, version i32, cversion i32, aversion i32,
//!                   ephemeralOwner i64, pzxid i64}
//!   seal            Adler32 of every byte before it, as i64; then the string "/"
//!   3.6+: digest    zxid i64, digestVersion i32, digest (i64; a hex string before version 2),
//!                   then a seal over everything before it
//!   3.9 (optional): lastProcessedZxid i64, then a seal
//!
//! log.<zxid>   (FileTxnLog; preallocated with zeros)
//!   FileHeader      magic i32 "ZKLG" (0x5a4b4c47), version i32 (2), dbid i64
//!   records         checksum i64 (Adler32 of the entry), entry buffer (i32 length + bytes),
//!                   end-of-record byte 'B'. A zero length (preallocated space), a short read or
//!                   a missing 'B' ends the file (a torn tail); a checksum mismatch is damage.
//!   entry           TxnHeader{clientId i64, cxid i32, zxid i64, time i64, type i32}, the txn
//!                   record of that type, then (3.6+) TxnDigest{version i32, treeDigest i64}
//! ```
//!
//! Txn records by type: create (1) and create2 (15) `CreateTxn{path, data, acl vector,
//! ephemeral bool, parentCVersion i32}` (3.3-era logs lack parentCVersion); createContainer
//! (19) `{path, data, acl, parentCVersion}`; createTTL (21) the same plus `ttl i64`; delete (2)
//! and deleteContainer (20) `{path}`; setData (5) and reconfig (16) `{path, data, version}`;
//! setACL (7) `{path, acl, version}`; check (13) `{path, version}`; multi (14) `vector<Txn{type
//! i32, data buffer}>`; createSession (-10) `{timeOut i32}`; closeSession (-11) `{vector<string>
//! paths2Delete}` (absent before 3.6); error (-1) `{err i32}`.
//!
//! Nothing here trusts a length or panics on bad bytes: every failure is a [`FormatError`] with
//! the byte offset (in the decompressed stream for a compressed snapshot).

pub mod export;
pub mod import;
pub mod snapshot;
pub mod txnlog;

use crate::proto::jute::DecodeError;

/// Damage found in a ZooKeeper file: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offset {offset}: {reason}")]
pub struct FormatError {
    pub offset: u64,
    pub reason: String,
}

impl FormatError {
    pub fn new(offset: usize, reason: impl Into<String>) -> FormatError {
        FormatError { offset: offset as u64, reason: reason.into() }
    }

    /// A jute decoding failure inside a region that starts at `base`.
    pub fn decode(base: usize, e: DecodeError) -> FormatError {
        let at = match &e {
            DecodeError::Truncated { offset, .. } | DecodeError::NegativeLength(_, offset) => *offset,
            DecodeError::InvalidUtf8(offset) => *offset,
            _ => 0,
        };
        FormatError::new(base + at, e.to_string())
    }
}

/// ZooKeeper's checksum for snapshots and log records (java.util.zip.Adler32).
pub fn adler32(bytes: &[u8]) -> u32 {
    let mut sum = Adler32::new();
    sum.update(bytes);
    sum.value()
}

/// Adler32 fed piece by piece: a snapshot's seals cover everything written before them.
#[derive(Debug, Clone, Copy)]
pub struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Adler32 {
    const MOD: u32 = 65521;

    pub fn new() -> Adler32 {
        Adler32 { a: 1, b: 0 }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        // 5552 is the largest n with 255·n·(n+1)/2 + (n+1)·(MOD-1) < 2^32: no overflow per block.
        for block in bytes.chunks(5552) {
            for &x in block {
                self.a += x as u32;
                self.b += self.a;
            }
            self.a %= Self::MOD;
            self.b %= Self::MOD;
        }
    }

    pub fn value(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

pub const SNAP_MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
pub const LOG_MAGIC: i32 = i32::from_be_bytes(*b"ZKLG");
/// The FileHeader version every ZooKeeper from 3.0 to 3.9 writes.
pub const FORMAT_VERSION: i32 = 2;

/// A file of ZooKeeper's `version-2/`: its kind, the zxid in its name, and its compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileName {
    Snapshot { zxid: i64, compression: Compression },
    Log { zxid: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
}

/// Parses `snapshot.<hex>[.gz|.snappy]` or `log.<hex>` (ZooKeeper's Util.getZxidFromName).
pub fn parse_name(name: &str) -> Option<FileName> {
    fn hex(s: &str) -> Option<i64> {
        u64::from_str_radix(s, 16).ok().map(|z| z as i64)
    }
    if let Some(rest) = name.strip_prefix("log.") {
        return hex(rest).map(|zxid| FileName::Log { zxid });
    }
    let rest = name.strip_prefix("snapshot.")?;
    let (z, compression) = if let Some(z) = rest.strip_suffix(".gz") {
        (z, Compression::Gzip)
    } else if let Some(z) = rest.strip_suffix(".snappy") {
        (z, Compression::Snappy)
    } else {
        (rest, Compression::None)
    };
    hex(z).map(|zxid| FileName::Snapshot { zxid, compression })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_matches_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        // Long enough to need the modulo between blocks.
        let big = vec![0xffu8; 100_000];
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &big {
            a = (a + x as u64) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!(adler32(&big), ((b << 16) | a) as u32);
    }

    #[test]
    fn adler32_fed_in_pieces_matches_one_pass() {
        let bytes: Vec<u8> = (0..30_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let mut sum = Adler32::new();
        let mut at = 0;
        for n in [0, 1, 5551, 5552, 5553, 3, 8_000] {
            sum.update(&bytes[at..at + n]);
            at += n;
        }
        sum.update(&bytes[at..]);
        assert_eq!(sum.value(), adler32(&bytes));
    }

    #[test]
    fn names_parse_as_zookeeper_does() {
        assert_eq!(parse_name("log.1a"), Some(FileName::Log { zxid: 0x1a }));
        assert_eq!(
            parse_name("snapshot.100000002"),
            Some(FileName::Snapshot { zxid: 0x1_0000_0002, compression: Compression::None })
        );
        assert_eq!(parse_name("snapshot.5.gz"), Some(FileName::Snapshot { zxid: 5, compression: Compression::Gzip }));
        assert_eq!(
            parse_name("snapshot.5.snappy"),
            Some(FileName::Snapshot { zxid: 5, compression: Compression::Snappy })
        );
        assert_eq!(parse_name("snapshot.xyz"), None);
        assert_eq!(parse_name("acceptedEpoch"), None);
    }
}
