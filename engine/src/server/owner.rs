//! The executor that owns the Machine: applies events, routes its output, runs its timers.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::disk_queue::{DiskQueue, Outgoing, Work};
use super::offload::{blocking_io, off_the_executor};
use super::outbox::{Admit, Backlog};
use super::peers::{PeerConfig, PeerEvent, Peers};
use super::wal::Wal;
use super::{executor_of, Event, ExecCtx, Forwarder, Out, Settings};
use crate::admin::{self, FourLetterWord};
use crate::machine::{ConnId, Machine, Now, Ready};
use crate::quorum::{DiskStep, Epochs, Node, NodeReady, PeerState};
use crate::snap::SnapshotWriter;
use crate::storage::recovery::{EnsembleRecovered, Recovered};
use crate::storage::{epochs, snapshots, Disk, RealDisk};
use crate::txn::Txn;
use tracing::{info, warn};

/// What the four-letter words report that the machine does not know.
pub struct AdminContext {
    pub config: crate::config::Config,
    pub data_dir: std::path::PathBuf,
    pub data_log_dir: std::path::PathBuf,
    pub version: String,
    /// The configuration file's settings as ZooKeeper's `initial_configuration` shows them
    /// (`key=value` lines, comments and blank lines left out); None without a file.
    pub initial_config: Option<String>,
    /// What the server measures, read by the metrics endpoint and the AdminServer.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Held while `/commands/snapshot` runs (one at a time); when the last one succeeded, for
    /// `admin.rateLimiterIntervalInMS`.
    pub snapshot_limiter: std::sync::Mutex<Option<Instant>>,
    /// The same for `/commands/restore`.
    pub restore_limiter: std::sync::Mutex<Option<Instant>>,
}

/// What the owner runs: a standalone machine, or an ensemble member (machine plus protocol).
pub(crate) enum Core {
    Standalone(Machine),
    Ensemble(Box<Node>),
}

impl Core {
    fn machine(&self) -> &Machine {
        match self {
            Core::Standalone(m) => m,
            Core::Ensemble(n) => n.machine(),
        }
    }

    fn machine_mut(&mut self) -> &mut Machine {
        match self {
            Core::Standalone(m) => m,
            Core::Ensemble(n) => n.machine_mut(),
        }
    }
}

/// What start-up recovered, for either kind of server.
pub(crate) enum Start {
    Standalone(Recovered),
    Ensemble(EnsembleRecovered),
}

/// An ensemble member's I/O besides the log: peer links, epoch files, and the node's disk
/// steps queued behind an epochs step, a truncation or a snapshot installation (performed one
/// after another in the order the node gave them, see `DiskStep`), with the messages held
/// back until the epochs step before them is durable (see `disk_queue`).
struct EnsembleIo {
    peers: RefCell<Option<Rc<Peers>>>,
    data_dir: std::path::PathBuf,
    disk: RefCell<DiskQueue>,
}

pub struct Owner {
    core: RefCell<Core>,
    ensemble: Option<EnsembleIo>,
    wal: Rc<Wal>,
    snaps: Snapshots,
    local: Rc<ExecCtx>,
    remotes: Vec<Option<Rc<Forwarder<Out>>>>,
    /// Reply backlogs of the connections held by other executors: frames for them are charged
    /// here, as they are routed, so that the cap also bounds what waits in the channels.
    remote_backlogs: RefCell<HashMap<ConnId, Arc<Backlog>>>,
    settings: Settings,
    start_wall_ms: i64,
    /// Since when this ensemble member has not been serving (election, synchronisation).
    not_serving_since: Cell<Option<Instant>>,
}

pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Clock readings; monotonic time counts from process start (recovery uses it too).
pub(crate) fn now() -> Now {
    let mono = process_start().elapsed();
    Now { mono_ms: mono.as_millis() as i64, wall_ms: wall_ms(), mono_us: mono.as_micros() as i64 }
}

fn process_start() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

impl Owner {
    pub(crate) fn new(
        settings: Settings,
        start: Start,
        local: Rc<ExecCtx>,
        remotes: Vec<Option<Rc<Forwarder<Out>>>>,
    ) -> Rc<Owner> {
        let st = &settings.storage;
        let (core, tail, last_zxid, ensemble) = match start {
            Start::Standalone(r) => (Core::Standalone(r.machine), r.tail, r.last_zxid, None),
            Start::Ensemble(r) => {
                let e = settings.ensemble.as_ref().expect("ensemble settings");
                let mut mcfg = settings.machine.clone();
                mcfg.myid = u8::try_from(e.quorum.myid).expect("config refuses server ids above 254");
                let node = Node::new(mcfg, e.quorum.clone(), r.init, now());
                let io = EnsembleIo {
                    peers: RefCell::new(None),
                    data_dir: e.data_dir.clone(),
                    disk: RefCell::new(DiskQueue::default()),
                };
                (Core::Ensemble(Box::new(node)), r.tail, r.last_zxid, Some(io))
            }
        };
        let wal = Wal::new(st.log_dir.clone(), st.segment_size, st.force_sync, st.slow_fsync, tail);
        wal.set_metrics(settings.admin.metrics.clone());
        let owner = Rc::new(Owner {
            core: RefCell::new(core),
            ensemble,
            wal: wal.clone(),
            snaps: Snapshots::new(st.snap_count, st.snap_size_limit_bytes, last_zxid),
            local,
            remotes,
            remote_backlogs: RefCell::new(HashMap::new()),
            start_wall_ms: wall_ms(),
            not_serving_since: Cell::new(Some(Instant::now())),
            settings,
        });
        owner.core.borrow_mut().machine_mut().set_metrics(owner.settings.admin.metrics.clone());
        let (d, f) = (owner.clone(), owner.clone());
        glommio::spawn_local(wal.run(move |zxid| d.durable(zxid), move |why| f.log_failed(why))).detach();
        owner
    }

    fn now(&self) -> Now {
        now()
    }

    fn durable(&self, zxid: i64) {
        let now = self.now();
        match &mut *self.core.borrow_mut() {
            Core::Standalone(m) => m.durable(zxid, now),
            // The node ignores it while a rewind is under way (`Node::rewound`).
            Core::Ensemble(n) => n.synced(zxid, now),
        }
        self.pump();
    }

    fn log_failed(&self, why: &str) {
        match &mut *self.core.borrow_mut() {
            Core::Standalone(m) => m.log_failed(why),
            Core::Ensemble(_) => {
                // A member that cannot make its log durable must not vote or acknowledge: it
                // leaves, as ZooKeeper's does, and the others carry on without it.
                tracing::error!("transaction log failed: {why}; leaving the ensemble (exiting)");
                std::process::exit(3);
            }
        }
        self.pump();
    }

