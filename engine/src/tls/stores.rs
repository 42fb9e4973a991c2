//! Reading ZooKeeper's key and trust stores: PEM and PKCS12 (JKS is refused when the
//! configuration is read, see `config::tls`).
//!
//! * A PEM key store holds one private key (PKCS#8, PKCS#1 or SEC1) and the certificate
//!   chain, leaf first, as ZooKeeper's `PemReader` expects. An encrypted key is refused with
//!   the command that decrypts it.
//! * A PKCS12 key store holds one private key; its certificate is the one with the same
//!   local key id (else the first), followed by the others.
//! * A trust store is every certificate of the file (PEM blocks, or PKCS12 bags whether or
//!   not Java marked them trusted).

use std::path::Path;

use p12_keystore::Pkcs12Archive;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::tls::{Store, StoreType};

/// A server's (or client's) certificate chain and private key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Reads a key store. `Err` says what is wrong with which file.
pub fn load_identity(store: &Store) -> Result<Identity, String> {
    let bytes = read(&store.location)?;
    let at = store.location.display();
    match store.kind {
        StoreType::Pem => {
            if bytes.windows(22).any(|w| w == b"ENCRYPTED PRIVATE KEY-") {
                return Err(format!(
                    "{at}: the private key is encrypted, which Warren cannot read; decrypt it with \
                     `openssl pkcs8 -topk8 -nocrypt -in {at} -out key.pem` and keep the file private"
                ));
            }
            let chain = pem_certificates(&bytes).map_err(|e| format!("{at}: {e}"))?;
            if chain.is_empty() {
                return Err(format!("{at}: no CERTIFICATE block in the key store"));
            }
            let key = PrivateKeyDer::from_pem_slice(&bytes)
                .map_err(|e| format!("{at}: no readable private key in the key store ({e})"))?;
            Ok(Identity { chain, key })
        }
        StoreType::Pkcs12 => {
            let archive = pkcs12(&bytes, &store.password).map_err(|e| format!("{at}: {e}"))?;
            let key = archive.keys.first().ok_or_else(|| format!("{at}: the PKCS12 file holds no private key"))?;
            let key_id = key.local_key_id.as_ref().map(|id| id.0.as_slice());
            let leaf =
                archive.certs.iter().position(|c| key_id.is_some() && c.local_key_id.as_deref() == key_id).unwrap_or(0);
            let mut chain = Vec::new();
            if let Some(c) = archive.certs.get(leaf) {
                chain.push(CertificateDer::from(c.cert.as_der().to_vec()));
            }
            for (i, c) in archive.certs.iter().enumerate() {
                if i != leaf {
                    chain.push(CertificateDer::from(c.cert.as_der().to_vec()));
                }
            }
            if chain.is_empty() {
                return Err(format!("{at}: the PKCS12 file holds no certificate"));
            }
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.key.as_der().to_vec()));
            Ok(Identity { chain, key })
        }
    }
}

/// Reads a trust store: the certificates client certificates must chain to.
pub fn load_roots(store: &Store) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(&store.location)?;
    let at = store.location.display();
    let certs = match store.kind {
        StoreType::Pem => pem_certificates(&bytes).map_err(|e| format!("{at}: {e}"))?,
        StoreType::Pkcs12 => pkcs12(&bytes, &store.password)
            .map_err(|e| format!("{at}: {e}"))?
            .certs
            .iter()
            .map(|c| CertificateDer::from(c.cert.as_der().to_vec()))
            .collect(),
    };
    if certs.is_empty() {
        return Err(format!("{at}: the trust store holds no certificate"));
    }
    Ok(certs)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn pem_certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(bytes).collect::<Result<Vec<_>, _>>().map_err(|e| format!("bad PEM: {e}"))
}

fn pkcs12(bytes: &[u8], password: &str) -> Result<Pkcs12Archive, String> {
    Pkcs12Archive::from_pkcs12(bytes, password)
        .map_err(|e| format!("cannot read the PKCS12 file (wrong password, or not PKCS12): {e}"))
}
