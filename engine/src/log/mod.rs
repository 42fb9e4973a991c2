//! The transaction log's pure parts, no I/O: its on-disk format (`format`) and the text of
//! `warren log-dump` (`dump`). Reading and writing segments lives in the shell (`server/wal.rs`).

pub mod dump;
pub mod format;
