//! The AdminServer (ZooKeeper 3.8's `/commands` URLs, JSON answers), the health probes and
//! the Prometheus endpoint, wired to the HTTP threads of `http`.
//!
//! Commands that need the tree, sessions or connections are sent to the owner over a
//! bounded channel and answered there; everything else (configuration, environment,
//! directory sizes, the last snapshot, probes, metrics) is answered on the HTTP thread from
//! the configuration and the published metrics, without involving the owner.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tracing::warn;

use super::http::{self, HttpRequest, HttpResponse};
use super::owner::{dir_size, max_fds, open_fds, wall_ms, AdminContext};
use crate::admin_json::{self as j, DirSizes};
use crate::metrics::{self, ProcessFigures};

/// What the HTTP threads ask the owner.
pub(crate) enum ToOwner {
    Command(Query),
    Snapshot(SnapshotQuery),
    Restore(RestoreQuery),
}

/// `/commands/restore`, in two steps: `Check` before the upload is read (the caller needs
/// ALL on "/", as for the snapshot command; answers the last zxid prepared), then `Install`
/// with the validated backup (see `Owner::restore`).
pub(crate) struct RestoreQuery {
    pub auth: crate::acl::AuthInfo,
    /// Whether the request carried an Authorization header (401 without, 403 with).
    pub credentials: bool,
    pub step: RestoreStep,
}

pub(crate) enum RestoreStep {
    Check(mpsc::SyncSender<Result<i64, HttpResponse>>),
    Install(Box<Install>, mpsc::SyncSender<Result<(), HttpResponse>>),
}

/// A validated backup and its snapshot image at the zxid the restored state takes.
pub(crate) struct Install {
    pub backup: crate::snap::LoadedSnapshot,
    pub zxid: i64,
    pub image: Vec<u8>,
}

/// `/commands/snapshot`: check the caller may read everything (ALL on "/", as ZooKeeper 3.9
/// asks), then capture the tree and the transactions applied meanwhile.
pub(crate) struct SnapshotQuery {
    pub auth: crate::acl::AuthInfo,
    /// Whether the request carried an Authorization header (401 without, 403 with).
    pub credentials: bool,
    pub reply: mpsc::SyncSender<Result<Capture, HttpResponse>>,
}

/// A fuzzy snapshot image, what changed while it was taken, and how many transactions.
pub(crate) struct Capture {
    pub image: Vec<u8>,
    pub changes: crate::snap::backup::Changes,
    pub txns: usize,
}

/// A command for the owner to answer.
pub(crate) struct Query {
    pub command: &'static str,
    pub dirs: DirSizes,
    pub reply: mpsc::SyncSender<Value>,
}

/// Commands the owner answers.
const OWNER_COMMANDS: &[&str] = &[
    "connection_stat_reset",
    "connections",
    "dump",
    "is_read_only",
    "leader",
    "monitor",
    "observers",
    "server_stats",
    "stat_reset",
    "stats",
    "watch_summary",
    "watches",
    "watches_by_path",
    "zabstate",
];

/// How long an HTTP thread waits for the owner.
const OWNER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `/commands/snapshot` waits for the owner's capture (a large tree takes seconds).
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long `/commands/restore` waits for the owner to install a backup (it writes it first).
const RESTORE_TIMEOUT: Duration = Duration::from_secs(600);
/// Largest backup `/commands/restore` accepts: it is held in memory, with the tree it decodes to.
pub const MAX_RESTORE_BYTES: u64 = 2 << 30;
/// The liveness probe fails when the owner has not published for this long.
pub(crate) const LIVENESS_STALE_MS: i64 = 5_000;

/// Liveness and readiness URLs, on the AdminServer's port.
pub const LIVENESS_URL: &str = "/healthz";
pub const READINESS_URL: &str = "/readyz";

