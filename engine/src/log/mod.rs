//! The transaction log: its on-disk format (`format`) and the group-commit policy. The I/O
//! lives in the shell (`server/wal.rs`).

pub mod dump;
pub mod format;