    pub(crate) fn dispatch(&self, ev: Event) {
        let now = self.now();
        {
            let mut core = self.core.borrow_mut();
            match ev {
                Event::Open { conn, ip, ids, backlog } => {
                    let ok = match &mut *core {
                        Core::Standalone(m) => m.open(conn, ip, now) && m.add_auth_ids(conn, ids),
                        Core::Ensemble(n) => n.open(conn, ip, now) && n.add_auth_ids(conn, ids),
                    };
                    if !ok {
                        drop(core);
                        self.route(Out::Close(conn));
                        return;
                    }
                    self.track_remote(conn, backlog);
                }
                Event::Connect { conn, req } => match &mut *core {
                    Core::Standalone(m) => m.connect(conn, req, now),
                    Core::Ensemble(n) => n.connect(conn, req, now),
                },
                Event::Request { conn, hdr, req } => match &mut *core {
                    Core::Standalone(m) => m.request(conn, hdr, req, now),
                    Core::Ensemble(n) => n.request(conn, hdr, req, now),
                },
                Event::Closed { conn } => {
                    self.remote_backlogs.borrow_mut().remove(&conn);
                    match &mut *core {
                        Core::Standalone(m) => m.disconnected(conn),
                        Core::Ensemble(n) => n.disconnected(conn),
                    }
                }
                Event::FourLetter { conn, word, backlog } => {
                    drop(core);
                    self.track_remote(conn, backlog);
                    match self.four_letter(&word) {
                        Answer::Now(text) => self.answer_four_letter(conn, text),
                        Answer::Later(job) => {
                            let Some(me) = self.local.owner.borrow().clone() else { return };
                            glommio::spawn_local(async move {
                                let text = off_the_executor("warren-report", job)
                                    .await
                                    .inspect_err(|e| warn!("cannot start a thread for a report: {e}"))
                                    .unwrap_or_default();
                                me.answer_four_letter(conn, text);
                            })
                            .detach();
                        }
                    }
                    return;
                }
            }
        }
        self.pump();
    }

    /// Starts the peer links (ensemble only) and feeds their events to the node.
    pub(crate) async fn start_peers(self: &Rc<Self>, cfg: PeerConfig) -> std::io::Result<()> {
        let Some(io) = &self.ensemble else { return Ok(()) };
        let (peers, rx) = Peers::start(cfg).await?;
        *io.peers.borrow_mut() = Some(peers);
        let me = self.clone();
        glommio::spawn_local(async move {
            while let Some(ev) = rx.recv().await {
                let now = me.now();
                if let Core::Ensemble(n) = &mut *me.core.borrow_mut() {
                    match ev {
                        PeerEvent::Up(p) => n.peer_up(p, now),
                        PeerEvent::Down(p) => n.peer_down(p, now),
                        PeerEvent::Message(p, m) => n.peer_message(p, m, now),
                    }
                }
                me.pump();
            }
        })
        .detach();
        self.pump();
        Ok(())
    }

    /// Takes a fuzzy snapshot: captures nodes a chunk at a time between client events, then
    /// writes the image on a plain thread (temp file, fsync, rename, directory fsync). The log
    /// from the starting zxid on replays over it (see `snap`).
    fn start_snapshot(&self) {
        let Some(me) = self.local.owner.borrow().clone() else { return };
        // Capture time includes listing the paths, which the owner does in one go.
        let began = Instant::now();
        let (start, paths, sessions) = {
            let core = self.core.borrow();
            let m = core.machine();
            let paths: Vec<String> = m.tree().iter().map(|(p, _)| p.clone()).collect();
            (m.last_zxid(), paths, m.session_records())
        };
        self.snaps.running.store(true, Ordering::SeqCst);
        let dir = self.settings.storage.snap_dir.clone();
        glommio::spawn_local(async move {
            let done = me.snaps.running.clone();
            let image = match me.capture(start, &paths, &sessions).await {
                Ok(image) => image,
                Err(e) => {
                    warn!("snapshot at {start:#x} failed: {e}");
                    done.store(false, Ordering::SeqCst);
                    return;
                }
            };
            let captured_ms = began.elapsed().as_millis();
            let metrics = me.settings.admin.metrics.clone();
            metrics.snapshot_capture_us.observe(began.elapsed().as_micros() as u64);
            let spawned = std::thread::Builder::new().name("warren-snapshot".into()).spawn(move || {
                let writing = Instant::now();
                let written = snapshots::write(&RealDisk, &dir, start, &image);
                metrics.snapshot_write_us.observe(writing.elapsed().as_micros() as u64);
                metrics.snapshottime.observe(began.elapsed().as_millis() as u64);
                match written {
                    Ok(p) => info!(
                        "Snapshot {} taken: {} nodes, {} bytes, captured in {captured_ms} ms, written in {} ms",
                        p.display(),
                        paths.len(),
                        image.len(),
                        began.elapsed().as_millis() - captured_ms
                    ),
                    Err(e) => warn!("writing snapshot {start:#x} failed: {e}"),
                }
                done.store(false, Ordering::SeqCst);
            });
            if let Err(e) = spawned {
                warn!("cannot start the snapshot writer: {e}");
                me.snaps.running.store(false, Ordering::SeqCst);
            }
        })
        .detach();
    }

    async fn capture(
        &self,
        start: i64,
        paths: &[String],
        sessions: &[crate::snap::SessionRecord],
    ) -> std::io::Result<Vec<u8>> {
        let mut w = SnapshotWriter::new(start, Vec::new())?;
        for chunk in paths.chunks(crate::snap::NODES_PER_CHUNK) {
            {
                let core = self.core.borrow();
                let m = core.machine();
                for p in chunk {
                    // A node deleted since the start is simply absent: replay deletes it anyway.
                    if let Some(n) = m.tree().get(p) {
                        w.add_node(p, n)?;
                    }
                }
            }
            // Yield after every chunk: yield_if_needed waits out the task queue's whole
            // preemption budget, which let one capture hold clients up for ~100 ms at a time.
            glommio::executor().yield_now().await;
        }
        w.add_sessions(sessions)?;
        let end = self.core.borrow().machine().last_zxid();
        w.finish(end)
    }

    /// Moves the machine's output to sockets and the log until it has nothing more to say.
    fn pump(&self) {
        if self.ensemble.is_some() {
            self.pump_ensemble();
            return;
        }
        loop {
            let ready: Ready = self.core.borrow_mut().machine_mut().take_ready();
            if ready.is_empty() {
                return;
            }
            for (conn, frame) in ready.sends {
                self.route(Out::Frame(conn, frame));
            }
            for conn in ready.closes {
                self.route(Out::Close(conn));
            }
            let bytes = self.wal.append(&ready.appends);
            if self.snaps.due(ready.appends.len() as u64, bytes) {
                self.start_snapshot();
            }
        }
    }

