//! The `strata` command-line tool.
//!
//! `strata run` executes a WebAssembly module (binary or text) as a WASI preview1
//! command, with the options and exit statuses of `wasmtime run`; `strata wast` runs
//! WebAssembly spec test scripts and reports failing directives.

#![forbid(unsafe_code)]

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{RunCommand, WastCommand};

/// A WebAssembly runtime built on Cranelift.
#[derive(Parser)]
#[command(name = "strata", version, about)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands of `strata`.
#[derive(Subcommand)]
enum Command {
    /// Compile, instantiate and run a WebAssembly module as a WASI command.
    Run(RunCommand),
    /// Run WebAssembly spec test scripts (`.wast`).
    Wast(WastCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(command) => command.execute(),
        Command::Wast(command) => command.execute(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err:?}");
            ExitCode::FAILURE
        }
    }
}
