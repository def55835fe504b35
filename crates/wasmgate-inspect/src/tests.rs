//! What `wasmgate inspect` tells a user about modules, components and broken
//! input. Inputs are built from WAT so the tests do not depend on a toolchain.

use super::*;

/// A core module with imports of three kinds, exports of three kinds, a `name`
/// section (from the `$demo` / `$log` / ... identifiers) and a `producers`
/// section.
const CORE_WAT: &str = r#"
(module $demo
  (@producers (language "Rust" "") (processed-by "rustc" "1.95.0"))
  (type $binop (func (param i32 i32) (result i32)))
  (import "env" "log" (func $log (param i32 i32)))
  (import "env" "memory" (memory 1))
  (import "env" "table" (table 1 10 funcref))
  (global $counter (mut i32) (i32.const 0))
  (func $add (export "add") (type $binop) local.get 0 local.get 1 i32.add)
  (func $run (export "run") i32.const 0 i32.const 0 call $log)
  (export "counter" (global $counter))
)"#;

/// A component that `wit_component::decode` understands: an interface import,
/// a function import, a function export, an interface export, plus a nested
/// core module and a nested component that holds a module of its own.
const COMPONENT_WAT: &str = r#"
(component $hello
  (import "wasi:cli/environment@0.2.0" (instance $env
    (export "get-arguments" (func (result (list string))))
  ))
  (import "greet" (func $greet (param "name" string) (result string)))
  (core module $guest
    (@producers (language "Rust" "") (processed-by "rustc" "1.95.0") (processed-by "wit-component" "0.254.2"))
    (func (export "f"))
  )
  (component $inner (core module $deep (func $noop)))
  (core instance (instantiate $guest))
  (export "hello" (func $greet))
  (export "my:greeter/api@0.1.0" (instance $env))
)"#;

fn parse(wat: &str) -> Vec<u8> {
    match wat::parse_str(wat) {
        Ok(bytes) => bytes,
        Err(err) => panic!("test WAT does not parse: {err}"),
    }
}

fn report(wat: &str) -> Report {
    report_of(&parse(wat))
}

fn report_of(bytes: &[u8]) -> Report {
    match inspect(bytes) {
        Ok(report) => report,
        Err(err) => panic!("inspect failed: {err}"),
    }
}

fn custom<'r>(report: &'r Report, name: &str, location: &str) -> &'r CustomSection {
    report
        .custom_sections
        .iter()
        .find(|c| c.name == name && c.location == location)
        .unwrap_or_else(|| panic!("no custom section {name:?} at {location:?}: {report:#?}"))
}

