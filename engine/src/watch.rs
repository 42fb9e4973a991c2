//! Watches: one-shot data/exist and child watches, persistent and persistent-recursive
//! watches (addWatch), keyed by the connection that set them.
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

use std::collections::{BTreeMap, BTreeSet, HashMap};

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

    fn is_recursive(self) -> bool {
        matches!(self, Kind::Recursive | Kind::RecursiveChild)
    }
}

#[derive(Default, Debug)]
pub struct WatchManager {
    /// path → kind → watchers. BTreeMaps keep dumps and delivery order deterministic.
    by_path: HashMap<String, BTreeMap<Kind, BTreeSet<WatcherId>>>,
    by_watcher: HashMap<WatcherId, BTreeSet<(String, Kind)>>,
    recursive_count: usize,
}

impl WatchManager {
    pub fn add(&mut self, path: &str, watcher: WatcherId, kind: Kind) {
        let set = self.by_path.entry(path.to_string()).or_default().entry(kind).or_default();
        if set.insert(watcher) && kind.is_recursive() {
            self.recursive_count += 1;
        }
        self.by_watcher.entry(watcher).or_default().insert((path.to_string(), kind));
    }

    fn remove_one(&mut self, path: &str, watcher: WatcherId, kind: Kind) -> bool {
        let Some(kinds) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(set) = kinds.get_mut(&kind) else {
            return false;
        };
        let removed = set.remove(&watcher);
        if set.is_empty() {
            kinds.remove(&kind);
        }
        if kinds.is_empty() {
            self.by_path.remove(path);
        }
        if removed {
            if kind.is_recursive() {
                self.recursive_count -= 1;
            }
            if let Some(w) = self.by_watcher.get_mut(&watcher) {
                w.remove(&(path.to_string(), kind));
                if w.is_empty() {
                    self.by_watcher.remove(&watcher);
                }
            }
        }
        removed
    }

    /// The entries a removeWatches / checkWatches watcher type names; None for a type ZooKeeper
    /// 3.8 does not know (the caller answers MarshallingError, as 3.8 does).
    pub fn kinds_for(watcher_type: i32) -> Option<&'static [Kind]> {
        match watcher_type {
            watcher_type::CHILDREN => Some(&[Kind::Child, Kind::PersistentChild, Kind::RecursiveChild]),
            watcher_type::DATA => Some(&[Kind::Data, Kind::PersistentData, Kind::Recursive]),
            watcher_type::ANY => Some(&[
                Kind::Child,
                Kind::Data,
                Kind::PersistentData,
                Kind::PersistentChild,
                Kind::Recursive,
                Kind::RecursiveChild,
            ]),
            _ => None,
        }
    }

    /// removeWatches: true if anything was removed.
    pub fn remove(&mut self, path: &str, watcher: WatcherId, kinds: &[Kind]) -> bool {
        let mut any = false;
        for &k in kinds {
            any |= self.remove_one(path, watcher, k);
        }
        any
    }

    /// checkWatches: true if the watcher holds a watch of one of `kinds` on the path.
    pub fn contains(&self, path: &str, watcher: WatcherId, kinds: &[Kind]) -> bool {
        let Some(by_kind) = self.by_path.get(path) else {
            return false;
        };
        kinds.iter().any(|k| by_kind.get(k).is_some_and(|s| s.contains(&watcher)))
    }

    /// Drops every watch of a connection (it closed; clients re-register with setWatches).
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        let Some(entries) = self.by_watcher.remove(&watcher) else {
            return;
        };
        for (p, k) in entries {
            if let Some(kinds) = self.by_path.get_mut(&p) {
                if let Some(set) = kinds.get_mut(&k) {
                    if set.remove(&watcher) && k.is_recursive() {
                        self.recursive_count -= 1;
                    }
                    if set.is_empty() {
                        kinds.remove(&k);
                    }
                }
                if kinds.is_empty() {
                    self.by_path.remove(&p);
                }
            }
        }
    }

    /// Fires the watches a change triggers, removing the one-shot ones, and returns who gets
    /// an event (each watcher once).
    pub fn trigger(&mut self, changed: &str, event_type: i32) -> Vec<WatcherId> {
        let one_shot: &[Kind] = match event_type {
            event::NODE_CREATED | event::NODE_DATA_CHANGED => &[Kind::Data],
            event::NODE_DELETED => &[Kind::Data, Kind::Child],
            event::NODE_CHILDREN_CHANGED => &[Kind::Child],
            _ => &[],
        };
        let mut out = BTreeSet::new();
        for &k in one_shot {
            let drained: Vec<WatcherId> = self
                .by_path
                .get(changed)
                .and_then(|kinds| kinds.get(&k))
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            for w in drained {
                self.remove_one(changed, w, k);
                out.insert(w);
            }
        }
        let persistent: &[Kind] = match event_type {
            event::NODE_CREATED | event::NODE_DATA_CHANGED => &[Kind::PersistentData],
            event::NODE_DELETED => &[Kind::PersistentData, Kind::PersistentChild],
            event::NODE_CHILDREN_CHANGED => &[Kind::PersistentChild],
            _ => &[],
        };
        for k in persistent {
            if let Some(set) = self.by_path.get(changed).and_then(|kinds| kinds.get(k)) {
                out.extend(set.iter().copied());
            }
        }
        let recursive: &[Kind] = match event_type {
            event::NODE_CREATED | event::NODE_DATA_CHANGED => &[Kind::Recursive],
            event::NODE_DELETED => &[Kind::Recursive, Kind::RecursiveChild],
            _ => &[],
        };
        if self.recursive_count > 0 && !recursive.is_empty() {
            for p in path::ancestors_inclusive(changed) {
                for k in recursive {
                    if let Some(set) = self.by_path.get(p).and_then(|kinds| kinds.get(k)) {
                        out.extend(set.iter().copied());
                    }
                }
            }
        }
        out.into_iter().collect()
    }

    pub fn watch_count(&self) -> usize {
        self.by_watcher.values().map(|s| s.len()).sum()
    }

    pub fn path_count(&self) -> usize {
        self.by_path.len()
    }

    pub fn watcher_count(&self) -> usize {
        self.by_watcher.len()
    }

    /// watcher → paths (wchc).
    pub fn by_watcher(&self) -> BTreeMap<WatcherId, Vec<String>> {
        self.by_watcher
            .iter()
            .map(|(w, s)| {
                let paths: BTreeSet<String> = s.iter().map(|(p, _)| p.clone()).collect();
                (*w, paths.into_iter().collect())
            })
            .collect()
    }

    /// path → watchers (wchp).
    pub fn by_path(&self) -> BTreeMap<String, Vec<WatcherId>> {
        self.by_path
            .iter()
            .map(|(p, kinds)| {
                let ws: BTreeSet<WatcherId> = kinds.values().flatten().copied().collect();
                (p.clone(), ws.into_iter().collect())
            })
            .collect()
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
}
