//! `warren cli`: an operator shell compatible with ZooKeeper's zkCli, built on the
//! `zookeeper-client` crate. See docs/cli.md for the commands, the exit statuses and
//! the differences from zkCli.
//!
//! `warren cli [-server host:port[,host:port…]] [-timeout ms] [-r] [COMMAND ARGS…]`:
//! with a command, run it and exit with its status; without, an interactive shell.

mod args;
mod commands;
mod error;
mod format;
mod health;
mod recipes;
mod session;
mod shell;
mod tree;
mod watch;

use std::process::ExitCode;

pub use error::Status;

use crate::args::GlobalOptions;
use crate::session::{err, Ctx};

/// Entry point of `warren cli`; `args` are the words after `cli`.
pub fn main(args: Vec<String>) -> ExitCode {
    let opts = match args::parse_global(&args) {
        Ok(o) => o,
        Err(e) => {
            err(&format!("{e}\n"));
            return Status::Other.into();
        }
    };
    // The client crate logs connection changes at INFO; zkCli's output must not carry
    // them. WARREN_LOG (the server's log filter) turns them back on.
    let quiet = std::env::var_os("WARREN_LOG").is_none();
    let _guard = quiet.then(|| tracing::dispatcher::set_default(&silent()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            if quiet {
                // Worker threads live as long as the runtime: keep the guard with them.
                std::mem::forget(tracing::dispatcher::set_default(&silent()));
            }
        })
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            err(&format!("cannot start the runtime: {e}\n"));
            return Status::Other.into();
        }
    };
    let code = if opts.command.is_empty() { shell::run(&runtime, opts) } else { runtime.block_on(one_shot(opts)) };
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(code)
}

fn silent() -> tracing::Dispatch {
    tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default())
}

/// Runs one command on its own session, closes the session, returns the exit status.
async fn one_shot(opts: GlobalOptions) -> u8 {
    let mut ctx = Ctx::new(opts.server.clone(), opts.timeout_ms, opts.readonly, false);
    let needs_session = commands::find(&opts.command[0]).is_some_and(|c| c.needs_session);
    if needs_session {
        if let Err(e) = ctx.connect().await {
            err(&format!("{}\n", e.message()));
            return e.code();
        }
    }
    let result = commands::execute(&mut ctx, &opts.command).await;
    ctx.close().await;
    error::report(result)
}
