//! Targets loadgen can start by itself: a local Warren or Apache ZooKeeper 3.8 ensemble (or a
//! standalone server when `--nodes 1`), or echo servers (the loopback ceiling). Each server gets
//! a generated zoo.cfg and dataDir in a temporary directory and ports in 127.0.0.1's
//! `--ports` range; everything is killed and removed when the `Ensemble` is dropped, and on
//! Ctrl-C / SIGTERM (see `install_signal_cleanup`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum System {
    Warren,
    Zookeeper,
    Echo,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Warren => "warren",
            System::Zookeeper => "zookeeper",
            System::Echo => "echo",
        }
    }
}

pub const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
pub const ZK_INSTALL: &str = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
                              --no-install-recommends zookeeper zookeeper-bin";
const ZK_CP_EXTRA: &str = "/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar";

// ---------------------------------------------------------------------------------------------
// Cleanup of processes and directories on Ctrl-C, SIGTERM, SIGHUP.

static PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn register_pid(pid: u32) {
    PIDS.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}
fn unregister_pid(pid: u32) {
    PIDS.lock().unwrap_or_else(|e| e.into_inner()).retain(|&p| p != pid);
}
fn register_dir(d: &Path) {
    DIRS.lock().unwrap_or_else(|e| e.into_inner()).push(d.to_path_buf());
}
fn unregister_dir(d: &Path) {
    DIRS.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| p != d);
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether Ctrl-C is being handled (the handler exits with 130 once it has cleaned up; errors
/// its killing causes elsewhere are not worth reporting).
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// On Ctrl-C (and SIGTERM/SIGHUP): SIGKILL every server loadgen started, remove their
/// directories, exit 130.
pub fn install_signal_cleanup() {
    let _ = ctrlc::set_handler(|| {
        INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        let pids: Vec<u32> = PIDS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for pid in pids {
            // SAFETY: kill(2) on a pid we spawned and have not reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(100));
        let dirs: Vec<PathBuf> = DIRS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for d in dirs {
            let _ = std::fs::remove_dir_all(d);
        }
        eprintln!("\nloadgen: interrupted; servers stopped and temporary directories removed");
        std::process::exit(130);
    });
}

/// Spawns `cmd` so the child is SIGKILLed if loadgen dies without cleaning up (PDEATHSIG fires
/// when the spawning *thread* exits: spawn servers from the main thread only).
fn spawn(cmd: &mut Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    register_pid(child.id());
    Ok(child)
}

// ---------------------------------------------------------------------------------------------
// Ports and configuration (pure parts, unit-tested).

/// Parses `A-B` (inclusive).
pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').ok_or_else(|| format!("port range {s:?}: expected FIRST-LAST"))?;
    let a: u16 = a.trim().parse().map_err(|_| format!("port range {s:?}: bad first port"))?;
    let b: u16 = b.trim().parse().map_err(|_| format!("port range {s:?}: bad last port"))?;
    if a == 0 || a > b {
        return Err(format!("port range {s:?}: need 0 < FIRST <= LAST"));
    }
    Ok((a, b))
}

/// `count` distinct ports of `range` that 127.0.0.1 can bind now, scanning from an offset
/// that differs per process so concurrent loadgens rarely collide.
pub fn alloc_ports(count: usize, range: (u16, u16)) -> io::Result<Vec<u16>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Each call starts where the previous one stopped, so consecutive ensembles of one sweep
    // never reuse the ports of a server that has just been killed.
    static NEXT: AtomicUsize = AtomicUsize::new(usize::MAX);
    let span = (range.1 - range.0) as usize + 1;
    let _ = NEXT.compare_exchange(usize::MAX, std::process::id() as usize * 7919, Ordering::Relaxed, Ordering::Relaxed);
    let start = NEXT.load(Ordering::Relaxed) % span;
    let mut out = Vec::with_capacity(count);
    for i in 0..span {
        let port = range.0 + ((start + i) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            out.push(port);
            if out.len() == count {
                NEXT.store(start + i + 1, Ordering::Relaxed);
                return Ok(out);
            }
        }
    }
    Err(io::Error::other(format!("fewer than {count} free ports in 127.0.0.1:{}-{}", range.0, range.1)))
}

