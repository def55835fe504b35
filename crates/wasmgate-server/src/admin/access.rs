//! Who may use the admin listener, and where it may listen without protection.
//!
//! The admin API exposes invocation records (trap messages, backtraces, routes, timings) and
//! control actions, so it can be guarded in two independent ways:
//! - a bearer token: every request carries `Authorization: Bearer <token>`, compared in
//!   constant time; `/healthz` and `/readyz` stay open because they reveal nothing and
//!   orchestrator probes cannot easily send a token (so do the dashboard's static files);
//! - client certificates (TLS with a client CA): a client without a certificate from that CA
//!   fails the handshake, before any HTTP, probes included.
//!
//! Without either, the listener must be on a loopback address unless the operator explicitly
//! accepts the exposure ([`AdminAccess::insecure`]).

use crate::tls::{client_verifier, CertificateStore, FileStamp, TlsError, RELOAD_INTERVAL};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use subtle::ConstantTimeEq;
use tokio_rustls::rustls::server::danger::ClientCertVerifier;
use tokio_rustls::rustls::ServerConfig;
use wasmgate_runtime::{text_response, ResponseBody};

/// Paths answered without a token. Liveness and readiness say nothing about the app; the
/// dashboard's page, script and stylesheet are compiled into the binary and carry no data (a
/// browser cannot add a bearer token to a page load; the data it then fetches needs one).
const OPEN_PATHS: &[&str] = &[
    "/healthz",
    "/readyz",
    "/",
    "/index.html",
    "/dashboard.js",
    "/dashboard.css",
];

const REALM: &str = "Bearer realm=\"wasmgate-admin\"";

/// How the admin listener is protected, built with [`AdminAccess::with_token_file`],
/// [`AdminAccess::with_tls`] and [`AdminAccess::insecure`]. The default is no protection, on
/// loopback only.
///
/// The token file and the client CA file are read again when they change (checked every
/// [`RELOAD_INTERVAL`] by the admin listener) and on [`AdminAccess::reload`]; a file that
/// no longer reads or parses is logged and the previous credential stays in force, so a
/// half-written or mistaken file never locks operators out (nor lets everyone in).
#[derive(Default)]
pub struct AdminAccess {
    token: Option<Watched<AdminToken>>,
    tls: Option<LiveTls>,
    insecure: bool,
    /// Reloads take turns, so two triggers never interleave a credential's stamp and value.
    reloading: Mutex<()>,
}

impl std::fmt::Debug for AdminAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAccess")
            .field("token_file", &self.token.as_ref().map(|t| &t.path))
            .field("tls", &self.tls.as_ref().map(|t| &t.certificates))
            .field(
                "client_ca",
                &self
                    .tls
                    .as_ref()
                    .and_then(|t| t.client_ca.as_ref().map(|ca| &ca.path)),
            )
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// HTTPS for the admin listener.
#[derive(Debug)]
pub struct AdminTls {
    /// The admin listener's own certificate(s), reloaded when their files change.
    pub certificates: Arc<CertificateStore>,
    /// When set, clients must present a certificate signed by a CA in this PEM file.
    pub client_ca: Option<PathBuf>,
}

/// The TLS settings in service: the server config is rebuilt when the client CA changes
/// (the certificates reload inside their store on their own).
struct LiveTls {
    certificates: Arc<CertificateStore>,
    client_ca: Option<Watched<Arc<dyn ClientCertVerifier>>>,
    config: RwLock<Arc<ServerConfig>>,
}

/// A credential read from a file, with what the file looked like when it was read.
struct Watched<T> {
    path: PathBuf,
    read: fn(&Path) -> Result<T, AdminAccessError>,
    current: RwLock<(T, FileStamp)>,
}

impl<T: Clone> Watched<T> {
    fn load(
        path: PathBuf,
        read: fn(&Path) -> Result<T, AdminAccessError>,
    ) -> Result<Self, AdminAccessError> {
        let stamp = FileStamp::of(&path);
        let value = read(&path)?;
        Ok(Watched {
            path,
            read,
            current: RwLock::new((value, stamp)),
        })
    }

    fn get(&self) -> T {
        match self.current.read() {
            Ok(current) => current.0.clone(),
            Err(poisoned) => poisoned.into_inner().0.clone(),
        }
    }

    /// Reads the file again if it changed since the last read (or in any case when
    /// `force`). `Ok(true)` when a new value is in service; on error the old one stays,
    /// and the file is not retried until it changes again.
    fn refresh(&self, force: bool) -> Result<bool, AdminAccessError> {
        let stamp = FileStamp::of(&self.path);
        let mut current = match self.current.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !force && stamp == current.1 {
            return Ok(false);
        }
        current.1 = stamp;
        let value = (self.read)(&self.path)?;
        current.0 = value;
        Ok(true)
    }
}

