//! API keys: the caller presents a key, the runtime config holds only its SHA-256.
//!
//! The presented key is hashed and the digest compared with every configured digest using
//! `subtle`'s constant-time equality, without stopping at the first match, so the time taken
//! says nothing about how much of a digest matched or which key it was. Hashing first also
//! makes the comparison fixed-length whatever the caller sends.

use super::{bearer_token, single_header, Denial};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use wasmgate_manifest::{ApiKeyHeader, ApiKeyScheme};

pub(crate) struct ApiKeyVerifier {
    header: ApiKeyHeader,
    keys: Vec<(String, [u8; 32])>,
}

impl ApiKeyVerifier {
    pub(crate) fn new(scheme: &ApiKeyScheme) -> ApiKeyVerifier {
        ApiKeyVerifier {
            header: scheme.header.clone(),
            keys: scheme.keys.clone(),
        }
    }

    /// Checks the request's key and removes it from the request: a long-lived secret has no
    /// business reaching the guest (or its logs). Returns the key's configured name.
    pub(crate) fn admit(&self, headers: &mut http::HeaderMap) -> Result<String, Denial> {
        let name = match &self.header {
            ApiKeyHeader::AuthorizationBearer => {
                let token = bearer_token(headers)?;
                self.lookup(token.as_bytes())
            }
            ApiKeyHeader::Named(header) => {
                let value = single_header(headers, header)?
                    .ok_or_else(|| Denial::missing(format!("no {header} header")))?;
                self.lookup(value.as_bytes().trim_ascii())
            }
        };
        let header = match &self.header {
            ApiKeyHeader::AuthorizationBearer => http::header::AUTHORIZATION.as_str(),
            ApiKeyHeader::Named(header) => header.as_str(),
        };
        headers.remove(header);
        name.ok_or_else(|| Denial::invalid_token("unknown API key"))
    }

    fn lookup(&self, presented: &[u8]) -> Option<String> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        matching_key(&self.keys, &digest).map(|index| self.keys[index].0.clone())
    }
}

/// The index of the key whose digest equals `digest`, comparing every one in constant time.
fn matching_key(keys: &[(String, [u8; 32])], digest: &[u8; 32]) -> Option<usize> {
    let mut found = Choice::from(0);
    let mut index = 0usize;
    for (i, (_, stored)) in keys.iter().enumerate() {
        let equal = stored.ct_eq(digest);
        // Branch-free select: keeps the loop's timing independent of where the match is.
        let mask = (equal.unwrap_u8() as usize).wrapping_neg();
        index |= i & mask;
        found |= equal;
    }
    bool::from(found).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(key: &str) -> [u8; 32] {
        Sha256::digest(key.as_bytes()).into()
    }

    fn verifier(header: ApiKeyHeader) -> ApiKeyVerifier {
        ApiKeyVerifier::new(&ApiKeyScheme {
            header,
            keys: vec![
                ("acme".into(), digest("key-one")),
                ("globex".into(), digest("key-two")),
            ],
        })
    }

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn constant_time_match_finds_each_key_and_only_those() {
        let keys = vec![
            ("a".to_string(), digest("one")),
            ("b".to_string(), digest("two")),
            ("c".to_string(), digest("three")),
        ];
        assert_eq!(matching_key(&keys, &digest("one")), Some(0));
        assert_eq!(matching_key(&keys, &digest("three")), Some(2));
        assert_eq!(matching_key(&keys, &digest("four")), None);
        let mut near = digest("two");
        near[31] ^= 1;
        assert_eq!(matching_key(&keys, &near), None);
        assert_eq!(matching_key(&[], &digest("one")), None);
    }

    #[test]
    fn bearer_key_is_accepted_and_removed() {
        let mut map = headers(&[("authorization", "Bearer key-two")]);
        let name = verifier(ApiKeyHeader::AuthorizationBearer)
            .admit(&mut map)
            .unwrap();
        assert_eq!(name, "globex");
        assert!(map.get("authorization").is_none());
    }

    #[test]
    fn named_header_key() {
        let v = verifier(ApiKeyHeader::Named("x-api-key".into()));
        let mut map = headers(&[("x-api-key", " key-one ")]);
        assert_eq!(v.admit(&mut map).unwrap(), "acme");
        assert!(map.get("x-api-key").is_none());
        let denial = v.admit(&mut headers(&[])).unwrap_err();
        assert_eq!(denial.status, http::StatusCode::UNAUTHORIZED);
        assert_eq!(denial.error, None);
    }

    #[test]
    fn wrong_or_missing_key_is_401() {
        let v = verifier(ApiKeyHeader::AuthorizationBearer);
        let wrong = v
            .admit(&mut headers(&[("authorization", "Bearer key-three")]))
            .unwrap_err();
        assert_eq!(wrong.status, http::StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.error, Some("invalid_token"));
        let missing = v.admit(&mut headers(&[])).unwrap_err();
        assert_eq!(missing.error, None);
        let twice = v
            .admit(&mut headers(&[
                ("authorization", "Bearer key-one"),
                ("authorization", "Bearer key-two"),
            ]))
            .unwrap_err();
        assert_eq!(twice.status, http::StatusCode::BAD_REQUEST);
    }
}