/// The ports of one ensemble member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    pub client: u16,
    pub quorum: u16,
    pub election: u16,
}

/// Cores given to each of `nodes` servers on a machine with `cores`: `None` (the server's own
/// default, as the standalone benchmarks always ran) for one node, else a fair share, at least 1.
pub fn cores_per_server(cores: usize, nodes: usize) -> Option<usize> {
    (nodes > 1).then(|| (cores / nodes).max(1))
}

/// The heap of each ZooKeeper JVM: 1 GiB standalone (as before), smaller as the ensemble grows.
pub fn zk_heap(nodes: usize) -> &'static str {
    match nodes {
        1 => "1g",
        2..=5 => "512m",
        _ => "256m",
    }
}

/// zoo.cfg for member `id` (1-based) of an ensemble whose members have `ports`; a single member
/// gets a standalone config (no server lines).
pub fn zoo_cfg(system: System, id: usize, ports: &[Ports], data_dir: &Path, cores: Option<usize>) -> String {
    let me = ports[id - 1];
    let mut s = format!(
        "tickTime=2000\ninitLimit=30\nsyncLimit=5\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
         maxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=*\n",
        data_dir.display(),
        me.client
    );
    if ports.len() > 1 {
        for (i, p) in ports.iter().enumerate() {
            s.push_str(&format!("server.{}=127.0.0.1:{}:{}\n", i + 1, p.quorum, p.election));
        }
    }
    if let (System::Warren, Some(c)) = (system, cores) {
        s.push_str(&format!("warren.cores={c}\n"));
    }
    s
}

/// The JVM command line of a ZooKeeper member.
pub fn zk_command(dir: &Path, cfg: &Path, nodes: usize, cores: Option<usize>) -> Vec<String> {
    let mut v = vec!["java".to_string(), format!("-Xmx{}", zk_heap(nodes)), "-XX:-UsePerfData".into()];
    if let Some(c) = cores {
        v.push(format!("-XX:ActiveProcessorCount={c}"));
    }
    v.push(format!("-Dlog4j.configuration=file:{}/log4j.properties", dir.display()));
    v.push("-cp".into());
    v.push(format!("{}:{ZK_JAR}:{ZK_CP_EXTRA}", dir.display()));
    v.push("org.apache.zookeeper.server.quorum.QuorumPeerMain".into());
    v.push(cfg.display().to_string());
    v
}

/// The `Mode:` of a `srvr` answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    Standalone,
}

pub fn parse_mode(srvr: &str) -> Option<Mode> {
    let m = srvr.lines().find_map(|l| l.strip_prefix("Mode:"))?.trim();
    Some(match m {
        "leader" => Mode::Leader,
        "follower" => Mode::Follower,
        "observer" => Mode::Observer,
        "standalone" => Mode::Standalone,
        _ => return None,
    })
}

/// Sends a four-letter word and returns the whole answer ("" when the server is unreachable).
pub fn four_letter(addr: SocketAddr, word: &str, timeout: Duration) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, timeout) else { return String::new() };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let mut out = String::new();
    if s.write_all(word.as_bytes()).is_err() {
        return String::new();
    }
    let _ = s.read_to_string(&mut out);
    out
}

pub fn mode_of(addr: SocketAddr) -> Option<Mode> {
    parse_mode(&four_letter(addr, "srvr", Duration::from_millis(1000)))
}

