//! Four-letter-word ("4lw") admin commands: parsing the word and rendering
//! the exact text Apache ZooKeeper 3.8 sends back.
//!
//! Everything here is pure: the caller gathers the numbers (server stats,
//! connection stats, watches, sessions, ...) and these functions only
//! format them. Nothing panics, whatever the input.
//!
//! # Protocol (what the caller does)
//!
//! A 4lw is the first 4 bytes of a fresh client connection, sent instead of
//! the length prefix of a ConnectRequest ([`parse_word`]). ZooKeeper then
//! writes the reply and closes the connection; there is no length prefix or
//! framing. Order of checks, as in `NIOServerCnxn.checkFourLetterWord`:
//!
//! 1. unknown 4 bytes: not a 4lw, treat as a normal length prefix;
//! 2. the word counts as one received packet (`packetReceived`);
//! 3. word not enabled (`config::FourLetterWhitelist`): reply [`not_whitelisted`];
//! 4. `stmk` reads 8 more bytes (big-endian i64 trace mask) and replies
//!    [`stmk`];
//! 5. otherwise, if the server is not serving ([`not_serving_response`]
//!    returns `Some`), reply with that; else reply with the word's renderer.
//!
//! Line ends are `\n` (Java `PrintWriter.println` on Unix).
//!
//! # Version string
//!
//! Warren reports itself as ZooKeeper [`ZK_COMPAT_VERSION`] so that tools
//! which parse the version keep working. [`full_version`] builds the string
//! in ZooKeeper's `Version.getFullVersion()` shape,
//! `<major.minor.micro>-<revision>, built on <date>`, with Warren's own
//! version in the revision slot:
//!
//! ```text
//! 3.8.0-warren-0.1.0, built on 2024-05-01 12:00 UTC
//! ```
//!
//! Tools that take the text before the first `-` (kazoo's
//! `server_version()`), match `\d+\.\d+\.\d+`, or split on `", built on "`
//! all read `3.8.0`. The build date should use ZooKeeper 3.8's
//! `yyyy-MM-dd HH:mm UTC` format.
//!
//! # Known, deliberate approximations
//!
//! * `mntr` prints the ZooKeeper 3.8 gauges (those every server has) in
//!   the order a real 3.7/3.8 server prints them (that order comes from a
//!   Java `ConcurrentHashMap` and is otherwise meaningless), then the
//!   leader-only gauges, then [`ServerStats::extra_metrics`] as given.
//!   ZooKeeper additionally prints a few hundred counters and summaries
//!   (`zk_fsynctime_*`, ...); callers add whichever they track through
//!   `extra_metrics`. Parsers read `mntr` as `key\tvalue` lines, so order
//!   does not matter to them.
//! * Session/watch/ephemeral listings are printed in the order given;
//!   ZooKeeper prints most of them in Java hash order. Expiry buckets are
//!   sorted by time and global sessions by id, as ZooKeeper does.
//! * Socket addresses are printed like Java 14+ `InetSocketAddress.toString()`
//!   for accepted sockets: `/127.0.0.1:5000`, `/[0:0:0:0:0:0:0:1]:5000`.
//!   (Java 11 prints IPv6 without the brackets.)
//! * Dates (`dump`) are printed like Java's `Date.toString()` in UTC:
//!   `Thu Jan 01 00:00:00 UTC 1970`.

use std::net::{IpAddr, SocketAddr};

/// The ZooKeeper version Warren claims to be compatible with.
pub const ZK_COMPAT_VERSION: &str = "3.8.0";

/// `AbstractFourLetterCommand.ZK_NOT_SERVING` (without the line end).
pub const ZK_NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// ZooKeeper's default text trace mask (`ZooTrace`: client request |
/// server packet | session | warning = 306), what `gtmk` prints by default.
pub const DEFAULT_TRACE_MASK: i64 = 306;

/// `"3.8.0-warren-<warren_version>, built on <build_date>"`; see the
/// module docs.
pub fn full_version(warren_version: &str, build_date: &str) -> String {
    format!("{ZK_COMPAT_VERSION}-warren-{warren_version}, built on {build_date}")
}

// ---------------------------------------------------------------------------
// Words and whitelist
// ---------------------------------------------------------------------------

/// Every command ZooKeeper 3.8 recognises (`FourLetterCommands.cmd2String`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FourLetterWord {
    Conf,
    Cons,
    Crst,
    Dirs,
    Dump,
    Envi,
    Gtmk,
    Hash,
    Isro,
    Mntr,
    Ruok,
    Srst,
    Srvr,
    Stat,
    Stmk,
    Wchc,
    Wchp,
    Wchs,
    /// The bytes telnet sends when it closes (`0xfff4fffd`). Known to
    /// ZooKeeper, never whitelisted unless the whitelist is `*`, and has no
    /// command behind it (ZooKeeper then closes without a reply).
    TelnetClose,
}

impl FourLetterWord {
    /// All words, in ZooKeeper's registration order.
    pub const ALL: [FourLetterWord; 19] = [
        FourLetterWord::Conf,
        FourLetterWord::Cons,
        FourLetterWord::Crst,
        FourLetterWord::Dirs,
        FourLetterWord::Dump,
        FourLetterWord::Envi,
        FourLetterWord::Gtmk,
        FourLetterWord::Ruok,
        FourLetterWord::Stmk,
        FourLetterWord::Srst,
        FourLetterWord::Srvr,
        FourLetterWord::Stat,
        FourLetterWord::Wchc,
        FourLetterWord::Wchp,
        FourLetterWord::Wchs,
        FourLetterWord::Mntr,
        FourLetterWord::Isro,
        FourLetterWord::TelnetClose,
        FourLetterWord::Hash,
    ];

    /// The name ZooKeeper uses for the word (whitelist entries, messages).
    pub fn as_str(self) -> &'static str {
        match self {
            FourLetterWord::Conf => "conf",
            FourLetterWord::Cons => "cons",
            FourLetterWord::Crst => "crst",
            FourLetterWord::Dirs => "dirs",
            FourLetterWord::Dump => "dump",
            FourLetterWord::Envi => "envi",
            FourLetterWord::Gtmk => "gtmk",
            FourLetterWord::Hash => "hash",
            FourLetterWord::Isro => "isro",
            FourLetterWord::Mntr => "mntr",
            FourLetterWord::Ruok => "ruok",
            FourLetterWord::Srst => "srst",
            FourLetterWord::Srvr => "srvr",
            FourLetterWord::Stat => "stat",
            FourLetterWord::Stmk => "stmk",
            FourLetterWord::Wchc => "wchc",
            FourLetterWord::Wchp => "wchp",
            FourLetterWord::Wchs => "wchs",
            FourLetterWord::TelnetClose => "telnet close",
        }
    }

    /// Looks a word up by its [`as_str`](Self::as_str) name.
    pub fn from_name(name: &str) -> Option<FourLetterWord> {
        FourLetterWord::ALL.into_iter().find(|w| w.as_str() == name)
    }
}

/// The first 4 bytes of a connection as a 4lw, if they are one
/// (case-sensitive, as ZooKeeper compares the raw int).
pub fn parse_word(first4: [u8; 4]) -> Option<FourLetterWord> {
    if first4 == [0xff, 0xf4, 0xff, 0xfd] {
        return Some(FourLetterWord::TelnetClose);
    }
    let name = std::str::from_utf8(&first4).ok()?;
    match FourLetterWord::from_name(name) {
        Some(FourLetterWord::TelnetClose) | None => None,
        found => found,
    }
}

