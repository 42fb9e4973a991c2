//! The `warren` command: run a server, or ask one for its status.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing::{error, info, warn};

use warren::admin;
use warren::config::Config;
use warren::machine::MachineConfig;
use warren::quorum::QuorumConfig;
use warren::server::resolve::PeerAddr;
use warren::server::{self, AdminContext, ClientTls, EnsembleSettings, Settings, Storage};

#[derive(Parser)]
#[command(name = "warren", version, about = "A ZooKeeper-compatible coordination service")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a server in the foreground (without a file: 127.0.0.1:2181, dataDir ./warren-data).
    StartForeground {
        /// A ZooKeeper zoo.cfg.
        config: Option<PathBuf>,
    },
    /// Print the server's mode, like `zkServer.sh status`.
    Status { config: Option<PathBuf> },
    /// Print the transactions of a log segment (`log.<zxid>`).
    LogDump {
        file: PathBuf,
        /// One JSON object per transaction.
        #[arg(long)]
        json: bool,
    },
    /// Print a snapshot (`snapshot.<zxid>`), after validating it.
    SnapDump {
        file: PathBuf,
        /// One JSON object per node and session.
        #[arg(long)]
        json: bool,
    },
    /// Save a consistent snapshot of a running server (its AdminServer's /commands/snapshot,
    /// enabled by admin.snapshot.enabled) into FILE.
    Backup {
        /// The AdminServer, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        admin: String,
        /// `user:password` of a digest identity with ALL on / (sent as `Authorization: digest`).
        #[arg(long)]
        auth: Option<String>,
        file: PathBuf,
    },
    /// Install a backup into an empty data directory, offline (the server stopped); or, with
    /// --admin, into a running standalone server (admin.restore.enabled=true), which closes
    /// every client connection and continues from the backup's state.
    Restore {
        file: PathBuf,
        #[arg(required_unless_present = "admin", conflicts_with = "admin")]
        data_dir: Option<PathBuf>,
        /// The server's dataLogDir, when it has one: it must be empty too.
        #[arg(long, conflicts_with = "admin")]
        log_dir: Option<PathBuf>,
        /// A running server's AdminServer, e.g. http://127.0.0.1:8080: restore online.
        #[arg(long)]
        admin: Option<String>,
        /// With --admin: `user:password` of a digest identity with ALL on /.
        #[arg(long, requires = "admin")]
        auth: Option<String>,
    },
    /// Remove old snapshots and log segments, keeping the newest N snapshots (at least 3).
    Purge {
        config: Option<PathBuf>,
        /// Snapshots to keep.
        #[arg(short = 'n', long, default_value_t = 3)]
        count: usize,
    },
    /// An operator shell compatible with ZooKeeper's zkCli (`warren cli -server host:port [CMD ARGS]`).
    #[command(disable_help_flag = true)]
    Cli {
        /// Everything after `cli`, passed through untouched (zkCli-style single-dash flags).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print the version line `srvr` and `stat` report (with the build date) and the git commit.
    Version,
    /// Build a Warren data directory from a stopped ZooKeeper's (its newest complete snapshot
    /// and the logs after it). The target must be missing or empty.
    ImportZk {
        /// ZooKeeper's dataDir (holding version-2/).
        zk_data_dir: PathBuf,
        /// The Warren dataDir to create.
        warren_data_dir: PathBuf,
        /// ZooKeeper's dataLogDir, when its logs are not in dataDir.
        #[arg(long)]
        log_dir: Option<PathBuf>,
    },
    /// Restart the survivors of an ensemble that lost a majority of its servers for good as a
    /// new, smaller ensemble, from the most complete log among them (docs/operations.md, "When a
    /// server is lost"). Every survivor must be STOPPED. Give each survivor's NEW zoo.cfg: the
    /// new server.N lines (the same in every file; every survivor a participant), and the
    /// dataDir (and dataLogDir) holding that survivor's data. The most complete survivor's
    /// snapshots and log are copied to the others (their own files are moved aside), and every
    /// survivor gets a new ensemble id and an epoch above every old one: members of the old
    /// ensemble that come back with their data are refused. Writes that only the lost servers
    /// held are lost. Never run it while a majority of the old ensemble may still be alive.
    RecoverQuorum {
        /// Each survivor's new zoo.cfg.
        #[arg(required = true)]
        configs: Vec<PathBuf>,
        /// Report what each survivor holds and what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a stopped Warren's data (newest snapshot and the log after it) as a ZooKeeper 3.8
    /// data directory: version-2/snapshot.<zxid> and the epoch files. The target must be
    /// missing or empty.
    ExportZk {
        /// Warren's dataDir (holding version-2/).
        warren_data_dir: PathBuf,
        /// The ZooKeeper dataDir to create.
        zk_data_dir: PathBuf,
        /// Warren's dataLogDir, when its log is not in dataDir.
        #[arg(long)]
        log_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::StartForeground { config } => start(config.as_deref()),
        Cmd::Status { config } => status(config.as_deref()),
        Cmd::LogDump { file, json } => log_dump(&file, json),
        Cmd::Purge { config, count } => purge(config.as_deref(), count),
        Cmd::SnapDump { file, json } => snap_dump(&file, json),
        Cmd::Backup { admin, auth, file } => backup(&admin, auth.as_deref(), &file),
        Cmd::Restore { file, data_dir, log_dir, admin, auth } => match (admin, data_dir) {
            (Some(admin), _) => restore_online(&file, &admin, auth.as_deref()),
            (None, Some(data_dir)) => restore(&file, &data_dir, log_dir.as_deref()),
            (None, None) => unreachable!("clap requires DATA_DIR without --admin"),
        },
        Cmd::Cli { args } => warren_cli::main(args),
        Cmd::ImportZk { zk_data_dir, warren_data_dir, log_dir } => {
            import_zk(&zk_data_dir, &warren_data_dir, log_dir.as_deref())
        }
        Cmd::ExportZk { warren_data_dir, zk_data_dir, log_dir } => {
            export_zk(&warren_data_dir, &zk_data_dir, log_dir.as_deref())
        }
        Cmd::RecoverQuorum { configs, dry_run } => recover_quorum(&configs, dry_run),
        Cmd::Version => {
            println!("{}", full_version());
            println!("git commit: {}", env!("WARREN_GIT_COMMIT"));
            ExitCode::SUCCESS
        }
    }
}

/// A panic anywhere in the server (a broken invariant: `Node::check_invariants`) stops the
/// whole process at once, with the reason in the log and the default report (and backtrace)
/// on stderr: one executor thread dying while the others keep accepting clients would leave a
/// server that answers nothing, and nothing may be served or acknowledged from a state that
/// broke an invariant. Exit by SIGABRT, so a supervisor (systemd) sees a failure.
fn stop_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
        error!("fatal: thread {thread} panicked: {info}; stopping the server");
        report(info);
        std::process::abort();
    }));
}

