//! [`FaultyDisk`]: the storage interface in memory, failing the way disks fail, every choice
//! drawn from its own seeded generator so that a run is a function of its seed.
//!
//! The fault model:
//! - **Crash** ([`FaultyDisk::crash`]): a file's data keeps what was synced; each write since
//!   its last sync survives whole, not at all, or torn at any byte (a prefix of it), each write
//!   independently (page writeback has no order); with [`Faults::torn_writes`] off every unsynced
//!   write is lost. A name created, renamed or removed since its directory was last synced
//!   persists or not, in order (a journal replays a prefix of its metadata operations).
//! - **Bit flips** ([`FaultyDisk::flip_bit`], [`FaultyDisk::flip_random_bit`]): a bit of written
//!   data changes on the medium (a corrupted or misdirected sector), seen by every later read.
//! - **Errors**: EIO on write or sync, ENOSPC on write past [`Faults::capacity`], at the rates of
//!   [`Faults`] or on demand ([`FaultyDisk::fail_next`]). A failed write changes nothing. A
//!   failed sync makes nothing durable, and what it was to make durable never becomes durable
//!   (Linux marks the pages clean after a writeback error): a later sync succeeds without it.
//! - **Slow sync**: each sync draws a latency ([`FaultyDisk::last_sync_us`]) for a caller with a
//!   clock (the simulator) to wait; occasionally a slow one.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};

use super::Disk;

/// How often faults happen (rates in parts per million of operations).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Unsynced writes may survive a crash whole or torn; otherwise they are all lost.
    pub torn_writes: bool,
    pub write_error_ppm: u32,
    pub sync_error_ppm: u32,
    pub slow_sync_ppm: u32,
    /// Bytes of file data the disk holds; a write past it fails with ENOSPC.
    pub capacity: Option<u64>,
}

/// Operations [`FaultyDisk::fail_next`] can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Write,
    Sync,
    SyncDir,
    Rename,
    Remove,
}

/// What the faults did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    pub crashes: u64,
    pub writes_lost: u64,
    pub writes_torn: u64,
    pub writes_kept: u64,
    pub names_lost: u64,
    pub bit_flips: u64,
    pub errors: u64,
    pub slow_syncs: u64,
}

#[derive(Debug, Clone)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    Len(u64),
}

#[derive(Debug, Clone, Default)]
struct Inode {
    /// What reads see (the page cache).
    data: Vec<u8>,
    /// What is on the medium for certain.
    durable: Vec<u8>,
    /// Changes since the last sync, oldest first.
    pending: Vec<Pending>,
}

#[derive(Debug, Clone)]
enum DirOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
    Rename(PathBuf, PathBuf, u64),
}

#[derive(Default)]
struct State {
    rng: u64,
    faults: Faults,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    /// Unsynced name changes per directory, oldest first.
    dir_ops: BTreeMap<PathBuf, Vec<DirOp>>,
    dirs: BTreeSet<PathBuf>,
    fail_next: VecDeque<(Op, i32)>,
    /// Operations left before the process "dies": from then on every operation fails until
    /// [`FaultyDisk::crash`].
    crash_countdown: Option<u64>,
    dead: bool,
    last_sync_us: u64,
    stats: FaultStats,
}

/// An in-memory disk with faults; see the module documentation.
pub struct FaultyDisk {
    s: RefCell<State>,
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn os_error(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", p.display()))
}

fn apply(buf: &mut Vec<u8>, p: &Pending) {
    match p {
        Pending::Len(l) => buf.resize(*l as usize, 0),
        Pending::Write { offset, data } => write_into(buf, *offset, data),
    }
}

/// A name change made durable.
fn apply_dir_op(names: &mut BTreeMap<PathBuf, u64>, op: DirOp) {
    match op {
        DirOp::Link(p, i) => {
            names.insert(p, i);
        }
        DirOp::Unlink(p) => {
            names.remove(&p);
        }
        DirOp::Rename(from, to, i) => {
            names.remove(&from);
            names.insert(to, i);
        }
    }
}

fn write_into(buf: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let (o, end) = (offset as usize, offset as usize + data.len());
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[o..end].copy_from_slice(data);
}

impl State {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    fn chance_ppm(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.below(1_000_000) < ppm as u64
    }