/// Parses `--connect host:port,host:port`.
pub fn parse_connect(s: &str) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let addr = part
            .to_socket_addrs()
            .map_err(|e| format!("--connect {part:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("--connect {part:?}: no address"))?;
        out.push(addr);
    }
    if out.is_empty() {
        return Err("--connect: no server given".into());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Local ensembles.

pub struct Member {
    pub id: usize,
    pub addr: SocketAddr,
    dir: PathBuf,
    cmd: Vec<String>,
    child: Option<Child>,
}

pub struct Ensemble {
    pub system: System,
    pub members: Vec<Member>,
    dir: PathBuf,
    /// How long to wait for the ensemble (or a restarted member) to serve.
    pub startup_timeout: Duration,
}

impl Ensemble {
    /// Starts `nodes` servers of `system` and waits until they serve (one leader, every member
    /// answering `ruok` and `srvr`). `warren_bin` is the warren binary for Warren.
    pub fn start(system: System, warren_bin: &Path, nodes: usize, ports: (u16, u16)) -> io::Result<Ensemble> {
        if nodes == 0 {
            return Err(io::Error::other("--nodes must be at least 1"));
        }
        match system {
            System::Zookeeper if !Path::new(ZK_JAR).exists() => {
                return Err(io::Error::other(format!(
                    "Apache ZooKeeper 3.8 is not installed here ({ZK_JAR} is missing); install it with:\n  {ZK_INSTALL}"
                )))
            }
            System::Warren if !warren_bin.exists() => {
                return Err(io::Error::other(format!(
                    "no warren binary at {} (build it: cargo build --release -p warren, or pass --warren-bin)",
                    warren_bin.display()
                )))
            }
            _ => {}
        }
        let per = if system == System::Echo { 1 } else { 3 };
        let p = alloc_ports(nodes * per, ports)?;
        let all: Vec<Ports> = (0..nodes)
            .map(|i| Ports {
                client: p[i * per],
                quorum: if per == 3 { p[i * per + 1] } else { 0 },
                election: if per == 3 { p[i * per + 2] } else { 0 },
            })
            .collect();
        let dir = std::env::temp_dir().join(format!("loadgen-{}-{}-{}", system.name(), std::process::id(), p[0]));
        std::fs::create_dir_all(&dir)?;
        register_dir(&dir);
        let cores = cores_per_server(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), nodes);
        let mut ens = Ensemble {
            system,
            members: Vec::new(),
            dir: dir.clone(),
            startup_timeout: Duration::from_secs(60 + 10 * nodes as u64),
        };
        for id in 1..=nodes {
            let mdir = dir.join(format!("s{id}"));
            let data = mdir.join("data");
            std::fs::create_dir_all(&data)?;
            std::fs::write(data.join("myid"), format!("{id}\n"))?;
            let cfg = mdir.join("zoo.cfg");
            std::fs::write(&cfg, zoo_cfg(system, id, &all, &data, cores))?;
            let cmd = match system {
                System::Warren => {
                    vec![warren_bin.display().to_string(), "start-foreground".into(), cfg.display().to_string()]
                }
                System::Zookeeper => {
                    std::fs::write(
                        mdir.join("log4j.properties"),
                        "log4j.rootLogger=INFO, F\nlog4j.appender.F=org.apache.log4j.FileAppender\n\
                         log4j.appender.F.File=zk.log\nlog4j.appender.F.layout=org.apache.log4j.PatternLayout\n\
                         log4j.appender.F.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] %-5p %c{1} - %m%n\n",
                    )?;
                    zk_command(&mdir, &cfg, nodes, cores)
                }
                System::Echo => {
                    let me = std::env::current_exe()?;
                    vec![
                        me.display().to_string(),
                        "echo-server".into(),
                        "--listen".into(),
                        format!("127.0.0.1:{}", all[id - 1].client),
                    ]
                }
            };
            ens.members.push(Member {
                id,
                addr: SocketAddr::from(([127, 0, 0, 1], all[id - 1].client)),
                dir: mdir,
                cmd,
                child: None,
            });
        }
        for i in 0..nodes {
            ens.spawn_member(i)?;
        }
        ens.wait_serving(None)?;
        Ok(ens)
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.members.iter().map(|m| m.addr).collect()
    }

    fn spawn_member(&mut self, i: usize) -> io::Result<()> {
        let m = &mut self.members[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(m.dir.join("server.log"))?;
        let child = spawn(
            Command::new(&m.cmd[0])
                .args(&m.cmd[1..])
                .current_dir(&m.dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log),
        )?;
        m.child = Some(child);
        Ok(())
    }

    fn log_tail(&self, i: usize) -> String {
        let m = &self.members[i];
        let mut s = String::new();
        for f in ["server.log", "zk.log"] {
            if let Ok(t) = std::fs::read_to_string(m.dir.join(f)) {
                let lines: Vec<&str> = t.lines().collect();
                let from = lines.len().saturating_sub(8);
                s.push_str(&format!("--- {} of server {}:\n{}\n", f, m.id, lines[from..].join("\n")));
            }
        }
        s
    }

    /// Waits until every running member answers `ruok` and `srvr` and exactly one leads (for an
    /// ensemble), or `member` alone has rejoined.
    pub fn wait_serving(&mut self, member: Option<usize>) -> io::Result<()> {
        let deadline = Instant::now() + self.startup_timeout;
        let n = self.members.len();
        loop {
            for i in 0..n {
                if let Some(c) = self.members[i].child.as_mut() {
                    if let Some(status) = c.try_wait()? {
                        unregister_pid(c.id());
                        self.members[i].child = None;
                        return Err(io::Error::other(format!(
                            "{} server {} exited ({status}) while starting; logs in {}\n{}",
                            self.system.name(),
                            i + 1,
                            self.members[i].dir.display(),
                            self.log_tail(i)
                        )));
                    }
                }
            }
            if self.system == System::Echo {
                if self.members.iter().all(|m| TcpStream::connect(m.addr).is_ok()) {
                    return Ok(());
                }
            } else {
                let live: Vec<usize> = (0..n).filter(|&i| self.members[i].child.is_some()).collect();
                let modes: Vec<Option<Mode>> = live.iter().map(|&i| mode_of(self.members[i].addr)).collect();
                if n > 1 {
                    if let Some(k) = modes.iter().position(|m| *m == Some(Mode::Standalone)) {
                        return Err(io::Error::other(format!(
                            "{} server {} reports Mode: standalone in a {n}-server ensemble: this {} build \
                             does not run ensembles yet",
                            self.system.name(),
                            live[k] + 1,
                            self.system.name()
                        )));
                    }
                }
                let leaders = modes.iter().filter(|m| **m == Some(Mode::Leader)).count();
                let all_modes = modes.iter().all(|m| m.is_some());
                let ok = all_modes
                    && (n == 1 || leaders == 1)
                    && member.map_or(true, |k| live.contains(&k))
                    && live
                        .iter()
                        .all(|&i| four_letter(self.members[i].addr, "ruok", Duration::from_secs(1)) == "imok");
                if ok {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                let tails: String = (0..n).map(|i| self.log_tail(i)).collect();
                return Err(io::Error::other(format!(
                    "{} ensemble of {n} did not serve within {} s; logs in {}\n{tails}",
                    self.system.name(),
                    self.startup_timeout.as_secs(),
                    self.dir.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The index of the member that reports `Mode: leader`, if exactly one does.
    pub fn leader(&self) -> Option<usize> {
        let l: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].child.is_some() && mode_of(self.members[i].addr) == Some(Mode::Leader))
            .collect();
        (l.len() == 1).then(|| l[0])
    }

    /// SIGKILLs member `i` and reaps it.
    pub fn kill(&mut self, i: usize) -> io::Result<()> {
        if let Some(mut c) = self.members[i].child.take() {
            c.kill()?;
            c.wait()?;
            unregister_pid(c.id());
        }
        Ok(())
    }

    /// Restarts member `i` with the same config and dataDir and waits until it has rejoined.
    pub fn restart(&mut self, i: usize) -> io::Result<()> {
        self.spawn_member(i)?;
        self.wait_serving(Some(i))
    }

    /// The first line of `srvr` of the first live member (the server's version).
    pub fn version(&self) -> String {
        self.members
            .iter()
            .find(|m| m.child.is_some())
            .map(|m| srvr_version(&four_letter(m.addr, "srvr", Duration::from_secs(2))))
            .unwrap_or_default()
    }
}

pub fn srvr_version(srvr: &str) -> String {
    srvr.lines().next().unwrap_or("").trim().trim_start_matches("Zookeeper version:").trim().to_string()
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            let _ = self.kill(i);
        }
        // LOADGEN_KEEP=1 keeps the servers' configs, data and logs for a post-mortem.
        if std::env::var_os("LOADGEN_KEEP").is_some() {
            eprintln!("kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        unregister_dir(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// Facts about this machine and the systems for the JSON record.

pub fn machine() -> serde_json::Value {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|v| v.trim_start_matches([' ', '\t', ':']));
    serde_json::json!({
        "cores": cores,
        "memory_bytes": mem_kb * 1024,
        "kernel": kernel.trim(),
        "cpu": cpu.unwrap_or(""),
    })
}

/// `warren --version` of the binary loadgen would run ("" when absent).
pub fn warren_version(bin: &Path) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The Debian package version of ZooKeeper ("" when not installed).
pub fn zookeeper_version() -> String {
    if !Path::new(ZK_JAR).exists() {
        return String::new();
    }
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "zookeeper"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(n: usize) -> Vec<Ports> {
        (0..n)
            .map(|i| Ports {
                client: 21000 + i as u16 * 3,
                quorum: 21001 + i as u16 * 3,
                election: 21002 + i as u16 * 3,
            })
            .collect()
    }

    #[test]
    fn standalone_config_has_no_server_lines() {
        let c = zoo_cfg(System::Zookeeper, 1, &ports(1), Path::new("/tmp/d"), None);
        assert!(c.contains("clientPort=21000\n"));
        assert!(c.contains("dataDir=/tmp/d\n"));
        assert!(c.contains("admin.enableServer=false\n"));
        assert!(c.contains("4lw.commands.whitelist=*\n"));
        assert!(!c.contains("server."));
        assert!(!c.contains("warren.cores"));
    }

    #[test]
    fn ensemble_config_lists_every_member() {
        let c = zoo_cfg(System::Warren, 2, &ports(3), Path::new("/x"), cores_per_server(2, 3));
        assert!(c.contains("clientPort=21003\n"), "{c}");
        assert!(c.contains("server.1=127.0.0.1:21001:21002\n"));
        assert!(c.contains("server.2=127.0.0.1:21004:21005\n"));
        assert!(c.contains("server.3=127.0.0.1:21007:21008\n"));
        assert!(c.contains("warren.cores=1\n"));
        let z = zoo_cfg(System::Zookeeper, 2, &ports(3), Path::new("/x"), Some(1));
        assert!(!z.contains("warren.cores"), "ZooKeeper gets its share through the JVM flag");
    }

    #[test]
    fn fair_share_of_cores() {
        assert_eq!(cores_per_server(2, 1), None);
        assert_eq!(cores_per_server(2, 3), Some(1));
        assert_eq!(cores_per_server(16, 3), Some(5));
        assert_eq!(cores_per_server(2, 13), Some(1));
    }

    #[test]
    fn zk_command_pins_heap_and_cores() {
        let v = zk_command(Path::new("/d"), Path::new("/d/zoo.cfg"), 13, Some(1));
        assert!(v.contains(&"-Xmx256m".to_string()));
        assert!(v.contains(&"-XX:ActiveProcessorCount=1".to_string()));
        assert_eq!(v.last().unwrap(), "/d/zoo.cfg");
        let s = zk_command(Path::new("/d"), Path::new("/d/zoo.cfg"), 1, None);
        assert!(s.contains(&"-Xmx1g".to_string()));
        assert!(!s.iter().any(|a| a.starts_with("-XX:ActiveProcessorCount")));
    }

    #[test]
    fn modes_and_versions_parse() {
        let srvr = "Zookeeper version: 3.8.0-11+deb12u2, built on 2023\nLatency min/avg/max: 0/0.0/0\nMode: follower\nNode count: 5\n";
        assert_eq!(parse_mode(srvr), Some(Mode::Follower));
        assert_eq!(parse_mode("Mode: leader\n"), Some(Mode::Leader));
        assert_eq!(parse_mode("This ZooKeeper instance is not currently serving requests\n"), None);
        assert_eq!(srvr_version(srvr), "3.8.0-11+deb12u2, built on 2023");
    }

    #[test]
    fn connect_lists_and_port_ranges_parse() {
        let v = parse_connect("127.0.0.1:2181, 127.0.0.1:2182").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].port(), 2182);
        assert!(parse_connect("").is_err());
        assert!(parse_connect("nohost").is_err());
        assert_eq!(parse_port_range("21000-21999").unwrap(), (21000, 21999));
        assert!(parse_port_range("21999-21000").is_err());
        assert!(parse_port_range("21000").is_err());
    }

    #[test]
    fn ports_are_allocated_in_range_and_distinct() {
        let p = alloc_ports(9, (21000, 21999)).unwrap();
        assert_eq!(p.len(), 9);
        assert!(p.iter().all(|&x| (21000..=21999).contains(&x)));
        let mut q = p.clone();
        q.sort();
        q.dedup();
        assert_eq!(q.len(), 9);
    }
}