/// Logs go to stderr, filtered by `WARREN_LOG` (default `info`). `WARREN_LOG_FORMAT=json`
/// writes one JSON object per line (`timestamp`, `level`, `message` and the event's other
/// fields at the top level) for log shippers; unset or `text`, the human-readable format.
fn init_logging() {
    let filter = || tracing_subscriber::EnvFilter::try_from_env("WARREN_LOG").unwrap_or_else(|_| "info".into());
    let format = std::env::var("WARREN_LOG_FORMAT").unwrap_or_default();
    if format.eq_ignore_ascii_case("json") {
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .with_target(false)
            .init();
        return;
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if !format.is_empty() && !format.eq_ignore_ascii_case("text") {
        warn!("WARREN_LOG_FORMAT={format:?} is neither \"text\" nor \"json\": writing text");
    }
}

/// ZooKeeper's version line with Warren's version and build date (set by `engine/build.rs`).
fn full_version() -> String {
    admin::full_version(env!("CARGO_PKG_VERSION"), env!("WARREN_BUILD_DATE"))
}

fn load(path: Option<&Path>) -> Result<Config, String> {
    let Some(p) = path else {
        return Ok(Config::embedded_default());
    };
    let (cfg, warnings) = Config::load(p).map_err(|e| e.to_string())?;
    for w in warnings {
        warn!("{w}");
    }
    Ok(cfg)
}

fn start(path: Option<&Path>) -> ExitCode {
    stop_on_panic();
    #[cfg(feature = "planted-bugs")]
    if let Err(e) = warren::planted::init() {
        error!("{e}");
        return ExitCode::from(2);
    }
    let cfg = match load(path) {
        Ok(c) => c,
        Err(e) => {
            error!("invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    match path {
        Some(p) => info!("Using config: {}", p.display()),
        None => info!("Using the embedded default configuration"),
    }
    if let Err(e) = std::fs::create_dir_all(&cfg.data_dir) {
        error!("cannot create dataDir {}: {e}", cfg.data_dir.display());
        return ExitCode::from(2);
    }
    let mut settings = settings_from(&cfg);
    match client_tls(&cfg) {
        Ok(tls) => settings.tls = tls,
        Err(e) => {
            error!("invalid configuration: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some(ensemble) = settings.ensemble.as_mut() {
        match peer_tls(&cfg) {
            Ok(tls) => ensemble.tls = tls,
            Err(e) => {
                error!("invalid configuration: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(p) = path {
        let initial = initial_config_text(&std::fs::read_to_string(p).unwrap_or_default());
        if let Some(admin) = Arc::get_mut(&mut settings.admin) {
            admin.initial_config = Some(initial);
        }
    }
    if let Err(e) = server::run(settings) {
        error!("{e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// The settings of a zoo.cfg as ZooKeeper's `initial_configuration` shows them: one line per
/// setting, without comments and blank lines.
fn initial_config_text(file: &str) -> String {
    file.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The plaintext client port, unless only `secureClientPort` is set.
fn plaintext_client_addr(cfg: &Config) -> Option<SocketAddr> {
    let own_line = cfg.ensemble.as_ref().is_some_and(|e| e.me().client_addr.is_some());
    (cfg.plaintext_client_port || own_line).then(|| client_addr(cfg))
}

/// Where clients connect: an ensemble member's own `server.N` line may say.
fn client_addr(cfg: &Config) -> SocketAddr {
    let own = cfg.ensemble.as_ref().and_then(|e| e.me().client_addr.clone());
    match own {
        Some((host, port)) => {
            let ip = if host == "localhost" { "127.0.0.1".parse().ok() } else { host.parse().ok() };
            SocketAddr::new(ip.unwrap_or(cfg.client_port_address), port)
        }
        None => SocketAddr::new(cfg.client_port_address, cfg.client_port),
    }
}

/// TLS for clients: the stores read now (a bad file stops the start), and a thread that
/// reloads them when they change.
fn client_tls(cfg: &Config) -> Result<Option<ClientTls>, String> {
    let t = &cfg.tls;
    if !t.enabled() {
        return Ok(None);
    }
    let config = warren::tls::Reloadable::new(warren::tls::server_config(t)?);
    warren::tls::watch(t.clone(), config.clone(), warren::tls::RELOAD_POLL)
        .map_err(|e| format!("cannot start the TLS reload thread: {e}"))?;
    let secure_addr = t
        .secure_client_port
        .map(|port| SocketAddr::new(t.secure_client_port_address.unwrap_or(Ipv4Addr::UNSPECIFIED.into()), port));
    Ok(Some(ClientTls {
        config,
        secure_addr,
        unified: t.port_unification,
        detection_timeout: Duration::from_millis(u64::from(t.handshake_detection_timeout_ms)),
        x509_super_user: t.x509_super_user.clone(),
    }))
}

/// Quorum TLS: the `ssl.quorum.*` stores read now (a bad file stops the start), reloaded when
/// they change if `sslQuorumReloadCertFiles` says so.
fn peer_tls(cfg: &Config) -> Result<Option<server::peers::PeerTls>, String> {
    let q = &cfg.quorum_tls;
    let Some(ensemble) = cfg.ensemble.as_ref().filter(|_| q.enabled()) else {
        return Ok(None);
    };
    let configs = warren::tls::Reloadable::new(warren::tls::peer_configs(&q.tls)?);
    if q.reload_cert_files {
        warren::tls::watch_with(
            q.tls.clone(),
            configs.clone(),
            warren::tls::RELOAD_POLL,
            warren::tls::peer_configs,
            "quorum TLS",
        )
        .map_err(|e| format!("cannot start the quorum TLS reload thread: {e}"))?;
    }
    let mut hosts = std::collections::HashMap::new();
    for m in ensemble.members.iter().filter(|m| m.id != ensemble.myid) {
        let name = rustls_pki_types::ServerName::try_from(m.host.clone())
            .map_err(|e| format!("server.{}: {:?} cannot be checked against a certificate: {e}", m.id, m.host))?;
        hosts.insert(m.id, name);
    }
    info!(
        "quorum TLS: {} peer connections, {} on the election port{}",
        if q.ssl_quorum { "dialling TLS" } else { "dialling plaintext" },
        if q.port_unification { "accepting TLS and plaintext" } else { "accepting TLS only" },
        if q.tls.hostname_verification { "; peer certificates must name their server.N host" } else { "" }
    );
    Ok(Some(server::peers::PeerTls {
        configs,
        dial: q.ssl_quorum,
        unified: q.port_unification,
        hostname_verification: q.tls.hostname_verification,
        hosts,
        detection_timeout: Duration::from_millis(u64::from(q.tls.handshake_detection_timeout_ms)),
    }))
}

fn settings_from(cfg: &Config) -> Settings {
    let tick = cfg.tick_time_ms as i64;
    let machine = MachineConfig {
        tick_ms: tick,
        min_session_timeout_ms: cfg.min_session_timeout_ms as i32,
        max_session_timeout_ms: cfg.max_session_timeout_ms as i32,
        super_digest: cfg.super_digest.clone(),
        ttl_enabled: cfg.extended_types_enabled,
        container_check_interval_ms: cfg.warren_container_check_interval_ms as i64,
        myid: 0,
        max_queued_per_conn: 100_000,
        password_seed: None,
        max_watches_per_session: usize::try_from(cfg.warren_max_watches_per_session).unwrap_or(usize::MAX),
        config_node: cfg.ensemble.as_ref().map(|e| e.config_text.clone().into_bytes()),
        sasl_users: cfg.sasl_users.as_ref().map(|u| Arc::new(u.clone().into_iter().collect())),
        sasl_super_user: cfg.sasl_super_user.clone(),
        enforce_auth_schemes: cfg.enforce_auth_schemes.clone(),
        read_only_mode: cfg.readonly_mode_enabled,
        local_sessions: cfg.local_sessions_enabled,
        local_sessions_upgrading: cfg.local_sessions_upgrading_enabled,
    };
    let data_log_dir = cfg.data_log_dir.clone().unwrap_or_else(|| cfg.data_dir.clone());
    let version = full_version();
    Settings {
        addr: plaintext_client_addr(cfg),
        tls: None,
        max_frame_len: cfg.jute_max_buffer,
        max_client_cnxns: cfg.max_client_cnxns,
        max_cnxns: cfg.max_cnxns,
        handshake_timeout: Duration::from_millis(cfg.sessionless_cnxn_timeout_ms as u64),
        max_queued_reply_bytes: usize::try_from(cfg.warren_max_queued_reply_bytes).unwrap_or(usize::MAX),
        machine,
        executors: cfg.warren_cores.max(1),
        io_memory_bytes: cfg.warren_io_memory_kb * 1024,
        storage: Storage {
            snap_dir: cfg.data_dir.join("version-2"),
            log_dir: data_log_dir.join("version-2"),
            segment_size: cfg.pre_alloc_size_kb * 1024,
            force_sync: cfg.force_sync,
            slow_fsync: Duration::from_millis(cfg.fsync_warning_threshold_ms),
            snap_count: cfg.snap_count,
            snap_size_limit_bytes: cfg.snap_size_limit_kb * 1024,
            purge_retain: cfg.autopurge_snap_retain_count as usize,
            purge_interval: (cfg.autopurge_purge_interval_hours > 0)
                .then(|| Duration::from_secs(cfg.autopurge_purge_interval_hours as u64 * 3600)),
        },
        admin: Arc::new(AdminContext {
            config: cfg.clone(),
            data_dir: cfg.data_dir.clone(),
            data_log_dir,
            version,
            initial_config: None,
            metrics: Arc::new(warren::metrics::Metrics::new(server::wall_clock_ms())),
            snapshot_limiter: Default::default(),
            restore_limiter: Default::default(),
        }),
        ensemble: ensemble_settings(cfg),
    }
}

/// The `server.N` lines: quorum settings and every member's addresses, as written. Host names
/// are not resolved here: the peer links look them up at each connection attempt.
fn ensemble_settings(cfg: &Config) -> Option<EnsembleSettings> {
    let e = cfg.ensemble.as_ref()?;
    let members = e
        .members
        .iter()
        .map(|m| (m.id, PeerAddr::new(&m.host, m.quorum_port), PeerAddr::new(&m.host, m.election_port)))
        .collect();
    let quorum = QuorumConfig {
        myid: e.myid,
        voters: e.voters(),
        observers: e.observers(),
        init_limit: cfg.init_limit,
        sync_limit: cfg.sync_limit,
        peer_timeout_ms: cfg.warren_peer_timeout_ms as i64,
        max_inflight: cfg.warren_max_inflight,
        diff_window: cfg.warren_diff_window,
    };
    Some(EnsembleSettings { quorum, members, data_dir: cfg.data_dir.clone(), tls: None, identity: Default::default() })
}

fn status(path: Option<&Path>) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let plain = |a: IpAddr| match a {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        other => other,
    };
    match path {
        Some(p) => println!("Using config: {}", p.display()),
        None => println!("Using config: (embedded default)"),
    }
    // As zkServer.sh: the plaintext client port when there is one, else secureClientPort.
    let answer = match (cfg.plaintext_client_port, cfg.tls.secure_client_port) {
        (false, Some(port)) => {
            let ip = plain(cfg.tls.secure_client_port_address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
            println!("Client port found: {port}. Client address: {ip}. Client SSL: true.");
            match warren::tls::status_client_config(&cfg.tls) {
                Ok(tls) => srvr_tls(SocketAddr::new(ip, port), tls),
                Err(e) => {
                    println!("Cannot check the secure client port: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        _ => {
            let ip = plain(cfg.client_port_address);
            println!("Client port found: {}. Client address: {ip}. Client SSL: false.", cfg.client_port);
            srvr(SocketAddr::new(ip, cfg.client_port))
        }
    };
    let answer = answer.and_then(|text| {
        text.lines().find_map(|l| l.strip_prefix("Mode: ")).map(str::to_string).ok_or(format!("srvr answered {text:?}"))
    });
    match answer {
        Ok(mode) => {
            println!("Mode: {mode}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("Error contacting service. It is probably not running.");
            eprintln!("({why})");
            ExitCode::from(1)
        }
    }
}

fn srvr(addr: SocketAddr) -> Result<String, String> {
    ask_srvr(connect_for_status(addr)?)
}

/// `srvr` over TLS (the server's secure client port).
fn srvr_tls(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Result<String, String> {
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    ask_srvr(rustls::StreamOwned::new(conn, connect_for_status(addr)?))
}

fn connect_for_status(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| format!("{addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    Ok(s)
}

fn ask_srvr(mut s: impl Read + Write) -> Result<String, String> {
    s.write_all(b"srvr").and_then(|_| s.flush()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    // A TLS peer that closes without close_notify still gave its whole answer.
    match s.read_to_string(&mut out) {
        Err(_) if !out.is_empty() => Ok(out),
        Err(e) => Err(e.to_string()),
        Ok(_) => Ok(out),
    }
}

fn log_dump(file: &Path, json: bool) -> ExitCode {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let scan = match warren::log::format::scan(&bytes) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    // A closed pipe (`| head`) ends the dump quietly.
    let mut out = std::io::stdout().lock();
    if !json && writeln!(out, "Warren transaction log {} ({} transactions)", file.display(), scan.txns.len()).is_err() {
        return ExitCode::SUCCESS;
    }
    for t in &scan.txns {
        let line = if json { warren::log::dump::json_line(t) } else { warren::log::dump::text_line(t) };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::SUCCESS;
        }
    }
    if let Some(why) = scan.torn_tail {
        eprintln!("{}: torn tail: {why}", file.display());
    }
    ExitCode::SUCCESS
}

fn purge(path: Option<&Path>, count: usize) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let snap_dir = cfg.data_dir.join("version-2");
    let log_dir = cfg.data_log_dir.clone().unwrap_or_else(|| cfg.data_dir.clone()).join("version-2");
    match server::purge::purge(&snap_dir, &log_dir, count) {
        Ok(removed) => {
            for p in &removed {
                println!("Removing file: {}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("purge failed: {e}");
            ExitCode::from(1)
        }
    }
}

fn backup(admin: &str, auth: Option<&str>, file: &Path) -> ExitCode {
    let began = std::time::Instant::now();
    let got = match warren::snap::backup::fetch(admin, auth) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("backup failed: {e}");
            return ExitCode::from(1);
        }
    };
    // Whole or not at all: a temp file beside FILE, fsync'd, then renamed over it.
    let tmp = file.with_extension("partial");
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&got.image)?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        eprintln!("backup failed: writing {}: {e}", file.display());
        return ExitCode::from(1);
    }
    println!(
        "{}: zxid 0x{:x}, {} nodes, {} sessions, {} bytes, crc32c {:08x}, in {} ms",
        file.display(),
        got.zxid,
        got.nodes,
        got.sessions,
        got.image.len(),
        crc32c::crc32c(&got.image),
        began.elapsed().as_millis()
    );
    ExitCode::SUCCESS
}

fn read_backup(file: &Path) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(file).map_err(|e| {
        eprintln!("cannot read {}: {e}", file.display());
        ExitCode::from(2)
    })
}

fn restore_online(file: &Path, admin: &str, auth: Option<&str>) -> ExitCode {
    let image = match read_backup(file) {
        Ok(b) => b,
        Err(code) => return code,
    };
    match warren::snap::backup::upload(admin, auth, &image) {
        Ok(u) => {
            println!("restored the backup at zxid 0x{:x}; the server now stands at zxid 0x{:x}", u.backup_zxid, u.zxid);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("restore failed: {}: {e}", file.display());
            ExitCode::from(1)
        }
    }
}

fn restore(file: &Path, data_dir: &Path, log_dir: Option<&Path>) -> ExitCode {
    let image = match read_backup(file) {
        Ok(b) => b,
        Err(code) => return code,
    };
    match warren::storage::snapshots::restore_backup(&warren::storage::RealDisk, &image, data_dir, log_dir) {
        Ok((zxid, path)) => {
            println!("restored zxid 0x{zxid:x} into {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("restore failed: {}: {e}", file.display());
            ExitCode::from(1)
        }
    }
}

fn snap_dump(file: &Path, json: bool) -> ExitCode {
    match warren::storage::snapshots::load(&warren::storage::RealDisk, file) {
        Ok(s) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) ends the dump quietly.
            let _ = warren::snap::dump(&s, json, &mut out);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            ExitCode::from(1)
        }
    }
}

fn import_zk(zk_data_dir: &Path, target: &Path, log_dir: Option<&Path>) -> ExitCode {
    let source = server::import_zk::Source::new(zk_data_dir, log_dir);
    let bar = Progress::start("reading ZooKeeper's files");
    let result = server::import_zk::run(&source, target, &mut |done, total| {
        bar.nodes("writing the Warren snapshot", done, total)
    });
    bar.finish();
    let imported = match result {
        Ok(i) => i,
        Err(e) => {
            eprintln!("import failed, nothing written to {}: {e}", target.display());
            return ExitCode::from(1);
        }
    };
    print_start(&imported.skipped, imported.snapshot.as_ref());
    for path in &imported.logs {
        println!("log: {}", path.display());
    }
    for (path, offset, why) in &imported.torn {
        println!("torn tail ignored, as ZooKeeper does: {} at offset {offset}: {why}", path.display());
    }
    match imported.first_applied_zxid {
        Some(first) => {
            println!("transactions applied: {} (zxid {first:#x} to {:#x})", imported.applied, imported.last_zxid)
        }
        None => println!("transactions applied: 0"),
    }
    if let Some(zxid) = imported.digest_checked {
        println!("digest: the imported tree matches ZooKeeper's digest at zxid {zxid:#x}");
    }
    println!(
        "imported: last zxid {:#x}, {} nodes, {} sessions ({} ephemerals), into {}",
        imported.last_zxid,
        imported.tree.node_count(),
        imported.sessions.len(),
        imported.tree.ephemeral_count(),
        target.display()
    );
    ExitCode::SUCCESS
}

/// The snapshots import-zk and export-zk skipped, and the one they started from.
fn print_start(skipped: &[(PathBuf, String)], snapshot: Option<&(i64, PathBuf)>) {
    for (path, why) in skipped {
        println!("skipped snapshot {}: {why}", path.display());
    }
    match snapshot {
        Some((zxid, path)) => println!("snapshot: {} (zxid {zxid:#x})", path.display()),
        None => println!("snapshot: none, the log replayed from an empty tree"),
    }
}

fn export_zk(warren_data_dir: &Path, target: &Path, log_dir: Option<&Path>) -> ExitCode {
    let source = server::import_zk::Source::new(warren_data_dir, log_dir);
    let bar = Progress::start("reading Warren's data");
    let result = server::export_zk::read(&source).and_then(|state| {
        let total = state.tree.node_count() as u64;
        let written = server::export_zk::write(&state, target, &mut |done| {
            bar.nodes("writing the ZooKeeper snapshot", done, total)
        });
        written.map(|w| (state, w))
    });
    bar.finish();
    let (state, exported) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("export failed, nothing written to {}: {e}", target.display());
            return ExitCode::from(1);
        }
    };
    print_start(&state.skipped, state.snapshot.as_ref());
    println!("log: {} transactions replayed after it", state.replayed);
    if let Some(torn) = &state.torn {
        println!("torn tail ignored (left as it is), as Warren's recovery does: {torn}");
    }
    let (ephemerals, containers, ttls) = state.kinds();
    let s = &exported.summary;
    println!(
        "wrote {} ({} bytes): zxid {:#x}, {} nodes ({ephemerals} ephemerals, {containers} containers, {ttls} TTL), \
         {} sessions, {} ACL lists, digest {:#x}",
        exported.file.display(),
        s.bytes,
        s.zxid,
        s.nodes,
        s.sessions,
        s.acls,
        s.digest
    );
    println!("wrote {}/version-2/acceptedEpoch and currentEpoch: {}", target.display(), s.zxid >> 32);
    if ttls > 0 {
        println!("TTL nodes: start ZooKeeper with -Dzookeeper.extendedTypesEnabled=true, or it deletes them");
    }
    ExitCode::SUCCESS
}

/// `warren recover-quorum`: the survivors' new zoo.cfg files read and checked here, the rest
/// in `storage::recover_quorum`. Exit status 2: a zoo.cfg that cannot be used; 1: refused or
/// failed (the message says whether anything was changed).
fn recover_quorum(configs: &[PathBuf], dry_run: bool) -> ExitCode {
    use warren::storage::member::MemberDirs;
    use warren::storage::recover_quorum::{self as rq, Survivor};
    let mut survivors = Vec::new();
    let mut membership: Option<(u64, Vec<String>, Vec<u64>, Vec<u64>)> = None;
    for path in configs {
        let cfg = match load(Some(path)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("recover-quorum: {}: {e}; nothing was changed", path.display());
                return ExitCode::from(2);
            }
        };
        let Some(e) = cfg.ensemble.as_ref() else {
            eprintln!("recover-quorum: {} has no server.N lines: give the new ensemble's members", path.display());
            return ExitCode::from(2);
        };
        // Client addresses differ from file to file (a member's own line gets clientPort).
        let members: Vec<String> = e
            .members
            .iter()
            .map(|m| format!("server.{}={}:{}:{}:{:?}", m.id, m.host, m.quorum_port, m.election_port, m.role))
            .collect();
        match &membership {
            Some((first, theirs, _, _)) if *theirs != members => {
                let err = rq::RecoverError::Memberships {
                    a: *first,
                    b: e.myid,
                    a_members: theirs.join(" "),
                    b_members: members.join(" "),
                };
                eprintln!("recover-quorum: {err}; nothing was changed");
                return ExitCode::from(2);
            }
            Some(_) => {}
            None => membership = Some((e.myid, members, e.voters(), e.observers())),
        }
        let dirs = MemberDirs::of_config(&cfg.data_dir, cfg.data_log_dir.as_deref());
        survivors.push(Survivor { myid: e.myid, dirs });
    }
    let Some((_, _, voters, observers)) = membership else {
        eprintln!("recover-quorum: no zoo.cfg given");
        return ExitCode::from(2);
    };
    let mut id = [0u8; 8];
    if let Err(e) = getrandom::fill(&mut id) {
        eprintln!("recover-quorum: the OS random number generator failed: {e}; nothing was changed");
        return ExitCode::from(1);
    }
    // Never 0: that is the id of every ensemble never recovered.
    let ensemble = u64::from_be_bytes(id).max(1);
    let disk = warren::storage::RealDisk;
    let report = match rq::recover(&disk, &survivors, &voters, &observers, ensemble, dry_run) {
        Ok(r) => r,
        Err(e @ rq::RecoverError::Apply { .. }) => {
            eprintln!(
                "recover-quorum failed: {e}. Some survivors may have been changed: fix the cause and run the \
                 same command again (it finishes the job), before starting any survivor"
            );
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("recover-quorum refused: {e}; nothing was changed");
            return ExitCode::from(1);
        }
    };
    for f in &report.found {
        println!(
            "server {}: last logged zxid {:#x} (epoch {}), {} log records after snapshot {:#x}, acceptedEpoch {}, \
             currentEpoch {}, ensembleId {}{}{}",
            f.myid,
            f.last_zxid,
            f.last_zxid >> 32,
            f.records,
            f.snapshot_zxid,
            f.epochs.accepted,
            f.epochs.current,
            f.ensemble.map_or("none".to_string(), |e| e.to_string()),
            f.skipped_snapshot
                .map_or(String::new(), |z| format!(", damaged snapshot {z:#x} skipped (the log covers it)")),
            f.torn.as_ref().map_or(String::new(), |t| format!(", torn tail (repaired when it starts): {t}")),
        );
    }
    let best = &report.found[report.winner];
    println!("most complete: server {} (last logged zxid {:#x})", best.myid, best.last_zxid);
    println!("new epoch: {}; new ensemble id: {}", report.epoch, report.ensemble);
    if dry_run {
        println!("dry run: nothing was changed");
        return ExitCode::SUCCESS;
    }
    for line in &report.done {
        println!("{line}");
    }
    println!(
        "done: start the survivors with these zoo.cfg files, then any new member (empty dataDir, the same \
         server.N lines). Never start a lost server with its old data and zoo.cfg."
    );
    ExitCode::SUCCESS
}

/// A progress bar on stderr for the long steps of import-zk and export-zk, shown only when
/// stderr is a terminal: piped or logged runs (and the tests) see none of it.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn start(phase: &'static str) -> Progress {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = indicatif::ProgressBar::new_spinner().with_message(phase);
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar) }
    }

    /// Switches to a bar of `total` nodes the first time, then moves it to `done`.
    fn nodes(&self, phase: &'static str, done: u64, total: u64) {
        let Some(bar) = &self.bar else { return };
        if bar.length() != Some(total) {
            let style = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} nodes ({eta})")
                .expect("a valid template")
                .progress_chars("=> ");
            bar.set_message(phase);
            bar.set_style(style);
            bar.set_length(total);
        }
        bar.set_position(done);
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
