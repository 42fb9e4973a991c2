//! The simulator's linearizability checker (`sim/lin.rs`, included, not copied) applied to a
//! history recorded from real processes by the chaos harness (`tests/chaos/`).
//!
//!   WARREN_CHAOS_HISTORY=run/history.jsonl cargo test --release -p warren --test chaos_history \
//!       recorded_history -- --nocapture
//!
//! prints one line `chaos-check {json summary}` and fails with the violation (rule, detail, the
//! ops involved) if the history breaks ZooKeeper's guarantees as `lin.rs` states them. Without
//! the variable that test does nothing; the other tests check the reader and that the checker
//! rejects doctored histories in this format.
//!
//! # Format (JSON lines, written by `tests/chaos/workload.py`)
//! ```text
//! {"type":"init","key":"/r0","value":"init"}
//! {"type":"op","id":7,"session":"0x1000...","f":"write"|"cas"|"read"|"sync","key":"/r0",
//!  "value":"c1-7" (write, cas),"expected_version":3 (cas),
//!  "invoke":123456,"complete":123999|null (microseconds, one monotonic clock),
//!  "outcome":"ok"|"fail"|"unknown",
//!  "version":4,"zxid":4294967301 (ok; a read's zxid is the reply header's),
//!  "read_value":"c0-3" (ok read), "code":-103 (fail: only BadVersion is a definite failure)}
//! ```
//! Other record types (the harness also logs faults and sequential creates) are skipped. Each
//! session's ops must appear in issue order; the harness sorts by invocation time.

#[path = "sim/lin.rs"]
mod lin;

use lin::{Call, History, Op, Options, Ret};
use serde_json::Value;

const BAD_VERSION: i64 = -103;

fn field<'a>(rec: &'a Value, name: &str, line: usize) -> Result<&'a Value, String> {
    rec.get(name).filter(|v| !v.is_null()).ok_or_else(|| format!("line {line}: no {name:?}"))
}

fn text(rec: &Value, name: &str, line: usize) -> Result<String, String> {
    field(rec, name, line)?.as_str().map(str::to_string).ok_or_else(|| format!("line {line}: {name:?} not a string"))
}

fn int(rec: &Value, name: &str, line: usize) -> Result<i64, String> {
    field(rec, name, line)?.as_i64().ok_or_else(|| format!("line {line}: {name:?} not an integer"))
}

fn session_id(rec: &Value, line: usize) -> Result<u64, String> {
    let s = text(rec, "session", line)?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("line {line}: session {s:?}: {e}"))
}

fn parse_op(rec: &Value, line: usize) -> Result<Op, String> {
    let key = text(rec, "key", line)?;
    let f = text(rec, "f", line)?;
    let call = match f.as_str() {
        "write" => Call::Write { key, value: text(rec, "value", line)?.into_bytes() },
        "cas" => Call::Cas {
            key,
            expected_version: int(rec, "expected_version", line)? as i32,
            value: text(rec, "value", line)?.into_bytes(),
        },
        "read" => Call::Read { key },
        "sync" => Call::Sync { key },
        other => return Err(format!("line {line}: unknown f {other:?}")),
    };
    let outcome = text(rec, "outcome", line)?;
    let ret = match (outcome.as_str(), &call) {
        ("unknown", _) => None,
        ("fail", Call::Cas { .. }) if int(rec, "code", line)? == BAD_VERSION => {
            Some(Ret::BadVersion { zxid: rec.get("zxid").and_then(Value::as_i64) })
        }
        ("ok", Call::Write { .. } | Call::Cas { .. }) => {
            Some(Ret::Written { version: int(rec, "version", line)? as i32, zxid: int(rec, "zxid", line)? })
        }
        ("ok", Call::Read { .. }) => Some(Ret::Read {
            value: text(rec, "read_value", line)?.into_bytes(),
            version: int(rec, "version", line)? as i32,
            zxid: int(rec, "zxid", line)?,
        }),
        ("ok", Call::Sync { .. }) => Some(Ret::Synced { zxid: int(rec, "zxid", line)? }),
        _ => return Err(format!("line {line}: outcome {outcome:?} not possible for {f}")),
    };
    let complete = match ret {
        None => None,
        Some(_) => Some(int(rec, "complete", line)? as u64),
    };
    Ok(Op {
        id: int(rec, "id", line)? as u64,
        session: session_id(rec, line)?,
        call,
        invoke: int(rec, "invoke", line)? as u64,
        complete,
        ret,
    })
}

/// Reads the JSON-lines history; a line that is not JSON or an op record with missing fields is
/// an error (a silently dropped op could hide a violation).
fn parse_history(jsonl: &str) -> Result<History, String> {
    let mut history = History::default();
    for (i, raw) in jsonl.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let rec: Value = serde_json::from_str(raw).map_err(|e| format!("line {line}: {e}"))?;
        match rec.get("type").and_then(Value::as_str) {
            Some("init") => {
                history.initial.insert(text(&rec, "key", line)?, text(&rec, "value", line)?.into_bytes());
            }
            Some("op") => history.ops.push(parse_op(&rec, line)?),
            _ => {}
        }
    }
    Ok(history)
}

