//! `server.N` addresses as written, and their resolution into socket addresses.
//!
//! A member's host is an IP literal or a name. A literal needs no lookup ([`PeerAddr::literal`],
//! the fast path). A name is looked up again at every use, so that a name that resolves only
//! after start-up (a DNS record created with the pod) and a name that moves to another address
//! (a rescheduled pod, a replaced machine) are both followed. A failed lookup is an error,
//! never a wildcard: nothing dials or binds `0.0.0.0` because a name did not resolve, and a name
//! that resolves only to an unspecified address (`0.0.0.0`, `::`, as some DNS filters answer)
//! is refused too. Of several addresses the first usable one in getaddrinfo's order is taken,
//! as the start-up lookup did before names were resolved per connection.
//!
//! Lookups block (getaddrinfo reads /etc/hosts and asks DNS, which can take seconds), so
//! [`resolve`] runs each one on a short-lived helper thread and awaits its answer: the executor
//! that runs the state machine never waits for DNS. glommio's own blocking pool is not used
//! because the log's renames go through it, and a slow lookup must not hold up the log. Every
//! caller awaits its lookup before starting another, so the threads in flight are bounded by
//! the number of members.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// One address of a `server.N` line: its host as written (IPv6 without brackets) and a port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    host: String,
    port: u16,
}

impl PeerAddr {
    pub fn new(host: impl Into<String>, port: u16) -> PeerAddr {
        PeerAddr { host: host.into(), port }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address itself when the host is an IP literal: no lookup needed.
    pub fn literal(&self) -> Option<SocketAddr> {
        self.host.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> PeerAddr {
        PeerAddr { host: a.ip().to_string(), port: a.port() }
    }
}

/// `host:port`, `[v6]:port` for an IPv6 literal: for a literal, exactly what the socket
/// address prints.
impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.literal() {
            Some(a) => a.fmt(f),
            None => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot resolve host {host:?}: {why}")]
    Lookup { host: String, why: String },
    #[error("host {host:?} resolves to no address")]
    NoAddress { host: String },
    #[error("host {host:?} resolves only to the unspecified address {ip}, which names no server")]
    Unspecified { host: String, ip: IpAddr },
    #[error("cannot look up host {host:?}: no lookup thread ({why})")]
    Thread { host: String, why: String },
}

/// The address to use of those a lookup of `addr`'s host gave: the first that is not
/// unspecified.
pub fn pick(addr: &PeerAddr, found: impl IntoIterator<Item = SocketAddr>) -> Result<SocketAddr, ResolveError> {
    let mut unspecified = None;
    for a in found {
        if !a.ip().is_unspecified() {
            return Ok(a);
        }
        unspecified = Some(a.ip());
    }
    let host = addr.host.clone();
    Err(match unspecified {
        Some(ip) => ResolveError::Unspecified { host, ip },
        None => ResolveError::NoAddress { host },
    })
}

/// Resolves `addr` on the calling thread, which blocks during a lookup: only for threads
/// that may block (never an executor's).
pub fn resolve_blocking(addr: &PeerAddr) -> Result<SocketAddr, ResolveError> {
    if let Some(a) = addr.literal() {
        return Ok(a);
    }
    let found = (addr.host.as_str(), addr.port)
        .to_socket_addrs()
        .map_err(|e| ResolveError::Lookup { host: addr.host.clone(), why: e.to_string() })?;
    pick(addr, found)
}

/// Resolves `addr` without blocking the executor: a literal at once, a name on a helper
/// thread whose answer is awaited.
pub async fn resolve(addr: &PeerAddr) -> Result<SocketAddr, ResolveError> {
    if let Some(a) = addr.literal() {
        return Ok(a);
    }
    let (tx, rx) = async_channel::bounded(1);
    let target = addr.clone();
    let thread_error = |why: String| ResolveError::Thread { host: addr.host.clone(), why };
    std::thread::Builder::new()
        .name("warren-resolve".into())
        .spawn(move || {
            // The caller may be gone (its links shut down): then nobody needs the answer.
            let _ = tx.try_send(resolve_blocking(&target));
        })
        .map_err(|e| thread_error(e.to_string()))?;
    rx.recv().await.unwrap_or_else(|_| Err(thread_error("it ended without an answer".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name that never resolves (RFC 6761 reserves `.invalid`).
    const NOWHERE: &str = "warren-unit-test.invalid";

    #[test]
    fn literals_need_no_lookup_and_print_as_socket_addresses() {
        let v4 = PeerAddr::new("127.0.0.7", 3888);
        assert_eq!(v4.literal(), Some("127.0.0.7:3888".parse().unwrap()));
        assert_eq!(v4.to_string(), "127.0.0.7:3888");
        let v6 = PeerAddr::new("::1", 3888);
        assert_eq!(v6.literal(), Some("[::1]:3888".parse().unwrap()));
        assert_eq!(v6.to_string(), "[::1]:3888");
        let name = PeerAddr::new("zk-1.example", 2888);
        assert_eq!(name.literal(), None);
        assert_eq!(name.to_string(), "zk-1.example:2888");
        // A literal wildcard is what the line says: kept, not looked up.
        assert_eq!(resolve_blocking(&PeerAddr::new("0.0.0.0", 1)), Ok("0.0.0.0:1".parse().unwrap()));
        let a: SocketAddr = "[fe80::1]:9".parse().unwrap();
        assert_eq!(PeerAddr::from(a).literal(), Some(a));
    }

    #[test]
    fn pick_takes_the_first_specified_address_and_never_a_wildcard() {
        let addr = PeerAddr::new("zk", 3888);
        let (any4, any6): (SocketAddr, SocketAddr) = ("0.0.0.0:3888".parse().unwrap(), "[::]:3888".parse().unwrap());
        let (a, b): (SocketAddr, SocketAddr) = ("10.0.0.2:3888".parse().unwrap(), "10.0.0.3:3888".parse().unwrap());
        assert_eq!(pick(&addr, [a, b]), Ok(a));
        assert_eq!(pick(&addr, [any4, b, a]), Ok(b));
        assert_eq!(pick(&addr, []), Err(ResolveError::NoAddress { host: "zk".into() }));
        assert_eq!(pick(&addr, [any4, any6]), Err(ResolveError::Unspecified { host: "zk".into(), ip: any6.ip() }));
    }

    #[test]
    fn an_unresolvable_name_is_an_error_not_a_wildcard() {
        let err = resolve_blocking(&PeerAddr::new(NOWHERE, 3888)).unwrap_err();
        assert!(matches!(&err, ResolveError::Lookup { host, .. } if host == NOWHERE), "{err:?}");
        assert!(err.to_string().contains(NOWHERE), "{err}");
    }

    #[test]
    fn resolve_answers_inside_an_executor() {
        let answers = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(|| async {
                let executor = std::thread::current().id();
                let literal = resolve(&PeerAddr::new("127.0.0.3", 5)).await;
                let nowhere = resolve(&PeerAddr::new(NOWHERE, 5)).await;
                let localhost = resolve(&PeerAddr::new("localhost", 5)).await;
                assert_eq!(std::thread::current().id(), executor);
                (literal, nowhere, localhost)
            })
            .expect("executor")
            .join()
            .expect("test body");
        assert_eq!(answers.0, Ok("127.0.0.3:5".parse().unwrap()));
        assert!(matches!(answers.1, Err(ResolveError::Lookup { .. })), "{:?}", answers.1);
        let localhost = answers.2.expect("localhost resolves");
        assert!(localhost.ip().is_loopback() && localhost.port() == 5, "{localhost}");
    }
}
