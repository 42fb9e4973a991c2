//! The AdminServer's JSON answers, shaped as ZooKeeper 3.8's (`admin/Commands.java` serialised
//! by Jackson with snake_case names): every answer is an object with `command` and `error`
//! first, then the command's fields. Pure functions over the figures `admin` already gathers
//! for the four-letter words, so both interfaces report the same numbers.

use serde_json::{json, Map, Value};

use crate::admin::{ConnectionStats, DumpInfo, EnvInfo, MetricValue, ServerStats, SessionDump, WatchSummary};

/// Every command: primary name, aliases, whether it needs a running server, and whether
/// Warren answers it. Names and aliases as ZooKeeper 3.8 registers them.
pub const COMMANDS: &[(&str, &[&str])] = &[
    ("configuration", &["conf", "config"]),
    ("connection_stat_reset", &["crst"]),
    ("connections", &["cons"]),
    ("dirs", &[]),
    ("dump", &[]),
    ("environment", &["env", "envi"]),
    ("get_trace_mask", &["gtmk"]),
    ("hash", &[]),
    ("initial_configuration", &["icfg"]),
    ("is_read_only", &["isro"]),
    ("last_snapshot", &["lsnp"]),
    ("leader", &["lead"]),
    ("monitor", &["mntr"]),
    ("observer_connection_stat_reset", &["orst"]),
    ("observers", &["obsr"]),
    // ZooKeeper 3.9 (online restore, POST); off unless admin.restore.enabled.
    ("restore", &["rest"]),
    ("ruok", &[]),
    ("server_stats", &["srvr"]),
    ("set_trace_mask", &["stmk"]),
    // ZooKeeper 3.9 (online backup); off unless admin.snapshot.enabled.
    ("snapshot", &["snap"]),
    ("stat_reset", &["srst"]),
    ("stats", &["stat"]),
    ("system_properties", &["sysp"]),
    ("voting_view", &[]),
    ("watch_summary", &["wchs"]),
    ("watches", &["wchc"]),
    ("watches_by_path", &["wchp"]),
    ("zabstate", &[]),
];

/// The primary name of a command or alias.
pub fn primary_name(name: &str) -> Option<&'static str> {
    COMMANDS.iter().find(|(p, aliases)| *p == name || aliases.contains(&name)).map(|(p, _)| *p)
}

/// `{"command": name, "error": error, ...fields}`.
pub fn response(command: &str, error: Option<&str>, fields: Map<String, Value>) -> Value {
    let mut m = Map::new();
    m.insert("command".into(), Value::from(command));
    m.insert("error".into(), error.map_or(Value::Null, Value::from));
    m.extend(fields);
    Value::Object(m)
}

/// An answer carrying only an error, as ZooKeeper gives for an unknown command or a server
/// that is not serving.
pub fn error(command: &str, error: &str) -> Value {
    response(command, Some(error), Map::new())
}

fn metric(v: &MetricValue) -> Value {
    match v {
        MetricValue::Int(i) => Value::from(*i),
        MetricValue::Float(f) => Value::from(*f),
        MetricValue::Text(t) => Value::from(t.as_str()),
    }
}

/// `monitor`: `mntr`'s pairs without the `zk_` prefix.
pub fn monitor(stats: &ServerStats) -> Map<String, Value> {
    crate::admin::mntr_entries(stats).into_iter().map(|(k, v)| (k, metric(&v))).collect()
}

