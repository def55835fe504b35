//! TLS for the public and admin listeners: certificates from PEM files, chosen by SNI,
//! reloaded when their files change; client certificates checked against a CA file.
//!
//! - Each certificate is a chain (`cert.pem`) and its key (`key.pem`: PKCS#8, PKCS#1 or SEC1).
//!   The names it serves are its subject alternative DNS names, wildcards included. A client
//!   asking for a name no certificate has, or sending no SNI, gets the first certificate.
//! - TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`.
//! - The files are checked every [`RELOAD_INTERVAL`]; when one changes, all are read again
//!   and swapped in for new handshakes. A set that fails to load (a half-written file, a key
//!   that does not match) is logged and the previous certificates stay in service.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::danger::ClientCertVerifier;
use tokio_rustls::rustls::server::{
    ClientHello, NoClientAuth, ResolvesServerCert, WebPkiClientVerifier,
};
use tokio_rustls::rustls::sign::CertifiedKey;

/// How often certificate files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// One certificate chain and its private key, as files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("no certificates given")]
    Empty,
}

/// The certificates in service, by name.
struct Loaded {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` certificates, stored under `example.com`.
    by_wildcard_parent: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
    /// What the files looked like when loaded, to notice changes.
    stamps: Vec<FileStamp>,
}

/// What a file looked like (modification time and size), to notice that it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl FileStamp {
    /// A missing file has a stamp too, so its coming back is a change.
    pub(crate) fn of(path: &Path) -> FileStamp {
        match std::fs::metadata(path) {
            Ok(meta) => FileStamp {
                modified: meta.modified().ok(),
                len: meta.len(),
            },
            Err(_) => FileStamp {
                modified: None,
                len: 0,
            },
        }
    }
}

/// Resolves certificates by SNI from what was last loaded; shared with the reload task.
pub struct CertificateStore {
    files: Vec<CertificateFiles>,
    loaded: RwLock<Arc<Loaded>>,
}

impl std::fmt::Debug for CertificateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateStore")
            .field("files", &self.files)
            .finish()
    }
}

impl CertificateStore {
    /// Loads every certificate; the first one is the default.
    pub fn load(files: Vec<CertificateFiles>) -> Result<Arc<CertificateStore>, TlsError> {
        let loaded = load_all(&files)?;
        Ok(Arc::new(CertificateStore {
            files,
            loaded: RwLock::new(Arc::new(loaded)),
        }))
    }

    /// The server config using this store: TLS 1.2 and 1.3, ALPN h2 then http/1.1.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        self.server_config_verifying_clients(Arc::new(NoClientAuth))
    }

    /// [`CertificateStore::server_config`] that also asks clients for a certificate and
    /// lets `verifier` (see [`client_verifier`]) accept or refuse the handshake.
    pub fn server_config_verifying_clients(
        self: &Arc<Self>,
        verifier: Arc<dyn ClientCertVerifier>,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Invalid {
                path: PathBuf::new(),
                message: e.to_string(),
            })?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Names served, for the startup banner (sorted; wildcards as `*.example.com`).
    pub fn names(&self) -> Vec<String> {
        let loaded = self.current();
        let mut names: Vec<String> = loaded.by_name.keys().cloned().collect();
        names.extend(loaded.by_wildcard_parent.keys().map(|p| format!("*.{p}")));
        names.sort();
        names
    }

    fn current(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads when a file changed since the last load. Returns whether new certificates
    /// went into service.
    pub fn reload_if_changed(&self) -> bool {
        let current = self.current();
        let stamps: Vec<FileStamp> = stamps(&self.files);
        if stamps == current.stamps {
            return false;
        }
        match load_all(&self.files) {
            Ok(loaded) => {
                let names = loaded.by_name.len() + loaded.by_wildcard_parent.len();
                if let Ok(mut guard) = self.loaded.write() {
                    *guard = Arc::new(loaded);
                }
                tracing::info!(names, "TLS certificates reloaded");
                true
            }
            Err(e) => {
                // Keep serving with what works; retry only once the files change again.
                tracing::error!(error = %e, "TLS certificates changed but cannot be loaded; keeping the previous ones");
                if let Ok(mut guard) = self.loaded.write() {
                    let mut kept = Loaded {
                        by_name: current.by_name.clone(),
                        by_wildcard_parent: current.by_wildcard_parent.clone(),
                        default: current.default.clone(),
                        stamps: current.stamps.clone(),
                    };
                    kept.stamps = stamps;
                    *guard = Arc::new(kept);
                }
                false
            }
        }
    }

    /// Checks the files every [`RELOAD_INTERVAL`] until the returned task is aborted.
    pub fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let store = store.clone();
                // Reading files is blocking work; keep it off the request threads.
                let _ = tokio::task::spawn_blocking(move || store.reload_if_changed()).await;
            }
        })
    }
}

impl ResolvesServerCert for CertificateStore {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let loaded = self.current();
        let Some(name) = client_hello.server_name() else {
            return Some(loaded.default.clone());
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(key) = loaded.by_name.get(&name) {
            return Some(key.clone());
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(key) = loaded.by_wildcard_parent.get(parent) {
                return Some(key.clone());
            }
        }
        Some(loaded.default.clone())
    }
}

/// Requires clients to present a certificate chaining to one of the CAs in `ca_file` (PEM,
/// one or more certificates); a client without one, or with one from another CA, fails the
/// handshake. The file is read once per call; the admin listener calls it again when the
/// file changes (`admin/access.rs`).
pub fn client_verifier(ca_file: &Path) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let invalid = |message: String| TlsError::Invalid {
        path: ca_file.to_path_buf(),
        message,
    };
    let pem = read(ca_file)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(format!("not a PEM certificate: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(invalid("no CERTIFICATE block found".to_string()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| invalid(e.to_string()))
}

fn stamps(files: &[CertificateFiles]) -> Vec<FileStamp> {
    files
        .iter()
        .flat_map(|f| [&f.cert, &f.key])
        .map(|path| FileStamp::of(path))
        .collect()
}

fn load_all(files: &[CertificateFiles]) -> Result<Loaded, TlsError> {
    let stamps = stamps(files);
    let mut by_name = HashMap::new();
    let mut by_wildcard_parent = HashMap::new();
    let mut default = None;
    for pair in files {
        let (key, names) = load_pair(pair)?;
        let key = Arc::new(key);
        for name in names {
            let name = name.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(parent) => by_wildcard_parent
                    .entry(parent.to_string())
                    .or_insert_with(|| key.clone()),
                None => by_name.entry(name).or_insert_with(|| key.clone()),
            };
        }
        default.get_or_insert(key);
    }
    Ok(Loaded {
        by_name,
        by_wildcard_parent,
        default: default.ok_or(TlsError::Empty)?,
        stamps,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// One chain and key, checked to belong together; with the DNS names the leaf serves.
fn load_pair(files: &CertificateFiles) -> Result<(CertifiedKey, Vec<String>), TlsError> {
    let invalid = |path: &Path, message: String| TlsError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let cert_pem = read(&files.cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(&files.cert, format!("not a PEM certificate chain: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(invalid(
            &files.cert,
            "no CERTIFICATE block found".to_string(),
        ));
    };
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        invalid(
            &files.key,
            format!("no PKCS#8, PKCS#1 or SEC1 private key found: {e}"),
        )
    })?;
    let names: Vec<String> = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| invalid(&files.cert, format!("cannot parse the certificate: {e:?}")))?
        .valid_dns_names()
        .map(str::to_string)
        .collect();
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        invalid(
            &files.key,
            format!("does not match {}: {e}", files.cert.display()),
        )
    })?;
    Ok((certified, names))
}