/// Starts the AdminServer and the metrics endpoint as configured. A port that cannot be
/// bound is logged and the server goes on without it, as ZooKeeper does.
pub(crate) fn start(ctx: &Arc<AdminContext>, to_owner: async_channel::Sender<ToOwner>) {
    let cfg = &ctx.config;
    if cfg.admin_enable_server {
        let addr = std::net::SocketAddr::new(cfg.admin_server_address, cfg.admin_server_port);
        let idle = Duration::from_millis(cfg.admin_idle_timeout_ms);
        let c = ctx.clone();
        let handler: http::Handler =
            Arc::new(move |req: &HttpRequest, body: &mut http::Body| handle_admin(&c, &to_owner, req, body));
        if let Err(e) = http::spawn("admin", addr, idle, handler) {
            warn!("cannot start the AdminServer on {addr}: {e}; set admin.serverPort or admin.enableServer=false");
        }
    }
    if cfg.metrics_enabled {
        let addr = std::net::SocketAddr::new(cfg.metrics_http_host, cfg.metrics_http_port);
        let c = ctx.clone();
        let handler: http::Handler = Arc::new(move |req: &HttpRequest, _: &mut http::Body| handle_metrics(&c, req));
        if let Err(e) = http::spawn("metrics", addr, Duration::from_secs(30), handler) {
            warn!("cannot start the Prometheus metrics endpoint on {addr}: {e}; set metricsProvider.httpPort");
        }
    }
}

fn handle_metrics(ctx: &AdminContext, req: &HttpRequest) -> HttpResponse {
    if req.method == "POST" {
        return HttpResponse::text(405, "the metrics endpoint serves GET only\n");
    }
    if req.path != "/metrics" && req.path != "/" {
        return HttpResponse::text(404, "not found; metrics are at /metrics\n");
    }
    let figures = ProcessFigures {
        now_wall_ms: wall_ms(),
        open_file_descriptor_count: open_fds(),
        max_file_descriptor_count: max_fds(),
    };
    let body = metrics::render(&ctx.metrics, &figures);
    HttpResponse::new(200, "text/plain; version=0.0.4; charset=utf-8", body)
}

fn handle_admin(
    ctx: &AdminContext,
    to_owner: &async_channel::Sender<ToOwner>,
    req: &HttpRequest,
    body: &mut http::Body,
) -> HttpResponse {
    let base = ctx.config.admin_command_url.as_str();
    if req.path == LIVENESS_URL {
        return liveness(ctx);
    }
    if req.path == READINESS_URL {
        return readiness(ctx);
    }
    if req.path == base || req.path.strip_prefix(base) == Some("/") {
        return command_links(base);
    }
    let Some(name) = req.path.strip_prefix(base).and_then(|r| r.strip_prefix('/')) else {
        return HttpResponse::text(404, format!("not found; the commands are listed at {base}\n"));
    };
    // ZooKeeper answers 200 with the error in the body, for an unknown command too.
    let Some(command) = j::primary_name(name) else {
        return HttpResponse::json(200, &j::error(name, &format!("Unknown command: {name}")));
    };
    if !ctx.config.admin_commands.allows(command) {
        let why = format!(
            "{command} shows znode paths or session ids and is not in admin.commands.whitelist \
             (add it there to serve it)"
        );
        return HttpResponse::json(403, &j::error(command, &why));
    }
    if command == "restore" {
        return restore(ctx, to_owner, req, body);
    }
    if req.method == "POST" {
        return HttpResponse::json(405, &j::error(command, "only the restore command takes a POST"));
    }
    if command == "snapshot" {
        return snapshot(ctx, to_owner, req);
    }
    let value = if OWNER_COMMANDS.contains(&command) {
        ask_owner(ctx, to_owner, command)
    } else {
        local_command(ctx, command, req)
    };
    HttpResponse::json(200, &value)
}

fn dir_sizes(ctx: &AdminContext) -> DirSizes {
    DirSizes {
        data_dir: dir_size(&ctx.data_dir.join("version-2")),
        log_dir: dir_size(&ctx.data_log_dir.join("version-2")),
        fsync_threshold_exceed_count: 0,
    }
}

