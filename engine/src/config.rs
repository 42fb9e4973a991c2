//! Reading ZooKeeper's `zoo.cfg`.
//!
//! Warren accepts the configuration files ZooKeeper operators already have, so
//! the syntax follows `java.util.Properties` (what ZooKeeper uses): `key=value`
//! or `key:value` or `key value`, `#` and `!` comment lines, backslash line
//! continuation and `\t`, `\n`, `\u` escapes (four hex digits). Key and value are
//! trimmed the way ZooKeeper trims them.
//!
//! Keys fall in four groups:
//! * keys Warren uses (they end up in [`Config`]);
//! * keys ZooKeeper knows that change nothing a client is promised: accepted with a
//!   warning that names the key, its line and why ([`IGNORED_KEYS`], [`IGNORED_KEY_PREFIXES`]);
//! * keys whose feature Warren lacks and whose absence would change what the ensemble
//!   promises (local sessions, hierarchical quorums): refused when set;
//! * keys ZooKeeper knows whose feature Warren lacks: accepted with a warning;
//!   the ones that would make a server *enforce* client authentication are
//!   refused, because running without that enforcement would silently open
//!   the server;
//! * everything else: a warning naming the line, never an error, so a newer
//!   ZooKeeper key does not stop the server.
//!
//! Warnings are returned to the caller (who decides how to log them) rather
//! than logged here, so they are not printed twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub mod tls;

/// The embedded default configuration as `zoo.cfg` text; parsing it yields
/// exactly [`Config::embedded_default`].
pub const EMBEDDED_DEFAULT_CFG: &str = "\
# Warren embedded default configuration (used when no zoo.cfg is given).
# Listens on the loopback interface only: exposing a server must be a choice.
tickTime=2000
dataDir=./warren-data
clientPort=2181
clientPortAddress=127.0.0.1
";

/// Every four-letter word ZooKeeper 3.8 knows.
pub const KNOWN_FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "icfg", "isro", "mntr", "ruok", "srst", "srvr",
    "stat", "stmk", "sysp", "wchc", "wchp", "wchs",
];

/// Whitelist used when `4lw.commands.whitelist` is absent. Wider than
/// ZooKeeper 3.8's (`srvr` only) because the Warren issue asks for the usual
/// health-check words to work out of the box.
pub const DEFAULT_FOUR_LETTER_WORDS: &[&str] = &["ruok", "srvr", "stat", "mntr", "isro"];

/// Keys ZooKeeper knows that Warren accepts and ignores, each with the reason given in the
/// warning that names it: tuning knobs of ZooKeeper internals (JVM, Netty, request pipeline,
/// quorum connections) whose absence changes nothing a client is promised.
pub const IGNORED_KEYS: &[(&str, &str)] = &[
    ("standaloneEnabled", "a server without server.N lines runs standalone, one with them in an ensemble"),
    ("reconfigEnabled", "dynamic reconfiguration is not implemented: reconfig answers ReconfigDisabled"),
    ("audit.enable", "Warren writes no audit log"),
    ("quorumListenOnAllIPs", "the quorum and election ports bind the addresses of the server.N lines"),
    ("electionPortBindRetry", "Warren retries binding the election port without a limit"),
    ("electionAlg", "Warren has one election algorithm (ZooKeeper 3.8 accepts only 3)"),
    ("cnxTimeout", "peer connection timeouts follow tickTime"),
    ("connectToLearnerMasterLimit", "observers connect to the leader only"),
    ("observerMasterPort", "observers connect to the leader only"),
    ("syncEnabled", "observers always log to disk"),
    ("leaderServes", "the leader always serves clients"),
    ("globalOutstandingLimit", "client requests are bounded per connection (warren.maxQueuedReplyBytes)"),
    ("clientPortListenBacklog", "the listen backlog is the operating system's default"),
    ("serverCnxnFactory", "Warren has its own network layer"),
    ("txnLogSizeLimitInKb", "log segments roll at preAllocSize"),
    ("commitLogCount", "the leader's in-memory window is warren.diffWindow"),
    ("flushDelay", "the log is flushed as soon as the previous fsync ends (group commit)"),
    ("maxWriteQueuePollTime", "the log is flushed as soon as the previous fsync ends (group commit)"),
    ("maxBatchSize", "a log batch holds whatever arrived during the previous fsync"),
    ("maxResponseCacheSize", "Warren keeps no response cache"),
    ("maxGetChildrenResponseCacheSize", "Warren keeps no response cache"),
    ("requestThrottleLimit", "Warren does not throttle requests server-wide"),
    ("requestThrottleStallTime", "Warren does not throttle requests server-wide"),
    ("requestThrottleDropStale", "Warren does not throttle requests server-wide"),
    ("largeRequestMaxBytes", "large requests are bounded by jute.maxbuffer and warren.maxQueuedReplyBytes"),
    ("largeRequestThreshold", "large requests are bounded by jute.maxbuffer and warren.maxQueuedReplyBytes"),
    ("digest.enabled", "Warren keeps no tree digests (its log and snapshots carry CRC32C checksums)"),
    ("closeSessionTxn.enabled", "closing a session is always a logged transaction"),
    ("snapshot.trust.empty", "Warren refuses a log without the snapshot it needs"),
    ("snapshot.compression.method", "Warren writes its own snapshot format"),
    ("watchManagerName", "Warren has one watch table"),
    ("quorum.cnxn.threads.size", "peer connections run on the server's executors"),
    ("oraclePath", "Warren has no quorum oracle for two-server ensembles"),
    ("jute.maxbuffer.extrasize", "jute.maxbuffer is the whole limit"),
    ("initialConfig", "the configuration is this file"),
];

/// Key prefixes accepted and ignored, with the warning's reason, see [`IGNORED_KEYS`].
pub const IGNORED_KEY_PREFIXES: &[(&str, &str)] = &[
    ("metricsProvider.", "Warren's Prometheus endpoint has no such setting"),
    ("admin.", "Warren's AdminServer has no such setting"),
    ("multiAddress.", "each server has one address"),
    ("jvm.pause.", "Warren is not a JVM"),
    ("nio.", "a setting of ZooKeeper's NIO connection layer, which Warren does not have"),
    ("netty.", "a setting of ZooKeeper's Netty connection layer, which Warren does not have"),
    ("learner.", "a tuning knob of ZooKeeper's learners"),
    ("leader.", "a tuning knob of ZooKeeper's leader"),
    ("follower.", "a tuning knob of ZooKeeper's followers"),
];

/// Keys refused at start-up when set: ignoring them would change what the ensemble promises
/// (who forms a quorum, which sessions survive a server, who may read when cut off).
const REFUSED_KEYS: &[(&str, &str)] = &[];

/// Prefixes of keys refused whatever their value: hierarchical quorums.
const REFUSED_PREFIXES: &[(&str, &str)] = &[
    ("group.", "hierarchical quorums are not implemented; Warren would count a majority of all voters"),
    ("weight.", "hierarchical quorums are not implemented; Warren would count a majority of all voters"),
];

/// Keys whose feature Warren lacks, with the consequence the operator must
/// know about; they are accepted with a warning.
const UNSUPPORTED_KEYS: &[(&str, &str)] =
    &[("dynamicConfigFile", "dynamic reconfiguration is not supported; the file is not read")];

/// Prefixes of unsupported settings, see [`UNSUPPORTED_KEYS`].
const UNSUPPORTED_PREFIXES: &[(&str, &str)] = &[
    ("ssl.quorum.", "not a quorum TLS key Warren reads (see docs/operations.md, Quorum TLS)"),
    ("authProvider.", "only the digest, ip, world, sasl (DIGEST-MD5) and x509 schemes are built in"),
    ("quorum.auth.", "quorum SASL authentication is not supported"),
];

/// Keys Warren reads, used to suggest the right spelling of a mistyped key.
const USED_KEYS: &[&str] = &[
    "tickTime",
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "maxClientCnxns",
    "maxCnxns",
    "nio.sessionlessCnxnTimeout",
    "minSessionTimeout",
    "maxSessionTimeout",
    "jute.maxbuffer",
    "4lw.commands.whitelist",
    "superDigest",
    "DigestAuthenticationProvider.superDigest",
    "initLimit",
    "syncLimit",
    "snapCount",
    "snapSizeLimitInKb",
    "preAllocSize",
    "forceSync",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "peerType",
    "readonlymode.enabled",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "warren.cores",
    "warren.ioMemoryKb",
    "warren.containerCheckIntervalMs",
    "warren.diffWindow",
    "warren.peerTimeoutMs",
    "warren.maxInflight",
    "warren.maxQueuedReplyBytes",
    "warren.maxWatchesPerSession",
    "fsync.warningthresholdms",
    "extendedTypesEnabled",
    "admin.enableServer",
    "admin.serverAddress",
    "admin.serverPort",
    "admin.commandURL",
    "admin.idleTimeout",
    "admin.commands.whitelist",
    "admin.snapshot.enabled",
    "admin.restore.enabled",
    "admin.rateLimiterIntervalInMS",
    "metricsProvider.className",
    "metricsProvider.httpHost",
    "metricsProvider.httpPort",
    "metricsProvider.exportJvmInfo",
    "skipACL",
    "requireClientAuthScheme",
    "sessionRequireClientSASLAuth",
    "enforce.auth.enabled",
    "enforce.auth.schemes",
    "java.security.auth.login.config",
    "sasl.serverconfig",
    "superUser",
];

const DEFAULT_TICK_TIME_MS: u32 = 2000;
const DEFAULT_ADMIN_SERVER_PORT: u16 = 8080;
const DEFAULT_METRICS_PORT: u16 = 7000;
const DEFAULT_CLIENT_PORT: u16 = 2181;
const DEFAULT_MAX_CLIENT_CNXNS: u32 = 60;
/// ZooKeeper's `zookeeper.nio.sessionlessCnxnTimeout` default (NIOServerCnxnFactory).
const DEFAULT_SESSIONLESS_CNXN_TIMEOUT_MS: u32 = 10_000;
/// 16 MiB: sixteen replies of the default jute.maxbuffer. A connection's reader pauses at
/// 1 MiB of unwritten replies (`server/outbox.rs`), so the cap is reached only by
/// notifications a client does not read, or by a burst of replies already on their way from
/// the owner to another executor: sixteen pipelined 1 MiB reads still fit.
const DEFAULT_MAX_QUEUED_REPLY_BYTES: u64 = 16 << 20;
/// About 185 MB of watch table at most per session (results/watches), far above what a
/// TreeCache of a large tree holds (two watches per node).
const DEFAULT_MAX_WATCHES_PER_SESSION: u64 = 1_000_000;
/// Below this many maximum-size replies the cap is worth a warning: a large reply followed by
/// a notification before the client read it would close the connection.
const MIN_REPLIES_UNDER_CAP: u64 = 2;
const DEFAULT_JUTE_MAX_BUFFER: u32 = 0xfffff;
const DEFAULT_INIT_LIMIT: u32 = 10;
const DEFAULT_SYNC_LIMIT: u32 = 5;
/// `warren.peerTimeoutMs`: a leader that stops answering is given up on after 1 s, not after
/// syncLimit × tickTime (10 s with ZooKeeper's sample settings); see conf/README.md for the cost.
const DEFAULT_PEER_TIMEOUT_MS: u64 = 1000;
const DEFAULT_SNAP_COUNT: u64 = 100_000;
/// ZooKeeper's SyncRequestProcessor needs at least two transactions per
/// snapshot interval (it randomises within half of it); lower is clamped.
const MIN_SNAP_COUNT: u64 = 2;
const DEFAULT_PRE_ALLOC_SIZE_KB: u64 = 65_536;
/// ZooKeeper refuses to purge below three snapshots and clamps lower values.
const MIN_SNAP_RETAIN_COUNT: u32 = 3;
const DEFAULT_WARREN_CORES: usize = 1;
const DEFAULT_WARREN_IO_MEMORY_KB: usize = 2048;
/// The usual RLIMIT_MEMLOCK is 8 MiB; io_uring's registered buffers count
/// against it, and the rest of the process needs some of it too, so the total
/// over all executors should stay at three quarters of it or less.
const MEMLOCK_BUDGET_KB: usize = 8192 * 3 / 4;
const DEFAULT_DATA_DIR: &str = "./warren-data";
/// ZooKeeper keeps snapshots and logs in a `version-2` subdirectory and
/// prints those paths in `conf`.
const VERSION_DIR: &str = "version-2";
/// Length of base64(SHA-1), the digest part of `superDigest`.
const SHA1_BASE64_LEN: usize = 28;

/// The largest `N` of `server.N`: a server's id is the top byte of the session ids it creates,
/// and 0xff there is reserved (ZooKeeper's `EphemeralType.MAX_EXTENDED_SERVER_ID`).
pub const MAX_SERVER_ID: u64 = 254;

/// A `server.N` line: a member of a ZooKeeper ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// The `N` of `server.N`, the member's `myid`.
    pub id: u64,
    /// Host name or IP address as written (IPv6 without the brackets).
    pub host: String,
    /// Port followers connect to the leader on.
    pub quorum_port: u16,
    /// Port used for leader election.
    pub election_port: u16,
    pub role: PeerRole,
    /// Client address from the `;[host:]port` suffix; the host is `0.0.0.0`
    /// when only a port is given, as in ZooKeeper.
    pub client_addr: Option<(String, u16)>,
}

/// This server's place in an ensemble, resolved from the `server.N` lines and `dataDir/myid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensemble {
    /// This server's id, read from `dataDir/myid`.
    pub myid: u64,
    /// Every member, participants and observers, sorted by id. This server's entry always
    /// has a client address: from its own line's `;[host:]port`, else `clientPortAddress`
    /// and `clientPort`. Another member's is `None` unless its line gives one.
    pub members: Vec<ServerEntry>,
    /// What ZooKeeper 3.8 puts in `/zookeeper/config` for this membership (QuorumMaj's text):
    /// one `server.N=host:quorumPort:electionPort:participant|observer[;clientHost:port]` line
    /// per member in id order, the client part only where the member's own line gives one,
    /// then `version=0` (a static configuration).
    pub config_text: String,
}

impl Ensemble {
    /// This server's own `server.N` entry.
    pub fn me(&self) -> &ServerEntry {
        self.members.iter().find(|m| m.id == self.myid).expect("myid is validated to be a member")
    }

    /// This server's role, from its own line (which wins over `peerType`, as in ZooKeeper).
    pub fn my_role(&self) -> PeerRole {
        self.me().role
    }

    /// Where followers connect to this server when it leads: (host, quorumPort).
    pub fn my_quorum_addr(&self) -> (String, u16) {
        (self.me().host.clone(), self.me().quorum_port)
    }

    /// Where this server takes part in leader election: (host, electionPort).
    pub fn my_election_addr(&self) -> (String, u16) {
        (self.me().host.clone(), self.me().election_port)
    }

    /// Ids of the members that vote, sorted.
    pub fn voters(&self) -> Vec<u64> {
        self.members.iter().filter(|m| m.role == PeerRole::Participant).map(|m| m.id).collect()
    }

    /// Ids of the observers, sorted.
    pub fn observers(&self) -> Vec<u64> {
        self.members.iter().filter(|m| m.role == PeerRole::Observer).map(|m| m.id).collect()
    }
}

/// Whether an ensemble member votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerRole {
    #[default]
    Participant,
    Observer,
}

/// Which four-letter words the server answers.
///
/// Words are case-sensitive, as in ZooKeeper. `srvr` is always allowed, as
/// ZooKeeper does, because `zkServer.sh status` depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWhitelist {
    /// `*`: every word.
    All,
    /// Only these words (plus `srvr`).
    Only(BTreeSet<String>),
}

