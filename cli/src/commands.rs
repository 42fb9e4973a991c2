//! zkCli's commands: flags, output and messages as ZooKeeper 3.8's zkCli prints them
//! (results on stdout; errors and `Created …` on stderr), plus `--json` on the reads.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use zookeeper_client::{Acls, AddWatchMode, Client, CreateMode, Error as ZkError};

use crate::args::{parse_flags, tokenize, validate_path, FlagSpec, Parsed};
use crate::error::{CliError, CliResult};
use crate::format::{acl_json, format_acl, format_stat, format_time_ms, java_list, parse_acl, stat_json};
use crate::session::{err, out, Ctx, WatchKind};
use crate::{recipes, tree};

/// One command: its name, zkCli's usage line (also the error text for bad arguments),
/// its flags, and whether it needs a session.
pub struct Command {
    pub name: &'static str,
    pub usage: &'static str,
    pub flags: &'static [(char, bool)],
    pub json: bool,
    pub needs_session: bool,
}

const fn cmd(name: &'static str, usage: &'static str, flags: &'static [(char, bool)]) -> Command {
    Command { name, usage, flags, json: false, needs_session: true }
}

const fn read(name: &'static str, usage: &'static str, flags: &'static [(char, bool)]) -> Command {
    Command { name, usage, flags, json: true, needs_session: true }
}

const fn local(name: &'static str, usage: &'static str, flags: &'static [(char, bool)]) -> Command {
    Command { name, usage, flags, json: false, needs_session: false }
}

/// zkCli's commands (usage lines as 3.8 prints them), then Warren's own.
pub const COMMANDS: &[Command] = &[
    cmd(
        "addWatch",
        "addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
        &[('m', true)],
    ),
    cmd("addauth", "addauth scheme auth", &[]),
    local("close", "close ", &[]),
    cmd("config", "config [-c] [-w] [-s]", &[('c', false), ('w', false), ('s', false)]),
    local("connect", "connect host:port", &[]),
    cmd(
        "create",
        "create [-s] [-e] [-c] [-t ttl] path [data] [acl]",
        &[('s', false), ('e', false), ('c', false), ('t', true)],
    ),
    cmd("delete", "delete [-v version] path", &[('v', true)]),
    cmd("deleteall", "deleteall path [-b batch size]", &[('b', true)]),
    read("get", "get [-s] [-w] path", &[('s', false), ('w', false)]),
    read("getAcl", "getAcl [-s] path", &[('s', false)]),
    read("getAllChildrenNumber", "getAllChildrenNumber path", &[]),
    read("getEphemerals", "getEphemerals path", &[]),
    local("history", "history ", &[]),
    read("ls", "ls [-s] [-w] [-R] path", &[('s', false), ('w', false), ('R', false)]),
    local("printwatches", "printwatches on|off", &[]),
    local("quit", "quit ", &[]),
    local("redo", "redo cmdno", &[]),
    cmd("removewatches", "removewatches path [-c|-d|-a] [-l]", &[('c', false), ('d', false), ('a', false), ('l', false)]),
    cmd("set", "set [-s] [-v version] path data", &[('s', false), ('v', true)]),
    cmd("setAcl", "setAcl [-s] [-v version] [-R] path acl", &[('s', false), ('v', true), ('R', false)]),
    read("stat", "stat [-w] path", &[('w', false)]),
    cmd("sync", "sync path", &[]),
    local("version", "version ", &[]),
    cmd("whoami", "whoami ", &[]),
    // Warren's own
    cmd("du", "du path [-n count] # largest subtrees by bytes and by node count", &[('n', true)]),
    cmd(
        "elect",
        "elect path name # campaign for leadership; prints a line when leader, stays until killed",
        &[],
    ),
    local("health", "health [-server host:port,...] # one row per member: role, zxid, lag, latency", &[]),
    local("help", "help ", &[]),
    cmd("lock", "lock path -- cmd [args...] # run cmd holding a lock; exit status is cmd's", &[]),
    cmd("tree", "tree path [-d depth] [-n children] # draw a subtree", &[('d', true), ('n', true)]),
    cmd("watch", "watch path [-c count] # print changes until interrupted", &[('c', true)]),
];

pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// zkCli's usage text: a header, then every command sorted by name.
pub fn usage_text() -> String {
    let mut names: Vec<&Command> = COMMANDS.iter().collect();
    names.sort_by(|a, b| a.name.cmp(b.name));
    let mut s = String::from("warren cli -server host:port[,host:port...] [-timeout ms] [-r] cmd args\n");
    for c in names {
        s.push('\t');
        s.push_str(c.usage);
        s.push('\n');
    }
    s
}

/// Runs one already split command line.
pub async fn execute(ctx: &mut Ctx, words: &[String]) -> CliResult {
    let Some(name) = words.first() else { return Ok(()) };
    let Some(command) = find(name) else {
        err(&usage_text());
        return Err(CliError::msg(format!("Command not found: Command not found {name}")));
    };
    if command.needs_session {
        ctx.client()?;
    }
    // `lock` passes everything after `--` to the child untouched.
    let rest = &words[1..];
    if command.name == "lock" {
        return recipes::lock_command(ctx, rest).await;
    }
    // `health` takes zkCli's long `-server` flag.
    if command.name == "health" {
        return crate::health::health_command(ctx, rest).await;
    }
    let spec = FlagSpec { flags: command.flags, json: command.json };
    let p = parse_flags(rest, &spec, command.usage).map_err(|u| CliError::Usage(u.0))?;
    run(ctx, command, p).await
}

fn usage(c: &Command) -> CliError {
    CliError::Usage(c.usage.to_string())
}

/// Exactly `n` positional words, else the usage line.
fn want<'a>(c: &Command, p: &'a Parsed, n: usize) -> CliResult<&'a [String]> {
    if p.positional.len() == n {
        Ok(&p.positional)
    } else {
        Err(usage(c))
    }
}

fn checked_path(path: &str, sequential: bool) -> CliResult<&str> {
    validate_path(path, sequential).map_err(CliError::msg)?;
    Ok(path)
}

fn parse_version(c: &Command, p: &Parsed) -> CliResult<Option<i32>> {
    match p.value('v') {
        None => Ok(None),
        Some(v) => v.parse::<i32>().map(Some).map_err(|_| usage(c)),
    }
}

fn print_json(v: &serde_json::Value) {
    out(&format!("{v}\n"));
}

fn print_stat(stat: &zookeeper_client::Stat) {
    out(&format_stat(stat, format_time_ms));
}

/// The bytes of a node as zkCli prints them (Java's `new String(bytes)`: UTF-8, lossy).
fn data_text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// A read's result: `--json` as one object (with `stat` when `-s`), else zkCli's text
/// followed by the Stat when `-s`.
fn print_read(p: &Parsed, mut v: serde_json::Value, text: &str, stat: &zookeeper_client::Stat) {
    if p.json {
        if p.has('s') {
            v["stat"] = stat_json(stat);
        }
        print_json(&v);
    } else {
        out(text);
        if p.has('s') {
            print_stat(stat);
        }
    }
}

async fn run(ctx: &mut Ctx, c: &'static Command, p: Parsed) -> CliResult {
    match c.name {
        "help" => {
            out(&usage_text());
            Ok(())
        }
        "version" => {
            out(&format!("Warren CLI version: {}\n", env!("CARGO_PKG_VERSION")));
            Ok(())
        }
        "quit" => {
            ctx.quit = true;
            Ok(())
        }
        "close" => {
            ctx.close().await;
            Ok(())
        }
        "connect" => {
            if let Some(server) = p.positional.first() {
                ctx.server = server.clone();
            }
            ctx.connect().await
        }
        "printwatches" => {
            match p.positional.first().map(String::as_str) {
                None => {
                    let on = ctx.printwatches.load(Ordering::Relaxed);
                    out(&format!("printwatches is {}\n", if on { "on" } else { "off" }));
                }
                Some("on") => ctx.printwatches.store(true, Ordering::Relaxed),
                Some("off") => ctx.printwatches.store(false, Ordering::Relaxed),
                Some(_) => return Err(usage(c)),
            }
            Ok(())
        }
        "history" => {
            let n = ctx.history.len();
            let last = n.saturating_sub(1);
            for (i, line) in ctx.history.iter().enumerate().skip(last.saturating_sub(10)) {
                out(&format!("{i} - {line}\n"));
            }
            Ok(())
        }
        "redo" => redo(ctx, c, &p).await,
        "elect" => {
            let a = want(c, &p, 2)?;
            recipes::elect_command(ctx, &a[0], &a[1]).await
        }
        _ => run_remote(ctx, c, p).await,
    }
}