fn ask_owner(ctx: &AdminContext, to_owner: &async_channel::Sender<ToOwner>, command: &'static str) -> Value {
    let (reply, answer) = mpsc::sync_channel(1);
    let q = Query { command, dirs: dir_sizes(ctx), reply };
    if to_owner.send_blocking(ToOwner::Command(q)).is_err() {
        return j::error(command, "the server is shutting down");
    }
    answer
        .recv_timeout(OWNER_TIMEOUT)
        .unwrap_or_else(|_| j::error(command, "the server did not answer within 5 seconds"))
}

/// `/commands/snapshot[?streaming=true|false]` (ZooKeeper 3.9): a consistent snapshot of the
/// running server. Streaming (the default), the body is the snapshot file (Warren's format:
/// `warren snap-dump` reads it, `warren restore` installs it); otherwise it is saved in the
/// data directory like any snapshot. Both carry the `last_zxid` and `snapshot_size` headers.
/// Off unless `admin.snapshot.enabled` (503); the caller needs ALL on "/" (an `Authorization:
/// digest user:password` header, or the client address for `ip` ACLs; 401/403); one at a time
/// and at most one per `admin.rateLimiterIntervalInMS` (429).
fn snapshot(ctx: &AdminContext, to_owner: &async_channel::Sender<ToOwner>, req: &HttpRequest) -> HttpResponse {
    let command = "snapshot";
    let cfg = &ctx.config;
    if !cfg.admin_snapshot_enabled {
        return HttpResponse::json(
            503,
            &j::error(command, "the snapshot command is disabled; set admin.snapshot.enabled=true to serve it"),
        );
    }
    let streaming = req.param("streaming").is_none_or(|v| !v.eq_ignore_ascii_case("false"));
    let Ok(mut last) = ctx.snapshot_limiter.try_lock() else {
        return HttpResponse::json(429, &j::error(command, "another snapshot is being taken"));
    };
    let interval = Duration::from_millis(cfg.admin_rate_limiter_interval_ms);
    if last.is_some_and(|t| t.elapsed() < interval) {
        warn!("Snapshot request was rate limited");
        return HttpResponse::json(429, &j::error(command, "rate limited: admin.rateLimiterIntervalInMS"));
    }
    let auth = match caller_auth(command, req) {
        Ok(a) => a,
        Err(refusal) => return refusal,
    };
    let (reply, answer) = mpsc::sync_channel(1);
    if to_owner
        .send_blocking(ToOwner::Snapshot(SnapshotQuery { auth, credentials: req.authorization.is_some(), reply }))
        .is_err()
    {
        return HttpResponse::json(503, &j::error(command, "the server is shutting down"));
    }
    let capture = match answer.recv_timeout(CAPTURE_TIMEOUT) {
        Ok(Ok(c)) => c,
        Ok(Err(refusal)) => return refusal,
        Err(_) => return HttpResponse::json(500, &j::error(command, "the server did not finish the capture")),
    };
    let began = std::time::Instant::now();
    let zxid = capture.changes.zxid;
    let image = match crate::snap::backup::patch(&capture.image, &capture.changes) {
        Ok(x) => x,
        Err(e) => return HttpResponse::json(500, &j::error(command, &format!("the capture does not load: {e}"))),
    };
    *last = Some(std::time::Instant::now());
    tracing::info!(
        "snapshot command: {} bytes at zxid {zxid:#x} ({} transactions during the capture changed {} nodes; \
         patched in {} ms)",
        image.len(),
        capture.txns,
        capture.changes.nodes.len(),
        began.elapsed().as_millis()
    );
    let headers = vec![("last_zxid", format!("0x{zxid:x}")), ("snapshot_size", image.len().to_string())];
    let mut response = if streaming {
        HttpResponse::new(200, "application/octet-stream", image)
    } else {
        let dir = ctx.data_dir.join("version-2");
        if let Err(e) = crate::storage::snapshots::write(&crate::storage::RealDisk, &dir, zxid, &image) {
            return HttpResponse::json(500, &j::error(command, &format!("cannot write the snapshot: {e}")));
        }
        HttpResponse::json(200, &j::response(command, None, Map::new()))
    };
    response.headers = headers;
    response
}