    /// Performs a node's Ready in the order it requires (see `NodeReady`). The blocking disk
    /// steps are not performed here but queued for the disk task (`start_disk_task`), which
    /// runs them on a helper thread; `DiskQueue` decides what may happen at once and what
    /// waits behind them (the messages of a Ready wait for its epochs step).
    fn pump_ensemble(&self) {
        let io = self.ensemble.as_ref().expect("ensemble");
        loop {
            let (mut ready, serving): (NodeReady, bool) = match &mut *self.core.borrow_mut() {
                Core::Ensemble(n) => (n.take_ready(), n.serving()),
                Core::Standalone(_) => unreachable!(),
            };
            if ready.is_empty() {
                self.note_serving(serving);
                return;
            }
            for step in ready.take_disk_steps() {
                let now = io.disk.borrow_mut().offer_step(step);
                match now {
                    Some(DiskStep::Append(txns)) => self.append(&txns),
                    Some(other) => unreachable!("only an append may bypass the disk queue: {other:?}"),
                    None => {}
                }
            }
            let out = Outgoing {
                resets: ready.resets,
                sends: ready.sends,
                client_sends: ready.client_sends,
                closes: ready.closes,
            };
            let now = io.disk.borrow_mut().offer_messages(out);
            self.start_disk_task();
            if let Some(out) = now {
                self.deliver(out);
            }
        }
    }

    /// Sends a Ready's messages: peer links first (resets, then sends), then client replies
    /// and closes, as the node emitted them.
    fn deliver(&self, out: Outgoing) {
        let io = self.ensemble.as_ref().expect("ensemble");
        if let Some(peers) = io.peers.borrow().as_ref() {
            for p in &out.resets {
                peers.reset(*p);
            }
            for (to, msg) in &out.sends {
                peers.send(*to, msg);
            }
        }
        for (conn, frame) in out.client_sends {
            self.route(Out::Frame(conn, frame));
        }
        for conn in out.closes {
            self.route(Out::Close(conn));
        }
    }

    /// The epochs step, on a helper thread: durable before anything after it (the disk queue
    /// holds the messages of the same Ready, and every later step, until this returns). A
    /// server that cannot persist them must not go on.
    async fn store_epochs(&self, e: Epochs) {
        let dir = self.ensemble.as_ref().expect("ensemble").data_dir.clone();
        let d = dir.clone();
        if let Err(err) = blocking_io("warren-epochs", move || epochs::store(&RealDisk, &d, e)).await {
            tracing::error!("cannot persist epochs {e:?} in {}: {err}; exiting", dir.display());
            std::process::exit(3);
        }
    }

    fn append(&self, txns: &[Txn]) {
        let bytes = self.wal.append(txns);
        if self.snaps.due(txns.len() as u64, bytes) {
            self.start_snapshot();
        }
    }

    /// Starts the task that works through the disk queue, unless it is running or there is
    /// nothing queued. It takes one entry at a time and finishes it before the next: an epochs
    /// step is durable before the messages and steps behind it, a truncation or snapshot
    /// installation waits for the writes before it (the log writer's `hold_writer`), and the
    /// appends after it wait for it. The blocking file work runs on helper threads
    /// (`offload`), so the executor serves clients meanwhile.
    fn start_disk_task(&self) {
        let Some(me) = self.local.owner.borrow().clone() else { return };
        if !self.ensemble.as_ref().expect("ensemble").disk.borrow_mut().start() {
            return;
        }
        glommio::spawn_local(async move {
            loop {
                let next = me.ensemble.as_ref().expect("ensemble").disk.borrow_mut().next();
                let Some(work) = next else { break };
                let done = match work {
                    Work::Deliver(out) => {
                        me.deliver(out);
                        None
                    }
                    Work::Step(DiskStep::Epochs(e)) => {
                        me.store_epochs(e).await;
                        None
                    }
                    Work::Step(DiskStep::Append(txns)) => {
                        me.append(&txns);
                        None
                    }
                    Work::Step(DiskStep::Truncate(z)) => Some(me.wal.truncate_after(z).await.map(|_| z)),
                    Work::Step(DiskStep::Snapshot(z, image)) => Some(me.install_snapshot(z, image).await.map(|()| z)),
                };
                match done {
                    None => {}
                    Some(Ok(z)) => {
                        // Everything up to z is on disk (the truncation or snapshot synced it).
                        let now = me.now();
                        if let Core::Ensemble(n) = &mut *me.core.borrow_mut() {
                            n.rewound(z, now);
                        }
                        me.pump();
                    }
                    Some(Err(e)) => me.log_failed(&format!("log truncation or snapshot installation failed: {e}")),
                }
            }
        })
        .detach();
    }

    /// The SNAP step: the image durable first, then the log it replaces removed (with the
    /// writer held, after the appends before it), then the older snapshots. The file work
    /// runs on helper threads.
    async fn install_snapshot(&self, z: i64, image: Vec<u8>) -> std::io::Result<()> {
        let dir = self.settings.storage.snap_dir.clone();
        let d = dir.clone();
        blocking_io("warren-snap-install", move || snapshots::write(&RealDisk, &d, z, &image)).await?;
        self.wal.restart_at(z).await?;
        // The log before z is gone: an older snapshot could only bring back a tree that the
        // records after z do not follow (across an epoch change recovery would not notice the
        // gap). Recovery must find this one or refuse to start, never fall back to those.
        let gone = blocking_io("warren-snap-install", move || snapshots::remove_before(&RealDisk, &dir, z)).await?;
        for at in gone {
            info!("removed snapshot {at:#x}: the snapshot installed at {z:#x} replaced its state and log");
        }
        Ok(())
    }

    /// Remembers the backlog of a connection held by another executor (see `route`).
    fn track_remote(&self, conn: ConnId, backlog: Arc<Backlog>) {
        if executor_of(conn) != 0 {
            self.remote_backlogs.borrow_mut().insert(conn, backlog);
        }
    }

    fn route(&self, out: Out) {
        let conn = match &out {
            Out::Frame(c, _) | Out::Close(c) => *c,
        };
        let k = executor_of(conn);
        if k == 0 {
            // The outbox charges its own executor's frames (no channel in between).
            self.local.deliver(out);
            return;
        }
        let out = match out {
            Out::Frame(conn, frame) => {
                let admit = self.remote_backlogs.borrow().get(&conn).map(|b| b.admit(frame.len(), self.reply_cap()));
                match admit {
                    Some(Admit::Yes) => Out::Frame(conn, frame),
                    // Over the cap: the frame goes no further, the connection is aborted (its
                    // executor sees the overflow and drops the queue instead of flushing it).
                    Some(Admit::Overflowed) => Out::Close(conn),
                    // Aborted already, or gone.
                    Some(Admit::Dropped) | None => return,
                }
            }
            close => close,
        };
        if let Some(Some(f)) = self.remotes.get(k) {
            f.push(out);
        }
    }

