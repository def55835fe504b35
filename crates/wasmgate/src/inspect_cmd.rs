//! `wasmgate inspect FILE`: print what a WebAssembly file is and what it needs.

use crate::cli::InspectArgs;
use anyhow::Context;

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let report =
        wasmgate_inspect::inspect(&bytes).with_context(|| format!("{}", args.file.display()))?;
    let mut text = report.to_string();
    if args.wit {
        match report.wit_text() {
            Some(wit) => text.push_str(&format!("\nWIT:\n{wit}\n")),
            None => {
                text.push_str("\n(no WIT: not a component, or its world could not be decoded)\n")
            }
        }
    }
    crate::output::print_stdout(&text).context("cannot write to stdout")
}