/// Who the caller of the snapshot or restore command is: its address (for `ip` ACLs) and the
/// `Authorization: digest user:password` header's id.
fn caller_auth(command: &str, req: &HttpRequest) -> Result<crate::acl::AuthInfo, HttpResponse> {
    let mut auth = req.peer.map_or_else(crate::acl::AuthInfo::empty, crate::acl::AuthInfo::for_connection);
    if let Some(header) = &req.authorization {
        let (scheme, data) = header.split_once(' ').unwrap_or((header.as_str(), ""));
        if auth.add_auth(scheme, data.trim().as_bytes()).is_err() {
            return Err(HttpResponse::json(401, &j::error(command, &format!("unsupported authentication: {scheme}"))));
        }
    }
    Ok(auth)
}

/// `POST /commands/restore` (ZooKeeper 3.9): the body is a backup (`/commands/snapshot`'s
/// stream, `warren backup`'s file); the running standalone server replaces its tree and
/// sessions with the backup's, durably, and answers `last_zxid`, the zxid it now stands at.
/// Off unless `admin.restore.enabled` (503); refused on an ensemble member (409); the caller
/// needs ALL on "/" (401/403), checked before the upload is read; one at a time and at most
/// one per `admin.rateLimiterIntervalInMS` (429); a body that is not a whole, valid backup
/// is refused (400) before anything changes. Every client connection is closed, so clients
/// reconnect to the restored state (see `Owner::restore`).
fn restore(
    ctx: &AdminContext,
    to_owner: &async_channel::Sender<ToOwner>,
    req: &HttpRequest,
    body: &mut http::Body,
) -> HttpResponse {
    let command = "restore";
    let cfg = &ctx.config;
    let refuse = |status: u16, why: &str| HttpResponse::json(status, &j::error(command, why));
    if req.method != "POST" {
        return refuse(405, "restore takes a POST whose body is a backup (from /commands/snapshot or warren backup)");
    }
    if !cfg.admin_restore_enabled {
        return refuse(503, "the restore command is disabled; set admin.restore.enabled=true to serve it");
    }
    if cfg.ensemble.is_some() {
        return refuse(
            409,
            "restore is refused on an ensemble member: stop the ensemble, `warren restore FILE DATA_DIR` into one \
             member's emptied data directory, empty the others' (they catch up from it), and start them",
        );
    }
    let Ok(mut last) = ctx.restore_limiter.try_lock() else {
        return refuse(429, "another restore is running");
    };
    let interval = Duration::from_millis(cfg.admin_rate_limiter_interval_ms);
    if last.is_some_and(|t| t.elapsed() < interval) {
        warn!("Restore request was rate limited");
        return refuse(429, "rate limited: admin.rateLimiterIntervalInMS");
    }
    let auth = match caller_auth(command, req) {
        Ok(a) => a,
        Err(refusal) => return refusal,
    };
    let credentials = req.authorization.is_some();
    let ask = |step: RestoreStep| {
        let q = RestoreQuery { auth: auth.clone(), credentials, step };
        to_owner.send_blocking(ToOwner::Restore(q)).map_err(|_| refuse(503, "the server is shutting down"))
    };
    let (reply, answer) = mpsc::sync_channel(1);
    if let Err(refusal) = ask(RestoreStep::Check(reply)) {
        return refusal;
    }
    let current = match answer.recv_timeout(OWNER_TIMEOUT) {
        Ok(Ok(z)) => z,
        Ok(Err(refusal)) => return refusal,
        Err(_) => return refuse(500, "the server did not answer within 5 seconds"),
    };
    let began = std::time::Instant::now();
    let image = match body(MAX_RESTORE_BYTES) {
        Ok(b) => b,
        Err(refusal) => return refusal,
    };
    let backup = match crate::snap::backup::check(&image) {
        Ok(l) => l,
        Err(e) => {
            warn!("restore refused: the body ({} bytes) is not a usable backup: {e}", image.len());
            return refuse(400, &format!("the body is not a usable backup: {e}; nothing was changed"));
        }
    };
    drop(image);
    let backup_zxid = backup.start_zxid;
    let Some(zxid) = crate::snap::backup::restored_zxid(current, backup_zxid) else {
        return refuse(500, "no epoch is left above the server's and the backup's zxids");
    };
    let (nodes, sessions) = (backup.tree.node_count(), backup.sessions.len());
    let image = crate::snap::encode_tree(&backup.tree, &backup.sessions, zxid);
    let (reply, answer) = mpsc::sync_channel(1);
    if let Err(refusal) = ask(RestoreStep::Install(Box::new(Install { backup, zxid, image }), reply)) {
        return refusal;
    }
    match answer.recv_timeout(RESTORE_TIMEOUT) {
        Ok(Ok(())) => {}
        Ok(Err(refusal)) => return refusal,
        Err(_) => return refuse(500, "the server did not finish the restore"),
    }
    *last = Some(std::time::Instant::now());
    tracing::info!(
        "restore command: backup at zxid {backup_zxid:#x} ({nodes} nodes, {sessions} sessions) installed as zxid \
         {zxid:#x} in {} ms",
        began.elapsed().as_millis()
    );
    let mut f = Map::new();
    f.insert("last_zxid".into(), zxid.into());
    f.insert("backup_zxid".into(), backup_zxid.into());
    f.insert("node_count".into(), nodes.into());
    f.insert("session_count".into(), sessions.into());
    HttpResponse::json(200, &j::response(command, None, f))
}

