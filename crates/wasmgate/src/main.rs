//! The `wasmgate` binary: command-line parsing and wiring only. Each subcommand lives in its
//! own module; the work is done by the library crates.

mod access_log;
mod admin_access;
mod app;
mod cli;
mod inspect_cmd;
mod logging;
mod logs_cmd;
mod otel;
mod output;
mod profile_cmd;
mod reload;
mod up;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Up(args) => {
            logging::init(args.log_format);
            up::run(args)
        }
        cli::Command::Inspect(args) => inspect_cmd::run(args),
        cli::Command::Logs(args) => logs_cmd::run(args),
        cli::Command::Profile(args) => profile_cmd::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
