//! TLS with rustls from a certificate chain and a private key in PEM files: for the HTTP
//! listener (the page, the APIs and `/ws`; `[server] tls_cert`, `tls_key`) and for the
//! embedded TURN server's TLS listener (`[turn] tls_cert`, `tls_key`, or those of `[server]`).
//!
//! The files are read again when they change (checked every [`RELOAD_EVERY`]): a renewed
//! certificate (certbot, an ACME client, an operator's copy) is served to the next
//! connection without a restart. A replacement that cannot be used (half-written, a key
//! that does not match) is logged and the certificate in use is kept.

use crate::reload::Reloading;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How often the certificate and key files are checked for a change.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// The certificate served, swapped when its files change.
#[derive(Debug)]
pub struct Certificates {
    provider: Arc<CryptoProvider>,
    files: Arc<Reloading<CertifiedKey>>,
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.files.current())
    }
}

impl Certificates {
    /// Read the chain and the key (`tls_cert` and `tls_key` of `section`, the config section
    /// they are named in, for messages); an error says which file is wrong and what to do.
    pub fn load(cert: &Path, key: &Path, section: &'static str) -> Result<Arc<Self>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (p, c, k) = (provider.clone(), cert.to_owned(), key.to_owned());
        let files = Reloading::load(vec![cert.to_owned(), key.to_owned()], move || {
            read(&p, &c, &k, section)
        })?;
        Ok(Arc::new(Self {
            provider,
            files: Arc::new(files),
        }))
    }

    /// The TLS configuration serving these certificates, offering the application protocols
    /// `alpn` (HTTP/1.1 for the HTTP listener, which WebSocket upgrades need; none for TURN).
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, String> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// Check the files every [`RELOAD_EVERY`], for as long as the server runs.
    pub async fn watch(self: Arc<Self>) {
        self.files
            .clone()
            .watch(
                RELOAD_EVERY,
                "TLS certificate reloaded: new connections get the new one",
                "the certificate loaded before stays in use until the files are fixed",
            )
            .await;
    }
}

fn read(
    provider: &CryptoProvider,
    cert: &Path,
    key: &Path,
    section: &str,
) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "cannot read the TLS certificate {} ({section} tls_cert): {e}; give a PEM file with the certificate chain, the server's certificate first",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "no certificate in {} ({section} tls_cert): give a PEM file with \"-----BEGIN CERTIFICATE-----\" blocks",
            cert.display()
        ));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "cannot read the TLS private key {} ({section} tls_key): {e}; give a PEM file with one unencrypted private key (PKCS#8, PKCS#1 or SEC1)",
            key.display()
        )
    })?;
    let signing = provider.key_provider.load_private_key(der).map_err(|e| {
        format!(
            "the TLS private key {} ({section} tls_key) cannot be used: {e}",
            key.display()
        )
    })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        format!(
            "the TLS private key {} does not belong to the certificate {}: give the key the certificate was issued for",
            key.display(),
            cert.display()
        )
    })?;
    Ok(certified)
}
