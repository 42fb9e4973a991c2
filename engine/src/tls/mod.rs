//! TLS for client connections: rustls server configurations built from ZooKeeper's `ssl.*`
//! keys, reloaded when their files change, and the x509 identity of a client certificate.
//!
//! Nothing here touches sockets or glommio: the shell (`server/`) runs the handshake with
//! `futures-rustls` on the connection's executor and asks [`Reloadable::current`] for the
//! configuration of each new connection.

pub mod stores;
pub mod suites;
pub mod x500;

use std::sync::{Arc, RwLock};
use std::time::Duration;

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
        (_, None) => {
            return Err("ssl.clientAuth asks for client certificates but ssl.trustStore.location is not set".into())
        }
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
    let config = builder.with_single_cert(id.chain, id.key).map_err(|e| {
        format!("{}: the certificate and key do not make a server identity: {e}", key_store.location.display())
    })?;
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

/// What the store files hold: a change of any of them triggers a reload. Their contents, not
/// their modification times: a file replaced within the file system's timestamp granularity
/// (a few ms) by one of the same size (certificates of one key type mostly are) would keep
/// its stamp. Key and trust stores are a few KiB, read every poll.
fn stamp(cfg: &TlsConfig) -> Vec<Option<u32>> {
    cfg.key_store
        .iter()
        .chain(cfg.trust_store.iter())
        .map(|s| std::fs::read(&s.location).ok().map(|bytes| crc32c::crc32c(&bytes)))
        .collect()
}

/// Starts a thread that polls the store files every `every` and, when they changed, builds a
/// new configuration: on success new connections use it; on failure the old one stays and
/// the reason is logged. Established connections keep the configuration they started with.
pub fn watch(cfg: TlsConfig, target: Arc<Reloadable>, every: Duration) -> std::io::Result<()> {
    // Taken now, not when the thread first runs: a file replaced in between would otherwise
    // become the baseline and never be loaded.
    let mut seen = stamp(&cfg);
    std::thread::Builder::new().name("warren-tls-reload".into()).spawn(move || loop {
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
            Err(e) => tracing::warn!(
                "TLS: the key or trust store changed but cannot be used ({e}); keeping the previous certificates"
            ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tls::{Store, StoreType};

    /// A PEM key store (key and self-signed certificate for `cn`) at `path`; returns the DER.
    fn write_key_store(path: &std::path::Path, cn: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(path, format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
        cert.der().to_vec()
    }

    fn pem_store(path: &std::path::Path) -> Store {
        Store { location: path.to_path_buf(), password: String::new(), kind: StoreType::Pem }
    }

    fn config(dir: &std::path::Path, auth: ClientAuth) -> TlsConfig {
        let server = dir.join("server.pem");
        write_key_store(&server, "server");
        let ca = dir.join("ca.pem");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        std::fs::write(&ca, params.self_signed(&ca_key).unwrap().pem()).unwrap();
        TlsConfig {
            secure_client_port: Some(1),
            key_store: Some(pem_store(&server)),
            trust_store: Some(pem_store(&ca)),
            client_auth: auth,
            ..TlsConfig::default()
        }
    }

    #[test]
    fn server_config_from_pem_stores() {
        let dir = tempfile::tempdir().unwrap();
        for auth in [ClientAuth::None, ClientAuth::Want, ClientAuth::Need] {
            server_config(&config(dir.path(), auth)).unwrap();
        }
        let mut no_trust = config(dir.path(), ClientAuth::Need);
        no_trust.trust_store = None;
        assert!(server_config(&no_trust).unwrap_err().contains("ssl.trustStore.location"));
        let mut missing = config(dir.path(), ClientAuth::None);
        missing.key_store = Some(pem_store(&dir.path().join("absent.pem")));
        assert!(server_config(&missing).unwrap_err().contains("absent.pem"));
        // A certificate without its key is no identity.
        let cert_only = dir.path().join("cert-only.pem");
        let text = std::fs::read_to_string(dir.path().join("server.pem")).unwrap();
        std::fs::write(&cert_only, &text[text.find("-----BEGIN CERTIFICATE").unwrap()..]).unwrap();
        let mut keyless = config(dir.path(), ClientAuth::None);
        keyless.key_store = Some(pem_store(&cert_only));
        assert!(server_config(&keyless).unwrap_err().contains("private key"));
    }

    #[test]
    fn changed_store_files_are_reloaded_and_broken_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), ClientAuth::None);
        let target = Reloadable::new(server_config(&cfg).unwrap());
        let first = target.current();
        watch(cfg.clone(), target.clone(), Duration::from_millis(20)).unwrap();
        let changed = |from: &Arc<ServerConfig>| {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if !Arc::ptr_eq(from, &target.current()) {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            false
        };
        // A new key store (written elsewhere and renamed over, as an operator or certbot does).
        let fresh = dir.path().join("fresh.pem");
        write_key_store(&fresh, "server-2");
        std::fs::rename(&fresh, dir.path().join("server.pem")).unwrap();
        assert!(changed(&first), "the new key store was not loaded");
        let second = target.current();
        std::fs::write(dir.path().join("server.pem"), "not a key store, and longer than the last one was\n".repeat(50))
            .unwrap();
        assert!(!changed(&second), "a broken key store replaced a working configuration");
    }

    #[test]
    fn a_certificate_gives_x509_and_perhaps_super_ids() {
        let dir = tempfile::tempdir().unwrap();
        let der = write_key_store(&dir.path().join("c.pem"), "alice");
        let ids = certificate_ids(&der, None).unwrap();
        assert_eq!(ids, vec![crate::acl::Id::new("x509", "CN=alice")]);
        let ids = certificate_ids(&der, Some("CN=alice")).unwrap();
        assert_eq!(ids, vec![crate::acl::Id::new("super", "CN=alice"), crate::acl::Id::new("x509", "CN=alice")]);
        assert_eq!(certificate_ids(&der, Some("CN=bob")).unwrap().len(), 1);
        assert!(certificate_ids(b"\x30\x03garbage", None).is_none());
    }
}
