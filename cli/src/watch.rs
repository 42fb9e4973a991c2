//! `watch PATH`: prints the node's data and children, then every change, re-arming the
//! one-shot watches after each event, until interrupted (or after `-c N` events).
//!
//! Two watches are kept: a data watch (getData, or exists while the node is missing, so
//! its creation is seen) and a child watch (getChildren, while the node exists). Only the
//! watch that fired is set again, so the other one is never dropped and re-sent.

use std::future::Future;
use std::pin::Pin;

use zookeeper_client::{Client, EventType, WatchedEvent};

use crate::args::{validate_path, Parsed};
use crate::commands::Command;
use crate::error::{CliError, CliResult};
use crate::format::java_list;
use crate::session::{ended, event_text, out, settle};

type Pending = Pin<Box<dyn Future<Output = WatchedEvent> + Send>>;

pub async fn watch_command(client: &Client, c: &Command, p: &Parsed) -> CliResult {
    let [path] = p.positional.as_slice() else { return Err(CliError::Usage(c.usage.to_string())) };
    validate_path(path, false).map_err(CliError::msg)?;
    let limit: u64 = match p.value('c') {
        None => 0,
        Some(v) => v.parse().map_err(|_| CliError::Usage(c.usage.to_string()))?,
    };
    let mut data_watch: Option<Pending> = None;
    let mut child_watch: Option<Pending> = None;
    let mut seen = 0u64;
    let mut show_data = true;
    let mut show_children = true;
    loop {
        if data_watch.is_none() {
            match client.get_and_watch_data(path).await {
                Ok((data, _, w)) => {
                    if show_data {
                        out(&format!("data = {}\n", String::from_utf8_lossy(&data)));
                    }
                    data_watch = Some(Box::pin(w.changed()));
                }
                Err(zookeeper_client::Error::NoNode) => {
                    let (stat, w) = match client.check_and_watch_stat(path).await {
                        Ok(r) => r,
                        Err(e) => return Err(lost_or(client, e, path).await),
                    };
                    if stat.is_none() && show_data {
                        out(&format!("{path} does not exist\n"));
                    }
                    // Created meanwhile: the exists watch fires on its next change, and
                    // the data is printed then; good enough for an operator's view.
                    data_watch = Some(Box::pin(w.changed()));
                }
                Err(e) => return Err(lost_or(client, e, path).await),
            }
        }
        if child_watch.is_none() {
            match client.get_and_watch_children(path).await {
                Ok((mut children, _, w)) => {
                    children.sort();
                    if show_children {
                        out(&format!("children = {}\n", java_list(&children)));
                    }
                    child_watch = Some(Box::pin(w.changed()));
                }
                Err(zookeeper_client::Error::NoNode) => {}
                Err(e) => return Err(lost_or(client, e, path).await),
            }
        }
        if limit > 0 && seen >= limit {
            return Ok(());
        }
        let ev = tokio::select! {
            ev = fire(&mut data_watch) => {
                data_watch = None;
                ev
            }
            ev = fire(&mut child_watch) => {
                child_watch = None;
                ev
            }
            r = tokio::signal::ctrl_c() => {
                let _ = r;
                return Ok(());
            }
        };
        if ev.event_type == EventType::Session {
            // Disconnected: wait for the session to come back (watches are re-set by the
            // client) or to end.
            settle(client).await.map_err(|s| ended(s, path))?;
            continue;
        }
        out(&format!("{}\n", event_text(&ev)));
        seen += 1;
        if ev.event_type == EventType::NodeDeleted {
            // Both watches fire on a delete: one line is enough.
            child_watch = None;
            data_watch = None;
        }
        show_data = data_watch.is_none();
        show_children = child_watch.is_none();
    }
}

/// The watch's event; never, when no watch is armed.
async fn fire(watch: &mut Option<Pending>) -> WatchedEvent {
    match watch.as_mut() {
        Some(w) => w.await,
        None => std::future::pending().await,
    }
}

/// An error while arming a watch: if the session is gone (or going), that is the error.
async fn lost_or(client: &Client, e: zookeeper_client::Error, path: &str) -> CliError {
    let waited = tokio::time::timeout(client.session_timeout() * 2, settle(client)).await;
    match waited {
        Ok(Err(state)) => ended(state, path),
        _ => CliError::zk(e, path),
    }
}