    /// An error for `op`, if one is due: the process has died ([`FaultyDisk::crash_after`]:
    /// the operation does nothing at all), or an injected error.
    fn injected(&mut self, op: Op) -> Option<io::Error> {
        self.died().or_else(|| self.failure(op))
    }

    fn died(&mut self) -> Option<io::Error> {
        match self.crash_countdown {
            _ if self.dead => {}
            Some(0) => self.dead = true,
            Some(n) => {
                self.crash_countdown = Some(n - 1);
                return None;
            }
            None => return None,
        }
        Some(io::Error::other("the process died (a crash is pending)"))
    }

    fn failure(&mut self, op: Op) -> Option<io::Error> {
        if let Some(i) = self.fail_next.iter().position(|(o, _)| *o == op) {
            let (_, errno) = self.fail_next.remove(i).expect("present");
            self.stats.errors += 1;
            return Some(os_error(errno));
        }
        let ppm = match op {
            Op::Write => self.faults.write_error_ppm,
            Op::Sync => self.faults.sync_error_ppm,
            _ => 0,
        };
        if self.chance_ppm(ppm) {
            self.stats.errors += 1;
            return Some(os_error(libc::EIO));
        }
        None
    }

    fn inode_of(&self, p: &Path) -> io::Result<u64> {
        self.names.get(p).copied().ok_or_else(|| not_found(p))
    }

    fn dir_must_exist(&self, p: &Path) -> io::Result<()> {
        let d = parent(p);
        if self.dirs.contains(&d) {
            Ok(())
        } else {
            Err(not_found(&d))
        }
    }

    fn used_bytes(&self) -> u64 {
        self.names.values().filter_map(|i| self.inodes.get(i)).map(|n| n.data.len() as u64).sum()
    }

    fn record(&mut self, p: &Path, op: DirOp) {
        self.dir_ops.entry(parent(p)).or_default().push(op);
    }
}

impl FaultyDisk {
    pub fn new(seed: u64, faults: Faults) -> FaultyDisk {
        FaultyDisk { s: RefCell::new(State { rng: seed, faults, ..State::default() }) }
    }

    /// Changes the fault rates from now on (the simulator injects errors only in its fault
    /// phase).
    pub fn set_faults(&self, faults: Faults) {
        self.s.borrow_mut().faults = faults;
    }

    /// Makes the next `op` fail with `errno` (libc::EIO, libc::ENOSPC, ...).
    pub fn fail_next(&self, op: Op, errno: i32) {
        self.s.borrow_mut().fail_next.push_back((op, errno));
    }

    pub fn stats(&self) -> FaultStats {
        self.s.borrow().stats.clone()
    }

    /// The latency the last sync took, in microseconds.
    pub fn last_sync_us(&self) -> u64 {
        self.s.borrow().last_sync_us
    }

    /// A uniformly drawn number below `n` from the disk's generator (for callers that want
    /// their choices in the same seeded sequence).
    pub fn draw(&self, n: u64) -> u64 {
        self.s.borrow_mut().below(n)
    }

    /// The process dies after `ops` more changing operations: the next one and every later
    /// one fails until [`FaultyDisk::crash`], so a crash can land between any two of them.
    pub fn crash_after(&self, ops: u64) {
        self.s.borrow_mut().crash_countdown = Some(ops);
    }

