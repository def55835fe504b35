//! JWT bearer tokens: signature, `exp`/`nbf` (with clock skew), `iss`, then the route's own
//! requirements (`aud`, scopes), and the claims the guest is given as headers.
//!
//! The algorithm a token may use comes from the key that verifies it, never from the token:
//! an HS256 secret accepts HS256 only, and each JWKS key accepts the one algorithm its `alg`
//! (or its key type) names. So `alg: none` and an HS256 token "signed" with an RSA public key
//! are refused before any signature check. Keys named in the token itself (`jwk`, `jku`,
//! `x5u`) are never used.

use super::{bearer_token, Denial};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use wasmgate_manifest::{JwtKeys, JwtScheme, RouteAuth};

/// One scheme's keys and token rules, loaded at startup.
pub(crate) struct JwtVerifier {
    keys: Vec<VerifyingKey>,
    issuer: Option<Vec<String>>,
    audience: Option<Vec<String>>,
    leeway: u64,
}

struct VerifyingKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// What one route asks of a token beyond the scheme's rules.
pub(crate) struct RouteRules {
    /// `None`: no audience check.
    audience: Option<Vec<String>>,
    scopes: Vec<String>,
    claims_to_headers: Vec<(String, http::HeaderName)>,
}

impl RouteRules {
    pub(crate) fn new(route: &RouteAuth, verifier: &JwtVerifier) -> Result<RouteRules, String> {
        let mut claims_to_headers = Vec::with_capacity(route.claims_to_headers.len());
        for (claim, header) in &route.claims_to_headers {
            let name = http::HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| format!("{header:?} is not a header name"))?;
            claims_to_headers.push((claim.clone(), name));
        }
        Ok(RouteRules {
            audience: route.audience.clone().or_else(|| verifier.audience.clone()),
            scopes: route.scopes.clone(),
            claims_to_headers,
        })
    }

    /// Removes every header a claim will be put in, whatever the token says: the guest must
    /// be able to trust that these came from a verified token. For WAGI guests, `x_user_id`
    /// and `x-user-id` are the same CGI variable, so both spellings go.
    pub(crate) fn strip_claim_headers(&self, headers: &mut http::HeaderMap) {
        if self.claims_to_headers.is_empty() {
            return;
        }
        let forged: Vec<http::HeaderName> = headers
            .keys()
            .filter(|name| {
                self.claims_to_headers.iter().any(|(_, target)| {
                    name.as_str().replace('_', "-") == target.as_str().replace('_', "-")
                })
            })
            .cloned()
            .collect();
        for name in forged {
            headers.remove(name);
        }
    }
}

impl JwtVerifier {
    pub(crate) fn load(scheme: &JwtScheme) -> Result<JwtVerifier, String> {
        let keys = match &scheme.keys {
            JwtKeys::Secret(secret) => vec![VerifyingKey {
                kid: None,
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.expose()),
            }],
            JwtKeys::Jwks(path) => load_jwks(path)?,
        };
        Ok(JwtVerifier {
            keys,
            issuer: scheme.issuer.clone(),
            audience: scheme.audience.clone(),
            leeway: scheme.clock_skew.as_secs(),
        })
    }

    /// Verifies the request's bearer token against this scheme and `rules`, then replaces the
    /// claim headers with the token's claims. Returns the token's subject (`sub`), if any.
    pub(crate) fn admit(
        &self,
        rules: &RouteRules,
        headers: &mut http::HeaderMap,
    ) -> Result<Option<String>, Denial> {
        rules.strip_claim_headers(headers);
        let token = bearer_token(headers)?;
        let claims = self.verify(&token)?;
        check_audience(&claims, rules.audience.as_deref())?;
        check_scopes(&claims, &rules.scopes)?;
        for (claim, header) in &rules.claims_to_headers {
            if let Some(value) = claims.get(claim).and_then(header_value) {
                headers.insert(header.clone(), value);
            }
        }
        Ok(claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    fn verify(&self, token: &str) -> Result<Map<String, Value>, Denial> {
        // The header is read only to choose a key; it is not trusted for anything else.
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            Denial::invalid_token(
                "malformed token or unsupported algorithm (\"none\" is never accepted)",
            )
        })?;
        let key = match &header.kid {
            // A lone key without a kid (an HS256 secret, a one-key JWKS) verifies every token:
            // issuers often set a kid the operator never copied.
            _ if self.keys.len() == 1 && self.keys[0].kid.is_none() => &self.keys[0],
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid.as_str()))
                .ok_or_else(|| Denial::invalid_token("unknown key id (kid)"))?,
            None => return Err(Denial::invalid_token("token has no key id (kid)")),
        };
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = self.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // Audience mismatch is a 403 (the token is genuine but not for this route), so it is
        // checked after the signature, by `check_audience`.
        validation.validate_aud = false;
        let mut required = vec!["exp"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(issuer);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| Denial::invalid_token(describe(e.kind())))?;
        Ok(data.claims)
    }
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "token expired".into(),
        ErrorKind::ImmatureSignature => "token not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "token issuer not accepted".into(),
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidAlgorithm => "algorithm not accepted for this key".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("token has no {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("malformed {claim} claim"),
        _ => "invalid token".into(),
    }
}

