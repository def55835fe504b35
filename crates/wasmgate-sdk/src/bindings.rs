//! Generated bindings for the host interfaces beyond wasi:http (which `wasip2` provides):
//! wasi:keyvalue, wasmgate:sql, wasi:config and wasi:logging.
//!
//! The WIT is read from the repository's `wit/` directory at build time, so the SDK always
//! matches what the server links. A component only imports the interfaces it calls: the
//! linker drops unused bindings, and the component encoder drops imports nothing uses, so a
//! guest that never opens a database does not need an `sql_databases` grant.
//!
//! On a non-wasm target (the host workspace builds and tests the SDK there) the imported
//! functions exist but panic when called; only the pure conversion code is tested there.

wit_bindgen::generate!({
    inline: "
        package wasmgate:sdk;
        world guest {
            import wasi:keyvalue/store@0.2.0-draft;
            import wasi:keyvalue/atomics@0.2.0-draft;
            import wasi:keyvalue/batch@0.2.0-draft;
            import wasmgate:sql/sql@0.1.0;
            import wasi:config/store@0.2.0-rc.1;
            import wasi:logging/logging@0.1.0-draft;
        }
    ",
    path: [
        "../../wit/deps/keyvalue",
        "../../wit/deps/config",
        "../../wit/deps/logging",
        "../../wit/sql.wit",
    ],
    generate_all,
});