/// The typed result of reading a `zoo.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `tickTime`: the basic time unit, in milliseconds.
    pub tick_time_ms: u32,
    /// `dataDir`: snapshots (and the transaction log unless `dataLogDir`).
    /// A relative path is relative to the process's working directory.
    pub data_dir: PathBuf,
    /// `dataLogDir`; `None` means the log lives in `data_dir`.
    pub data_log_dir: Option<PathBuf>,
    /// `clientPort`; 0 lets the operating system choose.
    pub client_port: u16,
    /// Whether a plaintext client port is opened: false when only `secureClientPort` is set
    /// (ZooKeeper's secure-only server); otherwise `clientPort`, 2181 when unset.
    pub plaintext_client_port: bool,
    /// `clientPortAddress`: the address the client port is bound to.
    pub client_port_address: IpAddr,
    /// `maxClientCnxns`: connections per client IP; 0 = unlimited.
    pub max_client_cnxns: u32,
    /// `maxCnxns` (ZooKeeper 3.6+, its system property `zookeeper.maxCnxns`): connections from
    /// all addresses together; 0 = unlimited.
    pub max_cnxns: u32,
    /// `nio.sessionlessCnxnTimeout` (ZooKeeper's system property
    /// `zookeeper.nio.sessionlessCnxnTimeout`), milliseconds: a connection must send its
    /// ConnectRequest (or four-letter word) this soon after it was accepted.
    pub sessionless_cnxn_timeout_ms: u32,
    /// `minSessionTimeout`, milliseconds (default 2 × tickTime).
    pub min_session_timeout_ms: u32,
    /// `maxSessionTimeout`, milliseconds (default 20 × tickTime).
    pub max_session_timeout_ms: u32,
    /// `jute.maxbuffer`: largest request or znode payload, bytes.
    pub jute_max_buffer: u32,
    /// `4lw.commands.whitelist`.
    pub four_letter_words: FourLetterWhitelist,
    /// `superDigest` (ZooKeeper's own key: `DigestAuthenticationProvider.superDigest`):
    /// `user:base64(sha1(user:password))` of the super user.
    pub super_digest: Option<String>,
    /// `initLimit`, in ticks.
    pub init_limit: u32,
    /// `syncLimit`, in ticks.
    pub sync_limit: u32,
    /// `snapCount`: transactions between snapshots.
    pub snap_count: u64,
    /// `snapSizeLimitInKb`: a snapshot is also taken once the log has grown this much since
    /// the last one (ZooKeeper's default 4 GiB; 0 or less disables the size trigger).
    pub snap_size_limit_kb: u64,
    /// `preAllocSize`: transaction log preallocation, KiB.
    pub pre_alloc_size_kb: u64,
    /// `forceSync`: fsync the log before acknowledging writes.
    pub force_sync: bool,
    /// `autopurge.snapRetainCount` (at least 3).
    pub autopurge_snap_retain_count: u32,
    /// `autopurge.purgeInterval`, hours; 0 = no automatic purge.
    pub autopurge_purge_interval_hours: u32,
    /// `server.N` lines, sorted by id. A standalone server ignores them.
    pub servers: Vec<ServerEntry>,
    /// `peerType=observer`.
    pub peer_type_observer: bool,
    /// Set when the `server.N` lines make an ensemble (two or more participants): who this
    /// server is and who the others are. `None`: standalone.
    pub ensemble: Option<Ensemble>,
    /// `warren.cores`: number of executors (one per core).
    pub warren_cores: usize,
    /// `warren.ioMemoryKb`: io_uring registered memory per executor, KiB.
    pub warren_io_memory_kb: usize,
    /// `warren.containerCheckIntervalMs`: how often empty containers and expired TTL nodes
    /// are looked for (ZooKeeper's `znode.container.checkIntervalMs`, default 60000).
    pub warren_container_check_interval_ms: u64,
    /// `warren.diffWindow`: transactions a leader keeps in memory to bring a lagging follower
    /// up with a DIFF; further behind, it sends a snapshot (ZooKeeper: `zookeeper.commitLogCount`).
    pub warren_diff_window: usize,
    /// `warren.peerTimeoutMs`: how long a serving follower waits for a silent leader, and a
    /// leader for a silent follower, before giving up on it, when that is shorter than
    /// syncLimit × tickTime (0: syncLimit alone, as ZooKeeper).
    pub warren_peer_timeout_ms: u64,
    /// `warren.maxInflight`: proposals a leader keeps in flight before holding writes back.
    pub warren_max_inflight: usize,
    /// `warren.maxQueuedReplyBytes`: reply bytes a connection may have waiting to be written;
    /// past it the connection is closed.
    pub warren_max_queued_reply_bytes: u64,
    /// `warren.maxWatchesPerSession`: watches one session may hold (a persistent or recursive
    /// watch counts two, as in ZooKeeper's watch counts); 0 = unlimited.
    pub warren_max_watches_per_session: u64,
    /// `fsync.warningthresholdms`: a log fsync slower than this is logged as a warning and
    /// counted (ZooKeeper's default 1000).
    pub fsync_warning_threshold_ms: u64,
    /// `extendedTypesEnabled`: TTL nodes (ZooKeeper's system property
    /// `zookeeper.extendedTypesEnabled`). Off by default, as in ZooKeeper: createTTL then
    /// answers Unimplemented.
    pub extended_types_enabled: bool,
    /// `readonlymode.enabled` (ZooKeeper's JVM system property; Warren reads it from zoo.cfg,
    /// or from `-Dreadonlymode.enabled=` in the `SERVER_JVMFLAGS` environment variable when
    /// loading a file, zoo.cfg winning): an ensemble member that has been looking for a leader
    /// for max(2000 ms, tickTime) serves read-only clients. Always false standalone (ignored
    /// with a warning, as ZooKeeper ignores it there).
    pub readonly_mode_enabled: bool,
    /// `localSessionsEnabled` (off by default): an ensemble member's new sessions are its own,
    /// not replicated, until one creates an ephemeral node. Always false standalone (ignored
    /// with a warning, as ZooKeeper's standalone server ignores it).
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled` (off by default, as in ZooKeeper's zoo.cfg): a local
    /// session that creates an ephemeral node becomes global instead of getting
    /// EphemeralOnLocalSession. Meaningful only with `local_sessions_enabled`.
    pub local_sessions_upgrading_enabled: bool,
    /// `admin.enableServer`: the HTTP AdminServer (on by default, as in ZooKeeper).
    pub admin_enable_server: bool,
    /// `admin.serverAddress`: loopback by default (ZooKeeper binds every interface).
    pub admin_server_address: IpAddr,
    /// `admin.serverPort` (8080).
    pub admin_server_port: u16,
    /// `admin.commandURL` (`/commands`).
    pub admin_command_url: String,
    /// `admin.idleTimeout`: how long a connection may take to send its request (ms).
    pub admin_idle_timeout_ms: u64,
    /// `admin.commands.whitelist` (Warren's): which AdminServer commands that expose znode
    /// paths or session ids are served.
    pub admin_commands: AdminWhitelist,
    /// `admin.snapshot.enabled` (ZooKeeper 3.9's `zookeeper.admin.snapshot.enabled`): serve
    /// `/commands/snapshot`, an online backup of the whole tree. Off unless set (ZooKeeper 3.9
    /// defaults it on, behind the root ACL; see docs/operations.md).
    pub admin_snapshot_enabled: bool,
    /// `admin.restore.enabled` (ZooKeeper 3.9's `zookeeper.admin.restore.enabled`): serve
    /// `/commands/restore`, which replaces a standalone server's tree and sessions with a
    /// backup's. Off unless set (ZooKeeper 3.9 defaults it on, behind the root ACL; see
    /// docs/operations.md).
    pub admin_restore_enabled: bool,
    /// `admin.rateLimiterIntervalInMS`: at most one snapshot command, and one restore command,
    /// per interval (ms).
    pub admin_rate_limiter_interval_ms: u64,
    /// SASL DIGEST-MD5 users from the JAAS file (`java.security.auth.login.config`), its
    /// section `sasl.serverconfig` (default `Server`); None without a JAAS file.
    pub sasl_users: Option<BTreeMap<String, String>>,
    /// `superUser`: the SASL id that is also a super user.
    pub sasl_super_user: Option<String>,
    /// `enforce.auth.enabled` with `enforce.auth.schemes` (or `sessionRequireClientSASLAuth`):
    /// the schemes a connection must hold an id of; empty when not enforced.
    pub enforce_auth_schemes: Vec<String>,
    /// `metricsProvider.className` naming ZooKeeper's Prometheus provider: serve `/metrics`.
    pub metrics_enabled: bool,
    /// `metricsProvider.httpHost` (0.0.0.0, as ZooKeeper).
    pub metrics_http_host: IpAddr,
    /// `metricsProvider.httpPort` (7000).
    pub metrics_http_port: u16,
    /// `secureClientPort`, `client.portUnification`, `ssl.*`, x509 authentication.
    pub tls: tls::TlsConfig,
    /// `sslQuorum`, `portUnification`, `sslQuorumReloadCertFiles`, `ssl.quorum.*`.
    pub quorum_tls: tls::QuorumTls,
}

/// ZooKeeper's SASL authentication provider (`authProvider.N=` it is accepted quietly: Warren's
/// `sasl` scheme is always on when a JAAS file gives users).
pub const SASL_PROVIDER: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// The class name that switches ZooKeeper's Prometheus metrics provider on.
pub const PROMETHEUS_PROVIDER: &str = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
/// ZooKeeper's default provider, which exports nothing.
pub const NULL_PROVIDER: &str = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";

/// AdminServer commands that show znode paths or session ids: served only when listed in
/// `admin.commands.whitelist` (or when it is `*`).
pub const SENSITIVE_ADMIN_COMMANDS: &[&str] = &["connections", "dump", "watches", "watches_by_path"];

/// `admin.commands.whitelist`: the 4lw whitelist's syntax (comma-separated names, `*` for
/// all). It only gates [`SENSITIVE_ADMIN_COMMANDS`]; every other command is always served.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AdminWhitelist {
    All,
    #[default]
    None,
    Only(BTreeSet<String>),
}

impl AdminWhitelist {
    pub fn parse(spec: &str) -> AdminWhitelist {
        let names: BTreeSet<String> =
            spec.split(',').map(str::trim).filter(|w| !w.is_empty()).map(str::to_string).collect();
        if names.contains("*") {
            AdminWhitelist::All
        } else if names.is_empty() {
            AdminWhitelist::None
        } else {
            AdminWhitelist::Only(names)
        }
    }

    pub fn allows(&self, command: &str) -> bool {
        if !SENSITIVE_ADMIN_COMMANDS.contains(&command) {
            return true;
        }
        match self {
            AdminWhitelist::All => true,
            AdminWhitelist::None => false,
            AdminWhitelist::Only(names) => names.contains(command),
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("zoo.cfg line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("zoo.cfg line {line}: {key} = {value:?}: expected {expected}")]
    InvalidValue { line: usize, key: String, value: String, expected: String },
    #[error("zoo.cfg line {line}: {key} = {value:?}: {reason}")]
    Unsupported { line: usize, key: String, value: String, reason: String },
    #[error("zoo.cfg: {0}")]
    Auth(String),
    #[error("zoo.cfg: dataDir is not set")]
    MissingDataDir,
    #[error("zoo.cfg: minSessionTimeout ({min} ms) is larger than maxSessionTimeout ({max} ms)")]
    SessionTimeoutOrder { min: u32, max: u32 },
    #[error("{} is missing; write this server's N from server.N (one of {ids}) into it", path.display())]
    MissingMyid { path: PathBuf, ids: String },
    #[error("{}: {text:?} is not a server id: expected this server's N from server.N, a decimal number", path.display())]
    BadMyid { path: PathBuf, text: String },
    #[error("{}: myid {myid} is not in the server list: zoo.cfg has no server.{myid} line (it has {ids})", path.display())]
    MyidNotListed { path: PathBuf, myid: u64, ids: String },
    #[error("zoo.cfg: {0}")]
    Ensemble(String),
    #[error("zoo.cfg: {0}")]
    Tls(String),
    #[error("SERVER_JVMFLAGS: -D{key}={value:?}: expected true or false")]
    JvmFlag { key: String, value: String },
}

impl Default for FourLetterWhitelist {
    fn default() -> Self {
        Self::Only(DEFAULT_FOUR_LETTER_WORDS.iter().map(|w| (*w).to_string()).collect())
    }
}

impl FourLetterWhitelist {
    /// Parses a `4lw.commands.whitelist` value. Returns the words that are not
    /// ZooKeeper four-letter words, for warnings; they are kept (harmless:
    /// no such command exists) so the behaviour matches ZooKeeper's.
    pub fn parse(value: &str) -> (Self, Vec<String>) {
        let mut words = BTreeSet::new();
        let mut unknown = Vec::new();
        for word in value.split(',').map(java_trim) {
            if word == "*" {
                // ZooKeeper stops at `*`: everything is allowed anyway.
                return (Self::All, unknown);
            }
            if word.is_empty() {
                continue;
            }
            if !KNOWN_FOUR_LETTER_WORDS.contains(&word) {
                unknown.push(word.to_string());
            }
            words.insert(word.to_string());
        }
        (Self::Only(words), unknown)
    }

    /// Whether the server may answer `word`.
    pub fn allows(&self, word: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(words) => word == "srvr" || words.contains(word),
        }
    }
}

impl fmt::Display for FourLetterWhitelist {
    /// Renders in `4lw.commands.whitelist` syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Only(words) => {
                let list: Vec<&str> = words.iter().map(String::as_str).collect();
                f.write_str(&list.join(", "))
            }
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::embedded_default()
    }
}

impl Config {
    /// The configuration used without a `zoo.cfg`: loopback only, port 2181,
    /// tickTime 2000, dataDir `./warren-data`.
    pub fn embedded_default() -> Config {
        Config {
            tick_time_ms: DEFAULT_TICK_TIME_MS,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            data_log_dir: None,
            client_port: DEFAULT_CLIENT_PORT,
            plaintext_client_port: true,
            client_port_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            max_client_cnxns: DEFAULT_MAX_CLIENT_CNXNS,
            max_cnxns: 0,
            sessionless_cnxn_timeout_ms: DEFAULT_SESSIONLESS_CNXN_TIMEOUT_MS,
            min_session_timeout_ms: DEFAULT_TICK_TIME_MS * 2,
            max_session_timeout_ms: DEFAULT_TICK_TIME_MS * 20,
            jute_max_buffer: DEFAULT_JUTE_MAX_BUFFER,
            four_letter_words: FourLetterWhitelist::default(),
            super_digest: None,
            init_limit: DEFAULT_INIT_LIMIT,
            sync_limit: DEFAULT_SYNC_LIMIT,
            snap_count: DEFAULT_SNAP_COUNT,
            snap_size_limit_kb: 4 * 1024 * 1024,
            pre_alloc_size_kb: DEFAULT_PRE_ALLOC_SIZE_KB,
            force_sync: true,
            autopurge_snap_retain_count: MIN_SNAP_RETAIN_COUNT,
            autopurge_purge_interval_hours: 0,
            servers: Vec::new(),
            peer_type_observer: false,
            ensemble: None,
            warren_cores: DEFAULT_WARREN_CORES,
            warren_io_memory_kb: DEFAULT_WARREN_IO_MEMORY_KB,
            warren_container_check_interval_ms: 60_000,
            warren_diff_window: 10_000,
            warren_peer_timeout_ms: DEFAULT_PEER_TIMEOUT_MS,
            warren_max_inflight: 10_000,
            warren_max_queued_reply_bytes: DEFAULT_MAX_QUEUED_REPLY_BYTES,
            warren_max_watches_per_session: DEFAULT_MAX_WATCHES_PER_SESSION,
            fsync_warning_threshold_ms: 1000,
            extended_types_enabled: false,
            readonly_mode_enabled: false,
            local_sessions_enabled: false,
            local_sessions_upgrading_enabled: false,
            admin_enable_server: true,
            admin_server_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            admin_server_port: DEFAULT_ADMIN_SERVER_PORT,
            admin_command_url: "/commands".to_string(),
            admin_idle_timeout_ms: 30_000,
            admin_commands: AdminWhitelist::None,
            admin_snapshot_enabled: false,
            admin_restore_enabled: false,
            admin_rate_limiter_interval_ms: 300_000,
            sasl_users: None,
            sasl_super_user: None,
            enforce_auth_schemes: Vec::new(),
            metrics_enabled: false,
            metrics_http_host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            metrics_http_port: DEFAULT_METRICS_PORT,
            tls: tls::TlsConfig::default(),
            quorum_tls: tls::QuorumTls::default(),
        }
    }

    /// Defaults for a file: as ZooKeeper, a file binds all interfaces unless
    /// it says otherwise.
    fn file_defaults() -> Config {
        Config { client_port_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED), ..Self::embedded_default() }
    }

    /// Parses `zoo.cfg` text. Returns the configuration and the warnings
    /// (each naming its line) the caller should log.
    ///
    /// # Errors
    /// An invalid value, a malformed `\u` escape or `server.N` line, a
    /// missing `dataDir`, minSessionTimeout above maxSessionTimeout, or a key
    /// asking for client authentication enforcement.
    ///
    /// With two or more participants in `server.N` lines the file describes an ensemble, and
    /// this server's id is read from `dataDir/myid` (ZooKeeper's file), as ZooKeeper does
    /// while parsing; see [`Ensemble`].
    pub fn parse(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        Self::parse_with(text, &read_myid_file)
    }

    /// [`Config::parse`], also honouring `-Dreadonlymode.enabled=true|false` in `jvm_flags`
    /// (the `SERVER_JVMFLAGS` ZooKeeper's start scripts pass to the JVM, where ZooKeeper reads
    /// that property); a `readonlymode.enabled` line in the file wins over it.
    ///
    /// # Errors
    /// As [`Config::parse`], and a `-Dreadonlymode.enabled=` value other than true or false.
    pub fn parse_with_jvm_flags(text: &str, jvm_flags: Option<&str>) -> Result<(Config, Vec<String>), ConfigError> {
        Self::parse_full(text, jvm_flags, &read_myid_file)
    }

    /// [`Config::parse`] with the `myid` file read by `read_myid` (given its path; `Ok(None)`
    /// when it does not exist).
    fn parse_with(text: &str, read_myid: &MyidReader) -> Result<(Config, Vec<String>), ConfigError> {
        Self::parse_full(text, None, read_myid)
    }

    fn parse_full(
        text: &str,
        jvm_flags: Option<&str>,
        read_myid: &MyidReader,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut parser = Parser::new();
        for entry in lex(text)? {
            parser.apply(&entry)?;
        }
        parser.jvm_read_only = jvm_flags.map(read_only_jvm_flag).transpose()?.flatten();
        parser.finish(read_myid)
    }

    /// This server's id in an ensemble (`None` when standalone).
    pub fn myid(&self) -> Option<u64> {
        self.ensemble.as_ref().map(|e| e.myid)
    }

    /// Reads and parses a `zoo.cfg` file. Relative `dataDir`/`dataLogDir`
    /// stay relative, i.e. to the process's working directory, as in ZooKeeper.
    ///
    /// # Errors
    /// [`ConfigError::Io`] if the file cannot be read, else as [`Config::parse`].
    /// `-Dreadonlymode.enabled=` in the `SERVER_JVMFLAGS` environment variable counts too (see
    /// [`Config::parse_with_jvm_flags`]).
    pub fn load(path: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
        let flags = std::env::var("SERVER_JVMFLAGS").ok();
        Self::parse_with_jvm_flags(&decode(bytes), flags.as_deref())
    }

    /// Whether the server may answer the four-letter word `word`.
    pub fn four_letter_word_allowed(&self, word: &str) -> bool {
        self.four_letter_words.allows(word)
    }

    /// The answer to the `conf` four-letter word, in the order and with the
    /// keys ZooKeeper 3.8's standalone server prints (`dumpConf`; checked
    /// byte for byte against ZooKeeper 3.8.0). Directory sizes need the disk,
    /// so the caller measures them (bytes, recursively). ZooKeeper prints the
    /// port it actually bound, so with `clientPort=0` the caller should set
    /// `client_port` to the bound port first.
    /// Note: ZooKeeper 3.8 measures `dataDirSize` on the transaction log
    /// directory and `dataLogSize` on the snapshot directory (swapped); the
    /// two only differ when `dataLogDir` is set.
    pub fn to_conf_text(&self, data_dir_size: u64, data_log_size: u64) -> String {
        let log_dir = self.data_log_dir.as_deref().unwrap_or(&self.data_dir);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "clientPort={}", self.client_port);
        // ZooKeeper prints -1 when it has no TLS port.
        let secure = self.tls.secure_client_port.map_or(-1, i32::from);
        let _ = writeln!(out, "secureClientPort={secure}");
        let _ = writeln!(out, "dataDir={}", version_dir(&self.data_dir));
        let _ = writeln!(out, "dataDirSize={data_dir_size}");
        let _ = writeln!(out, "dataLogDir={}", version_dir(log_dir));
        let _ = writeln!(out, "dataLogSize={data_log_size}");
        let _ = writeln!(out, "tickTime={}", self.tick_time_ms);
        let _ = writeln!(out, "maxClientCnxns={}", self.max_client_cnxns);
        let _ = writeln!(out, "minSessionTimeout={}", self.min_session_timeout_ms);
        let _ = writeln!(out, "maxSessionTimeout={}", self.max_session_timeout_ms);
        // Warren leaves the listen backlog to the OS; -1 is ZooKeeper's "unset".
        let _ = writeln!(out, "clientPortListenBacklog=-1");
        // A standalone ZooKeeper server reports id 0.
        let _ = writeln!(out, "serverId=0");
        out
    }
}

/// `dir/version-2` as ZooKeeper prints it: Java's `File.getAbsolutePath`,
/// which prefixes the working directory to a relative path and collapses
/// repeated and trailing slashes but keeps `.` and `..` components
/// (`./warren-data` becomes `/cwd/./warren-data/version-2`).
fn version_dir(dir: &Path) -> String {
    let path = collapse_slashes(&dir.to_string_lossy());
    let absolute = if dir.is_absolute() {
        path
    } else {
        match std::env::current_dir() {
            Ok(cwd) => join_path(&collapse_slashes(&cwd.to_string_lossy()), &path),
            Err(_) => path,
        }
    };
    join_path(&absolute, VERSION_DIR)
}

fn join_path(parent: &str, child: &str) -> String {
    match (parent.is_empty() || parent.ends_with('/'), child.is_empty()) {
        (_, true) => parent.to_string(),
        (true, false) => format!("{parent}{child}"),
        (false, false) => format!("{parent}/{child}"),
    }
}

/// `a//b/` to `a/b`, keeping a lone `/`.
fn collapse_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    if out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

