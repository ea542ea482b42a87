//! TLS to PostgreSQL, with libpq's `sslmode` and `sslrootcert`, in the URL's query
//! (`postgres://kiln@db/kiln?sslmode=verify-full&sslrootcert=ca.pem`) or a key=value string:
//!
//! | sslmode | encrypted | the server's certificate |
//! | --- | --- | --- |
//! | `disable` | no | - |
//! | `prefer` (default) | when the server offers it | not checked |
//! | `require` | always | not checked (checked against `sslrootcert` when given, as libpq does) |
//! | `verify-ca` | always | signed by `sslrootcert` (or a public root CA) |
//! | `verify-full` | always | signed so, and naming the host connected to |
//!
//! The driver itself knows only disable, prefer and require, so kiln takes both settings out of
//! the connection string and checks certificates itself (rustls).

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How a connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext.
    Disable,
    /// TLS when the server offers it, certificate unchecked.
    Prefer,
    /// TLS always, certificate unchecked unless a root certificate is given.
    Require,
    /// TLS, certificate signed by a trusted root.
    VerifyCa,
    /// TLS, certificate signed by a trusted root and naming the host.
    VerifyFull,
}

/// The values of `sslmode`.
pub const MODES: &[&str] = &["disable", "prefer", "require", "verify-ca", "verify-full"];

impl SslMode {
    fn from_name(name: &str) -> Option<SslMode> {
        match name {
            "disable" => Some(SslMode::Disable),
            "prefer" => Some(SslMode::Prefer),
            "require" => Some(SslMode::Require),
            "verify-ca" => Some(SslMode::VerifyCa),
            "verify-full" => Some(SslMode::VerifyFull),
            _ => None,
        }
    }

    /// The driver's own mode for this one (it checks no certificate itself).
    pub fn driver(self) -> postgres::config::SslMode {
        match self {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        }
    }
}

/// What is wrong with a connection string's TLS settings.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// An `sslmode` libpq does not have.
    #[error("sslmode `{0}` is not one of {modes}", modes = crate::text::quote_list(MODES))]
    UnknownMode(String),
    /// The `sslrootcert` file cannot be read, or holds something else than certificates.
    #[error("sslrootcert {path}: {why}")]
    RootCert {
        /// The file, as given.
        path: String,
        /// Why.
        why: String,
    },
    /// The `sslrootcert` file holds no certificate.
    #[error("sslrootcert {0} holds no certificate")]
    NoCertificate(String),
    /// rustls refused the configuration.
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// The TLS settings of a connection string.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file of the certificates to trust.
    pub root_cert: Option<PathBuf>,
}

/// Takes `sslmode` and `sslrootcert` out of a connection string: the rest, for the driver,
/// and the settings.
pub fn split(url: &str) -> Result<(String, TlsSettings), TlsError> {
    let mut mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> Result<bool, TlsError> {
        match key {
            "sslmode" => {
                mode = Some(
                    SslMode::from_name(value)
                        .ok_or_else(|| TlsError::UnknownMode(value.to_string()))?,
                );
                Ok(true)
            }
            "sslrootcert" => {
                root_cert = Some(PathBuf::from(value));
                Ok(true)
            }
            _ => Ok(false),
        }
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(key, value)? {
                kept.push(pair);
            }
        }
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            if !take(key, value.trim_matches('\''))? {
                kept.push(word);
            }
        }
        kept.join(" ")
    };
    let settings = TlsSettings {
        mode: mode.unwrap_or(SslMode::Prefer),
        root_cert,
    };
    Ok((rest, settings))
}

/// The connector for `settings`, or `None` for plaintext.
pub fn connector(settings: &TlsSettings) -> Result<Option<MakeRustlsConnect>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (settings.mode, &settings.root_cert) {
        (SslMode::Disable, _) => return Ok(None),
        (SslMode::VerifyFull, roots) => webpki(roots.as_ref(), &provider)?,
        (SslMode::Prefer, _) | (SslMode::Require, None) => Arc::new(Partial {
            chain: None,
            provider: provider.clone(),
        }),
        (SslMode::Require | SslMode::VerifyCa, roots) => Arc::new(Partial {
            chain: Some(webpki(roots.as_ref(), &provider)?),
            provider: provider.clone(),
        }),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Some(MakeRustlsConnect::new(config)))
}

/// The standard verifier: the chain up to `roots` (a PEM file) or the public root CAs, and the
/// host's name.
fn webpki(
    roots: Option<&PathBuf>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let mut store = RootCertStore::empty();
    match roots {
        Some(path) => {
            let unreadable = |why: &dyn std::fmt::Display| TlsError::RootCert {
                path: path.display().to_string(),
                why: why.to_string(),
            };
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|e| unreadable(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unreadable(&e))?;
            if certificates.is_empty() {
                return Err(TlsError::NoCertificate(path.display().to_string()));
            }
            for certificate in certificates {
                store.add(certificate).map_err(|e| unreadable(&e))?;
            }
        }
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
        .build()
        .map_err(|e| TlsError::Setup(e.to_string()))
}

/// Less than `verify-full`, as libpq does: `verify-ca` (and `require` with roots) checks the
/// chain but not the name; `prefer` and `require` without roots check neither (encryption
/// against eavesdroppers). The handshake's signatures are always checked.
#[derive(Debug)]
struct Partial {
    /// The chain's verifier, when the chain is checked.
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Partial {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
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
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_leave_the_connection_string() {
        let (rest, settings) =
            split("postgres://k@db/x?sslmode=verify-full&application_name=a&sslrootcert=/ca.pem")
                .unwrap();
        assert_eq!(rest, "postgres://k@db/x?application_name=a");
        assert_eq!(settings.mode, SslMode::VerifyFull);
        assert_eq!(settings.root_cert, Some(PathBuf::from("/ca.pem")));
        let (rest, settings) = split("host=db sslmode=require dbname=x").unwrap();
        assert_eq!(
            (rest.as_str(), settings.mode),
            ("host=db dbname=x", SslMode::Require)
        );
        assert_eq!(split("postgres://k@db/x").unwrap().1.mode, SslMode::Prefer);
        assert!(
            split("postgres://k@db/x?sslmode=strict")
                .unwrap_err()
                .to_string()
                .contains("verify-full")
        );
    }
}
