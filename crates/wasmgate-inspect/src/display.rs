//! The human-readable report printed by `wasmgate inspect`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use crate::report::{CustomDetails, CustomSection, Report, Section, WasmKind};
use Align::{Left, Right};

/// Nested sections are indented two spaces per level, up to this many levels.
const MAX_INDENT_LEVELS: usize = 8;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Kind:  {} (binary version {:#x})",
            self.kind.as_str(),
            self.version
        )?;
        writeln!(f, "Size:  {}", total_size(self.size))?;

        writeln!(f)?;
        self.fmt_sections(f)?;
        writeln!(f)?;
        self.fmt_imports(f)?;
        writeln!(f)?;
        self.fmt_exports(f)?;
        if self.kind == WasmKind::Component {
            writeln!(f)?;
            self.fmt_world(f)?;
        }
        writeln!(f)?;
        self.fmt_custom_sections(f)
    }
}

impl Report {
    fn fmt_sections(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Sections ({}):", self.sections.len())?;
        if self.sections.is_empty() {
            return Ok(());
        }
        let mut rows = vec![row(["section", "size", "items", "offset"])];
        rows.extend(section_rows(&self.sections).iter().map(|row| {
            let mut label = section_label(row.first);
            if row.count > 1 {
                label.push_str(&format!(" ({})", plural(row.count as u64, "section")));
            }
            vec![
                label,
                short_size(row.size),
                row.items.map(|n| n.to_string()).unwrap_or_default(),
                format!("{:#x}", row.first.offset),
            ]
        }));
        write_table(f, &[Left, Right, Right, Right], &rows)
    }

    fn fmt_imports(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Imports ({}):", self.imports.len())?;
        let rows: Vec<Vec<String>> = self
            .imports
            .iter()
            .map(|import| {
                let mut cells = vec![import.kind.as_str().to_string()];
                if let Some(module) = &import.module {
                    cells.push(printable(module).into_owned());
                }
                cells.push(printable(&import.name).into_owned());
                cells.push(import.ty.clone().unwrap_or_default());
                cells
            })
            .collect();
        write_table(f, &[Left, Left, Left, Left], &rows)
    }

    fn fmt_exports(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Exports ({}):", self.exports.len())?;
        let rows: Vec<Vec<String>> = self
            .exports
            .iter()
            .map(|export| {
                vec![
                    export.kind.as_str().to_string(),
                    printable(&export.name).into_owned(),
                    export.ty.clone().unwrap_or_default(),
                ]
            })
            .collect();
        write_table(f, &[Left, Left, Left], &rows)
    }

    fn fmt_world(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(world) = &self.world else {
            let why = self.world_error.as_deref().unwrap_or("unknown reason");
            return writeln!(f, "World: could not be decoded: {}", printable(why));
        };
        writeln!(f, "World {}:", printable(&world.name))?;
        let imports = world.imports.iter().map(|item| ("import", item));
        let exports = world.exports.iter().map(|item| ("export", item));
        let rows: Vec<Vec<String>> = imports
            .chain(exports)
            .map(|(direction, item)| {
                vec![
                    direction.to_string(),
                    item.kind.as_str().to_string(),
                    printable(&item.name).into_owned(),
                ]
            })
            .collect();
        if rows.is_empty() {
            return writeln!(f, "  (no imports or exports)");
        }
        write_table(f, &[Left, Left, Left], &rows)
    }

    fn fmt_custom_sections(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Custom sections ({}):", self.custom_sections.len())?;
        if self.custom_sections.is_empty() {
            return Ok(());
        }
        let mut rows = vec![row(["section", "in", "size", "details"])];
        for custom in &self.custom_sections {
            let mut details = details_lines(custom).into_iter();
            rows.push(vec![
                printable(&custom.name).into_owned(),
                custom.location.clone(),
                short_size(custom.size),
                details.next().unwrap_or_default(),
            ]);
            // Further lines (more producers) go under the first one.
            rows.extend(
                details.map(|line| vec![String::new(), String::new(), String::new(), line]),
            );
        }
        write_table(f, &[Left, Left, Right, Left], &rows)
    }
}

/// One line of the sections table: a section, or all the sections of one
/// kind in the same module or component.
struct SectionRow<'a> {
    first: &'a Section,
    count: usize,
    size: usize,
    items: Option<u64>,
}