/// Commands answered from the configuration and the file system.
fn local_command(ctx: &AdminContext, command: &'static str, req: &HttpRequest) -> Value {
    let cfg = &ctx.config;
    let mut f = Map::new();
    match command {
        "ruok" => {}
        "configuration" => {
            let server_id = cfg.ensemble.as_ref().map_or(0, |e| e.myid as i64);
            f = json!({
                "client_port": cfg.client_port,
                "data_dir": ctx.data_dir.join("version-2"),
                "data_log_dir": ctx.data_log_dir.join("version-2"),
                "tick_time": cfg.tick_time_ms,
                "max_client_cnxns": cfg.max_client_cnxns,
                "min_session_timeout": cfg.min_session_timeout_ms,
                "max_session_timeout": cfg.max_session_timeout_ms,
                "server_id": server_id,
                "client_port_listen_backlog": -1,
            })
            .as_object()
            .cloned()
            .unwrap_or_default();
        }
        "dirs" => {
            let d = dir_sizes(ctx);
            f.insert("datadir_size".into(), d.data_dir.into());
            f.insert("logdir_size".into(), d.log_dir.into());
        }
        "environment" => f = j::environment(&crate::admin::EnvInfo::new(ctx.version.clone())),
        "system_properties" => {
            for (k, v) in crate::admin::EnvInfo::new(ctx.version.clone()).entries() {
                if k.starts_with("java.") || k.starts_with("os.") || k.starts_with("user.") {
                    f.insert(k.to_string(), v.into());
                }
            }
        }
        "get_trace_mask" => {
            f.insert("tracemask".into(), 0.into());
        }
        "set_trace_mask" => {
            // ZooKeeper's argument checks first, then the honest answer: there is no mask.
            return match req.param("traceMask") {
                None => j::error(command, "setTraceMask requires long traceMask argument"),
                Some(v) if v.parse::<i64>().is_err() => {
                    j::error(command, &format!("setTraceMask requires long traceMask argument, got {v}"))
                }
                Some(_) => j::error(command, "Warren has no trace logging; use WARREN_LOG to choose what is logged"),
            };
        }
        "hash" => {
            // As a ZooKeeper with digest.enabled=false: Warren keeps no tree digests.
            f.insert("digests".into(), Value::Array(Vec::new()));
        }
        "initial_configuration" => {
            f.insert("initial_configuration".into(), ctx.initial_config.clone().map_or(Value::Null, Value::from));
        }
        "last_snapshot" => {
            let (zxid, ts) = last_snapshot(&ctx.data_dir.join("version-2"));
            f.insert("zxid".into(), format!("{zxid:x}").into());
            f.insert("timestamp".into(), ts.into());
        }
        "voting_view" => {
            let mut view = Map::new();
            if let Some(e) = &cfg.ensemble {
                for m in &e.members {
                    let role = if m.role == crate::config::PeerRole::Observer { "observer" } else { "participant" };
                    let client = m.client_addr.as_ref().map_or(String::new(), |(h, p)| format!(";{h}:{p}"));
                    view.insert(
                        m.id.to_string(),
                        format!("{}:{}:{}:{role}{client}", m.host, m.quorum_port, m.election_port).into(),
                    );
                }
            }
            f.insert("current_config".into(), Value::Object(view));
        }
        "observer_connection_stat_reset" => {}
        other => return j::error(other, "unknown command"),
    }
    j::response(command, None, f)
}

