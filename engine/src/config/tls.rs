//! The `zoo.cfg` keys of TLS client connections and x509 authentication, as ZooKeeper 3.8
//! reads them (`QuorumPeerConfig` for the ports, `X509Util`/`ClientX509Util` for `ssl.*`,
//! `NettyServerCnxnFactory` for `client.portUnification` and `ssl.authProvider`).
//!
//! Only the values are checked here; the files are read when the server starts
//! (`crate::tls`), so that a missing key store names its key and line in the same way.
//!
//! Quorum TLS (`sslQuorum`, `portUnification`, `sslQuorumReloadCertFiles` and `ssl.quorum.*`,
//! ZooKeeper's `QuorumX509Util`) is read by the same code with the `ssl.quorum.` prefix: the
//! keys after the prefix are the same, and so are their values ([`TlsKeys::quorum`]).

use std::net::IpAddr;
use std::path::PathBuf;

use super::{invalid, ip_address, number, true_false, ConfigError, Entry};

/// ZooKeeper's `X509Util.DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MILLIS`.
pub const DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS: u32 = 5000;
/// The only authentication provider class for the `x509` scheme ZooKeeper ships.
pub const X509_PROVIDER_CLASS: &str = "org.apache.zookeeper.server.auth.X509AuthenticationProvider";
/// Other provider classes ZooKeeper ships, which need no TLS settings.
const BUILT_IN_PROVIDER_CLASSES: &[&str] = &[
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
];
/// How to convert a Java key store, quoted in the error that refuses one.
pub const JKS_CONVERSION: &str =
    "keytool -importkeystore -srckeystore in.jks -destkeystore out.p12 -deststoretype PKCS12";

/// The TLS keys this module reads (for spelling hints).
pub const KEYS: &[&str] = &[
    "secureClientPort",
    "secureClientPortAddress",
    "client.portUnification",
    "ssl.keyStore.location",
    "ssl.keyStore.password",
    "ssl.keyStore.passwordPath",
    "ssl.keyStore.type",
    "ssl.trustStore.location",
    "ssl.trustStore.password",
    "ssl.trustStore.passwordPath",
    "ssl.trustStore.type",
    "ssl.clientAuth",
    "ssl.protocol",
    "ssl.enabledProtocols",
    "ssl.ciphersuites",
    "ssl.hostnameVerification",
    "ssl.authProvider",
    "ssl.handshakeDetectionTimeoutMillis",
    "ssl.crl",
    "ssl.ocsp",
    "ssl.context.supplier.class",
    "ssl.sslProvider",
    "X509AuthenticationProvider.superUser",
];

/// The quorum TLS keys outside the `ssl.quorum.` prefix (for spelling hints).
pub const QUORUM_KEYS: &[&str] = &["sslQuorum", "portUnification", "sslQuorumReloadCertFiles"];

/// The prefix of the client TLS keys, and of the quorum ones (`X509Util.getConfigPrefix`).
const CLIENT_PREFIX: &str = "ssl.";
const QUORUM_PREFIX: &str = "ssl.quorum.";

/// `ssl.clientAuth`: whether a client must show a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate is asked for.
    None,
    /// A certificate is asked for; a client without one is served without an x509 id.
    Want,
    /// A client without a valid certificate fails the handshake (ZooKeeper's default).
    Need,
}

/// The format of a key or trust store file (`ssl.*Store.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// PEM: the key store holds a private key and its certificate chain, the trust store
    /// CA certificates.
    Pem,
    Pkcs12,
}

/// A TLS protocol version Warren can speak (`ssl.protocol`, `ssl.enabledProtocols`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Tls12,
    Tls13,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tls12 => "TLSv1.2",
            Protocol::Tls13 => "TLSv1.3",
        }
    }
}

/// A key store or trust store: where, its password, its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub location: PathBuf,
    pub password: String,
    pub kind: StoreType,
}