/// ZooKeeper's guarantees as `lin.rs` states them, with the read-zxid bracket on: the harness
/// records the reply header's zxid for reads.
fn check(jsonl: &str) -> Result<lin::Summary, String> {
    let history = parse_history(jsonl)?;
    let report = lin::check(&history, &Options::default());
    report.result.map(|()| report.summary.clone()).map_err(|v| format!("{v}\nsummary: {:?}", report.summary))
}

#[test]
fn recorded_history() {
    let Some(path) = std::env::var_os("WARREN_CHAOS_HISTORY") else {
        println!("WARREN_CHAOS_HISTORY not set: nothing to check");
        return;
    };
    let jsonl = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    match check(&jsonl) {
        Ok(s) => println!(
            "chaos-check {}",
            serde_json::json!({
                "ok": true, "ops": s.ops, "keys": s.keys, "writes": s.writes, "reads": s.reads,
                "syncs": s.syncs, "indeterminate": s.indeterminate, "states_explored": s.states_explored,
            })
        ),
        Err(violation) => {
            println!("chaos-check {}", serde_json::json!({ "ok": false, "violation": violation }));
            panic!("{path:?} is not linearizable:\n{violation}");
        }
    }
}

// ---- the reader and the checker on doctored histories --------------------------------------

const S1: &str = "0x100";
const S2: &str = "0x200";

fn init(key: &str) -> String {
    format!(r#"{{"type":"init","key":"{key}","value":"init"}}"#)
}

fn write(id: u64, session: &str, value: &str, t: (u64, u64), version: i32, zxid: i64) -> String {
    format!(
        r#"{{"type":"op","id":{id},"session":"{session}","f":"write","key":"/r0","value":"{value}","invoke":{},"complete":{},"outcome":"ok","version":{version},"zxid":{zxid}}}"#,
        t.0, t.1
    )
}

fn read(id: u64, session: &str, value: &str, t: (u64, u64), version: i32, zxid: i64) -> String {
    format!(
        r#"{{"type":"op","id":{id},"session":"{session}","f":"read","key":"/r0","invoke":{},"complete":{},"outcome":"ok","version":{version},"zxid":{zxid},"read_value":"{value}"}}"#,
        t.0, t.1
    )
}

fn sync(id: u64, session: &str, t: (u64, u64), zxid: i64) -> String {
    format!(
        r#"{{"type":"op","id":{id},"session":"{session}","f":"sync","key":"/r0","invoke":{},"complete":{},"outcome":"ok","zxid":{zxid}}}"#,
        t.0, t.1
    )
}

fn lines(records: &[String]) -> String {
    records.join("\n")
}

#[test]
fn good_history_passes() {
    let h = lines(&[
        init("/r0"),
        write(1, S1, "a", (10, 20), 1, 5),
        // Another session may lag behind (sequential consistency), then catch up.
        read(2, S2, "init", (30, 40), 0, 4),
        read(3, S2, "a", (50, 60), 1, 5),
        r#"{"type":"op","id":4,"session":"0x100","f":"cas","key":"/r0","value":"b","expected_version":1,"invoke":70,"complete":80,"outcome":"ok","version":2,"zxid":6}"#.into(),
        r#"{"type":"op","id":5,"session":"0x200","f":"cas","key":"/r0","value":"c","expected_version":1,"invoke":90,"complete":95,"outcome":"fail","code":-103,"zxid":6}"#.into(),
        r#"{"type":"op","id":6,"session":"0x200","f":"write","key":"/r0","value":"d","invoke":100,"complete":null,"outcome":"unknown"}"#.into(),
        r#"{"type":"fault","kind":"pause","node":1}"#.into(),
    ]);
    let s = check(&h).unwrap();
    assert_eq!((s.ops, s.writes, s.reads, s.indeterminate), (6, 4, 2, 1));
}

#[test]
fn stale_read_in_own_session_is_rejected() {
    let h = lines(&[init("/r0"), write(1, S1, "a", (10, 20), 1, 5), read(2, S1, "init", (30, 40), 0, 5)]);
    let err = check(&h).unwrap_err();
    assert!(err.starts_with("ReadMissedOwnWrite"), "{err}");
}

#[test]
fn stale_read_after_sync_is_rejected() {
    let h = lines(&[
        init("/r0"),
        write(1, S1, "a", (10, 20), 1, 5),
        sync(2, S2, (30, 40), 5),
        read(3, S2, "init", (50, 60), 0, 5),
    ]);
    let err = check(&h).unwrap_err();
    assert!(err.starts_with("ReadMissedSyncedWrite"), "{err}");
}

#[test]
fn lost_acknowledged_write_is_rejected() {
    // Two acknowledged writes claim version 1: one of them was lost (e.g. a leader that acked
    // before a quorum had it, then lost it in an election).
    let h = lines(&[init("/r0"), write(1, S1, "a", (10, 20), 1, 5), write(2, S2, "b", (30, 40), 1, 0x1_0000_0001)]);
    let err = check(&h).unwrap_err();
    assert!(err.starts_with("DuplicateVersion"), "{err}");
}

#[test]
fn malformed_lines_are_errors() {
    assert!(check("{not json").unwrap_err().contains("line 1"));
    let missing =
        r#"{"type":"op","id":1,"session":"0x1","f":"read","key":"/r0","invoke":1,"complete":2,"outcome":"ok"}"#;
    assert!(check(&lines(&[init("/r0"), missing.into()])).unwrap_err().starts_with("line 2: no"));
}