/// The newest snapshot's zxid and modification time (seconds, as ZooKeeper's SnapshotInfo),
/// or (-1, -1) as ZooKeeper answers before its first snapshot.
fn last_snapshot(dir: &std::path::Path) -> (i64, i64) {
    use crate::storage::{snapshots, RealDisk};
    let newest = snapshots::list(&RealDisk, dir).unwrap_or_default().into_iter().find_map(|(zxid, path)| {
        let mtime = std::fs::metadata(&path).ok()?.modified().ok()?;
        Some((zxid, mtime.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64))
    });
    newest.unwrap_or((-1, -1))
}

/// `/commands`: links to every command, as ZooKeeper's AdminServer lists them.
fn command_links(base: &str) -> HttpResponse {
    let mut names: Vec<&str> = j::COMMANDS.iter().map(|(p, _)| *p).collect();
    names.sort_unstable();
    let mut body = String::new();
    for n in names {
        body.push_str(&format!("<a href=\"{base}/{n}\">{n}</a>\n<br/>\n"));
    }
    HttpResponse::new(200, "text/html; charset=utf-8", body)
}

/// Alive while the owner keeps publishing: a stalled owner fails the probe.
fn liveness(ctx: &AdminContext) -> HttpResponse {
    let age = wall_ms() - ctx.metrics.heartbeat_wall_ms.get();
    let alive = age <= LIVENESS_STALE_MS;
    HttpResponse::json(if alive { 200 } else { 503 }, &json!({"alive": alive, "owner_heartbeat_age_ms": age}))
}

/// Ready when serving clients: standalone once running, in an ensemble once synced with a
/// leader (or leading a synced quorum). A member in read-only mode is not ready (it has no
/// quorum and refuses ordinary clients); its mode says `read-only`.
fn readiness(ctx: &AdminContext) -> HttpResponse {
    let m = &ctx.metrics;
    let alive = wall_ms() - m.heartbeat_wall_ms.get() <= LIVENESS_STALE_MS;
    let serving = m.serving.get() == 1 && alive;
    let mode = match (ctx.config.ensemble.is_some(), m.is_leader.get() == 1) {
        (false, _) => "standalone",
        (true, true) => "leader",
        (true, false) if serving => "follower",
        (true, false) if m.read_only.get() == 1 => "read-only",
        (true, false) => "not serving",
    };
    let body = json!({"ready": serving, "mode": mode, "read_only": m.read_only.get() == 1, "zxid": format!("0x{:x}", m.last_zxid.get())});
    HttpResponse::json(if serving { 200 } else { 503 }, &body)
}