#[test]
fn core_module_lists_its_imports_and_exports_with_types() {
    let report = report(CORE_WAT);
    assert_eq!(report.kind, WasmKind::CoreModule);
    assert_eq!(report.size, parse(CORE_WAT).len());

    let imports: Vec<_> = report
        .imports
        .iter()
        .map(|i| {
            (
                i.module.as_deref(),
                i.name.as_str(),
                i.kind,
                i.ty.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        imports,
        [
            (Some("env"), "log", ItemKind::Func, Some("(i32, i32)")),
            (
                Some("env"),
                "memory",
                ItemKind::Memory,
                Some("pages: min 1")
            ),
            (
                Some("env"),
                "table",
                ItemKind::Table,
                Some("funcref: min 1, max 10")
            ),
        ]
    );
    let exports: Vec<_> = report
        .exports
        .iter()
        .map(|e| (e.name.as_str(), e.kind, e.ty.as_deref()))
        .collect();
    assert_eq!(
        exports,
        [
            ("add", ItemKind::Func, Some("(i32, i32) -> i32")),
            ("run", ItemKind::Func, Some("()")),
            ("counter", ItemKind::Global, Some("mut i32")),
        ]
    );

    // A core module has no WIT world and that is not an error.
    assert_eq!(report.world, None);
    assert_eq!(report.world_error, None);
    assert_eq!(report.wit_text(), None);

    let text = report.to_string();
    assert!(text.starts_with("Kind:  core module"), "{text}");
    assert!(text.contains("func    env  log     (i32, i32)"), "{text}");
    assert!(
        text.contains("func    add      (i32, i32) -> i32"),
        "{text}"
    );
    assert!(!text.contains("World"), "{text}");
}

#[test]
fn core_module_sections_are_listed_in_file_order_with_sizes() {
    let report = report(CORE_WAT);
    let names: Vec<_> = report.sections.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        ["type", "import", "function", "global", "export", "code", "custom", "custom"]
    );
    assert!(report.sections.iter().all(|s| s.depth == 0 && s.size > 0));
    // Every section lies inside the file, after the 8-byte header.
    assert!(report
        .sections
        .iter()
        .all(|s| s.offset >= 8 && s.offset + s.size <= report.size));
    let import = &report.sections[1];
    assert_eq!(import.items, Some(3));

    let text = report.to_string();
    assert!(text.contains("Sections (8):"), "{text}");
    assert!(text.contains("  custom \"name\""), "{text}");
}

#[test]
fn name_and_producers_sections_are_decoded() {
    let report = report(CORE_WAT);
    assert_eq!(
        custom(&report, "name", "top level").details,
        CustomDetails::Name {
            module_name: Some("demo".to_string()),
            function_names: 3,
        }
    );
    assert_eq!(
        custom(&report, "producers", "top level").details,
        CustomDetails::Producers(vec![
            ProducersField {
                name: "language".to_string(),
                values: vec!["Rust".to_string()],
            },
            ProducersField {
                name: "processed-by".to_string(),
                values: vec!["rustc 1.95.0".to_string()],
            },
        ])
    );

    let text = report.to_string();
    assert!(text.contains("module \"demo\", 3 function names"), "{text}");
    assert!(text.contains("language: Rust"), "{text}");
    assert!(text.contains("processed-by: rustc 1.95.0"), "{text}");
}

#[test]
fn component_lists_top_level_imports_and_exports() {
    let report = report(COMPONENT_WAT);
    assert_eq!(report.kind, WasmKind::Component);

    let imports: Vec<_> = report
        .imports
        .iter()
        .map(|i| (i.module.as_deref(), i.name.as_str(), i.kind))
        .collect();
    assert_eq!(
        imports,
        [
            (None, "wasi:cli/environment@0.2.0", ItemKind::Instance),
            (None, "greet", ItemKind::Func),
        ]
    );
    // The nested module's export `f` is not a top-level export.
    let exports: Vec<_> = report
        .exports
        .iter()
        .map(|e| (e.name.as_str(), e.kind))
        .collect();
    assert_eq!(
        exports,
        [
            ("hello", ItemKind::Func),
            ("my:greeter/api@0.1.0", ItemKind::Instance)
        ]
    );

    let text = report.to_string();
    assert!(text.starts_with("Kind:  component"), "{text}");
    assert!(
        text.contains("instance  wasi:cli/environment@0.2.0"),
        "{text}"
    );
}

#[test]
fn component_world_names_its_imports_and_exports_in_full() {
    let report = report(COMPONENT_WAT);
    assert_eq!(report.world_error, None);
    let Some(world) = &report.world else {
        panic!("no world: {:?}", report.world_error);
    };
    assert_eq!(world.name, "root:component/root");
    let items = |items: &[WorldItem]| -> Vec<(String, WorldItemKind)> {
        items.iter().map(|i| (i.name.clone(), i.kind)).collect()
    };
    assert_eq!(
        items(&world.imports),
        [
            (
                "wasi:cli/environment@0.2.0".to_string(),
                WorldItemKind::Interface
            ),
            ("greet".to_string(), WorldItemKind::Function),
        ]
    );
    assert_eq!(
        items(&world.exports),
        [
            ("hello".to_string(), WorldItemKind::Function),
            ("my:greeter/api@0.1.0".to_string(), WorldItemKind::Interface),
        ]
    );

    let text = report.to_string();
    assert!(text.contains("World root:component/root:"), "{text}");
    assert!(
        text.contains("import  interface  wasi:cli/environment@0.2.0"),
        "{text}"
    );
    assert!(
        text.contains("export  interface  my:greeter/api@0.1.0"),
        "{text}"
    );
}

#[test]
fn component_wit_text_declares_the_world_and_every_interface() {
    let report = report(COMPONENT_WAT);
    let Some(wit) = report.wit_text() else {
        panic!("no WIT text: {:?}", report.world_error);
    };
    assert!(wit.starts_with("package root:component;"), "{wit}");
    assert!(wit.contains("world root {"), "{wit}");
    assert!(wit.contains("import wasi:cli/environment@0.2.0;"), "{wit}");
    assert!(
        wit.contains("import greet: func(name: string) -> string;"),
        "{wit}"
    );
    assert!(wit.contains("package wasi:cli@0.2.0 {"), "{wit}");
    assert!(
        wit.contains("get-arguments: func() -> list<string>;"),
        "{wit}"
    );
    // The report itself leaves the (long) WIT text to `--wit`.
    assert!(!report.to_string().contains("package root:component"));
}

#[test]
fn nested_modules_and_components_are_indented_under_their_section() {
    let report = report(COMPONENT_WAT);
    let layout: Vec<_> = report
        .sections
        .iter()
        .map(|s| (s.depth, s.name, s.location.as_str()))
        .collect();
    let module = layout
        .iter()
        .position(|&(depth, name, _)| depth == 0 && name == "core module")
        .unwrap_or_else(|| panic!("no nested module in {layout:?}"));
    // The nested module's own sections follow its section, one level deeper.
    assert_eq!(layout[module + 1], (1, "type", "module 0"));
    assert!(layout.contains(&(2, "code", "component 0 / module 0")));
    assert!(layout.contains(&(1, "core module", "component 0")));

    let text = report.to_string();
    assert!(text.contains("\n  core module "), "{text}");
    assert!(text.contains("\n    type "), "{text}");
    assert!(text.contains("\n      code "), "{text}");
}

#[test]
fn repeated_component_sections_are_summarised_in_one_line() {
    // The component's two function/instance types and two imports come as
    // type, import, type, import sections, as wit-component emits them.
    let report = report(COMPONENT_WAT);
    let top: Vec<_> = report
        .sections
        .iter()
        .filter(|s| s.depth == 0)
        .map(|s| s.name)
        .take(4)
        .collect();
    assert_eq!(top, ["type", "import", "type", "import"]);
    let type_sizes: usize = report
        .sections
        .iter()
        .filter(|s| s.depth == 0 && s.name == "type")
        .map(|s| s.size)
        .sum();

    let text = report.to_string();
    let line = text
        .lines()
        .find(|line| line.starts_with("  type (2 sections)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&format!(" {type_sizes} B ")), "{line}");
    assert!(text.contains("\n  import (2 sections) "), "{text}");
    // Sections of nested modules are not merged into the parent's.
    assert!(text.contains("\n    type "), "{text}");
}

#[test]
fn custom_sections_are_found_at_every_depth() {
    let report = report(COMPONENT_WAT);
    let producers = custom(&report, "producers", "module 0");
    assert_eq!(producers.depth, 1);
    assert_eq!(
        producers.details,
        CustomDetails::Producers(vec![
            ProducersField {
                name: "language".to_string(),
                values: vec!["Rust".to_string()],
            },
            ProducersField {
                name: "processed-by".to_string(),
                values: vec![
                    "rustc 1.95.0".to_string(),
                    "wit-component 0.254.2".to_string()
                ],
            },
        ])
    );
    assert_eq!(
        custom(&report, "name", "component 0 / module 0").details,
        CustomDetails::Name {
            module_name: Some("deep".to_string()),
            function_names: 1,
        }
    );
    let CustomDetails::ComponentName { component_name, .. } =
        &custom(&report, "component-name", "top level").details
    else {
        panic!("component-name section not decoded");
    };
    assert_eq!(component_name.as_deref(), Some("hello"));

    let text = report.to_string();
    // One producer per line, later ones aligned under the first.
    assert!(text.contains("processed-by: rustc 1.95.0\n"), "{text}");
    let continuation = text
        .lines()
        .find(|line| line.ends_with("wit-component 0.254.2"))
        .unwrap_or_else(|| panic!("{text}"));
    let first = text
        .lines()
        .find(|line| line.ends_with("processed-by: rustc 1.95.0"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(continuation.find("wit-component"), first.find("rustc"));
    assert!(text.contains("component \"hello\""), "{text}");
}

#[test]
fn component_without_a_wit_world_is_still_described() {
    // Valid, but WIT has no way to say "exports a core module".
    let report = report(r#"(component (core module $m) (export "m" (core module $m)))"#);
    assert_eq!(report.kind, WasmKind::Component);
    assert_eq!(report.world, None);
    assert_eq!(report.wit_text(), None);
    let why = report.world_error.as_deref().unwrap_or_default();
    assert!(why.contains("export `m`"), "{why}");
    assert_eq!(report.exports.len(), 1);
    assert_eq!(report.exports[0].kind, ItemKind::Module);
    assert!(report.sections.iter().any(|s| s.name == "core module"));

    let text = report.to_string();
    assert!(text.contains("World: could not be decoded: "), "{text}");
    assert!(text.contains("module  m"), "{text}");
}

#[test]
fn decoder_failure_on_a_valid_component_costs_only_the_world() {
    // A bare function imported under an interface name is valid, but
    // wit-parser 0.254 reaches `unreachable!()` on it.
    let report = report(r#"(component (import "a:b/c" (func)))"#);
    assert_eq!(report.world, None);
    let why = report.world_error.as_deref().unwrap_or_default();
    assert!(why.contains("WIT decoder failed"), "{why}");
    assert_eq!(report.imports.len(), 1);
    assert_eq!(report.imports[0].name, "a:b/c");
}

#[test]
fn garbage_after_a_valid_header_is_reported_at_its_offset() {
    let mut bytes = b"\0asm\x01\0\0\0".to_vec();
    bytes.extend_from_slice(&[0xff; 4]);
    let err = inspect(&bytes).map(|_| ()).unwrap_err();
    let InspectError::Invalid { offset, message } = &err else {
        panic!("expected an offset error, got {err:?}");
    };
    assert_eq!(*offset, 8);
    assert!(message.contains("section id"), "{message}");
    assert!(err
        .to_string()
        .starts_with("invalid WebAssembly at byte offset 0x8 (8): "));
}

#[test]
fn invalid_code_is_reported_where_the_validator_stops() {
    // The body of a function returning i32 ends with nothing on the stack;
    // its `end` opcode is the last byte of the file.
    let bytes = parse("(module (func (result i32)))");
    let err = inspect(&bytes).map(|_| ()).unwrap_err();
    let InspectError::Invalid { offset, message } = &err else {
        panic!("expected an offset error, got {err:?}");
    };
    assert_eq!(*offset, bytes.len() - 1);
    assert!(message.contains("type mismatch"), "{message}");
}

#[test]
fn truncated_module_is_an_offset_error() {
    let mut bytes = parse(r#"(module (func (export "f")))"#);
    bytes.truncate(bytes.len() - 3);
    let err = inspect(&bytes).map(|_| ()).unwrap_err();
    assert_eq!(
        err,
        InspectError::Invalid {
            offset: bytes.len(),
            message: "unexpected end-of-file".to_string(),
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "invalid WebAssembly at byte offset {:#x} ({}): unexpected end-of-file",
            bytes.len(),
            bytes.len()
        )
    );
}

#[test]
fn every_truncation_is_either_valid_or_an_offset_error() {
    // A cut at a section boundary is a smaller valid binary; anything else
    // must be an `Invalid` pointing inside what is left. Nothing panics.
    for wat in [CORE_WAT, COMPONENT_WAT] {
        let bytes = parse(wat);
        for len in 1..bytes.len() {
            match inspect(&bytes[..len]) {
                Ok(report) => assert_eq!(report.size, len),
                Err(InspectError::Invalid { offset, .. }) => assert!(offset <= len),
                Err(other) => panic!("cut at {len}: {other}"),
            }
        }
    }
}

#[test]
fn text_is_not_mistaken_for_wasm() {
    let err = inspect(b"hello, world\n").map(|_| ()).unwrap_err();
    assert_eq!(
        err,
        InspectError::NotWasm {
            looks_like_wat: false
        }
    );
    assert_eq!(
        err.to_string(),
        "not a WebAssembly binary (expected \\0asm at offset 0)"
    );
    // An ELF executable, say.
    assert!(matches!(
        inspect(b"\x7fELF\x02\x01\x01"),
        Err(InspectError::NotWasm {
            looks_like_wat: false
        })
    ));
}

#[test]
fn wat_text_gets_a_hint() {
    for text in [
        "(module)",
        "  ;; greeting\n(component\n)",
        "(; block ;) (module)",
    ] {
        let err = inspect(text.as_bytes()).map(|_| ()).unwrap_err();
        assert_eq!(
            err,
            InspectError::NotWasm {
                looks_like_wat: true
            },
            "{text}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with("not a WebAssembly binary (expected \\0asm at offset 0)"),
            "{message}"
        );
        assert!(message.contains("WAT"), "{message}");
    }
}

#[test]
fn empty_input_says_so() {
    let err = inspect(b"").map(|_| ()).unwrap_err();
    assert_eq!(err, InspectError::Empty);
    assert!(err.to_string().contains("empty"));
}

#[test]
fn header_only_module_is_an_empty_module() {
    let report = match inspect(b"\0asm\x01\0\0\0") {
        Ok(report) => report,
        Err(err) => panic!("{err}"),
    };
    assert_eq!(report.kind, WasmKind::CoreModule);
    assert!(report.sections.is_empty() && report.imports.is_empty());
    assert!(report.to_string().contains("Size:  8 bytes"));
}

#[test]
fn deeply_nested_components_are_walked_without_recursion() {
    // component { component { ... { component {} } ... } }, built by hand
    // because WAT for it would be as deep.
    const HEADER: &[u8] = b"\0asm\x0d\0\x01\0";
    const DEPTH: usize = 2_000;
    let mut bytes = HEADER.to_vec();
    for _ in 0..DEPTH {
        let mut outer = HEADER.to_vec();
        outer.push(4); // component section
        let mut len = bytes.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                outer.push(byte);
                break;
            }
            outer.push(byte | 0x80);
        }
        outer.extend_from_slice(&bytes);
        bytes = outer;
    }
    let report = report_of(&bytes);
    assert_eq!(report.sections.len(), DEPTH);
    let deepest = &report.sections[DEPTH - 1];
    assert_eq!(deepest.depth, DEPTH - 1);
    assert_eq!(
        deepest.location,
        format!("component 0 at depth {}", DEPTH - 1)
    );
    assert!(report.to_string().lines().count() > DEPTH);
}
