//! TLS client connections: the TLS-only listener (`secureClientPort`) and the unified one
//! (`client.portUnification`: the plaintext port also takes TLS).
//!
//! The handshake runs with futures-rustls on the executor that accepted the connection, so
//! encryption costs the owner nothing. After it, the connection runs the same framing and
//! session code as a plaintext one (`serve` is generic over the stream), with the x509 ids of
//! a verified client certificate added to its auth ids, as ZooKeeper's
//! `X509AuthenticationProvider` does.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_rustls::TlsAcceptor;
use glommio::net::TcpStream;
use tracing::warn;

use super::admission::{LogLimiter, Slot};
use super::{serve, ExecCtx};
use crate::machine::ConnId;

/// TLS for client connections, as the shell needs it.
#[derive(Clone)]
pub struct ClientTls {
    /// The rustls configuration for new connections; replaced when the store files change.
    pub config: Arc<crate::tls::Reloadable>,
    /// `secureClientPort` (with `secureClientPortAddress`): a listener that speaks only TLS.
    pub secure_addr: Option<SocketAddr>,
    /// `client.portUnification`: the plaintext listener also accepts TLS.
    pub unified: bool,
    /// `ssl.handshakeDetectionTimeoutMillis`: how long a unified port waits for the first byte.
    pub detection_timeout: Duration,
    /// `X509AuthenticationProvider.superUser`.
    pub x509_super_user: Option<String>,
}

/// What a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Plain,
    /// TLS only.
    Secure,
    /// Plaintext or TLS, told apart by the first byte.
    Unified,
}

/// The first byte of a TLS record carrying a handshake message (a ClientHello). No plaintext
/// ZooKeeper connection starts with it: a frame length of 0x16xxxxxx is past any
/// `jute.maxbuffer` Warren accepts, and no four-letter word starts with it.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Failed handshakes are logged at most once per this interval (with a count of the others).
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Per-executor rate limit of the handshake failure log line.
pub(super) struct FailureLog(RefCell<LogLimiter>);

impl FailureLog {
    pub(super) fn new() -> FailureLog {
        FailureLog(RefCell::new(LogLimiter::new(FAILURE_LOG_INTERVAL)))
    }

    fn note(&self, peer: SocketAddr, why: &str) {
        if let Some(held_back) = self.0.borrow_mut().allow(Instant::now()) {
            let more =
                if held_back > 0 { format!(" ({held_back} more failed since the last line)") } else { String::new() };
            warn!("TLS handshake with {peer} failed: {why}; closing the connection{more}");
        }
    }
}

/// Whether the first bytes a client sent open a TLS handshake.
pub fn looks_like_tls(first: &[u8]) -> bool {
    // A TLS record: content type 22 (handshake), then major version 3 (SSL 3.0 to TLS 1.3).
    matches!(first, [TLS_HANDSHAKE_RECORD] | [TLS_HANDSHAKE_RECORD, 3, ..])
}

/// Serves a connection accepted on a TLS or unified listener. Called in its own task.
pub(super) async fn serve_secure(
    ctx: Rc<ExecCtx>,
    stream: TcpStream,
    conn: ConnId,
    peer: SocketAddr,
    slot: Slot,
    kind: Listener,
    accepted: Instant,
) {
    let Some(tls) = ctx.settings.tls.clone() else {
        return;
    };
    if kind == Listener::Unified {
        match detect(&stream, tls.detection_timeout.min(ctx.settings.handshake_timeout)).await {
            Ok(true) => {}
            Ok(false) => return serve(ctx, stream, conn, peer, slot, accepted, Vec::new()).await,
            // Closed or silent before its first byte: nothing to serve, nothing worth a line.
            Err(_) => return,
        }
    }
    let left = ctx.settings.handshake_timeout.saturating_sub(accepted.elapsed());
    let acceptor = TlsAcceptor::from(tls.config.current());
    let handshake = async { acceptor.accept(stream).await.map_err(|e| e.to_string()) };
    let expired = async {
        glommio::timer::sleep(left).await;
        Err(format!(
            "not finished within {} ms (nio.sessionlessCnxnTimeout)",
            ctx.settings.handshake_timeout.as_millis()
        ))
    };
    let stream = match futures_lite::future::or(handshake, expired).await {
        Ok(s) => s,
        Err(why) => {
            ctx.tls_failures.note(peer, &why);
            return;
        }
    };
    let ids = match stream.get_ref().1.peer_certificates().and_then(|chain| chain.first()) {
        // rustls verified the chain (ssl.clientAuth want or need); no certificate: no id.
        Some(leaf) => match crate::tls::certificate_ids(leaf.as_ref(), tls.x509_super_user.as_deref()) {
            Some(ids) => ids,
            None => {
                ctx.tls_failures.note(peer, "the client certificate's subject cannot be read");
                return;
            }
        },
        None => Vec::new(),
    };
    serve(ctx, stream, conn, peer, slot, accepted, ids).await
}

/// Waits for the first byte of a unified port's connection, without consuming it, and tells
/// whether it opens a TLS handshake. `Err` when the client closed or stayed silent.
pub(super) async fn detect(stream: &TcpStream, timeout: Duration) -> std::io::Result<bool> {
    let mut first = [0u8; 2];
    let peek = async {
        let n = stream.peek(&mut first).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(looks_like_tls(&first[..n]))
    };
    let expired = async {
        glommio::timer::sleep(timeout).await;
        Err(std::io::ErrorKind::TimedOut.into())
    };
    futures_lite::future::or(peek, expired).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_told_from_zookeeper_plaintext() {
        // A ClientHello record: handshake, TLS 1.0 record version (what clients send).
        assert!(looks_like_tls(&[0x16, 0x03]));
        assert!(looks_like_tls(&[0x16]));
        // A ConnectRequest frame: 4-byte length, 44 or 45 bytes.
        assert!(!looks_like_tls(&[0x00, 0x00]));
        // Four-letter words.
        for word in ["ruok", "srvr", "stat", "mntr"] {
            assert!(!looks_like_tls(&word.as_bytes()[..2]), "{word}");
        }
        assert!(!looks_like_tls(&[0x16, 0x01]));
        assert!(!looks_like_tls(&[]));
    }
}
