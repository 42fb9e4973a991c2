//! Watches: one-shot data/exist and child watches, persistent and persistent-recursive
//! watches (addWatch), keyed by the connection that set them.
//!
//! Trigger rules follow ZooKeeper's WatchManager: NodeCreated and NodeDataChanged go to data
//! watchers; NodeDeleted to data and child watchers of the node; NodeChildrenChanged to child
//! watchers of the parent. Persistent watchers see all four on their path; recursive watchers
//! see everything but NodeChildrenChanged on their path and below. A watcher gets at most one
//! event per trigger.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::path;
use crate::proto::event;

pub type WatcherId = u64;

/// removeWatches/checkWatches watcher types (ZooKeeper's Watcher.WatcherType).
pub mod watcher_type {
    pub const CHILDREN: i32 = 1;
    pub const DATA: i32 = 2;
    pub const ANY: i32 = 3;
    pub const PERSISTENT: i32 = 4;
    pub const PERSISTENT_RECURSIVE: i32 = 5;
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
    Persistent,
    Recursive,
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
        if set.insert(watcher) && kind == Kind::Recursive {
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
            if kind == Kind::Recursive {
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

    fn kinds_for(watcher_type: i32) -> &'static [Kind] {
        match watcher_type {
            watcher_type::CHILDREN => &[Kind::Child],
            watcher_type::DATA => &[Kind::Data],
            watcher_type::ANY => &[Kind::Child, Kind::Data, Kind::Persistent, Kind::Recursive],
            watcher_type::PERSISTENT => &[Kind::Persistent],
            watcher_type::PERSISTENT_RECURSIVE => &[Kind::Recursive],
            _ => &[],
        }
    }

    /// removeWatches: true if anything was removed.
    pub fn remove(&mut self, path: &str, watcher: WatcherId, watcher_type: i32) -> bool {
        let mut any = false;
        for &k in Self::kinds_for(watcher_type) {
            any |= self.remove_one(path, watcher, k);
        }
        any
    }

    /// checkWatches: true if the watcher holds a watch of that type on the path.
    pub fn contains(&self, path: &str, watcher: WatcherId, watcher_type: i32) -> bool {
        let Some(kinds) = self.by_path.get(path) else {
            return false;
        };
        Self::kinds_for(watcher_type).iter().any(|k| kinds.get(k).is_some_and(|s| s.contains(&watcher)))
    }

    /// Drops every watch of a connection (it closed; clients re-register with setWatches).
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        let Some(entries) = self.by_watcher.remove(&watcher) else {
            return;
        };
        for (p, k) in entries {
            if let Some(kinds) = self.by_path.get_mut(&p) {
                if let Some(set) = kinds.get_mut(&k) {
                    if set.remove(&watcher) && k == Kind::Recursive {
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
        if let Some(set) = self.by_path.get(changed).and_then(|k| k.get(&Kind::Persistent)) {
            out.extend(set.iter().copied());
        }
        if self.recursive_count > 0 && event_type != event::NODE_CHILDREN_CHANGED {
            for p in path::ancestors_inclusive(changed) {
                if let Some(set) = self.by_path.get(p).and_then(|k| k.get(&Kind::Recursive)) {
                    out.extend(set.iter().copied());
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
        m.add("/a", 3, Kind::Persistent);
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
        assert!(m.remove("/a", 9, watcher_type::PERSISTENT_RECURSIVE));
        assert!(m.trigger("/a/b", event::NODE_CREATED).is_empty());
    }

    #[test]
    fn remove_and_contains() {
        let mut m = WatchManager::default();
        m.add("/a", 1, Kind::Data);
        assert!(m.contains("/a", 1, watcher_type::DATA));
        assert!(!m.contains("/a", 1, watcher_type::CHILDREN));
        assert!(!m.remove("/a", 1, watcher_type::CHILDREN));
        assert!(m.remove("/a", 1, watcher_type::ANY));
        assert!(!m.contains("/a", 1, watcher_type::ANY));
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