/// Reply for a word that is not whitelisted:
/// `"<word> is not executed because it is not in the whitelist.\n"`.
pub fn not_whitelisted(word: FourLetterWord) -> String {
    format!("{} is not executed because it is not in the whitelist.\n", word.as_str())
}

/// `"This ZooKeeper instance is not currently serving requests\n"`.
pub fn not_serving() -> String {
    format!("{ZK_NOT_SERVING}\n")
}

/// What a word replies while the server is not serving (no database loaded,
/// e.g. a quorum member during election). `None`: the word does not depend
/// on the server (`ruok`, `envi`, `gtmk`, `stmk`, telnet close) and is
/// rendered normally. `isro` replies `null`; `hash` replies the not-serving
/// text without a line end; the rest reply [`not_serving`].
pub fn not_serving_response(word: FourLetterWord) -> Option<String> {
    match word {
        FourLetterWord::Ruok
        | FourLetterWord::Envi
        | FourLetterWord::Gtmk
        | FourLetterWord::Stmk
        | FourLetterWord::TelnetClose => None,
        FourLetterWord::Isro => Some("null".to_string()),
        FourLetterWord::Hash => Some(ZK_NOT_SERVING.to_string()),
        _ => Some(not_serving()),
    }
}

// ---------------------------------------------------------------------------
// Stats structures
// ---------------------------------------------------------------------------

/// A metric value printed the way `MonitorCommand.print` prints it:
/// integers in decimal, floating point like Java's `Double.toString`,
/// text as is.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    Int(i64),
    Float(f64),
    Text(String),
}

impl MetricValue {
    fn render(&self) -> String {
        match self {
            MetricValue::Int(v) => v.to_string(),
            MetricValue::Float(v) => java_double_string(*v),
            MetricValue::Text(s) => s.clone(),
        }
    }
}

/// Leader-only numbers (`stat`'s proposal sizes and the leader `mntr` gauges).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderStats {
    pub learners: u64,
    pub synced_followers: u64,
    pub synced_non_voting_followers: u64,
    pub synced_observers: u64,
    pub pending_syncs: u64,
    pub leader_uptime_ms: u64,
    /// Proposal sizes in bytes; -1 until the first proposal (ZooKeeper's
    /// `BufferStats`).
    pub last_proposal_size: i64,
    pub min_proposal_size: i64,
    pub max_proposal_size: i64,
}

impl Default for LeaderStats {
    fn default() -> Self {
        LeaderStats {
            learners: 0,
            synced_followers: 0,
            synced_non_voting_followers: 0,
            synced_observers: 0,
            pending_syncs: 0,
            leader_uptime_ms: 0,
            last_proposal_size: -1,
            min_proposal_size: -1,
            max_proposal_size: -1,
        }
    }
}

/// Everything `srvr`, `stat` and `mntr` print.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerStats {
    /// Full version, see [`full_version`].
    pub version: String,
    /// Adds `READ-ONLY mode; serving only read-only clients` to srvr/stat.
    pub read_only: bool,
    /// Request latency (ms) since start or the last `srst`; 0 when no request.
    pub latency_min_ms: i64,
    /// Average latency in ms, rounded as ZooKeeper does: use [`avg_latency`].
    pub latency_avg_ms: f64,
    pub latency_max_ms: i64,
    pub packets_received: u64,
    pub packets_sent: u64,
    /// Open client connections, including the one asking (`Connections:`,
    /// `zk_num_alive_connections`).
    pub num_alive_connections: u64,
    pub outstanding_requests: u64,
    /// Last processed zxid.
    pub zxid: i64,
    /// `standalone`, `leader`, `follower`, `observer` or `read-only`.
    pub mode: String,
    pub node_count: u64,
    /// `stat`'s `Clients:` list (brief form), including the asking connection.
    pub connections: Vec<ConnectionStats>,

    // ---- mntr only ----
    /// `zk_peer_state` (quorum servers only), e.g. `following - broadcast`.
    pub peer_state: Option<String>,
    /// Data watches + child watches.
    pub watch_count: u64,
    pub ephemerals_count: u64,
    /// Sum of path lengths and data sizes of all nodes.
    pub approximate_data_size: u64,
    /// -1 when unknown (ZooKeeper prints -1 where the OS does not tell).
    pub open_file_descriptor_count: i64,
    pub max_file_descriptor_count: i64,
    pub global_sessions: u64,
    pub local_sessions: u64,
    pub uptime_ms: u64,
    pub connection_drop_probability: f64,
    /// Client response sizes in bytes; -1 until the first response.
    pub last_client_response_size: i64,
    pub min_client_response_size: i64,
    pub max_client_response_size: i64,
    pub outstanding_tls_handshake: u64,
    pub auth_failed_count: u64,
    pub non_mtls_remote_conn_count: u64,
    pub non_mtls_local_conn_count: u64,
    /// `zk_quorum_size` (quorum servers only).
    pub quorum_size: Option<u64>,
    /// Leader-only gauges; `stat` prints proposal sizes when `mode == "leader"`
    /// (-1/-1/-1 if this is `None`).
    pub leader: Option<LeaderStats>,
    /// Further `zk_<key>\t<value>` lines appended to `mntr`, in order
    /// (key without the `zk_` prefix).
    pub extra_metrics: Vec<(String, MetricValue)>,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            version: String::new(),
            read_only: false,
            latency_min_ms: 0,
            latency_avg_ms: 0.0,
            latency_max_ms: 0,
            packets_received: 0,
            packets_sent: 0,
            num_alive_connections: 0,
            outstanding_requests: 0,
            zxid: 0,
            mode: "standalone".to_string(),
            node_count: 0,
            connections: Vec::new(),
            peer_state: None,
            watch_count: 0,
            ephemerals_count: 0,
            approximate_data_size: 0,
            open_file_descriptor_count: -1,
            max_file_descriptor_count: -1,
            global_sessions: 0,
            local_sessions: 0,
            uptime_ms: 0,
            connection_drop_probability: 0.0,
            last_client_response_size: -1,
            min_client_response_size: -1,
            max_client_response_size: -1,
            outstanding_tls_handshake: 0,
            auth_failed_count: 0,
            non_mtls_remote_conn_count: 0,
            non_mtls_local_conn_count: 0,
            quorum_size: None,
            leader: None,
            extra_metrics: Vec::new(),
        }
    }
}

/// One client connection as `cons` / `stat` print it (`ServerCnxn.dumpConnectionInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionStats {
    pub remote: SocketAddr,
    /// NIO interest ops: 1 = read, 4 = write, 5 = both; 0 for a connection
    /// that is not selectable (the asking 4lw connection shows 0).
    pub interest_ops: u32,
    /// Outstanding requests (`queued=`).
    pub queued: u64,
    pub received: u64,
    pub sent: u64,
    /// 0 = no session yet: only the brief fields are printed.
    pub session_id: i64,
    /// Last operation's short name (`GETD`, `PING`, `SESS`, ...; `NA` after reset).
    pub last_op: String,
    /// Connection establishment, ms since the Unix epoch.
    pub established_ms: i64,
    pub session_timeout_ms: i32,
    /// -1 = none (then `lcxid` is omitted).
    pub last_cxid: i64,
    pub last_zxid: i64,
    /// Wall-clock ms (ZooKeeper uses its elapsed-time clock here).
    pub last_response_time_ms: i64,
    pub last_latency_ms: i64,
    pub min_latency_ms: i64,
    /// Integer average (`totalLatency / count`), 0 when no request.
    pub avg_latency_ms: i64,
    pub max_latency_ms: i64,
}