    fn reply_cap(&self) -> usize {
        self.local.reply_limits.cap
    }

    /// Session expiry and container sweeps every tenth of a tick (ZooKeeper checks expiry
    /// once per tick; a finer timer keeps expiry close to its bucket boundary). In an ensemble
    /// the same timer drives the protocol: `tick` every tickTime, on fixed deadlines so that
    /// it does not drift, and `sweep` at every step (it sends the leader's half-tick pings).
    pub(crate) async fn ticker(self: Rc<Self>) {
        let tick_ms = self.settings.machine.tick_ms.max(1) as u64;
        let fine = Duration::from_millis((tick_ms / 10).clamp(10, 200));
        let tick = Duration::from_millis(tick_ms);
        let mut next_tick = std::time::Instant::now() + tick;
        loop {
            glommio::timer::sleep(fine).await;
            let now = self.now();
            match &mut *self.core.borrow_mut() {
                Core::Standalone(m) => m.tick(now),
                Core::Ensemble(n) => {
                    let at = std::time::Instant::now();
                    if at >= next_tick {
                        n.tick(now);
                        // After a stall, start afresh instead of firing the missed ticks.
                        next_tick = if next_tick + tick > at { next_tick + tick } else { at + tick };
                    }
                    n.sweep(now);
                }
            }
            self.pump();
        }
    }

    /// Sends a four-letter word's answer and closes the connection, as ZooKeeper does.
    fn answer_four_letter(&self, conn: ConnId, text: String) {
        self.route(Out::Frame(conn, text.into_bytes()));
        self.route(Out::Close(conn));
        self.remote_backlogs.borrow_mut().remove(&conn);
    }

    fn four_letter(&self, word: &str) -> Answer<String> {
        let Some(w) = FourLetterWord::from_name(word) else {
            return Answer::Now(String::new());
        };
        if !self.settings.admin.config.four_letter_word_allowed(word) {
            return Answer::Now(admin::not_whitelisted(w));
        }
        let mut core = self.core.borrow_mut();
        let ens = match &*core {
            Core::Ensemble(n) => Some(ensemble_stats(n)),
            Core::Standalone(_) => None,
        };
        let m = core.machine_mut();
        let stats = |o: &Self, m: &Machine| {
            let mut st = o.stats(m);
            if let Some(e) = &ens {
                e.fill(&mut st);
            }
            st
        };
        // ZooKeeper's answer while electing or synchronizing; so far only these four words
        // give it, the others answer from the machine's state as when serving. `isro` answers
        // `null` then: kazoo's read-only clients look for a writable server with it, and must
        // not take an electing one for one. In read-only mode ZooKeeper's read-only server
        // answers them (`Mode: read-only`, `ro`).
        let electing = ens.as_ref().is_some_and(|e| !e.serving && !e.read_only);
        let words = [FourLetterWord::Srvr, FourLetterWord::Stat, FourLetterWord::Mntr, FourLetterWord::Isro];
        if electing && words.contains(&w) {
            if let Some(text) = admin::not_serving_response(w) {
                return Answer::Now(text);
            }
        }
        if w == FourLetterWord::Dump {
            let input = DumpCopy::take(m, self.start_wall_ms);
            return Answer::Later(Box::new(move || admin::dump(&input.info())));
        }
        if matches!(w, FourLetterWord::Wchs | FourLetterWord::Wchc | FourLetterWord::Wchp) {
            let input = WatchReport::take(m);
            return Answer::Later(Box::new(move || match w {
                FourLetterWord::Wchs => admin::wchs(&admin::WatchSummary::from_by_session(&input.by_session())),
                FourLetterWord::Wchc => admin::wchc(&input.by_session()),
                _ => admin::wchp(&input.by_path()),
            }));
        }
        Answer::Now(match w {
            FourLetterWord::Ruok => admin::ruok().to_string(),
            FourLetterWord::Srvr => admin::srvr(&stats(self, m)),
            FourLetterWord::Stat => admin::stat(&stats(self, m)),
            FourLetterWord::Mntr => admin::mntr(&stats(self, m)),
            FourLetterWord::Cons => admin::cons(&self.stats(m).connections),
            FourLetterWord::Isro => admin::isro(m.read_only()).to_string(),
            FourLetterWord::Crst => {
                m.reset_conn_stats();
                admin::crst().to_string()
            }
            FourLetterWord::Srst => {
                m.reset_counters();
                admin::srst().to_string()
            }
            FourLetterWord::Conf => {
                let a = &self.settings.admin;
                a.config.to_conf_text(dir_size(&a.data_log_dir), dir_size(&a.data_dir))
            }
            FourLetterWord::Envi => admin::envi(&admin::EnvInfo::new(self.settings.admin.version.clone())),
            FourLetterWord::Dirs => {
                admin::dirs(dir_size(&self.settings.admin.data_dir), dir_size(&self.settings.admin.data_log_dir))
            }
            other => format!("{} is not supported by Warren.\n", other.as_str()),
        })
    }

    fn stats(&self, m: &Machine) -> admin::ServerStats {
        let k = m.counters();
        let connections = m
            .connections()
            .map(|(id, ip, session, s)| {
                let mut c = admin::ConnectionStats::new(SocketAddr::new(ip, (id & 0xffff) as u16));
                c.session_id = session;
                c.received = s.received;
                c.sent = s.sent;
                c.last_op = if s.last_op.is_empty() { "NA".into() } else { s.last_op.to_string() };
                c.established_ms = s.established_ms;
                c.last_cxid = s.last_cxid as i64;
                c.last_zxid = s.last_zxid;
                c.last_latency_ms = s.last_latency_ms;
                if s.replies > 0 {
                    c.min_latency_ms = s.min_latency_ms;
                    c.max_latency_ms = s.max_latency_ms;
                    c.avg_latency_ms = s.total_latency_ms / s.replies as i64;
                }
                c.session_timeout_ms = m.sessions().get(session).map_or(0, |x| x.timeout_ms);
                c
            })
            .collect::<Vec<_>>();
        admin::ServerStats {
            version: self.settings.admin.version.clone(),
            latency_min_ms: k.min_latency_ms,
            latency_avg_ms: admin::avg_latency(k.total_latency_ms as u64, k.replies),
            latency_max_ms: k.max_latency_ms,
            packets_received: k.packets_received,
            packets_sent: k.packets_sent,
            num_alive_connections: connections.len() as u64,
            outstanding_requests: m.outstanding() as u64,
            zxid: m.last_zxid(),
            mode: "standalone".into(),
            read_only: m.read_only(),
            extra_metrics: [crate::metrics::mntr_summaries(&self.settings.admin.metrics), self.wal_metrics()].concat(),
            node_count: zookeeper_node_count(m.tree()),
            connections,
            watch_count: m.watches().watch_count() as u64,
            ephemerals_count: m.tree().ephemeral_count() as u64,
            approximate_data_size: m.tree().approximate_data_size(),
            open_file_descriptor_count: open_fds(),
            max_file_descriptor_count: max_fds(),
            global_sessions: (m.sessions().len() - m.local_session_count()) as u64,
            local_sessions: m.local_session_count() as u64,
            uptime_ms: (wall_ms() - self.start_wall_ms).max(0) as u64,
            ..Default::default()
        }
    }

