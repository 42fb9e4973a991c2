//! A ZooKeeper transaction log's bytes (`warren import-zk`): scanning rejects, ends at a torn
//! tail, or returns records, never panics; the records it returns replay onto a tree without
//! panicking either.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(scan) = warren::zkformat::txnlog::parse(data, warren::zkformat::import::zookeeper_passwd) {
        let mut tree = warren::tree::DataTree::new();
        for rec in scan.records {
            let _ = tree.apply(&rec.txn, &mut Vec::new());
        }
    }
});
