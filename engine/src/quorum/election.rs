//! Fast leader election: every looking server proposes the best (epoch, last zxid, myid) it
//! has heard of and tells everyone when its proposal changes. Rounds (ZooKeeper's logical
//! clock) keep a restarted election from mixing with an older one. Pure, no I/O.
//!
//! The election ends when a quorum of voters proposes the same vote *and no better vote can
//! still arrive*: every voter has voted in this round or is known to be down (its link is
//! broken). ZooKeeper instead waits a fixed 200 ms after agreement; here a silent voter whose
//! link is up delays the end by at most one tick. A server that finds an ensemble already
//! running (a quorum of voters report following or leading the same leader, and that leader
//! reports leading) joins it without an election of its own. A server that a quorum of voters
//! already follow, on the claim it still makes, leads: they ended an election for it whose
//! end it missed.

use std::collections::{BTreeMap, BTreeSet};

use super::{PeerState, QuorumConfig, ServerId, Vote, Zxid};

pub struct Election {
    pub round: u64,
    /// My current proposal (state Looking).
    pub vote: Vote,
    /// Looking voters' proposals in this round, mine included.
    votes: BTreeMap<ServerId, Vote>,
    /// Votes of servers outside the election (following or leading).
    outside: BTreeMap<ServerId, Vote>,
    down: BTreeSet<ServerId>,
    /// Voters I answered with my vote in this round because theirs was worse (once each).
    answered: BTreeSet<ServerId>,
    /// Tick count when a quorum first agreed with my proposal without everyone having voted.
    agreed_at: Option<u64>,
    ticks: u64,
    /// My own claim (current epoch, last zxid), whatever I propose now.
    own: (u32, Zxid),
}

/// What the election wants sent: my vote to everyone, or to one server.
pub enum Out {
    Broadcast(Vote),
    To(ServerId, Vote),
}

impl Election {
    /// Starts round `round` proposing myself (an observer proposes nobody until it hears).
    pub fn new(cfg: &QuorumConfig, round: u64, epoch: u32, last_zxid: Zxid, down: BTreeSet<ServerId>) -> Election {
        let leader = if cfg.is_observer() { 0 } else { cfg.myid };
        let vote = Vote { leader, zxid: last_zxid, epoch, round, state: PeerState::Looking };
        let mut votes = BTreeMap::new();
        if !cfg.is_observer() {
            votes.insert(cfg.myid, vote);
        }
        Election {
            round,
            vote,
            votes,
            outside: BTreeMap::new(),
            down,
            answered: BTreeSet::new(),
            agreed_at: None,
            ticks: 0,
            own: (epoch, last_zxid),
        }
    }

    fn better(a: &Vote, b: &Vote) -> bool {
        a.key() > b.key()
    }

    /// A vote from `from`. Returns what to send and, when the election is over, the leader.
    pub fn on_vote(&mut self, cfg: &QuorumConfig, from: ServerId, v: Vote, out: &mut Vec<Out>) -> Option<ServerId> {
        let voter = cfg.voters.contains(&from);
        match v.state {
            PeerState::Looking => {
                if v.round > self.round {
                    // A newer election: join it, keeping my own claim if it is better.
                    self.round = v.round;
                    self.votes.retain(|id, _| *id == cfg.myid);
                    self.answered.clear();
                    self.agreed_at = None;
                    if voter && v.leader != 0 && (Self::better(&v, &self.vote) || self.vote.leader == 0) {
                        self.adopt(v);
                    }
                    self.vote.round = self.round;
                    if let Some(mine) = self.votes.get_mut(&cfg.myid) {
                        *mine = self.vote;
                    }
                    out.push(Out::Broadcast(self.vote));
                } else if v.round < self.round {
                    // It is behind: tell it where we are. (An observer only listens: answering
                    // each other's stale votes, a voter and an observer would echo forever.)
                    if !cfg.is_observer() {
                        out.push(Out::To(from, self.vote));
                    }
                    return None;
                } else if v.leader != 0 && cfg.voters.contains(&v.leader) && Self::better(&v, &self.vote) {
                    self.adopt(v);
                    if let Some(mine) = self.votes.get_mut(&cfg.myid) {
                        *mine = self.vote;
                    }
                    out.push(Out::Broadcast(self.vote));
                } else if voter && !cfg.is_observer() && v.key() < self.vote.key() && self.answered.insert(from) {
                    // Same round, a worse proposal: it may have missed mine (it was still
                    // following when I announced it). Tell it once, rather than have it wait
                    // for the periodic re-announce two ticks later.
                    out.push(Out::To(from, self.vote));
                }
                if voter && v.leader != 0 {
                    self.votes.insert(from, v);
                }
                self.outside.remove(&from);
                self.down.remove(&from);
                self.decide(cfg, false)
            }
            _ => {
                self.outside.insert(from, v);
                self.down.remove(&from);
                self.votes.remove(&from);
                self.join_established(cfg)
                    .or_else(|| self.followed_by_quorum(cfg).then_some(cfg.myid))
                    .or_else(|| self.decide(cfg, false))
            }
        }
    }

