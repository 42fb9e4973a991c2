//! Watches: one-shot data/exist and child watches, persistent and persistent-recursive
//! watches (addWatch), keyed by the connection that set them. Pure, no I/O.
//!
//! Trigger rules follow ZooKeeper's WatchManager: NodeCreated and NodeDataChanged go to data
//! watchers; NodeDeleted to data and child watchers of the node; NodeChildrenChanged to child
//! watchers of the parent. Persistent watchers see all four on their path; recursive watchers
//! see everything but NodeChildrenChanged on their path and below. A watcher gets at most one
//! event per trigger.
//!
//! As in ZooKeeper 3.8, a persistent or recursive watch is two entries, one among the data
//! watches and one among the child watches, and removeWatches / checkWatches name those two
//! families: Children (1), Data (2) or Any (3). Removing the Data watches of a path leaves a
//! persistent watch its child half (NodeChildrenChanged, NodeDeleted) and a recursive watch
//! its child half, which sees only NodeDeleted on its path and below. 3.8 knows no other
//! watcher type (3.9's Persistent 4 and PersistentRecursive 5 are a MarshallingError there,
//! and here).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use crate::path;
use crate::proto::event;

pub type WatcherId = u64;

/// removeWatches/checkWatches watcher types (ZooKeeper's Watcher.WatcherType).
pub mod watcher_type {
    pub const CHILDREN: i32 = 1;
    pub const DATA: i32 = 2;
    pub const ANY: i32 = 3;
}

/// addWatch modes.
pub mod add_watch_mode {
    pub const PERSISTENT: i32 = 0;
    pub const PERSISTENT_RECURSIVE: i32 = 1;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Data,
    Child,
    /// The data half of a persistent watch: NodeCreated, NodeDataChanged, NodeDeleted.
    PersistentData,
    /// The child half of a persistent watch: NodeChildrenChanged, NodeDeleted.
    PersistentChild,
    /// The data half of a recursive watch: NodeCreated, NodeDataChanged, NodeDeleted on the
    /// path and below.
    Recursive,
    /// The child half of a recursive watch: NodeDeleted on the path and below (a recursive
    /// watch never sees NodeChildrenChanged).
    RecursiveChild,
}

impl Kind {
    /// The entries addWatch with `mode` sets, or None for a mode ZooKeeper 3.8 does not know.
    pub fn for_add_watch_mode(mode: i32) -> Option<&'static [Kind]> {
        match mode {
            add_watch_mode::PERSISTENT => Some(&[Kind::PersistentData, Kind::PersistentChild]),
            add_watch_mode::PERSISTENT_RECURSIVE => Some(&[Kind::Recursive, Kind::RecursiveChild]),
            _ => None,
        }
    }
}

impl Kind {
    const ALL: [Kind; 6] =
        [Kind::Data, Kind::Child, Kind::PersistentData, Kind::PersistentChild, Kind::Recursive, Kind::RecursiveChild];

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of `Kind`s, one bit each.
type Kinds = u8;

fn mask(kinds: &[Kind]) -> Kinds {
    kinds.iter().fold(0, |m, k| m | k.bit())
}

const RECURSIVE: Kinds = 1 << Kind::Recursive as u8 | 1 << Kind::RecursiveChild as u8;

/// The watchers of one path and the kinds each holds there. Most paths have a few watchers
/// (a vector, 16 bytes each); a path many connections watch becomes a map, so that removing
/// one watcher stays O(1).
#[derive(Debug)]
enum Watchers {
    Few(Vec<(WatcherId, Kinds)>),
    /// Boxed: keeps the enum at a vector's size (the map is rare).
    Many(Box<HashMap<WatcherId, Kinds>>),
}

const FEW_MAX: usize = 16;

impl Watchers {
    fn get(&self, w: WatcherId) -> Kinds {
        match self {
            Watchers::Few(v) => v.iter().find(|(x, _)| *x == w).map_or(0, |(_, k)| *k),
            Watchers::Many(m) => m.get(&w).copied().unwrap_or(0),
        }
    }