/// The admin bearer token. Only its SHA-256 digest is kept, so comparing a presented token
/// takes the same time whatever its length or how much of it matches.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(redacted)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminAccessError {
    #[error("the admin token is empty")]
    EmptyToken,
    #[error(
        "the admin token contains characters an Authorization header cannot carry \
         (use visible ASCII without spaces, e.g. `openssl rand -hex 32`)"
    )]
    TokenCharacters,
    #[error("cannot read the admin token file {}: {source}", path.display())]
    ReadTokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the admin token file {} is empty", path.display())]
    EmptyTokenFile { path: PathBuf },
    #[error(
        "the admin token in {} contains characters an Authorization header cannot carry \
         (use visible ASCII without spaces, e.g. `openssl rand -hex 32`)",
        path.display()
    )]
    TokenFileCharacters { path: PathBuf },
    #[error(
        "refusing to serve the admin API on {addr}, a non-loopback address, without a bearer \
         token or client certificates: it exposes invocation records and control actions"
    )]
    Exposed { addr: SocketAddr },
    #[error("admin TLS: {0}")]
    Tls(#[from] TlsError),
}

impl AdminToken {
    /// A token as read from its file, without the line break around it.
    pub fn new(secret: &str) -> Result<AdminToken, AdminAccessError> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(AdminAccessError::EmptyToken);
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AdminAccessError::TokenCharacters);
        }
        Ok(AdminToken {
            digest: Sha256::digest(secret.as_bytes()).into(),
        })
    }

    /// The token in `path` (surrounding whitespace removed), refusing a missing or empty
    /// file. A file others can read is used with a warning rather than refused: Kubernetes
    /// mounts secrets 0644 unless told otherwise.
    pub fn read_secret(path: &Path) -> Result<String, AdminAccessError> {
        let secret =
            std::fs::read_to_string(path).map_err(|source| AdminAccessError::ReadTokenFile {
                path: path.to_path_buf(),
                source,
            })?;
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(AdminAccessError::EmptyTokenFile {
                path: path.to_path_buf(),
            });
        }
        warn_if_world_readable(path);
        Ok(secret.to_string())
    }

    /// The token in `path`, checked as [`AdminToken::new`] does.
    pub fn from_file(path: &Path) -> Result<AdminToken, AdminAccessError> {
        AdminToken::new(&AdminToken::read_secret(path)?).map_err(|_| {
            AdminAccessError::TokenFileCharacters {
                path: path.to_path_buf(),
            }
        })
    }

    fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest.ct_eq(&self.digest).into()
    }
}

#[cfg(unix)]
fn warn_if_world_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o004 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the admin token file is readable by every user; chmod 600 (or 640) it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_world_readable(_: &Path) {}

fn read_client_ca(path: &Path) -> Result<Arc<dyn ClientCertVerifier>, AdminAccessError> {
    Ok(client_verifier(path)?)
}

impl AdminAccess {
    /// Requests (other than the probes) must carry the bearer token in `path`.
    pub fn with_token_file(mut self, path: PathBuf) -> Result<AdminAccess, AdminAccessError> {
        self.token = Some(Watched::load(path, AdminToken::from_file)?);
        Ok(self)
    }

    /// Serve HTTPS, requiring client certificates when `tls.client_ca` is set.
    pub fn with_tls(mut self, tls: AdminTls) -> Result<AdminAccess, AdminAccessError> {
        let client_ca = match tls.client_ca {
            Some(path) => Some(Watched::load(path, read_client_ca)?),
            None => None,
        };
        let config = server_config(&tls.certificates, client_ca.as_ref())?;
        self.tls = Some(LiveTls {
            certificates: tls.certificates,
            client_ca,
            config: RwLock::new(config),
        });
        Ok(self)
    }

    /// Allow listening on a non-loopback address with neither token nor client certificates.
    pub fn insecure(mut self, insecure: bool) -> AdminAccess {
        self.insecure = insecure;
        self
    }

    /// Whether clients must prove who they are (token or client certificate).
    pub fn authenticates(&self) -> bool {
        self.token.is_some() || self.requires_client_certificates()
    }