    /// Log health for `mntr`: ZooKeeper's fsync threshold counter plus Warren's own figures.
    fn wal_metrics(&self) -> Vec<(String, admin::MetricValue)> {
        let s = &self.wal.stats;
        let int = |v: u64| admin::MetricValue::Int(v as i64);
        vec![
            ("warren_log_slow_fsyncs".into(), int(s.slow_fsyncs.get())),
            ("warren_log_fsyncs".into(), int(s.fsyncs.get())),
            ("warren_log_records".into(), int(s.records.get())),
            ("warren_log_last_fsync_us".into(), int(s.last_fsync_us.get())),
            ("warren_log_max_fsync_us".into(), int(s.max_fsync_us.get())),
            ("warren_log_failed".into(), int(self.wal.is_poisoned() as u64)),
        ]
    }
}

/// How often the owner publishes its gauges for the metrics endpoint and the probes.
pub(crate) const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

impl Owner {
    /// Publishes the gauges every [`PUBLISH_INTERVAL`]: a handful of O(1) reads and atomic
    /// stores, so that a scrape never has to ask the owner anything.
    pub(crate) async fn publisher(self: Rc<Self>) {
        loop {
            self.publish();
            glommio::timer::sleep(PUBLISH_INTERVAL).await;
        }
    }

    fn publish(&self) {
        let m = &self.settings.admin.metrics;
        let core = self.core.borrow();
        let machine = core.machine();
        let k = machine.counters();
        let tree = machine.tree();
        m.znode_count.set(zookeeper_node_count(tree) as i64);
        m.avg_latency_x1000.set((admin::avg_latency(k.total_latency_ms as u64, k.replies) * 1000.0) as i64);
        m.min_latency.set(k.min_latency_ms);
        m.max_latency.set(k.max_latency_ms);
        m.ephemerals_count.set(tree.ephemeral_count() as i64);
        m.approximate_data_size.set(tree.approximate_data_size() as i64);
        m.watch_count.set(machine.watches().watch_count() as i64);
        m.outstanding_requests.set(machine.outstanding() as i64);
        m.num_alive_connections.set(machine.connections().count() as i64);
        m.global_sessions.set((machine.sessions().len() - machine.local_session_count()) as i64);
        m.local_sessions.set(machine.local_session_count() as i64);
        m.packets_received.set(k.packets_received as i64);
        m.packets_sent.set(k.packets_sent as i64);
        m.last_zxid.set(machine.last_zxid());
        m.read_only.set(machine.read_only() as i64);
        m.fsync_threshold_exceed_count.set(self.wal.stats.slow_fsyncs.get() as i64);
        match &*core {
            Core::Standalone(_) => m.serving.set(1),
            Core::Ensemble(n) => {
                let e = ensemble_stats(n);
                m.serving.set(e.serving as i64);
                m.quorum_size.set(e.quorum_size as i64);
                m.is_leader.set(e.leader.is_some() as i64);
                let l = e.leader.unwrap_or_default();
                m.learners.set(l.learners as i64);
                m.synced_followers.set(l.synced_followers as i64);
                m.synced_observers.set(l.synced_observers as i64);
                m.pending_syncs.set(l.pending_syncs as i64);
                for (_, lag) in n.learner_lags() {
                    m.peer_lag_zxids.observe(lag as u64);
                }
            }
        }
        m.heartbeat_wall_ms.set(wall_ms());
    }

    /// Election time as ZooKeeper's `election_time`: from the moment an ensemble member stops
    /// serving (start-up included) to the moment it serves again. Called after every pump.
    fn note_serving(&self, serving: bool) {
        match (serving, self.not_serving_since.get()) {
            (true, Some(since)) => {
                self.settings.admin.metrics.election_time.observe(since.elapsed().as_millis() as u64);
                self.not_serving_since.set(None);
            }
            (false, None) => self.not_serving_since.set(Some(Instant::now())),
            _ => {}
        }
    }

    /// Answers the AdminServer commands that need the owner's state (the others are answered
    /// on the HTTP thread, see `server::admin`).
    pub(crate) async fn serve_admin(self: Rc<Self>, rx: async_channel::Receiver<super::admin::ToOwner>) {
        use super::admin::ToOwner;
        while let Ok(q) = rx.recv().await {
            match q {
                ToOwner::Command(q) => match self.admin_command(q.command, q.dirs) {
                    Answer::Now(v) => {
                        let _ = q.reply.send(v);
                    }
                    // The HTTP thread waits on the reply, not on this task: a thread of its own.
                    Answer::Later(job) => {
                        let spawned = std::thread::Builder::new()
                            .name("warren-report".into())
                            .spawn(move || drop(q.reply.send(job())));
                        if let Err(e) = spawned {
                            warn!("cannot start a thread for an admin command: {e}");
                        }
                    }
                },
                ToOwner::Restore(q) => {
                    use super::admin::RestoreStep;
                    match q.step {
                        RestoreStep::Check(reply) => {
                            let _ = reply.send(self.may_restore(&q.auth, q.credentials));
                        }
                        RestoreStep::Install(install, reply) => {
                            let me = self.clone();
                            glommio::spawn_local(async move {
                                let done = me.restore(&q.auth, q.credentials, install).await;
                                let _ = reply.send(done);
                            })
                            .detach();
                        }
                    }
                }
                // Its own task: the capture yields between chunks, other commands go on.
                ToOwner::Snapshot(q) => {
                    let me = self.clone();
                    glommio::spawn_local(async move {
                        let answer = me.backup_capture(&q.auth, q.credentials).await;
                        let _ = q.reply.send(answer);
                    })
                    .detach();
                }
            }
        }
    }

