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

use crate::tls::{CertificateStore, TlsError};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use subtle::ConstantTimeEq;
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

/// How the admin listener is protected. The default is no protection, on loopback only.
#[derive(Debug, Default)]
pub struct AdminAccess {
    /// Requests (other than the probes) must carry this bearer token.
    pub token: Option<AdminToken>,
    /// Serve HTTPS, optionally requiring client certificates.
    pub tls: Option<AdminTls>,
    /// Allow listening on a non-loopback address with neither token nor client certificates.
    pub insecure: bool,
}

/// HTTPS for the admin listener.
#[derive(Debug)]
pub struct AdminTls {
    /// The admin listener's own certificate(s), reloaded when their files change.
    pub certificates: Arc<CertificateStore>,
    /// When set, clients must present a certificate signed by a CA in this PEM file.
    pub client_ca: Option<PathBuf>,
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

    fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest.ct_eq(&self.digest).into()
    }
}

impl AdminAccess {
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

    /// The 401 to send instead of answering `request`, if it lacks the right token.
    pub(super) fn refusal<B>(
        &self,
        request: &http::Request<B>,
    ) -> Option<http::Response<ResponseBody>> {
        let token = self.token.as_ref()?;
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

    fn with_token(token: &str) -> AdminAccess {
        AdminAccess {
            token: Some(AdminToken::new(token).unwrap()),
            ..AdminAccess::default()
        }
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
        let insecure = AdminAccess {
            insecure: true,
            ..AdminAccess::default()
        };
        assert!(insecure.check_address("0.0.0.0:0".parse().unwrap()).is_ok());
    }
}
