//! Stamps the `warren` binary with its build date and git commit, for `warren version` and
//! the `srvr` / `stat` version line (`WARREN_BUILD_DATE`, `WARREN_GIT_COMMIT`).
//!
//! Both come from the commit, never the clock (see `src/build_info.rs`), so this script runs
//! again only when `SOURCE_DATE_EPOCH` changes or HEAD moves: it watches the files git
//! changes then (HEAD, the branch's ref, packed-refs), not the sources.

#[path = "src/build_info.rs"]
mod build_info;

use std::path::PathBuf;
use std::process::Command;

/// A git command's trimmed output; None when git is missing, fails or prints nothing (a
/// source tree without `.git`, or one git refuses to read as this user).
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// An absolute path of a file inside the git directory. Works in a linked worktree too, where
/// HEAD lives in the worktree's own git directory and the refs in the common one.
fn git_path(name: &str) -> Option<PathBuf> {
    git(&["rev-parse", "--path-format=absolute", "--git-path", name]).map(PathBuf::from)
}

/// The files whose change means another commit is checked out. Only existing files: cargo
/// reruns a build script on every build while a watched path is missing.
fn watched_git_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["HEAD", "packed-refs"].into_iter().filter_map(git_path).collect();
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        files.extend(git_path(&branch));
    }
    files.retain(|p| p.is_file());
    files
}

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    for f in watched_git_files() {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
    let commit_secs = git(&["log", "-1", "--format=%ct"]);
    let date = build_info::build_date(epoch.as_deref(), commit_secs.as_deref());
    if date == build_info::UNKNOWN {
        println!(
            "cargo:warning=no build date: SOURCE_DATE_EPOCH unset or invalid and no git commit; reporting \"{date}\""
        );
    }
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| build_info::UNKNOWN.to_string());
    println!("cargo:rustc-env=WARREN_BUILD_DATE={date}");
    println!("cargo:rustc-env=WARREN_GIT_COMMIT={commit}");
}