    /// `/commands/snapshot`: the caller needs ALL on "/" (ZooKeeper 3.9's rule); then a fuzzy
    /// capture, as for an ordinary snapshot, with every transaction applied meanwhile (the HTTP
    /// thread replays them over the capture: `snap::backup`).
    async fn backup_capture(
        &self,
        auth: &crate::acl::AuthInfo,
        credentials: bool,
    ) -> Result<super::admin::Capture, super::http::HttpResponse> {
        use crate::admin_json as j;
        let refuse = |status: u16, why: &str| super::http::HttpResponse::json(status, &j::error("snapshot", why));
        let (start, paths, sessions, generation) = {
            let mut core = self.core.borrow_mut();
            if let Core::Ensemble(n) = &*core {
                if !n.serving() {
                    return Err(refuse(503, admin::ZK_NOT_SERVING));
                }
            }
            let m = core.machine_mut();
            root_all(m, auth, credentials, "snapshot")?;
            m.start_tap();
            let paths: Vec<String> = m.tree().iter().map(|(p, _)| p.clone()).collect();
            (m.last_zxid(), paths, m.session_records(), m.generation())
        };
        let image = self.capture(start, &paths, &sessions).await;
        let (changes, txns, now_generation) = {
            let mut core = self.core.borrow_mut();
            let m = core.machine_mut();
            let (changed, txns) = m.take_tap();
            let nodes = changed.into_iter().map(|p| {
                let now = m.tree().get(&p).map(|n| crate::snap::node_record(&p, n));
                (p, now)
            });
            let changes = crate::snap::backup::Changes {
                nodes: nodes.collect(),
                sessions: m.session_records(),
                zxid: m.last_zxid(),
            };
            (changes, txns, m.generation())
        };
        let image = image.map_err(|e| refuse(500, &format!("the capture failed: {e}")))?;
        if now_generation != generation {
            return Err(refuse(503, "the server resynchronised with its leader during the capture; try again"));
        }
        Ok(super::admin::Capture { image, changes, txns })
    }

    /// `/commands/restore`, before the upload is read: a standalone server whose log works,
    /// and a caller with ALL on "/". Answers the last zxid prepared.
    fn may_restore(&self, auth: &crate::acl::AuthInfo, credentials: bool) -> Result<i64, super::http::HttpResponse> {
        let refuse = |status: u16, why: &str| super::http::HttpResponse::json(status, &j_error("restore", why));
        let core = self.core.borrow();
        let Core::Standalone(m) = &*core else {
            return Err(refuse(409, "restore is refused on an ensemble member"));
        };
        if let Some(why) = m.log_failure() {
            return Err(refuse(503, &format!("the transaction log has failed ({why}); restart the server first")));
        }
        root_all(m, auth, credentials, "restore")?;
        Ok(m.last_prepared_zxid())
    }

