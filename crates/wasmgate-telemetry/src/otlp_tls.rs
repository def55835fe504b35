//! TLS to the OTLP collector: whom to trust and what to present, from the standard variables
//! `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE` (PEM file of the CA certificates that sign the
//! collector's certificate; without it, the public web PKI) and `..._CLIENT_CERTIFICATE` with
//! `..._CLIENT_KEY` (PEM chain and key, for collectors that require client certificates).
//!
//! The files are read once, when the configuration is read, so a missing or bad file stops
//! startup with the variable's name instead of failing every export.

use crate::otlp::OtlpConfigError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// The collector's TLS settings, read and checked.
#[derive(Clone, Default)]
pub struct OtlpTls {
    /// The files they came from, for messages and comparisons.
    pub files: TlsFiles,
    /// CA certificates the collector's chain must end in; `None`: the public web PKI.
    roots: Option<Arc<rustls::RootCertStore>>,
    /// The certificate chain and key presented to the collector.
    client: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
}

/// Which files the variables named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub certificate: Option<PathBuf>,
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

impl std::fmt::Debug for OtlpTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.files.fmt(f)
    }
}

impl PartialEq for OtlpTls {
    fn eq(&self, other: &OtlpTls) -> bool {
        self.files == other.files
    }
}

impl OtlpTls {
    /// The settings the variables ask for (`var` reads one, traces-specific first).
    pub(crate) fn from_env(
        var: impl Fn(&'static str, &'static str) -> Option<(&'static str, String)>,
    ) -> Result<OtlpTls, OtlpConfigError> {
        let certificate = var(
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
        );
        let client_certificate = var(
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        );
        let client_key = var(
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        );
        let roots = match &certificate {
            None => None,
            Some((variable, path)) => {
                let error = |reason: String| OtlpConfigError {
                    variable,
                    value: path.clone(),
                    reason,
                };
                let mut roots = rustls::RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| error(format!("cannot read it as PEM: {e}")))?;
                for cert in certs {
                    let cert = cert.map_err(|e| error(format!("a bad certificate: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| error(format!("not a usable CA certificate: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(error("the file holds no certificate".into()));
                }
                Some(Arc::new(roots))
            }
        };
        let client = match (&client_certificate, &client_key) {
            (None, None) => None,
            (Some((variable, _)), None) | (None, Some((variable, _))) => {
                return Err(OtlpConfigError {
                    variable,
                    value: "...".into(),
                    reason:
                        "a client certificate needs both OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE \
                             and OTEL_EXPORTER_OTLP_CLIENT_KEY (or their TRACES_ forms)"
                            .into(),
                });
            }
            (Some((cert_variable, cert_path)), Some((key_variable, key_path))) => {
                let chain = CertificateDer::pem_file_iter(cert_path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| OtlpConfigError {
                        variable: cert_variable,
                        value: cert_path.clone(),
                        reason: format!("cannot read a PEM certificate chain: {e}"),
                    })?;
                if chain.is_empty() {
                    return Err(OtlpConfigError {
                        variable: cert_variable,
                        value: cert_path.clone(),
                        reason: "the file holds no certificate".into(),
                    });
                }
                // The key's own path is shown, never its content.
                let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| OtlpConfigError {
                    variable: key_variable,
                    value: key_path.clone(),
                    reason: format!("cannot read a PEM private key: {e}"),
                })?;
                Some((chain, Arc::new(key)))
            }
        };
        let tls = OtlpTls {
            files: TlsFiles {
                certificate: certificate.map(|(_, p)| p.into()),
                client_certificate: client_certificate.map(|(_, p)| p.into()),
                client_key: client_key.map(|(_, p)| p.into()),
            },
            roots,
            client,
        };
        // A key that does not match its certificate is found now, not at the first export.
        tls.client_config(b"h2").map_err(|reason| OtlpConfigError {
            variable: "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            value: "...".into(),
            reason,
        })?;
        Ok(tls)
    }

    /// Whether any file was given (else the public web PKI, no client certificate).
    pub fn is_default(&self) -> bool {
        self.roots.is_none() && self.client.is_none()
    }

    /// A rustls client configuration offering `alpn`.
    pub fn client_config(&self, alpn: &[u8]) -> Result<rustls::ClientConfig, String> {
        let roots = match &self.roots {
            Some(roots) => roots.as_ref().clone(),
            None => rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let mut config = match &self.client {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| format!("the client certificate and key do not go together: {e}"))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(config)
    }
}
