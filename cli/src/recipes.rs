//! `lock` and `elect`: the ephemeral-sequential recipe of the ZooKeeper documentation.
//! Each contender creates `DIR/<prefix><sequence>` (ephemeral, sequential), and the one
//! with the lowest sequence holds the lock / leads. The others each watch only their
//! predecessor (no herd effect) and look again when it goes. A contender whose session
//! ends loses its node, so a crashed holder releases the lock after its session timeout.

use std::os::unix::process::ExitStatusExt;

use tokio::signal::unix::{signal, SignalKind};
use zookeeper_client::{Acls, Client, CreateMode, EventType, SessionState};

use crate::args::validate_path;
use crate::error::{CliError, CliResult, Status};
use crate::session::{err, out, session_end, Ctx};
use crate::tree::child_path;

const LOCK_PREFIX: &str = "lock-";
const ELECT_PREFIX: &str = "n_";
const LOCK_USAGE: &str = "lock path -- cmd [args...]";

/// Creates our contender node; returns its name (not the path).
async fn enqueue(client: &Client, dir: &str, prefix: &str, data: &[u8]) -> CliResult<String> {
    let persistent = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client.mkdir(dir, &persistent).await.map_err(|e| CliError::zk(e, dir))?;
    let ours = child_path(dir, prefix);
    let options = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    let (_, seq) = client.create(&ours, data, &options).await.map_err(|e| CliError::zk(e, &ours))?;
    Ok(format!("{prefix}{seq}"))
}

/// The contenders under `dir` in queue order (by sequence number).
fn queue(mut names: Vec<String>, prefix: &str) -> Vec<String> {
    names.retain(|n| n.starts_with(prefix) && n[prefix.len()..].parse::<i64>().is_ok());
    names.sort_by_key(|n| n[prefix.len()..].parse::<i64>().unwrap_or(i64::MAX));
    names
}

/// Waits until `ours` is first in the queue under `dir`.
async fn wait_first(client: &Client, dir: &str, prefix: &str, ours: &str) -> CliResult {
    loop {
        let names = client.list_children(dir).await.map_err(|e| CliError::zk(e, dir))?;
        let q = queue(names, prefix);
        let Some(pos) = q.iter().position(|n| n == ours) else {
            return Err(CliError::Message(
                format!("{}: our node is gone (session expired?)", child_path(dir, ours)),
                Status::SessionExpired,
            ));
        };
        if pos == 0 {
            return Ok(());
        }
        let pred = child_path(dir, &q[pos - 1]);
        let (stat, watcher) = client.check_and_watch_stat(&pred).await.map_err(|e| CliError::zk(e, &pred))?;
        if stat.is_none() {
            continue; // gone between the listing and the watch: look again
        }
        let ev = watcher.changed().await;
        if ev.event_type == EventType::Session && ev.session_state.is_terminated() {
            return Err(session_lost(ev.session_state));
        }
    }
}

fn session_lost(state: SessionState) -> CliError {
    let status = if state == SessionState::Expired { Status::SessionExpired } else { Status::ConnectionLoss };
    CliError::Message(format!("session ended ({state}): lock or leadership lost"), status)
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// `lock PATH -- CMD…`
pub async fn lock_command(ctx: &mut Ctx, words: &[String]) -> CliResult {
    let (path, cmd) = match words {
        [path, dash, cmd @ ..] if dash == "--" && !cmd.is_empty() => (path.as_str(), cmd),
        _ => return Err(CliError::Usage(LOCK_USAGE.into())),
    };
    validate_path(path, false).map_err(CliError::msg)?;
    let client = ctx.client()?;
    let ours = enqueue(&client, path, LOCK_PREFIX, b"").await?;
    let ours_path = child_path(path, &ours);
    tokio::select! {
        r = wait_first(&client, path, LOCK_PREFIX, &ours) => r?,
        _ = interrupted() => {
            let _ = client.delete(&ours_path, None).await;
            return Err(CliError::Exit(130));
        }
    }
    let status = run_locked(&client, cmd).await;
    // Released on every path out: a failed delete still ends with the session.
    let _ = client.delete(&ours_path, None).await;
    status
}

/// Runs the command while the lock is held. If the session ends first the lock is no
/// longer ours: the command is stopped (SIGTERM) and the status says why.
async fn run_locked(client: &Client, cmd: &[String]) -> CliResult {
    let mut command = tokio::process::Command::new(&cmd[0]);
    command.args(&cmd[1..]);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill the child when
    // this process dies, so a SIGKILLed `warren cli lock` does not leave its command
    // running without the lock.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return Err(CliError::Message(format!("lock: cannot run {}: {e}", cmd[0]), Status::Other)),
    };
    tokio::select! {
        status = child.wait() => match status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(0), _) => Ok(()),
                (Some(c), _) => Err(CliError::Exit(c.clamp(0, 255) as u8)),
                (None, Some(sig)) => Err(CliError::Exit((128 + sig).clamp(0, 255) as u8)),
                (None, None) => Err(CliError::Exit(1)),
            },
            Err(e) => Err(CliError::msg(format!("lock: waiting for {}: {e}", cmd[0]))),
        },
        state = session_end(client) => {
            if let Some(pid) = child.id() {
                // SAFETY: plain kill(2) on our own child's pid.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
            let _ = child.wait().await;
            Err(session_lost(state))
        }
    }
}

/// `elect PATH NAME`
pub async fn elect_command(ctx: &mut Ctx, path: &str, name: &str) -> CliResult {
    validate_path(path, false).map_err(CliError::msg)?;
    let client = ctx.client()?;
    let ours = enqueue(&client, path, ELECT_PREFIX, name.as_bytes()).await?;
    let ours_path = child_path(path, &ours);
    err(&format!("{name}: campaigning as {ours_path}\n"));
    tokio::select! {
        r = wait_first(&client, path, ELECT_PREFIX, &ours) => r?,
        _ = interrupted() => return Ok(()),
    }
    out(&format!("{name} is the leader ({ours_path})\n"));
    tokio::select! {
        state = session_end(&client) => Err(session_lost(state)),
        _ = interrupted() => {
            let _ = client.delete(&ours_path, None).await;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_orders_by_sequence_and_ignores_strangers() {
        let names = vec!["lock-0000000010".to_string(), "x".into(), "lock-0000000002".into(), "lock-abc".into()];
        assert_eq!(queue(names, "lock-"), vec!["lock-0000000002".to_string(), "lock-0000000010".into()]);
    }
}
