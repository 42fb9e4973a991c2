//! Warren: a ZooKeeper-compatible coordination service.
//!
//! The pure core (no sockets, files, clocks, threads or global randomness) is `proto`,
//! `path`, `acl`, `tree`, `txn`, `prep`, `watch`, `session` and `machine`; `server` is the
//! glommio shell that feeds it events and performs the I/O it asks for.

pub mod acl;
pub mod admin;
pub mod admin_json;
pub mod build_info;
pub mod config;
pub mod header;
pub mod log;
pub mod machine;
pub mod metrics;
pub mod path;
#[cfg(feature = "planted-bugs")]
pub mod planted;
pub mod prep;
pub mod proto;
pub mod quorum;
pub mod sasl;
pub mod server;
pub mod session;
pub mod snap;
pub mod storage;
pub mod tls;
pub mod tree;
pub mod txn;
pub mod watch;
pub mod zkformat;
