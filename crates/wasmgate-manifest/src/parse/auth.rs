//! Parsing and checking route `auth` and `cors` values (manifest) and the `[auth]` section
//! (runtime config). Whether a route's scheme exists is checked at startup, when both files
//! are known (`wasmgate-server`'s `auth` module).

use crate::auth::{
    AllowedOrigins, ApiKeyHeader, ApiKeyScheme, AuthConfig, AuthKind, AuthScheme, Cors, JwtKeys,
    JwtScheme, RouteAuth, SecretBytes,
};
use crate::error::ManifestError;
use crate::location::position;
use crate::parse::Source;
use crate::units::parse_duration;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use toml::Spanned;

/// `auth = "NAME"` or `auth = { jwt = "NAME", ... }` / `auth = { api_key = "NAME" }`.
#[derive(Debug)]
pub enum RawRouteAuth {
    Scheme(String),
    Table(RawRouteAuthTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteAuthTable {
    jwt: Option<Spanned<String>>,
    api_key: Option<Spanned<String>>,
    audience: Option<Spanned<OneOrMany>>,
    scopes: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    claims_to_headers: BTreeMap<String, Spanned<String>>,
}

// Written by hand rather than `#[serde(untagged)]`: an untagged enum replaces the table's own
// error ("unknown field `audiense`") with "did not match any variant".
impl<'de> Deserialize<'de> for RawRouteAuth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AuthVisitor;
        impl<'de> Visitor<'de> for AuthVisitor {
            type Value = RawRouteAuth;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scheme name, or a table like { jwt = \"NAME\" }")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<RawRouteAuth, E> {
                Ok(RawRouteAuth::Scheme(value.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawRouteAuth, A::Error> {
                RawRouteAuthTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawRouteAuth::Table)
            }
        }
        deserializer.deserialize_any(AuthVisitor)
    }
}

/// A string or an array of strings (`audience = "api"` or `audience = ["api", "admin"]`).
#[derive(Debug, Clone)]
pub struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![value.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(OneOrMany(items))
            }
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    allow_origins: Spanned<Vec<Spanned<String>>>,
    allow_methods: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    allow_headers: Vec<Spanned<String>>,
    #[serde(default)]
    expose_headers: Vec<Spanned<String>>,
    allow_credentials: Option<Spanned<bool>>,
    max_age: Option<Spanned<String>>,
}

/// The runtime config's `[auth]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    #[serde(default)]
    api_key: BTreeMap<String, Spanned<RawApiKeyScheme>>,
    #[serde(default)]
    jwt: BTreeMap<String, Spanned<RawJwtScheme>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKeyScheme {
    header: Option<Spanned<String>>,
    keys: Spanned<BTreeMap<String, Spanned<RawApiKey>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApiKey {
    sha256: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwtScheme {
    secret: Option<Spanned<String>>,
    secret_env: Option<Spanned<String>>,
    jwks: Option<Spanned<String>>,
    issuer: Option<Spanned<OneOrMany>>,
    audience: Option<Spanned<OneOrMany>>,
    clock_skew: Option<Spanned<String>>,
}

/// Headers a claim may not be copied into: they frame the message or carry the client's own
/// credentials, so a claim there would change how the request is read, not what it says.
const RESERVED_HEADERS: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "authorization",
    "cookie",
];

impl Source<'_> {
    /// A route's `auth` value; `field` is the route's path (`route[2]`).
    pub(crate) fn route_auth(
        &self,
        raw: &Spanned<RawRouteAuth>,
        field: &str,
    ) -> Result<RouteAuth, ManifestError> {
        let field = format!("{field}.auth");
        let line = position(self.text, raw.span().start).line;
        let table = match raw.get_ref() {
            RawRouteAuth::Scheme(name) => {
                self.check_name(name, raw.span(), &field)?;
                return Ok(RouteAuth {
                    scheme: name.clone(),
                    kind: None,
                    audience: None,
                    scopes: Vec::new(),
                    claims_to_headers: BTreeMap::new(),
                    line,
                });
            }
            RawRouteAuth::Table(table) => table,
        };
        let (kind, scheme) = match (&table.jwt, &table.api_key) {
            (Some(name), None) => (AuthKind::Jwt, name),
            (None, Some(name)) => (AuthKind::ApiKey, name),
            (Some(_), Some(api_key)) => {
                return Err(self.error(
                    api_key.span(),
                    &format!("{field}.api_key"),
                    "name one scheme: jwt or api_key, not both",
                ))
            }
            (None, None) => {
                return Err(self.error(
                    raw.span(),
                    &field,
                    "name the scheme: { jwt = \"NAME\" } or { api_key = \"NAME\" }",
                ))
            }
        };
        self.check_name(scheme.get_ref(), scheme.span(), &format!("{field}.{kind}"))?;
        if kind == AuthKind::ApiKey {
            let jwt_only = [
                ("audience", table.audience.as_ref().map(Spanned::span)),
                ("scopes", table.scopes.as_ref().map(Spanned::span)),
                (
                    "claims_to_headers",
                    table.claims_to_headers.values().next().map(Spanned::span),
                ),
            ];
            for (key, span) in jwt_only {
                if let Some(span) = span {
                    return Err(self.error(
                        span,
                        &format!("{field}.{key}"),
                        format!("{key} applies to jwt schemes only"),
                    ));
                }
            }
        }
        let audience = match &table.audience {
            Some(audience) => Some(self.string_list(audience, &format!("{field}.audience"))?),
            None => None,
        };
        let mut scopes = Vec::new();
        for scope in table.scopes.iter().flat_map(|s| s.get_ref()) {
            let text = scope.get_ref();
            if text.is_empty() || text.contains(char::is_whitespace) {
                return Err(self.error(
                    scope.span(),
                    &format!("{field}.scopes"),
                    "a scope is one non-empty word (tokens list theirs space-separated)",
                ));
            }
            scopes.push(text.clone());
        }
        let mut claims_to_headers = BTreeMap::new();
        let mut headers_used = HashSet::new();
        for (claim, header) in &table.claims_to_headers {
            let header_field = format!("{field}.claims_to_headers.{claim}");
            if claim.is_empty() {
                return Err(self.error(header.span(), &header_field, "a claim name is needed"));
            }
            let name = self.header_name(header, &header_field)?;
            if RESERVED_HEADERS.contains(&name.as_str()) {
                return Err(self.error(
                    header.span(),
                    &header_field,
                    format!(
                        "{name} cannot carry a claim; choose a header of your own, like x-user-id"
                    ),
                ));
            }
            if !headers_used.insert(name.clone()) {
                return Err(self.error(
                    header.span(),
                    &header_field,
                    format!("header {name} already carries another claim"),
                ));
            }
            claims_to_headers.insert(claim.clone(), name);
        }
        Ok(RouteAuth {
            scheme: scheme.get_ref().clone(),
            kind: Some(kind),
            audience,
            scopes,
            claims_to_headers,
            line,
        })
    }

    /// A route's `cors` table; `field` is the route's path (`route[2]`).
    pub(crate) fn route_cors(&self, raw: &RawCors, field: &str) -> Result<Cors, ManifestError> {
        let field = format!("{field}.cors");
        let credentials = raw.allow_credentials.as_ref().is_some_and(|c| *c.get_ref());
        let origins = raw.allow_origins.get_ref();
        let origins_field = format!("{field}.allow_origins");
        if origins.is_empty() {
            return Err(self.error(
                raw.allow_origins.span(),
                &origins_field,
                "list the origins allowed, like [\"https://app.example.com\"], or [\"*\"]",
            ));
        }
        let allow_origins = if origins.iter().any(|o| o.get_ref() == "*") {
            if origins.len() > 1 {
                return Err(self.error(
                    raw.allow_origins.span(),
                    &origins_field,
                    "\"*\" allows every origin; list no others with it",
                ));
            }
            if let Some(flag) = raw.allow_credentials.as_ref().filter(|_| credentials) {
                return Err(self.error(
                    flag.span(),
                    &format!("{field}.allow_credentials"),
                    "browsers refuse credentials with allow_origins = [\"*\"]; list the origins",
                ));
            }
            AllowedOrigins::Any
        } else {
            let mut list = Vec::with_capacity(origins.len());
            for origin in origins {
                list.push(self.origin(origin, &origins_field)?);
            }
            AllowedOrigins::List(list)
        };
        let allow_methods = match &raw.allow_methods {
            Some(methods) => {
                let mut list = Vec::with_capacity(methods.len());
                for method in methods {
                    let text = method.get_ref();
                    if !is_token(text) {
                        return Err(self.error(
                            method.span(),
                            &format!("{field}.allow_methods"),
                            "a method is a single word like \"PUT\"",
                        ));
                    }
                    list.push(text.to_ascii_uppercase());
                }
                list
            }
            None => Cors::DEFAULT_METHODS
                .iter()
                .map(|m| m.to_string())
                .collect(),
        };
        let mut allow_headers = Vec::with_capacity(raw.allow_headers.len());
        for header in &raw.allow_headers {
            allow_headers.push(self.header_name(header, &format!("{field}.allow_headers"))?);
        }
        let mut expose_headers = Vec::with_capacity(raw.expose_headers.len());
        for header in &raw.expose_headers {
            expose_headers.push(self.header_name(header, &format!("{field}.expose_headers"))?);
        }
        let max_age = match &raw.max_age {
            Some(age) => Some(
                parse_duration(age.get_ref())
                    .map_err(|m| self.error(age.span(), &format!("{field}.max_age"), m))?,
            ),
            None => None,
        };
        Ok(Cors {
            allow_origins,
            allow_methods,
            allow_headers,
            expose_headers,
            allow_credentials: credentials,
            max_age,
        })
    }

    /// The runtime config's `[auth]` section. `base` resolves relative JWKS paths; `env` reads
    /// `secret_env` variables.
    pub(crate) fn auth_config(
        &self,
        raw: &RawAuth,
        base: &Path,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<AuthConfig, ManifestError> {
        let mut schemes = BTreeMap::new();
        for (name, scheme) in &raw.api_key {
            let field = format!("auth.api_key.{name}");
            self.check_name(name, scheme.span(), &field)?;
            schemes.insert(
                name.clone(),
                AuthScheme::ApiKey(self.api_key_scheme(scheme.get_ref(), &field)?),
            );
        }
        for (name, scheme) in &raw.jwt {
            let field = format!("auth.jwt.{name}");
            self.check_name(name, scheme.span(), &field)?;
            if schemes.contains_key(name) {
                return Err(self.error(
                    scheme.span(),
                    &field,
                    format!(
                        "auth.api_key.{name} has this name already; routes name schemes, so \
                         each name is used once"
                    ),
                ));
            }
            let jwt = self.jwt_scheme(scheme, &field, base, env)?;
            schemes.insert(name.clone(), AuthScheme::Jwt(jwt));
        }
        Ok(AuthConfig { schemes })
    }

    fn api_key_scheme(
        &self,
        raw: &RawApiKeyScheme,
        field: &str,
    ) -> Result<ApiKeyScheme, ManifestError> {
        let header = match &raw.header {
            None => ApiKeyHeader::AuthorizationBearer,
            Some(header) => {
                let name = self.header_name(header, &format!("{field}.header"))?;
                if name == "authorization" {
                    ApiKeyHeader::AuthorizationBearer
                } else {
                    ApiKeyHeader::Named(name)
                }
            }
        };
        if raw.keys.get_ref().is_empty() {
            return Err(self.error(
                raw.keys.span(),
                &format!("{field}.keys"),
                "add at least one key: NAME = { sha256 = \"...\" }",
            ));
        }
        let mut keys = Vec::with_capacity(raw.keys.get_ref().len());
        for (key_name, key) in raw.keys.get_ref() {
            let digest_field = format!("{field}.keys.{key_name}.sha256");
            let digest = &key.get_ref().sha256;
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(digest.get_ref().trim(), &mut bytes).map_err(|_| {
                self.error(
                    digest.span(),
                    &digest_field,
                    "expected the key's SHA-256 as 64 hex digits (e.g. `printf %s \"$KEY\" | sha256sum`), never the key itself",
                )
            })?;
            keys.push((key_name.clone(), bytes));
        }
        Ok(ApiKeyScheme { header, keys })
    }

    fn jwt_scheme(
        &self,
        raw: &Spanned<RawJwtScheme>,
        field: &str,
        base: &Path,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<JwtScheme, ManifestError> {
        let scheme = raw.get_ref();
        let keys = match (&scheme.secret, &scheme.secret_env, &scheme.jwks) {
            (Some(secret), None, None) => {
                self.hmac_secret(secret.get_ref(), secret.span(), &format!("{field}.secret"))?
            }
            (None, Some(name), None) => {
                let f = format!("{field}.secret_env");
                let value = env(name.get_ref()).ok_or_else(|| {
                    self.error(
                        name.span(),
                        &f,
                        format!("environment variable {} is not set", name.get_ref()),
                    )
                })?;
                self.hmac_secret(&value, name.span(), &f)?
            }
            (None, None, Some(path)) => JwtKeys::Jwks(self.check_path(
                base.join(path.get_ref()),
                path.span(),
                &format!("{field}.jwks"),
                false,
            )?),
            (None, None, None) => return Err(self.error(
                raw.span(),
                field,
                "give the keys: jwks = \"FILE\" (RS256, ES256...) or secret_env = \"VAR\" (HS256)",
            )),
            _ => {
                let extra = [&scheme.secret, &scheme.secret_env, &scheme.jwks]
                    .into_iter()
                    .flatten()
                    .map(Spanned::span)
                    .max_by_key(|span| span.start)
                    .unwrap_or_else(|| raw.span());
                return Err(self.error(extra, field, "give one of jwks, secret_env and secret"));
            }
        };
        let issuer = match &scheme.issuer {
            Some(list) => Some(self.string_list(list, &format!("{field}.issuer"))?),
            None => None,
        };
        let audience = match &scheme.audience {
            Some(list) => Some(self.string_list(list, &format!("{field}.audience"))?),
            None => None,
        };
        let clock_skew = match &scheme.clock_skew {
            Some(skew) => parse_duration(skew.get_ref())
                .map_err(|m| self.error(skew.span(), &format!("{field}.clock_skew"), m))?,
            None => JwtScheme::DEFAULT_CLOCK_SKEW,
        };
        Ok(JwtScheme {
            keys,
            issuer,
            audience,
            clock_skew,
        })
    }

    fn hmac_secret(
        &self,
        secret: &str,
        span: std::ops::Range<usize>,
        field: &str,
    ) -> Result<JwtKeys, ManifestError> {
        if secret.len() < JwtScheme::MIN_SECRET_BYTES {
            return Err(self.error(
                span,
                field,
                format!(
                    "an HS256 secret needs at least {} bytes (RFC 7518 3.2); this one has {}",
                    JwtScheme::MIN_SECRET_BYTES,
                    secret.len()
                ),
            ));
        }
        Ok(JwtKeys::Secret(SecretBytes::new(secret.as_bytes())))
    }

    fn string_list(
        &self,
        raw: &Spanned<OneOrMany>,
        field: &str,
    ) -> Result<Vec<String>, ManifestError> {
        let list = &raw.get_ref().0;
        if list.is_empty() || list.iter().any(String::is_empty) {
            return Err(self.error(raw.span(), field, "expected non-empty strings"));
        }
        Ok(list.clone())
    }

    /// A header name, lower-cased.
    fn header_name(&self, raw: &Spanned<String>, field: &str) -> Result<String, ManifestError> {
        let text = raw.get_ref();
        if !is_token(text) {
            return Err(self.error(raw.span(), field, format!("{text:?} is not a header name")));
        }
        Ok(text.to_ascii_lowercase())
    }

    /// A serialized origin as browsers send it: `scheme://host[:port]`, nothing after.
    fn origin(&self, raw: &Spanned<String>, field: &str) -> Result<String, ManifestError> {
        let text = raw.get_ref();
        let valid = text.split_once("://").is_some_and(|(scheme, authority)| {
            let host_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.');
            let (host, port) = match authority.rsplit_once(':') {
                Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                    (host, Some(port))
                }
                _ => (authority, None),
            };
            let host_ok = if let Some(v6) = host.strip_prefix('[') {
                v6.strip_suffix(']').is_some_and(|a| {
                    !a.is_empty() && a.chars().all(|c| c.is_ascii_hexdigit() || c == ':')
                })
            } else {
                !host.is_empty() && host.chars().all(host_chars)
            };
            let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                && host_ok
                && port_ok
        });
        if !valid {
            return Err(self.error(
                raw.span(),
                field,
                format!(
                    "{text:?} is not an origin; write scheme://host[:port] with no path, like \"https://app.example.com\""
                ),
            ));
        }
        Ok(text.to_ascii_lowercase())
    }
}

/// RFC 9110 token: what method and header names are made of.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use crate::auth::{AllowedOrigins, ApiKeyHeader, AuthKind, AuthScheme, JwtKeys};
    use crate::{Manifest, ManifestError, RuntimeConfig};
    use std::time::Duration;

    fn manifest(route_extra: &str) -> Result<Manifest, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.wasm"), b"").unwrap();
        let text = format!(
            "[app]\nname = \"t\"\n[[route]]\npath = \"/...\"\ncomponent = \"c\"\n{route_extra}\n\
             [component.c]\nsource = \"app.wasm\"\n"
        );
        Manifest::parse(&text, &dir.path().join("wasmgate.toml"))
    }