impl ConnectionStats {
    /// A connection with ZooKeeper's reset values (`ServerCnxn.resetStats`):
    /// `lop=NA`, no cxid, `lzxid=0xffffffffffffffff`, zero latencies.
    pub fn new(remote: SocketAddr) -> ConnectionStats {
        ConnectionStats {
            remote,
            interest_ops: 1,
            queued: 0,
            received: 0,
            sent: 0,
            session_id: 0,
            last_op: "NA".to_string(),
            established_ms: 0,
            session_timeout_ms: 0,
            last_cxid: -1,
            last_zxid: -1,
            last_response_time_ms: 0,
            last_latency_ms: 0,
            min_latency_ms: 0,
            avg_latency_ms: 0,
            max_latency_ms: 0,
        }
    }
}

/// ZooKeeper's request-latency average (`AvgMinMaxCounter.getAvg`):
/// `total / count` as a double, rounded half-up to 4 decimals; 0.0 when
/// `count == 0`.
pub fn avg_latency(total: u64, count: u64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    let x = total as f64 / count as f64;
    round_half_up_4(x)
}

/// `new BigDecimal(x).setScale(4, HALF_UP).doubleValue()` for finite `x >= 0`.
fn round_half_up_4(x: f64) -> f64 {
    if !x.is_finite() || x < 0.0 {
        return x;
    }
    // The exact decimal expansion of a double has at most 1074 fractional
    // digits, so this prints it exactly (no rounding happens).
    let exact = format!("{x:.1100}");
    let (int_part, frac) = exact.split_once('.').unwrap_or((exact.as_str(), ""));
    let frac = frac.as_bytes();
    let digit = |i: usize| u128::from(frac.get(i).map_or(0, |d| d.wrapping_sub(b'0')) % 10);
    let Ok(int_val) = int_part.parse::<u128>() else {
        return x;
    };
    let mut scaled =
        int_val.saturating_mul(10_000).saturating_add(digit(0) * 1000 + digit(1) * 100 + digit(2) * 10 + digit(3));
    if digit(4) >= 5 {
        scaled = scaled.saturating_add(1);
    }
    format!("{}.{:04}", scaled / 10_000, scaled % 10_000).parse::<f64>().unwrap_or(x)
}

/// Java's `Double.toString(double)`: `NaN`, `Infinity`, `-Infinity`,
/// `0.0`; plain decimal with at least one fractional digit for
/// `1e-3 <= |x| < 1e7` (`1.0`, `0.1736`, `12.5`); otherwise computerized
/// scientific notation (`5.0E-4`, `1.23456785E7`). Digits are the shortest
/// that round-trip (as Java 19+).
pub fn java_double_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let a = x.abs();
    if (1e-3..1e7).contains(&a) {
        let mut s = format!("{x}");
        if !s.contains('.') {
            s.push_str(".0");
        }
        s
    } else {
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
        let mut m = mantissa.to_string();
        if !m.contains('.') {
            m.push_str(".0");
        }
        format!("{m}E{exp}")
    }
}

// ---------------------------------------------------------------------------
// Renderers
// ---------------------------------------------------------------------------

/// `ruok`: `imok` (no line end). Answered even when not serving.
pub fn ruok() -> &'static str {
    "imok"
}

/// `srvr`.
pub fn srvr(stats: &ServerStats) -> String {
    stat_common(stats, false)
}

/// `stat`: like `srvr` with a `Clients:` section listing
/// [`ServerStats::connections`] in brief form.
pub fn stat(stats: &ServerStats) -> String {
    stat_common(stats, true)
}

