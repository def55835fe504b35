//! The Redis backend: a store is the Redis keys under `wasmgate:{store}:`.
//!
//! The prefix keeps stores apart when the runtime config points several of them at one Redis
//! (store names cannot contain `:`, so one store's prefix is never inside another's).
//! Values are Redis strings holding the bytes as-is; counters are the decimal text `INCRBY`
//! keeps. `list-keys` is `SCAN ... MATCH wasmgate:{store}:*`, with Redis's cursor as ours:
//! pages vary in size and a key may be listed twice, as `SCAN` allows.
//!
//! One [`ConnectionManager`] per store multiplexes every instance's calls over a single
//! connection and reconnects after failures. The URL may carry a password: it never appears
//! in an error (see [`Redactor`]).

use super::backend::{Backend, BackendError, KeyPage, LIST_PAGE_KEYS};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script, Value};
use std::time::Duration;
use wasmgate_manifest::SecretUrl;

/// Connecting (at open and on reconnects) gives up after this long per attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A command without a reply after this long fails (a 4 MiB value takes milliseconds).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnection attempts before a call fails.
const RECONNECT_RETRIES: usize = 2;
/// `SCAN` rounds one `list-keys` call makes at most when the store's keys are sparse in a
/// Redis shared with other data; the guest continues from the cursor.
const MAX_SCAN_ROUNDS: usize = 16;

/// Increments a counter atomically (scripts run alone), refusing a value that is not
/// canonical decimal text before `INCRBY` could accept a negative one. Replies with the new
/// value, or `not-counter` / `overflow`.
const INCREMENT_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if current and current ~= '0' and not string.match(current, '^[1-9]%d*$') then
  return 'not-counter'
end
local result = redis.pcall('INCRBY', KEYS[1], ARGV[1])
if type(result) == 'table' and result.err then
  if string.find(result.err, 'overflow') then return 'overflow' end
  return 'not-counter'
end
return result
";

/// One store in a Redis database.
#[derive(Clone)]
pub struct RedisStore {
    prefix: String,
    connection: ConnectionManager,
    increment: Script,
    redactor: Redactor,
}

impl RedisStore {
    /// Connects to `url` and checks the server answers `PING`.
    pub async fn open(store: &str, url: &SecretUrl) -> Result<RedisStore, BackendError> {
        let redactor = Redactor::new(url.expose());
        let client = redis::Client::open(url.expose()).map_err(|e| redactor.error(&e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES);
        let mut connection = tokio::time::timeout(
            CONNECT_TIMEOUT * 3,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| BackendError::new("timed out connecting to Redis"))?
        .map_err(|e| redactor.error(&e))?;
        let _: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(|e| redactor.error(&e))?;
        Ok(RedisStore {
            prefix: format!("wasmgate:{store}:"),
            connection,
            increment: Script::new(INCREMENT_SCRIPT),
            redactor,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, BackendError> {
        // The manager is a cheap handle onto one shared, multiplexed connection.
        let mut connection = self.connection.clone();
        cmd.query_async(&mut connection)
            .await
            .map_err(|e| self.redactor.error(&e))
    }
}

#[async_trait]
impl Backend for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: String) -> Result<Option<Vec<u8>>, BackendError> {
        self.query(redis::cmd("GET").arg(self.key(&key))).await
    }

    async fn set(&self, key: String, value: Vec<u8>) -> Result<(), BackendError> {
        self.query(redis::cmd("SET").arg(self.key(&key)).arg(value))
            .await
    }

    async fn delete(&self, key: String) -> Result<(), BackendError> {
        self.query::<i64>(redis::cmd("DEL").arg(self.key(&key)))
            .await
            .map(drop)
    }

    async fn exists(&self, key: String) -> Result<bool, BackendError> {
        self.query(redis::cmd("EXISTS").arg(self.key(&key))).await
    }

    async fn list_keys(&self, cursor: Option<u64>) -> Result<KeyPage, BackendError> {
        let pattern = format!("{}*", escape_glob(&self.prefix));
        let mut cursor = cursor.unwrap_or(0);
        let mut keys = Vec::new();
        // Each round returns what it found among about LIST_PAGE_KEYS slots; stop once half a
        // page is filled so a page stays near LIST_PAGE_KEYS.
        for _ in 0..MAX_SCAN_ROUNDS {
            let (next, found): (u64, Vec<Vec<u8>>) = self
                .query(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(LIST_PAGE_KEYS),
                )
                .await?;
            keys.extend(found.into_iter().filter_map(|full| {
                // Every key we write is UTF-8; anything else under the prefix is not ours.
                let full = String::from_utf8(full).ok()?;
                full.strip_prefix(&self.prefix).map(str::to_string)
            }));
            cursor = next;
            if cursor == 0 || keys.len() >= LIST_PAGE_KEYS / 2 {
                break;
            }
        }
        Ok(KeyPage {
            keys,
            cursor: (cursor != 0).then_some(cursor),
        })
    }

    async fn increment(&self, key: String, delta: u64) -> Result<u64, BackendError> {
        let Ok(delta) = i64::try_from(delta) else {
            return Err(BackendError::counter_overflow(&key));
        };
        let mut invocation = self.increment.prepare_invoke();
        invocation.key(self.key(&key)).arg(delta);
        let mut connection = self.connection.clone();
        let reply: Value = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.redactor.error(&e))?;
        match reply {
            Value::Int(n) => u64::try_from(n).map_err(|_| BackendError::not_a_counter(&key)),
            Value::BulkString(text) if text == b"overflow" => {
                Err(BackendError::counter_overflow(&key))
            }
            Value::BulkString(text) if text == b"not-counter" => {
                Err(BackendError::not_a_counter(&key))
            }
            other => Err(BackendError::new(format!(
                "unexpected reply from Redis to an increment: {other:?}"
            ))),
        }
    }

    async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, BackendError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for key in &keys {
            cmd.arg(self.key(key));
        }
        let values: Vec<Option<Vec<u8>>> = self.query(&cmd).await?;
        if values.len() != keys.len() {
            return Err(BackendError::new(format!(
                "Redis answered MGET of {} keys with {} values",
                keys.len(),
                values.len()
            )));
        }
        Ok(keys
            .into_iter()
            .zip(values)
            .map(|(key, value)| value.map(|v| (key, v)))
            .collect())
    }

