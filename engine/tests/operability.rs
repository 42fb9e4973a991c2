//! What an operator and the service manager see of the `warren` binary: the version and build
//! date (`warren version`, `srvr`), the log format.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Server, START_TIMEOUT};

fn warren(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_warren")).args(args).output().unwrap()
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// The version line the binary must report: the date computed as `build.rs` does.
fn expected_version_line() -> String {
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let date = warren::build_info::build_date(epoch.as_deref(), git(&["log", "-1", "--format=%ct"]).as_deref());
    warren::admin::full_version(env!("CARGO_PKG_VERSION"), &date)
}

/// `yyyy-MM-dd HH:mm UTC`, ZooKeeper's form.
fn is_zookeeper_date(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 20
        && s.ends_with(" UTC")
        && b.iter().take(16).enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn version_prints_the_build_date_and_commit() {
    let out = warren(&["version"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    assert_eq!(first, expected_version_line());
    let date = first.split(", built on ").nth(1).unwrap_or_default();
    if git(&["rev-parse", "HEAD"]).is_some() || std::env::var_os("SOURCE_DATE_EPOCH").is_some() {
        assert!(is_zookeeper_date(date), "build date {date:?} is not yyyy-MM-dd HH:mm UTC");
    }
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    assert_eq!(lines.next(), Some(format!("git commit: {commit}").as_str()));
    assert_eq!(lines.next(), None);
}

#[test]
fn srvr_and_stat_report_the_build_date() {
    let server = Server::start(&[]);
    let want = format!("Zookeeper version: {}\n", expected_version_line());
    for word in ["srvr", "stat"] {
        let text = server.four_letter(word).unwrap_or_default();
        assert!(text.starts_with(&want), "{word}: {text:?}, expected it to start with {want:?}");
    }
}

#[test]
fn date_check_accepts_only_zookeepers_form() {
    assert!(is_zookeeper_date("2022-02-25 08:49 UTC"));
    assert!(!is_zookeeper_date("unknown"));
    assert!(!is_zookeeper_date("2022-02-25T08:49 UTC"));
    assert!(!is_zookeeper_date("2022-02-25 08:49 GMT"));
}

/// Runs `warren start-foreground` on a fresh dataDir and free port with `env` set and `extra`
/// zoo.cfg lines, until it answers `ruok` (or START_TIMEOUT passes), then kills it. Returns
/// whether it answered, and its stderr.
fn run_until_ruok(dir: &Path, env: &[(&str, &str)], extra: &str) -> (bool, String) {
    let port = free_port();
    let cfg = dir.join("zoo.cfg");
    let text = format!(
        "tickTime=1000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n{extra}",
        dir.join("data").display()
    );
    std::fs::write(&cfg, text).unwrap();
    let log = dir.join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("start-foreground")
        .arg(&cfg)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    let mut up = false;
    while !up && Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        up = common::four_letter(addr, "ruok").as_deref() == Some("imok");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    (up, std::fs::read_to_string(&log).unwrap())
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    // An unknown key: a warning besides the info lines.
    let (up, log) = run_until_ruok(dir.path(), &[("WARREN_LOG_FORMAT", "json"), ("WARREN_LOG", "info")], "oddKey=1\n");
    assert!(up, "did not serve:\n{log}");
    let mut levels = std::collections::BTreeSet::new();
    let mut bound = false;
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\nwhole log:\n{log}"));
        let obj = v.as_object().unwrap_or_else(|| panic!("not an object: {line:?}"));
        for key in ["timestamp", "level", "message"] {
            assert!(obj.get(key).is_some_and(|k| k.is_string()), "no string {key:?} in {line:?}");
        }
        levels.insert(obj["level"].as_str().unwrap_or_default().to_string());
        bound |= obj["message"].as_str().unwrap_or_default().starts_with("binding to port");
    }
    assert!(bound, "no 'binding to port' line:\n{log}");
    assert!(levels.contains("INFO") && levels.contains("WARN"), "levels {levels:?}:\n{log}");
}

#[test]
fn text_log_format_is_the_default_and_a_bad_format_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (up, log) = run_until_ruok(dir.path(), &[("WARREN_LOG_FORMAT", "yaml"), ("WARREN_LOG", "info")], "");
    assert!(up, "did not serve:\n{log}");
    assert!(log.contains("WARREN_LOG_FORMAT=\"yaml\" is neither"), "{log}");
    assert!(log.lines().all(|l| !l.starts_with('{')), "{log}");
    assert!(log.contains("INFO binding to port"), "{log}");
}