    pub fn requires_client_certificates(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.client_ca.is_some())
    }

    /// Refuses an unprotected listener on anything but loopback (127.0.0.0/8, ::1), unless
    /// [`AdminAccess::insecure`]. The unspecified address (0.0.0.0, ::) is not loopback.
    pub fn check_address(&self, addr: SocketAddr) -> Result<(), AdminAccessError> {
        if self.authenticates() || self.insecure || addr.ip().to_canonical().is_loopback() {
            Ok(())
        } else {
            Err(AdminAccessError::Exposed { addr })
        }
    }

    /// The TLS config for the next handshake; `None` serves plain HTTP.
    pub(super) fn tls_config(&self) -> Option<Arc<ServerConfig>> {
        let tls = self.tls.as_ref()?;
        Some(match tls.config.read() {
            Ok(config) => config.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })
    }

    /// Reads the token file, the client CA and the admin certificates again, changed or not
    /// (SIGHUP, `POST /api/reload`). Says per credential what happened, as the log does.
    pub async fn reload(self: &Arc<Self>, trigger: &'static str) -> serde_json::Value {
        let access = self.clone();
        let outcomes = tokio::task::spawn_blocking(move || access.refresh(true)).await;
        let mut report = serde_json::Map::new();
        for (credential, outcome) in outcomes.unwrap_or_default() {
            log_outcome(trigger, credential, &outcome);
            let said = match outcome {
                Ok(_) => "reloaded".to_string(),
                Err(e) => format!("kept the previous one: {e}"),
            };
            report.insert(credential.replace(' ', "_"), said.into());
        }
        serde_json::Value::Object(report)
    }

    /// Checks every [`RELOAD_INTERVAL`] whether a credential file changed, until the
    /// returned task is aborted.
    pub(super) fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let access = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let access = access.clone();
                // Reading files is blocking work; keep it off the request threads.
                let outcomes = tokio::task::spawn_blocking(move || access.refresh(false)).await;
                for (credential, outcome) in outcomes.unwrap_or_default() {
                    if !matches!(outcome, Ok(false)) {
                        log_outcome("file change", credential, &outcome);
                    }
                }
            }
        })
    }

    /// Each credential and whether it was read again (`Ok(true)`), left alone, or kept
    /// because its file is broken.
    fn refresh(&self, force: bool) -> Vec<(&'static str, Result<bool, AdminAccessError>)> {
        let _turn = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let mut outcomes = Vec::new();
        if let Some(token) = &self.token {
            outcomes.push(("admin token", token.refresh(force)));
        }
        if let Some(tls) = &self.tls {
            if tls.certificates.reload_if_changed() {
                outcomes.push(("admin certificate", Ok(true)));
            }
            if let Some(ca) = &tls.client_ca {
                let refreshed = ca.refresh(force).and_then(|changed| {
                    if changed {
                        let config = server_config(&tls.certificates, Some(ca))?;
                        match tls.config.write() {
                            Ok(mut current) => *current = config,
                            Err(poisoned) => *poisoned.into_inner() = config,
                        }
                    }
                    Ok(changed)
                });
                outcomes.push(("admin client CA", refreshed));
            }
        }
        outcomes
    }

    /// The 401 to send instead of answering `request`, if it lacks the right token.
    pub(super) fn refusal<B>(
        &self,
        request: &http::Request<B>,
    ) -> Option<http::Response<ResponseBody>> {
        let token = self.token.as_ref()?.get();
        if OPEN_PATHS.contains(&request.uri().path()) {
            return None;
        }
        let presented = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| bearer(value.as_bytes()));
        match presented {
            Some(presented) if token.matches(presented) => None,
            // RFC 6750: no credentials gets the bare challenge, wrong ones say so.
            Some(_) => Some(unauthorized(
                &format!("{REALM}, error=\"invalid_token\""),
                "wrong admin token\n",
            )),
            None => Some(unauthorized(
                REALM,
                "the admin API needs `Authorization: Bearer <token>`\n",
            )),
        }
    }
}

fn server_config(
    certificates: &Arc<CertificateStore>,
    client_ca: Option<&Watched<Arc<dyn ClientCertVerifier>>>,
) -> Result<Arc<ServerConfig>, AdminAccessError> {
    Ok(match client_ca {
        Some(ca) => certificates.server_config_verifying_clients(ca.get())?,
        None => certificates.server_config()?,
    })
}