fn stat_common(stats: &ServerStats, with_clients: bool) -> String {
    let mut out = String::new();
    out.push_str("Zookeeper version: ");
    out.push_str(&stats.version);
    out.push('\n');
    if stats.read_only {
        out.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    if with_clients {
        out.push_str("Clients:\n");
        for c in &stats.connections {
            out.push_str(&connection_info(c, true));
            out.push('\n');
        }
        out.push('\n');
    }
    // ServerStats.toString()
    out.push_str(&format!(
        "Latency min/avg/max: {}/{}/{}\n",
        stats.latency_min_ms,
        java_double_string(stats.latency_avg_ms),
        stats.latency_max_ms
    ));
    out.push_str(&format!("Received: {}\n", stats.packets_received));
    out.push_str(&format!("Sent: {}\n", stats.packets_sent));
    out.push_str(&format!("Connections: {}\n", stats.num_alive_connections));
    out.push_str(&format!("Outstanding: {}\n", stats.outstanding_requests));
    out.push_str(&format!("Zxid: 0x{:x}\n", stats.zxid));
    out.push_str(&format!("Mode: {}\n", stats.mode));
    out.push_str(&format!("Node count: {}\n", stats.node_count));
    if stats.mode == "leader" {
        let l = stats.leader.clone().unwrap_or_default();
        out.push_str(&format!(
            "Proposal sizes last/min/max: {}/{}/{}\n",
            l.last_proposal_size, l.min_proposal_size, l.max_proposal_size
        ));
    }
    out
}

/// `ServerCnxn.dumpConnectionInfo(pw, brief)` for one connection, without
/// a line end: ` /ip:port[ops](queued=..,recved=..,sent=..[,sid=..,...])`.
pub fn connection_info(c: &ConnectionStats, brief: bool) -> String {
    let mut s = String::new();
    s.push(' ');
    s.push_str(&java_socket_address(&c.remote));
    s.push('[');
    s.push_str(&format!("{:x}", c.interest_ops));
    s.push_str(&format!("](queued={},recved={},sent={}", c.queued, c.received, c.sent));
    if !brief && c.session_id != 0 {
        s.push_str(&format!(
            ",sid=0x{:x},lop={},est={},to={}",
            c.session_id, c.last_op, c.established_ms, c.session_timeout_ms
        ));
        if c.last_cxid >= 0 {
            s.push_str(&format!(",lcxid=0x{:x}", c.last_cxid));
        }
        s.push_str(&format!(
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            c.last_zxid,
            c.last_response_time_ms,
            c.last_latency_ms,
            c.min_latency_ms,
            c.avg_latency_ms,
            c.max_latency_ms
        ));
    }
    s.push(')');
    s
}

/// `cons`: every connection in full form, one per line, then an empty line.
pub fn cons(connections: &[ConnectionStats]) -> String {
    let mut out = String::new();
    for c in connections {
        out.push_str(&connection_info(c, false));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// `mntr`: `zk_<key>\t<value>` lines; see the module docs for the order.
pub fn mntr(stats: &ServerStats) -> String {
    let mut out = String::new();
    for (k, v) in mntr_entries(stats) {
        push_metric(&mut out, &k, &v);
    }
    out
}

/// `mntr`'s keys (without `zk_`) and values, in its order; the AdminServer's `monitor`
/// answers the same pairs as JSON.
pub fn mntr_entries(stats: &ServerStats) -> Vec<(String, MetricValue)> {
    use MetricValue::{Float, Int, Text};
    let u = |v: u64| Int(i64::try_from(v).unwrap_or(i64::MAX));
    let mut lines: Vec<(&str, MetricValue)> =
        vec![("version", Text(stats.version.clone())), ("server_state", Text(stats.mode.clone()))];
    if let Some(ps) = &stats.peer_state {
        lines.push(("peer_state", Text(ps.clone())));
    }
    lines.extend([
        ("ephemerals_count", u(stats.ephemerals_count)),
        ("num_alive_connections", u(stats.num_alive_connections)),
        ("avg_latency", Float(stats.latency_avg_ms)),
        ("outstanding_requests", u(stats.outstanding_requests)),
        ("znode_count", u(stats.node_count)),
        ("global_sessions", u(stats.global_sessions)),
        ("non_mtls_remote_conn_count", u(stats.non_mtls_remote_conn_count)),
        ("last_client_response_size", Int(stats.last_client_response_size)),
        ("packets_sent", u(stats.packets_sent)),
        ("packets_received", u(stats.packets_received)),
        ("max_client_response_size", Int(stats.max_client_response_size)),
        ("connection_drop_probability", Float(stats.connection_drop_probability)),
        ("watch_count", u(stats.watch_count)),
        ("auth_failed_count", u(stats.auth_failed_count)),
        ("min_latency", Int(stats.latency_min_ms)),
        ("max_file_descriptor_count", Int(stats.max_file_descriptor_count)),
        ("approximate_data_size", u(stats.approximate_data_size)),
        ("open_file_descriptor_count", Int(stats.open_file_descriptor_count)),
        ("local_sessions", u(stats.local_sessions)),
        ("uptime", u(stats.uptime_ms)),
        ("max_latency", Int(stats.latency_max_ms)),
        ("outstanding_tls_handshake", u(stats.outstanding_tls_handshake)),
        ("min_client_response_size", Int(stats.min_client_response_size)),
        ("non_mtls_local_conn_count", u(stats.non_mtls_local_conn_count)),
    ]);
    if let Some(q) = stats.quorum_size {
        lines.push(("quorum_size", u(q)));
    }
    if let Some(l) = &stats.leader {
        lines.extend([
            ("learners", u(l.learners)),
            ("synced_followers", u(l.synced_followers)),
            ("synced_non_voting_followers", u(l.synced_non_voting_followers)),
            ("synced_observers", u(l.synced_observers)),
            ("pending_syncs", u(l.pending_syncs)),
            ("leader_uptime", u(l.leader_uptime_ms)),
            ("last_proposal_size", Int(l.last_proposal_size)),
            ("max_proposal_size", Int(l.max_proposal_size)),
            ("min_proposal_size", Int(l.min_proposal_size)),
        ]);
    }
    let mut all: Vec<(String, MetricValue)> = lines.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    all.extend(stats.extra_metrics.iter().cloned());
    all
}

fn push_metric(out: &mut String, key: &str, value: &MetricValue) {
    out.push_str("zk_");
    out.push_str(key);
    out.push('\t');
    out.push_str(&value.render());
    out.push('\n');
}

/// Values for `envi` (ZooKeeper's `Environment.list()`, same keys and order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvInfo {
    /// `zookeeper.version`: the full version ([`full_version`]).
    pub zookeeper_version: String,
    pub host_name: String,
    pub java_version: String,
    pub java_vendor: String,
    pub java_home: String,
    pub java_class_path: String,
    pub java_library_path: String,
    pub java_io_tmpdir: String,
    pub java_compiler: String,
    pub os_name: String,
    pub os_arch: String,
    pub os_version: String,
    pub user_name: String,
    pub user_home: String,
    pub user_dir: String,
    /// Printed as `<n>MB`.
    pub os_memory_free_mb: u64,
    pub os_memory_max_mb: u64,
    pub os_memory_total_mb: u64,
}

impl EnvInfo {
    /// Warren's defaults: the `java.*` keys are `<NA>` (what ZooKeeper
    /// prints for a missing property; there is no JVM), `os.name` /
    /// `os.arch` are this build's target in Java's spelling, everything
    /// else `<NA>` / 0 for the caller to fill in (host name, user, cwd,
    /// kernel version, memory).
    pub fn new(zookeeper_version: impl Into<String>) -> EnvInfo {
        let na = || "<NA>".to_string();
        EnvInfo {
            zookeeper_version: zookeeper_version.into(),
            host_name: na(),
            java_version: na(),
            java_vendor: na(),
            java_home: na(),
            java_class_path: na(),
            java_library_path: na(),
            java_io_tmpdir: na(),
            java_compiler: na(),
            os_name: java_os_name(std::env::consts::OS).to_string(),
            os_arch: java_os_arch(std::env::consts::ARCH).to_string(),
            os_version: na(),
            user_name: na(),
            user_home: na(),
            user_dir: na(),
            os_memory_free_mb: 0,
            os_memory_max_mb: 0,
            os_memory_total_mb: 0,
        }
    }
}

/// Java's `os.name` for a Rust `std::env::consts::OS` value.
pub fn java_os_name(rust_os: &str) -> &str {
    match rust_os {
        "linux" => "Linux",
        "macos" => "Mac OS X",
        "windows" => "Windows",
        "freebsd" => "FreeBSD",
        "netbsd" => "NetBSD",
        "openbsd" => "OpenBSD",
        "solaris" => "SunOS",
        "android" => "Linux",
        other => other,
    }
}

/// Java's `os.arch` for a Rust `std::env::consts::ARCH` value.
pub fn java_os_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "x86",
        "powerpc64" => "ppc64",
        other => other,
    }
}

/// `envi`: `Environment:` then `key=value` lines.
pub fn envi(env: &EnvInfo) -> String {
    let mut out = String::from("Environment:\n");
    for (k, v) in env.entries() {
        out.push_str(k);
        out.push('=');
        out.push_str(&v);
        out.push('\n');
    }
    out
}

impl EnvInfo {
    /// ZooKeeper's `Environment.list()`: keys and values in its order.
    pub fn entries(&self) -> [(&'static str, String); 18] {
        let env = self;
        [
            ("zookeeper.version", env.zookeeper_version.clone()),
            ("host.name", env.host_name.clone()),
            ("java.version", env.java_version.clone()),
            ("java.vendor", env.java_vendor.clone()),
            ("java.home", env.java_home.clone()),
            ("java.class.path", env.java_class_path.clone()),
            ("java.library.path", env.java_library_path.clone()),
            ("java.io.tmpdir", env.java_io_tmpdir.clone()),
            ("java.compiler", env.java_compiler.clone()),
            ("os.name", env.os_name.clone()),
            ("os.arch", env.os_arch.clone()),
            ("os.version", env.os_version.clone()),
            ("user.name", env.user_name.clone()),
            ("user.home", env.user_home.clone()),
            ("user.dir", env.user_dir.clone()),
            ("os.memory.free", format!("{}MB", env.os_memory_free_mb)),
            ("os.memory.max", format!("{}MB", env.os_memory_max_mb)),
            ("os.memory.total", format!("{}MB", env.os_memory_total_mb)),
        ]
    }
}

/// Counts for `wchs`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchSummary {
    /// Connections (sessions) with watches.
    pub connections: usize,
    /// Distinct watched paths.
    pub paths: usize,
    pub total_watches: usize,
}

impl WatchSummary {
    /// From a session → paths listing (as given to [`wchc`]).
    pub fn from_by_session(by_session: &[(i64, Vec<String>)]) -> WatchSummary {
        let mut paths: Vec<&str> = by_session.iter().flat_map(|(_, ps)| ps.iter().map(String::as_str)).collect();
        let total_watches = paths.len();
        paths.sort_unstable();
        paths.dedup();
        WatchSummary { connections: by_session.len(), paths: paths.len(), total_watches }
    }
}

