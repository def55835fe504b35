//! Route authentication and CORS, seen from outside: a real `wasmgate up` with a runtime config
//! defining API key and JWT schemes, and a manifest whose routes (told apart by host) require
//! them. Keys are made with `openssl` once per run; tokens are signed here.

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{fixture_manifest, repo_root, run_wasmgate, Reply, Server};

const SECRET: &str = "test-secret-of-at-least-32-bytes-long";
const API_KEY: &str = "acme-live-key-0123456789";
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "wasmgate-tests";
const IDP: &str = "https://idp.test";

/// Keys made once per test binary with openssl (PKCS#8 PEM).
struct Keys {
    rsa_private: Vec<u8>,
    rsa_public: Vec<u8>,
    ec_private: Vec<u8>,
    jwks: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("run openssl");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ]);
        openssl(&["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub.pem"]);
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.pem",
        ]);
        let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
        let (rsa_private, rsa_public, ec_private) =
            (read("rsa.pem"), read("rsa.pub.pem"), read("ec.pem"));
        let jwk = |pem: &[u8], alg: Algorithm, kid: &str| {
            let key = match alg {
                Algorithm::RS256 => EncodingKey::from_rsa_pem(pem).unwrap(),
                _ => EncodingKey::from_ec_pem(pem).unwrap(),
            };
            let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
            jwk.common.key_id = Some(kid.to_string());
            jwk
        };
        let set = JwkSet {
            keys: vec![
                jwk(&rsa_private, Algorithm::RS256, "rsa-1"),
                jwk(&ec_private, Algorithm::ES256, "ec-1"),
            ],
        };
        Keys {
            jwks: serde_json::to_string(&set).unwrap(),
            rsa_private,
            rsa_public,
            ec_private,
        }
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims the `main` scheme accepts, with `extra` merged over them.
fn claims(extra: Value) -> Value {
    let mut claims = json!({
        "sub": "alice",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": now() + 300,
        "iat": now(),
    });
    if let (Some(base), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    claims
}

fn hs256(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn signed(alg: Algorithm, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&keys().rsa_private).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&keys().ec_private).unwrap(),
        _ => unreachable!(),
    };
    encode(&header, claims, &key).unwrap()
}

fn runtime_config() -> String {
    let digest = hex::encode(Sha256::digest(API_KEY.as_bytes()));
    format!(
        r#"
[auth.api_key.partners]
header = "x-api-key"
keys.acme = {{ sha256 = "{digest}" }}

[auth.api_key.ci]
keys.runner = {{ sha256 = "{digest}" }}

[auth.jwt.main]
secret_env = "TEST_JWT_SECRET"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"

[auth.jwt.idp]
jwks = "jwks.json"
issuer = "{IDP}"
clock_skew = "5s"
"#
    )
}

/// The fixture at `/...` for any host (public), plus one protected `/...` route per host.
fn manifest() -> String {
    fixture_manifest("")
        + r#"
[[route]]
host = "hs.test"
path = "/..."
component = "fixture"
auth = { jwt = "main", claims_to_headers = { sub = "x-user-id", email = "x-user-email" } }

[[route]]
host = "billing.test"
path = "/..."
component = "fixture"
auth = { jwt = "main", audience = "billing" }

[[route]]
host = "scoped.test"
path = "/..."
component = "fixture"
auth = { jwt = "main", scopes = ["orders:write"] }

[[route]]
host = "idp.test"
path = "/..."
component = "fixture"
auth = { jwt = "idp", claims_to_headers = { sub = "x-user-id" } }

[[route]]
host = "key.test"
path = "/..."
component = "fixture"
auth = "partners"

[[route]]
host = "bearer-key.test"
path = "/..."
component = "fixture"
auth = { api_key = "ci" }

[[route]]
host = "cors.test"
path = "/..."
component = "fixture"
auth = "main"
cors = { allow_origins = ["https://app.example.com"], allow_methods = ["GET", "PUT"], allow_headers = ["authorization", "content-type"], expose_headers = ["x-echo-path"], max_age = "10m" }
"#
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("runtime.toml"), runtime_config()).unwrap();
    std::fs::write(dir.path().join("jwks.json"), &keys().jwks).unwrap();
    let config = dir.path().join("runtime.toml").display().to_string();
    let cache = repo_root().join("target/wasmgate-test-cache");
    Server::start_with_env(
        dir,
        &manifest(),
        &[
            "--runtime-config",
            &config,
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        &[("TEST_JWT_SECRET", SECRET)],
    )
}