/// `redo N`: runs history entry N again; it takes this line's place in the history.
async fn redo(ctx: &mut Ctx, c: &Command, p: &Parsed) -> CliResult {
    let n: usize = want(c, p, 1)?[0].parse().map_err(|_| usage(c))?;
    let Some(line) = ctx.history.get(n).cloned() else {
        return Err(CliError::msg("Command index out of range"));
    };
    let words = tokenize(&line);
    if words.first().map(String::as_str) == Some("redo") {
        return Err(CliError::msg("No redo of redo"));
    }
    if let Some(last) = ctx.history.last_mut() {
        *last = line;
    }
    Box::pin(execute(ctx, &words)).await
}

async fn run_remote(ctx: &mut Ctx, c: &'static Command, p: Parsed) -> CliResult {
    let client = ctx.client()?;
    match c.name {
        "ls" => ls(ctx, &client, c, &p).await,
        "get" => get(ctx, &client, c, &p).await,
        "stat" => stat(ctx, &client, c, &p).await,
        "create" => create(&client, c, &p).await,
        "set" => {
            let a = want(c, &p, 2)?;
            let path = checked_path(&a[0], false)?;
            let version = parse_version(c, &p)?;
            let stat = client.set_data(path, a[1].as_bytes(), version).await.map_err(|e| CliError::zk(e, path))?;
            if p.has('s') {
                print_stat(&stat);
            }
            Ok(())
        }
        "delete" => {
            let path = checked_path(&want(c, &p, 1)?[0], false)?;
            let version = parse_version(c, &p)?;
            client.delete(path, version).await.map_err(|e| CliError::zk(e, path))
        }
        "deleteall" => {
            let path = checked_path(&want(c, &p, 1)?[0], false)?;
            tree::delete_all(&client, path).await
        }
        "sync" => {
            let path = checked_path(&want(c, &p, 1)?[0], false)?;
            match client.sync(path).await {
                Ok(()) => {
                    out("Sync is OK\n");
                    Ok(())
                }
                Err(e) => Err(CliError::zk(e, path)),
            }
        }
        "getAcl" => {
            let path = checked_path(&want(c, &p, 1)?[0], false)?;
            let (acl, stat) = client.get_acl(path).await.map_err(|e| CliError::zk(e, path))?;
            print_read(&p, json!({"path": path, "acl": acl_json(&acl)}), &format_acl(&acl), &stat);
            Ok(())
        }
        "setAcl" => set_acl(&client, c, &p).await,
        "addauth" => {
            let a = want(c, &p, 2)?;
            client.auth(&a[0], a[1].as_bytes()).await.map_err(|e| CliError::Zk { err: e, path: None })
        }
        "whoami" => {
            want(c, &p, 0)?;
            let users = client.list_auth_users().await.map_err(|e| CliError::Zk { err: e, path: None })?;
            let mut s = String::from("Auth scheme: User\n");
            for u in users {
                s.push_str(&format!("{}: {}\n", u.scheme(), u.user()));
            }
            out(&s);
            Ok(())
        }
        "getEphemerals" => {
            let path = match p.positional.as_slice() {
                [] => "/",
                [one] => checked_path(one, false)?,
                _ => return Err(usage(c)),
            };
            let list = client.list_ephemerals(path).await.map_err(|e| CliError::zk(e, path))?;
            if p.json {
                print_json(&json!({"path": path, "ephemerals": list}));
            } else {
                out(&format!("{}\n", java_list(&list)));
            }
            Ok(())
        }
        "getAllChildrenNumber" => {
            let path = checked_path(&want(c, &p, 1)?[0], false)?;
            let n = client.count_descendants_number(path).await.map_err(|e| CliError::zk(e, path))?;
            if p.json {
                print_json(&json!({"path": path, "count": n}));
            } else {
                out(&format!("{n}\n"));
            }
            Ok(())
        }
        "config" => config(ctx, &client, c, &p).await,
        "addWatch" => {
            let path = checked_path(&want(c, &p, 1)?[0], false)?;
            let mode = match p.value('m') {
                None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
                Some("PERSISTENT") => AddWatchMode::Persistent,
                Some(_) => return Err(usage(c)),
            };
            let w = client.watch(path, mode).await.map_err(|e| CliError::zk(e, path))?;
            ctx.track_persistent(path, w);
            Ok(())
        }
        "removewatches" => {
            let path = checked_path(&want(c, &p, 1)?[0], false)?;
            let kinds: &[WatchKind] = if p.has('c') {
                &[WatchKind::Child]
            } else if p.has('d') {
                &[WatchKind::Data]
            } else {
                &[WatchKind::Data, WatchKind::Child, WatchKind::Persistent]
            };
            if ctx.watches.remove(path, kinds) == 0 {
                return Err(CliError::zk(ZkError::NoWatcher, path));
            }
            // Let the watch tasks drop their watchers (which sends RemoveWatches).
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(())
        }
        "tree" => tree::tree_command(&client, c, &p).await,
        "du" => tree::du_command(&client, c, &p).await,
        "watch" => crate::watch::watch_command(&client, c, &p).await,
        _ => Err(CliError::msg(format!("Command not found: Command not found {}", c.name))),
    }
}