/// `wchs`: `<n> connections watching <m> paths\nTotal watches:<t>\n`.
///
/// ZooKeeper 3.8 counts *data* watches only here (and in `wchc`/`wchp`):
/// child watches are not listed, though `zk_watch_count` includes them.
pub fn wchs(summary: &WatchSummary) -> String {
    format!(
        "{} connections watching {} paths\nTotal watches:{}\n",
        summary.connections, summary.paths, summary.total_watches
    )
}

/// `wchc`: per session `0x<sid>` then `\t<path>` lines, then an empty line.
pub fn wchc(by_session: &[(i64, Vec<String>)]) -> String {
    let mut out = String::new();
    for (sid, paths) in by_session {
        out.push_str(&format!("0x{sid:x}\n"));
        for p in paths {
            out.push('\t');
            out.push_str(p);
            out.push('\n');
        }
    }
    out.push('\n');
    out
}

/// `wchp`: per path the path then `\t0x<sid>` lines, then an empty line.
pub fn wchp(by_path: &[(String, Vec<i64>)]) -> String {
    let mut out = String::new();
    for (path, sids) in by_path {
        out.push_str(path);
        out.push('\n');
        for sid in sids {
            out.push_str(&format!("\t0x{sid:x}\n"));
        }
    }
    out.push('\n');
    out
}

/// One bucket of an expiry queue: the ids expiring at one tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryBucket {
    /// Expiry time, ms since the Unix epoch.
    pub expire_at_ms: i64,
    pub session_ids: Vec<i64>,
}

/// The session part of `dump`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionDump {
    /// `SessionTrackerImpl`: `Session Sets (<buckets>)/(<sessions>):` and
    /// the buckets by time.
    Standalone(Vec<ExpiryBucket>),
    /// Leader/learner trackers: optional local-session buckets, then
    /// `Global Sessions(<n>):` with `0x<sid>\t<timeout>ms` lines by id.
    Quorum { local: Option<Vec<ExpiryBucket>>, global: Vec<(i64, i32)> },
}

/// One bucket of the connection expiry queue (NIO factory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionBucket {
    pub expire_at_ms: i64,
    /// (remote address, session id; 0 if none).
    pub connections: Vec<(SocketAddr, i64)>,
}

/// Input for `dump`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpInfo {
    pub sessions: SessionDump,
    /// Session → ephemeral node paths.
    pub ephemerals: Vec<(i64, Vec<String>)>,
    /// `Some`: NIO-style connection expiry listing; `None`: only the
    /// `Connections dump:` header (ZooKeeper's Netty factory).
    pub connections: Option<Vec<ConnectionBucket>>,
}

/// `dump`: sessions with their expiry, ephemeral nodes per session and
/// connection expiry (`DumpCommand`).
pub fn dump(info: &DumpInfo) -> String {
    let mut out = String::from("SessionTracker dump:\n");
    match &info.sessions {
        SessionDump::Standalone(buckets) => {
            out.push_str("Session ");
            push_expiry_queue(&mut out, buckets);
        }
        SessionDump::Quorum { local, global } => {
            if let Some(buckets) = local {
                out.push_str("Local Session ");
                push_expiry_queue(&mut out, buckets);
            }
            out.push_str(&format!("Global Sessions({}):\n", global.len()));
            let mut sorted: Vec<&(i64, i32)> = global.iter().collect();
            sorted.sort_by_key(|(sid, _)| *sid);
            for (sid, timeout) in sorted {
                out.push_str(&format!("0x{sid:x}\t{timeout}ms\n"));
            }
        }
    }
    out.push_str("ephemeral nodes dump:\n");
    out.push_str(&format!("Sessions with Ephemerals ({}):\n", info.ephemerals.len()));
    for (sid, paths) in &info.ephemerals {
        out.push_str(&format!("0x{sid:x}:\n"));
        for p in paths {
            out.push('\t');
            out.push_str(p);
            out.push('\n');
        }
    }
    out.push_str("Connections dump:\n");
    if let Some(buckets) = &info.connections {
        let mut sorted: Vec<&ConnectionBucket> = buckets.iter().collect();
        sorted.sort_by_key(|b| b.expire_at_ms);
        let total: usize = sorted.iter().map(|b| b.connections.len()).sum();
        out.push_str(&format!("Connections Sets ({})/({}):\n", sorted.len(), total));
        for b in sorted {
            out.push_str(&format!("{} expire at {}:\n", b.connections.len(), java_date_string_utc(b.expire_at_ms)));
            for (addr, sid) in &b.connections {
                out.push_str(&format!("\tip: {} sessionId: 0x{sid:x}\n", java_socket_address(addr)));
            }
        }
    }
    out
}

/// `ExpiryQueue.dump` after its caller's prefix word.
fn push_expiry_queue(out: &mut String, buckets: &[ExpiryBucket]) {
    let mut sorted: Vec<&ExpiryBucket> = buckets.iter().collect();
    sorted.sort_by_key(|b| b.expire_at_ms);
    let total: usize = sorted.iter().map(|b| b.session_ids.len()).sum();
    out.push_str(&format!("Sets ({})/({}):\n", sorted.len(), total));
    for b in sorted {
        out.push_str(&format!("{} expire at {}:\n", b.session_ids.len(), java_date_string_utc(b.expire_at_ms)));
        for sid in &b.session_ids {
            out.push_str(&format!("\t0x{sid:x}\n"));
        }
    }
}

/// `dirs`: `datadir_size: <bytes>\nlogdir_size: <bytes>\n`.
pub fn dirs(datadir_size: u64, logdir_size: u64) -> String {
    format!("datadir_size: {datadir_size}\nlogdir_size: {logdir_size}\n")
}

/// `isro` while serving: `ro` or `rw` (no line end). See
/// [`not_serving_response`] for the not-serving reply (`null`).
pub fn isro(read_only: bool) -> &'static str {
    if read_only {
        "ro"
    } else {
        "rw"
    }
}

/// `crst` (after resetting every connection's stats).
pub fn crst() -> &'static str {
    "Connection stats reset.\n"
}

/// `srst` (after resetting latency, packet and request counters).
pub fn srst() -> &'static str {
    "Server stats reset.\n"
}

/// `gtmk`: the current trace mask in decimal, no line end.
pub fn gtmk(trace_mask: i64) -> String {
    trace_mask.to_string()
}

/// `stmk`: echoes the new trace mask (read as 8 big-endian bytes after
/// the word) in decimal, no line end.
pub fn stmk(new_trace_mask: i64) -> String {
    new_trace_mask.to_string()
}

/// `hash`: the recent data-tree digests, `<zxid hex>: <digest>` per line
/// (no `0x`), oldest first as given.
pub fn hash(digests: &[(i64, i64)]) -> String {
    let mut out = String::new();
    for (zxid, digest) in digests {
        out.push_str(&format!("{zxid:x}: {digest}\n"));
    }
    out
}

// ---------------------------------------------------------------------------
// Java-compatible formatting helpers
// ---------------------------------------------------------------------------