    /// `/commands/restore`: replaces the tree and sessions with a validated backup's, durably.
    /// No periodic snapshot runs meanwhile (its capture would mix the two trees). With the log
    /// writer held (everything appended before is written): the restored snapshot, at a zxid
    /// that starts a new epoch (`backup::restored_zxid`), is written and synced; only then is
    /// the state replaced (connections closed, watches dropped), the older snapshots removed,
    /// and the log started afresh. A crash at any point comes back with either the old state
    /// (before the snapshot is durable; the restore was not acknowledged) or the restored one:
    /// every record of the old log is below the restored zxid, so it is never replayed over it.
    async fn restore(
        &self,
        auth: &crate::acl::AuthInfo,
        credentials: bool,
        install: Box<super::admin::Install>,
    ) -> Result<(), super::http::HttpResponse> {
        let refuse = |status: u16, why: &str| super::http::HttpResponse::json(status, &j_error("restore", why));
        let waited = Instant::now();
        while self.snaps.running.swap(true, Ordering::SeqCst) {
            if waited.elapsed() > RESTORE_SNAPSHOT_WAIT {
                return Err(refuse(503, "a snapshot is still being written; try again"));
            }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        let _no_snapshots = ClearOnDrop(self.snaps.running.clone());
        let super::admin::Install { backup, zxid, image } = *install;
        let (snap_dir, data_dir) = (self.settings.storage.snap_dir.clone(), self.settings.admin.data_dir.clone());
        let mut refusal = None;
        let installed = self
            .wal
            .replace_log(zxid, async {
                // Checked again with the writer held: the caller and the zxids may have changed.
                let current = match self.may_restore(auth, credentials) {
                    Ok(z) => z,
                    Err(r) => {
                        refusal = Some(r);
                        return Err(std::io::Error::other("refused"));
                    }
                };
                if current >> 32 >= zxid >> 32 {
                    refusal = Some(refuse(409, "the server moved to a new epoch meanwhile; try again"));
                    return Err(std::io::Error::other("refused"));
                }
                // The epoch files first (a standalone server does not read them; they keep the
                // directory fit for an ensemble): once the snapshot is durable nothing may fail
                // before the state is replaced, or a restart would bring back a restore that
                // was refused. Both are written on a helper thread: the snapshot may be large,
                // and the executor keeps serving meanwhile (writes wait: the log writer is held).
                let epoch = (zxid >> 32) as u32;
                let dirs = (data_dir.clone(), snap_dir.clone());
                let path = blocking_io("warren-restore", move || {
                    let (data_dir, snap_dir) = dirs;
                    epochs::store(&RealDisk, &data_dir, crate::quorum::Epochs { accepted: epoch, current: epoch })?;
                    snapshots::write(&RealDisk, &snap_dir, zxid, &image).inspect_err(|_| {
                        // Renamed but the directory not synced: it must not come back on a restart.
                        let _ = RealDisk.remove(&snap_dir.join(snapshots::file_name(zxid)));
                    })
                })
                .await?;
                let now = self.now();
                if let Core::Standalone(m) = &mut *self.core.borrow_mut() {
                    m.restore(backup.tree, &backup.sessions, zxid, now);
                }
                info!(
                    "restored the backup at zxid {:#x} as {} ({} sessions); every client connection is closed",
                    backup.start_zxid,
                    path.display(),
                    backup.sessions.len()
                );
                let gone =
                    blocking_io("warren-restore", move || snapshots::remove_before(&RealDisk, &snap_dir, zxid)).await?;
                for z in gone {
                    info!("removed snapshot {z:#x} of the replaced state");
                }
                Ok(())
            })
            .await;
        if let Some(r) = refusal {
            return Err(r);
        }
        self.pump();
        match installed {
            Ok(()) => Ok(()),
            Err(e) if self.core.borrow().machine().last_zxid() == zxid => {
                // Restored and durable, but the old files are not all gone.
                self.log_failed(&format!("after the restore, removing the replaced state's files failed: {e}"));
                Err(refuse(500, &format!("restored, but removing the replaced state's files failed: {e}")))
            }
            Err(e) => Err(refuse(500, &format!("the restore failed before changing anything: {e}"))),
        }
    }

    fn admin_command(&self, command: &'static str, dirs: crate::admin_json::DirSizes) -> Answer<serde_json::Value> {
        use crate::admin_json as j;
        let mut core = self.core.borrow_mut();
        let ens = match &*core {
            Core::Ensemble(n) => Some(ensemble_stats(n)),
            Core::Standalone(_) => None,
        };
        let serving = ens.as_ref().is_none_or(|e| e.serving || e.read_only);
        if !serving && !matches!(command, "monitor" | "zabstate") {
            return Answer::Now(j::error(command, admin::ZK_NOT_SERVING));
        }
        let m = core.machine_mut();
        let stats = |o: &Self, m: &Machine| {
            let mut st = o.stats(m);
            if let Some(e) = &ens {
                e.fill(&mut st);
            }
            st
        };
        let dirs = j::DirSizes { fsync_threshold_exceed_count: self.wal.stats.slow_fsyncs.get(), ..dirs };
        let fields = match command {
            "monitor" => j::monitor(&stats(self, m)),
            "server_stats" => j::server_stats(&stats(self, m), dirs),
            "stats" => j::stats(&stats(self, m), dirs),
            "connections" => j::connections(&self.stats(m).connections),
            "connection_stat_reset" => {
                m.reset_conn_stats();
                Default::default()
            }
            "stat_reset" => {
                m.reset_counters();
                self.settings.admin.metrics.reset_latency();
                Default::default()
            }
            "is_read_only" => {
                let mut f = serde_json::Map::new();
                f.insert("read_only".into(), m.read_only().into());
                f
            }
            "dump" => {
                let input = DumpCopy::take(m, self.start_wall_ms);
                return Answer::Later(Box::new(move || j::response(command, None, j::dump(&input.info()))));
            }
            "watches" | "watches_by_path" | "watch_summary" => {
                let input = WatchReport::take(m);
                return Answer::Later(Box::new(move || {
                    let fields = match command {
                        "watches" => j::watches(&input.by_session()),
                        "watch_summary" => j::watch_summary(&admin::WatchSummary::from_by_session(&input.by_session())),
                        _ => j::watches_by_path(&input.by_path()),
                    };
                    j::response(command, None, fields)
                }));
            }
            "leader" | "zabstate" | "observers" => {
                drop(core);
                return Answer::Now(self.quorum_command(command));
            }
            other => return Answer::Now(j::error(other, "not answered by the owner")),
        };
        Answer::Now(j::response(command, None, fields))
    }

    /// `leader`, `zabstate` and `observers`: what this member knows about its quorum.
    fn quorum_command(&self, command: &'static str) -> serde_json::Value {
        use crate::admin_json as j;
        use serde_json::json;
        let core = self.core.borrow();
        let Core::Ensemble(n) = &*core else {
            return match command {
                "leader" => j::error(command, "server is not initialized"),
                "zabstate" => j::response(
                    command,
                    None,
                    json!({"voting": false, "zabstate": ""}).as_object().cloned().unwrap_or_default(),
                ),
                _ => j::response(
                    command,
                    None,
                    json!({"synced_observers": 0, "observers": []}).as_object().cloned().unwrap_or_default(),
                ),
            };
        };
        let myid = n.config().myid;
        let leading = n.state() == PeerState::Leading;
        let members = &self.settings.ensemble.as_ref().expect("ensemble settings").members;
        let fields = match command {
            "leader" => {
                let leader = n.leader();
                let ip = leader
                    .and_then(|id| members.iter().find(|(m, _, _)| *m == id))
                    .map_or(String::new(), |(_, q, _)| q.host().to_string());
                json!({"is_leader": leading, "leader_id": leader.map_or(-1, |l| l as i64), "leader_ip": ip})
            }
            "zabstate" => {
                let me = members.iter().find(|(m, _, _)| *m == myid);
                let z = n.machine().last_zxid();
                let state = match (n.state(), n.serving()) {
                    (PeerState::Looking, _) => "election",
                    (_, false) => "synchronization",
                    (_, true) => "broadcast",
                };
                json!({
                    "myid": myid,
                    "is_leader": leading,
                    "quorum_address": me.map_or(String::new(), |(_, q, _)| q.to_string()),
                    "election_address": me.map_or(String::new(), |(_, _, e)| e.to_string()),
                    "client_address": self.settings.addr.map_or(String::new(), |a| a.to_string()),
                    "voting": n.config().voters.contains(&myid),
                    "last_zxid": format!("0x{z:x}"),
                    "zab_epoch": z >> 32,
                    "zab_counter": z & 0xffff_ffff,
                    "zabstate": state,
                })
            }
            _ => {
                let (_, _, synced_observers, _) = n.learner_counts();
                json!({"synced_observers": if leading { synced_observers } else { 0 }, "observers": []})
            }
        };
        j::response(command, None, fields.as_object().cloned().unwrap_or_default())
    }
}

/// How long a restore waits for a periodic snapshot being written to finish.
const RESTORE_SNAPSHOT_WAIT: Duration = Duration::from_secs(60);

/// Clears a flag when dropped.
struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

fn j_error(command: &str, why: &str) -> serde_json::Value {
    crate::admin_json::error(command, why)
}

/// The snapshot and restore commands' rule (ZooKeeper 3.9's): the caller holds ALL on "/";
/// 401 without credentials, 403 with credentials that are not enough.
fn root_all(
    m: &Machine,
    auth: &crate::acl::AuthInfo,
    credentials: bool,
    command: &str,
) -> Result<(), super::http::HttpResponse> {
    if m.allows("/", crate::acl::perms::ALL, auth) {
        return Ok(());
    }
    let (status, why) = if credentials {
        (403, "the credentials given do not have ALL permission on /")
    } else {
        (401, "ALL permission on / is required: send Authorization: digest user:password")
    };
    Err(super::http::HttpResponse::json(status, &crate::admin_json::error(command, why)))
}

/// When to snapshot: after a random number of transactions in [snapCount/2 + 1, snapCount]
/// (ZooKeeper randomises the point so that the servers of an ensemble do not all snapshot at
/// once), or once the log grew by snapSizeLimitInKb (randomised the same way), and never two
/// at a time.
struct Snapshots {
    snap_count: u64,
    size_limit: u64,
    since: Cell<u64>,
    bytes_since: Cell<u64>,
    byte_threshold: Cell<u64>,
    threshold: Cell<u64>,
    rng: Cell<u64>,
    running: Arc<AtomicBool>,
}

impl Snapshots {
    fn new(snap_count: u64, size_limit: u64, seed: i64) -> Snapshots {
        let s = Snapshots {
            snap_count: snap_count.max(2),
            size_limit,
            since: Cell::new(0),
            bytes_since: Cell::new(0),
            byte_threshold: Cell::new(u64::MAX),
            threshold: Cell::new(0),
            rng: Cell::new((seed as u64 ^ wall_ms() as u64) | 1),
            running: Arc::new(AtomicBool::new(false)),
        };
        s.rearm();
        s
    }

    fn rearm(&self) {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        let half = self.snap_count / 2;
        self.threshold.set(half + 1 + x % (self.snap_count - half));
        if self.size_limit > 0 {
            let half = self.size_limit / 2;
            self.byte_threshold.set(half + 1 + (x >> 17) % (self.size_limit - half).max(1));
        }
    }