    /// Sets `w`'s kinds here (0 removes it).
    fn set(&mut self, w: WatcherId, kinds: Kinds) {
        match self {
            Watchers::Few(v) => match v.iter().position(|(x, _)| *x == w) {
                Some(i) if kinds == 0 => {
                    v.swap_remove(i);
                }
                Some(i) => v[i].1 = kinds,
                None if kinds == 0 => {}
                None if v.len() < FEW_MAX => v.push((w, kinds)),
                None => {
                    let mut m: HashMap<WatcherId, Kinds> = v.drain(..).collect();
                    m.insert(w, kinds);
                    *self = Watchers::Many(Box::new(m));
                }
            },
            Watchers::Many(m) => {
                if kinds == 0 {
                    m.remove(&w);
                } else {
                    m.insert(w, kinds);
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Watchers::Few(v) => v.is_empty(),
            Watchers::Many(m) => m.is_empty(),
        }
    }

    fn for_each(&self, mut f: impl FnMut(WatcherId, Kinds)) {
        match self {
            Watchers::Few(v) => v.iter().for_each(|&(w, k)| f(w, k)),
            Watchers::Many(m) => m.iter().for_each(|(&w, &k)| f(w, k)),
        }
    }
}

/// What one watcher (connection) holds: the paths it watches and how many watches in all.
#[derive(Debug, Default)]
struct Held {
    paths: HashSet<Arc<str>>,
    count: usize,
}

/// The watch table. A path's text is stored once (shared by the path's entry and by each of
/// its watchers' sets); measured by `bench/src/bin/watchmem.rs` and in `results/watches/`.
#[derive(Default, Debug)]
pub struct WatchManager {
    by_path: HashMap<Arc<str>, Watchers>,
    by_watcher: HashMap<WatcherId, Held>,
    /// Entries holding a recursive kind: when 0, triggers skip the walk up the ancestors.
    recursive_count: usize,
    watch_count: usize,
}

impl WatchManager {
    pub fn add(&mut self, path: &str, watcher: WatcherId, kind: Kind) {
        let key: Arc<str> = match self.by_path.get_key_value(path) {
            Some((k, _)) => k.clone(),
            None => Arc::from(path),
        };
        // Capacity 1: most paths have one watcher (a vector's first growth would allocate 4).
        let entry = self.by_path.entry(key.clone()).or_insert_with(|| Watchers::Few(Vec::with_capacity(1)));
        let old = entry.get(watcher);
        if old & kind.bit() != 0 {
            return;
        }
        entry.set(watcher, old | kind.bit());
        if old & RECURSIVE == 0 && kind.bit() & RECURSIVE != 0 {
            self.recursive_count += 1;
        }
        self.watch_count += 1;
        let held = self.by_watcher.entry(watcher).or_default();
        held.count += 1;
        if old == 0 {
            held.paths.insert(key);
        }
    }

    /// Clears `kinds` of `watcher` on `path`; returns the kinds that were set.
    fn clear(&mut self, path: &str, watcher: WatcherId, kinds: Kinds) -> Kinds {
        let Some(entry) = self.by_path.get_mut(path) else {
            return 0;
        };
        let old = entry.get(watcher);
        let gone = old & kinds;
        if gone == 0 {
            return 0;
        }
        let new = old & !kinds;
        entry.set(watcher, new);
        if entry.is_empty() {
            self.by_path.remove(path);
        }
        if old & RECURSIVE != 0 && new & RECURSIVE == 0 {
            self.recursive_count -= 1;
        }
        let n = gone.count_ones() as usize;
        self.watch_count -= n;
        if let Some(held) = self.by_watcher.get_mut(&watcher) {
            held.count -= n;
            if new == 0 {
                held.paths.remove(path);
            }
            if held.count == 0 {
                self.by_watcher.remove(&watcher);
            }
        }
        self.shrink_if_sparse();
        gone
    }

    /// Hash tables keep their capacity when emptied: after a watcher with a million watches
    /// leaves, give the memory back.
    fn shrink_if_sparse(&mut self) {
        if self.by_path.capacity() > 1024 && self.by_path.len() < self.by_path.capacity() / 8 {
            self.by_path.shrink_to_fit();
        }
        if self.by_watcher.capacity() > 1024 && self.by_watcher.len() < self.by_watcher.capacity() / 8 {
            self.by_watcher.shrink_to_fit();
        }
    }

    /// The entries a removeWatches / checkWatches watcher type names; None for a type ZooKeeper
    /// 3.8 does not know (the caller answers MarshallingError, as 3.8 does).
    pub fn kinds_for(watcher_type: i32) -> Option<&'static [Kind]> {
        match watcher_type {
            watcher_type::CHILDREN => Some(&[Kind::Child, Kind::PersistentChild, Kind::RecursiveChild]),
            watcher_type::DATA => Some(&[Kind::Data, Kind::PersistentData, Kind::Recursive]),
            watcher_type::ANY => Some(&Kind::ALL),
            _ => None,
        }
    }

    /// removeWatches: true if anything was removed.
    pub fn remove(&mut self, path: &str, watcher: WatcherId, kinds: &[Kind]) -> bool {
        self.clear(path, watcher, mask(kinds)) != 0
    }

    /// checkWatches: true if the watcher holds a watch of one of `kinds` on the path.
    pub fn contains(&self, path: &str, watcher: WatcherId, kinds: &[Kind]) -> bool {
        self.by_path.get(path).is_some_and(|e| e.get(watcher) & mask(kinds) != 0)
    }

    /// How many watches a watcher holds (a persistent or recursive watch counts two).
    pub fn count_of(&self, watcher: WatcherId) -> usize {
        self.by_watcher.get(&watcher).map_or(0, |h| h.count)
    }

    /// Drops every watch of a connection (it closed; clients re-register with setWatches).
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        let Some(held) = self.by_watcher.remove(&watcher) else {
            return;
        };
        self.watch_count -= held.count;
        for p in held.paths {
            if let Some(entry) = self.by_path.get_mut(&p) {
                if entry.get(watcher) & RECURSIVE != 0 {
                    self.recursive_count -= 1;
                }
                entry.set(watcher, 0);
                if entry.is_empty() {
                    self.by_path.remove(&p);
                }
            }
        }
        self.shrink_if_sparse();
    }

