//! Real `warren` processes in a 3-server ensemble, driven by the Rust `zookeeper-client` crate
//! with every server in its connect string. (The fuller black-box suite, run against ZooKeeper
//! 3.8 too, is tests/python/test_ensemble.py.)

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{four_letter, free_port};
use zk::{Acls, CreateMode};
use zookeeper_client as zk;

const TIMEOUT: Duration = Duration::from_secs(30);

struct Member {
    id: u64,
    client: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
}

struct Ensemble {
    _root: tempfile::TempDir,
    members: Vec<Member>,
}

impl Ensemble {
    fn start(n: u64) -> Ensemble {
        let root = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16, u16)> = (0..n).map(|_| (free_port(), free_port(), free_port())).collect();
        let mut servers = String::new();
        for (i, (c, q, e)) in ports.iter().enumerate() {
            servers.push_str(&format!("server.{}=127.0.0.1:{q}:{e};127.0.0.1:{c}\n", i + 1));
        }
        let mut members = Vec::new();
        for (i, (c, _, _)) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let dir = root.path().join(format!("s{id}"));
            std::fs::create_dir_all(dir.join("data")).unwrap();
            std::fs::write(dir.join("data/myid"), format!("{id}\n")).unwrap();
            let cfg = format!(
                "tickTime=100\ninitLimit=20\nsyncLimit=10\ndataDir={}\n4lw.commands.whitelist=*\n{servers}",
                dir.join("data").display()
            );
            std::fs::write(dir.join("zoo.cfg"), cfg).unwrap();
            members.push(Member { id, client: SocketAddr::from(([127, 0, 0, 1], *c)), dir, child: None });
        }
        let mut e = Ensemble { _root: root, members };
        for i in 0..n as usize {
            e.spawn(i);
        }
        e
    }

    fn spawn(&mut self, i: usize) {
        let m = &mut self.members[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(m.dir.join("warren.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_warren"))
            .arg("start-foreground")
            .arg(m.dir.join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        m.child = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn connect_string(&self) -> String {
        self.members.iter().map(|m| m.client.to_string()).collect::<Vec<_>>().join(",")
    }

    fn mode(&self, i: usize) -> Option<String> {
        let text = four_letter(self.members[i].client, "srvr")?;
        text.lines().find_map(|l| l.strip_prefix("Mode: ")).map(str::to_string)
    }

    /// Waits until one running member leads and every other running member follows.
    fn wait_stable(&self) -> usize {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let running: Vec<usize> = (0..self.members.len()).filter(|&i| self.members[i].child.is_some()).collect();
            let modes: Vec<Option<String>> = running.iter().map(|&i| self.mode(i)).collect();
            let leaders: Vec<usize> =
                running.iter().zip(&modes).filter(|(_, m)| m.as_deref() == Some("leader")).map(|(i, _)| *i).collect();
            let followers = modes.iter().filter(|m| m.as_deref() == Some("follower")).count();
            if leaders.len() == 1 && followers + 1 == running.len() {
                return leaders[0];
            }
            assert!(Instant::now() < deadline, "no stable ensemble: {modes:?}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for m in &self.members {
            let log = std::fs::read_to_string(m.dir.join("warren.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            out.push_str(&format!("---- server {} ----\n", m.id));
            for l in tail.iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(TIMEOUT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {TIMEOUT:?}: {what}"),
    }
}

/// Retries `f` until it succeeds (a client reconnecting to another server sees errors first).
async fn eventually<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                assert!(Instant::now() < deadline, "{what}: still failing: {e:?}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_keeps_its_session_and_ephemeral_across_a_leader_kill() {
    let mut e = Ensemble::start(3);
    let leader = e.wait_stable();
    let client = within(
        "connect",
        zk::Client::connector().with_session_timeout(Duration::from_secs(10)).connect(&e.connect_string()),
    )
    .await
    .unwrap();
    let session = client.session_id();
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    within("create", client.create("/app", b"1", &opts)).await.unwrap();
    within("ephemeral", client.create("/app/member", b"", &eph)).await.unwrap();
    let seq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    let mut acked = Vec::new();
    for i in 0..50 {
        if i == 25 {
            e.kill(leader);
        }
        // A create that fails with ConnectionLoss may or may not have happened: only
        // acknowledged ones are checked.
        let (_, n) = eventually("sequential create", || client.create("/app/seq-", b"", &seq)).await;
        acked.push(format!("seq-{:010}", n.into_i64()));
    }
    let _ = e.wait_stable();
    // Same session, its ephemeral still there, every acknowledged write present.
    assert_eq!(client.session_id(), session);
    eventually("ephemeral after the kill", || client.check_stat("/app/member")).await.expect("ephemeral kept");
    let children = eventually("children", || client.get_children("/app")).await.0;
    for name in &acked {
        assert!(children.iter().any(|c| c == name), "{name} lost");
    }
    // The old leader rejoins as a follower with everything.
    e.spawn(leader);
    let _ = e.wait_stable();
    assert_eq!(e.mode(leader).as_deref(), Some("follower"));
    let alone =
        within("connect to the old leader", zk::Client::connector().connect(&e.members[leader].client.to_string()))
            .await
            .unwrap();
    within("sync", alone.sync("/app")).await.unwrap();
    let (after, _) = within("children on the old leader", alone.get_children("/app")).await.unwrap();
    assert_eq!(after.len(), children.len());
}

#[test]
fn mntr_and_srvr_report_the_ensemble() {
    let e = Ensemble::start(3);
    let leader = e.wait_stable();
    let mntr = four_letter(e.members[leader].client, "mntr").unwrap();
    assert!(mntr.contains("zk_server_state\tleader"), "{mntr}");
    assert!(mntr.contains("zk_synced_followers\t2"), "{mntr}");
    assert!(mntr.contains("zk_quorum_size\t3"), "{mntr}");
    let follower = (leader + 1) % 3;
    let srvr = four_letter(e.members[follower].client, "srvr").unwrap();
    assert!(srvr.contains("Mode: follower"), "{srvr}");
}

#[test]
fn a_missing_myid_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = root.path().join("zoo.cfg");
    let (a, b, c) = (free_port(), free_port(), free_port());
    std::fs::write(
        &cfg,
        format!(
            "tickTime=100\ndataDir={}\nclientPort={}\nserver.1=127.0.0.1:{a}:{b}\nserver.2=127.0.0.1:{c}:{}\nserver.3=127.0.0.1:{}:{}\n",
            data.display(),
            free_port(),
            free_port(),
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warren")).arg("start-foreground").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("myid"), "{err}");
}