    async fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), BackendError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("MSET");
        for (key, value) in entries {
            cmd.arg(self.key(&key)).arg(value);
        }
        self.query(&cmd).await
    }

    async fn delete_many(&self, keys: Vec<String>) -> Result<(), BackendError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("DEL");
        for key in &keys {
            cmd.arg(self.key(key));
        }
        self.query::<i64>(&cmd).await.map(drop)
    }
}

/// `SCAN MATCH` treats `* ? [ ] \` specially; a prefix must match only itself.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Turns Redis errors into messages without the URL's credentials. The client's messages do
/// not normally include the URL, but a message built from a server reply or a parse failure
/// could; every one passes through here to be sure.
#[derive(Clone)]
struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    fn new(url: &str) -> Redactor {
        let mut secrets = vec![url.to_string()];
        if let Some(userinfo) = userinfo(url) {
            if let Some((_, password)) = userinfo.split_once(':') {
                secrets.push(password.to_string());
            }
            secrets.push(userinfo.to_string());
        }
        // Longest first, so a URL is replaced whole rather than around its password.
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    fn redact(&self, message: &str) -> String {
        let mut message = message.to_string();
        for secret in &self.secrets {
            message = message.replace(secret.as_str(), "***");
        }
        message
    }

    fn error(&self, error: &RedisError) -> BackendError {
        BackendError::new(format!("redis: {}", self.redact(&error.to_string())))
    }
}

/// The `user:password` part of `scheme://user:password@host...`, if any.
fn userinfo(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map(|(userinfo, _)| userinfo)
}

#[cfg(test)]
mod tests {
    use super::{escape_glob, Redactor};

    #[test]
    fn messages_never_show_the_password() {
        let redactor = Redactor::new("redis://app:s3cret@cache.internal:6379/2");
        for message in [
            "cannot connect to redis://app:s3cret@cache.internal:6379/2",
            "WRONGPASS for app:s3cret",
            "bad password s3cret",
        ] {
            let redacted = redactor.redact(message);
            assert!(!redacted.contains("s3cret"), "{redacted}");
        }
        assert_eq!(
            Redactor::new("redis://127.0.0.1:6379/").redact("connection refused"),
            "connection refused"
        );
    }

    #[test]
    fn glob_characters_in_prefixes_are_escaped() {
        assert_eq!(escape_glob("wasmgate:a.b:"), "wasmgate:a.b:");
        assert_eq!(escape_glob("x*[?]\\"), "x\\*\\[\\?\\]\\\\");
    }
}