/// `ServerCnxn.getConnectionInfo(brief)`.
pub fn connection_info(c: &ConnectionStats, brief: bool) -> Value {
    let mut m = Map::new();
    m.insert("remote_socket_address".into(), Value::from(format!("{}:{}", c.remote.ip(), c.remote.port())));
    m.insert("interest_ops".into(), Value::from(c.interest_ops));
    m.insert("outstanding_requests".into(), Value::from(c.queued));
    m.insert("packets_received".into(), Value::from(c.received));
    m.insert("packets_sent".into(), Value::from(c.sent));
    if !brief {
        m.insert("session_id".into(), Value::from(c.session_id));
        m.insert("last_operation".into(), Value::from(c.last_op.as_str()));
        // A java.util.Date, which Jackson writes as milliseconds since the epoch.
        m.insert("established".into(), Value::from(c.established_ms));
        m.insert("session_timeout".into(), Value::from(c.session_timeout_ms));
        m.insert("last_cxid".into(), Value::from(c.last_cxid));
        m.insert("last_zxid".into(), Value::from(c.last_zxid));
        m.insert("last_response_time".into(), Value::from(c.last_response_time_ms));
        m.insert("last_latency".into(), Value::from(c.last_latency_ms));
        m.insert("min_latency".into(), Value::from(c.min_latency_ms));
        m.insert("avg_latency".into(), Value::from(c.avg_latency_ms));
        m.insert("max_latency".into(), Value::from(c.max_latency_ms));
    }
    Value::Object(m)
}

/// Figures `server_stats` shows that `ServerStats` does not carry.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirSizes {
    pub data_dir: u64,
    pub log_dir: u64,
    pub fsync_threshold_exceed_count: u64,
}

/// `server_stats` (`srvr`): the version, `ServerStats` as Jackson writes it, the client
/// response sizes, the node count, and the leader's proposal sizes.
pub fn server_stats(stats: &ServerStats, dirs: DirSizes) -> Map<String, Value> {
    let buffer = |last: i64, min: i64, max: i64| json!({"last_buffer_size": last, "min_buffer_size": min, "max_buffer_size": max});
    let client_response =
        buffer(stats.last_client_response_size, stats.min_client_response_size, stats.max_client_response_size);
    let mut m = Map::new();
    m.insert("version".into(), Value::from(stats.version.as_str()));
    m.insert("read_only".into(), Value::from(stats.read_only));
    m.insert(
        "server_stats".into(),
        json!({
            "packets_sent": stats.packets_sent,
            "packets_received": stats.packets_received,
            "fsync_threshold_exceed_count": dirs.fsync_threshold_exceed_count,
            "client_response_stats": client_response.clone(),
            "server_state": stats.mode,
            "provider_null": false,
            "data_dir_size": dirs.data_dir,
            "log_dir_size": dirs.log_dir,
            "last_processed_zxid": stats.zxid,
            "outstanding_requests": stats.outstanding_requests,
            "avg_latency": stats.latency_avg_ms,
            "max_latency": stats.latency_max_ms,
            "min_latency": stats.latency_min_ms,
            "num_alive_client_connections": stats.num_alive_connections,
            "auth_failed_count": stats.auth_failed_count,
            "non_mtlsremote_conn_count": stats.non_mtls_remote_conn_count,
            "non_mtlslocal_conn_count": stats.non_mtls_local_conn_count,
            "uptime": stats.uptime_ms,
        }),
    );
    m.insert("client_response".into(), client_response);
    if let Some(l) = stats.leader.as_ref().filter(|_| stats.mode == "leader") {
        m.insert("proposal_stats".into(), buffer(l.last_proposal_size, l.min_proposal_size, l.max_proposal_size));
    }
    m.insert("node_count".into(), Value::from(stats.node_count));
    m
}

/// `stats` (`stat`): `server_stats` plus every connection in brief form.
pub fn stats(stats: &ServerStats, dirs: DirSizes) -> Map<String, Value> {
    let mut m = server_stats(stats, dirs);
    m.insert("connections".into(), stats.connections.iter().map(|c| connection_info(c, true)).collect());
    m.insert("secure_connections".into(), Value::Array(Vec::new()));
    m
}

/// `connections` (`cons`): every connection in full form.
pub fn connections(conns: &[ConnectionStats]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("connections".into(), conns.iter().map(|c| connection_info(c, false)).collect());
    m.insert("secure_connections".into(), Value::Array(Vec::new()));
    m
}