/// Components made by `wit-component` interleave dozens of small `type`,
/// `import`, `alias` and `canonical` sections; listing each would push the
/// interesting part of the report off the screen. So repeated sections of one
/// kind in the same module or component are shown once, where the first one
/// is, with their count and total size. Custom sections and nested modules
/// and components keep a line each.
fn section_rows(sections: &[Section]) -> Vec<SectionRow<'_>> {
    let mut rows: Vec<SectionRow<'_>> = Vec::new();
    // The row already showing each (unit, section kind).
    let mut shown: HashMap<(usize, &'static str), usize> = HashMap::new();
    // The id of the module or component open at each depth.
    let mut open_units = vec![0];
    let mut next_unit = 1;
    for section in sections {
        open_units.truncate(section.depth + 1);
        let unit = open_units.get(section.depth).copied().unwrap_or(0);
        let mergeable = section.custom_name.is_none() && section.contains.is_none();
        if mergeable {
            if let Some(row) = shown
                .get(&(unit, section.name))
                .and_then(|&i| rows.get_mut(i))
            {
                row.count += 1;
                row.size = row.size.saturating_add(section.size);
                row.items = match (row.items, section.items) {
                    (Some(a), Some(b)) => Some(a.saturating_add(u64::from(b))),
                    (a, b) => a.or(b.map(u64::from)),
                };
                continue;
            }
            shown.insert((unit, section.name), rows.len());
        }
        rows.push(SectionRow {
            first: section,
            count: 1,
            size: section.size,
            items: section.items.map(u64::from),
        });
        if section.contains.is_some() {
            open_units.push(next_unit);
            next_unit += 1;
        }
    }
    rows
}

fn section_label(section: &Section) -> String {
    let indent = "  ".repeat(section.depth.min(MAX_INDENT_LEVELS));
    match &section.custom_name {
        Some(name) => format!("{indent}custom \"{}\"", printable(name)),
        None => format!("{indent}{}", section.name),
    }
}

fn details_lines(custom: &CustomSection) -> Vec<String> {
    match &custom.details {
        CustomDetails::None => Vec::new(),
        CustomDetails::Name {
            module_name,
            function_names,
        } => {
            let count = plural(u64::from(*function_names), "function name");
            vec![match module_name {
                Some(name) => format!("module \"{}\", {count}", printable(name)),
                None => count,
            }]
        }
        CustomDetails::ComponentName {
            component_name,
            item_names,
        } => {
            let count = plural(u64::from(*item_names), "item name");
            vec![match component_name {
                Some(name) => format!("component \"{}\", {count}", printable(name)),
                None => count,
            }]
        }
        CustomDetails::Producers(fields) => {
            // `processed-by: rustc 1.95.0`, further values aligned under the
            // first one.
            let mut lines = Vec::new();
            for field in fields {
                let name = printable(&field.name);
                let mut values = field.values.iter().map(|value| printable(value));
                lines.push(format!("{name}: {}", values.next().unwrap_or_default()));
                let indent = " ".repeat(name.chars().count() + 2);
                lines.extend(values.map(|value| format!("{indent}{value}")));
            }
            lines
        }
        CustomDetails::Malformed(why) => vec![format!("malformed: {why}")],
    }
}

/// How a table column lines up its cells.
#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|cell| cell.to_string()).collect()
}

/// Writes `rows` indented by two spaces, each column as wide as its widest
/// cell and separated by two spaces. A row shorter than `align` just ends
/// early.
fn write_table(f: &mut fmt::Formatter<'_>, align: &[Align], rows: &[Vec<String>]) -> fmt::Result {
    let mut widths = vec![0; align.len()];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::from(" ");
        for ((cell, width), align) in row.iter().zip(&widths).zip(align) {
            line.push(' ');
            match align {
                Left => line.push_str(&format!("{cell:<width$}")),
                Right => line.push_str(&format!("{cell:>width$}")),
            }
            line.push(' ');
        }
        writeln!(f, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Replaces control characters (which could, say, drive the terminal) in
/// names taken from the binary with their escaped form.
fn printable(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// `1 section`, `3 sections`.
fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// `395 B`, `12.3 KiB`, `4.0 MiB`.
fn short_size(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `395 bytes` or `12.3 KiB (12,595 bytes)`.
fn total_size(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{} ({} bytes)", short_size(bytes), thousands(bytes))
    }
}

/// `12595` -> `12,595`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(total_size(395), "395 bytes");
        assert_eq!(total_size(12_595), "12.3 KiB (12,595 bytes)");
        assert_eq!(total_size(4 * 1024 * 1024), "4.0 MiB (4,194,304 bytes)");
        assert_eq!(short_size(1023), "1023 B");
        assert_eq!(short_size(1536), "1.5 KiB");
    }

    #[test]
    fn control_characters_in_names_are_escaped() {
        assert_eq!(printable("plain-name"), "plain-name");
        assert_eq!(printable("evil\u{1b}[2J"), "evil\\u{1b}[2J");
    }
}