    /// Fires the watches a change triggers, removing the one-shot ones, and returns who gets
    /// an event (each watcher once, in id order).
    pub fn trigger(&mut self, changed: &str, event_type: i32) -> Vec<WatcherId> {
        let (one_shot, persistent, recursive) = match event_type {
            event::NODE_CREATED | event::NODE_DATA_CHANGED => {
                (mask(&[Kind::Data]), mask(&[Kind::PersistentData]), mask(&[Kind::Recursive]))
            }
            event::NODE_DELETED => {
                (mask(&[Kind::Data, Kind::Child]), mask(&[Kind::PersistentData, Kind::PersistentChild]), RECURSIVE)
            }
            event::NODE_CHILDREN_CHANGED => (mask(&[Kind::Child]), mask(&[Kind::PersistentChild]), 0),
            _ => (0, 0, 0),
        };
        let mut out = BTreeSet::new();
        let mut fired_once = Vec::new();
        if let Some(entry) = self.by_path.get(changed) {
            entry.for_each(|w, kinds| {
                if kinds & (one_shot | persistent | recursive) != 0 {
                    out.insert(w);
                }
                if kinds & one_shot != 0 {
                    fired_once.push(w);
                }
            });
        }
        for w in fired_once {
            self.clear(changed, w, one_shot);
        }
        if self.recursive_count > 0 && recursive != 0 {
            for p in path::ancestors_inclusive(changed).skip(1) {
                if let Some(entry) = self.by_path.get(p) {
                    entry.for_each(|w, k| {
                        if k & recursive != 0 {
                            out.insert(w);
                        }
                    });
                }
            }
        }
        out.into_iter().collect()
    }

