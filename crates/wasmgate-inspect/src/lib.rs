//! Describes a WebAssembly binary for `wasmgate inspect FILE.wasm`.
//!
//! This crate owns turning the bytes of a core module or component into a
//! [`Report`]: what the file is, its sections (including those of modules and
//! components nested in a component), its top-level imports and exports, its
//! custom sections (with the contents of `name`, `component-name` and
//! `producers`), and for a component its WIT world and full WIT text. The
//! [`Display`](std::fmt::Display) impl of [`Report`] is the text the CLI
//! prints; the CLI itself only reads the file and prints.
//!
//! Parsing and validation are `wasmparser`'s, WIT decoding and printing are
//! `wit-component`'s; this crate only collects and presents what they find.
//! Nothing here runs or compiles the code.
//!
//! Input is untrusted: every problem with it is an [`InspectError`] carrying
//! the byte offset of the problem, never a panic.

mod custom;
mod display;
mod error;
mod report;
mod sections;
mod signatures;
mod world;

pub use error::InspectError;
pub use report::{
    CustomDetails, CustomSection, Export, Import, ItemKind, ProducersField, Report, Section,
    WasmKind, World, WorldItem, WorldItemKind,
};

use wasmparser::{Validator, WasmFeatures};

/// Describes the WebAssembly binary `bytes`, a core module or a component.
///
/// The whole binary is validated first, with every feature `wasmparser`
/// knows enabled (a superset of what wasmtime accepts by default): the report
/// says what a file is, not whether this server will run it.
///
/// For a component whose WIT world cannot be decoded the report is still
/// returned, with [`Report::world`] empty and [`Report::world_error`] saying
/// why.
pub fn inspect(bytes: &[u8]) -> Result<Report, InspectError> {
    error::check_magic(bytes)?;

    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let types = validator.validate_all(bytes)?;
    let contents = sections::walk(bytes, types.as_ref())?;

    let decoded = match contents.kind {
        WasmKind::Component => world::decode(bytes),
        WasmKind::CoreModule => world::Decoded::default(),
    };

    Ok(Report {
        kind: contents.kind,
        version: contents.version,
        size: bytes.len(),
        sections: contents.sections,
        imports: contents.imports,
        exports: contents.exports,
        custom_sections: contents.custom_sections,
        world: decoded.world,
        world_error: decoded.error,
        wit: decoded.wit,
    })
}

#[cfg(test)]
mod tests;