/// Java's `InetSocketAddress.toString()` for an accepted socket (no host
/// name): `/1.2.3.4:5678` or `/[0:0:0:0:0:0:0:1]:5678`. IPv4-mapped IPv6
/// addresses print as IPv4, as Java converts them.
pub fn java_socket_address(addr: &SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => format!("/{}:{}", v4, addr.port()),
        IpAddr::V6(v6) => {
            let groups: Vec<String> = v6.segments().iter().map(|s| format!("{s:x}")).collect();
            format!("/[{}]:{}", groups.join(":"), addr.port())
        }
    }
}

/// Java's `Date.toString()` in UTC: `EEE MMM dd HH:mm:ss UTC yyyy`.
pub fn java_date_string_utc(epoch_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let dow = (days + 4).rem_euclid(7) as usize;
    let month_name = MONTHS.get((month as usize).wrapping_sub(1)).copied().unwrap_or("???");
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS.get(dow).copied().unwrap_or("???"),
        month_name,
        day,
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60,
        year
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic
/// Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn lines(s: &str) -> Vec<&str> {
        s.split('\n').collect()
    }

    fn sample() -> ServerStats {
        let mut me = ConnectionStats::new(sa("127.0.0.1:56478"));
        me.interest_ops = 0;
        me.received = 1;
        let mut other = ConnectionStats::new(sa("10.0.0.5:40744"));
        other.received = 586;
        other.sent = 587;
        other.session_id = 0x1000_0000_0abc;
        ServerStats {
            version: full_version("0.1.0", "2024-05-01 12:00 UTC"),
            latency_min_ms: 0,
            latency_avg_ms: avg_latency(5, 18),
            latency_max_ms: 20,
            packets_received: 1704,
            packets_sent: 1645,
            num_alive_connections: 2,
            outstanding_requests: 0,
            zxid: 0x1_0000_00b9,
            mode: "standalone".into(),
            node_count: 141,
            connections: vec![other, me],
            watch_count: 3,
            ephemerals_count: 1,
            approximate_data_size: 269,
            open_file_descriptor_count: 75,
            max_file_descriptor_count: 4096,
            global_sessions: 1,
            uptime_ms: 1_473_697,
            last_client_response_size: 16,
            min_client_response_size: 16,
            max_client_response_size: 131,
            ..ServerStats::default()
        }
    }

    #[test]
    fn version_string() {
        let v = full_version("0.1.0", "2024-05-01 12:00 UTC");
        assert_eq!(v, "3.8.0-warren-0.1.0, built on 2024-05-01 12:00 UTC");
        // kazoo-style parse: text before the first '-' is x.y.z
        assert_eq!(v.split('-').next(), Some("3.8.0"));
    }

    #[test]
    fn words() {
        assert_eq!(parse_word(*b"ruok"), Some(FourLetterWord::Ruok));
        assert_eq!(parse_word(*b"mntr"), Some(FourLetterWord::Mntr));
        assert_eq!(parse_word(*b"hash"), Some(FourLetterWord::Hash));
        assert_eq!(parse_word([0xff, 0xf4, 0xff, 0xfd]), Some(FourLetterWord::TelnetClose));
        assert_eq!(parse_word(*b"RUOK"), None);
        assert_eq!(parse_word(*b"xyzw"), None);
        assert_eq!(parse_word([0, 0, 0, 45]), None);
        assert_eq!(parse_word([0xff; 4]), None);
        for w in FourLetterWord::ALL {
            if w != FourLetterWord::TelnetClose {
                let b = w.as_str().as_bytes();
                assert_eq!(parse_word([b[0], b[1], b[2], b[3]]), Some(w));
            }
        }
        // "telnet close" text is not a word on the wire.
        assert_eq!(parse_word(*b"teln"), None);
    }

    #[test]
    fn not_whitelisted_texts() {
        assert_eq!(not_whitelisted(FourLetterWord::Ruok), "ruok is not executed because it is not in the whitelist.\n");
        assert_eq!(
            not_whitelisted(FourLetterWord::TelnetClose),
            "telnet close is not executed because it is not in the whitelist.\n"
        );
    }

    #[test]
    fn not_serving_texts() {
        let ns = "This ZooKeeper instance is not currently serving requests\n";
        assert_eq!(not_serving(), ns);
        assert_eq!(not_serving_response(FourLetterWord::Srvr).as_deref(), Some(ns));
        assert_eq!(not_serving_response(FourLetterWord::Mntr).as_deref(), Some(ns));
        assert_eq!(not_serving_response(FourLetterWord::Isro).as_deref(), Some("null"));
        assert_eq!(
            not_serving_response(FourLetterWord::Hash).as_deref(),
            Some("This ZooKeeper instance is not currently serving requests")
        );
        assert_eq!(not_serving_response(FourLetterWord::Ruok), None);
        assert_eq!(not_serving_response(FourLetterWord::Envi), None);
    }

    #[test]
    fn simple_words() {
        assert_eq!(ruok(), "imok");
        assert_eq!(crst(), "Connection stats reset.\n");
        assert_eq!(srst(), "Server stats reset.\n");
        assert_eq!(isro(false), "rw");
        assert_eq!(isro(true), "ro");
        assert_eq!(dirs(1024, 0), "datadir_size: 1024\nlogdir_size: 0\n");
        assert_eq!(gtmk(DEFAULT_TRACE_MASK), "306");
        assert_eq!(stmk(-1), "-1");
        assert_eq!(hash(&[(0x100000002, 1234567), (0x100000003, -5)]), "100000002: 1234567\n100000003: -5\n");
        assert_eq!(hash(&[]), "");
    }

    #[test]
    fn avg_latency_rounding() {
        assert_eq!(avg_latency(0, 0), 0.0);
        assert_eq!(avg_latency(5, 18), 0.2778);
        assert_eq!(avg_latency(1, 18), 0.0556);
        assert_eq!(avg_latency(2, 18), 0.1111);
        assert_eq!(avg_latency(15, 2), 7.5);
        assert_eq!(avg_latency(1, 3), 0.3333);
        assert_eq!(avg_latency(2, 3), 0.6667);
        // 33/32 = 1.03125 exactly: HALF_UP gives 1.0313 (half-even would give 1.0312).
        assert_eq!(avg_latency(33, 32), 1.0313);
        assert_eq!(avg_latency(1, 20000), 0.0001);
        assert_eq!(avg_latency(1, 20001), 0.0);
        assert_eq!(avg_latency(u64::MAX, 1), u64::MAX as f64);
    }

    #[test]
    fn java_doubles() {
        assert_eq!(java_double_string(0.0), "0.0");
        assert_eq!(java_double_string(-0.0), "-0.0");
        assert_eq!(java_double_string(1.0), "1.0");
        assert_eq!(java_double_string(7.5), "7.5");
        assert_eq!(java_double_string(0.1736), "0.1736");
        assert_eq!(java_double_string(0.001), "0.001");
        assert_eq!(java_double_string(0.0005), "5.0E-4");
        assert_eq!(java_double_string(0.00012), "1.2E-4");
        assert_eq!(java_double_string(9_999_999.0), "9999999.0");
        assert_eq!(java_double_string(10_000_000.0), "1.0E7");
        assert_eq!(java_double_string(12_345_678.5), "1.23456785E7");
        assert_eq!(java_double_string(-2.5), "-2.5");
        assert_eq!(java_double_string(f64::NAN), "NaN");
        assert_eq!(java_double_string(f64::INFINITY), "Infinity");
        assert_eq!(java_double_string(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(java_double_string(1e300), "1.0E300");
    }

    #[test]
    fn srvr_output() {
        let s = srvr(&sample());
        assert_eq!(
            lines(&s),
            vec![
                "Zookeeper version: 3.8.0-warren-0.1.0, built on 2024-05-01 12:00 UTC",
                "Latency min/avg/max: 0/0.2778/20",
                "Received: 1704",
                "Sent: 1645",
                "Connections: 2",
                "Outstanding: 0",
                "Zxid: 0x1000000b9",
                "Mode: standalone",
                "Node count: 141",
                "",
            ]
        );
    }

    #[test]
    fn srvr_fresh_server_and_leader_and_ro() {
        let mut st = ServerStats { version: "V".into(), ..ServerStats::default() };
        assert_eq!(
            srvr(&st),
            "Zookeeper version: V\nLatency min/avg/max: 0/0.0/0\nReceived: 0\nSent: 0\n\
             Connections: 0\nOutstanding: 0\nZxid: 0x0\nMode: standalone\nNode count: 0\n"
        );
        st.mode = "leader".into();
        assert!(srvr(&st).ends_with("Node count: 0\nProposal sizes last/min/max: -1/-1/-1\n"));
        st.leader = Some(LeaderStats {
            last_proposal_size: 48,
            min_proposal_size: 36,
            max_proposal_size: 1013,
            ..LeaderStats::default()
        });
        assert!(srvr(&st).ends_with("Proposal sizes last/min/max: 48/36/1013\n"));
        st.mode = "follower".into();
        st.read_only = true;
        st.zxid = -1;
        let s = srvr(&st);
        assert_eq!(lines(&s)[1], "READ-ONLY mode; serving only read-only clients");
        assert!(s.contains("\nZxid: 0xffffffffffffffff\n"));
        assert!(!s.contains("Proposal"));
    }

    #[test]
    fn stat_output() {
        let s = stat(&sample());
        assert_eq!(
            lines(&s),
            vec![
                "Zookeeper version: 3.8.0-warren-0.1.0, built on 2024-05-01 12:00 UTC",
                "Clients:",
                " /10.0.0.5:40744[1](queued=0,recved=586,sent=587)",
                " /127.0.0.1:56478[0](queued=0,recved=1,sent=0)",
                "",
                "Latency min/avg/max: 0/0.2778/20",
                "Received: 1704",
                "Sent: 1645",
                "Connections: 2",
                "Outstanding: 0",
                "Zxid: 0x1000000b9",
                "Mode: standalone",
                "Node count: 141",
                "",
            ]
        );
        let empty = ServerStats::default();
        assert!(stat(&empty).contains("\nClients:\n\nLatency min/avg/max: 0/0.0/0\n"));
    }

    #[test]
    fn cons_output() {
        let mut c = ConnectionStats::new(sa("127.0.0.1:52454"));
        c.received = 3;
        c.sent = 3;
        c.session_id = 0x0100_008f_5e3c_0000;
        c.last_op = "PING".into();
        c.established_ms = 1_585_000_000_000;
        c.session_timeout_ms = 30000;
        c.last_cxid = 0;
        c.last_zxid = 0x12;
        c.last_response_time_ms = 1_585_000_001_000;
        c.last_latency_ms = 0;
        c.max_latency_ms = 2;
        let mut fresh = ConnectionStats::new(sa("[::1]:40000"));
        fresh.session_id = 0x42;
        let me =
            ConnectionStats { interest_ops: 0, received: 1, ..ConnectionStats::new(sa("[::ffff:192.168.1.2]:1234")) };
        let s = cons(&[c, fresh, me]);
        assert_eq!(
            lines(&s),
            vec![
                " /127.0.0.1:52454[1](queued=0,recved=3,sent=3,sid=0x100008f5e3c0000,lop=PING,\
                 est=1585000000000,to=30000,lcxid=0x0,lzxid=0x12,lresp=1585000001000,llat=0,\
                 minlat=0,avglat=0,maxlat=2)",
                " /[0:0:0:0:0:0:0:1]:40000[1](queued=0,recved=0,sent=0,sid=0x42,lop=NA,est=0,\
                 to=0,lzxid=0xffffffffffffffff,lresp=0,llat=0,minlat=0,avglat=0,maxlat=0)",
                " /192.168.1.2:1234[0](queued=0,recved=1,sent=0)",
                "",
                "",
            ]
        );
        assert_eq!(cons(&[]), "\n");
        let both = ConnectionStats { interest_ops: 5, ..ConnectionStats::new(sa("1.2.3.4:5")) };
        assert_eq!(connection_info(&both, true), " /1.2.3.4:5[5](queued=0,recved=0,sent=0)");
    }

    #[test]
    fn mntr_output() {
        let s = mntr(&sample());
        assert_eq!(
            lines(&s),
            vec![
                "zk_version\t3.8.0-warren-0.1.0, built on 2024-05-01 12:00 UTC",
                "zk_server_state\tstandalone",
                "zk_ephemerals_count\t1",
                "zk_num_alive_connections\t2",
                "zk_avg_latency\t0.2778",
                "zk_outstanding_requests\t0",
                "zk_znode_count\t141",
                "zk_global_sessions\t1",
                "zk_non_mtls_remote_conn_count\t0",
                "zk_last_client_response_size\t16",
                "zk_packets_sent\t1645",
                "zk_packets_received\t1704",
                "zk_max_client_response_size\t131",
                "zk_connection_drop_probability\t0.0",
                "zk_watch_count\t3",
                "zk_auth_failed_count\t0",
                "zk_min_latency\t0",
                "zk_max_file_descriptor_count\t4096",
                "zk_approximate_data_size\t269",
                "zk_open_file_descriptor_count\t75",
                "zk_local_sessions\t0",
                "zk_uptime\t1473697",
                "zk_max_latency\t20",
                "zk_outstanding_tls_handshake\t0",
                "zk_min_client_response_size\t16",
                "zk_non_mtls_local_conn_count\t0",
                "",
            ]
        );
    }

    #[test]
    fn mntr_quorum_leader_and_extras() {
        let st = ServerStats {
            version: "V".into(),
            mode: "leader".into(),
            peer_state: Some("leading - broadcast".into()),
            quorum_size: Some(3),
            leader: Some(LeaderStats { learners: 2, synced_followers: 2, ..LeaderStats::default() }),
            extra_metrics: vec![
                ("fsynctime_avg".into(), MetricValue::Float(0.5)),
                ("snap_count".into(), MetricValue::Int(7)),
                ("note".into(), MetricValue::Text("x y".into())),
            ],
            ..ServerStats::default()
        };
        let s = mntr(&st);
        let l = lines(&s);
        assert_eq!(l[0], "zk_version\tV");
        assert_eq!(l[1], "zk_server_state\tleader");
        assert_eq!(l[2], "zk_peer_state\tleading - broadcast");
        assert!(l.contains(&"zk_quorum_size\t3"));
        assert!(l.contains(&"zk_learners\t2"));
        assert!(l.contains(&"zk_synced_followers\t2"));
        assert!(l.contains(&"zk_min_proposal_size\t-1"));
        assert!(l.contains(&"zk_open_file_descriptor_count\t-1"));
        assert_eq!(&l[l.len() - 4..], &["zk_fsynctime_avg\t0.5", "zk_snap_count\t7", "zk_note\tx y", ""]);
        // Every line is key<TAB>value.
        for line in &l[..l.len() - 1] {
            let (k, v) = line.split_once('\t').unwrap();
            assert!(k.starts_with("zk_") && !v.is_empty(), "{line}");
        }
    }

    #[test]
    fn envi_output() {
        let mut env = EnvInfo::new(full_version("0.1.0", "D"));
        env.host_name = "node1".into();
        env.os_name = "Linux".into();
        env.os_arch = "amd64".into();
        env.os_memory_free_mb = 100;
        env.os_memory_max_mb = 1024;
        env.os_memory_total_mb = 256;
        let s = envi(&env);
        assert_eq!(
            lines(&s),
            vec![
                "Environment:",
                "zookeeper.version=3.8.0-warren-0.1.0, built on D",
                "host.name=node1",
                "java.version=<NA>",
                "java.vendor=<NA>",
                "java.home=<NA>",
                "java.class.path=<NA>",
                "java.library.path=<NA>",
                "java.io.tmpdir=<NA>",
                "java.compiler=<NA>",
                "os.name=Linux",
                "os.arch=amd64",
                "os.version=<NA>",
                "user.name=<NA>",
                "user.home=<NA>",
                "user.dir=<NA>",
                "os.memory.free=100MB",
                "os.memory.max=1024MB",
                "os.memory.total=256MB",
                "",
            ]
        );
        assert_eq!(java_os_arch("x86_64"), "amd64");
        assert_eq!(java_os_arch("aarch64"), "aarch64");
        assert_eq!(java_os_name("linux"), "Linux");
    }

    #[test]
    fn watch_outputs() {
        let by_session = vec![
            (0x1000_0000_0001i64, vec!["/a".to_string(), "/b".to_string()]),
            (0x1000_0000_0002i64, vec!["/a".to_string()]),
        ];
        let sum = WatchSummary::from_by_session(&by_session);
        assert_eq!(sum, WatchSummary { connections: 2, paths: 2, total_watches: 3 });
        assert_eq!(wchs(&sum), "2 connections watching 2 paths\nTotal watches:3\n");
        assert_eq!(wchs(&WatchSummary::default()), "0 connections watching 0 paths\nTotal watches:0\n");
        assert_eq!(wchc(&by_session), "0x100000000001\n\t/a\n\t/b\n0x100000000002\n\t/a\n\n");
        let by_path = vec![
            ("/a".to_string(), vec![0x1000_0000_0001i64, 0x1000_0000_0002]),
            ("/b".to_string(), vec![0x1000_0000_0001i64]),
        ];
        assert_eq!(wchp(&by_path), "/a\n\t0x100000000001\n\t0x100000000002\n/b\n\t0x100000000001\n\n");
        assert_eq!(wchc(&[]), "\n");
        assert_eq!(wchp(&[]), "\n");
    }

    #[test]
    fn dump_standalone() {
        let info = DumpInfo {
            sessions: SessionDump::Standalone(vec![
                ExpiryBucket { expire_at_ms: 1_700_000_004_000, session_ids: vec![0x2] },
                ExpiryBucket { expire_at_ms: 1_700_000_002_000, session_ids: vec![0x1, 0x3] },
            ]),
            ephemerals: vec![(0x1, vec!["/e1".into(), "/e2".into()]), (0x3, vec![])],
            connections: Some(vec![ConnectionBucket {
                expire_at_ms: 1_700_000_010_000,
                connections: vec![(sa("127.0.0.1:5000"), 0x1), (sa("127.0.0.1:5001"), 0)],
            }]),
        };
        let s = dump(&info);
        assert_eq!(
            lines(&s),
            vec![
                "SessionTracker dump:",
                "Session Sets (2)/(3):",
                "2 expire at Tue Nov 14 22:13:22 UTC 2023:",
                "\t0x1",
                "\t0x3",
                "1 expire at Tue Nov 14 22:13:24 UTC 2023:",
                "\t0x2",
                "ephemeral nodes dump:",
                "Sessions with Ephemerals (2):",
                "0x1:",
                "\t/e1",
                "\t/e2",
                "0x3:",
                "Connections dump:",
                "Connections Sets (1)/(2):",
                "2 expire at Tue Nov 14 22:13:30 UTC 2023:",
                "\tip: /127.0.0.1:5000 sessionId: 0x1",
                "\tip: /127.0.0.1:5001 sessionId: 0x0",
                "",
            ]
        );
        let empty = DumpInfo { sessions: SessionDump::Standalone(vec![]), ephemerals: vec![], connections: None };
        assert_eq!(
            dump(&empty),
            "SessionTracker dump:\nSession Sets (0)/(0):\nephemeral nodes dump:\n\
             Sessions with Ephemerals (0):\nConnections dump:\n"
        );
    }

    #[test]
    fn dump_quorum() {
        let info = DumpInfo {
            sessions: SessionDump::Quorum { local: Some(vec![]), global: vec![(0x200, 30000), (0x100, 4000), (-1, 1)] },
            ephemerals: vec![],
            connections: None,
        };
        let s = dump(&info);
        assert!(s.starts_with(
            "SessionTracker dump:\nLocal Session Sets (0)/(0):\nGlobal Sessions(3):\n\
             0xffffffffffffffff\t1ms\n0x100\t4000ms\n0x200\t30000ms\nephemeral nodes dump:\n"
        ));
    }

    #[test]
    fn java_dates() {
        assert_eq!(java_date_string_utc(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date_string_utc(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(java_date_string_utc(1_709_251_199_999), "Thu Feb 29 23:59:59 UTC 2024");
        assert_eq!(java_date_string_utc(-1), "Wed Dec 31 23:59:59 UTC 1969");
        // Extremes do not panic.
        let _ = java_date_string_utc(i64::MAX);
        let _ = java_date_string_utc(i64::MIN);
    }

    #[test]
    fn socket_addresses() {
        assert_eq!(java_socket_address(&sa("127.0.0.1:2181")), "/127.0.0.1:2181");
        assert_eq!(java_socket_address(&sa("[::1]:2181")), "/[0:0:0:0:0:0:0:1]:2181");
        assert_eq!(java_socket_address(&sa("[fe80::1:2]:1")), "/[fe80:0:0:0:0:0:1:2]:1");
        assert_eq!(java_socket_address(&sa("[::ffff:10.1.2.3]:9")), "/10.1.2.3:9");
    }

    #[test]
    fn no_panics_on_extremes() {
        let mut st = ServerStats {
            latency_avg_ms: f64::NAN,
            zxid: i64::MIN,
            packets_received: u64::MAX,
            uptime_ms: u64::MAX,
            mode: "leader".into(),
            ..ServerStats::default()
        };
        st.connections.push(ConnectionStats {
            session_id: i64::MIN,
            last_cxid: i64::MAX,
            interest_ops: u32::MAX,
            ..ConnectionStats::new(sa("[::]:0"))
        });
        let _ = srvr(&st);
        let _ = stat(&st);
        let _ = mntr(&st);
        let _ = cons(&st.connections);
        assert!(mntr(&st).contains("zk_packets_received\t9223372036854775807\n"));
        let _ = avg_latency(u64::MAX, u64::MAX);
        let _ = avg_latency(1, u64::MAX);
        let _ = round_half_up_4(f64::MAX);
        let _ = round_half_up_4(f64::MIN_POSITIVE);
        let _ = java_double_string(f64::MIN_POSITIVE);
        let _ = java_double_string(f64::MAX);
        for b in 0..=255u8 {
            let _ = parse_word([b, b, b, b]);
        }
    }
}