    pub fn watch_count(&self) -> usize {
        self.watch_count
    }

    /// The data-side watches as a flat list, in one pass and without copying a path (a
    /// reference count each): cheap enough for the owner even with a million watches, so that
    /// sorting, grouping and formatting the reports happen on another thread. As ZooKeeper
    /// 3.8's `wchc`, `wchp` and `wchs` (and their AdminServer commands), only the data side is
    /// listed: data and exists watches and the data half of persistent and recursive watches,
    /// not child watches.
    pub fn data_side_copy(&self) -> WatchCopy {
        const DATA_SIDE: Kinds = 1 << Kind::Data as u8 | 1 << Kind::PersistentData as u8 | 1 << Kind::Recursive as u8;
        let mut entries = Vec::with_capacity(self.by_path.len());
        for (p, e) in &self.by_path {
            e.for_each(|w, kinds| {
                if kinds & DATA_SIDE != 0 {
                    entries.push((p.clone(), w));
                }
            });
        }
        WatchCopy { entries }
    }
}

/// See [`WatchManager::data_side_copy`].
pub struct WatchCopy {
    entries: Vec<(Arc<str>, WatcherId)>,
}

impl WatchCopy {
    /// path → watchers, paths and watchers sorted.
    pub fn by_path(mut self) -> BTreeMap<String, Vec<WatcherId>> {
        self.entries.sort_unstable();
        let mut out: BTreeMap<String, Vec<WatcherId>> = BTreeMap::new();
        for (p, w) in self.entries {
            out.entry(p.to_string()).or_default().push(w);
        }
        out
    }

