//! One pass over the binary: sections at every depth, top-level imports and
//! exports, and custom sections.

use wasmparser::types::TypesRef;
use wasmparser::{
    BinaryReaderError, ComponentExternalKind, Encoding, ExternalKind, Parser, Payload, TypeRef,
};

use crate::custom;
use crate::report::{CustomSection, Export, Import, ItemKind, Section, WasmKind};
use crate::signatures;

/// Everything the walk finds; the caller adds the world.
pub(crate) struct Contents {
    pub kind: WasmKind,
    pub version: u16,
    pub sections: Vec<Section>,
    pub imports: Vec<Import>,
    pub exports: Vec<Export>,
    pub custom_sections: Vec<CustomSection>,
}

/// A module or component being walked: the top level or a nested one.
struct Unit {
    location: String,
    depth: usize,
    modules: u32,
    components: u32,
}

impl Unit {
    fn top_level() -> Unit {
        Unit {
            location: TOP_LEVEL.to_string(),
            depth: 0,
            modules: 0,
            components: 0,
        }
    }

    /// The next module or component nested in this one.
    fn child(&mut self, kind: WasmKind) -> Unit {
        let (label, counter) = match kind {
            WasmKind::CoreModule => ("module", &mut self.modules),
            WasmKind::Component => ("component", &mut self.components),
        };
        let ordinal = *counter;
        *counter = counter.saturating_add(1);
        let depth = self.depth.saturating_add(1);
        let location = if depth == 1 {
            format!("{label} {ordinal}")
        } else if depth <= MAX_PATH_DEPTH {
            format!("{} / {label} {ordinal}", self.location)
        } else {
            // Full paths would make a deeply nested binary cost quadratic
            // memory; past this depth only the last step is named.
            format!("{label} {ordinal} at depth {depth}")
        };
        Unit {
            location,
            depth,
            modules: 0,
            components: 0,
        }
    }
}

const TOP_LEVEL: &str = "top level";

/// Nesting depth up to which locations spell out the whole path.
const MAX_PATH_DEPTH: usize = 8;

/// Walks `bytes`, which must already have been validated. `types` is the
/// validator's view of the top level; for a core module it describes the
/// types of its imports and exports.
///
/// Nesting is tracked with an explicit stack (as `Parser::parse_all` does), so
/// deeply nested components cannot overflow the call stack.
pub(crate) fn walk(bytes: &[u8], types: TypesRef<'_>) -> Result<Contents, BinaryReaderError> {
    let mut contents = Contents {
        kind: WasmKind::CoreModule,
        version: 0,
        sections: Vec::new(),
        imports: Vec::new(),
        exports: Vec::new(),
        custom_sections: Vec::new(),
    };
    let mut stack: Vec<Unit> = Vec::new();

    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload?;
        let depth = stack.len().saturating_sub(1);
        let top_level = stack.len() == 1;

        match &payload {
            Payload::Version { num, encoding, .. } => {
                // Nested units were pushed when their section was seen.
                if stack.is_empty() {
                    contents.kind = kind_of(*encoding);
                    contents.version = *num;
                    stack.push(Unit::top_level());
                }
                continue;
            }
            Payload::End(_) => {
                stack.pop();
                continue;
            }
            _ => {}
        }

        let Some((_, range)) = payload.as_section() else {
            // Function bodies inside the code section.
            continue;
        };
        let Some(unit) = stack.last_mut() else {
            continue;
        };
        let location = unit.location.clone();
        let nested = match &payload {
            Payload::ModuleSection { .. } => Some(WasmKind::CoreModule),
            Payload::ComponentSection { .. } => Some(WasmKind::Component),
            _ => None,
        };
        let child = nested.map(|kind| unit.child(kind));

        let mut section = Section {
            name: section_name(&payload),
            custom_name: None,
            depth,
            location: location.clone(),
            offset: range.start,
            size: range.len(),
            items: item_count(&payload),
            contains: nested,
        };

        match payload {
            Payload::CustomSection(reader) => {
                section.custom_name = Some(reader.name().to_string());
                contents.custom_sections.push(CustomSection {
                    name: reader.name().to_string(),
                    location,
                    depth,
                    size: range.len(),
                    details: custom::details(&reader),
                });
            }
            Payload::ImportSection(reader) if top_level => {
                for import in reader.into_imports() {
                    let import = import?;
                    contents.imports.push(Import {
                        module: Some(import.module.to_string()),
                        name: import.name.to_string(),
                        kind: type_ref_kind(import.ty),
                        ty: types
                            .entity_type_from_import(&import)
                            .map(|ty| signatures::describe(types, ty)),
                    });
                }
            }
            Payload::ExportSection(reader) if top_level => {
                for export in reader {
                    let export = export?;
                    contents.exports.push(Export {
                        name: export.name.to_string(),
                        kind: external_kind(export.kind),
                        ty: types
                            .entity_type_from_export(&export)
                            .map(|ty| signatures::describe(types, ty)),
                    });
                }
            }
            Payload::ComponentImportSection(reader) if top_level => {
                for import in reader {
                    let import = import?;
                    contents.imports.push(Import {
                        module: None,
                        name: import.name.name.to_string(),
                        kind: component_kind(import.ty.kind()),
                        ty: None,
                    });
                }
            }
            Payload::ComponentExportSection(reader) if top_level => {
                for export in reader {
                    let export = export?;
                    contents.exports.push(Export {
                        name: export.name.name.to_string(),
                        kind: component_kind(export.kind),
                        ty: None,
                    });
                }
            }
            _ => {}
        }
        contents.sections.push(section);

        if let Some(child) = child {
            stack.push(child);
        }
    }
    Ok(contents)
}