    /// Power loss: only durable data and names remain, plus what the fault model lets survive.
    pub fn crash(&self) {
        let s = &mut *self.s.borrow_mut();
        s.stats.crashes += 1;
        let torn = s.faults.torn_writes;
        // Names: a prefix of each directory's unsynced operations persists.
        let dir_ops = std::mem::take(&mut s.dir_ops);
        for ops in dir_ops.into_values() {
            let keep = if torn { s.below(ops.len() as u64 + 1) as usize } else { 0 };
            s.stats.names_lost += (ops.len() - keep) as u64;
            for op in ops.into_iter().take(keep) {
                apply_dir_op(&mut s.durable_names, op);
            }
        }
        // Data: each unsynced change survives whole, torn, or not at all.
        let live: BTreeSet<u64> = s.durable_names.values().copied().collect();
        let ids: Vec<u64> = s.inodes.keys().copied().collect();
        for id in ids {
            if !live.contains(&id) {
                s.inodes.remove(&id);
                continue;
            }
            let mut node = s.inodes.remove(&id).expect("present");
            for p in std::mem::take(&mut node.pending) {
                let fate = if torn { s.below(3) } else { 0 };
                match (fate, &p) {
                    (0, _) => s.stats.writes_lost += 1,
                    (2, Pending::Write { offset, data }) if !data.is_empty() => {
                        s.stats.writes_torn += 1;
                        let cut = s.below(data.len() as u64) as usize;
                        write_into(&mut node.durable, *offset, &data[..cut]);
                    }
                    _ => {
                        s.stats.writes_kept += 1;
                        apply(&mut node.durable, &p);
                    }
                }
            }
            node.data = node.durable.clone();
            s.inodes.insert(id, node);
        }
        s.names = s.durable_names.clone();
        s.fail_next.clear();
        s.crash_countdown = None;
        s.dead = false;
    }

    /// Flips bit `bit` (0..8) of byte `offset` of `path`, on the medium and in what reads see.
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> io::Result<()> {
        let s = &mut *self.s.borrow_mut();
        let id = s.inode_of(path)?;
        let node = s.inodes.get_mut(&id).expect("named inode exists");
        let o = offset as usize;
        if o >= node.data.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "offset past the end of the file"));
        }
        node.data[o] ^= 1 << (bit & 7);
        if o < node.durable.len() {
            node.durable[o] ^= 1 << (bit & 7);
        }
        s.stats.bit_flips += 1;
        Ok(())
    }

    /// Flips a random bit of written data (up to the last non-zero byte) of a random file whose
    /// name starts with `prefix` (empty: any file); returns where, or None if no file has any.
    pub fn flip_random_bit(&self, prefix: &str) -> Option<(PathBuf, u64)> {
        let candidates: Vec<(PathBuf, usize)> = {
            let s = self.s.borrow();
            s.names
                .iter()
                .filter(|(p, _)| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)))
                .filter_map(|(p, i)| {
                    let end = s.inodes[i].data.iter().rposition(|&b| b != 0)? + 1;
                    Some((p.clone(), end))
                })
                .collect()
        };
        if candidates.is_empty() {
            return None;
        }
        let (path, end) = candidates[self.draw(candidates.len() as u64) as usize].clone();
        let offset = self.draw(end as u64);
        let bit = self.draw(8) as u8;
        self.flip_bit(&path, offset, bit).ok()?;
        Some((path, offset))
    }
}

