//! TLS for client connections: rustls server configurations built from ZooKeeper's `ssl.*`
//! keys, reloaded when their files change, and the x509 identity of a client certificate.
//! For the links between servers (`ssl.quorum.*`, see [`peer_configs`]): a server and a client
//! configuration from the same stores, both requiring the other side's certificate.
//!
//! Nothing here touches sockets or glommio: the shell (`server/`) runs the handshake with
//! `futures-rustls` on the connection's executor and asks [`Reloadable::current`] for the
//! configuration of each new connection.

pub mod stores;
pub mod suites;
pub mod x500;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::config::tls::{ClientAuth, TlsConfig};

/// How often the store files' modification times are compared.
pub const RELOAD_POLL: Duration = Duration::from_secs(2);

/// Builds the rustls configuration `cfg` describes, reading its files.
pub fn server_config(cfg: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    server_config_for(cfg, "ssl.")
}

/// [`server_config`] with the keys named after `prefix` in errors.
fn server_config_for(cfg: &TlsConfig, prefix: &str) -> Result<Arc<ServerConfig>, String> {
    let key_store = cfg.key_store.as_ref().ok_or_else(|| format!("{prefix}keyStore.location is not set"))?;
    let provider = suites::provider(cfg.cipher_suites.as_deref(), &cfg.protocols, prefix)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&suites::versions(&cfg.protocols))
        .map_err(|e| format!("{prefix}enabledProtocols: {e}"))?;
    let builder = match (cfg.client_auth, &cfg.trust_store) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => {
            return Err(format!(
                "{prefix}clientAuth asks for client certificates but {prefix}trustStore.location is not set"
            ))
        }
        (auth, Some(trust)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots(trust)?, provider);
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

/// The trust store's certificates as rustls roots.
fn roots(trust: &crate::config::tls::Store) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for cert in stores::load_roots(trust)? {
        roots.add(cert).map_err(|e| format!("{}: a certificate cannot be trusted: {e}", trust.location.display()))?;
    }
    Ok(Arc::new(roots))
}

/// Both ends of a link between servers: each accepts and dials with the same certificate and
/// each requires the other's, chained to the `ssl.quorum.trustStore`.
pub struct PeerConfigs {
    /// For connections peers dial to us: their certificate is required (`clientAuth=need`).
    pub server: Arc<ServerConfig>,
    /// For the connections we dial: shows our certificate, checks the peer's, and (with
    /// `ssl.quorum.hostnameVerification`) that it names the host of the peer's `server.N` line.
    pub client: Arc<ClientConfig>,
}

