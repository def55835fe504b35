//! Which requests' spans are exported: the OpenTelemetry samplers named by
//! `OTEL_TRACES_SAMPLER` (and `OTEL_TRACES_SAMPLER_ARG`), decided once per request when its
//! trace context is made, so the decision also travels downstream in `traceparent`'s flag.
//!
//! Exporting every request's span tree costs a hello request about a fifth of its CPU; a
//! ratio sampler is how a busy deployment keeps traces inside its telemetry budget.

use crate::otlp::OtlpConfigError;
use crate::trace::TraceContext;

/// A sampling rule: for new traces (no caller), and whether to follow the caller's decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampler {
    root: Root,
    /// Follow the caller's `sampled` flag when the request continues a trace.
    parent_based: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Root {
    Always,
    Never,
    /// Traces whose id's low 56 bits fall under this threshold (of 2^56) are sampled.
    Ratio {
        threshold: u64,
    },
}

impl Default for Sampler {
    /// The specification's default: `parentbased_always_on`.
    fn default() -> Sampler {
        Sampler {
            root: Root::Always,
            parent_based: true,
        }
    }
}

const LOW_56: u64 = (1 << 56) - 1;

impl Sampler {
    /// Reads `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` through `var`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Sampler, OtlpConfigError> {
        let name = var("OTEL_TRACES_SAMPLER");
        let ratio = || -> Result<Root, OtlpConfigError> {
            let Some(text) = var("OTEL_TRACES_SAMPLER_ARG") else {
                return Ok(Root::Ratio {
                    threshold: LOW_56 + 1,
                });
            };
            match text.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(Root::Ratio {
                    threshold: (r * (LOW_56 + 1) as f64) as u64,
                }),
                _ => Err(OtlpConfigError {
                    variable: "OTEL_TRACES_SAMPLER_ARG",
                    value: text,
                    reason: "the sampling ratio must be a number from 0 to 1".into(),
                }),
            }
        };
        let (root, parent_based) = match name.as_deref() {
            None | Some("parentbased_always_on") => (Root::Always, true),
            Some("always_on") => (Root::Always, false),
            Some("always_off") => (Root::Never, false),
            Some("parentbased_always_off") => (Root::Never, true),
            Some("traceidratio") => (ratio()?, false),
            Some("parentbased_traceidratio") => (ratio()?, true),
            Some(other) => {
                return Err(OtlpConfigError {
                    variable: "OTEL_TRACES_SAMPLER",
                    value: other.to_string(),
                    reason: "supported samplers are always_on, always_off, traceidratio and \
                             their parentbased_ forms"
                        .into(),
                })
            }
        };
        Ok(Sampler { root, parent_based })
    }

    /// Whether the request with this trace context is sampled.
    pub fn decide(&self, trace: &TraceContext) -> bool {
        if self.parent_based && trace.parent_span_id.is_some() {
            return trace.sampled;
        }
        match self.root {
            Root::Always => true,
            Root::Never => false,
            Root::Ratio { threshold } => (trace.trace_id.0 as u64 & LOW_56) < threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sampler(vars: &[(&str, &str)]) -> Result<Sampler, OtlpConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Sampler::from_env(|name| vars.get(name).cloned())
    }

    fn root() -> TraceContext {
        TraceContext::for_request(None)
    }

    fn continued(sampled: bool) -> TraceContext {
        let flags = if sampled { "01" } else { "00" };
        let header = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
        TraceContext::for_request(Some(header.as_bytes()))
    }

    #[test]
    fn the_default_follows_the_caller_and_samples_new_traces() {
        let s = sampler(&[]).unwrap();
        assert!(s.decide(&root()));
        assert!(s.decide(&continued(true)));
        assert!(!s.decide(&continued(false)));
    }

    #[test]
    fn always_on_and_off_ignore_the_caller_unless_parent_based() {
        let on = sampler(&[("OTEL_TRACES_SAMPLER", "always_on")]).unwrap();
        assert!(on.decide(&continued(false)));
        let off = sampler(&[("OTEL_TRACES_SAMPLER", "always_off")]).unwrap();
        assert!(!off.decide(&root()) && !off.decide(&continued(true)));
        let parent_off = sampler(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off")]).unwrap();
        assert!(!parent_off.decide(&root()));
        assert!(parent_off.decide(&continued(true)));
    }

    #[test]
    fn a_ratio_samples_about_that_share_of_new_traces() {
        let s = sampler(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
        ])
        .unwrap();
        let sampled = (0..20_000).filter(|_| s.decide(&root())).count();
        assert!((1_600..2_400).contains(&sampled), "{sampled} of 20000");
        // Parent-based: the caller's decision wins over the ratio.
        assert!(s.decide(&continued(true)));
        // The decision is the trace id's: every service sampling at 0.1 agrees.
        let trace = root();
        assert_eq!(s.decide(&trace), s.decide(&trace));
        let all = sampler(&[("OTEL_TRACES_SAMPLER", "traceidratio")]).unwrap();
        assert!((0..1000).all(|_| all.decide(&root())));
        let none = sampler(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ])
        .unwrap();
        assert!((0..1000).all(|_| !none.decide(&root())));
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let err = sampler(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")]).unwrap_err();
        assert_eq!(err.variable, "OTEL_TRACES_SAMPLER");
        for arg in ["1.5", "-0.1", "half"] {
            let err = sampler(&[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", arg),
            ])
            .unwrap_err();
            assert_eq!(err.variable, "OTEL_TRACES_SAMPLER_ARG", "{arg}");
        }
    }
}
