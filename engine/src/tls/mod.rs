//! TLS for client connections: rustls server configurations built from ZooKeeper's `ssl.*`
//! keys, reloaded when their files change, and the x509 identity of a client certificate.
//!
//! Nothing here touches sockets or glommio: the shell (`server/`) runs the handshake with
//! `futures-rustls` on the connection's executor and asks [`Reloadable::current`] for the
//! configuration of each new connection.

pub mod stores;
pub mod suites;
pub mod x500;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::tls::{ClientAuth, TlsConfig};

/// How often the store files' modification times are compared.
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// Builds the rustls configuration `cfg` describes, reading its files.
pub fn server_config(cfg: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    let key_store = cfg.key_store.as_ref().ok_or("ssl.keyStore.location is not set")?;
    let provider = suites::provider(cfg.cipher_suites.as_deref(), &cfg.protocols)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&suites::versions(&cfg.protocols))
        .map_err(|e| format!("ssl.enabledProtocols: {e}"))?;
    let builder = match (cfg.client_auth, &cfg.trust_store) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => return Err("ssl.clientAuth asks for client certificates but ssl.trustStore.location is not set".into()),
        (auth, Some(trust)) => {
            let mut roots = RootCertStore::empty();
            for cert in stores::load_roots(trust)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: a certificate cannot be trusted: {e}", trust.location.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Want { verifier.allow_unauthenticated() } else { verifier };
            let verifier = verifier.build().map_err(|e| format!("{}: {e}", trust.location.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let id = stores::load_identity(key_store)?;
    let config = builder
        .with_single_cert(id.chain, id.key)
        .map_err(|e| format!("{}: the certificate and key do not make a server identity: {e}", key_store.location.display()))?;
    Ok(Arc::new(config))
}

/// The configuration new connections use; replaced when the files change.
pub struct Reloadable {
    current: RwLock<Arc<ServerConfig>>,
}

impl Reloadable {
    pub fn new(config: Arc<ServerConfig>) -> Arc<Reloadable> {
        Arc::new(Reloadable { current: RwLock::new(config) })
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        // A poisoned lock still holds a whole Arc: the writer only swaps it.
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn replace(&self, config: Arc<ServerConfig>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
    }
}

/// What the store files look like on disk: a change of any of these triggers a reload.
fn stamp(cfg: &TlsConfig) -> Vec<Option<(SystemTime, u64)>> {
    let files: Vec<&PathBuf> =
        cfg.key_store.iter().chain(cfg.trust_store.iter()).map(|s| &s.location).collect();
    files
        .iter()
        .map(|p| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len()))))
        .collect()
}

/// Starts a thread that polls the store files every `every` and, when they changed, builds a
/// new configuration: on success new connections use it; on failure the old one stays and
/// the reason is logged. Established connections keep the configuration they started with.
pub fn watch(cfg: TlsConfig, target: Arc<Reloadable>, every: Duration) -> std::io::Result<()> {
    std::thread::Builder::new().name("warren-tls-reload".into()).spawn(move || {
        let mut seen = stamp(&cfg);
        loop {
            std::thread::sleep(every);
            let now = stamp(&cfg);
            if now == seen {
                continue;
            }
            seen = now;
            match server_config(&cfg) {
                Ok(config) => {
                    target.replace(config);
                    tracing::info!("TLS: key or trust store changed; new connections use the new certificates");
                }
                Err(e) => tracing::warn!("TLS: the key or trust store changed but cannot be used ({e}); keeping the previous certificates"),
            }
        }
    })?;
    Ok(())
}

/// The auth ids a verified client certificate gives a connection (ZooKeeper's
/// `X509AuthenticationProvider.handleAuthentication`): `x509:<subject>`, and `super:<subject>`
/// when it is `X509AuthenticationProvider.superUser`. None when the subject cannot be read.
pub fn certificate_ids(leaf_der: &[u8], super_user: Option<&str>) -> Option<Vec<crate::acl::Id>> {
    let subject = x500::subject_rfc2253(leaf_der)?;
    let mut ids = Vec::new();
    if super_user == Some(subject.as_str()) {
        ids.push(crate::acl::Id::new("super", subject.clone()));
    }
    ids.push(crate::acl::Id::new("x509", subject));
    Some(ids)
}