impl Disk for FaultyDisk {
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.s.borrow();
        if !s.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.s.borrow();
        let id = s.inode_of(path)?;
        Ok(s.inodes[&id].data.clone())
    }

    fn create(&self, path: &Path, len: u64) -> io::Result<()> {
        let s = &mut *self.s.borrow_mut();
        s.dir_must_exist(path)?;
        if let Some(e) = s.injected(Op::Create) {
            return Err(e);
        }
        if s.faults.capacity.is_some_and(|c| s.used_bytes() + len > c) {
            s.stats.errors += 1;
            return Err(os_error(libc::ENOSPC));
        }
        let id = s.next_inode;
        s.next_inode += 1;
        s.inodes
            .insert(id, Inode { data: vec![0; len as usize], durable: Vec::new(), pending: vec![Pending::Len(len)] });
        s.names.insert(path.to_path_buf(), id);
        s.record(path, DirOp::Link(path.to_path_buf(), id));
        Ok(())
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        let s = &mut *self.s.borrow_mut();
        let id = s.inode_of(path)?;
        if let Some(e) = s.injected(Op::Write) {
            return Err(e);
        }
        let grow = (offset + data.len() as u64).saturating_sub(s.inodes[&id].data.len() as u64);
        if s.faults.capacity.is_some_and(|c| s.used_bytes() + grow > c) {
            s.stats.errors += 1;
            return Err(os_error(libc::ENOSPC));
        }
        let node = s.inodes.get_mut(&id).expect("named inode exists");
        write_into(&mut node.data, offset, data);
        node.pending.push(Pending::Write { offset, data: data.to_vec() });
        Ok(())
    }

    fn sync(&self, path: &Path) -> io::Result<()> {
        let s = &mut *self.s.borrow_mut();
        let id = s.inode_of(path)?;
        let slow = s.chance_ppm(s.faults.slow_sync_ppm);
        s.last_sync_us = if slow {
            s.stats.slow_syncs += 1;
            50_000 + s.below(450_000)
        } else {
            100 + s.below(2_900)
        };
        if let Some(e) = s.died() {
            return Err(e);
        }
        let failed = s.failure(Op::Sync);
        let node = s.inodes.get_mut(&id).expect("named inode exists");
        if let Some(e) = failed {
            // What this sync was to make durable never will be (the pages are marked clean).
            node.pending.clear();
            return Err(e);
        }
        for p in std::mem::take(&mut node.pending) {
            apply(&mut node.durable, &p);
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let s = &mut *self.s.borrow_mut();
        let id = s.inode_of(from)?;
        s.dir_must_exist(to)?;
        if let Some(e) = s.injected(Op::Rename) {
            return Err(e);
        }
        s.names.remove(from);
        s.names.insert(to.to_path_buf(), id);
        s.record(to, DirOp::Rename(from.to_path_buf(), to.to_path_buf(), id));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let s = &mut *self.s.borrow_mut();
        s.inode_of(path)?;
        if let Some(e) = s.injected(Op::Remove) {
            return Err(e);
        }
        s.names.remove(path);
        s.record(path, DirOp::Unlink(path.to_path_buf()));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let s = &mut *self.s.borrow_mut();
        if !s.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        if let Some(e) = s.injected(Op::SyncDir) {
            return Err(e);
        }
        for op in s.dir_ops.remove(dir).unwrap_or_default() {
            apply_dir_op(&mut s.durable_names, op);
        }
        Ok(())
    }

    /// Directories are durable at once (the server creates them once, before anything else).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let s = &mut *self.s.borrow_mut();
        let mut d = Some(dir);
        while let Some(x) = d {
            s.dirs.insert(x.to_path_buf());
            d = x.parent();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(seed: u64, torn: bool) -> (FaultyDisk, PathBuf) {
        let d = FaultyDisk::new(seed, Faults { torn_writes: torn, ..Faults::default() });
        let dir = PathBuf::from("/data");
        d.create_dir_all(&dir).expect("dir");
        (d, dir)
    }

    #[test]
    fn synced_data_and_names_survive_a_crash_and_unsynced_ones_do_not() {
        let (d, dir) = disk(1, false);
        let a = dir.join("a");
        d.create(&a, 0).expect("create");
        d.write_at(&a, 0, b"durable").expect("write");
        d.sync(&a).expect("sync");
        d.sync_dir(&dir).expect("sync dir");
        d.write_at(&a, 7, b" lost").expect("write");
        let b = dir.join("b");
        d.create(&b, 0).expect("create");
        d.sync(&b).expect("sync");
        assert_eq!(d.read(&a).expect("read"), b"durable lost");
        d.crash();
        assert_eq!(d.read(&a).expect("read"), b"durable");
        let e = d.read(&b).expect_err("b's name was never synced");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(d.list(&dir).expect("list"), vec!["a".to_string()]);
    }

    #[test]
    fn torn_writes_keep_a_prefix_at_any_byte() {
        let mut cuts = BTreeSet::new();
        for seed in 0..400 {
            let (d, dir) = disk(seed, true);
            let a = dir.join("a");
            d.create(&a, 0).expect("create");
            d.sync(&a).expect("sync");
            d.sync_dir(&dir).expect("sync dir");
            d.write_at(&a, 0, b"0123456789").expect("write");
            d.crash();
            let got = d.read(&a).expect("read");
            assert!(b"0123456789".starts_with(&got), "{got:?} is not a prefix");
            cuts.insert(got.len());
        }
        assert_eq!(cuts, (0..=10).collect(), "every cut point (and whole, and none) happens");
    }

    #[test]
    fn a_failed_sync_never_makes_its_data_durable() {
        let (d, dir) = disk(2, false);
        let a = dir.join("a");
        d.create(&a, 0).expect("create");
        d.sync(&a).expect("sync");
        d.sync_dir(&dir).expect("sync dir");
        d.write_at(&a, 0, b"x").expect("write");
        d.fail_next(Op::Sync, libc::EIO);
        assert_eq!(d.sync(&a).expect_err("fails").raw_os_error(), Some(libc::EIO));
        d.sync(&a).expect("a later sync succeeds");
        assert_eq!(d.read(&a).expect("read"), b"x", "the page cache still has it");
        d.crash();
        assert_eq!(d.read(&a).expect("read"), b"", "but it never reached the medium");
    }

    #[test]
    fn writes_past_capacity_fail_with_enospc_and_change_nothing() {
        let d = FaultyDisk::new(3, Faults { capacity: Some(8), ..Faults::default() });
        let dir = PathBuf::from("/d");
        d.create_dir_all(&dir).expect("dir");
        let a = dir.join("a");
        d.create(&a, 4).expect("create");
        d.write_at(&a, 0, b"abcd").expect("fits");
        let e = d.write_at(&a, 4, b"efghi").expect_err("does not fit");
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(d.read(&a).expect("read"), b"abcd");
    }

    #[test]
    fn a_bit_flip_is_seen_by_reads_and_survives_a_crash() {
        let (d, dir) = disk(4, false);
        let a = dir.join("a");
        d.create(&a, 0).expect("create");
        d.write_at(&a, 0, &[0x10, 0x20]).expect("write");
        d.sync(&a).expect("sync");
        d.sync_dir(&dir).expect("sync dir");
        d.flip_bit(&a, 1, 0).expect("flip");
        assert_eq!(d.read(&a).expect("read"), [0x10, 0x21]);
        d.crash();
        assert_eq!(d.read(&a).expect("read"), [0x10, 0x21]);
        assert_eq!(d.flip_random_bit("a").map(|(p, _)| p), Some(a));
    }

    #[test]
    fn a_sync_draws_a_latency_and_slow_ones_at_their_rate() {
        let latencies = |slow_sync_ppm| {
            let d = FaultyDisk::new(6, Faults { slow_sync_ppm, ..Faults::default() });
            let dir = PathBuf::from("/d");
            d.create_dir_all(&dir).expect("dir");
            let a = dir.join("a");
            d.create(&a, 0).expect("create");
            (0..200)
                .map(|_| {
                    d.sync(&a).expect("sync");
                    d.last_sync_us()
                })
                .collect::<Vec<u64>>()
        };
        assert!(latencies(0).iter().all(|&us| (100..3_000).contains(&us)));
        assert!(latencies(1_000_000).iter().all(|&us| (50_000..500_000).contains(&us)));
        let some = latencies(100_000).iter().filter(|&&us| us >= 50_000).count();
        assert!((5..60).contains(&some), "{some} slow syncs of 200 at 10%");
    }

    #[test]
    fn the_same_seed_makes_the_same_crash() {
        let run = |seed| {
            let (d, dir) = disk(seed, true);
            for i in 0..20u8 {
                let p = dir.join(format!("f{i}"));
                d.create(&p, 0).expect("create");
                d.write_at(&p, 0, &[i; 64]).expect("write");
                if i % 3 == 0 {
                    d.sync(&p).expect("sync");
                }
            }
            d.crash();
            let names = d.list(&dir).expect("list");
            names.iter().map(|n| (n.clone(), d.read(&dir.join(n)).expect("read"))).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
