//! argv for a WAGI guest: the manifest's template with `${SCRIPT_NAME}` replaced by the script
//! path and `${ARGS}` expanded to the query's `&`-separated items (raw, one argument each), as
//! WAGI did.

pub fn expand(template: &str, script_name: &str, query: &str) -> Vec<String> {
    let mut argv = Vec::new();
    for word in template.split_whitespace() {
        if word == "${ARGS}" {
            argv.extend(
                query
                    .split('&')
                    .filter(|item| !item.is_empty())
                    .map(str::to_string),
            );
        } else {
            argv.push(word.replace("${SCRIPT_NAME}", script_name));
        }
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_template_is_script_then_query_items() {
        assert_eq!(
            expand("${SCRIPT_NAME} ${ARGS}", "/cgi", "a=1&b&c=%20"),
            ["/cgi", "a=1", "b", "c=%20"]
        );
    }

    #[test]
    fn empty_query_gives_only_the_script() {
        assert_eq!(expand("${SCRIPT_NAME} ${ARGS}", "/cgi", ""), ["/cgi"]);
        assert_eq!(expand("${SCRIPT_NAME} ${ARGS}", "/cgi", "&&"), ["/cgi"]);
    }

    #[test]
    fn custom_templates_keep_literal_words() {
        assert_eq!(
            expand("tool --mode=cgi ${ARGS} --from=${SCRIPT_NAME}", "/x", "q"),
            ["tool", "--mode=cgi", "q", "--from=/x"]
        );
    }
}
