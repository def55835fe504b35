//! Byte offsets to human positions, and the source excerpt shown under an error.

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

pub fn position(text: &str, offset: usize) -> Position {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    Position { line, column }
}

/// The source line at `span.start` with a caret marker under the span, for error messages.
pub fn excerpt(text: &str, span: std::ops::Range<usize>) -> String {
    let start = floor_char_boundary(text, span.start.min(text.len()));
    let pos = position(text, start);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_text = text[line_start..line_end].trim_end_matches('\r');
    let end = floor_char_boundary(text, span.end.clamp(start, line_end));
    let width = text[start..end].chars().count().max(1);
    let gutter = pos.line.to_string().len();
    format!(
        "{:gutter$} |\n{} | {}\n{:gutter$} | {}{}",
        "",
        pos.line,
        line_text,
        "",
        " ".repeat(pos.column - 1),
        "^".repeat(width),
    )
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(position(text, 0), Position { line: 1, column: 1 });
        assert_eq!(position(text, 6), Position { line: 2, column: 1 });
        // "bé = " is 6 bytes but 5 characters.
        assert_eq!(position(text, 12), Position { line: 2, column: 6 });
    }

    #[test]
    fn excerpt_underlines_the_span() {
        let text = "[app]\ntimeout = \"10x\"\n";
        let shown = excerpt(text, 16..21);
        assert!(shown.contains("2 | timeout = \"10x\""), "{shown}");
        assert!(shown.ends_with("|           ^^^^^"), "{shown}");
    }
}