fn log_outcome(trigger: &str, credential: &str, outcome: &Result<bool, AdminAccessError>) {
    match outcome {
        Ok(_) => tracing::info!(trigger, credential, "admin credential reloaded"),
        Err(e) => tracing::error!(
            trigger,
            credential,
            error = %e,
            "admin credential file changed but cannot be used; keeping the previous one"
        ),
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme name case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn unauthorized(challenge: &str, body: &str) -> http::Response<ResponseBody> {
    let mut response = text_response(http::StatusCode::UNAUTHORIZED, body.to_string());
    if let Ok(value) = http::HeaderValue::from_str(challenge) {
        response
            .headers_mut()
            .insert(http::header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, authorization: Option<&str>) -> http::Request<()> {
        let mut builder = http::Request::get(path);
        if let Some(value) = authorization {
            builder = builder.header(http::header::AUTHORIZATION, value);
        }
        builder.body(()).unwrap()
    }

    /// Access guarded by `token`, written to a file in `dir`.
    fn with_token_in(dir: &Path, token: &str) -> AdminAccess {
        let file = dir.join("admin.token");
        std::fs::write(&file, token).unwrap();
        AdminAccess::default().with_token_file(file).unwrap()
    }

    fn with_token(token: &str) -> AdminAccess {
        with_token_in(tempfile::tempdir().unwrap().path(), token)
    }

    #[test]
    fn only_the_right_bearer_token_passes() {
        let access = with_token("s3cret-token\n");
        assert!(access
            .refusal(&request("/metrics", Some("Bearer s3cret-token")))
            .is_none());
        assert!(access
            .refusal(&request("/metrics", Some("bearer s3cret-token")))
            .is_none());
        for wrong in [
            None,
            Some("Bearer s3cret-toke"),
            Some("Bearer s3cret-token2"),
            Some("Basic s3cret-token"),
            Some("Bearer "),
            Some("s3cret-token"),
        ] {
            let refused = access.refusal(&request("/metrics", wrong)).unwrap();
            assert_eq!(
                refused.status(),
                http::StatusCode::UNAUTHORIZED,
                "{wrong:?}"
            );
            let challenge = refused.headers()[http::header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap();
            assert!(challenge.starts_with(REALM), "{challenge}");
        }
    }

    #[test]
    fn probes_stay_open_and_no_token_means_no_check() {
        let access = with_token("t");
        assert!(access.refusal(&request("/healthz", None)).is_none());
        assert!(access.refusal(&request("/readyz", None)).is_none());
        assert!(access.refusal(&request("/dashboard.js", None)).is_none());
        assert!(access.refusal(&request("/healthz/x", None)).is_some());
        assert!(access.refusal(&request("/api/routes", None)).is_some());
        assert!(AdminAccess::default()
            .refusal(&request("/metrics", None))
            .is_none());
    }

    #[test]
    fn tokens_must_fit_a_header() {
        assert!(matches!(
            AdminToken::new(" \n"),
            Err(AdminAccessError::EmptyToken)
        ));
        assert!(matches!(
            AdminToken::new("two words"),
            Err(AdminAccessError::TokenCharacters)
        ));
        assert!(format!("{:?}", AdminToken::new("abc").unwrap()).contains("redacted"));
    }

    #[test]
    fn unprotected_listeners_stay_on_loopback() {
        let open = AdminAccess::default();
        for ok in [
            "127.0.0.1:9464",
            "127.0.0.2:0",
            "[::1]:9464",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(open.check_address(ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for exposed in ["0.0.0.0:0", "[::]:9464", "10.0.0.5:9464"] {
            let err = open.check_address(exposed.parse().unwrap()).unwrap_err();
            assert!(err.to_string().contains(exposed), "{err}");
        }
        assert!(with_token("t")
            .check_address("0.0.0.0:0".parse().unwrap())
            .is_ok());
        let insecure = AdminAccess::default().insecure(true);
        assert!(insecure.check_address("0.0.0.0:0".parse().unwrap()).is_ok());
    }

    #[test]
    fn a_changed_token_file_replaces_the_token_and_a_broken_one_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let access = with_token_in(dir.path(), "first-token");
        let file = dir.path().join("admin.token");
        let passes = |token: &str| {
            access
                .refusal(&request("/metrics", Some(&format!("Bearer {token}"))))
                .is_none()
        };
        assert!(passes("first-token"));
        // Unchanged: nothing is read.
        assert!(matches!(access.refresh(false)[0].1, Ok(false)));

        std::fs::write(&file, "second-token-longer\n").unwrap();
        assert!(matches!(access.refresh(false)[0].1, Ok(true)));
        assert!(passes("second-token-longer") && !passes("first-token"));

        for broken in ["", "two words here"] {
            std::fs::write(&file, broken).unwrap();
            assert!(access.refresh(true)[0].1.is_err(), "{broken:?}");
            assert!(passes("second-token-longer"), "{broken:?}");
        }
        std::fs::remove_file(&file).unwrap();
        let gone = access.refresh(false);
        assert!(
            matches!(&gone[0].1, Err(AdminAccessError::ReadTokenFile { .. })),
            "{gone:?}"
        );
        assert!(passes("second-token-longer"));
    }
}