    /// watcher → paths, both sorted.
    pub fn by_watcher(mut self) -> BTreeMap<WatcherId, Vec<String>> {
        self.entries.sort_unstable_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        let mut out: BTreeMap<WatcherId, Vec<String>> = BTreeMap::new();
        for (p, w) in self.entries {
            out.entry(w).or_default().push(p.to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_data_watch_fires_once() {
        let mut m = WatchManager::default();
        m.add("/a", 1, Kind::Data);
        m.add("/a", 1, Kind::Data);
        assert_eq!(m.trigger("/a", event::NODE_DATA_CHANGED), vec![1]);
        assert!(m.trigger("/a", event::NODE_DATA_CHANGED).is_empty());
        assert_eq!(m.watch_count(), 0);
    }

    #[test]
    fn delete_fires_data_and_child_watchers_once_each() {
        let mut m = WatchManager::default();
        m.add("/a", 1, Kind::Data);
        m.add("/a", 1, Kind::Child);
        m.add("/a", 2, Kind::Child);
        assert_eq!(m.trigger("/a", event::NODE_DELETED), vec![1, 2]);
        assert_eq!(m.watch_count(), 0);
    }

    #[test]
    fn children_changed_only_child_and_persistent() {
        let mut m = WatchManager::default();
        m.add("/a", 1, Kind::Data);
        m.add("/a", 2, Kind::Child);
        m.add("/a", 3, Kind::PersistentData);
        m.add("/a", 3, Kind::PersistentChild);
        m.add("/", 4, Kind::Recursive);
        assert_eq!(m.trigger("/a", event::NODE_CHILDREN_CHANGED), vec![2, 3]);
        // Persistent watches stay.
        assert_eq!(m.trigger("/a", event::NODE_CHILDREN_CHANGED), vec![3]);
    }

    #[test]
    fn recursive_sees_descendants() {
        let mut m = WatchManager::default();
        m.add("/a", 9, Kind::Recursive);
        assert_eq!(m.trigger("/a/b/c", event::NODE_CREATED), vec![9]);
        assert_eq!(m.trigger("/a", event::NODE_DATA_CHANGED), vec![9]);
        assert!(m.trigger("/b", event::NODE_CREATED).is_empty());
        assert!(m.remove("/a", 9, WatchManager::kinds_for(watcher_type::DATA).unwrap()));
        assert!(m.trigger("/a/b", event::NODE_CREATED).is_empty());
    }

    #[test]
    fn remove_and_contains() {
        let mut m = WatchManager::default();
        let of = |t| WatchManager::kinds_for(t).unwrap();
        m.add("/a", 1, Kind::Data);
        assert!(m.contains("/a", 1, of(watcher_type::DATA)));
        assert!(!m.contains("/a", 1, of(watcher_type::CHILDREN)));
        assert!(!m.remove("/a", 1, of(watcher_type::CHILDREN)));
        assert!(m.remove("/a", 1, of(watcher_type::ANY)));
        assert!(!m.contains("/a", 1, of(watcher_type::ANY)));
        assert!(WatchManager::kinds_for(4).is_none() && WatchManager::kinds_for(5).is_none());
    }

    /// ZooKeeper 3.8: a persistent watch is a data watch and a child watch; removing one
    /// family leaves the other firing. A recursive watch is a data watch only.
    #[test]
    fn persistent_watches_are_a_data_and_a_child_half() {
        let mut m = WatchManager::default();
        let of = |t| WatchManager::kinds_for(t).unwrap();
        for &k in Kind::for_add_watch_mode(add_watch_mode::PERSISTENT).unwrap() {
            m.add("/p", 1, k);
        }
        for &k in Kind::for_add_watch_mode(add_watch_mode::PERSISTENT_RECURSIVE).unwrap() {
            m.add("/r", 2, k);
        }
        assert!(m.contains("/p", 1, of(watcher_type::DATA)) && m.contains("/p", 1, of(watcher_type::CHILDREN)));
        assert!(m.contains("/r", 2, of(watcher_type::DATA)) && m.contains("/r", 2, of(watcher_type::CHILDREN)));
        assert!(m.remove("/p", 1, of(watcher_type::DATA)));
        assert!(m.trigger("/p", event::NODE_DATA_CHANGED).is_empty());
        assert_eq!(m.trigger("/p", event::NODE_CHILDREN_CHANGED), vec![1]);
        assert_eq!(m.trigger("/p", event::NODE_DELETED), vec![1]);
        assert!(m.remove("/r", 2, of(watcher_type::DATA)));
        assert!(m.trigger("/r/x", event::NODE_CREATED).is_empty());
        assert!(m.trigger("/r", event::NODE_CHILDREN_CHANGED).is_empty());
        assert_eq!(m.trigger("/r/x", event::NODE_DELETED), vec![2], "the child half sees deletes below");
        assert!(m.remove("/r", 2, of(watcher_type::CHILDREN)));
        assert!(m.trigger("/r/x", event::NODE_DELETED).is_empty());
        assert_eq!(m.watch_count(), 1);
    }

    #[test]
    fn disconnect_drops_all() {
        let mut m = WatchManager::default();
        m.add("/a", 1, Kind::Data);
        m.add("/b", 1, Kind::Recursive);
        m.add("/a", 2, Kind::Data);
        m.remove_watcher(1);
        assert_eq!(m.trigger("/a", event::NODE_DATA_CHANGED), vec![2]);
        assert!(m.trigger("/b/c", event::NODE_CREATED).is_empty());
    }

    /// The table against a plain set of (path, watcher, kind) under random operations: adds,
    /// removeWatches, disconnects and triggers, with paths nested so recursive watches meet
    /// their descendants, and enough watchers on one path to turn its vector into a map.
    mod model {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Add(usize, u64, usize),
            Remove(usize, u64, i32),
            Leave(u64),
            Trigger(usize, i32),
        }

        const PATHS: [&str; 5] = ["/", "/a", "/a/b", "/a/b/c", "/d"];
        const EVENTS: [i32; 4] =
            [event::NODE_CREATED, event::NODE_DELETED, event::NODE_DATA_CHANGED, event::NODE_CHILDREN_CHANGED];

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0..5usize, 0..24u64, 0..6usize).prop_map(|(p, w, k)| Op::Add(p, w, k)),
                1 => (0..5usize, 0..24u64, 1..4i32).prop_map(|(p, w, t)| Op::Remove(p, w, t)),
                1 => (0..24u64).prop_map(Op::Leave),
                2 => (0..5usize, 0..4usize).prop_map(|(p, e)| Op::Trigger(p, EVENTS[e])),
            ]
        }

