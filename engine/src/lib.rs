//! Warren: a ZooKeeper-compatible coordination service.
//!
//! The pure core (no sockets, files, clocks, threads or global randomness) is `proto`,
//! `path`, `acl`, `header`, `tree`, `txn`, `prep`, `watch`, `session`, `machine` and `quorum`,
//! with the on-disk formats `log::format` and `snap` (`snap::backup` also holds the HTTP
//! client of `warren backup` and `warren restore --admin`). `storage` is everything a server keeps on
//! disk, written against one interface (`storage::Disk`): the real files, or an in-memory disk
//! with faults for tests and the simulator. `server` is the glommio shell that feeds the core
//! events and performs the I/O it asks for.

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
