//! TLS to PostgreSQL: libpq's `sslmode` and `sslrootcert` read from the database URL, and a
//! rustls connector for them (managed PostgreSQL services require TLS).
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` (the default here) | no | — |
//! | `prefer` | if the server offers it | as `require` |
//! | `require` | yes | no (with `sslrootcert`: as `verify-ca`, as libpq does) |
//! | `verify-ca` | yes | signed by a CA in `sslrootcert` |
//! | `verify-full` | yes | signed by a CA in `sslrootcert`, and issued for the URL's host |
//!
//! `tokio-postgres` itself knows only `disable`, `prefer` and `require`, and reads no
//! certificate files: both parameters are taken out of the URL here and applied with a rustls
//! connector of our own.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StoreError;

/// How a connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The TLS settings of a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tls {
    pub(crate) mode: Mode,
    pub(crate) root_cert: Option<PathBuf>,
}

impl Tls {
    /// Takes `sslmode` and `sslrootcert` out of `url`'s query; returns the URL without them
    /// (for `tokio-postgres`) and the settings.
    pub(crate) fn split(url: &str) -> Result<(String, Tls), StoreError> {
        let mut tls = Tls {
            mode: Mode::Disable,
            root_cert: None,
        };
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), tls));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    tls.mode = match value {
                        "disable" => Mode::Disable,
                        "prefer" => Mode::Prefer,
                        "require" => Mode::Require,
                        "verify-ca" => Mode::VerifyCa,
                        "verify-full" => Mode::VerifyFull,
                        other => {
                            return Err(StoreError::Url(format!(
                                "sslmode={other} is not one of disable, prefer, require, \
                                 verify-ca, verify-full"
                            )))
                        }
                    }
                }
                "sslrootcert" => tls.root_cert = Some(PathBuf::from(percent_decoded(value)?)),
                _ => kept.push(pair),
            }
        }
        if matches!(tls.mode, Mode::VerifyCa | Mode::VerifyFull) && tls.root_cert.is_none() {
            return Err(StoreError::Url(
                "sslmode=verify-ca and verify-full need sslrootcert=/path/to/ca.pem (the CA \
                 that signed the server's certificate)"
                    .into(),
            ));
        }
        let url = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((url, tls))
    }

    /// The mode `tokio-postgres` negotiates with.
    pub(crate) fn ssl_mode(&self) -> SslMode {
        match self.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }

    /// The connector, or `None` without TLS.
    pub(crate) fn connector(&self) -> Result<Option<MakeRustlsConnect>, StoreError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Tls(e.to_string()))?;
        let roots = self.root_cert.as_deref().map(load_roots).transpose()?;
        let verifier: Arc<dyn ServerCertVerifier> = match (self.mode, roots) {
            (Mode::Disable, _) => return Ok(None),
            (Mode::Prefer | Mode::Require, None) => Arc::new(Unverified(provider)),
            (Mode::VerifyFull, Some(roots)) => web_pki(roots, provider)?,
            (Mode::Prefer | Mode::Require | Mode::VerifyCa, Some(roots)) => {
                Arc::new(AnyName(web_pki(roots, provider)?))
            }
            (Mode::VerifyCa | Mode::VerifyFull, None) => {
                return Err(StoreError::Tls("no sslrootcert".into()))
            }
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Some(MakeRustlsConnect::new(config)))
    }
}

/// `%2F`-style escapes in a URL query value decoded (a path may need them).
fn percent_decoded(value: &str) -> Result<String, StoreError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| StoreError::Url(format!("a bad %-escape in {value:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| StoreError::Url(format!("{value:?} is not UTF-8")))
}

/// The CA certificates in the PEM file at `path`.
fn load_roots(path: &Path) -> Result<RootCertStore, StoreError> {
    let fail = |e: String| StoreError::Tls(format!("sslrootcert {}: {e}", path.display()));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))? {
        roots
            .add(cert.map_err(|e| fail(e.to_string()))?)
            .map_err(|e| fail(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(fail("holds no certificate".into()));
    }
    Ok(roots)
}

fn web_pki(
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, StoreError> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| StoreError::Tls(e.to_string()))
}

/// `require` without a CA: the connection is encrypted, and the server's certificate is not
/// checked (libpq's meaning; a man in the middle is not stopped). Handshake signatures are
/// still verified.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a CA of `sslrootcert`; the name on the certificate is
/// not compared with the host.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_come_out_of_the_url_and_the_rest_stays() {
        let (url, tls) = Tls::split(
            "postgres://u:p@db:5432/horde?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .expect("split");
        assert_eq!(url, "postgres://u:p@db:5432/horde?application_name=x");
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let (url, tls) = Tls::split("postgres://db/horde").expect("split");
        assert_eq!(
            (url.as_str(), tls.mode),
            ("postgres://db/horde", Mode::Disable)
        );
        let (url, tls) = Tls::split("postgres://db/horde?sslmode=require").expect("split");
        assert_eq!(
            (url.as_str(), tls.mode),
            ("postgres://db/horde", Mode::Require)
        );
        assert!(
            Tls::split("postgres://db/h?sslmode=verify-full").is_err(),
            "no CA"
        );
        assert!(Tls::split("postgres://db/h?sslmode=allow-anything").is_err());
    }
}
