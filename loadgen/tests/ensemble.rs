//! End to end against real 3-node ensembles of Warren and of Apache ZooKeeper 3.8 (Debian's
//! package, which ci/install-deps.sh installs): a leader kill with recovery figures, and cleanup
//! on Ctrl-C.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");

/// One ensemble at a time: the machine has 2 cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn require_zookeeper() {
    assert!(
        Path::new("/usr/share/java/zookeeper.jar").exists(),
        "Apache ZooKeeper is not installed: bash ci/install-deps.sh installs it"
    );
}

/// The warren binary loadgen uses by default: the one built beside it.
fn require_warren() {
    let bin = Path::new(LOADGEN).with_file_name("warren");
    assert!(bin.exists(), "{} is missing: build the workspace (cargo build --workspace)", bin.display());
}

/// Temporary directories of the loadgen process `pid`.
fn leftovers(pid: u32, system: &str) -> Vec<String> {
    let prefix = format!("loadgen-{system}-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Server processes whose command line names a directory of loadgen process `pid`.
fn servers_of(pid: u32, system: &str) -> usize {
    let needle = format!("loadgen-{system}-{pid}-");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(&needle))
        .count()
}

#[test]
fn three_node_zookeeper_leader_kill() {
    require_zookeeper();
    leader_kill("zookeeper");
}

#[test]
fn three_node_warren_leader_kill() {
    require_warren();
    leader_kill("warren");
}

fn leader_kill(system: &str) {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = std::env::temp_dir().join(format!("loadgen-test-record-{system}-{}.json", std::process::id()));
    let child = Command::new(LOADGEN)
        .args(["run", "--system", system, "--nodes", "3", "--read-ratio", "0.5", "--clients", "6"])
        .args(["--outstanding", "20", "--duration", "3", "--warmup", "1", "--kill-leader", "--trials", "1"])
        .arg("--record")
        .arg(&rec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("trial 1: killed leader"), "{stdout}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&rec).unwrap()).unwrap();
    std::fs::remove_file(&rec).unwrap();
    assert_eq!(r["settings"]["nodes"], 3);
    if system == "zookeeper" {
        assert!(r["versions"]["zookeeper"].as_str().unwrap().starts_with("3.8"), "{}", r["versions"]);
    }
    assert!(r["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(r["results"]["ops_per_s"].as_f64().unwrap() > 0.0);
    let t = &r["kill"]["trials"][0];
    let leader_ms = t["new_leader_ms"].as_f64().expect("a survivor became leader");
    // Correctness only (timing is what the sweep measures): a new leader within a generous bound.
    assert!(leader_ms > 0.0 && leader_ms < 30_000.0, "{t}");
    assert_ne!(t["new_leader"], t["killed_server"]);
    let w = t["survivor_write_recovery_ms"].as_array().unwrap();
    assert!(!w.is_empty(), "clients on survivors wrote again: {t}");
    assert!(t["dip"]["series"].as_array().unwrap().len() >= 10);
    assert_eq!(servers_of(pid, system), 0, "every server stopped");
    assert!(leftovers(pid, system).is_empty(), "temporary directories removed");
}

#[test]
fn ctrl_c_stops_the_ensemble_and_removes_its_files() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_zookeeper();
    let mut child = Command::new(LOADGEN)
        .args(["run", "--system", "zookeeper", "--nodes", "3", "--clients", "3", "--outstanding", "5"])
        .args(["--duration", "60", "--warmup", "0", "--no-record"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !line.contains("started zookeeper x3") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0 && Instant::now() < deadline, "no start line");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(servers_of(pid, "zookeeper"), 3);
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(servers_of(pid, "zookeeper"), 0, "every server killed");
    assert!(leftovers(pid, "zookeeper").is_empty(), "temporary directories removed");
}