/// `dump`: expiry time → session ids, session id → ephemeral paths (Jackson writes map keys
/// as strings).
pub fn dump(info: &DumpInfo) -> Map<String, Value> {
    let mut expiry = Map::new();
    match &info.sessions {
        SessionDump::Standalone(buckets) => {
            for b in buckets {
                expiry.insert(b.expire_at_ms.to_string(), b.session_ids.iter().copied().collect());
            }
        }
        SessionDump::Quorum { local, global } => {
            for b in local.iter().flatten() {
                expiry.insert(b.expire_at_ms.to_string(), b.session_ids.iter().copied().collect());
            }
            // Global sessions of a quorum tracker have no expiry bucket here; list them under 0.
            if !global.is_empty() {
                expiry.insert("0".into(), global.iter().map(|(sid, _)| *sid).collect());
            }
        }
    }
    let ephemerals: Map<String, Value> =
        info.ephemerals.iter().map(|(sid, paths)| (sid.to_string(), paths.iter().cloned().collect())).collect();
    let mut m = Map::new();
    m.insert("expiry_time_to_session_ids".into(), Value::Object(expiry));
    m.insert("session_id_to_ephemeral_paths".into(), Value::Object(ephemerals));
    m
}

/// `watches` (`wchc`).
pub fn watches(by_session: &[(i64, Vec<String>)]) -> Map<String, Value> {
    let map: Map<String, Value> =
        by_session.iter().map(|(sid, paths)| (sid.to_string(), paths.iter().cloned().collect())).collect();
    let mut m = Map::new();
    m.insert("session_id_to_watched_paths".into(), Value::Object(map));
    m
}

/// `watches_by_path` (`wchp`).
pub fn watches_by_path(by_path: &[(String, Vec<i64>)]) -> Map<String, Value> {
    let map: Map<String, Value> = by_path.iter().map(|(p, sids)| (p.clone(), sids.iter().copied().collect())).collect();
    let mut m = Map::new();
    m.insert("path_to_session_ids".into(), Value::Object(map));
    m
}

/// `watch_summary` (`wchs`).
pub fn watch_summary(s: &WatchSummary) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("num_connections".into(), Value::from(s.connections));
    m.insert("num_paths".into(), Value::from(s.paths));
    m.insert("num_total_watches".into(), Value::from(s.total_watches));
    m
}

/// `environment`.
pub fn environment(env: &EnvInfo) -> Map<String, Value> {
    env.entries().into_iter().map(|(k, v)| (k.to_string(), Value::from(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_to_primary_names() {
        assert_eq!(primary_name("mntr"), Some("monitor"));
        assert_eq!(primary_name("monitor"), Some("monitor"));
        assert_eq!(primary_name("conf"), Some("configuration"));
        assert_eq!(primary_name("nope"), None);
    }

    #[test]
    fn responses_start_with_command_and_error() {
        let v = error("nope", "Unknown command: nope");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["command", "error"]);
        assert_eq!(v["error"], "Unknown command: nope");
        let ok = response("ruok", None, Map::new());
        assert_eq!(ok, json!({"command": "ruok", "error": null}));
    }

    #[test]
    fn monitor_keeps_mntr_types() {
        let s = ServerStats { node_count: 5, latency_avg_ms: 0.5, version: "v".into(), ..Default::default() };
        let m = monitor(&s);
        assert_eq!(m["znode_count"], 5);
        assert_eq!(m["avg_latency"], 0.5);
        assert_eq!(m["version"], "v");
        assert_eq!(m["server_state"], "standalone");
    }

    #[test]
    fn dump_and_watches_use_string_keys() {
        let info = DumpInfo {
            sessions: SessionDump::Standalone(vec![crate::admin::ExpiryBucket {
                expire_at_ms: 42,
                session_ids: vec![7],
            }]),
            ephemerals: vec![(7, vec!["/e".into()])],
            connections: None,
        };
        let d = dump(&info);
        assert_eq!(d["expiry_time_to_session_ids"], json!({"42": [7]}));
        assert_eq!(d["session_id_to_ephemeral_paths"], json!({"7": ["/e"]}));
        assert_eq!(watches(&[(7, vec!["/a".into()])])["session_id_to_watched_paths"], json!({"7": ["/a"]}));
        assert_eq!(watches_by_path(&[("/a".into(), vec![7])])["path_to_session_ids"], json!({"/a": [7]}));
    }
}