async fn ls(ctx: &Ctx, client: &Client, c: &Command, p: &Parsed) -> CliResult {
    let path = checked_path(&want(c, p, 1)?[0], false)?;
    if p.has('R') {
        let all = tree::list_bfs(client, path).await?;
        if p.json {
            print_json(&json!({"path": path, "descendants": all}));
        } else {
            let mut s = String::new();
            for n in all {
                s.push_str(&n);
                s.push('\n');
            }
            out(&s);
        }
        return Ok(());
    }
    let (mut children, stat) = if p.has('w') {
        let (ch, st, w) = client.get_and_watch_children(path).await.map_err(|e| CliError::zk(e, path))?;
        ctx.track_oneshot(path, WatchKind::Child, w);
        (ch, st)
    } else {
        client.get_children(path).await.map_err(|e| CliError::zk(e, path))?
    };
    children.sort();
    let text = format!("{}\n", java_list(&children));
    print_read(p, json!({"path": path, "children": children}), &text, &stat);
    Ok(())
}

async fn get(ctx: &Ctx, client: &Client, c: &Command, p: &Parsed) -> CliResult {
    let path = checked_path(&want(c, p, 1)?[0], false)?;
    let (data, stat) = if p.has('w') {
        let (d, s, w) = client.get_and_watch_data(path).await.map_err(|e| CliError::zk(e, path))?;
        ctx.track_oneshot(path, WatchKind::Data, w);
        (d, s)
    } else {
        client.get_data(path).await.map_err(|e| CliError::zk(e, path))?
    };
    let text = data_text(&data);
    print_read(p, json!({"path": path, "data": text}), &format!("{text}\n"), &stat);
    Ok(())
}

async fn stat(ctx: &Ctx, client: &Client, c: &Command, p: &Parsed) -> CliResult {
    let path = checked_path(&want(c, p, 1)?[0], false)?;
    let stat = if p.has('w') {
        let (s, w) = client.check_and_watch_stat(path).await.map_err(|e| CliError::zk(e, path))?;
        ctx.track_oneshot(path, WatchKind::Data, w);
        s
    } else {
        client.check_stat(path).await.map_err(|e| CliError::zk(e, path))?
    };
    let Some(stat) = stat else { return Err(CliError::zk(ZkError::NoNode, path)) };
    if p.json {
        print_json(&json!({"path": path, "stat": stat_json(&stat)}));
    } else {
        print_stat(&stat);
    }
    Ok(())
}