/// File bytes to text. Java reads properties files as ISO-8859-1; UTF-8 is
/// preferred here when the file is valid UTF-8 so non-ASCII paths survive,
/// and Latin-1 is the fallback so no file is rejected for its encoding.
fn decode(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => err.into_bytes().iter().map(|&b| char::from(b)).collect(),
    }
}

// ---------------------------------------------------------------------------
// Lexing: java.util.Properties syntax.
// ---------------------------------------------------------------------------

/// One `key=value` pair, unescaped and trimmed, with the (1-based) number of
/// the physical line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    line: usize,
    key: String,
    value: String,
}

fn lex(text: &str) -> Result<Vec<Entry>, ConfigError> {
    logical_lines(text).into_iter().map(|(line, raw)| entry_from_line(line, &raw)).collect()
}

/// Whitespace as `java.util.Properties` sees it.
fn is_prop_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

fn skip_prop_space(s: &str) -> &str {
    s.trim_start_matches(is_prop_space)
}

/// `String.trim()` of Java, which ZooKeeper applies to keys and values: it
/// strips every control character and space, not only Unicode whitespace.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Splits on `\n`, `\r\n` and lone `\r`, as Java does.
fn physical_lines(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let byte = bytes[i];
        i += 1;
        if byte != b'\n' && byte != b'\r' {
            continue;
        }
        // CR and LF are ASCII, so `i - 1` is a char boundary.
        lines.push(&text[start..i - 1]);
        if byte == b'\r' && bytes.get(i) == Some(&b'\n') {
            i += 1;
        }
        start = i;
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// A line ending in an odd number of backslashes continues on the next one.
fn continues(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Joins continued lines and drops blank and comment lines. A comment is
/// only recognised at the start of a logical line, as in Java.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let lines = physical_lines(text);
    let mut out = Vec::new();
    let mut next = 0;
    while let Some(first) = lines.get(next) {
        let start_line = next + 1;
        next += 1;
        let first = skip_prop_space(first);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut joined = first.to_string();
        while continues(&joined) {
            joined.pop();
            let Some(more) = lines.get(next) else { break };
            joined.push_str(skip_prop_space(more));
            next += 1;
        }
        out.push((start_line, joined));
    }
    out
}

/// Byte offset where the key ends: the first unescaped `=`, `:` or blank.
fn key_end(raw: &str) -> usize {
    let mut escaped = false;
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_prop_space(c) {
            return i;
        }
    }
    raw.len()
}

fn entry_from_line(line: usize, raw: &str) -> Result<Entry, ConfigError> {
    let (key, rest) = raw.split_at(key_end(raw));
    // Blanks, then at most one separator, then blanks: `a = b`, `a b`, `a:b`.
    let rest = skip_prop_space(rest);
    let rest = rest.strip_prefix(['=', ':']).unwrap_or(rest);
    let value = skip_prop_space(rest);
    Ok(Entry {
        line,
        key: java_trim(&unescape(key, line)?).to_string(),
        value: java_trim(&unescape(value, line)?).to_string(),
    })
}

/// Resolves backslash escapes. An unknown escape stands for the character
/// itself, so `C:\\zk` is needed for a backslash (a Windows-path trap that
/// ZooKeeper has too).
fn unescape(s: &str, line: usize) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    let mut pending_high: Option<u32> = None;
    while let Some(c) = chars.next() {
        let decoded = if c == '\\' {
            match chars.next() {
                Some('u') => {
                    let unit = hex_unit(&mut chars, line)?;
                    push_utf16_unit(&mut out, &mut pending_high, unit);
                    continue;
                }
                Some(escaped) => escape_char(escaped),
                None => continue,
            }
        } else {
            c
        };
        flush_high(&mut out, &mut pending_high);
        out.push(decoded);
    }
    flush_high(&mut out, &mut pending_high);
    Ok(out)
}

fn escape_char(c: char) -> char {
    match c {
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        'f' => '\u{c}',
        other => other,
    }
}

/// The four hex digits after `\u`.
fn hex_unit(chars: &mut std::str::Chars<'_>, line: usize) -> Result<u32, ConfigError> {
    let mut unit = 0u32;
    for _ in 0..4 {
        let digit = chars
            .next()
            .and_then(|c| c.to_digit(16))
            .ok_or_else(|| ConfigError::Syntax { line, message: "malformed \\uxxxx escape".to_string() })?;
        unit = unit * 16 + digit;
    }
    Ok(unit)
}

/// `\u` escapes are UTF-16 code units; a surrogate pair is two escapes.
/// A lone surrogate becomes U+FFFD rather than an error, because Java
/// accepts it silently.
fn push_utf16_unit(out: &mut String, pending_high: &mut Option<u32>, unit: u32) {
    if let Some(high) = pending_high.take() {
        if (0xDC00..0xE000).contains(&unit) {
            let code = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
            out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            return;
        }
        out.push(char::REPLACEMENT_CHARACTER);
    }
    if (0xD800..0xDC00).contains(&unit) {
        *pending_high = Some(unit);
    } else {
        out.push(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER));
    }
}

fn flush_high(out: &mut String, pending_high: &mut Option<u32>) {
    if pending_high.take().is_some() {
        out.push(char::REPLACEMENT_CHARACTER);
    }
}

// ---------------------------------------------------------------------------
// Interpreting entries.
// ---------------------------------------------------------------------------

/// Accumulates entries. Values that depend on other keys (session timeouts
/// on tickTime) are resolved in `finish`, because keys may come in any order.
struct Parser {
    cfg: Config,
    data_dir_set: bool,
    min_session: Option<u32>,
    max_session: Option<u32>,
    servers: BTreeMap<u64, ServerEntry>,
    server_lines: HashMap<u64, usize>,
    client_port_set: bool,
    client_port_address_set: bool,
    init_limit_set: bool,
    sync_limit_set: bool,
    seen: HashMap<String, usize>,
    warnings: Vec<String>,
    tls: tls::TlsKeys,
    quorum_tls: tls::TlsKeys,
    /// Authentication keys, settled in `finish` (`authentication`).
    jaas: Option<(usize, PathBuf)>,
    jaas_section: Option<String>,
    enforce_auth: Option<bool>,
    enforce_schemes: Option<Vec<String>>,
    require_sasl: bool,
    /// `readonlymode.enabled` in the file (line, value), and in `SERVER_JVMFLAGS`.
    read_only: Option<(usize, bool)>,
    jvm_read_only: Option<bool>,
    /// `localSessionsEnabled` and `localSessionsUpgradingEnabled` (line, value).
    local_sessions: Option<(usize, bool)>,
    local_sessions_upgrading: Option<(usize, bool)>,
}

impl Parser {
    fn new() -> Self {
        Parser {
            cfg: Config::file_defaults(),
            data_dir_set: false,
            min_session: None,
            max_session: None,
            servers: BTreeMap::new(),
            server_lines: HashMap::new(),
            client_port_set: false,
            client_port_address_set: false,
            init_limit_set: false,
            sync_limit_set: false,
            seen: HashMap::new(),
            warnings: Vec::new(),
            tls: tls::TlsKeys::default(),
            quorum_tls: tls::TlsKeys::quorum(),
            jaas: None,
            jaas_section: None,
            enforce_auth: None,
            enforce_schemes: None,
            require_sasl: false,
            read_only: None,
            jvm_read_only: None,
            local_sessions: None,
            local_sessions_upgrading: None,
        }
    }

    fn warn(&mut self, line: usize, message: impl fmt::Display) {
        self.warnings.push(format!("zoo.cfg line {line}: {message}"));
    }

    fn apply(&mut self, e: &Entry) -> Result<(), ConfigError> {
        let repeated_key = self.note_duplicate(e);
        if let Some(id) = e.key.strip_prefix("server.") {
            return self.apply_server(e, id, repeated_key);
        }
        if self.apply_core(e)? || self.apply_storage(e)? || self.apply_access(e)? || self.apply_warren(e)? {
            return Ok(());
        }
        let used = match self.tls.apply(e)? {
            tls::Applied::NotMine => self.quorum_tls.apply(e)?,
            used => used,
        };
        if let tls::Applied::Used(warning) = used {
            if let Some(w) = warning {
                self.warn(e.line, w);
            }
            return Ok(());
        }
        self.apply_other(e)
    }

    /// Java properties keep the last value of a repeated key; say so, since
    /// a repeated key is usually an editing mistake.
    /// Returns whether the key was seen before.
    fn note_duplicate(&mut self, e: &Entry) -> bool {
        let Some(previous) = self.seen.insert(e.key.clone(), e.line) else {
            return false;
        };
        self.warn(e.line, format_args!("{} already set on line {previous}; the last value wins", e.key));
        true
    }

