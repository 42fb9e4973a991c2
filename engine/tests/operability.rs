//! What an operator and the service manager see of the `warren` binary: the version and build
//! date (`warren version`, `srvr`).

mod common;

use std::process::Command;

use common::Server;

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