async fn create(client: &Client, c: &Command, p: &Parsed) -> CliResult {
    let (path, data, acl_text) = match p.positional.as_slice() {
        [path] => (path, "", None),
        [path, data] => (path, data.as_str(), None),
        [path, data, acl] => (path, data.as_str(), Some(acl.as_str())),
        _ => return Err(usage(c)),
    };
    let (seq, eph, container) = (p.has('s'), p.has('e'), p.has('c'));
    let ttl = match p.value('t') {
        None => None,
        Some(t) => match t.parse::<u64>() {
            Ok(ms) if ms > 0 => Some(Duration::from_millis(ms)),
            _ => return Err(CliError::msg(format!("ttl must be a positive number of ms: {t}"))),
        },
    };
    if container && (seq || eph) {
        return Err(CliError::msg(
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
        ));
    }
    if ttl.is_some() && (eph || container) {
        return Err(CliError::msg("TTLs cannot be used with Ephemeral or Container znodes"));
    }
    let path = checked_path(path, seq)?;
    let mode = match (container, eph, seq) {
        (true, _, _) => CreateMode::Container,
        (false, true, true) => CreateMode::EphemeralSequential,
        (false, true, false) => CreateMode::Ephemeral,
        (false, false, true) => CreateMode::PersistentSequential,
        (false, false, false) => CreateMode::Persistent,
    };
    let acl_list = match acl_text {
        Some(t) => Some(parse_acl(t).map_err(CliError::msg)?),
        None => None,
    };
    let acls = match &acl_list {
        Some(list) => Acls::new(list),
        None => Acls::anyone_all(),
    };
    let mut options = mode.with_acls(acls);
    if let Some(ttl) = ttl {
        options = options.with_ttl(ttl);
    }
    let (_, sequence) = client.create(path, data.as_bytes(), &options).await.map_err(|e| CliError::zk(e, path))?;
    let created = if seq { format!("{path}{sequence}") } else { path.to_string() };
    err(&format!("Created {created}\n"));
    Ok(())
}

async fn set_acl(client: &Client, c: &Command, p: &Parsed) -> CliResult {
    let a = want(c, p, 2)?;
    let path = checked_path(&a[0], false)?;
    let acl = parse_acl(&a[1]).map_err(CliError::msg)?;
    let version = parse_version(c, p)?;
    if p.has('R') {
        for node in tree::list_bfs(client, path).await? {
            client.set_acl(&node, &acl, None).await.map_err(|e| CliError::zk(e, &node))?;
        }
        return Ok(());
    }
    let stat = client.set_acl(path, &acl, version).await.map_err(|e| CliError::zk(e, path))?;
    if p.has('s') {
        print_stat(&stat);
    }
    Ok(())
}

async fn config(ctx: &Ctx, client: &Client, c: &Command, p: &Parsed) -> CliResult {
    want(c, p, 0)?;
    const CONFIG: &str = "/zookeeper/config";
    let (data, stat) = if p.has('w') {
        let (d, s, w) = client.get_and_watch_config().await.map_err(|e| CliError::zk(e, CONFIG))?;
        ctx.track_oneshot(CONFIG, WatchKind::Data, w);
        (d, s)
    } else {
        client.get_config().await.map_err(|e| CliError::zk(e, CONFIG))?
    };
    let text = data_text(&data);
    if p.has('c') {
        out(&format!("{}\n", client_config(&text)));
    } else {
        out(&format!("{text}\n"));
    }
    if p.has('s') {
        print_stat(&stat);
    }
    Ok(())
}

/// `config -c`: the config's version and the members' client addresses
/// (`server.N=…;host:port` lines), as ZooKeeper's ConfigUtils.getClientConfigStr.
pub fn client_config(text: &str) -> String {
    let mut version = String::new();
    let mut hosts = Vec::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("version=") {
            version = v.trim().to_string();
        } else if line.starts_with("server.") {
            if let Some((_, client)) = line.split_once(';') {
                let client = client.trim();
                let client = match client.rsplit_once(':') {
                    Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
                    _ => client.to_string(),
                };
                hosts.push(client);
            }
        }
    }
    format!("{version} {}", hosts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_sorted_like_zkcli() {
        let text = usage_text();
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert!(lines[0].starts_with("\taddWatch"), "{}", lines[0]);
        assert!(lines[1].starts_with("\taddauth"));
        let names: Vec<&str> = lines.iter().map(|l| l.trim_start().split(' ').next().unwrap_or("")).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), COMMANDS.len());
    }

    #[test]
    fn client_config_lists_client_ports() {
        let cfg = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                   server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\nversion=100000000";
        assert_eq!(client_config(cfg), "100000000 127.0.0.1:2181,127.0.0.1:2182");
        assert_eq!(client_config(""), " ");
    }
}
