//! `health`: asks every member of the connect string on its own and prints one row each:
//! role (`Mode:` of the `srvr` four-letter word), last zxid (`Zxid:`), how many zxids it
//! is behind the highest seen, the round trip of a `get /` on a session to that member
//! alone, and what went wrong.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{CliError, CliResult, Status};
use crate::session::{close_client, connect, out, Ctx};

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// A `srvr` answer is a few hundred bytes; read no more than this.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;
const HEALTH_USAGE: &str = "health [-server host:port,...]";

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Row {
    pub addr: String,
    pub role: Option<String>,
    pub zxid: Option<i64>,
    pub latency: Option<Duration>,
    pub errors: Vec<String>,
}

/// Sends a four-letter word and reads the whole answer.
pub async fn four_letter(addr: &str, word: &str) -> Result<String, String> {
    let io = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(word.as_bytes()).await.map_err(|e| e.to_string())?;
        let _ = s.shutdown().await;
        let mut buf = Vec::new();
        s.take(MAX_ANSWER_BYTES).read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    tokio::time::timeout(PROBE_TIMEOUT, io).await.map_err(|_| format!("{word}: no answer in 3 s"))?
}

/// `Mode: leader` and `Zxid: 0x…` from a `srvr` answer.
pub fn parse_srvr(text: &str) -> (Option<String>, Option<i64>) {
    let mut mode = None;
    let mut zxid = None;
    for line in text.lines() {
        if let Some(m) = line.strip_prefix("Mode:") {
            mode = Some(m.trim().to_string());
        } else if let Some(z) = line.strip_prefix("Zxid:") {
            let z = z.trim();
            zxid = i64::from_str_radix(z.trim_start_matches("0x"), 16).ok();
        }
    }
    (mode, zxid)
}

async fn probe(addr: String, timeout_ms: u64) -> Row {
    let mut row = Row { addr: addr.clone(), ..Row::default() };
    match four_letter(&addr, "srvr").await {
        Ok(text) => {
            let (mode, zxid) = parse_srvr(&text);
            if mode.is_none() {
                let first = text.lines().next().unwrap_or("empty answer").trim().to_string();
                row.errors.push(format!("srvr: {first}"));
            }
            row.role = mode;
            row.zxid = zxid;
        }
        Err(e) => row.errors.push(format!("srvr: {e}")),
    }
    match connect(&addr, timeout_ms.min(PROBE_TIMEOUT.as_millis() as u64), false).await {
        Ok(client) => {
            let start = Instant::now();
            match tokio::time::timeout(PROBE_TIMEOUT, client.get_data("/")).await {
                Ok(Ok(_)) => row.latency = Some(start.elapsed()),
                Ok(Err(e)) => row.errors.push(format!("get /: {e}")),
                Err(_) => row.errors.push("get /: no answer in 3 s".into()),
            }
            close_client(client).await;
        }
        Err(e) => row.errors.push(e.message()),
    }
    row
}

/// The table, aligned; lag is counted from the highest zxid among the rows.
pub fn render(rows: &[Row]) -> String {
    let top = rows.iter().filter_map(|r| r.zxid).max();
    let mut lines = vec![["ADDRESS", "ROLE", "ZXID", "LAG", "LATENCY", "ERRORS"].map(String::from).to_vec()];
    for r in rows {
        lines.push(vec![
            r.addr.clone(),
            r.role.clone().unwrap_or_else(|| "-".into()),
            r.zxid.map(|z| format!("0x{z:x}")).unwrap_or_else(|| "-".into()),
            match (r.zxid, top) {
                (Some(z), Some(t)) => (t - z).to_string(),
                _ => "-".into(),
            },
            r.latency.map(|d| format!("{:.1}ms", d.as_secs_f64() * 1000.0)).unwrap_or_else(|| "-".into()),
            if r.errors.is_empty() { "-".into() } else { r.errors.join("; ") },
        ]);
    }
    let widths: Vec<usize> = (0..6).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let mut s = String::new();
    for l in lines {
        let mut row = String::new();
        for (i, cell) in l.iter().enumerate() {
            if i == 5 {
                row.push_str(cell);
            } else {
                row.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        s.push_str(row.trim_end());
        s.push('\n');
    }
    s
}

/// Members of a connect string (`a:1,b:2/chroot` → `a:1`, `b:2`).
pub fn members(server: &str) -> Vec<String> {
    let hosts = server.split('/').next().unwrap_or("");
    hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).map(String::from).collect()
}

pub async fn health_command(ctx: &mut Ctx, words: &[String]) -> CliResult {
    let server = match words {
        [] => ctx.server.clone(),
        [flag, s] if flag == "-server" || flag == "--server" => s.clone(),
        _ => return Err(CliError::Usage(HEALTH_USAGE.into())),
    };
    let addrs = members(&server);
    if addrs.is_empty() {
        return Err(CliError::Usage(HEALTH_USAGE.into()));
    }
    let probes: Vec<_> = addrs.into_iter().map(|a| tokio::spawn(probe(a, ctx.timeout_ms))).collect();
    let mut rows = Vec::new();
    for p in probes {
        match p.await {
            Ok(r) => rows.push(r),
            Err(e) => return Err(CliError::msg(format!("health probe failed: {e}"))),
        }
    }
    out(&render(&rows));
    if rows.iter().any(|r| !r.errors.is_empty()) {
        return Err(CliError::Message(String::new(), Status::ConnectionLoss));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srvr_and_table() {
        let text = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nZxid: 0x100000005\nMode: follower\nNode count: 5\n";
        assert_eq!(parse_srvr(text), (Some("follower".into()), Some(0x100000005)));
        assert_eq!(parse_srvr("This ZooKeeper instance is not currently serving requests\n"), (None, None));
        let rows = vec![
            Row {
                addr: "127.0.0.1:1".into(),
                role: Some("leader".into()),
                zxid: Some(0x10),
                latency: Some(Duration::from_micros(1500)),
                errors: vec![],
            },
            Row {
                addr: "127.0.0.1:22".into(),
                role: Some("follower".into()),
                zxid: Some(0xd),
                latency: None,
                errors: vec!["x".into()],
            },
        ];
        assert_eq!(
            render(&rows),
            "ADDRESS       ROLE      ZXID  LAG  LATENCY  ERRORS\n\
             127.0.0.1:1   leader    0x10  0    1.5ms    -\n\
             127.0.0.1:22  follower  0xd   3    -        x\n"
        );
        assert_eq!(members("a:1, b:2/chroot"), vec!["a:1".to_string(), "b:2".into()]);
    }
}