    fn runtime(text: &str) -> Result<RuntimeConfig, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keys.json"), b"{\"keys\":[]}").unwrap();
        RuntimeConfig::parse(text, &dir.path().join("runtime.toml"), |name| {
            (name == "JWT_SECRET").then(|| "0123456789abcdef0123456789abcdef".to_string())
        })
    }

    #[test]
    fn shorthand_names_a_scheme_of_either_kind() {
        let m = manifest("auth = \"partners\"").unwrap();
        let auth = m.routes[0].auth.as_ref().unwrap();
        assert_eq!(auth.scheme, "partners");
        assert_eq!(auth.kind, None);
        assert_eq!(auth.line, 6);
    }

    #[test]
    fn jwt_table_with_audience_scopes_and_claim_headers() {
        let m = manifest(
            "auth = { jwt = \"main\", audience = \"api\", scopes = [\"read\"], \
             claims_to_headers = { sub = \"X-User-Id\" } }",
        )
        .unwrap();
        let auth = m.routes[0].auth.as_ref().unwrap();
        assert_eq!(auth.kind, Some(AuthKind::Jwt));
        assert_eq!(auth.audience.as_deref(), Some(&["api".to_string()][..]));
        assert_eq!(auth.scopes, ["read"]);
        assert_eq!(auth.claims_to_headers["sub"], "x-user-id");
    }

    #[test]
    fn route_auth_errors_name_the_field() {
        for (extra, field) in [
            (
                "auth = { api_key = \"k\", audience = \"x\" }",
                "route[0].auth.audience",
            ),
            (
                "auth = { jwt = \"a\", api_key = \"b\" }",
                "route[0].auth.api_key",
            ),
            ("auth = { audience = \"x\" }", "route[0].auth"),
            (
                "auth = { jwt = \"a\", audiense = \"x\" }",
                "route[0].auth.audiense",
            ),
            ("auth = \"bad name\"", "route[0].auth"),
            (
                "auth = { jwt = \"a\", claims_to_headers = { sub = \"host\" } }",
                "route[0].auth.claims_to_headers.sub",
            ),
            (
                "auth = { jwt = \"a\", claims_to_headers = { sub = \"x-a\", email = \"X-A\" } }",
                "route[0].auth.claims_to_headers.sub",
            ),
            (
                "auth = { jwt = \"a\", scopes = [\"a b\"] }",
                "route[0].auth.scopes",
            ),
        ] {
            let err = manifest(extra).unwrap_err();
            assert_eq!(err.field(), Some(field), "{extra}: {err}");
            assert_eq!(err.line(), Some(6), "{extra}: {err}");
        }
    }

    #[test]
    fn unknown_key_in_auth_table_is_reported_as_such() {
        let err = manifest("auth = { jwt = \"a\", audiense = \"x\" }").unwrap_err();
        assert!(err.to_string().contains("audiense"), "{err}");
    }

    #[test]
    fn cors_defaults_and_normalisation() {
        let m = manifest(
            "cors = { allow_origins = [\"https://App.example.com\", \"http://localhost:3000\"], \
             allow_headers = [\"Content-Type\"], max_age = \"10m\" }",
        )
        .unwrap();
        let cors = m.routes[0].cors.as_ref().unwrap();
        assert_eq!(
            cors.allow_origins,
            AllowedOrigins::List(vec![
                "https://app.example.com".into(),
                "http://localhost:3000".into()
            ])
        );
        assert_eq!(cors.allow_methods, ["GET", "HEAD", "POST"]);
        assert_eq!(cors.allow_headers, ["content-type"]);
        assert_eq!(cors.max_age, Some(Duration::from_secs(600)));
        assert!(!cors.allow_credentials);
    }

    #[test]
    fn cors_errors_name_the_field() {
        for (extra, field) in [
            (
                "cors = { allow_origins = [] }",
                "route[0].cors.allow_origins",
            ),
            (
                "cors = { allow_origins = [\"https://a.example/\"] }",
                "route[0].cors.allow_origins",
            ),
            (
                "cors = { allow_origins = [\"a.example\"] }",
                "route[0].cors.allow_origins",
            ),
            (
                "cors = { allow_origins = [\"*\", \"https://a.example\"] }",
                "route[0].cors.allow_origins",
            ),
            (
                "cors = { allow_origins = [\"*\"], allow_credentials = true }",
                "route[0].cors.allow_credentials",
            ),
            (
                "cors = { allow_origins = [\"*\"], allow_methods = [\"GE T\"] }",
                "route[0].cors.allow_methods",
            ),
            (
                "cors = { allow_origins = [\"*\"], max_age = \"forever\" }",
                "route[0].cors.max_age",
            ),
        ] {
            let err = manifest(extra).unwrap_err();
            assert_eq!(err.field(), Some(field), "{extra}: {err}");
        }
    }

    #[test]
    fn runtime_schemes() {
        let config = runtime(
            "[auth.api_key.partners]\nheader = \"X-API-Key\"\n\
             keys.acme = { sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\" }\n\
             [auth.jwt.main]\nsecret_env = \"JWT_SECRET\"\nissuer = \"https://issuer\"\nclock_skew = \"5s\"\n\
             [auth.jwt.idp]\njwks = \"keys.json\"\naudience = [\"a\", \"b\"]\n",
        )
        .unwrap();
        let AuthScheme::ApiKey(partners) = &config.auth.schemes["partners"] else {
            panic!()
        };
        assert_eq!(partners.header, ApiKeyHeader::Named("x-api-key".into()));
        assert_eq!(partners.keys[0].0, "acme");
        assert_eq!(partners.keys[0].1[0], 0x9f);
        let AuthScheme::Jwt(main) = &config.auth.schemes["main"] else {
            panic!()
        };
        assert!(matches!(main.keys, JwtKeys::Secret(_)));
        assert!(!format!("{main:?}").contains("0123456789abcdef"));
        assert_eq!(main.clock_skew, Duration::from_secs(5));
        assert_eq!(
            main.issuer.as_deref(),
            Some(&["https://issuer".to_string()][..])
        );
        let AuthScheme::Jwt(idp) = &config.auth.schemes["idp"] else {
            panic!()
        };
        assert!(matches!(&idp.keys, JwtKeys::Jwks(p) if p.ends_with("keys.json")));
        assert_eq!(idp.clock_skew, Duration::from_secs(60));
    }

    #[test]
    fn runtime_errors_name_the_field() {
        let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        for (text, field) in [
            (
                "[auth.api_key.k]\nkeys.a = { sha256 = \"secret\" }",
                "auth.api_key.k.keys.a.sha256",
            ),
            ("[auth.api_key.k]\nkeys = {}", "auth.api_key.k.keys"),
            ("[auth.jwt.j]\nsecret = \"short\"", "auth.jwt.j.secret"),
            (
                "[auth.jwt.j]\nsecret_env = \"NOPE\"",
                "auth.jwt.j.secret_env",
            ),
            ("[auth.jwt.j]\njwks = \"missing.json\"", "auth.jwt.j.jwks"),
            ("[auth.jwt.j]\n", "auth.jwt.j"),
            (
                "[auth.jwt.j]\njwks = \"keys.json\"\nsecret_env = \"JWT_SECRET\"",
                "auth.jwt.j",
            ),
            (
                "[auth.jwt.j]\njwks = \"keys.json\"\nclock_skew = \"x\"",
                "auth.jwt.j.clock_skew",
            ),
            (
                "[auth.jwt.j]\njwks = \"keys.json\"\nissuer = []",
                "auth.jwt.j.issuer",
            ),
            ("[auth.oauth.x]\n", "auth.oauth"),
        ] {
            let err = runtime(text).unwrap_err();
            assert_eq!(err.field(), Some(field), "{text}: {err}");
        }
        let same_name = format!(
            "[auth.api_key.x]\nkeys.a = {{ sha256 = \"{digest}\" }}\n[auth.jwt.x]\njwks = \"keys.json\""
        );
        let err = runtime(&same_name).unwrap_err();
        assert_eq!(err.field(), Some("auth.jwt.x"), "{err}");
    }
}
