//! The session table and its expiry queue, bucketed by tick like ZooKeeper's ExpiryQueue:
//! a session touched at `now` expires at the first tick boundary after `now + timeout`, so
//! expiry work happens once per tick for a whole bucket rather than per session. Pure, no I/O:
//! the caller gives the time.

use std::collections::{BTreeMap, HashMap, HashSet};

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub timeout_ms: i32,
    pub expire_at_ms: i64,
    /// Set once a closeSession was prepared: no new work is accepted for it.
    pub closing: bool,
    pub passwd: Passwd,
}

#[derive(Debug)]
pub struct SessionTracker {
    sessions: HashMap<i64, Session>,
    buckets: BTreeMap<i64, HashSet<i64>>,
    tick_ms: i64,
    next_id: i64,
}

pub const PASSWD_LEN: usize = 16;

/// A session's password: 16 random bytes chosen when the session is created, carried in its
/// createSession transaction and in snapshots, so every server of an ensemble checks a
/// reconnecting client against the same bytes. ZooKeeper derives the password from the
/// session id and a constant, so anyone can compute another session's password and take it
/// over (close it, and its ephemerals -- locks, leader elections -- vanish); Warren does not.
pub type Passwd = [u8; PASSWD_LEN];

/// The password of a session whose record predates random passwords (a log or snapshot
/// written by an older Warren). It matches nothing: such a session keeps serving its current
/// connection, and a client that reconnects to it is told it expired and starts a new one.
pub const UNUSABLE_PASSWD: Passwd = [0; PASSWD_LEN];

/// Where new session passwords come from: the operating system's CSPRNG, or, for tests and
/// the deterministic simulator only, a seeded sequence.
#[derive(Debug, Clone)]
pub struct PasswordSource {
    seeded: Option<(u64, u64)>,
}

impl PasswordSource {
    pub fn os() -> PasswordSource {
        PasswordSource { seeded: None }
    }

    /// A reproducible sequence (SHA-1 of seed and counter). Never used by the server.
    pub fn seeded(seed: u64) -> PasswordSource {
        PasswordSource { seeded: Some((seed, 0)) }
    }

    pub fn next(&mut self) -> Passwd {
        loop {
            let mut p = UNUSABLE_PASSWD;
            match &mut self.seeded {
                None => getrandom::fill(&mut p).expect("the OS random number generator failed"),
                Some((seed, n)) => {
                    *n += 1;
                    let mut h = Sha1::new();
                    h.update(seed.to_be_bytes());
                    h.update(n.to_be_bytes());
                    p.copy_from_slice(&h.finalize()[..PASSWD_LEN]);
                }
            }
            if p != UNUSABLE_PASSWD {
                return p;
            }
        }
    }
}

/// The first session id for a server: its myid in the top byte and a time-derived counter
/// below, like ZooKeeper's initializeNextSessionId, so ids stay unique across restarts.
pub fn initial_session_id(myid: u8, wall_ms: i64) -> i64 {
    let base = ((wall_ms as u64) << 24) >> 8;
    let id = (base | ((myid as u64) << 56)) as i64;
    if id == crate::txn::CONTAINER_OWNER {
        id + 1
    } else {
        id
    }
}

/// The myid of the server that made session `id` (the top byte, see [`initial_session_id`]).
pub fn server_of(id: i64) -> u8 {
    ((id as u64) >> 56) as u8
}

impl SessionTracker {
    pub fn new(tick_ms: i64, first_id: i64) -> Self {
        SessionTracker {
            sessions: HashMap::new(),
            buckets: BTreeMap::new(),
            tick_ms: tick_ms.max(1),
            next_id: first_id,
        }
    }

    /// The id `next_id` would hand out, without using it.
    pub fn peek_next_id(&self) -> i64 {
        self.next_id
    }

    pub fn next_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn bucket_for(&self, t: i64) -> i64 {
        (t / self.tick_ms + 1) * self.tick_ms
    }

    pub fn add(&mut self, id: i64, timeout_ms: i32, passwd: Passwd, now_ms: i64) {
        self.sessions.insert(id, Session { id, timeout_ms, expire_at_ms: 0, closing: false, passwd });
        self.touch(id, now_ms);
    }

    /// Whether a reconnecting client may resume session `id` with password `given`: the
    /// session is live and the bytes match (compared in constant time, so the comparison's
    /// timing tells nothing about how much of a guess was right).
    pub fn password_matches(&self, id: i64, given: &[u8]) -> bool {
        let Some(s) = self.sessions.get(&id).filter(|s| !s.closing) else {
            return false;
        };
        s.passwd != UNUSABLE_PASSWD && bool::from(s.passwd.as_slice().ct_eq(given))
    }

    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn is_live(&self, id: i64) -> bool {
        self.sessions.get(&id).is_some_and(|s| !s.closing)
    }

