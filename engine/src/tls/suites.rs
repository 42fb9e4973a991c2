//! ZooKeeper's cipher suite and protocol names (Java's, IANA's) in rustls terms.
//!
//! Java names TLS 1.3 suites without a version (`TLS_AES_128_GCM_SHA256`); rustls prefixes
//! them with `TLS13_`. TLS 1.2 suites have the same name in both. rustls offers only AEAD
//! suites with forward secrecy, so ZooKeeper's CBC defaults, static-RSA and DHE suites are
//! known here (and dropped with a warning) but never offered.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::SupportedCipherSuite;

use crate::config::tls::Protocol;

/// (Java name, rustls name) of every suite Warren can offer.
const OFFERED: &[(&str, &str)] = &[
    ("TLS_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256"),
    ("TLS_AES_256_GCM_SHA384", "TLS13_AES_256_GCM_SHA384"),
    ("TLS_CHACHA20_POLY1305_SHA256", "TLS13_CHACHA20_POLY1305_SHA256"),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
];

/// Maps a comma-separated `ssl.ciphersuites` value. Returns the rustls names offered and the
/// known names that rustls lacks (AES suites in CBC or CCM mode, or without ECDHE), or `Err`
/// with the first name that is no AES, ChaCha20 or TLS 1.3 suite at all.
pub fn from_java_names(list: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let mut offered = Vec::new();
    let mut dropped = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if let Some((_, ours)) = OFFERED.iter().find(|(java, _)| *java == name) {
            if !offered.iter().any(|o: &String| o == ours) {
                offered.push((*ours).to_string());
            }
        } else if name.starts_with("TLS_") && name.contains("_WITH_AES_") {
            dropped.push(name.to_string());
        } else {
            return Err(name.to_string());
        }
    }
    Ok((offered, dropped))
}

/// The ring provider restricted to `names` (rustls names; None: all of ring's suites),
/// checking that every enabled protocol keeps at least one suite. `prefix` (`ssl.` or
/// `ssl.quorum.`) names the keys in the error.
pub fn provider(names: Option<&[String]>, protocols: &[Protocol], prefix: &str) -> Result<Arc<CryptoProvider>, String> {
    // ring (not aws-lc-rs, which needs a C toolchain and cmake); its provider lacks post-quantum key
    // exchange, which rustls now flags as deprecated.
    #[allow(deprecated)]
    let mut p = rustls::crypto::ring::default_provider();
    if let Some(names) = names {
        p.cipher_suites.retain(|s| names.iter().any(|n| *n == format!("{:?}", s.suite())));
    }
    for proto in protocols {
        let tls13 = *proto == Protocol::Tls13;
        if !p.cipher_suites.iter().any(|s| matches!(s, SupportedCipherSuite::Tls13(_)) == tls13) {
            return Err(format!(
                "{prefix}ciphersuites leaves no suite for {} (listed in {prefix}enabledProtocols/{prefix}protocol)",
                proto.name()
            ));
        }
    }
    Ok(Arc::new(p))
}

/// rustls's version objects for `protocols`.
pub fn versions(protocols: &[Protocol]) -> Vec<&'static rustls::SupportedProtocolVersion> {
    protocols
        .iter()
        .map(|p| match p {
            Protocol::Tls12 => &rustls::version::TLS12,
            Protocol::Tls13 => &rustls::version::TLS13,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_names_map_to_rustls_suites_ring_has() {
        let all: Vec<&str> = OFFERED.iter().map(|(j, _)| *j).collect();
        let (ours, dropped) = from_java_names(&all.join(",")).unwrap();
        assert!(dropped.is_empty());
        let p = provider(Some(&ours), &[Protocol::Tls12, Protocol::Tls13], "ssl.").unwrap();
        assert_eq!(p.cipher_suites.len(), OFFERED.len(), "every mapped name is one of ring's suites");
    }

    #[test]
    fn zookeeper_defaults_keep_their_gcm_suites() {
        // ZooKeeper's Java 9+ default list: GCM first, then CBC.
        let zk = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,\
                  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,\
                  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA";
        let (ours, dropped) = from_java_names(zk).unwrap();
        assert_eq!(ours.len(), 4);
        assert_eq!(dropped, vec!["TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            from_java_names("TLS_AES_128_GCM_SHA256, SSL_RSA_WITH_RC4_128_MD5"),
            Err("SSL_RSA_WITH_RC4_128_MD5".into())
        );
        assert_eq!(from_java_names("tls_aes_128_gcm_sha256"), Err("tls_aes_128_gcm_sha256".into()));
    }

    #[test]
    fn a_protocol_without_suites_is_refused() {
        let only13 = vec!["TLS13_AES_128_GCM_SHA256".to_string()];
        assert!(provider(Some(&only13), &[Protocol::Tls13], "ssl.").is_ok());
        let e = provider(Some(&only13), &[Protocol::Tls12], "ssl.quorum.").unwrap_err();
        assert!(e.contains("TLSv1.2") && e.contains("ssl.quorum.ciphersuites"), "{e}");
    }
}