    /// Counts appended transactions and log bytes; true when a snapshot should start now.
    fn due(&self, appended: u64, bytes: u64) -> bool {
        self.since.set(self.since.get() + appended);
        self.bytes_since.set(self.bytes_since.get() + bytes);
        let reached = self.since.get() >= self.threshold.get() || self.bytes_since.get() >= self.byte_threshold.get();
        if !reached || self.running.load(Ordering::SeqCst) {
            return false;
        }
        self.since.set(0);
        self.bytes_since.set(0);
        self.rearm();
        true
    }
}

/// Watches by session and by path, with session ids (`wchc`/`wchp` and their admin commands).
/// An answer the owner gives at once, or work it hands to another thread: the watch reports
/// sort, group and format up to millions of entries, which would hold every client up.
pub(crate) enum Answer<T> {
    Now(T),
    Later(Box<dyn FnOnce() -> T + Send>),
}

/// What the watch reports (wchc, wchp, wchs and their AdminServer commands) need from the
/// owner: a flat copy of the watches (one reference count per watch) and each connection's
/// session. The rest happens off the owner.
struct WatchReport {
    copy: crate::watch::WatchCopy,
    sessions: HashMap<u64, i64>,
}

impl WatchReport {
    fn take(m: &Machine) -> WatchReport {
        let sessions = m.connections().map(|(conn, _, session, _)| (conn, session)).collect();
        WatchReport { copy: m.watches().data_side_copy(), sessions }
    }

    /// The copy, and the session of a connection (0 when it has none).
    fn split(self) -> (crate::watch::WatchCopy, impl Fn(u64) -> i64) {
        let sessions = self.sessions;
        (self.copy, move |conn| sessions.get(&conn).copied().unwrap_or(0))
    }

    /// (session, paths) in connection order, as ZooKeeper lists them.
    fn by_session(self) -> Vec<(i64, Vec<String>)> {
        let (copy, session) = self.split();
        copy.by_watcher().into_iter().map(|(c, paths)| (session(c), paths)).collect()
    }

    fn by_path(self) -> Vec<(String, Vec<i64>)> {
        let (copy, session) = self.split();
        copy.by_path().into_iter().map(|(p, conns)| (p, conns.into_iter().map(&session).collect())).collect()
    }
}

/// What `dump` needs from the owner: each session's expiry and each session's ephemeral paths
/// (a reference count per path). Grouping, sorting and formatting happen off the owner.
struct DumpCopy {
    /// (session id, expiry as wall-clock ms).
    expiries: Vec<(i64, i64)>,
    ephemerals: Vec<(i64, Vec<Arc<str>>)>,
}

impl DumpCopy {
    fn take(m: &Machine, start_wall_ms: i64) -> DumpCopy {
        DumpCopy {
            expiries: m.sessions().iter().map(|s| (s.id, start_wall_ms + s.expire_at_ms)).collect(),
            ephemerals: m.tree().ephemeral_sessions().map(|(s, set)| (*s, set.iter().cloned().collect())).collect(),
        }
    }

    fn info(mut self) -> admin::DumpInfo {
        let mut buckets: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
        for (id, wall) in self.expiries {
            buckets.entry(wall).or_default().push(id);
        }
        let sessions = admin::SessionDump::Standalone(
            buckets
                .into_iter()
                .map(|(t, mut ids)| {
                    ids.sort_unstable();
                    admin::ExpiryBucket { expire_at_ms: t, session_ids: ids }
                })
                .collect(),
        );
        self.ephemerals.sort_unstable_by_key(|(s, _)| *s);
        let ephemerals =
            self.ephemerals.into_iter().map(|(s, paths)| (s, paths.iter().map(|p| p.to_string()).collect())).collect();
        admin::DumpInfo { sessions, ephemerals, connections: None }
    }
}

/// The node count as ZooKeeper reports it (`znode_count`, srvr's `Node count`): its DataTree
/// holds the root under two names, "" and "/", so its count is one more than the nodes.
fn zookeeper_node_count(tree: &crate::tree::DataTree) -> u64 {
    tree.node_count() as u64 + 1
}

pub(crate) fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

pub(crate) fn open_fds() -> i64 {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count() as i64).unwrap_or(-1)
}

pub(crate) fn max_fds() -> i64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(-1)
}

/// What the four-letter words show about an ensemble member.
struct EnsembleStats {
    serving: bool,
    /// Looking for a leader, serving read-only clients meanwhile.
    read_only: bool,
    mode: &'static str,
    peer_state: String,
    quorum_size: u64,
    leader: Option<admin::LeaderStats>,
    extra: Vec<(String, admin::MetricValue)>,
}

fn ensemble_stats(n: &Node) -> EnsembleStats {
    let (mode, state) = match n.state() {
        PeerState::Leading => ("leader", "leading"),
        PeerState::Following => ("follower", "following"),
        PeerState::Observing => ("observer", "observing"),
        // ZooKeeper's ReadOnlyZooKeeperServer.getState: srvr's `Mode:`, mntr's zk_server_state.
        PeerState::Looking if n.read_only() => ("read-only", "looking"),
        PeerState::Looking => ("looking", "looking"),
    };
    let phase = if n.serving() { "broadcast" } else { "synchronization" };
    let leader = (n.state() == PeerState::Leading).then(|| {
        let (learners, synced, synced_obs, pending) = n.learner_counts();
        admin::LeaderStats {
            learners: learners as u64,
            synced_followers: synced as u64,
            synced_observers: synced_obs as u64,
            pending_syncs: pending as u64,
            ..Default::default()
        }
    });
    let int = |v: i64| admin::MetricValue::Int(v);
    let e = n.epochs();
    EnsembleStats {
        serving: n.serving(),
        read_only: n.read_only(),
        mode,
        peer_state: format!("{state} - {phase}"),
        quorum_size: n.config().voters.len() as u64,
        leader,
        extra: vec![
            ("warren_current_epoch".into(), int(e.current as i64)),
            ("warren_accepted_epoch".into(), int(e.accepted as i64)),
            ("warren_last_logged_zxid".into(), int(n.last_logged())),
            ("warren_outstanding_proposals".into(), int(n.outstanding_proposals() as i64)),
        ],
    }
}

impl EnsembleStats {
    fn fill(&self, st: &mut admin::ServerStats) {
        st.mode = self.mode.to_string();
        // ZooKeeper's read-only server is not a quorum server: its mntr has neither
        // zk_peer_state nor zk_quorum_size (checked against 3.8.0).
        st.peer_state = (!self.read_only).then(|| self.peer_state.clone());
        st.quorum_size = (!self.read_only).then_some(self.quorum_size);
        st.leader = self.leader.clone();
        st.extra_metrics.extend(self.extra.iter().cloned());
    }
}