/// One HTTP/1.1 request to `host` with extra headers.
async fn send(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, host);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = sender
        .send_request(builder.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let version = response.version();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
        version,
    }
}

async fn get_with_token(server: &Server, host: &str, token: &str) -> Reply {
    let bearer = format!("Bearer {token}");
    send(
        server.addr,
        "GET",
        host,
        "/headers",
        &[("authorization", &bearer)],
    )
    .await
}

fn challenge(reply: &Reply) -> String {
    reply
        .headers
        .get(http::header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Asserts a 401 `invalid_token` whose description mentions `needle`.
fn assert_invalid_token(reply: &Reply, needle: &str) {
    assert_eq!(reply.status, 401, "{}", reply.text());
    let challenge = challenge(reply);
    assert!(
        challenge.starts_with("Bearer realm=\"wasmgate\", error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(challenge.contains(needle), "{needle:?} not in {challenge}");
    assert!(
        !reply.text().contains("alice"),
        "the guest answered: {}",
        reply.text()
    );
}

#[tokio::test]
async fn missing_token_is_401_with_a_bare_challenge() {
    let server = start();
    let reply = send(server.addr, "GET", "hs.test", "/headers", &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(challenge(&reply), "Bearer realm=\"wasmgate\"");
    // The same path on a public route reaches the guest.
    let public = send(server.addr, "GET", "public.test", "/ok", &[]).await;
    assert_eq!(public.text(), "ok");
}

#[tokio::test]
async fn valid_token_reaches_the_guest_with_claim_headers_and_forged_ones_dropped() {
    let server = start();
    let token = hs256(&claims(json!({"sub": "alice"})));
    let bearer = format!("Bearer {token}");
    let reply = send(
        server.addr,
        "GET",
        "hs.test",
        "/headers",
        &[
            ("authorization", &bearer),
            ("x-user-id", "mallory"),
            ("x_user_id", "mallory"),
            ("x-user-email", "mallory@example.com"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let text = reply.text();
    assert!(text.contains("x-user-id: alice\n"), "{text}");
    assert!(!text.contains("mallory"), "{text}");
    // The token had no email claim: the header is absent, not the client's value.
    assert!(!text.contains("x-user-email"), "{text}");
}

#[tokio::test]
async fn expired_token_is_401() {
    let server = start();
    let token = hs256(&claims(json!({"exp": now() - 600})));
    assert_invalid_token(&get_with_token(&server, "hs.test", &token).await, "expired");
}

#[tokio::test]
async fn token_not_yet_valid_is_401() {
    let server = start();
    let token = hs256(&claims(json!({"nbf": now() + 600})));
    assert_invalid_token(
        &get_with_token(&server, "hs.test", &token).await,
        "not valid yet",
    );
}

#[tokio::test]
async fn wrong_issuer_is_401() {
    let server = start();
    let token = hs256(&claims(json!({"iss": "https://evil.test"})));
    assert_invalid_token(&get_with_token(&server, "hs.test", &token).await, "issuer");
}

#[tokio::test]
async fn wrong_audience_is_403() {
    let server = start();
    let token = hs256(&claims(json!({})));
    let reply = get_with_token(&server, "billing.test", &token).await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(reply.text().contains("audience"), "{}", reply.text());
    let billing = hs256(&claims(json!({"aud": ["billing", "other"]})));
    assert_eq!(
        get_with_token(&server, "billing.test", &billing)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn missing_scope_is_403_insufficient_scope() {
    let server = start();
    let reply = get_with_token(
        &server,
        "scoped.test",
        &hs256(&claims(json!({"scope": "orders:read"}))),
    )
    .await;
    assert_eq!(reply.status, 403);
    let challenge = challenge(&reply);
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"orders:write\""), "{challenge}");
    let enough = hs256(&claims(json!({"scope": "orders:read orders:write"})));
    assert_eq!(
        get_with_token(&server, "scoped.test", &enough).await.status,
        200
    );
}

#[tokio::test]
async fn badly_signed_token_is_401() {
    let server = start();
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(b"another-secret-that-is-long-enough!!"),
    )
    .unwrap();
    assert_invalid_token(
        &get_with_token(&server, "hs.test", &token).await,
        "signature",
    );
    // A valid token with one byte of its signature changed.
    let mut tampered = hs256(&claims(json!({})));
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        get_with_token(&server, "hs.test", &tampered).await.status,
        401
    );
}

#[tokio::test]
async fn alg_none_is_401() {
    let server = start();
    let b64 = |text: &str| {
        // base64url without padding, by hand: the test needs no base64 crate for one token.
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = text.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    };
    let payload = claims(json!({})).to_string();
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None","kid":"rsa-1"}"#,
    ] {
        let token = format!("{}.{}.", b64(header), b64(&payload));
        for host in ["hs.test", "idp.test"] {
            assert_invalid_token(&get_with_token(&server, host, &token).await, "none");
        }
    }
}

#[tokio::test]
async fn hs256_token_signed_with_the_rsa_public_key_is_refused() {
    let server = start();
    // The classic confusion: a verifier that took the algorithm from the token would check
    // this HMAC with the RSA public key's PEM bytes as the secret, and accept it.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let forged = encode(
        &header,
        &claims(json!({"iss": IDP})),
        &EncodingKey::from_secret(&keys().rsa_public),
    )
    .unwrap();
    assert_invalid_token(
        &get_with_token(&server, "idp.test", &forged).await,
        "algorithm",
    );
}

#[tokio::test]
async fn rs256_and_es256_tokens_from_the_jwks_are_chosen_by_kid() {
    let server = start();
    let idp_claims = claims(json!({"iss": IDP, "sub": "bob"}));
    for (alg, kid) in [(Algorithm::RS256, "rsa-1"), (Algorithm::ES256, "ec-1")] {
        let reply = get_with_token(&server, "idp.test", &signed(alg, kid, &idp_claims)).await;
        assert_eq!(reply.status, 200, "{alg:?}: {}", reply.text());
        assert!(
            reply.text().contains("x-user-id: bob\n"),
            "{}",
            reply.text()
        );
    }
    // Signed by the EC key but claiming the RSA key's kid, or naming no known key.
    let mut wrong_kid = Header::new(Algorithm::ES256);
    wrong_kid.kid = Some("rsa-1".into());
    let key = EncodingKey::from_ec_pem(&keys().ec_private).unwrap();
    let token = encode(&wrong_kid, &idp_claims, &key).unwrap();
    assert_invalid_token(
        &get_with_token(&server, "idp.test", &token).await,
        "algorithm",
    );
    let unknown = signed(Algorithm::RS256, "rsa-2", &idp_claims);
    assert_invalid_token(&get_with_token(&server, "idp.test", &unknown).await, "kid");
    // A JWKS token is no good on the HS256 scheme, and the reverse.
    let rs = signed(Algorithm::RS256, "rsa-1", &claims(json!({})));
    assert_eq!(get_with_token(&server, "hs.test", &rs).await.status, 401);
    let hs = hs256(&idp_claims);
    assert_eq!(get_with_token(&server, "idp.test", &hs).await.status, 401);
}

#[tokio::test]
async fn api_key_in_its_header_is_checked_and_not_forwarded() {
    let server = start();
    let good = send(
        server.addr,
        "GET",
        "key.test",
        "/headers",
        &[("x-api-key", API_KEY)],
    )
    .await;
    assert_eq!(good.status, 200, "{}", good.text());
    assert!(!good.text().contains(API_KEY), "{}", good.text());
    let bad = send(
        server.addr,
        "GET",
        "key.test",
        "/headers",
        &[("x-api-key", "guess")],
    )
    .await;
    assert_eq!(bad.status, 401);
    assert!(challenge(&bad).contains("error=\"invalid_token\""));
    let missing = send(server.addr, "GET", "key.test", "/headers", &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(challenge(&missing), "Bearer realm=\"wasmgate\"");
    // The key in the wrong place does not count.
    let bearer = format!("Bearer {API_KEY}");
    let misplaced = send(
        server.addr,
        "GET",
        "key.test",
        "/headers",
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(misplaced.status, 401);
}

#[tokio::test]
async fn api_key_as_bearer_token_by_default() {
    let server = start();
    let bearer = format!("Bearer {API_KEY}");
    let good = send(
        server.addr,
        "GET",
        "bearer-key.test",
        "/headers",
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(good.status, 200, "{}", good.text());
    assert!(!good.text().contains("authorization"), "{}", good.text());
    let bad = send(
        server.addr,
        "GET",
        "bearer-key.test",
        "/ok",
        &[("authorization", "Bearer nope")],
    )
    .await;
    assert_eq!(bad.status, 401);
}

#[tokio::test]
async fn denied_requests_are_recorded_with_outcome_denied() {
    let server = start();
    send(server.addr, "GET", "hs.test", "/headers", &[]).await;
    let expired = hs256(&claims(json!({"exp": now() - 600})));
    get_with_token(&server, "hs.test", &expired).await;
    send(server.addr, "GET", "public.test", "/ok", &[]).await;
    let started = Instant::now();
    let records = loop {
        let reply = support::get(server.admin, "/api/invocations?outcome=denied").await;
        assert_eq!(reply.status, 200);
        let parsed: Value = serde_json::from_slice(&reply.body).unwrap();
        let records = parsed["invocations"].as_array().unwrap().clone();
        if records.len() >= 2 || started.elapsed() > Duration::from_secs(5) {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(records.len(), 2, "{records:?}");
    for record in &records {
        assert_eq!(record["outcome"], "denied");
        assert_eq!(record["status"], 401);
        assert_eq!(record["component"], "fixture");
        assert_eq!(record["route"], "/...");
    }
    assert!(
        records[0]["error"].as_str().unwrap().contains("expired"),
        "{records:?}"
    );
}

#[tokio::test]
async fn cors_preflight_from_an_allowed_origin_is_answered_without_credentials() {
    let server = start();
    let reply = send(
        server.addr,
        "OPTIONS",
        "cors.test",
        "/echo",
        &[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "PUT"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.text());
    let h = &reply.headers;
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(h["access-control-allow-methods"], "GET, PUT");
    assert_eq!(
        h["access-control-allow-headers"],
        "authorization, content-type"
    );
    assert_eq!(h["access-control-max-age"], "600");
    assert!(h.get_all("vary").iter().any(|v| v == "Origin"));
    assert!(
        h.get("x-echo-method").is_none(),
        "the guest answered the preflight"
    );
}

#[tokio::test]
async fn cors_preflight_from_another_origin_is_403() {
    let server = start();
    for (origin, method) in [
        ("https://evil.example", "GET"),
        ("https://app.example.com", "DELETE"),
    ] {
        let reply = send(
            server.addr,
            "OPTIONS",
            "cors.test",
            "/echo",
            &[
                ("origin", origin),
                ("access-control-request-method", method),
            ],
        )
        .await;
        assert_eq!(reply.status, 403, "{origin} {method}");
        assert!(reply.headers.get("access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn cors_actual_responses_carry_the_allowed_origin() {
    let server = start();
    let bearer = format!("Bearer {}", hs256(&claims(json!({}))));
    let allowed = send(
        server.addr,
        "GET",
        "cors.test",
        "/echo",
        &[
            ("origin", "https://app.example.com"),
            ("authorization", &bearer),
        ],
    )
    .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(
        allowed.headers["access-control-expose-headers"],
        "x-echo-path"
    );
    assert!(allowed
        .headers
        .get_all("vary")
        .iter()
        .any(|v| v == "Origin"));
    let other = send(
        server.addr,
        "GET",
        "cors.test",
        "/echo",
        &[
            ("origin", "https://evil.example"),
            ("authorization", &bearer),
        ],
    )
    .await;
    assert_eq!(other.status, 200);
    assert!(other.headers.get("access-control-allow-origin").is_none());
    // A refusal is readable by the allowed page, so it can tell the user to sign in.
    let refused = send(
        server.addr,
        "GET",
        "cors.test",
        "/echo",
        &[("origin", "https://app.example.com")],
    )
    .await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
}

fn up_fails(manifest: &str, runtime_config: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wasmgate.toml"), manifest).unwrap();
    let mut args = vec![
        "up".to_string(),
        dir.path().display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--no-admin".into(),
    ];
    if let Some(text) = runtime_config {
        let path = dir.path().join("runtime.toml");
        std::fs::write(&path, text).unwrap();
        args.extend(["--runtime-config".into(), path.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, stderr) = run_wasmgate(&args);
    assert_ne!(code, 0, "{stderr}");
    stderr
}

#[test]
fn route_naming_an_undefined_scheme_stops_startup_naming_both_files() {
    let manifest = fixture_manifest("")
        + "\n[[route]]\npath = \"/admin\"\ncomponent = \"fixture\"\nauth = \"staff\"\n";
    let line = manifest
        .lines()
        .position(|l| l.starts_with("auth ="))
        .unwrap()
        + 1;
    let stderr = up_fails(&manifest, Some("[auth.api_key.partners]\nkeys.a = { sha256 = \"00000000000000000000000000000000000000000000000000000000000000ff\" }\n"));
    assert!(
        stderr.contains(&format!("wasmgate.toml:{line}")),
        "{stderr}"
    );
    assert!(stderr.contains("\"staff\""), "{stderr}");
    assert!(stderr.contains("runtime.toml"), "{stderr}");
    assert!(stderr.contains("partners"), "{stderr}");
    let without_config = up_fails(&manifest, None);
    assert!(
        without_config.contains("built-in runtime config"),
        "{without_config}"
    );
}

#[test]
fn route_asking_for_the_wrong_kind_of_scheme_stops_startup() {
    let manifest = fixture_manifest("") + "\n[[route]]\npath = \"/admin\"\ncomponent = \"fixture\"\nauth = { jwt = \"partners\" }\n";
    let stderr = up_fails(&manifest, Some("[auth.api_key.partners]\nkeys.a = { sha256 = \"00000000000000000000000000000000000000000000000000000000000000ff\" }\n"));
    assert!(stderr.contains("[auth.api_key.partners]"), "{stderr}");
}

#[test]
fn runtime_config_errors_name_file_line_and_field() {
    let stderr = up_fails(
        &fixture_manifest(""),
        Some("[auth.jwt.main]\nsecret = \"too short\"\n"),
    );
    assert!(stderr.contains("runtime.toml:2:"), "{stderr}");
    assert!(stderr.contains("auth.jwt.main.secret"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("broken.json");
    std::fs::write(
        &jwks,
        "{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}",
    )
    .unwrap();
    let text = format!("[auth.jwt.idp]\njwks = {:?}\n", jwks.display().to_string());
    let stderr = up_fails(&fixture_manifest(""), Some(&text));
    assert!(stderr.contains("auth.jwt.idp.jwks"), "{stderr}");
    assert!(stderr.contains("broken.json"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_jwks_file_is_picked_up_by_a_reload() {
    let server = start();
    // The identity provider publishes only its RSA key at first.
    let mut set: Value = serde_json::from_str(&keys().jwks).unwrap();
    let full = set.clone();
    set["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|key| key["kid"] == "rsa-1");
    let jwks = server.dir.path().join("jwks.json");
    std::fs::write(&jwks, set.to_string()).unwrap();
    let reload = support::Client::connect(server.admin, support::Protocol::Http1)
        .await
        .send("POST", "/api/reload", "")
        .await;
    assert_eq!(reload.status, 200, "{}", reload.text());
    let idp_claims = claims(json!({"iss": IDP, "sub": "bob"}));
    let rsa = signed(Algorithm::RS256, "rsa-1", &idp_claims);
    let ec = signed(Algorithm::ES256, "ec-1", &idp_claims);
    assert_eq!(get_with_token(&server, "idp.test", &rsa).await.status, 200);
    assert_invalid_token(&get_with_token(&server, "idp.test", &ec).await, "kid");

    // It adds its new EC key; SIGHUP makes Wasmgate read the file again.
    std::fs::write(&jwks, full.to_string()).unwrap();
    server.hangup();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let reply = get_with_token(&server, "idp.test", &ec).await;
        if reply.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new key was not picked up: {}\n{}",
            reply.text(),
            server.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(get_with_token(&server, "idp.test", &rsa).await.status, 200);
}
