//! Who may call a route, and from which web origins: the validated types.
//!
//! The split follows the manifest/runtime-config line. A route in the portable manifest names an
//! authentication *scheme* and says what it requires of a caller (audience, scopes, which
//! claims the guest sees); the runtime config defines the schemes, because only it holds
//! secrets: API key digests, HMAC secrets, JWKS files. CORS is a property of the route alone.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What a route requires of a caller (`[[route]] auth = ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAuth {
    /// The runtime config's scheme (`[auth.api_key.NAME]` or `[auth.jwt.NAME]`).
    pub scheme: String,
    /// Which kind of scheme the manifest asked for; `None` for the `auth = "NAME"` shorthand,
    /// which accepts either.
    pub kind: Option<AuthKind>,
    /// JWT only: accepted `aud` values, replacing the scheme's own list.
    pub audience: Option<Vec<String>>,
    /// JWT only: scopes the token must carry (all of them), from its `scope` or `scp` claim.
    pub scopes: Vec<String>,
    /// JWT only: claim name -> request header the guest receives it in (lower case).
    pub claims_to_headers: BTreeMap<String, String>,
    /// 1-based line of the `auth` value in the manifest, for startup errors.
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    ApiKey,
    Jwt,
}

impl fmt::Display for AuthKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthKind::ApiKey => f.write_str("api_key"),
            AuthKind::Jwt => f.write_str("jwt"),
        }
    }
}

/// A route's CORS policy (`[[route]] cors = { ... }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub allow_origins: AllowedOrigins,
    /// Upper-case method names a preflight may ask for.
    pub allow_methods: Vec<String>,
    /// Lower-case request header names a preflight may ask for.
    pub allow_headers: Vec<String>,
    /// Lower-case response header names scripts may read.
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    /// How long a browser may cache a preflight answer; `None` sends no `Access-Control-Max-Age`.
    pub max_age: Option<Duration>,
}

impl Cors {
    /// The CORS-safelisted methods, allowed when `allow_methods` is not given.
    pub const DEFAULT_METHODS: [&'static str; 3] = ["GET", "HEAD", "POST"];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `["*"]`: any origin (never with credentials).
    Any,
    /// Serialized origins (`scheme://host[:port]`), lower case, compared exactly.
    List(Vec<String>),
}

impl AllowedOrigins {
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(origins) => origins.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

/// The runtime config's `[auth]` section: schemes by name (unique across kinds).
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub schemes: BTreeMap<String, AuthScheme>,
}

#[derive(Debug, Clone)]
pub enum AuthScheme {
    ApiKey(ApiKeyScheme),
    Jwt(JwtScheme),
}

impl AuthScheme {
    pub fn kind(&self) -> AuthKind {
        match self {
            AuthScheme::ApiKey(_) => AuthKind::ApiKey,
            AuthScheme::Jwt(_) => AuthKind::Jwt,
        }
    }
}

/// `[auth.api_key.NAME]`: a set of keys, stored as SHA-256 digests so that the config file does
/// not hold anything a caller could present.
#[derive(Debug, Clone)]
pub struct ApiKeyScheme {
    /// Where the key is read from.
    pub header: ApiKeyHeader,
    /// Key name (who the caller is) and the SHA-256 of the key, in name order.
    pub keys: Vec<(String, [u8; 32])>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyHeader {
    /// `Authorization: Bearer <key>` (the default).
    AuthorizationBearer,
    /// The whole value of this header (lower case), e.g. `x-api-key`.
    Named(String),
}

/// `[auth.jwt.NAME]`: how bearer tokens are verified.
#[derive(Debug, Clone)]
pub struct JwtScheme {
    pub keys: JwtKeys,
    /// Accepted `iss` values; when set, a token without `iss` is refused.
    pub issuer: Option<Vec<String>>,
    /// Accepted `aud` values, unless a route gives its own; when set, `aud` is required.
    pub audience: Option<Vec<String>>,
    /// Tolerance for `exp` and `nbf` between clocks.
    pub clock_skew: Duration,
}

impl JwtScheme {
    pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);
    /// RFC 7518 3.2: an HS256 key must be at least as long as the hash output.
    pub const MIN_SECRET_BYTES: usize = 32;
}

#[derive(Debug, Clone)]
pub enum JwtKeys {
    /// HS256 with a shared secret (`secret` or `secret_env`).
    Secret(SecretBytes),
    /// Public keys (RS256, ES256...) from a JSON Web Key Set file, chosen by the token's `kid`.
    Jwks(PathBuf),
}

/// Key material that is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: impl Into<Vec<u8>>) -> SecretBytes {
        SecretBytes(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(..)")
    }
}
