//! The interactive shell: zkCli's prompt, line editing and history that survives the
//! process (rustyline), and tab completion of command names and of znode paths (the
//! children of the typed parent, asked from the server). When stdin is not a terminal it
//! reads commands line by line without a prompt, as zkCli does without JLine.

use std::borrow::Cow;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Config, Context, Editor, Helper};
use tokio::runtime::Runtime;
use zookeeper_client::Client;

use crate::args::{tokenize, GlobalOptions};
use crate::commands::{self, COMMANDS};
use crate::error::Status;
use crate::session::{err, out, prompt_state, Ctx};

/// Lines kept in the history file.
const HISTORY_MAX: usize = 1000;
/// A completion that needs the server waits at most this long.
const COMPLETE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WARREN_CLI_HISTORY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".warren_cli_history"))
}

struct ZkHelper {
    client: Arc<Mutex<Option<Client>>>,
    runtime: tokio::runtime::Handle,
}

/// Where the word being completed starts, and the word.
pub fn current_word(line: &str, pos: usize) -> (usize, &str) {
    let before = &line[..pos];
    let start = before.rfind(char::is_whitespace).map(|i| i + 1).unwrap_or(0);
    (start, &before[start..])
}

/// The parent to list and the name prefix for a partial path: `/a/b` → (`/a`, `b`).
pub fn split_partial(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

pub fn complete_command(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> =
        COMMANDS.iter().filter(|c| c.name.starts_with(prefix)).map(|c| format!("{} ", c.name)).collect();
    names.sort();
    names
}

impl ZkHelper {
    fn complete_path(&self, partial: &str) -> Vec<String> {
        let client = self.client.lock().ok().and_then(|c| c.clone());
        let Some(client) = client else { return Vec::new() };
        let (parent, prefix) = split_partial(partial);
        let listing =
            self.runtime.block_on(async { tokio::time::timeout(COMPLETE_TIMEOUT, client.list_children(parent)).await });
        let Ok(Ok(mut children)) = listing else { return Vec::new() };
        children.sort();
        children.into_iter().filter(|c| c.starts_with(prefix)).map(|c| crate::tree::child_path(parent, &c)).collect()
    }
}

impl Completer for ZkHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, word) = current_word(line, pos);
        let candidates = if line[..start].trim().is_empty() {
            complete_command(word)
        } else if word.starts_with('/') {
            self.complete_path(word)
        } else {
            Vec::new()
        };
        Ok((
            start,
            candidates.into_iter().map(|c| Pair { display: c.trim_end().to_string(), replacement: c }).collect(),
        ))
    }
}

impl Hinter for ZkHelper {
    type Hint = String;
}

impl Highlighter for ZkHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(&'s self, prompt: &'p str, _default: bool) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for ZkHelper {}

impl Helper for ZkHelper {}

/// Runs one line: records it in zkCli's numbered history, prints an error if any.
/// Returns the line's status.
fn run_line(rt: &Runtime, ctx: &mut Ctx, line: &str) -> u8 {
    let words = tokenize(line);
    if words.is_empty() {
        return 0;
    }
    ctx.history.push(line.trim().to_string());
    crate::error::report(rt.block_on(commands::execute(ctx, &words)))
}

pub fn run(rt: &Runtime, opts: GlobalOptions) -> u8 {
    let mut ctx = Ctx::new(opts.server.clone(), opts.timeout_ms, opts.readonly, true);
    out(&format!("Connecting to {}\n", opts.server));
    if let Err(e) = rt.block_on(ctx.connect()) {
        err(&format!("{}\n", e.message()));
    }
    let status = if std::io::stdin().is_terminal() { interactive(rt, &mut ctx) } else { piped(rt, &mut ctx) };
    rt.block_on(ctx.close());
    status
}

/// No terminal: one command per line, no prompt; the status is the last command's.
fn piped(rt: &Runtime, ctx: &mut Ctx) -> u8 {
    let mut status = 0;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        status = run_line(rt, ctx, &line);
        if ctx.quit {
            break;
        }
    }
    status
}

fn interactive(rt: &Runtime, ctx: &mut Ctx) -> u8 {
    let config = Config::builder().max_history_size(HISTORY_MAX).map(|b| b.auto_add_history(false).build());
    let editor = config.and_then(Editor::<ZkHelper, DefaultHistory>::with_config);
    let mut rl = match editor {
        Ok(rl) => rl,
        Err(e) => {
            err(&format!("no line editor ({e}); reading plain lines\n"));
            return piped(rt, ctx);
        }
    };
    rl.set_helper(Some(ZkHelper { client: ctx.client.clone(), runtime: rt.handle().clone() }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    loop {
        let current = ctx.client.lock().ok().and_then(|c| c.clone());
        let prompt = format!("[zk: {}({}) {}] ", ctx.server, prompt_state(current.as_ref()), ctx.history.len());
        drop(current);
        match rl.readline(&prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = rl.add_history_entry(line.as_str());
                    if let Some(h) = &history {
                        if let Err(e) = rl.save_history(h) {
                            err(&format!("cannot save history to {}: {e}\n", h.display()));
                        }
                    }
                }
                run_line(rt, ctx, &line);
                if ctx.quit {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                err(&format!("{e}\n"));
                return Status::Other as u8;
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_words() {
        assert_eq!(current_word("ls /zk", 6), (3, "/zk"));
        assert_eq!(current_word("getA", 4), (0, "getA"));
        assert_eq!(split_partial("/zk_t"), ("/", "zk_t"));
        assert_eq!(split_partial("/a/b/c"), ("/a/b", "c"));
        assert_eq!(split_partial("/a/"), ("/a", ""));
        assert_eq!(complete_command("getA"), vec!["getAcl ".to_string(), "getAllChildrenNumber ".into()]);
        assert_eq!(complete_command("delete"), vec!["delete ".to_string(), "deleteall ".into()]);
    }
}