fn check_audience(claims: &Map<String, Value>, accepted: Option<&[String]>) -> Result<(), Denial> {
    let Some(accepted) = accepted else {
        return Ok(());
    };
    let matches = |aud: &Value| {
        aud.as_str()
            .is_some_and(|a| accepted.iter().any(|x| x == a))
    };
    let ok = match claims.get("aud") {
        Some(Value::Array(list)) => list.iter().any(matches),
        Some(single) => matches(single),
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Denial::forbidden(
            None,
            "token audience (aud) not accepted by this route",
        ))
    }
}

/// Scopes come from `scope` (space-separated, RFC 8693/9068) or `scp` (a list or a string).
fn check_scopes(claims: &Map<String, Value>, required: &[String]) -> Result<(), Denial> {
    if required.is_empty() {
        return Ok(());
    }
    let mut granted: HashSet<&str> = HashSet::new();
    for claim in ["scope", "scp"] {
        match claims.get(claim) {
            Some(Value::String(text)) => granted.extend(text.split_whitespace()),
            Some(Value::Array(list)) => granted.extend(list.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    if required.iter().all(|s| granted.contains(s.as_str())) {
        return Ok(());
    }
    let mut denial = Denial::forbidden(Some("insufficient_scope"), "token lacks a required scope");
    denial.scope = Some(required.join(" "));
    Err(denial)
}

/// A claim as header text: strings as they are, numbers and booleans written out, lists of
/// scalars joined with commas, objects as JSON. Values a header cannot hold are left out.
fn header_value(value: &Value) -> Option<http::HeaderValue> {
    let text = match value {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    http::HeaderValue::from_str(&text).ok()
}

/// Reads a JSON Web Key Set. Keys for encryption are skipped; a signing key of a type or
/// algorithm Wasmgate cannot verify is an error rather than a key silently ignored.
fn load_jwks(path: &Path) -> Result<Vec<VerifyingKey>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<Value>,
    }
    let set: RawSet = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a JSON Web Key Set ({e})", path.display()))?;
    let mut keys = Vec::with_capacity(set.keys.len());
    let mut kids = HashSet::new();
    for (index, raw) in set.keys.into_iter().enumerate() {
        let at = || format!("{}: keys[{index}]", path.display());
        let jwk: Jwk = serde_json::from_value(raw).map_err(|e| format!("{}: {e}", at()))?;
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let kid = jwk.common.key_id.clone();
        if let Some(kid) = &kid {
            if !kids.insert(kid.clone()) {
                return Err(format!("{}: kid {kid:?} appears twice", at()));
            }
        }
        let algorithm = key_algorithm(&jwk).map_err(|m| format!("{}: {m}", at()))?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("{}: {e}", at()))?;
        keys.push(VerifyingKey {
            kid,
            algorithm,
            key,
        });
    }
    if keys.is_empty() {
        return Err(format!("{}: no signing keys", path.display()));
    }
    if keys.len() > 1 && keys.iter().any(|k| k.kid.is_none()) {
        return Err(format!(
            "{}: with several keys, each needs a kid so tokens can name theirs",
            path.display()
        ));
    }
    Ok(keys)
}

/// The one algorithm a JWKS key verifies: its `alg` if given (checked against the key type),
/// otherwise the usual one for its type and curve.
fn key_algorithm(jwk: &Jwk) -> Result<Algorithm, String> {
    let declared = jwk.common.key_algorithm;
    let by_type: BTreeMap<&str, Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => BTreeMap::from([
            ("RS256", Algorithm::RS256),
            ("RS384", Algorithm::RS384),
            ("RS512", Algorithm::RS512),
            ("PS256", Algorithm::PS256),
            ("PS384", Algorithm::PS384),
            ("PS512", Algorithm::PS512),
        ]),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => BTreeMap::from([("ES256", Algorithm::ES256)]),
            EllipticCurve::P384 => BTreeMap::from([("ES384", Algorithm::ES384)]),
            ref other => return Err(format!("unsupported curve {other:?}")),
        },
        AlgorithmParameters::OctetKey(_) => {
            return Err(
                "symmetric (kty \"oct\") keys do not belong in a JWKS file; use secret_env".into(),
            )
        }
        _ => return Err("unsupported key type (use RSA or EC P-256/P-384)".into()),
    };
    let default = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        _ => *by_type.values().next().ok_or("no algorithm")?,
    };
    let Some(declared) = declared else {
        return Ok(default);
    };
    let name = match declared {
        KeyAlgorithm::RS256 => "RS256",
        KeyAlgorithm::RS384 => "RS384",
        KeyAlgorithm::RS512 => "RS512",
        KeyAlgorithm::PS256 => "PS256",
        KeyAlgorithm::PS384 => "PS384",
        KeyAlgorithm::PS512 => "PS512",
        KeyAlgorithm::ES256 => "ES256",
        KeyAlgorithm::ES384 => "ES384",
        _ => "",
    };
    by_type
        .get(name)
        .copied()
        .ok_or_else(|| format!("alg {declared:?} does not fit this key type"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    use wasmgate_manifest::SecretBytes;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn verifier(issuer: Option<&str>) -> JwtVerifier {
        JwtVerifier::load(&JwtScheme {
            keys: JwtKeys::Secret(SecretBytes::new(SECRET)),
            issuer: issuer.map(|i| vec![i.to_string()]),
            audience: Some(vec!["api".into()]),
            clock_skew: Duration::from_secs(60),
        })
        .unwrap()
    }

    fn rules(
        v: &JwtVerifier,
        audience: Option<&[&str]>,
        scopes: &[&str],
        claims_to_headers: &[(&str, &str)],
    ) -> RouteRules {
        let route = RouteAuth {
            scheme: "main".into(),
            kind: Some(wasmgate_manifest::AuthKind::Jwt),
            audience: audience.map(|a| a.iter().map(|s| s.to_string()).collect()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            claims_to_headers: claims_to_headers
                .iter()
                .map(|(c, h)| (c.to_string(), h.to_string()))
                .collect(),
            line: 1,
        };
        RouteRules::new(&route, v).unwrap()
    }

    fn token(claims: Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    fn admit(v: &JwtVerifier, rules: &RouteRules, token: &str) -> Result<http::HeaderMap, Denial> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers.insert("x-user-id", http::HeaderValue::from_static("forged"));
        headers.insert("x_user_id", http::HeaderValue::from_static("forged"));
        v.admit(rules, &mut headers).map(|_| headers)
    }

    #[test]
    fn valid_token_sets_claim_headers_and_drops_forged_ones() {
        let v = verifier(None);
        let r = rules(&v, None, &[], &[("sub", "x-user-id"), ("roles", "x-roles")]);
        let t =
            token(json!({"sub": "alice", "aud": "api", "exp": now() + 60, "roles": ["a", "b"]}));
        let headers = admit(&v, &r, &t).unwrap();
        assert_eq!(headers["x-user-id"], "alice");
        assert_eq!(headers["x-roles"], "a,b");
        assert!(headers.get("x_user_id").is_none());
    }

    #[test]
    fn missing_claim_leaves_the_header_out() {
        let v = verifier(None);
        let r = rules(&v, None, &[], &[("email", "x-user-id")]);
        let t = token(json!({"aud": "api", "exp": now() + 60}));
        let headers = admit(&v, &r, &t).unwrap();
        assert!(headers.get("x-user-id").is_none());
    }

    #[test]
    fn time_and_issuer_failures_are_401_invalid_token() {
        let v = verifier(Some("https://issuer"));
        let r = rules(&v, None, &[], &[]);
        for (claims, needle) in [
            (
                json!({"aud": "api", "iss": "https://issuer", "exp": now() - 120}),
                "expired",
            ),
            (
                json!({"aud": "api", "iss": "https://issuer", "exp": now() + 600, "nbf": now() + 300}),
                "not valid yet",
            ),
            (
                json!({"aud": "api", "iss": "https://other", "exp": now() + 60}),
                "issuer",
            ),
            (json!({"aud": "api", "exp": now() + 60}), "iss"),
            (json!({"aud": "api", "iss": "https://issuer"}), "exp"),
            (
                json!({"aud": "api", "iss": "https://issuer", "exp": now() + 600, "nbf": "99999999999"}),
                "nbf",
            ),
        ] {
            let denial = admit(&v, &r, &token(claims.clone())).unwrap_err();
            assert_eq!(denial.status, http::StatusCode::UNAUTHORIZED, "{claims}");
            assert_eq!(denial.error, Some("invalid_token"), "{claims}");
            assert!(
                denial.description.contains(needle),
                "{claims}: {}",
                denial.description
            );
        }
    }

    #[test]
    fn clock_skew_tolerates_a_recently_expired_token() {
        let v = verifier(None);
        let r = rules(&v, None, &[], &[]);
        assert!(admit(&v, &r, &token(json!({"aud": "api", "exp": now() - 30}))).is_ok());
    }

    #[test]
    fn audience_and_scopes_are_403() {
        let v = verifier(None);
        let r = rules(&v, Some(&["billing"]), &["read", "write"], &[]);
        let wrong_aud = token(json!({"aud": "api", "exp": now() + 60, "scope": "read write"}));
        let denial = admit(&v, &r, &wrong_aud).unwrap_err();
        assert_eq!(denial.status, http::StatusCode::FORBIDDEN);
        let few_scopes =
            token(json!({"aud": ["x", "billing"], "exp": now() + 60, "scp": ["read"]}));
        let denial = admit(&v, &r, &few_scopes).unwrap_err();
        assert_eq!(denial.status, http::StatusCode::FORBIDDEN);
        assert_eq!(denial.error, Some("insufficient_scope"));
        assert_eq!(denial.scope.as_deref(), Some("read write"));
        let enough =
            token(json!({"aud": "billing", "exp": now() + 60, "scope": "write read admin"}));
        assert!(admit(&v, &r, &enough).is_ok());
    }

    #[test]
    fn alg_none_and_garbage_are_refused() {
        let v = verifier(None);
        let r = rules(&v, None, &[], &[]);
        // {"alg":"none","typ":"JWT"} . {"aud":"api","exp":9999999999} . (no signature)
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJhdWQiOiJhcGkiLCJleHAiOjk5OTk5OTk5OTl9.";
        for bad in [none, "not.a.token", "abc"] {
            let denial = admit(&v, &r, bad).unwrap_err();
            assert_eq!(denial.status, http::StatusCode::UNAUTHORIZED, "{bad}");
        }
    }

    #[test]
    fn jwks_keys_need_supported_types_and_unique_kids() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| {
            let path = dir.path().join("jwks.json");
            std::fs::write(&path, text).unwrap();
            load_jwks(&path).map(|k| k.len())
        };
        let ec = r#"{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        assert_eq!(write(&format!(r#"{{"keys":[{ec}]}}"#)), Ok(1));
        assert!(write(&format!(r#"{{"keys":[{ec},{ec}]}}"#))
            .unwrap_err()
            .contains("twice"));
        assert!(write(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#)
            .unwrap_err()
            .contains("oct"));
        assert!(write(r#"{"keys":[]}"#)
            .unwrap_err()
            .contains("no signing keys"));
        assert!(write("[").is_err());
        let with_alg = ec.replace(r#""kid":"a""#, r#""kid":"a","alg":"RS256""#);
        assert!(write(&format!(r#"{{"keys":[{with_alg}]}}"#))
            .unwrap_err()
            .contains("does not fit"));
    }
}