    fn adopt(&mut self, v: Vote) {
        self.vote.leader = v.leader;
        self.vote.zxid = v.zxid;
        self.vote.epoch = v.epoch;
    }

    /// An ensemble already running: a quorum of voters follow or lead `L`, and `L` leads.
    fn join_established(&self, cfg: &QuorumConfig) -> Option<ServerId> {
        let (_, lv) = self.outside.iter().find(|(id, v)| v.state == PeerState::Leading && **id == v.leader)?;
        let backers = self
            .outside
            .iter()
            .filter(|(id, v)| cfg.voters.contains(id) && v.leader == lv.leader && v.epoch == lv.epoch)
            .count();
        cfg.is_quorum(backers).then_some(lv.leader)
    }

    /// A quorum of voters (me included) follow me on the claim I still make: they ended an
    /// election for me in a round whose votes I never got (seen under packet loss: the others
    /// followed a server that stayed looking until they gave up on it, about 10 s). Whom to
    /// lead is the election's business only for liveness; discovery and sync still check that
    /// no acknowledging follower is ahead of me.
    fn followed_by_quorum(&self, cfg: &QuorumConfig) -> bool {
        if !cfg.voters.contains(&cfg.myid) {
            return false;
        }
        let backers = self
            .outside
            .iter()
            .filter(|(id, v)| {
                cfg.voters.contains(id)
                    && v.state == PeerState::Following
                    && v.leader == cfg.myid
                    && (v.epoch, v.zxid) == self.own
            })
            .count();
        cfg.is_quorum(backers + 1)
    }

    /// True if a quorum of voters propose exactly my vote.
    fn quorum_agrees(&self, cfg: &QuorumConfig) -> bool {
        let same = self.votes.values().filter(|v| v.key() == self.vote.key()).count();
        self.vote.leader != 0 && cfg.is_quorum(same)
    }

    fn decide(&mut self, cfg: &QuorumConfig, timer: bool) -> Option<ServerId> {
        if !self.quorum_agrees(cfg) {
            self.agreed_at = None;
            return None;
        }
        let everyone = cfg.voters.iter().all(|id| self.votes.contains_key(id) || self.down.contains(id));
        if everyone {
            return Some(self.vote.leader);
        }
        match self.agreed_at {
            None => {
                self.agreed_at = Some(self.ticks);
                None
            }
            // A voter with an open link stayed silent for a whole tick: go ahead without it.
            Some(t) if timer && self.ticks > t => Some(self.vote.leader),
            Some(_) => None,
        }
    }

    /// Whether the election can end now (a single voter ends it at once).
    pub fn check(&mut self, cfg: &QuorumConfig) -> Option<ServerId> {
        self.decide(cfg, false)
    }

    pub fn peer_down(&mut self, cfg: &QuorumConfig, peer: ServerId) -> Option<ServerId> {
        self.down.insert(peer);
        self.votes.remove(&peer);
        self.outside.remove(&peer);
        self.decide(cfg, false)
    }

    pub fn peer_up(&mut self, peer: ServerId, out: &mut Vec<Out>) {
        self.down.remove(&peer);
        out.push(Out::To(peer, self.vote));
    }

