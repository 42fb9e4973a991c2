//! What a command can fail with, the message zkCli prints for it, and the exit status a
//! script sees (documented in docs/cli.md; keep the two in step).

use std::process::ExitCode;

use zookeeper_client::Error as ZkError;

/// Exit statuses of `warren cli`. Each ZooKeeper error a script may want to branch on has
/// its own; everything else is 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Ok = 0,
    /// Bad usage, or any error without a status of its own.
    Other = 1,
    NoNode = 2,
    NodeExists = 3,
    BadVersion = 4,
    NotEmpty = 5,
    NoAuth = 6,
    /// Could not connect, or the connection was lost during the command.
    ConnectionLoss = 7,
    SessionExpired = 8,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        ExitCode::from(s as u8)
    }
}

#[derive(Debug, Clone)]
pub enum CliError {
    /// Wrong arguments: the message is the usage line.
    Usage(String),
    /// A ZooKeeper error on `path` (None for ops without one, e.g. whoami).
    Zk { err: ZkError, path: Option<String> },
    /// A message printed as is, with the status given.
    Message(String, Status),
    /// Nothing to print; exit with this status (`lock` passes on its command's).
    Exit(u8),
}

pub type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    pub fn zk(err: ZkError, path: &str) -> CliError {
        CliError::Zk { err, path: Some(path.to_string()) }
    }

    pub fn msg(text: impl Into<String>) -> CliError {
        CliError::Message(text.into(), Status::Other)
    }

    pub fn status(&self) -> Status {
        match self {
            CliError::Usage(_) => Status::Other,
            CliError::Message(_, s) => *s,
            CliError::Zk { err, .. } => zk_status(err),
            CliError::Exit(_) => Status::Other,
        }
    }

    /// The process exit status for this error.
    pub fn code(&self) -> u8 {
        match self {
            CliError::Exit(c) => *c,
            other => other.status() as u8,
        }
    }

    /// The text zkCli prints on stderr for this error (without the newline).
    pub fn message(&self) -> String {
        match self {
            CliError::Usage(u) => u.clone(),
            CliError::Message(m, _) => m.clone(),
            CliError::Zk { err, path } => zk_message(err, path.as_deref()),
            CliError::Exit(_) => String::new(),
        }
    }
}

/// Prints a command's error (if it has a message) on stderr; returns the exit status.
pub fn report(result: CliResult) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            let msg = e.message();
            if !msg.is_empty() {
                crate::session::err(&format!("{msg}\n"));
            }
            e.code()
        }
    }
}

pub fn zk_status(err: &ZkError) -> Status {
    match err {
        ZkError::NoNode => Status::NoNode,
        ZkError::NodeExists => Status::NodeExists,
        ZkError::BadVersion => Status::BadVersion,
        ZkError::NotEmpty => Status::NotEmpty,
        ZkError::NoAuth => Status::NoAuth,
        ZkError::ConnectionLoss | ZkError::NoHosts | ZkError::Timeout | ZkError::ClientClosed => Status::ConnectionLoss,
        ZkError::SessionExpired => Status::SessionExpired,
        _ => Status::Other,
    }
}

/// zkCli's wording: its own for the common errors (CliWrapperException), otherwise
/// KeeperException's `KeeperErrorCode = <Name> for <path>`.
pub fn zk_message(err: &ZkError, path: Option<&str>) -> String {
    let p = path.unwrap_or("");
    match err {
        ZkError::NoNode => format!("Node does not exist: {p}"),
        ZkError::NodeExists => format!("Node already exists: {p}"),
        ZkError::BadVersion => format!("version No is not valid : {p}"),
        ZkError::NoAuth => format!("Insufficient permission : {p}"),
        ZkError::NotEmpty => format!("Node not empty: {p}"),
        ZkError::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {p}"),
        ZkError::InvalidAcl => format!("Acl is not valid : {p}"),
        ZkError::AuthFailed => keeper_code("AuthFailed", path),
        ZkError::SessionExpired => keeper_code("Session expired", path),
        ZkError::ConnectionLoss | ZkError::ClientClosed => keeper_code("ConnectionLoss", path),
        ZkError::NoHosts | ZkError::Timeout => format!("Unable to connect to the server: {err}"),
        ZkError::Unimplemented => keeper_code("Unimplemented", path),
        ZkError::NoWatcher => keeper_code("No such watcher", path),
        ZkError::QuotaExceeded => keeper_code("Quota has exceeded", path),
        ZkError::SessionMoved => keeper_code("Session moved", path),
        ZkError::NotReadOnly => keeper_code("Not a read-only call", path),
        ZkError::MarshallingError => keeper_code("MarshallingError", path),
        ZkError::ReconfigDisabled => keeper_code("Reconfig is disabled", path),
        ZkError::Throttled => keeper_code("Op throttled due to high load", path),
        ZkError::BadArguments(what) => format!("Bad arguments: {what}"),
        other => match path {
            Some(p) => format!("{other} for {p}"),
            None => other.to_string(),
        },
    }
}

fn keeper_code(name: &str, path: Option<&str>) -> String {
    match path {
        Some(p) => format!("KeeperErrorCode = {name} for {p}"),
        None => format!("KeeperErrorCode = {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scripted_status_is_distinct() {
        let all = [
            Status::Ok,
            Status::Other,
            Status::NoNode,
            Status::NodeExists,
            Status::BadVersion,
            Status::NotEmpty,
            Status::NoAuth,
            Status::ConnectionLoss,
            Status::SessionExpired,
        ];
        let mut codes: Vec<u8> = all.iter().map(|s| *s as u8).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn zkcli_messages() {
        let e = CliError::zk(ZkError::NoNode, "/x");
        assert_eq!((e.message().as_str(), e.status()), ("Node does not exist: /x", Status::NoNode));
        assert_eq!(CliError::zk(ZkError::BadVersion, "/x").message(), "version No is not valid : /x");
        assert_eq!(CliError::zk(ZkError::NoAuth, "/x").status(), Status::NoAuth);
        assert_eq!(CliError::zk(ZkError::Unimplemented, "/t").message(), "KeeperErrorCode = Unimplemented for /t");
        assert_eq!(CliError::zk(ZkError::SessionExpired, "/t").status(), Status::SessionExpired);
        assert_eq!(CliError::zk(ZkError::NoHosts, "/t").status(), Status::ConnectionLoss);
    }
}
