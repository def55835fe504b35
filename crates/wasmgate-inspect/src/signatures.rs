//! Short, one-line descriptions of core import and export types, e.g.
//! `(i32, i32) -> i64`, `pages: min 1, max 16`, `mut i32`.

use std::fmt::Write;

use wasmparser::types::{CoreTypeId, EntityType, TypesRef};
use wasmparser::{CompositeInnerType, GlobalType, MemoryType, TableType};

/// Describes the type of a core import or export.
pub(crate) fn describe(types: TypesRef<'_>, ty: EntityType) -> String {
    match ty {
        EntityType::Func(id) | EntityType::FuncExact(id) => func(types, id),
        EntityType::Tag(id) => func(types, id),
        EntityType::Memory(memory) => describe_memory(&memory),
        EntityType::Table(table) => describe_table(&table),
        EntityType::Global(global) => describe_global(&global),
    }
}

fn func(types: TypesRef<'_>, id: CoreTypeId) -> String {
    let Some(sub) = types.get(id) else {
        return "(unknown type)".to_string();
    };
    let ty = match &sub.composite_type.inner {
        CompositeInnerType::Func(ty) => ty,
        other => return other.to_string(),
    };
    let mut out = format!("({})", join(ty.params()));
    match ty.results() {
        [] => {}
        [single] => {
            let _ = write!(out, " -> {single}");
        }
        many => {
            let _ = write!(out, " -> ({})", join(many));
        }
    }
    out
}

fn join(types: &[wasmparser::ValType]) -> String {
    types
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn limits(initial: u64, maximum: Option<u64>) -> String {
    match maximum {
        Some(max) => format!("min {initial}, max {max}"),
        None => format!("min {initial}"),
    }
}

fn describe_memory(memory: &MemoryType) -> String {
    let mut out = String::new();
    if memory.memory64 {
        out.push_str("i64 ");
    }
    let _ = write!(out, "pages: {}", limits(memory.initial, memory.maximum));
    if let Some(log2) = memory.page_size_log2.filter(|&log2| log2 != 16) {
        match 1u64.checked_shl(log2) {
            Some(bytes) => {
                let _ = write!(out, " of {bytes} B");
            }
            None => {
                let _ = write!(out, " of 2^{log2} B");
            }
        }
    }
    if memory.shared {
        out.push_str(" shared");
    }
    out
}

fn describe_table(table: &TableType) -> String {
    let mut out = table.element_type.to_string();
    if table.table64 {
        out.push_str(" i64");
    }
    let _ = write!(out, ": {}", limits(table.initial, table.maximum));
    if table.shared {
        out.push_str(" shared");
    }
    out
}

fn describe_global(global: &GlobalType) -> String {
    let mut out = String::new();
    if global.shared {
        out.push_str("shared ");
    }
    if global.mutable {
        out.push_str("mut ");
    }
    let _ = write!(out, "{}", global.content_type);
    out
}