    /// Every tick: re-announce now and then (votes may have been lost with a broken link),
    /// and end an election held up by a silent voter.
    pub fn tick(&mut self, cfg: &QuorumConfig, out: &mut Vec<Out>) -> Option<ServerId> {
        self.ticks += 1;
        if self.ticks % 2 == 0 {
            out.push(Out::Broadcast(self.vote));
        }
        self.decide(cfg, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(myid: ServerId, n: u64) -> QuorumConfig {
        QuorumConfig {
            myid,
            voters: (1..=n).collect(),
            observers: vec![],
            init_limit: 10,
            sync_limit: 5,
            peer_timeout_ms: 0,
            max_inflight: 1000,
            diff_window: 1000,
        }
    }

    fn looking(leader: ServerId, zxid: Zxid, epoch: u32, round: u64) -> Vote {
        Vote { leader, zxid, epoch, round, state: PeerState::Looking }
    }

    #[test]
    fn a_clean_ensemble_elects_the_highest_id_once_everyone_voted() {
        let c = cfg(1, 3);
        let mut e = Election::new(&c, 1, 0, 0, BTreeSet::new());
        let mut out = vec![];
        assert_eq!(e.on_vote(&c, 2, looking(2, 0, 0, 1), &mut out), None);
        assert_eq!(e.vote.leader, 2);
        // Quorum {1,2} agrees on 2, but 3 may still propose itself (and it is better): wait.
        // Then 3 does: {1,3} agree on 3 and every voter has spoken.
        assert_eq!(e.on_vote(&c, 3, looking(3, 0, 0, 1), &mut out), Some(3));
        assert_eq!(e.vote.leader, 3);
    }

    #[test]
    fn the_most_complete_log_wins_and_a_down_peer_is_not_waited_for() {
        let c = cfg(3, 3);
        let mut down = BTreeSet::new();
        down.insert(1);
        let mut e = Election::new(&c, 5, 1, 10, down);
        let mut out = vec![];
        // Server 2 has a longer log: it beats the higher id.
        assert_eq!(e.on_vote(&c, 2, looking(2, 12, 1, 5), &mut out), Some(2));
    }

    #[test]
    fn a_silent_voter_delays_the_end_by_one_tick_at_most() {
        let c = cfg(3, 3);
        let mut e = Election::new(&c, 1, 0, 0, BTreeSet::new());
        let mut out = vec![];
        assert_eq!(e.on_vote(&c, 2, looking(3, 0, 0, 1), &mut out), None);
        assert_eq!(e.tick(&c, &mut out), Some(3));
    }

    #[test]
    fn a_worse_vote_in_my_round_is_answered_with_mine_once() {
        // Server 2 was still following when I announced my vote; it now proposes itself.
        let c = cfg(3, 5);
        let mut e = Election::new(&c, 4, 1, 100, BTreeSet::new());
        let mut out = vec![];
        assert_eq!(e.on_vote(&c, 2, looking(2, 100, 1, 4), &mut out), None);
        assert!(matches!(out[..], [Out::To(2, v)] if v.leader == 3 && v.round == 4));
        // Once per round: a duplicate is not answered again, nor is an equal vote.
        out.clear();
        e.on_vote(&c, 2, looking(2, 100, 1, 4), &mut out);
        e.on_vote(&c, 4, looking(3, 100, 1, 4), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_restarted_server_joins_the_running_leader() {
        let c = cfg(1, 3);
        let mut e = Election::new(&c, 1, 0, 0, BTreeSet::new());
        let mut out = vec![];
        let est = |state| Vote { leader: 3, zxid: 0x1_0000_0005, epoch: 1, round: 7, state };
        assert_eq!(e.on_vote(&c, 2, est(PeerState::Following), &mut out), None);
        assert_eq!(e.on_vote(&c, 3, est(PeerState::Leading), &mut out), Some(3));
    }

    #[test]
    fn a_server_that_a_quorum_follows_leads_though_it_missed_the_round() {
        // Servers 1 and 2 elected 3 in round 18; 3 got none of those votes and is in round 9.
        let c = cfg(3, 3);
        let mut e = Election::new(&c, 9, 4, 0x4_0000_0020, BTreeSet::new());
        let mut out = vec![];
        let following = |zxid, epoch| Vote { leader: 3, zxid, epoch, round: 18, state: PeerState::Following };
        assert_eq!(e.on_vote(&c, 1, following(0x4_0000_0020, 4), &mut out), Some(3), "1 and I make a quorum");
        // Following me on a claim I no longer make (my log moved on): not mine to take.
        let mut e = Election::new(&c, 9, 4, 0x4_0000_0021, BTreeSet::new());
        assert_eq!(e.on_vote(&c, 1, following(0x4_0000_0020, 4), &mut out), None);
        // Following someone else: no.
        let mut e = Election::new(&c, 9, 4, 0x4_0000_0020, BTreeSet::new());
        let other = Vote { leader: 2, ..following(0x4_0000_0020, 4) };
        assert_eq!(e.on_vote(&c, 1, other, &mut out), None);
        // Five voters: one follower is not a quorum with me, two are.
        let c5 = cfg(3, 5);
        let mut e = Election::new(&c5, 9, 4, 0x4_0000_0020, BTreeSet::new());
        assert_eq!(e.on_vote(&c5, 1, following(0x4_0000_0020, 4), &mut out), None);
        assert_eq!(e.on_vote(&c5, 2, following(0x4_0000_0020, 4), &mut out), Some(3));
    }

    #[test]
    fn a_newer_round_resets_the_tally_and_a_stale_sender_is_answered() {
        let c = cfg(2, 3);
        let mut e = Election::new(&c, 1, 0, 0, BTreeSet::new());
        let mut out = vec![];
        e.on_vote(&c, 1, looking(1, 0, 0, 3), &mut out);
        assert_eq!(e.round, 3);
        assert_eq!(e.vote.leader, 2);
        out.clear();
        assert_eq!(e.on_vote(&c, 3, looking(3, 0, 0, 2), &mut out), None);
        assert!(matches!(out[..], [Out::To(3, v)] if v.round == 3));
    }
}