        fn fires(kind: Kind, at_path: bool, event_type: i32) -> bool {
            use Kind::*;
            match (kind, at_path) {
                (Data, true) | (PersistentData, true) => event_type != event::NODE_CHILDREN_CHANGED,
                (Child, true) | (PersistentChild, true) => {
                    matches!(event_type, event::NODE_DELETED | event::NODE_CHILDREN_CHANGED)
                }
                (Recursive, _) => event_type != event::NODE_CHILDREN_CHANGED,
                (RecursiveChild, _) => event_type == event::NODE_DELETED,
                _ => false,
            }
        }

        proptest! {
            #[test]
            fn matches_a_plain_set(ops in proptest::collection::vec(op(), 1..300)) {
                let mut m = WatchManager::default();
                let mut set: BTreeSet<(&str, u64, Kind)> = BTreeSet::new();
                for o in ops {
                    match o {
                        Op::Add(p, w, k) => {
                            m.add(PATHS[p], w, Kind::ALL[k]);
                            set.insert((PATHS[p], w, Kind::ALL[k]));
                        }
                        Op::Remove(p, w, t) => {
                            let kinds = WatchManager::kinds_for(t).unwrap();
                            let before = set.len();
                            set.retain(|&(q, x, k)| !(q == PATHS[p] && x == w && kinds.contains(&k)));
                            prop_assert_eq!(m.remove(PATHS[p], w, kinds), set.len() < before);
                        }
                        Op::Leave(w) => {
                            m.remove_watcher(w);
                            set.retain(|&(_, x, _)| x != w);
                        }
                        Op::Trigger(p, e) => {
                            let changed = PATHS[p];
                            let mut want: BTreeSet<u64> = BTreeSet::new();
                            for &(q, w, k) in &set {
                                let at = q == changed;
                                let below = crate::path::ancestors_inclusive(changed).any(|a| a == q);
                                if below && fires(k, at, e) {
                                    want.insert(w);
                                }
                            }
                            set.retain(|&(q, _, k)| {
                                !(q == changed && matches!(k, Kind::Data | Kind::Child) && fires(k, true, e))
                            });
                            prop_assert_eq!(m.trigger(changed, e), want.into_iter().collect::<Vec<_>>());
                        }
                    }
                    prop_assert_eq!(m.watch_count(), set.len());
                    for w in 0..24u64 {
                        prop_assert_eq!(m.count_of(w), set.iter().filter(|e| e.1 == w).count());
                    }
                }
            }
        }
    }

    /// A million watches from one connection hold about 185 bytes each (616 before the table
    /// shared path text and dropped the B-trees), and closing the connection gives the memory
    /// back: the tables shrink once mostly empty.
    #[test]
    fn a_watcher_that_leaves_gives_its_memory_back() {
        let mut m = WatchManager::default();
        for i in 0..100_000 {
            m.add(&format!("/p/{i}"), 1, Kind::Data);
        }
        m.add("/kept", 2, Kind::Data);
        let big = m.by_path.capacity();
        m.remove_watcher(1);
        assert!(m.by_path.capacity() < big / 8, "{} of {big}", m.by_path.capacity());
        assert_eq!((m.watch_count(), m.by_path.len(), m.by_watcher.len()), (1, 1, 1));
    }
}
