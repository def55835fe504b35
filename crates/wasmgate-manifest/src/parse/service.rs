//! The `service` executor's settings: `ports` and `replicas`, and the checks that tie other
//! fields to the executor (non-HTTP `allowed_outbound_hosts` schemes are for services only).

use super::Source;
use crate::error::ManifestError;
use crate::model::{Executor, ServiceOptions};
use crate::outbound::OutboundHost;
use crate::raw::RawComponent;

impl Source<'_> {
    pub(crate) fn service_options(
        &self,
        raw: &RawComponent,
        executor: Executor,
        field: &str,
    ) -> Result<Option<ServiceOptions>, ManifestError> {
        if executor != Executor::Service {
            if let Some(ports) = &raw.ports {
                return Err(self.error(
                    ports.span(),
                    &format!("{field}.ports"),
                    "ports applies to executor = \"service\" only",
                ));
            }
            if let Some(replicas) = &raw.replicas {
                return Err(self.error(
                    replicas.span(),
                    &format!("{field}.replicas"),
                    "replicas applies to executor = \"service\" only",
                ));
            }
            self.http_schemes_only(raw, field)?;
            return Ok(None);
        }
        if let Some(max_output) = &raw.limits.max_output {
            return Err(self.error(
                max_output.span(),
                &format!("{field}.limits.max_output"),
                "max_output applies to executor = \"wagi\" only",
            ));
        }
        if let Some(calls) = &raw.limits.max_host_calls {
            // A service runs for its whole life, not per request: a count would only grow.
            return Err(self.error(
                calls.span(),
                &format!("{field}.limits.max_host_calls"),
                "max_host_calls counts one request's calls; it does not apply to executor = \"service\"",
            ));
        }
        if let Some(fuel) = &raw.limits.fuel {
            // Fuel is a per-request budget; a service's one long run would just run dry.
            return Err(self.error(
                fuel.span(),
                &format!("{field}.limits.fuel"),
                "fuel is a per-request budget; it does not apply to executor = \"service\"",
            ));
        }
        let Some(ports) = &raw.ports else {
            return Err(self.error(
                raw.source.span(),
                &format!("{field}.ports"),
                "a service component must list the ports its program binds, e.g. ports = [8080]",
            ));
        };
        if ports.get_ref().is_empty() {
            return Err(self.error(
                ports.span(),
                &format!("{field}.ports"),
                "list at least one port, e.g. ports = [8080]",
            ));
        }
        let mut checked: Vec<u16> = Vec::with_capacity(ports.get_ref().len());
        for (index, port) in ports.get_ref().iter().enumerate() {
            let port_field = format!("{field}.ports[{index}]");
            let value = u16::try_from(*port.get_ref())
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    self.error(
                        port.span(),
                        &port_field,
                        "a port is a number from 1 to 65535",
                    )
                })?;
            if checked.contains(&value) {
                return Err(self.error(
                    port.span(),
                    &port_field,
                    format!("port {value} is listed twice"),
                ));
            }
            checked.push(value);
        }
        let replicas = match &raw.replicas {
            None => ServiceOptions::DEFAULT_REPLICAS,
            Some(replicas) => u32::try_from(*replicas.get_ref())
                .ok()
                .filter(|r| (1..=ServiceOptions::MAX_REPLICAS).contains(r))
                .ok_or_else(|| {
                    self.error(
                        replicas.span(),
                        &format!("{field}.replicas"),
                        format!(
                            "replicas must be between 1 and {}",
                            ServiceOptions::MAX_REPLICAS
                        ),
                    )
                })?,
        };
        Ok(Some(ServiceOptions {
            ports: checked,
            replicas,
        }))
    }

    /// Components that speak HTTP out cannot use a `mysql://` pattern: it would never match.
    fn http_schemes_only(&self, raw: &RawComponent, field: &str) -> Result<(), ManifestError> {
        for (index, pattern) in raw.allowed_outbound_hosts.iter().enumerate() {
            if OutboundHost::parse(pattern.get_ref()).is_ok_and(|host| !host.is_http()) {
                return Err(self.error(
                    pattern.span(),
                    &format!("{field}.allowed_outbound_hosts[{index}]"),
                    "only http, https and * patterns apply here; other schemes (for raw TCP \
                     connections) are for executor = \"service\"",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Executor, Manifest, ManifestError, ServiceOptions};

    fn parse(component: &str) -> Result<Manifest, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("shop.wasm"), b"\0asm").unwrap();
        let text = format!(
            "[app]\nname = \"t\"\n\n[[route]]\npath = \"/...\"\ncomponent = \"shop\"\n\n\
             [component.shop]\nsource = \"shop.wasm\"\n{component}"
        );
        Manifest::parse(&text, &dir.path().join("wasmgate.toml"))
    }

    fn error(component: &str) -> (String, usize, String) {
        let err = parse(component).unwrap_err();
        (
            err.field().unwrap().to_string(),
            err.line().unwrap(),
            err.to_string(),
        )
    }

    #[test]
    fn a_service_component_parses_with_ports_replicas_and_tcp_destinations() {
        let manifest = parse(
            "executor = \"service\"\nports = [8080, 9090]\nreplicas = 3\n\
             allowed_outbound_hosts = [\"mysql://db.internal:3306\"]\n",
        )
        .unwrap();
        let shop = &manifest.components["shop"];
        assert_eq!(shop.executor, Executor::Service);
        assert_eq!(
            shop.service,
            Some(ServiceOptions {
                ports: vec![8080, 9090],
                replicas: 3
            })
        );
        assert!(shop.allowed_outbound_hosts[0].matches_socket("db.internal", 3306));
    }

    #[test]
    fn replicas_default_to_one() {
        let manifest = parse("executor = \"service\"\nports = [8080]\n").unwrap();
        assert_eq!(
            manifest.components["shop"]
                .service
                .as_ref()
                .unwrap()
                .replicas,
            1
        );
    }

    #[test]
    fn a_service_without_ports_is_refused_at_its_source() {
        let (field, line, text) = error("executor = \"service\"\n");
        assert_eq!(field, "component.shop.ports");
        assert_eq!(line, 9);
        assert!(text.contains("must list the ports"), "{text}");
    }

    #[test]
    fn bad_ports_name_the_entry() {
        for (ports, index, needle) in [
            ("[0]", 0, "1 to 65535"),
            ("[8080, 70000]", 1, "1 to 65535"),
            ("[8080, 8080]", 1, "listed twice"),
        ] {
            let (field, line, text) = error(&format!("executor = \"service\"\nports = {ports}\n"));
            assert_eq!(field, format!("component.shop.ports[{index}]"), "{ports}");
            assert_eq!(line, 11);
            assert!(text.contains(needle), "{ports}: {text}");
        }
        let (field, _, text) = error("executor = \"service\"\nports = []\n");
        assert_eq!(field, "component.shop.ports");
        assert!(text.contains("at least one"), "{text}");
    }

    #[test]
    fn replicas_out_of_range_are_refused() {
        for replicas in ["0", "65", "-1"] {
            let (field, line, text) = error(&format!(
                "executor = \"service\"\nports = [8080]\nreplicas = {replicas}\n"
            ));
            assert_eq!(field, "component.shop.replicas");
            assert_eq!(line, 12);
            assert!(text.contains("between 1 and 64"), "{text}");
        }
    }

    #[test]
    fn service_settings_on_other_executors_are_refused() {
        let (field, _, text) = error("ports = [8080]\n");
        assert_eq!(field, "component.shop.ports");
        assert!(
            text.contains("executor = \\\"service\\\" only") || text.contains("service\" only")
        );
        let (field, _, _) = error("executor = \"wagi\"\nreplicas = 2\n");
        assert_eq!(field, "component.shop.replicas");
        let (field, _, text) = error("allowed_outbound_hosts = [\"mysql://db.internal:3306\"]\n");
        assert_eq!(field, "component.shop.allowed_outbound_hosts[0]");
        assert!(text.contains("other schemes"), "{text}");
    }

    #[test]
    fn per_request_budgets_are_refused_on_services() {
        for (limit, field) in [
            ("fuel = 1000", "fuel"),
            ("max_host_calls = 10", "max_host_calls"),
        ] {
            let (got, _, text) = error(&format!(
                "executor = \"service\"\nports = [8080]\n[component.shop.limits]\n{limit}\n"
            ));
            assert_eq!(got, format!("component.shop.limits.{field}"));
            assert!(text.contains("service"), "{text}");
        }
    }

    #[test]
    fn the_unknown_executor_message_lists_service() {
        let (field, _, text) = error("executor = \"daemon\"\n");
        assert_eq!(field, "component.shop.executor");
        assert!(text.contains("service"), "{text}");
    }
}
