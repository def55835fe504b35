//! The capability parts of a component (outbound hosts, stores, databases, variables) and the
//! app's variables: each value checked where it was written.

use super::Source;
use crate::error::ManifestError;
use crate::model::{Template, TemplatePart, Variable};
use crate::outbound::OutboundHost;
use crate::raw::{RawComponent, RawVariable};
use std::collections::BTreeMap;
use toml::Spanned;

/// What a component was granted, validated.
pub(crate) struct Grants {
    pub allowed_outbound_hosts: Vec<OutboundHost>,
    pub key_value_stores: Vec<String>,
    pub sql_databases: Vec<String>,
    pub variables: BTreeMap<String, Template>,
}

impl Source<'_> {
    pub(crate) fn app_variables(
        &self,
        raw: &BTreeMap<String, Spanned<RawVariable>>,
    ) -> Result<BTreeMap<String, Variable>, ManifestError> {
        let mut variables = BTreeMap::new();
        for (name, spanned) in raw {
            let field = format!("variables.{name}");
            if !is_variable_name(name) {
                return Err(self.error(spanned.span(), &field, VARIABLE_NAME_RULE));
            }
            let var = spanned.get_ref();
            if let Some(default) = &var.default {
                if var.required {
                    return Err(self.error(
                        default.span(),
                        &format!("{field}.default"),
                        "a required variable has no default; drop one of the two",
                    ));
                }
                if var.secret {
                    return Err(self.error(
                        default.span(),
                        &format!("{field}.default"),
                        "a secret cannot have a default in the manifest; provide it through the \
                         environment or the runtime config",
                    ));
                }
            }
            variables.insert(
                name.clone(),
                Variable {
                    default: var.default.as_ref().map(|d| d.get_ref().clone()),
                    required: var.required,
                    secret: var.secret,
                },
            );
        }
        Ok(variables)
    }

    pub(crate) fn grants(
        &self,
        raw: &RawComponent,
        field: &str,
        app_variables: &BTreeMap<String, Variable>,
    ) -> Result<Grants, ManifestError> {
        let mut allowed_outbound_hosts = Vec::with_capacity(raw.allowed_outbound_hosts.len());
        for (index, pattern) in raw.allowed_outbound_hosts.iter().enumerate() {
            let host = OutboundHost::parse(pattern.get_ref()).map_err(|message| {
                self.error(
                    pattern.span(),
                    &format!("{field}.allowed_outbound_hosts[{index}]"),
                    message,
                )
            })?;
            allowed_outbound_hosts.push(host);
        }
        let key_value_stores =
            self.names(&raw.key_value_stores, &format!("{field}.key_value_stores"))?;
        let sql_databases = self.names(&raw.sql_databases, &format!("{field}.sql_databases"))?;
        let mut variables = BTreeMap::new();
        for (key, value) in &raw.variables {
            let key_field = format!("{field}.variables.{key}");
            if !is_variable_name(key) {
                return Err(self.error(value.span(), &key_field, VARIABLE_NAME_RULE));
            }
            let template = parse_template(value.get_ref())
                .map_err(|message| self.error(value.span(), &key_field, message))?;
            if let Some(missing) = template
                .references()
                .find(|name| !app_variables.contains_key(*name))
            {
                return Err(self.error(
                    value.span(),
                    &key_field,
                    format!("no app variable named {missing:?}; declare it under [variables]"),
                ));
            }
            variables.insert(key.clone(), template);
        }
        Ok(Grants {
            allowed_outbound_hosts,
            key_value_stores,
            sql_databases,
            variables,
        })
    }

    /// Store or database names: identifiers, each listed once.
    fn names(&self, raw: &[Spanned<String>], field: &str) -> Result<Vec<String>, ManifestError> {
        let mut names: Vec<String> = Vec::with_capacity(raw.len());
        for (index, name) in raw.iter().enumerate() {
            let text = name.get_ref();
            let item = format!("{field}[{index}]");
            if !super::is_identifier(text) {
                return Err(self.error(
                    name.span(),
                    &item,
                    "a name must use only letters, digits, '-', '_' and '.'",
                ));
            }
            if names.contains(text) {
                return Err(self.error(name.span(), &item, format!("{text:?} is listed twice")));
            }
            names.push(text.clone());
        }
        Ok(names)
    }
}

const VARIABLE_NAME_RULE: &str =
    "a variable name starts with a lowercase letter and uses only lowercase letters, digits and '_'";

/// Variable names map onto environment variables (`WASMGATE_VAR_<NAME>`), so they are kept
/// to what an environment variable name can hold once upper-cased.
pub(crate) fn is_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Splits `text` at `{{ name }}` references. A literal `{{` is not supported; nothing needs it.
pub(crate) fn parse_template(text: &str) -> Result<Template, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(TemplatePart::Literal(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "unclosed \"{{\"; a reference is written {{ name }}".to_string())?;
        let name = after[..end].trim();
        if !is_variable_name(name) {
            return Err(format!(
                "invalid reference {{{{ {name} }}}}: {VARIABLE_NAME_RULE}"
            ));
        }
        parts.push(TemplatePart::Variable(name.to_string()));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err("\"}}\" without an opening \"{{\"".to_string());
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Literal(rest.to_string()));
    }
    Ok(Template { parts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = parse_template("postgres://{{ db_host }}:{{port}}/app").unwrap();
        assert_eq!(t.references().collect::<Vec<_>>(), ["db_host", "port"]);
        let rendered = t.render(|name| Some(name.to_uppercase())).unwrap();
        assert_eq!(rendered, "postgres://DB_HOST:PORT/app");
        assert_eq!(
            parse_template("plain").unwrap().render(|_| None).unwrap(),
            "plain"
        );
        assert_eq!(parse_template("").unwrap().render(|_| None).unwrap(), "");
        assert!(t.render(|_| None).is_none());
        assert!(parse_template("{{ open").unwrap_err().contains("unclosed"));
        assert!(parse_template("{{ Bad }}")
            .unwrap_err()
            .contains("invalid reference"));
        assert!(parse_template("a }} b")
            .unwrap_err()
            .contains("without an opening"));
    }
}