fn kind_of(encoding: Encoding) -> WasmKind {
    match encoding {
        Encoding::Module => WasmKind::CoreModule,
        Encoding::Component => WasmKind::Component,
    }
}

/// Names sections by what they hold; core and component sections share ids,
/// so the payload variant, not the id, decides.
fn section_name(payload: &Payload<'_>) -> &'static str {
    match payload {
        Payload::TypeSection(_) => "type",
        Payload::ImportSection(_) => "import",
        Payload::FunctionSection(_) => "function",
        Payload::TableSection(_) => "table",
        Payload::MemorySection(_) => "memory",
        Payload::TagSection(_) => "tag",
        Payload::GlobalSection(_) => "global",
        Payload::ExportSection(_) => "export",
        Payload::StartSection { .. } => "start",
        Payload::ElementSection(_) => "element",
        Payload::DataCountSection { .. } => "data count",
        Payload::DataSection(_) => "data",
        Payload::CodeSectionStart { .. } => "code",
        Payload::ModuleSection { .. } => "core module",
        Payload::InstanceSection(_) => "core instance",
        Payload::CoreTypeSection(_) => "core type",
        Payload::ComponentSection { .. } => "component",
        Payload::ComponentInstanceSection(_) => "instance",
        Payload::ComponentAliasSection(_) => "alias",
        Payload::ComponentTypeSection(_) => "type",
        Payload::ComponentCanonicalSection(_) => "canonical",
        Payload::ComponentStartSection { .. } => "start",
        Payload::ComponentImportSection(_) => "import",
        Payload::ComponentExportSection(_) => "export",
        Payload::CustomSection(_) => "custom",
        _ => "unknown",
    }
}

/// The entry count of sections that are a vector of items.
fn item_count(payload: &Payload<'_>) -> Option<u32> {
    Some(match payload {
        Payload::TypeSection(s) => s.count(),
        Payload::ImportSection(s) => s.count(),
        Payload::FunctionSection(s) => s.count(),
        Payload::TableSection(s) => s.count(),
        Payload::MemorySection(s) => s.count(),
        Payload::TagSection(s) => s.count(),
        Payload::GlobalSection(s) => s.count(),
        Payload::ExportSection(s) => s.count(),
        Payload::ElementSection(s) => s.count(),
        Payload::DataSection(s) => s.count(),
        Payload::CodeSectionStart { count, .. } => *count,
        Payload::InstanceSection(s) => s.count(),
        Payload::CoreTypeSection(s) => s.count(),
        Payload::ComponentInstanceSection(s) => s.count(),
        Payload::ComponentAliasSection(s) => s.count(),
        Payload::ComponentTypeSection(s) => s.count(),
        Payload::ComponentCanonicalSection(s) => s.count(),
        Payload::ComponentImportSection(s) => s.count(),
        Payload::ComponentExportSection(s) => s.count(),
        _ => return None,
    })
}

fn type_ref_kind(ty: TypeRef) -> ItemKind {
    match ty {
        TypeRef::Func(_) | TypeRef::FuncExact(_) => ItemKind::Func,
        TypeRef::Table(_) => ItemKind::Table,
        TypeRef::Memory(_) => ItemKind::Memory,
        TypeRef::Global(_) => ItemKind::Global,
        TypeRef::Tag(_) => ItemKind::Tag,
    }
}

fn external_kind(kind: ExternalKind) -> ItemKind {
    match kind {
        ExternalKind::Func | ExternalKind::FuncExact => ItemKind::Func,
        ExternalKind::Table => ItemKind::Table,
        ExternalKind::Memory => ItemKind::Memory,
        ExternalKind::Global => ItemKind::Global,
        ExternalKind::Tag => ItemKind::Tag,
    }
}

fn component_kind(kind: ComponentExternalKind) -> ItemKind {
    match kind {
        ComponentExternalKind::Module => ItemKind::Module,
        ComponentExternalKind::Func => ItemKind::Func,
        ComponentExternalKind::Value => ItemKind::Value,
        ComponentExternalKind::Type => ItemKind::Type,
        ComponentExternalKind::Instance => ItemKind::Instance,
        ComponentExternalKind::Component => ItemKind::Component,
    }
}
