//! The server starts and serves as a non-root user under the machine's memlock limit (8 MiB
//! here), registering its io_uring memory without errors and saying how much in its log.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ruok(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut out = String::new();
    s.write_all(b"ruok").is_ok() && s.read_to_string(&mut out).is_ok() && out == "imok"
}

#[test]
fn serves_as_nobody_with_two_executors() {
    let is_root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if !is_root || !setpriv {
        // Already unprivileged (or no way to drop privileges): the other tests cover this case.
        eprintln!("not root or no setpriv: the non-root path is exercised by every other test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}/data\nclientPort={port}\nclientPortAddress=127.0.0.1\nwarren.cores=2\n",
            dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = dir.path().join("log");
    let mut child = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_warren"))
        .arg("start-foreground")
        .arg(&cfg)
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut up = false;
    while Instant::now() < deadline && !up {
        up = ruok(port);
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(up, "did not serve as nobody:\n{text}");
    assert!(text.contains("io_uring registered memory"), "{text}");
    assert!(text.contains("memlock limit 8192 KiB") || !text.contains("memlock limit"), "{text}");
    assert!(!text.contains("Error: registering buffers"), "registration failed under the memlock limit:\n{text}");
}
