//! Heap bytes per watch held by the watch table, counted by a wrapping global allocator:
//! `watchmem [N]` (default 1,000,000) sets N one-shot data watches on N distinct paths from
//! one connection (the shape of the hostile client), N child watches spread over 1,000
//! connections on 1,000 paths (a busy shared watch), and N/2 persistent watches, and prints the
//! bytes each watch costs; then drops the connection and prints what stays allocated.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use warren::watch::{Kind, WatchManager};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    // Paths shaped like a real tree: /app/service-N/instance-M (about 30 bytes).
    let paths: Vec<String> = (0..n).map(|i| format!("/app/service-{}/instance-{i}", i % 1000)).collect();

    let base = live();
    let mut m = WatchManager::default();
    for p in &paths {
        m.add(p, 1, Kind::Data);
    }
    let one_conn = live() - base;
    println!("{n} data watches, distinct paths, one connection: {} bytes per watch", one_conn / n as isize);
    m.remove_watcher(1);
    println!("after that connection closed: {} bytes still held", live() - base);
    drop(m);

    let base = live();
    let mut m = WatchManager::default();
    for i in 0..n {
        m.add(&paths[i % 1000], 10 + (i / 1000) as u64, Kind::Child);
    }
    println!(
        "{n} child watches on 1,000 paths from {} connections: {} bytes per watch",
        n / 1000,
        (live() - base) / n as isize
    );
    drop(m);

    let base = live();
    let mut m = WatchManager::default();
    for p in &paths[..n / 2] {
        m.add(p, 1, Kind::PersistentData);
        m.add(p, 1, Kind::PersistentChild);
    }
    println!("{} persistent watches, distinct paths: {} bytes per watch", n / 2, (live() - base) / (n / 2) as isize);
    drop(m);
}