    pub fn set_timeout(&mut self, id: i64, timeout_ms: i32) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.timeout_ms = timeout_ms;
        }
    }

    /// Moves a session's expiry forward; false if it is unknown or closing.
    pub fn touch(&mut self, id: i64, now_ms: i64) -> bool {
        let Some(s) = self.sessions.get(&id) else {
            return false;
        };
        if s.closing {
            return false;
        }
        let new_at = self.bucket_for(now_ms + s.timeout_ms as i64);
        let old_at = s.expire_at_ms;
        if new_at == old_at {
            return true;
        }
        if let Some(b) = self.buckets.get_mut(&old_at) {
            b.remove(&id);
            if b.is_empty() {
                self.buckets.remove(&old_at);
            }
        }
        self.buckets.entry(new_at).or_default().insert(id);
        self.sessions.get_mut(&id).expect("present").expire_at_ms = new_at;
        true
    }

    pub fn set_closing(&mut self, id: i64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.closing = true;
        }
    }

    /// Forgets every closing mark (the closeSession transactions behind them were dropped
    /// before they committed: a new leader's history decides whether they happen). Each
    /// session is put back in its expiry bucket, which `expired` emptied of closing sessions.
    pub fn clear_closing(&mut self) {
        for s in self.sessions.values_mut().filter(|s| s.closing) {
            s.closing = false;
            self.buckets.entry(s.expire_at_ms).or_default().insert(s.id);
        }
    }

    pub fn remove(&mut self, id: i64) {
        if let Some(s) = self.sessions.remove(&id) {
            if let Some(b) = self.buckets.get_mut(&s.expire_at_ms) {
                b.remove(&id);
                if b.is_empty() {
                    self.buckets.remove(&s.expire_at_ms);
                }
            }
        }
    }

    /// Sessions whose bucket time has passed and that are not already closing, in id order.
    pub fn expired(&mut self, now_ms: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let due: Vec<i64> = self.buckets.range(..=now_ms).map(|(t, _)| *t).collect();
        for t in due {
            if let Some(ids) = self.buckets.remove(&t) {
                out.extend(ids.into_iter().filter(|id| self.sessions.get(id).is_some_and(|s| !s.closing)));
            }
        }
        out.sort_unstable();
        out
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_bucketed_by_tick() {
        let mut t = SessionTracker::new(2000, 100);
        t.add(1, 4000, [1; 16], 500); // 4500 rounds up to 6000
        assert_eq!(t.get(1).unwrap().expire_at_ms, 6000);
        assert!(t.expired(5999).is_empty());
        assert_eq!(t.expired(6000), vec![1]);
    }

    #[test]
    fn touch_moves_expiry() {
        let mut t = SessionTracker::new(2000, 100);
        t.add(1, 4000, [1; 16], 0);
        assert!(t.touch(1, 3000));
        assert!(t.expired(6000).is_empty());
        assert_eq!(t.expired(8000), vec![1]);
    }

    #[test]
    fn closing_sessions_neither_touch_nor_expire_twice() {
        let mut t = SessionTracker::new(2000, 100);
        t.add(1, 4000, [1; 16], 0);
        t.set_closing(1);
        assert!(!t.touch(1, 10));
        assert!(t.expired(100_000).is_empty());
        assert!(!t.is_live(1));
    }

    #[test]
    fn session_ids_carry_the_server_id() {
        let id = initial_session_id(1, 1_700_000_000_000);
        assert_eq!((id as u64) >> 56, 1);
    }

    #[test]
    fn passwords_are_random_and_checked_exactly() {
        let mut os = PasswordSource::os();
        let (a, b) = (os.next(), os.next());
        assert_ne!(a, b);
        assert_ne!(a, UNUSABLE_PASSWD);
        let mut t = SessionTracker::new(2000, 100);
        t.add(1, 4000, a, 0);
        t.add(2, 4000, b, 0);
        assert!(t.password_matches(1, &a));
        assert!(!t.password_matches(1, &b), "another session's password");
        assert!(!t.password_matches(1, &a[..15]), "a prefix");
        assert!(!t.password_matches(1, &[a.as_slice(), &[0]].concat()), "a longer string");
        assert!(!t.password_matches(3, &a), "an unknown session");
        t.set_closing(1);
        assert!(!t.password_matches(1, &a), "a closing session");
    }

    #[test]
    fn sessions_from_before_random_passwords_cannot_be_resumed() {
        let mut t = SessionTracker::new(2000, 100);
        t.add(1, 4000, UNUSABLE_PASSWD, 0);
        assert!(!t.password_matches(1, &UNUSABLE_PASSWD));
    }

    #[test]
    fn seeded_passwords_repeat_per_seed_only() {
        let (mut a, mut b, mut c) = (PasswordSource::seeded(7), PasswordSource::seeded(7), PasswordSource::seeded(8));
        let x = a.next();
        assert_eq!(x, b.next());
        assert_ne!(x, c.next());
        assert_ne!(x, a.next());
    }
}