    /// Network, timing and session keys.
    fn apply_core(&mut self, e: &Entry) -> Result<bool, ConfigError> {
        match e.key.as_str() {
            "tickTime" => self.cfg.tick_time_ms = positive(e)?,
            "dataDir" => {
                self.cfg.data_dir = self.directory(e)?;
                self.data_dir_set = true;
            }
            "dataLogDir" => self.cfg.data_log_dir = Some(self.directory(e)?),
            "clientPort" => {
                self.cfg.client_port = number(e, "a port number (0-65535)")?;
                self.client_port_set = true;
            }
            "clientPortAddress" => {
                self.cfg.client_port_address = ip_address(e)?;
                self.client_port_address_set = true;
            }
            "maxClientCnxns" => self.cfg.max_client_cnxns = number(e, "a non-negative integer (0 = unlimited)")?,
            // ZooKeeper turns unknown zoo.cfg keys into `zookeeper.`-prefixed system
            // properties, which is how these two are set there: both spellings work.
            "maxCnxns" | "zookeeper.maxCnxns" => {
                self.cfg.max_cnxns = number(e, "a non-negative integer (0 = unlimited)")?
            }
            "nio.sessionlessCnxnTimeout" | "zookeeper.nio.sessionlessCnxnTimeout" => {
                self.cfg.sessionless_cnxn_timeout_ms = positive(e)?
            }
            "minSessionTimeout" => self.min_session = session_timeout(e)?,
            "maxSessionTimeout" => self.max_session = session_timeout(e)?,
            "initLimit" => {
                self.cfg.init_limit = number(e, "a non-negative number of ticks")?;
                self.init_limit_set = true;
            }
            "syncLimit" => {
                self.cfg.sync_limit = number(e, "a non-negative number of ticks")?;
                self.sync_limit_set = true;
            }
            "peerType" => self.cfg.peer_type_observer = peer_role(e)? == PeerRole::Observer,
            // ZooKeeper reads it only as a JVM system property (`-Dreadonlymode.enabled=true`);
            // in zoo.cfg it would become `zookeeper.readonlymode.enabled`, which nothing reads.
            "readonlymode.enabled" => self.read_only = Some((e.line, true_false(e)?)),
            "localSessionsEnabled" => self.local_sessions = Some((e.line, true_false(e)?)),
            "localSessionsUpgradingEnabled" => self.local_sessions_upgrading = Some((e.line, true_false(e)?)),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Persistence keys.
    fn apply_storage(&mut self, e: &Entry) -> Result<bool, ConfigError> {
        match e.key.as_str() {
            "snapCount" => self.cfg.snap_count = self.snap_count(e)?,
            "snapSizeLimitInKb" => {
                // ZooKeeper: zero or negative disables the size trigger.
                let v: i64 = e.value.trim().parse().map_err(|_| invalid(e, "an integer (KiB)"))?;
                self.cfg.snap_size_limit_kb = v.max(0) as u64;
            }
            "preAllocSize" => self.cfg.pre_alloc_size_kb = positive(e)?,
            "forceSync" => self.cfg.force_sync = yes_no(e)?,
            "autopurge.snapRetainCount" => self.cfg.autopurge_snap_retain_count = self.snap_retain_count(e)?,
            "autopurge.purgeInterval" => self.cfg.autopurge_purge_interval_hours = purge_interval(e)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Limits, authentication and diagnostics keys.
    fn apply_access(&mut self, e: &Entry) -> Result<bool, ConfigError> {
        match e.key.as_str() {
            "jute.maxbuffer" => self.cfg.jute_max_buffer = positive(e)?,
            "4lw.commands.whitelist" => self.cfg.four_letter_words = self.whitelist(e),
            "superDigest" | "DigestAuthenticationProvider.superDigest" => {
                self.cfg.super_digest = Some(self.super_digest(e)?)
            }
            "admin.enableServer" => self.cfg.admin_enable_server = true_false(e)?,
            "admin.serverAddress" => self.cfg.admin_server_address = ip_address(e)?,
            "admin.serverPort" => self.cfg.admin_server_port = number(e, "a port number (0-65535)")?,
            "admin.commandURL" => {
                if !e.value.starts_with('/') || e.value.len() < 2 {
                    return Err(invalid(e, "a URL path such as /commands"));
                }
                self.cfg.admin_command_url = e.value.trim_end_matches('/').to_string();
            }
            "admin.idleTimeout" => self.cfg.admin_idle_timeout_ms = positive(e)?,
            "admin.commands.whitelist" => self.cfg.admin_commands = AdminWhitelist::parse(&e.value),
            "admin.snapshot.enabled" => self.cfg.admin_snapshot_enabled = true_false(e)?,
            "admin.restore.enabled" => self.cfg.admin_restore_enabled = true_false(e)?,
            "admin.rateLimiterIntervalInMS" => {
                self.cfg.admin_rate_limiter_interval_ms = number(e, "a non-negative number of milliseconds")?
            }
            "metricsProvider.className" => {
                self.cfg.metrics_enabled = match e.value.as_str() {
                    PROMETHEUS_PROVIDER => true,
                    NULL_PROVIDER => false,
                    other => {
                        self.warn(
                            e.line,
                            format_args!(
                                "metricsProvider.className={other}: Warren only has the Prometheus provider \
                                 ({PROMETHEUS_PROVIDER}); no metrics are exported"
                            ),
                        );
                        false
                    }
                }
            }
            "metricsProvider.httpHost" => self.cfg.metrics_http_host = ip_address(e)?,
            "metricsProvider.httpPort" => self.cfg.metrics_http_port = number(e, "a port number (0-65535)")?,
            "metricsProvider.exportJvmInfo" => {
                true_false(e)?;
                self.warn(
                    e.line,
                    "metricsProvider.exportJvmInfo is ignored: Warren has no JVM (process figures are exported)",
                );
            }
            "skipACL" => {
                if e.value == "yes" {
                    self.warn(e.line, "skipACL=yes is not supported: ACLs are always checked");
                }
            }
            "enforce.auth.enabled" | "zookeeper.enforce.auth.enabled" => self.enforce_auth = Some(true_false(e)?),
            "enforce.auth.schemes" | "zookeeper.enforce.auth.schemes" => {
                self.enforce_schemes =
                    Some(e.value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            }
            // Older spellings: both mean "every session must authenticate with SASL".
            "sessionRequireClientSASLAuth" | "zookeeper.sessionRequireClientSASLAuth" => {
                self.require_sasl = true_false(e)?;
            }
            "requireClientAuthScheme" => {
                if e.value != "sasl" {
                    return Err(invalid(e, "sasl (the only scheme ZooKeeper accepts here)"));
                }
                self.require_sasl = true;
            }
            "java.security.auth.login.config" => self.jaas = Some((e.line, PathBuf::from(&e.value))),
            "sasl.serverconfig" | "zookeeper.sasl.serverconfig" => self.jaas_section = Some(e.value.clone()),
            "superUser" | "zookeeper.superUser" => self.cfg.sasl_super_user = Some(e.value.clone()),
            k if k.starts_with("authProvider.") && e.value == SASL_PROVIDER => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Keys only Warren has.
    fn apply_warren(&mut self, e: &Entry) -> Result<bool, ConfigError> {
        match e.key.as_str() {
            "warren.cores" => self.cfg.warren_cores = positive(e)?,
            "warren.ioMemoryKb" => self.cfg.warren_io_memory_kb = positive(e)?,
            "fsync.warningthresholdms" => self.cfg.fsync_warning_threshold_ms = positive(e)?,
            "warren.containerCheckIntervalMs" => self.cfg.warren_container_check_interval_ms = positive(e)?,
            "warren.diffWindow" => self.cfg.warren_diff_window = positive(e)?,
            "warren.peerTimeoutMs" => {
                self.cfg.warren_peer_timeout_ms =
                    number(e, "a non-negative integer of milliseconds (0 = syncLimit alone)")?
            }
            "warren.maxInflight" => self.cfg.warren_max_inflight = positive(e)?,
            "warren.maxQueuedReplyBytes" => self.cfg.warren_max_queued_reply_bytes = positive(e)?,
            "warren.maxWatchesPerSession" => {
                self.cfg.warren_max_watches_per_session = number(e, "a non-negative integer (0 = unlimited)")?
            }
            "extendedTypesEnabled" | "zookeeper.extendedTypesEnabled" => {
                self.cfg.extended_types_enabled = true_false(e)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Keys Warren does not use: refused, warned about as unsupported or ignored, or unknown.
    fn apply_other(&mut self, e: &Entry) -> Result<(), ConfigError> {
        let key = e.key.as_str();
        let refused = REFUSED_KEYS.iter().find(|(k, _)| *k == key);
        let refused = refused.or_else(|| REFUSED_PREFIXES.iter().find(|(p, _)| key.starts_with(p)));
        if let Some((_, reason)) = refused {
            let off =
                e.value.eq_ignore_ascii_case("false") && !key.starts_with("group.") && !key.starts_with("weight.");
            if !off {
                return Err(ConfigError::Unsupported {
                    line: e.line,
                    key: e.key.clone(),
                    value: e.value.clone(),
                    reason: format!("{reason}; remove the line to start without it"),
                });
            }
            self.warn(e.line, format_args!("{key}=false is ignored: it is Warren's only behaviour"));
        } else if let Some(reason) = unsupported_reason(key) {
            self.warn(e.line, format_args!("{key} is not supported: {reason}"));
        } else if let Some(reason) = ignored_reason(key) {
            self.warn(e.line, format_args!("{key} is ignored: {reason}"));
        } else {
            let hint = spelling_hint(key);
            self.warn(e.line, format_args!("unknown key {key:?} ignored{hint}"));
        }
        Ok(())
    }

    fn directory(&mut self, e: &Entry) -> Result<PathBuf, ConfigError> {
        if e.value.is_empty() {
            return Err(invalid(e, "a directory path"));
        }
        let path = PathBuf::from(&e.value);
        // As ZooKeeper: a relative path is accepted but should be deliberate.
        let deliberate = e.value.starts_with("./") || e.value.starts_with("../");
        if path.is_relative() && !deliberate {
            self.warn(
                e.line,
                format_args!(
                    "{} {:?} is relative to the working directory; write ./{} if that is intended",
                    e.key, e.value, e.value
                ),
            );
        }
        Ok(path)
    }

    /// ZooKeeper raises a snapCount below 2 to 2 (with a warning).
    fn snap_count(&mut self, e: &Entry) -> Result<u64, ConfigError> {
        let count: i64 = number(e, "a positive integer")?;
        match u64::try_from(count) {
            Ok(n) if n >= MIN_SNAP_COUNT => Ok(n),
            _ => {
                self.warn(e.line, format_args!("snapCount {count} is too small; using {MIN_SNAP_COUNT}"));
                Ok(MIN_SNAP_COUNT)
            }
        }
    }

    /// ZooKeeper clamps a retain count below 3 to 3 (with a warning).
    fn snap_retain_count(&mut self, e: &Entry) -> Result<u32, ConfigError> {
        let count: i64 = number(e, "an integer of at least 3")?;
        if count < i64::from(MIN_SNAP_RETAIN_COUNT) {
            self.warn(
                e.line,
                format_args!("autopurge.snapRetainCount {count} is below the minimum; using {MIN_SNAP_RETAIN_COUNT}"),
            );
            return Ok(MIN_SNAP_RETAIN_COUNT);
        }
        u32::try_from(count).map_err(|_| invalid(e, "an integer of at least 3"))
    }

    fn whitelist(&mut self, e: &Entry) -> FourLetterWhitelist {
        let (list, unknown) = FourLetterWhitelist::parse(&e.value);
        for word in unknown {
            self.warn(e.line, format_args!("4lw.commands.whitelist: unknown four-letter word {word:?}"));
        }
        list
    }

    /// `user:base64(sha1(user:password))`. A digest that is not 28 base64
    /// characters can never match, which deserves a warning.
    fn super_digest(&mut self, e: &Entry) -> Result<String, ConfigError> {
        const EXPECTED: &str = "user:base64(sha1(user:password))";
        let (user, digest) = e.value.split_once(':').ok_or_else(|| invalid(e, EXPECTED))?;
        if user.is_empty() || digest.is_empty() {
            return Err(invalid(e, EXPECTED));
        }
        if !looks_like_sha1_base64(digest) {
            self.warn(e.line, format_args!("{}: digest is not 28 base64 characters, no password will match", e.key));
        }
        Ok(e.value.clone())
    }

    fn apply_server(&mut self, e: &Entry, id_text: &str, repeated_key: bool) -> Result<(), ConfigError> {
        let id: u64 =
            id_text.parse().map_err(|_| invalid(e, "a server line keyed server.N with N a non-negative integer"))?;
        if id > MAX_SERVER_ID {
            // The id is the top byte of every session id the server creates; ZooKeeper refuses
            // ids above 254 too when TTL nodes are enabled (they are, always, here).
            return Err(invalid(
                e,
                "a server id N of 0-254: the id is the top byte of the session ids the server creates",
            ));
        }
        let server = parse_server(id, &e.value).ok_or_else(|| invalid(e, SERVER_FORMAT))?;
        let previous = self.server_lines.insert(id, e.line);
        // `server.1` and `server.01` are different keys but the same server;
        // an identical key was already reported as a repeated key.
        if let (Some(previous), false) = (previous, repeated_key) {
            self.warn(e.line, format_args!("server id {id} already defined on line {previous}; the last wins"));
        }
        self.servers.insert(id, server);
        Ok(())
    }

    fn finish(mut self, read_myid: &MyidReader) -> Result<(Config, Vec<String>), ConfigError> {
        if !self.data_dir_set {
            return Err(ConfigError::MissingDataDir);
        }
        self.resolve_session_timeouts()?;
        self.cfg.tls = std::mem::take(&mut self.tls).finish(&mut self.warnings)?;
        self.cfg.plaintext_client_port = self.client_port_set || self.cfg.tls.secure_client_port.is_none();
        self.cfg.servers = std::mem::take(&mut self.servers).into_values().collect();
        let ensemble = self.is_ensemble()?;
        self.read_only_mode(ensemble);
        self.local_sessions(ensemble);
        if ensemble {
            self.setup_ensemble(read_myid)?;
            if self.cfg.admin_restore_enabled {
                self.warnings.push(
                    "admin.restore.enabled=true: /commands/restore restores a standalone server only; an \
                     ensemble member refuses it (restore offline: see docs/operations.md)"
                        .to_string(),
                );
            }
        } else {
            self.standalone_notes();
        }
        self.cfg.quorum_tls = std::mem::replace(&mut self.quorum_tls, tls::TlsKeys::quorum())
            .finish_quorum(ensemble, &mut self.warnings)?;
        self.memlock_note();
        self.reply_cap_note();
        self.authentication()?;
        Ok((self.cfg, self.warnings))
    }

    /// Reads the JAAS file's users and settles which schemes are enforced, refusing what
    /// ZooKeeper refuses (enforcement without schemes, a scheme no provider offers).
    fn authentication(&mut self) -> Result<(), ConfigError> {
        if let Some((line, path)) = self.jaas.take() {
            let section = self.jaas_section.clone().unwrap_or_else(|| "Server".to_string());
            let text =
                std::fs::read_to_string(&path).map_err(|source| ConfigError::Io { path: path.clone(), source })?;
            let users = crate::sasl::jaas_users(&text, &section).map_err(|err| ConfigError::Unsupported {
                line,
                key: "java.security.auth.login.config".into(),
                value: path.display().to_string(),
                reason: format!("cannot use the JAAS file: {err}"),
            })?;
            if users.is_empty() {
                self.warn(
                    line,
                    format_args!(
                        "the JAAS section {section:?} of {} has no user_NAME=\"password\" options: no client can \
                         authenticate with SASL (only DIGEST-MD5 is offered; Kerberos is not implemented)",
                        path.display()
                    ),
                );
            }
            self.cfg.sasl_users = Some(users.into_iter().collect());
        }
        let schemes = if self.require_sasl {
            vec!["sasl".to_string()]
        } else if self.enforce_auth == Some(true) {
            let schemes = self.enforce_schemes.clone().unwrap_or_default();
            if schemes.is_empty() {
                return Err(ConfigError::Auth("enforce.auth.enabled is true: enforce.auth.schemes must be set".into()));
            }
            schemes
        } else {
            Vec::new()
        };
        for s in &schemes {
            let available = match s.as_str() {
                "digest" | "ip" => true,
                "sasl" => self.cfg.sasl_users.is_some(),
                _ => false,
            };
            if !available {
                return Err(ConfigError::Auth(format!(
                    "Authentication scheme {s} is not available{}",
                    if s == "sasl" {
                        ": set java.security.auth.login.config to a JAAS file with a Server section"
                    } else {
                        ""
                    }
                )));
            }
        }
        self.cfg.enforce_auth_schemes = schemes;
        Ok(())
    }

    /// ZooKeeper 3.8's rule (`QuorumPeerConfig.parseDynamicConfig`, checked against a real
    /// 3.8.0): two or more participants make an ensemble; no participant, or a single one,
    /// runs standalone, except that observers then make the file invalid.
    fn is_ensemble(&self) -> Result<bool, ConfigError> {
        let participants = self.cfg.servers.iter().filter(|s| s.role == PeerRole::Participant).count();
        let observers = self.cfg.servers.len() - participants;
        match participants {
            0 | 1 if observers > 0 => Err(ConfigError::Ensemble(format!(
                "{observers} observer(s) but {participants} participant(s): observers need an ensemble of at least \
                 two participants (ZooKeeper: \"Observers w/o quorum is an invalid configuration\")"
            ))),
            0 | 1 => Ok(false),
            _ => Ok(true),
        }
    }

    /// Validates the member list, reads `myid` and works out this server's addresses.
    fn setup_ensemble(&mut self, read_myid: &MyidReader) -> Result<(), ConfigError> {
        let participants = self.cfg.servers.iter().filter(|s| s.role == PeerRole::Participant).count();
        if participants == 2 {
            self.warnings.push(
                "zoo.cfg: an ensemble of 2 participants tolerates no failure (either one down stops it); use at least 3"
                    .to_string(),
            );
        } else if participants % 2 == 0 {
            self.warnings.push(format!(
                "zoo.cfg: an ensemble of {participants} tolerates no more failures than {}; consider an odd number of participants",
                participants - 1
            ));
        }
        // ZooKeeper refuses an ensemble whose limits are 0 ("initLimit is not set"); Warren
        // has defaults for absent keys but refuses an explicit 0 as well.
        for (key, value, set) in [
            ("initLimit", self.cfg.init_limit, self.init_limit_set),
            ("syncLimit", self.cfg.sync_limit, self.sync_limit_set),
        ] {
            if value == 0 && set {
                return Err(ConfigError::Ensemble(format!("{key} must be at least 1 tick in an ensemble")));
            }
        }
        let ids = self.cfg.servers.iter().map(|s| format!("server.{}", s.id)).collect::<Vec<_>>().join(", ");
        let path = self.cfg.data_dir.join("myid");
        let text = read_myid(&path)
            .map_err(|source| ConfigError::Io { path: path.clone(), source })?
            .ok_or_else(|| ConfigError::MissingMyid { path: path.clone(), ids: ids.clone() })?;
        let myid: u64 =
            text.trim().parse().map_err(|_| ConfigError::BadMyid { path: path.clone(), text: text.clone() })?;
        let Some(me) = self.cfg.servers.iter().position(|s| s.id == myid) else {
            return Err(ConfigError::MyidNotListed { path, myid, ids });
        };
        let role = self.cfg.servers[me].role;
        let by_peer_type = if self.cfg.peer_type_observer { PeerRole::Observer } else { PeerRole::Participant };
        if role != by_peer_type {
            // ZooKeeper 3.8 warns and follows the server list (checked against 3.8.0).
            self.warnings.push(format!(
                "zoo.cfg: peerType={} disagrees with server.{myid}, which makes this server {}; following the server list, as ZooKeeper does",
                role_name(by_peer_type),
                role_name(role)
            ));
            self.cfg.peer_type_observer = role == PeerRole::Observer;
        }
        let config_text = config_node_text(&self.cfg.servers);
        self.resolve_my_client_address(me)?;
        check_distinct_addresses(&self.cfg.servers)?;
        self.cfg.ensemble = Some(Ensemble { myid, members: self.cfg.servers.clone(), config_text });
        Ok(())
    }

    /// As ZooKeeper's `setupClientPort`: a client address on this server's own line wins, but
    /// an explicit `clientPort` (and a specific `clientPortAddress`) must agree with it;
    /// without one, `clientPortAddress:clientPort` becomes this member's client address.
    fn resolve_my_client_address(&mut self, me: usize) -> Result<(), ConfigError> {
        let id = self.cfg.servers[me].id;
        let Some((host, port)) = self.cfg.servers[me].client_addr.clone() else {
            self.cfg.servers[me].client_addr = Some((self.cfg.client_port_address.to_string(), self.cfg.client_port));
            return Ok(());
        };
        let ip = parse_ip(&host).ok_or_else(|| {
            ConfigError::Ensemble(format!(
                "server.{id}: client address {host:?} must be an IP address or localhost (host names are not resolved)"
            ))
        })?;
        if self.client_port_set {
            let wildcard = !self.client_port_address_set || self.cfg.client_port_address.is_unspecified();
            let agrees = port == self.cfg.client_port && (wildcard || ip == self.cfg.client_port_address);
            if !agrees {
                return Err(ConfigError::Ensemble(format!(
                    "client address for this server (server.{id}) is {}:{} from clientPortAddress/clientPort \
                     but {host}:{port} on its server line; make them agree or drop one",
                    self.cfg.client_port_address, self.cfg.client_port
                )));
            }
        }
        self.cfg.client_port = port;
        self.cfg.client_port_address = ip;
        Ok(())
    }

    fn resolve_session_timeouts(&mut self) -> Result<(), ConfigError> {
        let tick = self.cfg.tick_time_ms;
        let min = self.min_session.unwrap_or(tick.saturating_mul(2));
        let max = self.max_session.unwrap_or(tick.saturating_mul(20));
        if min > max {
            return Err(ConfigError::SessionTimeoutOrder { min, max });
        }
        self.cfg.min_session_timeout_ms = min;
        self.cfg.max_session_timeout_ms = max;
        Ok(())
    }

    /// Ensemble settings do nothing on a standalone server; say so once, so
    /// nobody believes they are running a replicated service.
    fn standalone_notes(&mut self) {
        if let Some(s) = self.cfg.servers.first() {
            // ZooKeeper 3.8 logs "Invalid configuration, only one server specified (ignoring)"
            // and runs standalone (checked against 3.8.0).
            self.warnings.push(format!(
                "zoo.cfg: a single server.N line (server.{}) is not an ensemble: running standalone, as ZooKeeper does",
                s.id
            ));
        }
        if self.cfg.peer_type_observer {
            self.warnings.push("zoo.cfg: peerType=observer ignored: Warren runs standalone".to_string());
        }
    }

    /// Settles `readonlymode.enabled`: the file's line wins over `SERVER_JVMFLAGS`; a
    /// standalone server ignores it with a warning, as ZooKeeper's standalone server never
    /// reads the property.
    fn read_only_mode(&mut self, ensemble: bool) {
        let (file, jvm) = (self.read_only, self.jvm_read_only);
        if let (Some((line, f)), Some(j)) = (file, jvm) {
            if f != j {
                self.warn(
                    line,
                    format_args!("readonlymode.enabled={f} overrides -Dreadonlymode.enabled={j} in SERVER_JVMFLAGS"),
                );
            }
        }
        let enabled = file.map(|(_, v)| v).or(jvm).unwrap_or(false);
        if enabled && !ensemble {
            let why = "is ignored: a standalone server has no quorum to lose (ZooKeeper's standalone server \
                       ignores it too)";
            match file {
                Some((line, _)) => self.warn(line, format_args!("readonlymode.enabled=true {why}")),
                None => self.warnings.push(format!("SERVER_JVMFLAGS: -Dreadonlymode.enabled=true {why}")),
            }
        }
        self.cfg.readonly_mode_enabled = enabled && ensemble;
    }

    /// Settles `localSessionsEnabled` and `localSessionsUpgradingEnabled`: ignored by name on
    /// a standalone server (whose sessions are all its own anyway) and, for upgrading, without
    /// local sessions, as ZooKeeper ignores them there.
    fn local_sessions(&mut self, ensemble: bool) {
        let on = |v: Option<(usize, bool)>| v.is_some_and(|(_, b)| b);
        let (local, upgrading) = (self.local_sessions, self.local_sessions_upgrading);
        if let (Some((line, true)), false) = (local, ensemble) {
            self.warn(
                line,
                format_args!(
                    "localSessionsEnabled=true is ignored: a standalone server replicates no session \
                     (ZooKeeper's standalone server ignores it too)"
                ),
            );
        }
        if let (Some((line, true)), true, false) = (upgrading, ensemble, on(local)) {
            self.warn(
                line,
                format_args!("localSessionsUpgradingEnabled=true has no effect without localSessionsEnabled=true"),
            );
        }
        self.cfg.local_sessions_enabled = ensemble && on(local);
        self.cfg.local_sessions_upgrading_enabled = self.cfg.local_sessions_enabled && on(upgrading);
    }

    fn reply_cap_note(&mut self) {
        let (cap, frame) = (self.cfg.warren_max_queued_reply_bytes, self.cfg.jute_max_buffer as u64);
        if cap < MIN_REPLIES_UNDER_CAP * frame {
            self.warnings.push(format!(
                "zoo.cfg: warren.maxQueuedReplyBytes ({cap}) is less than {MIN_REPLIES_UNDER_CAP} x jute.maxbuffer \
                 ({frame}): a client that reads a large node and gets a notification before it read the reply \
                 is disconnected"
            ));
        }
    }

    fn memlock_note(&mut self) {
        let total = self.cfg.warren_cores.saturating_mul(self.cfg.warren_io_memory_kb);
        if total > MEMLOCK_BUDGET_KB {
            self.warnings.push(format!(
                "zoo.cfg: warren.cores x warren.ioMemoryKb = {total} KiB of io_uring memory; \
                 more than {MEMLOCK_BUDGET_KB} KiB risks the usual 8 MiB memlock limit"
            ));
        }
    }
}

/// Reads the `myid` file at the path given; `Ok(None)` when it does not exist.
type MyidReader = dyn Fn(&Path) -> std::io::Result<Option<String>>;

fn read_myid_file(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn role_name(role: PeerRole) -> &'static str {
    match role {
        PeerRole::Participant => "participant",
        PeerRole::Observer => "observer",
    }
}

/// ZooKeeper's QuorumMaj text of a static membership (see `Ensemble::config_text`); IPv6
/// hosts in brackets, as Java's formatInetAddr writes them.
fn config_node_text(servers: &[ServerEntry]) -> String {
    let host = |h: &str| if h.contains(':') { format!("[{h}]") } else { h.to_string() };
    let mut sorted: Vec<&ServerEntry> = servers.iter().collect();
    sorted.sort_by_key(|s| s.id);
    let mut out = String::new();
    for s in sorted {
        let role = match s.role {
            PeerRole::Observer => "observer",
            PeerRole::Participant => "participant",
        };
        out.push_str(&format!("server.{}={}:{}:{}:{role}", s.id, host(&s.host), s.quorum_port, s.election_port));
        if let Some((h, p)) = &s.client_addr {
            out.push_str(&format!(";{}:{p}", host(h)));
        }
        out.push('\n');
    }
    out.push_str("version=0");
    out
}

/// No two endpoints of the ensemble may be the same host and port: each member's quorum and
/// election addresses, and the client addresses that are known. A client address on all
/// interfaces (`0.0.0.0`, `::`) is on its member's host. Hosts compare as written (ignoring
/// case): `localhost` and `127.0.0.1` are not recognised as the same.
fn check_distinct_addresses(members: &[ServerEntry]) -> Result<(), ConfigError> {
    let mut seen: HashMap<(String, u16), String> = HashMap::new();
    for m in members {
        let mut endpoints =
            vec![("quorum", m.host.clone(), m.quorum_port), ("election", m.host.clone(), m.election_port)];
        if let Some((host, port)) = &m.client_addr {
            let on_member_host = parse_ip(host).is_some_and(|ip| ip.is_unspecified());
            endpoints.push(("client", if on_member_host { m.host.clone() } else { host.clone() }, *port));
        }
        for (what, host, port) in endpoints {
            let name = format!("server.{}'s {what} address {host}:{port}", m.id);
            if let Some(other) = seen.insert((host.to_ascii_lowercase(), port), name.clone()) {
                return Err(ConfigError::Ensemble(format!("{name} is the same as {other}")));
            }
        }
    }
    Ok(())
}

const SERVER_FORMAT: &str =
    "host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort] with ports 1-65535 and quorumPort != electionPort";

fn invalid(e: &Entry, expected: &str) -> ConfigError {
    ConfigError::InvalidValue {
        line: e.line,
        key: e.key.clone(),
        value: e.value.clone(),
        expected: expected.to_string(),
    }
}

fn number<T: FromStr>(e: &Entry, expected: &str) -> Result<T, ConfigError> {
    e.value.parse().map_err(|_| invalid(e, expected))
}

/// An integer of at least 1, in whatever unsigned type the field has.
fn positive<T: FromStr + PartialOrd + From<u8>>(e: &Entry) -> Result<T, ConfigError> {
    const EXPECTED: &str = "a positive integer";
    let n: T = number(e, EXPECTED)?;
    if n < T::from(1) {
        return Err(invalid(e, EXPECTED));
    }
    Ok(n)
}

/// Milliseconds; ZooKeeper's `-1` means "use the tickTime-based default".
fn session_timeout(e: &Entry) -> Result<Option<u32>, ConfigError> {
    if e.value == "-1" {
        return Ok(None);
    }
    number(e, "a non-negative number of milliseconds (or -1 for the default)").map(Some)
}

/// Hours; ZooKeeper treats zero and negative intervals as "disabled".
fn purge_interval(e: &Entry) -> Result<u32, ConfigError> {
    let hours: i64 = number(e, "a number of hours (0 = disabled)")?;
    u32::try_from(hours.max(0)).map_err(|_| invalid(e, "a number of hours (0 = disabled)"))
}

/// ZooKeeper's boolean keys take `true`/`false` in any case.
/// The last `-Dreadonlymode.enabled=VALUE` among whitespace-separated JVM flags, as the JVM
/// keeps the last of a repeated `-D`. ZooKeeper's `Boolean.getBoolean` takes anything but
/// `true` for false; Warren accepts true or false (any case) and refuses the rest, as in
/// zoo.cfg.
fn read_only_jvm_flag(flags: &str) -> Result<Option<bool>, ConfigError> {
    let mut value = None;
    for flag in flags.split_whitespace() {
        if let Some(v) = flag.strip_prefix("-Dreadonlymode.enabled=") {
            value = Some(match v.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(ConfigError::JvmFlag { key: "readonlymode.enabled".into(), value: v.to_string() }),
            });
        }
    }
    Ok(value)
}

fn true_false(e: &Entry) -> Result<bool, ConfigError> {
    match e.value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(e, "true or false")),
    }
}

/// `forceSync` takes yes/no. ZooKeeper turns it off only for exactly `no`;
/// anything else is refused here, because `forceSync=false` would silently
/// keep fsync on there and the intent is unclear.
fn yes_no(e: &Entry) -> Result<bool, ConfigError> {
    match e.value.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(invalid(e, "yes or no")),
    }
}

fn peer_role(e: &Entry) -> Result<PeerRole, ConfigError> {
    parse_role(&e.value).ok_or_else(|| invalid(e, "observer or participant"))
}

fn parse_role(text: &str) -> Option<PeerRole> {
    match java_trim(text).to_ascii_lowercase().as_str() {
        "participant" => Some(PeerRole::Participant),
        "observer" => Some(PeerRole::Observer),
        _ => None,
    }
}

/// An IP literal (IPv6 optionally in brackets) or `localhost`. Other host
/// names are refused instead of resolved: parsing must not depend on DNS.
fn ip_address(e: &Entry) -> Result<IpAddr, ConfigError> {
    parse_ip(&e.value).ok_or_else(|| invalid(e, "an IP address or localhost (host names are not resolved)"))
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    if text.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let unbracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    unbracketed.parse().ok()
}

fn unsupported_reason(key: &str) -> Option<&'static str> {
    let exact = UNSUPPORTED_KEYS.iter().find(|(k, _)| *k == key);
    let prefixed = || UNSUPPORTED_PREFIXES.iter().find(|(p, _)| key.starts_with(p));
    exact.or_else(prefixed).map(|(_, reason)| *reason)
}

fn ignored_reason(key: &str) -> Option<&'static str> {
    let exact = IGNORED_KEYS.iter().find(|(k, _)| *k == key);
    let prefixed = || IGNORED_KEY_PREFIXES.iter().find(|(p, _)| key.starts_with(p));
    exact.or_else(prefixed).map(|(_, reason)| *reason)
}

/// ZooKeeper keys are case-sensitive; `ticktime` is a typo worth pointing at.
fn spelling_hint(key: &str) -> String {
    USED_KEYS
        .iter()
        .chain(IGNORED_KEYS.iter().map(|(k, _)| k))
        .chain(REFUSED_KEYS.iter().map(|(k, _)| k))
        .chain(tls::KEYS)
        .chain(tls::QUORUM_KEYS)
        .find(|known| known.eq_ignore_ascii_case(key))
        .map(|known| format!(" (did you mean {known}?)"))
        .unwrap_or_default()
}

fn looks_like_sha1_base64(digest: &str) -> bool {
    let base64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    // 20 bytes encode to 27 characters plus one `=` of padding.
    digest.strip_suffix('=').is_some_and(|body| body.len() == SHA1_BASE64_LEN - 1 && body.chars().all(base64))
}

// ---------------------------------------------------------------------------
// server.N values.
// ---------------------------------------------------------------------------

/// Parses `host:port:port[:type][;[host:]port]`. Several `|`-separated
/// addresses (ZooKeeper's multiAddress feature, off by default there too)
/// are refused.
fn parse_server(id: u64, value: &str) -> Option<ServerEntry> {
    let (server_part, client_part) = match value.split_once(';') {
        Some((server, client)) => (server, Some(client)),
        None => (value, None),
    };
    if server_part.contains('|') {
        return None;
    }
    let (host, ports) = split_host(java_trim(server_part))?;
    let (quorum_port, election_port, role) = server_ports(&ports)?;
    let client_addr = match client_part {
        Some(text) => Some(client_address(java_trim(text))?),
        None => None,
    };
    Some(ServerEntry { id, host, quorum_port, election_port, role, client_addr })
}

fn server_ports(parts: &[&str]) -> Option<(u16, u16, PeerRole)> {
    let (quorum, election, role) = match parts {
        [q, e] => (q, e, PeerRole::Participant),
        [q, e, role] => (q, e, parse_role(role)?),
        _ => return None,
    };
    let quorum_port = nonzero_port(quorum)?;
    let election_port = nonzero_port(election)?;
    // ZooKeeper insists on two different ports.
    (quorum_port != election_port).then_some((quorum_port, election_port, role))
}

/// `[host:]port`; a bare port means all interfaces, as in ZooKeeper.
fn client_address(text: &str) -> Option<(String, u16)> {
    if let Some(port) = nonzero_port(text) {
        return Some(("0.0.0.0".to_string(), port));
    }
    let (host, parts) = split_host(text)?;
    match parts.as_slice() {
        [port] => Some((host, nonzero_port(port)?)),
        _ => None,
    }
}

/// Splits `host:rest...`, where host may be a bracketed IPv6 literal.
/// Returns the host (without brackets) and the `:`-separated remainder.
fn split_host(text: &str) -> Option<(String, Vec<&str>)> {
    let (host, rest) = if let Some(bracketed) = text.strip_prefix('[') {
        let (host, rest) = bracketed.split_once(']')?;
        (host, rest.strip_prefix(':')?)
    } else {
        text.split_once(':')?
    };
    let valid_host = !host.is_empty() && !host.chars().any(|c| c <= ' ' || c == ']' || c == '[');
    valid_host.then(|| (host.to_string(), rest.split(':').collect()))
}

fn nonzero_port(text: &str) -> Option<u16> {
    java_trim(text).parse::<u16>().ok().filter(|&p| p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    /// Parses a file that has the required dataDir plus `body`.
    fn with_data_dir(body: &str) -> Result<(Config, Vec<String>), ConfigError> {
        Config::parse(&format!("dataDir=/var/lib/warren\n{body}"))
    }

    fn ok(body: &str) -> (Config, Vec<String>) {
        match with_data_dir(body) {
            Ok(parsed) => parsed,
            Err(err) => panic!("unexpected error for {body:?}: {err}"),
        }
    }

    fn cfg(body: &str) -> Config {
        ok(body).0
    }

    fn err(body: &str) -> ConfigError {
        match with_data_dir(body) {
            Ok((config, _)) => panic!("expected an error for {body:?}, got {config:?}"),
            Err(err) => err,
        }
    }

    fn err_text(body: &str) -> String {
        err(body).to_string()
    }

    fn has_warning(warnings: &[String], needle: &str) -> bool {
        warnings.iter().any(|w| w.contains(needle))
    }

    /// Parses `body` after a dataDir whose myid file holds `myid` (`None`: no file).
    fn with_myid(myid: Option<&str>, body: &str) -> Result<(Config, Vec<String>), ConfigError> {
        let myid = myid.map(str::to_string);
        let reader = move |path: &Path| {
            assert_eq!(path, Path::new("/var/lib/warren/myid"));
            Ok(myid.clone())
        };
        Config::parse_with(&format!("dataDir=/var/lib/warren\n{body}"), &reader)
    }

    fn ensemble_ok(myid: &str, body: &str) -> (Config, Vec<String>) {
        with_myid(Some(myid), body).unwrap_or_else(|e| panic!("unexpected error for {body:?}: {e}"))
    }

    fn ensemble_err(myid: &str, body: &str) -> String {
        match with_myid(Some(myid), body) {
            Ok((c, _)) => panic!("expected an error for {body:?}, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    const THREE: &str = "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890";

    fn words(list: &[&str]) -> FourLetterWhitelist {
        FourLetterWhitelist::Only(list.iter().map(|w| w.to_string()).collect())
    }

    // ----- defaults ---------------------------------------------------------

    #[test]
    fn file_defaults_match_zookeeper_and_the_issue() {
        let (c, warnings) = ok("");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.tick_time_ms, 2000);
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/warren"));
        assert_eq!(c.data_log_dir, None);
        assert_eq!(c.client_port, 2181);
        assert_eq!(c.client_port_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(c.max_client_cnxns, 60);
        assert_eq!(c.min_session_timeout_ms, 4000);
        assert_eq!(c.max_session_timeout_ms, 40000);
        assert_eq!(c.jute_max_buffer, 1_048_575);
        assert_eq!(c.four_letter_words, words(&["ruok", "srvr", "stat", "mntr", "isro"]));
        assert_eq!(c.super_digest, None);
        assert_eq!((c.init_limit, c.sync_limit), (10, 5));
        assert_eq!(c.snap_count, 100_000);
        assert_eq!(c.pre_alloc_size_kb, 65_536);
        assert!(c.force_sync);
        assert_eq!(c.autopurge_snap_retain_count, 3);
        assert_eq!(c.autopurge_purge_interval_hours, 0);
        assert!(c.servers.is_empty());
        assert!(!c.peer_type_observer);
        assert_eq!(c.warren_cores, 1);
        assert_eq!(c.warren_io_memory_kb, 2048);
        assert!(c.admin_enable_server, "ZooKeeper's AdminServer is on by default");
        assert_eq!((c.admin_server_address, c.admin_server_port), (IpAddr::V4(Ipv4Addr::LOCALHOST), 8080));
        assert_eq!(c.admin_command_url, "/commands");
        assert!(!c.metrics_enabled);
        assert_eq!((c.metrics_http_host, c.metrics_http_port), (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7000));
    }

    #[test]
    fn embedded_default_values() {
        let c = Config::embedded_default();
        assert_eq!(c.client_port_address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(c.client_port, 2181);
        assert_eq!(c.tick_time_ms, 2000);
        assert_eq!(c.data_dir, PathBuf::from("./warren-data"));
        assert_eq!(Config::default(), c);
    }

    #[test]
    fn embedded_default_text_round_trips_without_warnings() {
        let (parsed, warnings) = Config::parse(EMBEDDED_DEFAULT_CFG).expect("embedded default parses");
        assert_eq!(parsed, Config::embedded_default());
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn session_timeouts_follow_tick_time_wherever_it_is_set() {
        let c = cfg("minSessionTimeout=-1\ntickTime=3000");
        assert_eq!((c.min_session_timeout_ms, c.max_session_timeout_ms), (6000, 60000));
        let c = cfg("maxSessionTimeout=90000\ntickTime=500");
        assert_eq!((c.min_session_timeout_ms, c.max_session_timeout_ms), (1000, 90000));
    }

    #[test]
    fn huge_tick_time_saturates_instead_of_overflowing() {
        let c = cfg("tickTime=4294967295");
        assert_eq!(c.min_session_timeout_ms, u32::MAX);
        assert_eq!(c.max_session_timeout_ms, u32::MAX);
    }

    // ----- every key ----------------------------------------------------------

    #[test]
    fn every_zookeeper_key_is_read() {
        let (c, warnings) = ok("tickTime=1000
dataLogDir=/fast/log
clientPort=2281
clientPortAddress=10.1.2.3
maxClientCnxns=0
minSessionTimeout=1500
maxSessionTimeout=30000
jute.maxbuffer=4194304
4lw.commands.whitelist=ruok, conf
superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=
initLimit=20
syncLimit=7
snapCount=5000
preAllocSize=1024
forceSync=no
autopurge.snapRetainCount=5
autopurge.purgeInterval=24
peerType=observer
admin.enableServer=false");
        assert_eq!(c.tick_time_ms, 1000);
        assert_eq!(c.data_log_dir, Some(PathBuf::from("/fast/log")));
        assert_eq!(c.client_port, 2281);
        assert_eq!(c.client_port_address, "10.1.2.3".parse::<IpAddr>().unwrap());
        assert_eq!(c.max_client_cnxns, 0);
        assert_eq!((c.min_session_timeout_ms, c.max_session_timeout_ms), (1500, 30000));
        assert_eq!(c.jute_max_buffer, 4_194_304);
        assert_eq!(c.four_letter_words, words(&["ruok", "conf"]));
        assert_eq!(c.super_digest.as_deref(), Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
        assert_eq!((c.init_limit, c.sync_limit), (20, 7));
        assert_eq!(c.snap_count, 5000);
        assert_eq!(c.pre_alloc_size_kb, 1024);
        assert!(!c.force_sync);
        assert_eq!(c.autopurge_snap_retain_count, 5);
        assert_eq!(c.autopurge_purge_interval_hours, 24);
        assert!(c.peer_type_observer);
        assert!(!c.admin_enable_server);
        // Only the standalone note about peerType.
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(has_warning(&warnings, "peerType=observer ignored"));
    }

    #[test]
    fn warren_keys_are_read() {
        let (c, warnings) = ok("warren.cores=2\nwarren.ioMemoryKb=1024");
        assert_eq!((c.warren_cores, c.warren_io_memory_kb), (2, 1024));
        assert!(warnings.is_empty());
    }

    #[test]
    fn connection_limits_and_their_defaults() {
        let c = cfg("");
        assert_eq!(c.max_cnxns, 0, "ZooKeeper's default: no global limit");
        assert_eq!(c.sessionless_cnxn_timeout_ms, 10_000, "ZooKeeper's NIOServerCnxnFactory default");
        assert_eq!(c.warren_max_queued_reply_bytes, 16 << 20);
        let (c, warnings) = ok("maxCnxns=500\nnio.sessionlessCnxnTimeout=3000\nwarren.maxQueuedReplyBytes=4194304");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!((c.max_cnxns, c.sessionless_cnxn_timeout_ms, c.warren_max_queued_reply_bytes), (500, 3000, 4 << 20));
        // The names ZooKeeper's system properties have work too.
        let c = cfg("zookeeper.maxCnxns=7\nzookeeper.nio.sessionlessCnxnTimeout=2500");
        assert_eq!((c.max_cnxns, c.sessionless_cnxn_timeout_ms), (7, 2500));
        // Other nio.* keys are accepted and ignored, with a warning that names them.
        let (_, warnings) = ok("nio.numWorkerThreads=4");
        assert!(has_warning(&warnings, "line 2: nio.numWorkerThreads is ignored"), "{warnings:?}");
    }

    #[test]
    fn a_reply_cap_below_two_large_replies_is_warned_about() {
        let (_, warnings) = ok("warren.maxQueuedReplyBytes=1048576");
        assert!(has_warning(&warnings, "warren.maxQueuedReplyBytes (1048576) is less than 2 x jute.maxbuffer"));
        let (_, warnings) = ok("jute.maxbuffer=16777216");
        assert!(has_warning(&warnings, "less than 2 x jute.maxbuffer (16777216)"), "{warnings:?}");
        let (_, warnings) = ok("jute.maxbuffer=4194304\nwarren.maxQueuedReplyBytes=67108864");
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn restore_is_off_by_default_and_an_ensemble_says_it_refuses_it() {
        assert!(!cfg("").admin_restore_enabled);
        let (c, warnings) = ok("admin.restore.enabled=true");
        assert!(c.admin_restore_enabled && !has_warning(&warnings, "admin.restore.enabled"), "{warnings:?}");
        let (c, warnings) = ensemble_ok("1", &format!("admin.restore.enabled=true\n{THREE}"));
        assert!(c.admin_restore_enabled);
        assert!(has_warning(&warnings, "an ensemble member refuses it"), "{warnings:?}");
        let (_, warnings) = ensemble_ok("1", THREE);
        assert!(!has_warning(&warnings, "admin.restore.enabled"), "{warnings:?}");
    }

    #[test]
    fn zookeeper_spelling_of_super_digest_is_accepted() {
        let c = cfg("DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
        assert_eq!(c.super_digest.as_deref(), Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
    }

    #[test]
    fn every_used_key_is_recognised() {
        let sample = |key: &str| match key {
            "dataDir" | "dataLogDir" => "/x",
            "clientPortAddress" | "admin.serverAddress" | "metricsProvider.httpHost" => "127.0.0.1",
            "admin.commandURL" => "/commands",
            "admin.commands.whitelist" => "dump",
            "metricsProvider.className" => PROMETHEUS_PROVIDER,
            "metricsProvider.exportJvmInfo" => "false",
            "4lw.commands.whitelist" => "ruok",
            "superDigest" | "DigestAuthenticationProvider.superDigest" => "super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
            "forceSync" => "yes",
            "peerType" => "participant",
            "admin.enableServer" | "admin.snapshot.enabled" | "admin.restore.enabled" => "false",
            "sessionRequireClientSASLAuth" | "enforce.auth.enabled" => "false",
            "enforce.auth.schemes" => "digest",
            "sasl.serverconfig" => "Server",
            "superUser" => "bob",
            "skipACL" => "no",
            "extendedTypesEnabled" => "true",
            // true would be ignored with a warning: this file is a standalone server's.
            "readonlymode.enabled" | "localSessionsEnabled" | "localSessionsUpgradingEnabled" => "false",
            "warren.cores" => "1",
            "warren.maxQueuedReplyBytes" => "16777216",
            "warren.maxWatchesPerSession" => "1000000",
            "minSessionTimeout" => "4000",
            "maxSessionTimeout" => "40000",
            _ => "10",
        };
        for key in USED_KEYS {
            // These need a JAAS file: jaas_users_and_sasl_enforcement covers them.
            if matches!(*key, "java.security.auth.login.config" | "requireClientAuthScheme") {
                continue;
            }
            let line = format!("{key}={}", sample(key));
            // dataDir is tested alone: the helper already sets it.
            let parsed = match *key {
                "dataDir" => Config::parse(&line),
                _ => with_data_dir(&line),
            };
            let (_, warnings) = parsed.expect("parses");
            // exportJvmInfo is read (true/false) only to say that it is ignored.
            let expected = usize::from(*key == "metricsProvider.exportJvmInfo");
            assert_eq!(warnings.len(), expected, "{key}: {warnings:?}");
        }
    }

    #[test]
    fn client_port_address_forms() {
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(cfg("clientPortAddress=::1").client_port_address, v6);
        assert_eq!(cfg("clientPortAddress=[::1]").client_port_address, v6);
        assert_eq!(cfg("clientPortAddress=localhost").client_port_address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let text = err_text("clientPortAddress=zk1.example.com");
        assert!(text.contains("host names are not resolved"), "{text}");
    }

    #[test]
    fn peer_timeout_defaults_to_a_second_and_zero_turns_it_off() {
        assert_eq!(cfg("").warren_peer_timeout_ms, 1000);
        assert_eq!(cfg("warren.peerTimeoutMs=0").warren_peer_timeout_ms, 0);
        assert_eq!(cfg("warren.peerTimeoutMs=2500").warren_peer_timeout_ms, 2500);
        let text = err_text("warren.peerTimeoutMs=-1");
        assert!(text.contains("warren.peerTimeoutMs") && text.contains("non-negative"), "{text}");
    }

    #[test]
    fn client_port_zero_means_any_port() {
        assert_eq!(cfg("clientPort=0").client_port, 0);
    }

    #[test]
    fn booleans_accept_any_case() {
        assert!(cfg("admin.enableServer=TRUE").admin_enable_server);
        assert!(cfg("forceSync=Yes").force_sync);
    }

    #[test]
    fn admin_and_metrics_keys() {
        let (c, warnings) = ok("admin.serverAddress=0.0.0.0
admin.serverPort=9090
admin.commandURL=/cmds/
admin.idleTimeout=5000
admin.commands.whitelist=dump, connections
metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
metricsProvider.httpHost=127.0.0.2
metricsProvider.httpPort=7001");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.admin_server_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!((c.admin_server_port, c.admin_command_url.as_str(), c.admin_idle_timeout_ms), (9090, "/cmds", 5000));
        assert!(c.admin_commands.allows("dump") && c.admin_commands.allows("connections"));
        assert!(!c.admin_commands.allows("watches") && c.admin_commands.allows("monitor"));
        assert!(c.metrics_enabled);
        assert_eq!((c.metrics_http_host.to_string(), c.metrics_http_port), ("127.0.0.2".to_string(), 7001));
        assert!(err_text("admin.commandURL=commands").contains("a URL path"));
    }

    #[test]
    fn admin_whitelist_gates_only_sensitive_commands() {
        assert!(!AdminWhitelist::default().allows("dump"));
        assert!(AdminWhitelist::default().allows("ruok"));
        assert!(AdminWhitelist::parse("*").allows("watches_by_path"));
        assert_eq!(AdminWhitelist::parse(" , "), AdminWhitelist::None);
    }

    #[test]
    fn other_metrics_providers_and_jvm_info_warn_by_name() {
        let (c, warnings) = ok("metricsProvider.className=com.example.Statsd
metricsProvider.exportJvmInfo=true");
        assert!(!c.metrics_enabled);
        assert!(has_warning(&warnings, "line 2: metricsProvider.className=com.example.Statsd"), "{warnings:?}");
        assert!(has_warning(&warnings, "line 3: metricsProvider.exportJvmInfo is ignored"), "{warnings:?}");
    }

    #[test]
    fn retain_count_below_three_is_clamped_with_warning() {
        for value in ["0", "2", "-4"] {
            let (c, warnings) = ok(&format!("autopurge.snapRetainCount={value}"));
            assert_eq!(c.autopurge_snap_retain_count, 3);
            assert!(has_warning(&warnings, "line 2: autopurge.snapRetainCount"), "{warnings:?}");
        }
    }

    #[test]
    fn negative_purge_interval_means_disabled() {
        let (c, warnings) = ok("autopurge.purgeInterval=-1");
        assert_eq!(c.autopurge_purge_interval_hours, 0);
        assert!(warnings.is_empty());
    }

    #[test]
    fn tiny_snap_count_is_clamped_with_warning() {
        let (c, warnings) = ok("snapCount=1");
        assert_eq!(c.snap_count, 2);
        assert!(has_warning(&warnings, "snapCount 1 is too small"));
    }

    #[test]
    fn large_io_memory_total_warns() {
        let (_, warnings) = ok("warren.cores=4\nwarren.ioMemoryKb=2048");
        assert!(has_warning(&warnings, "8192 KiB of io_uring memory"), "{warnings:?}");
        let (_, warnings) = ok("warren.cores=3\nwarren.ioMemoryKb=2048");
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn relative_data_dir_is_kept_and_flagged_unless_deliberate() {
        let (c, warnings) = Config::parse("dataDir=data").expect("parses");
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert!(has_warning(&warnings, "line 1: dataDir \"data\" is relative"));
        let (c, warnings) = Config::parse("dataDir=./data\ndataLogDir=../log").expect("parses");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.data_log_dir, Some(PathBuf::from("../log")));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    // ----- syntax ---------------------------------------------------------------

    #[test]
    fn comments_blank_lines_and_whitespace() {
        let text = "# comment\n! also a comment\n\n   \t\n  tickTime = 3000  \n\
                    \t# indented comment\ndataDir=/d\n  clientPort\t=\t2182\r\n";
        let (c, warnings) = Config::parse(text).expect("parses");
        assert_eq!(c.tick_time_ms, 3000);
        assert_eq!(c.client_port, 2182);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn inline_hash_is_part_of_the_value_as_in_java() {
        let text = err_text("tickTime=2000 # two seconds");
        assert!(text.contains("tickTime = \"2000 # two seconds\""), "{text}");
    }

    #[test]
    fn colon_and_blank_separators() {
        assert_eq!(cfg("tickTime:2500").tick_time_ms, 2500);
        assert_eq!(cfg("tickTime 2600").tick_time_ms, 2600);
        assert_eq!(cfg("tickTime   :  2700").tick_time_ms, 2700);
        // Only the first separator is consumed.
        let text = err_text("tickTime==2800");
        assert!(text.contains("\"=2800\""), "{text}");
    }

    #[test]
    fn line_continuation_and_escapes() {
        let text = "dataDir=/var/lib/\\\n      warren\n4lw.commands.whitelist=ruok,\\\n  stat\ntickTime=\\u0032000\n";
        let (c, warnings) = Config::parse(text).expect("parses");
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/warren"));
        assert_eq!(c.four_letter_words, words(&["ruok", "stat"]));
        assert_eq!(c.tick_time_ms, 2000);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn escaped_separator_belongs_to_the_key_and_double_backslash_is_literal() {
        let (c, warnings) = Config::parse("dataDir=C:\\\\zk\\\\data\nodd\\=key=1").expect("parses");
        assert_eq!(c.data_dir, PathBuf::from("C:\\zk\\data"));
        assert!(has_warning(&warnings, "unknown key \"odd=key\""), "{warnings:?}");
    }

    #[test]
    fn surrogate_pair_escapes_decode() {
        let (c, _) = Config::parse("dataDir=/d/\\uD83D\\uDE00").expect("parses");
        assert_eq!(c.data_dir, PathBuf::from("/d/\u{1F600}"));
        let (c, _) = Config::parse("dataDir=/d/\\uD83Dx").expect("parses");
        assert_eq!(c.data_dir, PathBuf::from("/d/\u{FFFD}x"));
    }

    #[test]
    fn malformed_unicode_escape_is_a_syntax_error_with_line() {
        let e = err("\ntickTime=\\u12G4");
        assert!(matches!(e, ConfigError::Syntax { line: 3, .. }), "{e:?}");
        assert_eq!(e.to_string(), "zoo.cfg line 3: malformed \\uxxxx escape");
    }

    #[test]
    fn continuation_line_numbers_point_at_the_first_line() {
        let e = Config::parse("dataDir=/d\ntickTime=\\\n  abc").expect_err("bad tickTime");
        assert!(matches!(e, ConfigError::InvalidValue { line: 2, .. }), "{e:?}");
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let c = Config::parse("dataDir=/d\r\ntickTime=100\rclientPort=9").expect("parses").0;
        assert_eq!((c.tick_time_ms, c.client_port), (100, 9));
    }

    #[test]
    fn latin1_file_bytes_are_decoded() {
        assert_eq!(decode(b"dataDir=/caf\xe9".to_vec()), "dataDir=/caf\u{e9}");
        assert_eq!(decode("dataDir=/café".as_bytes().to_vec()), "dataDir=/caf\u{e9}");
    }

    // ----- warnings -------------------------------------------------------------

    #[test]
    fn unknown_key_is_a_warning_naming_line_and_key() {
        let (c, warnings) = ok("\nfrobnicate=7");
        assert_eq!(c.tick_time_ms, 2000);
        assert_eq!(warnings, vec!["zoo.cfg line 3: unknown key \"frobnicate\" ignored".to_string()]);
    }

    #[test]
    fn miscased_key_gets_a_hint() {
        let (c, warnings) = ok("ticktime=5");
        assert_eq!(c.tick_time_ms, 2000);
        assert!(has_warning(&warnings, "(did you mean tickTime?)"), "{warnings:?}");
    }

    #[test]
    fn ignored_zookeeper_keys_warn_by_name_and_line() {
        let (_, warnings) = ok("metricsProvider.numWorkerThreads=4
standaloneEnabled=false
reconfigEnabled=true
audit.enable=true
quorumListenOnAllIPs=true
admin.forceHttps=false
electionPortBindRetry=3
syncEnabled=true
globalOutstandingLimit=1000
clientPortListenBacklog=128
skipACL=no
localSessionsEnabled=false");
        assert_eq!(warnings.len(), 10, "{warnings:?}");
        assert!(has_warning(&warnings, "line 2: metricsProvider.numWorkerThreads is ignored: "), "{warnings:?}");
        assert!(has_warning(
            &warnings,
            "line 4: reconfigEnabled is ignored: dynamic reconfiguration is not implemented"
        ));
        assert!(has_warning(&warnings, "line 10: globalOutstandingLimit is ignored: "));
        assert!(!warnings.iter().any(|w| w.contains("skipACL")), "skipACL=no is what Warren does");
    }

    #[test]
    fn keys_that_would_change_the_promise_are_refused() {
        for line in ["group.1=1:2:3", "weight.1=2"] {
            let text = err_text(line);
            assert!(text.contains("remove the line to start without it"), "{line}: {text}");
            assert!(text.contains(line.split('=').next().unwrap()), "{line}: {text}");
        }
        assert!(err_text("group.1=1:2:3").contains("hierarchical quorums"));
    }

    /// Parses an ensemble member's file (myid 1 of `THREE`) with `SERVER_JVMFLAGS` = `flags`.
    fn with_jvm_flags(body: &str, flags: Option<&str>) -> Result<(Config, Vec<String>), ConfigError> {
        let reader = |_: &Path| Ok(Some("1".to_string()));
        Config::parse_full(&format!("dataDir=/var/lib/warren\n{THREE}\n{body}"), flags, &reader)
    }

    #[test]
    fn read_only_mode_is_read_from_zoo_cfg_in_an_ensemble() {
        let (c, w) = ensemble_ok("1", &format!("{THREE}\nreadonlymode.enabled=true"));
        assert!(c.readonly_mode_enabled);
        assert!(w.is_empty(), "{w:?}");
        for (value, on) in [("false", false), ("TRUE", true), ("False", false)] {
            let (c, w) = ensemble_ok("1", &format!("{THREE}\nreadonlymode.enabled={value}"));
            assert_eq!(c.readonly_mode_enabled, on, "{value}");
            assert!(w.is_empty(), "{value}: {w:?}");
        }
        assert!(!ensemble_ok("1", THREE).0.readonly_mode_enabled, "off by default");
        for bad in ["yes", "1", "on", ""] {
            let e = ensemble_err("1", &format!("{THREE}\nreadonlymode.enabled={bad}"));
            assert!(e.contains("readonlymode.enabled") && e.contains("true or false"), "{bad}: {e}");
        }
    }

    #[test]
    fn local_sessions_are_read_in_an_ensemble_and_ignored_by_name_standalone() {
        let (c, w) =
            ensemble_ok("1", &format!("{THREE}\nlocalSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true\n"));
        assert!(c.local_sessions_enabled && c.local_sessions_upgrading_enabled, "{w:?}");
        assert!(!w.iter().any(|w| w.contains("localSessions")), "{w:?}");
        let (c, _) = ensemble_ok("1", &format!("{THREE}\nlocalSessionsEnabled=true\n"));
        assert!(c.local_sessions_enabled && !c.local_sessions_upgrading_enabled, "upgrading is off by default");
        let (c, w) = ensemble_ok("1", &format!("{THREE}\nlocalSessionsUpgradingEnabled=true\n"));
        assert!(!c.local_sessions_enabled && !c.local_sessions_upgrading_enabled);
        assert!(w.iter().any(|w| w.contains("has no effect without localSessionsEnabled=true")), "{w:?}");
        let (c, w) = ok("localSessionsEnabled=true");
        assert!(!c.local_sessions_enabled);
        assert!(has_warning(&w, "line 2: localSessionsEnabled=true is ignored: a standalone server"), "{w:?}");
        assert!(err_text("localSessionsEnabled=yes").contains("true or false"));
    }

    #[test]
    fn read_only_mode_is_ignored_by_name_on_a_standalone_server() {
        let (c, w) = ok("readonlymode.enabled=true");
        assert!(!c.readonly_mode_enabled);
        assert!(has_warning(&w, "line 2: readonlymode.enabled=true is ignored: a standalone server"), "{w:?}");
        let (c, w) = ok("readonlymode.enabled=false");
        assert!(!c.readonly_mode_enabled);
        assert!(w.is_empty(), "{w:?}");
        let (c, w) = Config::parse_full("dataDir=/d\n", Some("-Dreadonlymode.enabled=true"), &|_: &Path| Ok(None))
            .expect("parses");
        assert!(!c.readonly_mode_enabled);
        assert!(has_warning(&w, "SERVER_JVMFLAGS: -Dreadonlymode.enabled=true is ignored"), "{w:?}");
        assert!(err_text("readonlymode.enabled=maybe").contains("true or false"));
    }

    #[test]
    fn read_only_mode_is_read_from_server_jvmflags_and_zoo_cfg_wins() {
        let on = |flags: &str| with_jvm_flags("", Some(flags)).expect("parses").0.readonly_mode_enabled;
        assert!(on("-Xmx512m -Dreadonlymode.enabled=true -Dzookeeper.foo=1"));
        assert!(on("-Dreadonlymode.enabled=TRUE"));
        assert!(!on("-Dreadonlymode.enabled=false"));
        assert!(!on("-Dzookeeper.readonlymode.enabled=true"), "not the property ZooKeeper reads");
        assert!(on("-Dreadonlymode.enabled=false -Dreadonlymode.enabled=true"), "the last -D wins, as in Java");
        assert!(!with_jvm_flags("", None).expect("parses").0.readonly_mode_enabled);
        let e = with_jvm_flags("", Some("-Dreadonlymode.enabled=yes")).expect_err("refused").to_string();
        assert!(e.contains("SERVER_JVMFLAGS") && e.contains("true or false"), "{e}");
        let (c, w) = with_jvm_flags("readonlymode.enabled=false", Some("-Dreadonlymode.enabled=true")).expect("parses");
        assert!(!c.readonly_mode_enabled, "zoo.cfg wins");
        assert!(has_warning(&w, "readonlymode.enabled=false overrides -Dreadonlymode.enabled=true in SERVER_JVMFLAGS"));
        let (c, w) = with_jvm_flags("readonlymode.enabled=true", Some("-Dreadonlymode.enabled=true")).expect("parses");
        assert!(c.readonly_mode_enabled && w.is_empty(), "{w:?}");
    }

    #[test]
    fn each_ignored_key_is_warned_about_by_name() {
        for (k, reason) in IGNORED_KEYS {
            let (_, warnings) = ok(&format!("{k}=1"));
            let expected = format!("line 2: {k} is ignored: {reason}");
            assert!(has_warning(&warnings, &expected), "{k}: {warnings:?}");
        }
        for (prefix, reason) in IGNORED_KEY_PREFIXES {
            let (_, warnings) = ok(&format!("{prefix}someKnob=1"));
            assert!(
                has_warning(&warnings, &format!("{prefix}someKnob is ignored: {reason}")),
                "{prefix}: {warnings:?}"
            );
        }
    }

    #[test]
    fn every_ignored_key_has_a_reason_and_is_not_also_used() {
        for (k, reason) in IGNORED_KEYS.iter().chain(IGNORED_KEY_PREFIXES) {
            assert!(!reason.is_empty(), "{k}");
            assert!(!USED_KEYS.contains(k), "{k} is both used and ignored");
        }
    }

    #[test]
    fn unsupported_features_warn() {
        let (_, warnings) = ok("dynamicConfigFile=/etc/zk/zoo.cfg.dynamic
ssl.quorum.clientHostnameVerification=false
authProvider.1=com.example.KerberosOnlyProvider
skipACL=yes");
        assert!(has_warning(&warnings, "line 2: dynamicConfigFile is not supported"));
        assert!(has_warning(&warnings, "line 3: ssl.quorum.clientHostnameVerification is not supported"));
        assert!(has_warning(&warnings, "line 4: authProvider.1 is not supported"));
        assert!(has_warning(&warnings, "line 5: skipACL=yes is not supported"));
    }

    const QUORUM_STORES: &str =
        "ssl.quorum.keyStore.location=/q/server.pem\nssl.quorum.trustStore.location=/q/ca.p12\n\
         ssl.quorum.trustStore.password=pw\n";

    #[test]
    fn quorum_tls_keys_are_read_with_zookeeper_defaults() {
        let (c, w) = ensemble_ok("1\n", &format!("{THREE}\nsslQuorum=true\n{QUORUM_STORES}"));
        assert!(w.is_empty(), "{w:?}");
        let q = &c.quorum_tls;
        assert!(q.ssl_quorum && !q.port_unification && !q.reload_cert_files);
        assert!(q.tls.hostname_verification, "ZooKeeper verifies peer host names by default");
        assert_eq!(q.tls.protocols, vec![tls::Protocol::Tls12]);
        assert_eq!(q.tls.client_auth, tls::ClientAuth::Need);
        assert_eq!(q.tls.key_store.as_ref().unwrap().kind, tls::StoreType::Pem);
        let trust = q.tls.trust_store.as_ref().unwrap();
        assert_eq!((trust.kind, trust.password.as_str()), (tls::StoreType::Pkcs12, "pw"));
        // The client keys stay apart: no client TLS.
        assert!(!c.tls.enabled() && c.tls.key_store.is_none());

        let (c, w) = ensemble_ok(
            "1\n",
            &format!(
                "{THREE}\nportUnification=true\nsslQuorumReloadCertFiles=true\n{QUORUM_STORES}\
                 ssl.quorum.hostnameVerification=false\nssl.quorum.enabledProtocols=TLSv1.3,TLSv1.2\n\
                 ssl.quorum.ciphersuites=TLS_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n\
                 ssl.quorum.handshakeDetectionTimeoutMillis=700\nssl.quorum.clientAuth=need"
            ),
        );
        assert!(w.is_empty(), "{w:?}");
        let q = &c.quorum_tls;
        assert!(!q.ssl_quorum && q.port_unification && q.reload_cert_files && q.enabled());
        assert!(!q.tls.hostname_verification);
        assert_eq!(q.tls.protocols, vec![tls::Protocol::Tls12, tls::Protocol::Tls13]);
        assert_eq!(q.tls.cipher_suites.as_ref().unwrap().len(), 2);
        assert_eq!(q.tls.handshake_detection_timeout_ms, 700);
    }

    #[test]
    fn quorum_tls_refusals_name_the_quorum_keys() {
        let e = ensemble_err("1\n", &format!("{THREE}\nsslQuorum=true\nssl.quorum.keyStore.location=/q/s.pem"));
        assert!(e.contains("ssl.quorum.trustStore.location"), "{e}");
        let e = ensemble_err("1\n", &format!("{THREE}\nportUnification=true"));
        assert!(e.contains("portUnification=true") && e.contains("ssl.quorum.keyStore.location"), "{e}");
        let e = ensemble_err("1\n", &format!("{THREE}\nsslQuorum=true\n{QUORUM_STORES}ssl.quorum.clientAuth=want"));
        assert!(e.contains("ssl.quorum.clientAuth") && e.contains("always authenticate"), "{e}");
        let e = ensemble_err("1\n", &format!("{THREE}\nsslQuorum=true\n{QUORUM_STORES}ssl.quorum.keyStore.type=JKS"));
        assert!(e.contains("ssl.quorum.keyStore.type") && e.contains("keytool"), "{e}");
        let e = ensemble_err("1\n", &format!("{THREE}\nsslQuorum=true\n{QUORUM_STORES}ssl.quorum.crl=true"));
        assert!(e.contains("ssl.quorum.crl") && e.contains("revocation"), "{e}");
        let e = ensemble_err("1\n", &format!("{THREE}\nsslQuorum=true\n{QUORUM_STORES}ssl.quorum.protocol=TLSv1.1"));
        assert!(e.contains("ssl.quorum.protocol") && e.contains("obsolete"), "{e}");
        let e = ensemble_err("1\n", &format!("{THREE}\nsslQuorum=maybe\n{QUORUM_STORES}"));
        assert!(e.contains("sslQuorum"), "{e}");
        let e = ensemble_err(
            "1\n",
            &format!("{THREE}\nsslQuorum=true\n{QUORUM_STORES}ssl.quorum.context.supplier.class=a.B"),
        );
        assert!(e.contains("ssl.quorum.keyStore.*"), "{e}");
    }

    #[test]
    fn quorum_tls_keys_that_change_nothing_are_warned_about() {
        // Stores without sslQuorum or portUnification: plaintext, and the operator is told.
        let (c, w) = ensemble_ok("1\n", &format!("{THREE}\nsslQuorum=false\n{QUORUM_STORES}"));
        assert!(!c.quorum_tls.enabled());
        assert!(w.iter().any(|w| w.contains("peer connections are plaintext")), "{w:?}");
        // A standalone server has no peers.
        let (c, w) = ok(&format!("sslQuorum=true\n{QUORUM_STORES}"));
        assert!(!c.quorum_tls.enabled());
        assert!(w.iter().any(|w| w.contains("standalone server has no peers")), "{w:?}");
        let (_, w) = ensemble_ok("1\n", &format!("{THREE}\n{QUORUM_STORES}ssl.quorum.sslProvider=OPENSSL"));
        assert!(w.iter().any(|w| w.contains("ssl.quorum.sslProvider=OPENSSL is ignored")), "{w:?}");
        // The client's hostnameVerification warning is not given for the quorum's.
        let (_, w) = ensemble_ok(
            "1\n",
            &format!("{THREE}\nsslQuorum=true\n{QUORUM_STORES}ssl.quorum.hostnameVerification=true"),
        );
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn secure_only_server_has_no_plaintext_port() {
        let tls = "ssl.keyStore.location=/k.pem\nssl.clientAuth=none\n";
        assert!(cfg(&format!("{tls}secureClientPort=2281")).tls.secure_client_port == Some(2281));
        assert!(!cfg(&format!("{tls}secureClientPort=2281")).plaintext_client_port);
        assert!(cfg(&format!("{tls}secureClientPort=2281\nclientPort=2181")).plaintext_client_port);
        assert!(cfg("clientPort=2181").plaintext_client_port);
        assert!(cfg("maxClientCnxns=10").plaintext_client_port, "no port at all keeps the default 2181");
    }

    #[test]
    fn auth_enforcement_needs_available_schemes() {
        assert!(err_text("enforce.auth.enabled=true").contains("enforce.auth.schemes must be set"));
        assert!(err_text("enforce.auth.enabled=true\nenforce.auth.schemes=sasl").contains("sasl is not available"));
        assert!(err_text("sessionRequireClientSASLAuth=true").contains("sasl is not available"));
        assert!(
            err_text("enforce.auth.enabled=true\nenforce.auth.schemes=kerberos").contains("kerberos is not available")
        );
        assert!(err_text("requireClientAuthScheme=digest").contains("expected sasl"));
        let c = cfg("enforce.auth.enabled=true\nenforce.auth.schemes=digest, ip");
        assert_eq!(c.enforce_auth_schemes, ["digest", "ip"]);
        let (c, warnings) = ok("enforce.auth.enabled=false\nenforce.auth.schemes=digest");
        assert!(warnings.is_empty() && c.enforce_auth_schemes.is_empty());
    }

    #[test]
    fn jaas_users_and_sasl_enforcement() {
        let dir = tempfile::tempdir().unwrap();
        let jaas = dir.path().join("jaas.conf");
        std::fs::write(
            &jaas,
            "Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_bob=\"pw\"; };\n",
        )
        .unwrap();
        let c = cfg(&format!(
            "java.security.auth.login.config={}\nsessionRequireClientSASLAuth=true\nsuperUser=bob\n\
             authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
            jaas.display()
        ));
        assert_eq!(c.sasl_users.unwrap()["bob"], "pw");
        assert_eq!(c.enforce_auth_schemes, ["sasl"]);
        assert_eq!(c.sasl_super_user.as_deref(), Some("bob"));
        let text = err_text(&format!("java.security.auth.login.config={}\nsasl.serverconfig=Other", jaas.display()));
        assert!(text.contains("no \"Other\" section"), "{text}");
        assert!(matches!(
            err(&format!("java.security.auth.login.config={}/nope", dir.path().display())),
            ConfigError::Io { .. }
        ));
    }

    #[test]
    fn duplicate_key_last_wins_with_warning() {
        let (c, warnings) = ok("tickTime=1000\ntickTime=3000");
        assert_eq!(c.tick_time_ms, 3000);
        assert!(has_warning(&warnings, "line 3: tickTime already set on line 2; the last value wins"));
    }

    // ----- errors -----------------------------------------------------------------

    #[test]
    fn invalid_value_names_line_key_value_and_expectation() {
        let e = Config::parse("dataDir=/d\n\ntickTime=abc").expect_err("bad");
        assert_eq!(e.to_string(), "zoo.cfg line 3: tickTime = \"abc\": expected a positive integer");
    }

    #[test]
    fn invalid_numbers_are_errors() {
        let cases = [
            ("tickTime=0", "expected a positive integer"),
            ("tickTime=-5", "expected a positive integer"),
            ("tickTime=", "expected a positive integer"),
            ("clientPort=65536", "expected a port number"),
            ("maxClientCnxns=-1", "expected a non-negative integer"),
            ("minSessionTimeout=soon", "milliseconds"),
            ("jute.maxbuffer=0", "positive"),
            ("jute.maxbuffer=1e6", "positive"),
            ("initLimit=x", "ticks"),
            ("syncLimit=-1", "ticks"),
            ("snapCount=lots", "positive"),
            ("preAllocSize=0", "positive"),
            ("autopurge.snapRetainCount=x", "at least 3"),
            ("autopurge.purgeInterval=1.5", "hours"),
            ("warren.cores=0", "positive"),
            ("warren.ioMemoryKb=-1", "positive"),
            ("maxCnxns=-1", "expected a non-negative integer"),
            ("nio.sessionlessCnxnTimeout=0", "positive"),
            ("warren.maxQueuedReplyBytes=0", "positive"),
        ];
        for (line, expected) in cases {
            let e = err(line);
            assert!(matches!(e, ConfigError::InvalidValue { line: 2, .. }), "{line}: {e:?}");
            assert!(e.to_string().contains(expected), "{line}: {e}");
        }
    }

    #[test]
    fn invalid_words_are_errors() {
        assert!(err_text("forceSync=false").contains("expected yes or no"));
        assert!(err_text("admin.enableServer=yes").contains("expected true or false"));
        assert!(err_text("peerType=leader").contains("expected observer or participant"));
        assert!(err_text("dataLogDir=").contains("expected a directory path"));
        assert!(err_text("superDigest=nocolon").contains("user:base64"));
        assert!(err_text("superDigest=:abc").contains("user:base64"));
    }

    #[test]
    fn malformed_digest_warns() {
        let (c, warnings) = ok("superDigest=super:secret");
        assert_eq!(c.super_digest.as_deref(), Some("super:secret"));
        assert!(has_warning(&warnings, "no password will match"));
    }

    #[test]
    fn missing_data_dir_is_an_error() {
        let e = Config::parse("tickTime=2000\n").expect_err("no dataDir");
        assert!(matches!(e, ConfigError::MissingDataDir));
        assert_eq!(e.to_string(), "zoo.cfg: dataDir is not set");
        assert!(matches!(Config::parse(""), Err(ConfigError::MissingDataDir)));
    }

    #[test]
    fn min_session_above_max_is_an_error() {
        let e = err("minSessionTimeout=50000");
        assert!(matches!(e, ConfigError::SessionTimeoutOrder { min: 50000, max: 40000 }), "{e:?}");
        assert!(e.to_string().contains("minSessionTimeout (50000 ms) is larger"));
        let c = cfg("minSessionTimeout=5000\nmaxSessionTimeout=5000");
        assert_eq!(c.min_session_timeout_ms, 5000);
    }

    // ----- four-letter words ----------------------------------------------------------

    #[test]
    fn whitelist_parsing() {
        let (list, unknown) = FourLetterWhitelist::parse(" ruok ,stat,, mntr ");
        assert_eq!(list, words(&["ruok", "stat", "mntr"]));
        assert!(unknown.is_empty());
        assert!(list.allows("ruok") && list.allows("mntr"));
        assert!(!list.allows("conf") && !list.allows("wchp"));
        assert_eq!(list.to_string(), "mntr, ruok, stat");
    }

    #[test]
    fn whitelist_star_allows_everything() {
        let (list, _) = FourLetterWhitelist::parse("ruok, *");
        assert_eq!(list, FourLetterWhitelist::All);
        assert!(list.allows("wchp") && list.allows("dump"));
        assert_eq!(list.to_string(), "*");
        assert!(cfg("4lw.commands.whitelist=*").four_letter_word_allowed("cons"));
    }

    #[test]
    fn whitelist_always_allows_srvr_as_zookeeper_does() {
        let (list, _) = FourLetterWhitelist::parse("");
        assert_eq!(list, words(&[]));
        assert!(list.allows("srvr"));
        assert!(!list.allows("ruok"));
    }

    #[test]
    fn whitelist_words_are_case_sensitive_and_unknown_ones_warn() {
        let (c, warnings) = ok("4lw.commands.whitelist=RUOK, stat, ruok stat");
        assert!(!c.four_letter_word_allowed("ruok"));
        assert!(c.four_letter_word_allowed("stat"));
        assert!(has_warning(&warnings, "unknown four-letter word \"RUOK\""), "{warnings:?}");
        assert!(has_warning(&warnings, "unknown four-letter word \"ruok stat\""), "{warnings:?}");
    }

    #[test]
    fn default_whitelist_is_the_issue_list() {
        let c = Config::embedded_default();
        for word in ["ruok", "srvr", "stat", "mntr", "isro"] {
            assert!(c.four_letter_word_allowed(word), "{word}");
        }
        for word in ["conf", "cons", "dump", "wchp", "wchc", "envi"] {
            assert!(!c.four_letter_word_allowed(word), "{word}");
        }
    }

    // ----- server lines ------------------------------------------------------------------

    #[test]
    fn server_ids_above_254_are_refused() {
        // Two servers whose ids agree in the low byte would create the same session ids.
        let text = "dataDir=/d\nserver.1=127.0.0.1:2888:3888\nserver.257=127.0.0.1:2889:3889";
        let e = Config::parse_with(text, &|_| Ok(Some("1".into()))).expect_err("server.257");
        assert!(e.to_string().contains("0-254"), "{e}");
        let ok = "dataDir=/d\nserver.1=127.0.0.1:2888:3888\nserver.254=127.0.0.1:2889:3889";
        Config::parse_with(ok, &|_| Ok(Some("254".into()))).expect("server.254");
    }

    #[test]
    fn server_lines_are_parsed_and_sorted() {
        let (c, warnings) = ensemble_ok(
            "1",
            "server.3=zk3.example.com:2888:3888:observer
server.1=10.0.0.1:2888:3888
server.2=[2001:db8::2]:2888:3888:participant;2181
server.4=zk4:2888:3888;127.0.0.1:2191",
        );
        let ids: Vec<u64> = c.servers.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![1, 2, 3, 4]);
        assert_eq!(
            c.servers[0],
            ServerEntry {
                id: 1,
                host: "10.0.0.1".into(),
                quorum_port: 2888,
                election_port: 3888,
                role: PeerRole::Participant,
                // This server's (myid 1): clientPortAddress and clientPort.
                client_addr: Some(("0.0.0.0".into(), 2181)),
            }
        );
        assert_eq!(c.servers[1].host, "2001:db8::2");
        assert_eq!(c.servers[1].client_addr, Some(("0.0.0.0".into(), 2181)));
        assert_eq!(c.servers[2].role, PeerRole::Observer);
        assert_eq!(c.servers[2].host, "zk3.example.com");
        assert_eq!(c.servers[3].client_addr, Some(("127.0.0.1".into(), 2191)));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.myid(), Some(1));
    }

    #[test]
    fn server_line_with_bracketed_v6_client_address() {
        let c = cfg("server.9=h:1:2;[::1]:2181");
        assert_eq!(c.servers[0].client_addr, Some(("::1".into(), 2181)));
    }

    #[test]
    fn server_line_whitespace_around_parts_is_tolerated() {
        let c = cfg("server.1 = zk1:2888:3888 ; 2181");
        assert_eq!(c.servers[0].client_addr, Some(("0.0.0.0".into(), 2181)));
    }

    #[test]
    fn bad_server_lines_are_errors_naming_the_line() {
        for value in [
            "zk1",
            "zk1:2888",
            "zk1:2888:3888:leader",
            "zk1:2888:3888:observer:extra",
            "zk1:x:3888",
            "zk1:2888:70000",
            "zk1:0:3888",
            "zk1:2888:2888",
            ":2888:3888",
            "[::1:2888:3888",
            "[::1]2888:3888",
            "a b:2888:3888",
            "zk1:2888:3888;",
            "zk1:2888:3888;host:",
            "zk1:2888:3888;h:1:2",
            "zk1:2888:3888;2181;2182",
            "zk1:2888:3888|zk1b:2889:3889",
            "",
        ] {
            let e = err(&format!("\nserver.1={value}"));
            assert!(matches!(e, ConfigError::InvalidValue { line: 3, .. }), "{value:?}: {e:?}");
            assert!(e.to_string().contains("host:quorumPort:electionPort"), "{e}");
        }
    }

    #[test]
    fn bad_server_ids_are_errors() {
        for key in ["server.", "server.x", "server.-1", "server.1.5"] {
            let e = err(&format!("{key}=zk1:2888:3888"));
            assert!(matches!(e, ConfigError::InvalidValue { line: 2, .. }), "{key}: {e:?}");
            assert!(e.to_string().contains("server.N"), "{e}");
        }
    }

    #[test]
    fn same_server_id_twice_warns_and_last_wins() {
        let (c, warnings) = ok("server.1=a:1:2\nserver.01=b:1:2");
        assert_eq!(c.servers.len(), 1);
        assert_eq!(c.servers[0].host, "b");
        assert!(has_warning(&warnings, "line 3: server id 1 already defined on line 2"), "{warnings:?}");
        let (_, warnings) = ok("server.1=a:1:2\nserver.1=b:1:2");
        let mentions = warnings.iter().filter(|w| w.contains("line 3")).count();
        assert_eq!(mentions, 1, "{warnings:?}");
    }

    // ----- ensembles ---------------------------------------------------------------------

    #[test]
    fn ensemble_reads_myid_and_exposes_members_and_addresses() {
        let (c, warnings) = ensemble_ok("2\n", &format!("clientPort=2182\nclientPortAddress=127.0.0.1\n{THREE}"));
        assert!(warnings.is_empty(), "{warnings:?}");
        let e = c.ensemble.as_ref().expect("ensemble");
        assert_eq!(e.myid, 2);
        assert_eq!(c.myid(), Some(2));
        assert_eq!(e.voters(), vec![1, 2, 3]);
        assert!(e.observers().is_empty());
        assert_eq!(e.my_role(), PeerRole::Participant);
        assert_eq!(e.my_quorum_addr(), ("127.0.0.1".to_string(), 2889));
        assert_eq!(e.my_election_addr(), ("127.0.0.1".to_string(), 3889));
        // clientPort applies to this server only.
        assert_eq!(e.me().client_addr, Some(("127.0.0.1".to_string(), 2182)));
        assert_eq!(e.members[0].client_addr, None);
        assert_eq!((c.init_limit, c.sync_limit), (10, 5));
        // As ZooKeeper 3.8 fills /zookeeper/config: no client part from clientPort.
        assert_eq!(
            e.config_text,
            "server.1=127.0.0.1:2888:3888:participant\nserver.2=127.0.0.1:2889:3889:participant\n\
             server.3=127.0.0.1:2890:3890:participant\nversion=0"
        );
    }

    #[test]
    fn config_node_text_keeps_client_parts_roles_and_v6_brackets() {
        let lines = "server.3=127.0.0.1:2890:3890:observer;2183
server.1=[::1]:2888:3888;[::1]:2181
server.2=127.0.0.1:2889:3889";
        let c = ensemble_ok("2", lines).0;
        assert_eq!(
            c.ensemble.unwrap().config_text,
            "server.1=[::1]:2888:3888:participant;[::1]:2181\nserver.2=127.0.0.1:2889:3889:participant\n\
             server.3=127.0.0.1:2890:3890:observer;0.0.0.0:2183\nversion=0"
        );
    }

    #[test]
    fn client_address_from_the_own_server_line_wins() {
        let lines = "server.1=127.0.0.1:2888:3888;127.0.0.1:2181
server.2=127.0.0.1:2889:3889;127.0.0.1:2182
server.3=127.0.0.1:2890:3890;2183";
        let c = ensemble_ok("2", lines).0;
        assert_eq!((c.client_port, c.client_port_address), (2182, "127.0.0.1".parse::<IpAddr>().unwrap()));
        let c = ensemble_ok("3", lines).0;
        assert_eq!((c.client_port, c.client_port_address), (2183, IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        // An explicit clientPort must agree (ZooKeeper 3.8: "client address for this server
        // (id = 1) in static config file is 0.0.0.0/0.0.0.0:2181 is different from ...").
        assert!(ensemble_ok("2", &format!("clientPort=2182\n{lines}")).1.is_empty());
        let e = ensemble_err("2", &format!("clientPort=2181\n{lines}"));
        assert!(e.contains("client address for this server (server.2)"), "{e}");
        let e = ensemble_err("2", &format!("clientPort=2182\nclientPortAddress=10.0.0.1\n{lines}"));
        assert!(e.contains("127.0.0.1:2182 on its server line"), "{e}");
        ensemble_ok("2", &format!("clientPort=2182\nclientPortAddress=0.0.0.0\n{lines}"));
        let e = ensemble_err("1", "server.1=h1:1:2;zk1.example.com:2181\nserver.2=h2:1:2");
        assert!(e.contains("must be an IP address"), "{e}");
    }

    #[test]
    fn missing_myid_is_an_error_saying_what_to_write() {
        let e = with_myid(None, THREE).expect_err("no myid");
        assert!(matches!(e, ConfigError::MissingMyid { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "/var/lib/warren/myid is missing; write this server's N from server.N \
             (one of server.1, server.2, server.3) into it"
        );
    }

    #[test]
    fn malformed_myid_is_an_error_naming_the_file() {
        for bad in ["", "x", "-1", "1 2", "0x1", "1.0"] {
            let e = with_myid(Some(bad), THREE).expect_err(bad);
            assert!(matches!(e, ConfigError::BadMyid { .. }), "{bad:?}: {e:?}");
            assert!(e.to_string().starts_with("/var/lib/warren/myid: "), "{e}");
        }
        // Surrounding whitespace and a newline are accepted (ZooKeeper only strips the newline).
        assert_eq!(ensemble_ok(" 3 \r\n", THREE).0.myid(), Some(3));
    }

    #[test]
    fn myid_not_in_the_server_list_is_an_error() {
        let e = with_myid(Some("7"), THREE).expect_err("unknown id");
        assert!(matches!(e, ConfigError::MyidNotListed { myid: 7, .. }), "{e:?}");
        assert!(e.to_string().contains("no server.7 line (it has server.1, server.2, server.3)"), "{e}");
    }

    #[test]
    fn duplicate_addresses_are_errors() {
        let cases = [
            (
                "server.1=h:2888:3888\nserver.2=h:2888:3889",
                "server.2's quorum address h:2888 is the same as server.1's quorum",
            ),
            (
                "server.1=h:2888:3888\nserver.2=H:2889:3888",
                "election address H:3888 is the same as server.1's election",
            ),
            (
                "server.1=h:2888:3888\nserver.2=h:3888:3889",
                "server.2's quorum address h:3888 is the same as server.1's election",
            ),
            (
                "server.1=h:2888:3888;10.0.0.9:2181\nserver.2=h:2889:3889;10.0.0.9:2181",
                "server.2's client address 10.0.0.9:2181",
            ),
            ("server.1=h:2888:3888;2181\nserver.2=h:2889:3889;2181", "server.2's client address h:2181"),
            (
                "server.1=10.0.0.9:2888:3888;10.0.0.9:3888\nserver.2=h:2889:3889",
                "client address 10.0.0.9:3888 is the same as server.1's election",
            ),
            // This server's clientPort counts as its client address.
            (
                "clientPort=2889\nserver.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889",
                "quorum address 127.0.0.1:2889",
            ),
        ];
        for (body, expected) in cases {
            let e = ensemble_err("1", body);
            assert!(e.contains(expected), "{body:?}: {e}");
        }
        // The same client port on different hosts is the usual production layout.
        let (c, warnings) =
            ensemble_ok("1", "server.1=a:2888:3888;2181\nserver.2=b:2888:3888;2181\nserver.3=c:2888:3888;2181");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.ensemble.expect("ensemble").members.len(), 3);
    }

    #[test]
    fn even_number_of_participants_warns() {
        let four = format!("{THREE}\nserver.4=127.0.0.1:2891:3891");
        let (_, warnings) = ensemble_ok("1", &four);
        assert!(has_warning(&warnings, "an ensemble of 4 tolerates no more failures than 3"), "{warnings:?}");
        // Observers do not vote: 4 participants and an observer is still even.
        let (_, warnings) = ensemble_ok("1", &format!("{four}\nserver.5=127.0.0.1:2892:3892:observer"));
        assert!(has_warning(&warnings, "an ensemble of 4"), "{warnings:?}");
        let (_, warnings) = ensemble_ok("1", "server.1=h:1:2\nserver.2=h:3:4");
        assert!(has_warning(&warnings, "an ensemble of 2 participants tolerates no failure"), "{warnings:?}");
        let (c, warnings) =
            ensemble_ok("4", &format!("peerType=observer\n{THREE}\nserver.4=127.0.0.1:2891:3891:observer"));
        assert!(warnings.is_empty(), "{warnings:?}");
        let e = c.ensemble.expect("ensemble");
        assert_eq!((e.voters(), e.observers(), e.my_role()), (vec![1, 2, 3], vec![4], PeerRole::Observer));
    }

    #[test]
    fn peer_type_disagreeing_with_the_server_list_warns_and_the_list_wins() {
        // ZooKeeper 3.8.0 logs "Peer type from servers list (OBSERVER) doesn't match peerType
        // (PARTICIPANT). Defaulting to servers list." and runs as the list says.
        let obs = format!("{THREE}\nserver.4=127.0.0.1:2891:3891:observer");
        let (c, warnings) = ensemble_ok("4", &format!("peerType=participant\n{obs}"));
        assert!(c.peer_type_observer);
        assert!(has_warning(&warnings, "peerType=participant disagrees with server.4"), "{warnings:?}");
        let (c, warnings) = ensemble_ok("1", &format!("peerType=observer\n{obs}"));
        assert!(!c.peer_type_observer);
        assert_eq!(c.ensemble.expect("ensemble").my_role(), PeerRole::Participant);
        assert!(has_warning(&warnings, "makes this server participant"), "{warnings:?}");
        let (_, warnings) = ensemble_ok("4", &format!("peerType=observer\n{obs}"));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_single_server_line_runs_standalone_without_myid() {
        // ZooKeeper 3.8.0: "Invalid configuration, only one server specified (ignoring)", then
        // `srvr` says "Mode: standalone".
        let (c, warnings) = with_myid(None, "server.1=127.0.0.1:2888:3888").expect("standalone");
        assert!(c.ensemble.is_none() && c.myid().is_none());
        assert_eq!(c.servers.len(), 1);
        assert!(has_warning(&warnings, "a single server.N line (server.1) is not an ensemble"), "{warnings:?}");
        assert!(Config::embedded_default().ensemble.is_none());
    }

    #[test]
    fn observers_without_an_ensemble_are_errors() {
        for body in ["server.1=h:1:2\nserver.2=h:3:4:observer", "server.1=h:1:2:observer"] {
            let e = with_myid(Some("1"), body).expect_err(body);
            assert!(e.to_string().contains("Observers w/o quorum"), "{e}");
        }
    }

    #[test]
    fn zero_limits_are_refused_in_an_ensemble_only() {
        for key in ["initLimit", "syncLimit"] {
            let e = ensemble_err("1", &format!("{key}=0\n{THREE}"));
            assert!(e.contains(&format!("{key} must be at least 1 tick")), "{e}");
            let _ = cfg(&format!("{key}=0"));
        }
        let c = ensemble_ok("1", &format!("initLimit=4\nsyncLimit=2\n{THREE}")).0;
        assert_eq!((c.init_limit, c.sync_limit), (4, 2));
    }

    #[test]
    fn load_reads_myid_from_the_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zoo.cfg");
        std::fs::write(&path, format!("dataDir={}\n{THREE}\n", dir.path().display())).expect("write");
        let e = Config::load(&path).expect_err("no myid yet");
        assert!(e.to_string().contains("myid is missing"), "{e}");
        std::fs::write(dir.path().join("myid"), "3\n").expect("myid");
        assert_eq!(Config::load(&path).expect("loads").0.myid(), Some(3));
    }

    #[test]
    fn shipped_ensemble_configs_parse_cleanly() {
        let three = [
            include_str!("../../conf/ensemble-3/zoo1.cfg"),
            include_str!("../../conf/ensemble-3/zoo2.cfg"),
            include_str!("../../conf/ensemble-3/zoo3.cfg"),
        ];
        let five = [
            include_str!("../../conf/ensemble-5/zoo1.cfg"),
            include_str!("../../conf/ensemble-5/zoo2.cfg"),
            include_str!("../../conf/ensemble-5/zoo3.cfg"),
            include_str!("../../conf/ensemble-5/zoo4.cfg"),
            include_str!("../../conf/ensemble-5/zoo5.cfg"),
        ];
        for (size, files) in [(3, &three[..]), (5, &five[..])] {
            for (i, text) in files.iter().enumerate() {
                let n = i as u64 + 1;
                let expected_dir = PathBuf::from(format!("/tmp/warren-ensemble-{size}/{n}"));
                let reader = move |path: &Path| {
                    assert_eq!(path, expected_dir.join("myid"));
                    Ok(Some(format!("{n}\n")))
                };
                let (c, warnings) = Config::parse_with(text, &reader).expect("parses");
                assert!(warnings.is_empty(), "ensemble-{size}/zoo{n}.cfg: {warnings:?}");
                let e = c.ensemble.as_ref().expect("ensemble");
                assert_eq!((e.myid, e.voters().len()), (n, size));
                assert_eq!(c.client_port, 2180 + n as u16);
                assert_eq!(e.my_quorum_addr().1, 2887 + n as u16);
                assert_eq!(e.my_election_addr().1, 3887 + n as u16);
            }
        }
    }

    // ----- conf output ----------------------------------------------------------------

    #[test]
    fn conf_text_matches_zookeeper_layout() {
        let c = cfg("dataLogDir=/fast/log\nmaxClientCnxns=10");
        let expected = "clientPort=2181
secureClientPort=-1
dataDir=/var/lib/warren/version-2
dataDirSize=1234
dataLogDir=/fast/log/version-2
dataLogSize=5678
tickTime=2000
maxClientCnxns=10
minSessionTimeout=4000
maxSessionTimeout=40000
clientPortListenBacklog=-1
serverId=0
";
        assert_eq!(c.to_conf_text(1234, 5678), expected);
    }

    #[test]
    fn conf_text_paths_are_absolute_like_java() {
        // ZooKeeper 3.8 with dataDir=./data run from /tmp/zkref printed
        // dataDir=/tmp/zkref/./data/version-2 (checked against a real server).
        let text = Config::embedded_default().to_conf_text(0, 0);
        let cwd = std::env::current_dir().expect("cwd");
        let dir = format!("{}/./warren-data/version-2", cwd.display());
        assert!(text.contains(&format!("\ndataDir={dir}\n")), "{text}");
        assert!(text.contains(&format!("\ndataLogDir={dir}\n")), "{text}");
    }

    #[test]
    fn java_path_normalisation() {
        assert_eq!(version_dir(Path::new("/var//lib/zk/")), "/var/lib/zk/version-2");
        assert_eq!(version_dir(Path::new("/")), "/version-2");
        assert_eq!(version_dir(Path::new("/a/../b")), "/a/../b/version-2");
        assert_eq!(collapse_slashes("//"), "/");
        assert_eq!(join_path("/a", ""), "/a");
    }

    #[test]
    fn load_reads_a_file_and_reports_missing_ones() {
        let dir = std::env::temp_dir().join(format!("warren-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("zoo.cfg");
        std::fs::write(&path, "dataDir=/srv/zk\nclientPort=3000\n").expect("write");
        let (c, _) = Config::load(&path).expect("loads");
        assert_eq!((c.client_port, c.data_dir.clone()), (3000, PathBuf::from("/srv/zk")));
        let missing = dir.join("absent.cfg");
        let e = Config::load(&missing).expect_err("missing file");
        assert!(matches!(e, ConfigError::Io { .. }));
        assert!(e.to_string().contains("absent.cfg"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn shipped_sample_config_parses_cleanly() {
        let sample = include_str!("../../conf/zoo.cfg");
        let (c, warnings) = Config::parse(sample).expect("conf/zoo.cfg parses");
        assert_eq!(c.client_port, 2181);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    // ----- robustness ------------------------------------------------------------------------

    #[test]
    fn odd_text_never_panics() {
        let odd = [
            "\\",
            "\\\\\\",
            "=",
            ":",
            "\u{0}\u{1}=\u{7f}",
            "\\u",
            "\\u12",
            "\\uD800",
            "\\uDFFF\\uD800",
            "key\\",
            "server.=",
            "server.18446744073709551616=a:1:2",
            "server.1=[",
            "server.1=[]:1:2",
            "server.1=;",
            "server.1=h:1:2;[",
            "dataDir=\u{202e}\u{fffd}",
            "tickTime=99999999999999999999999",
            "\r\r\n\n\r",
            "   \\\n",
            "a=b\\\n",
            "#\\\nstill=comment?",
            "ünïcödé=値",
            "4lw.commands.whitelist=,,*,,",
            "clientPortAddress=[",
            "superDigest=:",
        ];
        for text in odd {
            let _ = Config::parse(text);
            let _ = Config::parse(&format!("dataDir=/d\n{text}"));
        }
    }

    #[test]
    fn pseudo_random_text_never_panics() {
        const ALPHABET: &[char] = &[
            'a',
            'Z',
            '0',
            '9',
            '=',
            ':',
            ' ',
            '\t',
            '\\',
            'u',
            'D',
            '8',
            '\n',
            '\r',
            '#',
            '!',
            '.',
            ';',
            '[',
            ']',
            '|',
            '*',
            ',',
            '-',
            'é',
            '\u{0}',
            '\u{10FFFF}',
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            // xorshift64: deterministic, no dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let prefixes = ["", "dataDir=/d\n", "dataDir=/d\nserver.1=", "dataDir=/d\ntickTime="];
        for round in 0..4000 {
            let len = (next() % 40) as usize;
            let body: String = (0..len).map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize]).collect();
            let text = format!("{}{body}", prefixes[round % prefixes.len()]);
            if let Ok((c, _)) = Config::parse(&text) {
                let _ = c.to_conf_text(0, 0);
            }
        }
    }
}
