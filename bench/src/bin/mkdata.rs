//! Writes a Warren data directory holding a snapshot of N znodes, for start-up measurements:
//! `mkdata DIR N` creates DIR/version-2/snapshot.<zxid>.

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<usize>().ok())) else {
        eprintln!("usage: mkdata DIR N");
        std::process::exit(2);
    };
    let tree = warren_bench::tree_of(n);
    let mut w = warren::snap::SnapshotWriter::new(tree.last_zxid, Vec::new()).unwrap();
    for (p, node) in tree.iter() {
        w.add_node(p, node).unwrap();
    }
    w.add_sessions(&[]).unwrap();
    let image = w.finish(tree.last_zxid).unwrap();
    let dir = std::path::Path::new(&dir).join("version-2");
    std::fs::create_dir_all(&dir).unwrap();
    let path = warren::storage::snapshots::write(&warren::storage::RealDisk, &dir, tree.last_zxid, &image).unwrap();
    println!("{} ({} znodes, {} bytes)", path.display(), tree.node_count(), image.len());
}
