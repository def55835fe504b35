//! A component's WIT world, decoded by `wit-component`, and its WIT text.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{PackageId, Resolve, WorldId, WorldKey};

use crate::report::{World, WorldItem, WorldItemKind};

/// What decoding a component's WIT gave.
#[derive(Default)]
pub(crate) struct Decoded {
    pub world: Option<World>,
    pub error: Option<String>,
    pub wit: Option<String>,
}

/// Decodes the world of the component `bytes`, which must already have been
/// validated as a component.
///
/// Failure is not an error for the report as a whole: a valid component whose
/// world cannot be expressed in WIT (say, one exporting a core module) is
/// still described, with [`Decoded::error`] saying why there is no world.
pub(crate) fn decode(bytes: &[u8]) -> Decoded {
    // Some valid components reach `unreachable!()` in the decoder (for
    // example a bare function imported under an interface name such as
    // `a:b/c`). That must cost the report its world, not the process.
    match quiet_catch_unwind(|| decode_unguarded(bytes)) {
        Ok(decoded) => decoded,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str));
            Decoded {
                error: Some(match message {
                    Some(message) => {
                        format!("the WIT decoder failed on this component ({message})")
                    }
                    None => "the WIT decoder failed on this component".to_string(),
                }),
                ..Decoded::default()
            }
        }
    }
}

thread_local! {
    static SILENCE_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// `catch_unwind` without the panic message on stderr: the failure is
/// reported in the world section instead. Only panics on this thread while
/// `f` runs are silenced; every other panic goes to the hook that was
/// installed before (the default one, unless the program changed it first).
fn quiet_catch_unwind<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !SILENCE_PANICS.with(Cell::get) {
                previous(info);
            }
        }));
    });
    SILENCE_PANICS.with(|silence| silence.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    SILENCE_PANICS.with(|silence| silence.set(false));
    result
}

fn decode_unguarded(bytes: &[u8]) -> Decoded {
    match wit_component::decode(bytes) {
        Ok(DecodedWasm::Component(resolve, world)) => {
            let package = resolve.worlds[world].package;
            Decoded {
                world: Some(describe_world(&resolve, world)),
                error: None,
                wit: package.and_then(|package| print_wit(&resolve, package)),
            }
        }
        Ok(DecodedWasm::WitPackage(resolve, package)) => Decoded {
            world: None,
            error: Some(format!(
                "this component is the WIT package `{}` encoded as WebAssembly, \
                 not a runnable component",
                resolve.packages[package].name
            )),
            wit: print_wit(&resolve, package),
        },
        Err(err) => Decoded {
            world: None,
            error: Some(format!("{err:#}")),
            wit: None,
        },
    }
}

fn describe_world(resolve: &Resolve, id: WorldId) -> World {
    let world = &resolve.worlds[id];
    let name = match world.package {
        Some(package) => {
            let package = &resolve.packages[package].name;
            let base = format!("{}:{}/{}", package.namespace, package.name, world.name);
            match &package.version {
                Some(version) => format!("{base}@{version}"),
                None => base,
            }
        }
        None => world.name.clone(),
    };
    World {
        name,
        imports: world_items(resolve, world.imports.iter()),
        exports: world_items(resolve, world.exports.iter()),
    }
}

fn world_items<'a>(
    resolve: &Resolve,
    items: impl Iterator<Item = (&'a WorldKey, &'a wit_parser::WorldItem)>,
) -> Vec<WorldItem> {
    items
        .map(|(key, item)| WorldItem {
            name: key_name(resolve, key),
            kind: match item {
                wit_parser::WorldItem::Interface { .. } => WorldItemKind::Interface,
                wit_parser::WorldItem::Function(_) => WorldItemKind::Function,
                wit_parser::WorldItem::Type { .. } => WorldItemKind::Type,
            },
        })
        .collect()
}

/// The full name of a world import or export, e.g.
/// `wasi:http/incoming-handler@0.2.0`, as [`Resolve::name_world_key`] gives
/// it, minus its panic on an interface without a name or package.
fn key_name(resolve: &Resolve, key: &WorldKey) -> String {
    if let WorldKey::Interface(id) = key {
        let interface = &resolve.interfaces[*id];
        if interface.name.is_none() || interface.package.is_none() {
            return "(unnamed interface)".to_string();
        }
    }
    resolve.name_world_key(key)
}

/// The WIT text of `main` followed by every other package it refers to, in
/// nested `package ... { }` form, as `wasm-tools component wit` prints it.
fn print_wit(resolve: &Resolve, main: PackageId) -> Option<String> {
    let others: Vec<PackageId> = resolve
        .packages
        .iter()
        .map(|(id, _)| id)
        .filter(|id| *id != main)
        .collect();
    let mut printer = WitPrinter::default();
    printer.print(resolve, main, &others).ok()?;
    Some(printer.output.to_string().trim_end().to_string())
}
