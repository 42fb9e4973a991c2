//! A ZooKeeper snapshot's bytes (`warren import-zk` reads them from another program's disk):
//! parsing rejects or reads, never panics, and nothing it reads back is trusted blind (a
//! snapshot that parses must also build a tree or be refused with a reason).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = warren::zkformat::snapshot::looks_complete(data);
    if let Ok(s) = warren::zkformat::snapshot::parse(data) {
        let nodes = s.nodes.into_iter().map(|n| (n.path, n.data, n.acl, n.stat));
        let _ = warren::tree::DataTree::from_nodes(nodes, 0);
    }
});
