//! The description of one WebAssembly file, as plain data.
//!
//! Everything here is filled in by [`inspect`](crate::inspect); how it is
//! printed lives in `display.rs`.

/// Whether a binary (or a binary nested inside a component) is a core module
/// or a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A core WebAssembly module.
    CoreModule,
    /// A component-model component.
    Component,
}

impl WasmKind {
    /// `"core module"` or `"component"`.
    pub fn as_str(self) -> &'static str {
        match self {
            WasmKind::CoreModule => "core module",
            WasmKind::Component => "component",
        }
    }
}

/// What one WebAssembly file is and what it contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Core module or component.
    pub kind: WasmKind,
    /// The version field of the binary header (1 for core modules, 0xd for
    /// components at the time of writing).
    pub version: u16,
    /// Size of the whole file in bytes.
    pub size: usize,
    /// Every section in file order, including the sections of core modules and
    /// components nested in a component (those have `depth > 0` and follow the
    /// `core module` / `component` section that contains them).
    pub sections: Vec<Section>,
    /// Top-level imports, in declaration order.
    pub imports: Vec<Import>,
    /// Top-level exports, in declaration order.
    pub exports: Vec<Export>,
    /// Custom sections at every nesting depth, in file order.
    pub custom_sections: Vec<CustomSection>,
    /// The component's WIT world; `None` for core modules and for components
    /// whose world could not be decoded (see [`Report::world_error`]).
    pub world: Option<World>,
    /// Why a component has no [`Report::world`]; `None` for core modules and
    /// when the world was decoded.
    pub world_error: Option<String>,
    pub(crate) wit: Option<String>,
}

impl Report {
    /// The full WIT text (every package, interface and type) of a component
    /// whose world could be decoded.
    pub fn wit_text(&self) -> Option<&str> {
        self.wit.as_deref()
    }
}

/// One section of a module or component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// What the section holds: `"type"`, `"code"`, `"core module"`,
    /// `"custom"`, ... (component sections that mirror a core section are
    /// named after the component meaning: `"core type"` vs `"type"`).
    pub name: &'static str,
    /// For custom sections, the custom section's own name.
    pub custom_name: Option<String>,
    /// 0 for top-level sections, 1 for sections of a module or component
    /// nested directly in the top-level component, and so on.
    pub depth: usize,
    /// Where the section lives: `"top level"`, `"module 0"`,
    /// `"component 1 / module 0"`, ...
    pub location: String,
    /// Byte offset of the section's contents (after its id and size).
    pub offset: usize,
    /// Size of the section's contents in bytes (without its id and size).
    pub size: usize,
    /// Number of entries for sections that are a vector of items.
    pub items: Option<u32>,
    /// For a `core module` or `component` section: what it contains. Its
    /// own sections follow it, one level deeper.
    pub contains: Option<WasmKind>,
}

/// What an import or export refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// A function (core or component).
    Func,
    /// A core table.
    Table,
    /// A core memory.
    Memory,
    /// A core global.
    Global,
    /// A core exception tag.
    Tag,
    /// A core module (component imports and exports only).
    Module,
    /// A component value.
    Value,
    /// A component type.
    Type,
    /// A component instance (an interface, in WIT terms).
    Instance,
    /// A component.
    Component,
}

impl ItemKind {
    /// The lower-case name used in the text formats: `"func"`, `"memory"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Func => "func",
            ItemKind::Table => "table",
            ItemKind::Memory => "memory",
            ItemKind::Global => "global",
            ItemKind::Tag => "tag",
            ItemKind::Module => "module",
            ItemKind::Value => "value",
            ItemKind::Type => "type",
            ItemKind::Instance => "instance",
            ItemKind::Component => "component",
        }
    }
}

/// A top-level import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The module name of a core import; `None` for component imports, which
    /// have a single name.
    pub module: Option<String>,
    /// The item name (for components, the full import name, e.g.
    /// `wasi:cli/environment@0.2.0`).
    pub name: String,
    /// What is imported.
    pub kind: ItemKind,
    /// The type in short form, e.g. `(i32, i32) -> i64`, for core imports.
    pub ty: Option<String>,
}

/// A top-level export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The export name.
    pub name: String,
    /// What is exported.
    pub kind: ItemKind,
    /// The type in short form, for core exports.
    pub ty: Option<String>,
}

/// A custom section, at any nesting depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomSection {
    /// The custom section's name, e.g. `name` or `producers`.
    pub name: String,
    /// Where the section lives, as in [`Section::location`].
    pub location: String,
    /// Nesting depth, as in [`Section::depth`].
    pub depth: usize,
    /// Size of the section's contents in bytes, including its name.
    pub size: usize,
    /// What the section says, for the custom sections this crate understands.
    pub details: CustomDetails,
}

/// The decoded contents of a well-known custom section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomDetails {
    /// A section this crate does not decode.
    None,
    /// A core `name` section.
    Name {
        /// The module's own name, if the section gives one.
        module_name: Option<String>,
        /// How many functions are named.
        function_names: u32,
    },
    /// A `component-name` section.
    ComponentName {
        /// The component's own name, if the section gives one.
        component_name: Option<String>,
        /// How many items (functions, instances, types, ...) are named.
        item_names: u32,
    },
    /// A `producers` section: the tools that made the binary.
    Producers(Vec<ProducersField>),
    /// A well-known section that could not be decoded. Custom sections are not
    /// checked by validation, so this is reported instead of failing.
    Malformed(String),
}

/// One field of a `producers` section, e.g. `processed-by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducersField {
    /// The field name: `language`, `processed-by` or `sdk`.
    pub name: String,
    /// Each value as `name version` (or just `name` without a version),
    /// e.g. `rustc 1.95.0`.
    pub values: Vec<String>,
}

/// A component's WIT world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    /// The world's fully qualified name, e.g. `root:component/root` for the
    /// world the decoder synthesizes for a component.
    pub name: String,
    /// What the component needs from its host.
    pub imports: Vec<WorldItem>,
    /// What the component provides.
    pub exports: Vec<WorldItem>,
}

/// One import or export of a [`World`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldItem {
    /// The full name, e.g. `wasi:http/incoming-handler@0.2.0` for an
    /// interface or `run` for a bare function.
    pub name: String,
    /// Interface, function or type.
    pub kind: WorldItemKind,
}

/// What a [`WorldItem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorldItemKind {
    /// A named group of functions and types.
    Interface,
    /// A function imported or exported directly.
    Function,
    /// A type.
    Type,
}

impl WorldItemKind {
    /// `"interface"`, `"func"` or `"type"`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorldItemKind::Interface => "interface",
            WorldItemKind::Function => "func",
            WorldItemKind::Type => "type",
        }
    }
}
