//! Warren: a ZooKeeper-compatible coordination service.
