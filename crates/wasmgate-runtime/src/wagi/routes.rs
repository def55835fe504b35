//! WAGI's `_routes` protocol: a module exporting `_routes` prints `<route> <export>` lines;
//! each adds a sub-route, below the module's own route, served by that exported function.

use wasmgate_manifest::RoutePath;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRoute {
    /// The route as printed, relative to the module's route (`/extra`, `/extra/...`).
    pub relative: String,
    pub entrypoint: String,
}

impl SubRoute {
    /// The absolute route below `base` (the module's route without its wildcard).
    pub fn under(&self, base: &RoutePath) -> RoutePath {
        let prefix = crate::wagi::cgi_env::script_name(base);
        let full = format!("{prefix}{}", self.relative);
        match full.strip_suffix("/...") {
            Some(p) => RoutePath::Prefix(p.to_string()),
            None => RoutePath::Exact(full),
        }
    }
}

pub fn parse_routes(output: &str) -> Result<Vec<SubRoute>, String> {
    let mut routes: Vec<SubRoute> = Vec::new();
    for (index, line) in output.lines().enumerate() {
        let line_number = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(route), Some(entrypoint), None) = (words.next(), words.next(), words.next())
        else {
            return Err(format!(
                "_routes line {line_number}: expected `<route> <export>`, got {line:?}"
            ));
        };
        if !route.starts_with('/') {
            return Err(format!(
                "_routes line {line_number}: route {route:?} must start with '/'"
            ));
        }
        let base = route.strip_suffix("/...").unwrap_or(route);
        if base.contains("...") || base.contains("//") || route.contains(['?', '#']) {
            return Err(format!(
                "_routes line {line_number}: malformed route {route:?}"
            ));
        }
        if routes.iter().any(|r| r.relative == route) {
            return Err(format!(
                "_routes line {line_number}: route {route:?} listed twice"
            ));
        }
        routes.push(SubRoute {
            relative: route.to_string(),
            entrypoint: entrypoint.to_string(),
        });
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_into_sub_routes() {
        let routes = parse_routes("/extra wagi_extra\n\n/extra/... wild\n").unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].entrypoint, "wagi_extra");
        assert_eq!(
            routes[1].under(&RoutePath::Prefix("/cgi".into())),
            RoutePath::Prefix("/cgi/extra".into())
        );
        assert_eq!(
            routes[0].under(&RoutePath::Exact("/cgi".into())),
            RoutePath::Exact("/cgi/extra".into())
        );
        assert_eq!(
            routes[0].under(&RoutePath::Prefix(String::new())),
            RoutePath::Exact("/extra".into())
        );
    }

    #[test]
    fn bad_lines_name_their_number() {
        assert!(parse_routes("/a f\nnoslash g\n")
            .unwrap_err()
            .contains("line 2"));
        assert!(parse_routes("/a\n").unwrap_err().contains("line 1"));
        assert!(parse_routes("/a f extra\n")
            .unwrap_err()
            .contains("expected"));
        assert!(parse_routes("/a f\n/a g\n").unwrap_err().contains("twice"));
        assert!(parse_routes("/a/.../b f\n")
            .unwrap_err()
            .contains("malformed"));
    }
}
