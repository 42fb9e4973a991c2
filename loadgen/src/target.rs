//! Targets loadgen can start by itself: a local Warren, a local Apache ZooKeeper 3.8 (from
//! Debian's package) or the echo server (the loopback ceiling), each in a temporary directory
//! on a free 127.0.0.1 port, stopped when dropped.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum System {
    Warren,
    Zookeeper,
    Echo,
}

pub struct Local {
    pub addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
const ZK_INSTALL: &str = "apt-get install -y --no-install-recommends zookeeper zookeeper-bin";

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn answers(addr: SocketAddr, word: &[u8], want: &str) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut out = String::new();
    s.write_all(word).is_ok() && s.read_to_string(&mut out).is_ok() && out.contains(want)
}

impl Local {
    /// Starts one standalone server of `system`. `warren_bin` is the warren binary to run.
    pub fn start(system: System, warren_bin: &Path, nodes: usize) -> io::Result<Local> {
        if nodes != 1 {
            return Err(io::Error::other(format!(
                "--nodes {nodes}: local ensembles need quorum replication, which Warren does not have yet; \
                 use --nodes 1, or --connect to an ensemble already running"
            )));
        }
        let dir = std::env::temp_dir().join(format!("loadgen-{}-{}", std::process::id(), free_port()?));
        std::fs::create_dir_all(&dir)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=2000\ndataDir={}/data\nclientPort={}\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n\
                 admin.enableServer=false\n4lw.commands.whitelist=*\n",
                dir.display(),
                addr.port()
            ),
        )?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        let child = match system {
            System::Warren => {
                Command::new(warren_bin).arg("start-foreground").arg(&cfg).stderr(log).stdout(Stdio::null()).spawn()?
            }
            System::Zookeeper => {
                if !Path::new(ZK_JAR).exists() {
                    return Err(io::Error::other(format!("Apache ZooKeeper is not installed here: {ZK_INSTALL}")));
                }
                std::fs::write(dir.join("log4j.properties"), "log4j.rootLogger=WARN, F\nlog4j.appender.F=org.apache.log4j.FileAppender\nlog4j.appender.F.File=zk.log\nlog4j.appender.F.layout=org.apache.log4j.PatternLayout\n")?;
                let cp = format!(
                    "{}:{ZK_JAR}:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar",
                    dir.display()
                );
                Command::new("java")
                    .args([
                        "-Xmx1g",
                        "-XX:-UsePerfData",
                        &format!("-Dlog4j.configuration=file:{}/log4j.properties", dir.display()),
                    ])
                    .args(["-cp", &cp, "org.apache.zookeeper.server.quorum.QuorumPeerMain"])
                    .arg(&cfg)
                    .current_dir(&dir)
                    .stderr(log)
                    .stdout(Stdio::null())
                    .spawn()?
            }
            System::Echo => {
                let me = std::env::current_exe()?;
                Command::new(me).args(["echo-server", "--listen", &addr.to_string()]).stderr(log).spawn()?
            }
        };
        let mut local = Local { addr, child, dir };
        local.wait_ready(system)?;
        Ok(local)
    }

    fn wait_ready(&mut self, system: System) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let ready = match system {
                // ZooKeeper answers srvr with its mode once it serves.
                System::Warren | System::Zookeeper => answers(self.addr, b"srvr", "Mode:"),
                System::Echo => TcpStream::connect(self.addr).is_ok(),
            };
            if ready {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "{system:?} exited ({status}); see {}/server.log",
                    self.dir.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::other(format!("{system:?} did not start within 60 s; see {}/server.log", self.dir.display())))
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Facts about this machine for the JSON record.
pub fn machine() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{{\"cores\":{cores},\"kernel\":\"{}\"}}", kernel.trim())
}