/// Builds the peer configurations from the `ssl.quorum.*` settings (`cfg.client_auth` is
/// `Need`: the config reader refuses anything else).
pub fn peer_configs(cfg: &TlsConfig) -> Result<Arc<PeerConfigs>, String> {
    const PREFIX: &str = "ssl.quorum.";
    let server = server_config_for(cfg, PREFIX)?;
    let key_store = cfg.key_store.as_ref().ok_or("ssl.quorum.keyStore.location is not set")?;
    let trust = cfg.trust_store.as_ref().ok_or("ssl.quorum.trustStore.location is not set")?;
    let provider = suites::provider(cfg.cipher_suites.as_deref(), &cfg.protocols, PREFIX)?;
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(trust)?, provider.clone())
        .build()
        .map_err(|e| format!("{}: {e}", trust.location.display()))?;
    let verifier: Arc<dyn ServerCertVerifier> =
        if cfg.hostname_verification { verifier } else { Arc::new(AnyHostName(verifier)) };
    let id = stores::load_identity(key_store)?;
    let client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&suites::versions(&cfg.protocols))
        .map_err(|e| format!("ssl.quorum.enabledProtocols: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(id.chain, id.key)
        .map_err(|e| {
            format!("{}: the certificate and key do not make a peer identity: {e}", key_store.location.display())
        })?;
    Ok(Arc::new(PeerConfigs { server, client: Arc::new(client) }))
}

/// A client configuration for `warren status` on a server whose only client port is TLS: the
/// server's certificate must chain to `ssl.trustStore`; its name is not checked (status dials
/// the configured address, which the certificate need not name). With `ssl.clientAuth=need` the
/// server's own key store is shown as the client certificate, so it must allow client use too
/// (as a quorum TLS certificate does); otherwise none is shown.
pub fn status_client_config(cfg: &TlsConfig) -> Result<Arc<ClientConfig>, String> {
    let trust = cfg
        .trust_store
        .as_ref()
        .ok_or("the only client port is secureClientPort, and ssl.trustStore.location is not set to verify it")?;
    let provider = suites::provider(cfg.cipher_suites.as_deref(), &cfg.protocols, "ssl.")?;
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(trust)?, provider.clone())
        .build()
        .map_err(|e| format!("{}: {e}", trust.location.display()))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&suites::versions(&cfg.protocols))
        .map_err(|e| format!("ssl.enabledProtocols: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyHostName(verifier)));
    let config = match cfg.key_store.as_ref().filter(|_| cfg.client_auth == ClientAuth::Need) {
        Some(store) => {
            let id = stores::load_identity(store)?;
            builder.with_client_auth_cert(id.chain, id.key).map_err(|e| format!("{}: {e}", store.location.display()))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Checks that a peer's certificate (already verified against the trust store) names `host`,
/// the host of that peer's `server.N` line: a DNS name or an IP address subject alternative name.
pub fn certificate_names_host(leaf: &CertificateDer<'_>, host: &ServerName<'_>) -> Result<(), String> {
    let parsed = rustls::server::ParsedCertificate::try_from(leaf).map_err(|e| e.to_string())?;
    rustls::client::verify_server_name(&parsed, host).map_err(|e| e.to_string())
}

/// `ssl.quorum.hostnameVerification=false`: the chain must still verify; the name is not checked.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // rustls checks the chain (and its validity dates) before the name, so a name error
        // means everything else passed.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The configuration new connections use; replaced when the files change.
pub struct Reloadable<T = ServerConfig> {
    current: RwLock<Arc<T>>,
}

impl<T> Reloadable<T> {
    pub fn new(config: Arc<T>) -> Arc<Reloadable<T>> {
        Arc::new(Reloadable { current: RwLock::new(config) })
    }

    pub fn current(&self) -> Arc<T> {
        // A poisoned lock still holds a whole Arc: the writer only swaps it.
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn replace(&self, config: Arc<T>) {
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
    watch_with(cfg, target, every, server_config, "TLS")
}

/// [`watch`] for any configuration `build` makes from the settings; `what` names it in the log.
pub fn watch_with<T: Send + Sync + 'static>(
    cfg: TlsConfig,
    target: Arc<Reloadable<T>>,
    every: Duration,
    build: fn(&TlsConfig) -> Result<Arc<T>, String>,
    what: &'static str,
) -> std::io::Result<()> {
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
        match build(&cfg) {
            Ok(config) => {
                target.replace(config);
                tracing::info!("{what}: key or trust store changed; new connections use the new certificates");
            }
            Err(e) => tracing::warn!(
                "{what}: the key or trust store changed but cannot be used ({e}); keeping the previous certificates"
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
    fn peer_configs_need_both_stores_and_check_host_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path(), ClientAuth::Need);
        let configs = peer_configs(&cfg).unwrap();
        assert!(configs.server.alpn_protocols.is_empty());
        cfg.hostname_verification = false;
        peer_configs(&cfg).unwrap();
        let mut no_trust = cfg.clone();
        no_trust.trust_store = None;
        let e = peer_configs(&no_trust).err().unwrap();
        assert!(e.contains("ssl.quorum.trustStore.location"), "{e}");
        let mut no_key = cfg.clone();
        no_key.key_store = None;
        let e = peer_configs(&no_key).err().unwrap();
        assert!(e.contains("ssl.quorum.keyStore.location"), "{e}");

        // write_key_store's certificate is for localhost only.
        let der = CertificateDer::from(write_key_store(&dir.path().join("peer.pem"), "server-2"));
        certificate_names_host(&der, &ServerName::try_from("localhost").unwrap()).unwrap();
        let e = certificate_names_host(&der, &ServerName::try_from("10.0.0.2").unwrap()).unwrap_err();
        assert!(e.to_lowercase().contains("name"), "{e}");
        assert!(certificate_names_host(
            &CertificateDer::from(b"junk".to_vec()),
            &ServerName::try_from("localhost").unwrap()
        )
        .is_err());
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