/// Everything TLS that `zoo.cfg` says, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `secureClientPort`: None when unset (or 0, ZooKeeper's "unset").
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress`; every interface when unset, as ZooKeeper.
    pub secure_client_port_address: Option<IpAddr>,
    /// `client.portUnification`: TLS and plaintext on `clientPort`.
    pub port_unification: bool,
    pub key_store: Option<Store>,
    pub trust_store: Option<Store>,
    pub client_auth: ClientAuth,
    /// The versions offered, from `ssl.enabledProtocols`, else `ssl.protocol` (ZooKeeper's
    /// `SSLContextAndOptions`: the context's protocol alone, TLSv1.2 by default).
    pub protocols: Vec<Protocol>,
    /// `ssl.ciphersuites`, as rustls names (see `crate::tls::suites`); None: rustls's defaults.
    pub cipher_suites: Option<Vec<String>>,
    /// `ssl.handshakeDetectionTimeoutMillis`: how long a connection to a unified port may
    /// take to send its first byte (never longer than the connection's handshake deadline).
    pub handshake_detection_timeout_ms: u32,
    /// `X509AuthenticationProvider.superUser`: the certificate subject that is super user.
    pub x509_super_user: Option<String>,
    /// `ssl.quorum.hostnameVerification` (true by default, as ZooKeeper's): a peer's
    /// certificate must name the host of its `server.N` line. Unused for clients.
    pub hostname_verification: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            secure_client_port: None,
            secure_client_port_address: None,
            port_unification: false,
            key_store: None,
            trust_store: None,
            client_auth: ClientAuth::Need,
            protocols: vec![Protocol::Tls12],
            cipher_suites: None,
            handshake_detection_timeout_ms: DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS,
            x509_super_user: None,
            hostname_verification: true,
        }
    }
}

impl TlsConfig {
    /// Whether any listener speaks TLS.
    pub fn enabled(&self) -> bool {
        self.secure_client_port.is_some() || self.port_unification
    }
}

/// Quorum TLS: how the links between the servers of an ensemble are encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumTls {
    /// `sslQuorum`: this server dials its peers with TLS.
    pub ssl_quorum: bool,
    /// `portUnification`: the peer ports take TLS and plaintext (for a rolling switch).
    pub port_unification: bool,
    /// `sslQuorumReloadCertFiles`: reload the `ssl.quorum.*` stores when their files change.
    pub reload_cert_files: bool,
    /// The `ssl.quorum.*` stores, protocols, suites and hostnameVerification (the client-only
    /// fields keep their defaults; `client_auth` is always `Need`: peers authenticate each other).
    pub tls: TlsConfig,
}

impl QuorumTls {
    /// Whether any peer connection may use TLS (and so the stores are needed).
    pub fn enabled(&self) -> bool {
        self.ssl_quorum || self.port_unification
    }
}

/// The TLS keys as they are read, before the cross-key checks of [`TlsKeys::finish`].
pub(super) struct TlsKeys {
    /// `ssl.` for the client keys, `ssl.quorum.` for the peer ones.
    prefix: &'static str,
    cfg: TlsConfig,
    quorum: QuorumTls,
    key_store: StoreKeys,
    trust_store: StoreKeys,
    protocol: Option<(usize, Protocol)>,
    enabled_protocols: Option<(usize, Vec<Protocol>)>,
    address_line: Option<usize>,
}

impl Default for TlsKeys {
    fn default() -> Self {
        TlsKeys {
            prefix: CLIENT_PREFIX,
            cfg: TlsConfig::default(),
            quorum: QuorumTls::default(),
            key_store: StoreKeys::default(),
            trust_store: StoreKeys::default(),
            protocol: None,
            enabled_protocols: None,
            address_line: None,
        }
    }
}

#[derive(Default)]
struct StoreKeys {
    location: Option<(usize, String)>,
    password: Option<String>,
    password_path: Option<(usize, String)>,
    kind: Option<(usize, String)>,
}

/// What reading one key gave: used (with perhaps a warning), or not a TLS key.
pub(super) enum Applied {
    Used(Option<String>),
    NotMine,
}

impl TlsKeys {
    /// The reader of the quorum keys: `sslQuorum`, `portUnification`,
    /// `sslQuorumReloadCertFiles` and `ssl.quorum.*`.
    pub(super) fn quorum() -> TlsKeys {
        TlsKeys { prefix: QUORUM_PREFIX, ..TlsKeys::default() }
    }

    fn is_quorum(&self) -> bool {
        self.prefix == QUORUM_PREFIX
    }

    /// Reads `e` if it is one of this reader's TLS keys.
    pub(super) fn apply(&mut self, e: &Entry) -> Result<Applied, ConfigError> {
        if let Some(suffix) = e.key.strip_prefix(self.prefix) {
            if let Some(warning) = self.apply_common(suffix, e)? {
                return Ok(Applied::Used(warning));
            }
        }
        if self.is_quorum() {
            match e.key.as_str() {
                "sslQuorum" => self.quorum.ssl_quorum = true_false(e)?,
                "portUnification" => self.quorum.port_unification = true_false(e)?,
                "sslQuorumReloadCertFiles" => self.quorum.reload_cert_files = true_false(e)?,
                _ => return Ok(Applied::NotMine),
            }
            return Ok(Applied::Used(None));
        }
        match e.key.as_str() {
            "secureClientPort" => {
                let port: u16 = number(e, "a port number (1-65535; 0 or absent: no secure port)")?;
                self.cfg.secure_client_port = (port != 0).then_some(port);
            }
            "secureClientPortAddress" => {
                self.cfg.secure_client_port_address = Some(ip_address(e)?);
                self.address_line = Some(e.line);
            }
            "client.portUnification" | "zookeeper.client.portUnification" => self.cfg.port_unification = true_false(e)?,
            "ssl.authProvider" => {
                if e.value != "x509" {
                    return Err(ConfigError::Unsupported {
                        line: e.line,
                        key: e.key.clone(),
                        value: e.value.clone(),
                        reason: "Warren's only certificate authentication provider is x509 (custom providers are \
                                 Java classes)"
                            .to_string(),
                    });
                }
            }
            "X509AuthenticationProvider.superUser" | "zookeeper.X509AuthenticationProvider.superUser" => {
                if e.value.is_empty() {
                    return Err(invalid(e, "a certificate subject such as CN=admin,O=example"));
                }
                self.cfg.x509_super_user = Some(e.value.clone());
            }
            key if key.starts_with("authProvider.") => return auth_provider(e),
            _ => return Ok(Applied::NotMine),
        }
        Ok(Applied::Used(None))
    }

    /// The keys client and quorum TLS share, named after the prefix (`keyStore.location`...).
    /// `Ok(None)`: not one of them; `Ok(Some(warning))`: used.
    fn apply_common(&mut self, suffix: &str, e: &Entry) -> Result<Option<Option<String>>, ConfigError> {
        let mut warning = None;
        match suffix {
            "keyStore.location" => self.key_store.location = Some((e.line, e.value.clone())),
            "keyStore.password" => self.key_store.password = Some(e.value.clone()),
            "keyStore.passwordPath" => self.key_store.password_path = Some((e.line, e.value.clone())),
            "keyStore.type" => self.key_store.kind = Some((e.line, e.value.clone())),
            "trustStore.location" => self.trust_store.location = Some((e.line, e.value.clone())),
            "trustStore.password" => self.trust_store.password = Some(e.value.clone()),
            "trustStore.passwordPath" => self.trust_store.password_path = Some((e.line, e.value.clone())),
            "trustStore.type" => self.trust_store.kind = Some((e.line, e.value.clone())),
            "clientAuth" => {
                self.cfg.client_auth = client_auth(e)?;
                if self.is_quorum() && self.cfg.client_auth != ClientAuth::Need {
                    return Err(ConfigError::Unsupported {
                        line: e.line,
                        key: e.key.clone(),
                        value: e.value.clone(),
                        reason: "Warren's servers always authenticate each other by certificate (need)".to_string(),
                    });
                }
            }
            "protocol" => {
                let p = protocols(e, &e.value)?;
                // `TLS` (Java's generic context) offers every version; a versioned name one.
                self.protocol = Some((e.line, *p.last().unwrap_or(&Protocol::Tls12)));
                if p.len() > 1 {
                    self.enabled_protocols.get_or_insert((e.line, p));
                }
            }
            "enabledProtocols" => self.enabled_protocols = Some((e.line, protocols(e, &e.value)?)),
            "ciphersuites" => {
                let (suites, dropped) = crate::tls::suites::from_java_names(&e.value)
                    .map_err(|name| invalid(e, &format!("cipher suite names Warren knows ({name:?} is not one)")))?;
                if suites.is_empty() {
                    return Err(invalid(e, "at least one AEAD cipher suite (CBC suites are not offered by rustls)"));
                }
                if !dropped.is_empty() {
                    warning = Some(format!(
                        "{}: {} not offered: Warren's TLS library (rustls) has no CBC suites",
                        e.key,
                        dropped.join(", ")
                    ));
                }
                self.cfg.cipher_suites = Some(suites);
            }
            "hostnameVerification" => {
                self.cfg.hostname_verification = true_false(e)?;
                if !self.is_quorum() {
                    warning = Some(
                        "ssl.hostnameVerification is a client's setting (does the server's certificate name the \
                         host it dialled?); a server does not check its clients' host names, as in ZooKeeper"
                            .to_string(),
                    );
                }
            }
            "handshakeDetectionTimeoutMillis" => {
                let ms: i64 = number(e, "a positive number of milliseconds")?;
                self.cfg.handshake_detection_timeout_ms = match u32::try_from(ms) {
                    Ok(ms) if ms > 0 => ms,
                    // ZooKeeper logs the bad value and uses its default.
                    _ => return Err(invalid(e, "a positive number of milliseconds")),
                };
            }
            "crl" | "ocsp" => {
                if true_false(e)? {
                    return Err(ConfigError::Unsupported {
                        line: e.line,
                        key: e.key.clone(),
                        value: e.value.clone(),
                        reason: "certificate revocation checking is not implemented; a revoked certificate would be \
                                 accepted"
                            .to_string(),
                    });
                }
            }
            "context.supplier.class" => {
                return Err(ConfigError::Unsupported {
                    line: e.line,
                    key: e.key.clone(),
                    value: e.value.clone(),
                    reason: format!(
                        "Warren cannot load a Java SSLContext supplier; configure {0}keyStore.* and {0}trustStore.* \
                         instead",
                        self.prefix
                    ),
                });
            }
            "sslProvider" => {
                warning =
                    Some(format!("{}={} is ignored: Warren's TLS is rustls whatever Netty would use", e.key, e.value));
            }
            _ => return Ok(None),
        }
        Ok(Some(warning))
    }

    /// The cross-key checks, once the whole file is read.
    pub(super) fn finish(mut self, warnings: &mut Vec<String>) -> Result<TlsConfig, ConfigError> {
        if self.cfg.secure_client_port.is_none() {
            if let Some(line) = self.address_line {
                // ZooKeeper refuses this too.
                return Err(ConfigError::Syntax {
                    line,
                    message: "secureClientPortAddress is set but secureClientPort is not".to_string(),
                });
            }
        }
        self.finish_common()?;
        if !self.cfg.enabled() {
            if self.cfg.key_store.is_some() || self.cfg.trust_store.is_some() {
                warnings.push(
                    "zoo.cfg: ssl.keyStore/ssl.trustStore are set but neither secureClientPort nor \
                     client.portUnification is: no connection uses TLS"
                        .to_string(),
                );
            }
            return Ok(self.cfg);
        }
        if self.cfg.key_store.is_none() {
            return Err(ConfigError::Tls(
                "secureClientPort or client.portUnification is set but ssl.keyStore.location is not: the server \
                 has no certificate to show"
                    .to_string(),
            ));
        }
        if self.cfg.client_auth != ClientAuth::None && self.cfg.trust_store.is_none() {
            return Err(ConfigError::Tls(format!(
                "ssl.clientAuth is {} (need is ZooKeeper's default) but ssl.trustStore.location is not set: Warren \
                 has no system trust store to check client certificates against; set ssl.trustStore.location, or \
                 ssl.clientAuth=none",
                if self.cfg.client_auth == ClientAuth::Need { "need" } else { "want" }
            )));
        }
        Ok(self.cfg)
    }

    /// What client and quorum keys share: protocols and stores.
    fn finish_common(&mut self) -> Result<(), ConfigError> {
        self.cfg.protocols = match (self.enabled_protocols.take(), self.protocol) {
            (Some((_, list)), _) => list,
            (None, Some((_, p))) => vec![p],
            (None, None) => vec![Protocol::Tls12],
        };
        let prefix = self.prefix;
        self.cfg.key_store = std::mem::take(&mut self.key_store).finish(&format!("{prefix}keyStore"))?;
        self.cfg.trust_store = std::mem::take(&mut self.trust_store).finish(&format!("{prefix}trustStore"))?;
        Ok(())
    }

    /// The cross-key checks of the quorum keys. `ensemble`: whether `server.N` lines exist.
    pub(super) fn finish_quorum(
        mut self,
        ensemble: bool,
        warnings: &mut Vec<String>,
    ) -> Result<QuorumTls, ConfigError> {
        self.finish_common()?;
        let mut q = self.quorum;
        q.tls = self.cfg;
        if !q.enabled() {
            if q.tls.key_store.is_some() || q.tls.trust_store.is_some() {
                warnings.push(
                    "zoo.cfg: ssl.quorum.keyStore/ssl.quorum.trustStore are set but neither sslQuorum nor \
                     portUnification is: peer connections are plaintext"
                        .to_string(),
                );
            }
            if q.reload_cert_files {
                warnings.push("zoo.cfg: sslQuorumReloadCertFiles is set but quorum TLS is off".to_string());
            }
            return Ok(q);
        }
        if !ensemble {
            warnings.push(
                "zoo.cfg: sslQuorum/portUnification are set but there are no server.N lines: a standalone server \
                 has no peers"
                    .to_string(),
            );
            return Ok(QuorumTls { ssl_quorum: false, port_unification: false, ..q });
        }
        let what = if q.ssl_quorum { "sslQuorum=true" } else { "portUnification=true" };
        if q.tls.key_store.is_none() || q.tls.trust_store.is_none() {
            return Err(ConfigError::Tls(format!(
                "{what} needs ssl.quorum.keyStore.location (this server's certificate) and \
                 ssl.quorum.trustStore.location (the CA its peers' certificates must chain to)"
            )));
        }
        Ok(q)
    }
}

impl StoreKeys {
    fn finish(self, prefix: &str) -> Result<Option<Store>, ConfigError> {
        let Some((line, location)) = self.location else {
            return Ok(None);
        };
        if location.is_empty() {
            return Ok(None);
        }
        let kind = match &self.kind {
            Some((line, text)) if !text.is_empty() => store_type(*line, &format!("{prefix}.type"), text)?,
            _ => store_type_from_name(line, &format!("{prefix}.location"), &location)?,
        };
        let password = match (self.password, self.password_path) {
            (Some(p), _) => p,
            // ZooKeeper reads the password file when no password is given.
            (None, Some((line, path))) => {
                std::fs::read_to_string(&path).map(|p| p.trim_end_matches(['\r', '\n']).to_string()).map_err(|err| {
                    ConfigError::Syntax { line, message: format!("{prefix}.passwordPath: cannot read {path}: {err}") }
                })?
            }
            (None, None) => String::new(),
        };
        Ok(Some(Store { location: PathBuf::from(location), password, kind }))
    }
}

fn client_auth(e: &Entry) -> Result<ClientAuth, ConfigError> {
    // ZooKeeper: empty means need; otherwise the enum's name in any case.
    match e.value.to_ascii_lowercase().as_str() {
        "" | "need" => Ok(ClientAuth::Need),
        "want" => Ok(ClientAuth::Want),
        "none" => Ok(ClientAuth::None),
        _ => Err(invalid(e, "none, want or need")),
    }
}

/// A comma-separated list of Java protocol names.
fn protocols(e: &Entry, text: &str) -> Result<Vec<Protocol>, ConfigError> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name {
            "TLSv1.2" => out.push(Protocol::Tls12),
            "TLSv1.3" => out.push(Protocol::Tls13),
            "TLS" => out.extend([Protocol::Tls12, Protocol::Tls13]),
            "TLSv1" | "TLSv1.1" | "SSLv3" | "SSLv2Hello" => {
                return Err(ConfigError::Unsupported {
                    line: e.line,
                    key: e.key.clone(),
                    value: e.value.clone(),
                    reason: format!("{name} is obsolete and not offered; use TLSv1.2 and/or TLSv1.3"),
                })
            }
            _ => return Err(invalid(e, "TLSv1.2, TLSv1.3 or TLS (both)")),
        }
    }
    if out.is_empty() {
        return Err(invalid(e, "TLSv1.2, TLSv1.3 or TLS (both)"));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn store_type(line: usize, key: &str, text: &str) -> Result<StoreType, ConfigError> {
    match text.to_ascii_uppercase().as_str() {
        "PEM" => Ok(StoreType::Pem),
        "PKCS12" => Ok(StoreType::Pkcs12),
        "JKS" => Err(jks_refused(line, key, text)),
        _ => Err(ConfigError::InvalidValue {
            line,
            key: key.to_string(),
            value: text.to_string(),
            expected: "PEM or PKCS12 (JKS and BCFKS are Java formats Warren cannot read)".to_string(),
        }),
    }
}

/// ZooKeeper's `KeyStoreFileType.fromFilename` (plus `.pfx`, PKCS12's other usual ending).
fn store_type_from_name(line: usize, key: &str, location: &str) -> Result<StoreType, ConfigError> {
    let lower = location.to_ascii_lowercase();
    if lower.ends_with(".pem") || lower.ends_with(".crt") {
        Ok(StoreType::Pem)
    } else if lower.ends_with(".p12") || lower.ends_with(".pfx") {
        Ok(StoreType::Pkcs12)
    } else if lower.ends_with(".jks") {
        Err(jks_refused(line, key, location))
    } else {
        Err(ConfigError::InvalidValue {
            line,
            key: key.to_string(),
            value: location.to_string(),
            expected: "a file ending in .pem, .p12 or .pfx, or the type given in the matching .type key \
                       (PEM or PKCS12)"
                .to_string(),
        })
    }
}

fn jks_refused(line: usize, key: &str, value: &str) -> ConfigError {
    ConfigError::Unsupported {
        line,
        key: key.to_string(),
        value: value.to_string(),
        reason: format!("Java key stores (JKS) cannot be read by Warren; convert it to PKCS12 with `{JKS_CONVERSION}`"),
    }
}

/// `authProvider.N=<class>`: ZooKeeper loads the class. Warren has the x509 provider built in
/// (and digest and ip); any other class is warned about, as before TLS.
fn auth_provider(e: &Entry) -> Result<Applied, ConfigError> {
    if e.value == X509_PROVIDER_CLASS || BUILT_IN_PROVIDER_CLASSES.contains(&e.value.as_str()) {
        return Ok(Applied::Used(None));
    }
    Ok(Applied::Used(Some(format!(
        "{} is not supported: {} is a Java class; Warren's schemes are digest, ip and x509 (built in)",
        e.key, e.value
    ))))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    use super::*;

    fn tls(body: &str) -> Result<(TlsConfig, Vec<String>), ConfigError> {
        Config::parse(&format!("dataDir=/tmp/d\n{body}")).map(|(c, w)| (c.tls, w))
    }

    fn err(body: &str) -> String {
        tls(body).expect_err("refused").to_string()
    }

    const STORES: &str = "ssl.keyStore.location=/k/server.pem\nssl.trustStore.location=/k/ca.pem\n";

    #[test]
    fn nothing_set_means_no_tls() {
        let (t, w) = tls("").unwrap();
        assert!(!t.enabled());
        assert_eq!(t, TlsConfig::default());
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn secure_port_with_pem_stores_and_zookeeper_defaults() {
        let (t, w) = tls(&format!("secureClientPort=2281\n{STORES}")).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(t.secure_client_port, Some(2281));
        assert_eq!(t.secure_client_port_address, None);
        assert_eq!(t.client_auth, ClientAuth::Need);
        assert_eq!(t.protocols, vec![Protocol::Tls12]);
        let ks = t.key_store.unwrap();
        assert_eq!((ks.kind, ks.location.to_str().unwrap()), (StoreType::Pem, "/k/server.pem"));
        assert_eq!(t.trust_store.unwrap().kind, StoreType::Pem);
    }

    #[test]
    fn store_type_comes_from_the_key_or_the_file_name() {
        let (t, _) = tls("secureClientPort=2281\nssl.clientAuth=none\nssl.keyStore.location=/k/s.p12\n\
             ssl.keyStore.password=pw")
        .unwrap();
        let ks = t.key_store.unwrap();
        assert_eq!((ks.kind, ks.password.as_str()), (StoreType::Pkcs12, "pw"));
        let (t, _) = tls("secureClientPort=1\nssl.clientAuth=none\nssl.keyStore.location=/k/s.pfx").unwrap();
        assert_eq!(t.key_store.unwrap().kind, StoreType::Pkcs12);
        let (t, _) =
            tls("secureClientPort=1\nssl.clientAuth=none\nssl.keyStore.location=/k/s\nssl.keyStore.type=pem").unwrap();
        assert_eq!(t.key_store.unwrap().kind, StoreType::Pem);
        assert!(err("secureClientPort=1\nssl.keyStore.location=/k/s.key").contains("ssl.keyStore.location"));
        assert!(
            err("secureClientPort=1\nssl.keyStore.location=/k/s\nssl.keyStore.type=BCFKS").contains("PEM or PKCS12")
        );
    }

    #[test]
    fn jks_is_refused_with_the_conversion_command() {
        let e = err(&format!("secureClientPort=2281\nssl.keyStore.location=/k/server.jks\n{}", "ssl.clientAuth=none"));
        assert!(e.contains("line 3") && e.contains("ssl.keyStore.location"), "{e}");
        assert!(e.contains(JKS_CONVERSION), "{e}");
        let e = err("secureClientPort=2281\nssl.keyStore.location=/k/s.p12\nssl.trustStore.location=/k/t\nssl.trustStore.type=JKS");
        assert!(e.contains("ssl.trustStore.type") && e.contains("keytool -importkeystore"), "{e}");
    }

    #[test]
    fn client_auth_values() {
        let auth =
            |v: &str| tls(&format!("secureClientPort=1\n{STORES}ssl.clientAuth={v}")).map(|(t, _)| t.client_auth);
        assert_eq!(auth("NONE").unwrap(), ClientAuth::None);
        assert_eq!(auth("want").unwrap(), ClientAuth::Want);
        assert_eq!(auth("need").unwrap(), ClientAuth::Need);
        assert_eq!(auth("").unwrap(), ClientAuth::Need);
        assert!(auth("sometimes").unwrap_err().to_string().contains("none, want or need"));
    }

    #[test]
    fn client_auth_without_trust_store_is_refused() {
        let e = err("secureClientPort=1\nssl.keyStore.location=/k/s.pem");
        assert!(e.contains("ssl.trustStore.location") && e.contains("ssl.clientAuth"), "{e}");
        tls("secureClientPort=1\nssl.keyStore.location=/k/s.pem\nssl.clientAuth=none").unwrap();
    }

    #[test]
    fn tls_without_key_store_is_refused() {
        assert!(err("secureClientPort=2281").contains("ssl.keyStore.location"));
        assert!(err("client.portUnification=true").contains("ssl.keyStore.location"));
    }

    #[test]
    fn protocols_follow_zookeeper() {
        let p = |body: &str| tls(&format!("secureClientPort=1\n{STORES}{body}")).map(|(t, _)| t.protocols);
        assert_eq!(p("ssl.protocol=TLSv1.3").unwrap(), vec![Protocol::Tls13]);
        assert_eq!(p("ssl.protocol=TLS").unwrap(), vec![Protocol::Tls12, Protocol::Tls13]);
        assert_eq!(p("ssl.enabledProtocols=TLSv1.3,TLSv1.2").unwrap(), vec![Protocol::Tls12, Protocol::Tls13]);
        assert_eq!(
            p("ssl.protocol=TLSv1.3\nssl.enabledProtocols=TLSv1.2").unwrap(),
            vec![Protocol::Tls12],
            "enabledProtocols wins over protocol"
        );
        let e = p("ssl.enabledProtocols=TLSv1.2,TLSv1.1").unwrap_err().to_string();
        assert!(e.contains("TLSv1.1 is obsolete") && e.contains("ssl.enabledProtocols"), "{e}");
        assert!(p("ssl.protocol=TLSv9").unwrap_err().to_string().contains("TLSv1.2, TLSv1.3"));
    }

    #[test]
    fn cipher_suites_map_and_unknown_ones_are_refused() {
        let (t, w) = tls(&format!(
            "secureClientPort=1\n{STORES}ssl.ciphersuites=TLS_AES_128_GCM_SHA256,\
             TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"
        ))
        .unwrap();
        assert_eq!(
            t.cipher_suites.unwrap(),
            vec!["TLS13_AES_128_GCM_SHA256".to_string(), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string()]
        );
        assert!(w.iter().any(|w| w.contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 not offered")), "{w:?}");
        let e = err(&format!("secureClientPort=1\n{STORES}ssl.ciphersuites=TLS_RSA_WITH_NULL_MD5"));
        assert!(e.contains("ssl.ciphersuites") && e.contains("TLS_RSA_WITH_NULL_MD5"), "{e}");
        let e = err(&format!("secureClientPort=1\n{STORES}ssl.ciphersuites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"));
        assert!(e.contains("at least one AEAD"), "{e}");
    }

    #[test]
    fn ports_addresses_and_unification() {
        let (t, _) = tls(&format!(
            "secureClientPort=2281\nsecureClientPortAddress=127.0.0.1\nclient.portUnification=true\n{STORES}"
        ))
        .unwrap();
        assert_eq!(t.secure_client_port_address, Some("127.0.0.1".parse().unwrap()));
        assert!(t.port_unification);
        let (t, _) = tls("secureClientPort=0").unwrap();
        assert!(!t.enabled());
        assert!(err("secureClientPortAddress=127.0.0.1").contains("secureClientPort is not"));
        assert!(err("secureClientPort=70000").contains("port number"));
    }

    #[test]
    fn client_side_and_provider_keys() {
        let (t, w) = tls(&format!(
            "secureClientPort=1\n{STORES}ssl.hostnameVerification=false\nssl.authProvider=x509\n\
             authProvider.x509={X509_PROVIDER_CLASS}\nssl.handshakeDetectionTimeoutMillis=250\n\
             X509AuthenticationProvider.superUser=CN=admin"
        ))
        .unwrap();
        assert!(w.iter().any(|w| w.contains("ssl.hostnameVerification is a client's setting")), "{w:?}");
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(t.handshake_detection_timeout_ms, 250);
        assert_eq!(t.x509_super_user.as_deref(), Some("CN=admin"));
        assert!(err("ssl.authProvider=myx509").contains("only certificate authentication provider"));
        let (_, w) = tls("authProvider.1=com.example.Kerberos").unwrap();
        assert!(w.iter().any(|w| w.contains("authProvider.1 is not supported")), "{w:?}");
    }

    #[test]
    fn revocation_and_context_suppliers_are_refused_when_on() {
        assert!(err("ssl.crl=true").contains("revocation"));
        assert!(err("ssl.ocsp=true").contains("revocation"));
        tls("ssl.crl=false\nssl.ocsp=false").unwrap();
        assert!(err("ssl.context.supplier.class=a.B").contains("SSLContext supplier"));
    }

    #[test]
    fn password_path_is_read_when_no_password_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "secret\n").unwrap();
        let (t, _) = tls(&format!(
            "secureClientPort=1\nssl.clientAuth=none\nssl.keyStore.location=/k/s.p12\nssl.keyStore.passwordPath={}",
            path.display()
        ))
        .unwrap();
        assert_eq!(t.key_store.unwrap().password, "secret");
    }
}
