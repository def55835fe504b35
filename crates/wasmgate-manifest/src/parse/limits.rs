//! A route's load-protection keys (`max_concurrency`, `queue`, `queue_timeout`, `rate_limit`,
//! `client_rate_limit`, `max_request_body`), each checked where it was written.

use super::Source;
use crate::error::ManifestError;
use crate::model::Component;
use crate::raw::{RawRateLimit, RawRoute};
use crate::route_limits::{ConcurrencyLimit, RateLimit, RouteLimits};
use crate::units::{parse_duration, parse_size};
use std::time::Duration;
use toml::Spanned;

/// Beyond these a value is a typo, not a plan: the queue is memory, a rate is a counter.
const MAX_QUEUE: i64 = 100_000;
const MAX_RATE: i64 = 1_000_000;
/// A bucket refilling slower than one token a day would be a ban, not a rate limit.
const MAX_PER: Duration = Duration::from_secs(24 * 3600);
/// 4 GiB: the largest body a guest could hold in its 32-bit memory.
const MAX_BODY: u64 = 4 << 30;

impl Source<'_> {
    /// `field` names the route (`route[2]`); `component` is the one it serves, whose own
    /// concurrency limit the route's must fit in.
    pub(crate) fn route_limits(
        &self,
        raw: &RawRoute,
        field: &str,
        component: &Component,
    ) -> Result<RouteLimits, ManifestError> {
        let mut limits = RouteLimits {
            concurrency: self.concurrency(raw, field, component)?,
            ..RouteLimits::default()
        };
        if let Some(rate) = &raw.rate_limit {
            limits.rate_limit = Some(self.rate(rate, &format!("{field}.rate_limit"))?);
        }
        if let Some(rate) = &raw.client_rate_limit {
            limits.client_rate_limit =
                Some(self.rate(rate, &format!("{field}.client_rate_limit"))?);
        }
        if let Some(size) = &raw.max_request_body {
            let f = format!("{field}.max_request_body");
            let bytes = parse_size(size.get_ref()).map_err(|m| self.error(size.span(), &f, m))?;
            if !(1..=MAX_BODY).contains(&bytes) {
                return Err(self.error(size.span(), &f, "must be between 1 byte and 4GiB"));
            }
            limits.max_request_body = bytes;
        }
        Ok(limits)
    }

    fn concurrency(
        &self,
        raw: &RawRoute,
        field: &str,
        component: &Component,
    ) -> Result<Option<ConcurrencyLimit>, ManifestError> {
        let Some(max) = &raw.max_concurrency else {
            // A queue without a cap would never be used: say so rather than ignore it.
            if let Some(queue) = &raw.queue {
                return Err(self.error(
                    queue.span(),
                    &format!("{field}.queue"),
                    "queue applies only with the route's max_concurrency",
                ));
            }
            if let Some(timeout) = &raw.queue_timeout {
                return Err(self.error(
                    timeout.span(),
                    &format!("{field}.queue_timeout"),
                    "queue_timeout applies only with the route's max_concurrency",
                ));
            }
            return Ok(None);
        };
        let f = format!("{field}.max_concurrency");
        let value = *max.get_ref();
        if !(1..=10_000).contains(&value) {
            return Err(self.error(max.span(), &f, "must be between 1 and 10000"));
        }
        let max_in_flight = value as u32;
        // Past the component's own cap, requests the route admits would wait again, unbounded
        // by the route's queue: the route would no longer be the front door it claims to be.
        let component_cap = component.limits.max_concurrency;
        if max_in_flight > component_cap {
            return Err(self.error(
                max.span(),
                &f,
                format!(
                    "{max_in_flight} is more than component {}'s limits.max_concurrency \
                     ({component_cap}); raise that or lower this",
                    component.name
                ),
            ));
        }
        let queue = match &raw.queue {
            Some(queue) => {
                let count = *queue.get_ref();
                if !(0..=MAX_QUEUE).contains(&count) {
                    return Err(self.error(
                        queue.span(),
                        &format!("{field}.queue"),
                        format!("must be between 0 and {MAX_QUEUE}"),
                    ));
                }
                count as u32
            }
            None => max_in_flight,
        };
        let queue_timeout = match &raw.queue_timeout {
            Some(timeout) => {
                let f = format!("{field}.queue_timeout");
                let duration = parse_duration(timeout.get_ref())
                    .map_err(|m| self.error(timeout.span(), &f, m))?;
                if duration.is_zero() || duration > component.limits.timeout {
                    return Err(self.error(
                        timeout.span(),
                        &f,
                        format!(
                            "must be greater than zero and at most component {}'s \
                             limits.timeout ({:?})",
                            component.name, component.limits.timeout
                        ),
                    ));
                }
                duration
            }
            None => ConcurrencyLimit::DEFAULT_QUEUE_TIMEOUT.min(component.limits.timeout),
        };
        Ok(Some(ConcurrencyLimit {
            max_in_flight,
            queue,
            queue_timeout,
        }))
    }

    fn rate(&self, raw: &Spanned<RawRateLimit>, field: &str) -> Result<RateLimit, ManifestError> {
        let rate = raw.get_ref();
        let count = |value: &Spanned<i64>, key: &str| {
            let n = *value.get_ref();
            if (1..=MAX_RATE).contains(&n) {
                Ok(n as u32)
            } else {
                Err(self.error(
                    value.span(),
                    &format!("{field}.{key}"),
                    format!("must be between 1 and {MAX_RATE}"),
                ))
            }
        };
        let requests = count(&rate.requests, "requests")?;
        let burst = match &rate.burst {
            Some(burst) => count(burst, "burst")?,
            None => requests,
        };
        let per = match &rate.per {
            Some(per) => {
                let f = format!("{field}.per");
                let duration =
                    parse_duration(per.get_ref()).map_err(|m| self.error(per.span(), &f, m))?;
                if duration.is_zero() || duration > MAX_PER {
                    return Err(self.error(
                        per.span(),
                        &f,
                        "must be greater than zero and at most 24h",
                    ));
                }
                duration
            }
            None => Duration::from_secs(1),
        };
        Ok(RateLimit {
            requests,
            per,
            burst,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{ConcurrencyLimit, Manifest, RateLimit, RouteLimits};
    use std::time::Duration;

    /// Parses an app whose one route carries `route_keys`; its component has `limits`.
    fn parse(route_keys: &str, limits: &str) -> Result<Manifest, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("api.wasm"), b"\0asm").unwrap();
        let text = format!(
            "[app]\nname = \"t\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"api\"\n{route_keys}\n\n\
             [component.api]\nsource = \"api.wasm\"\n[component.api.limits]\n{limits}\n"
        );
        Manifest::parse(&text, &dir.path().join("wasmgate.toml")).map_err(|e| e.to_string())
    }

    fn limits(route_keys: &str) -> RouteLimits {
        parse(route_keys, "").unwrap().routes[0].limits
    }

    #[test]
    fn a_route_without_keys_gets_only_the_body_limit() {
        assert_eq!(limits(""), RouteLimits::default());
        assert_eq!(RouteLimits::default().max_request_body, 16 << 20);
    }

    #[test]
    fn all_keys_are_read() {
        let got = limits(
            "max_concurrency = 50\nqueue = 100\nqueue_timeout = \"2s\"\n\
             rate_limit = { requests = 100, per = \"1s\", burst = 200 }\n\
             client_rate_limit = { requests = 10, per = \"1m\" }\n\
             max_request_body = \"10MiB\"",
        );
        assert_eq!(
            got,
            RouteLimits {
                concurrency: Some(ConcurrencyLimit {
                    max_in_flight: 50,
                    queue: 100,
                    queue_timeout: Duration::from_secs(2),
                }),
                rate_limit: Some(RateLimit {
                    requests: 100,
                    per: Duration::from_secs(1),
                    burst: 200,
                }),
                client_rate_limit: Some(RateLimit {
                    requests: 10,
                    per: Duration::from_secs(60),
                    burst: 10,
                }),
                max_request_body: 10 << 20,
            }
        );
    }

    #[test]
    fn queue_defaults_to_the_cap_and_a_one_second_wait() {
        let got = limits("max_concurrency = 8").concurrency.unwrap();
        assert_eq!((got.queue, got.queue_timeout), (8, Duration::from_secs(1)));
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let cases = [
            ("queue = 3", "", ":7:9: route[0].queue: queue applies only"),
            ("max_concurrency = 0", "", ":7:19: route[0].max_concurrency: must be between"),
            (
                "max_concurrency = 20",
                "max_concurrency = 10",
                "route[0].max_concurrency: 20 is more than component api's limits.max_concurrency (10)",
            ),
            (
                "max_concurrency = 2\nqueue_timeout = \"1m\"",
                "timeout = \"5s\"",
                ":8:17: route[0].queue_timeout: must be greater than zero and at most",
            ),
            (
                "rate_limit = { requests = 0 }",
                "",
                ":7:27: route[0].rate_limit.requests: must be between 1 and",
            ),
            (
                "client_rate_limit = { requests = 5, per = \"0s\" }",
                "",
                "route[0].client_rate_limit.per: must be greater than zero",
            ),
            (
                "rate_limit = { requests = 5, every = \"1s\" }",
                "",
                "route[0].rate_limit",
            ),
            ("max_request_body = \"lots\"", "", ":7:20: route[0].max_request_body"),
        ];
        for (route_keys, limits, want) in cases {
            let error = parse(route_keys, limits).unwrap_err();
            assert!(
                error.contains("wasmgate.toml") && error.contains(want),
                "{route_keys}: {error}"
            );
        }
    }
}
