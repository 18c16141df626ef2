//! The `strata` command-line tool.
//!
//! `strata run` executes a WebAssembly module (binary or text) as a WASI preview1
//! command, with the options and exit statuses of `wasmtime run`; `strata compile`
//! precompiles a module into a `.swasm` file that `strata run` loads; `strata wast` runs
//! WebAssembly spec test scripts and reports failing directives; `strata objdump`
//! disassembles a module's compiled code. `run` and `wast` cache the code they compile
//! in the user's cache directory, as `wasmtime run` does (`-C` options).

// Unsafe code is denied, with one exception allowed where it is used: loading a
// precompiled module in `strata run`, whose machine code the user vouches for.
#![deny(unsafe_code)]

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use commands::{CompileCommand, ObjdumpCommand, RunCommand, WastCommand};

/// The environment variable that chooses what is logged to stderr.
const LOG_VARIABLE: &str = "STRATA_LOG";

/// A WebAssembly runtime built on Cranelift.
#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about,
    after_help = "Set STRATA_LOG to log to stderr: a level (STRATA_LOG=debug) or \
                  TARGET=LEVEL directives (STRATA_LOG=strata=debug,strata_wasi=trace), \
                  as wasmtime's WASMTIME_LOG. Without it, only errors are logged."
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands of `strata`.
#[derive(Subcommand)]
enum Command {
    /// Compile (or load, if precompiled), instantiate and run a WebAssembly module as a
    /// WASI command.
    Run(RunCommand),
    /// Compile a WebAssembly module ahead of time into a precompiled `.swasm` file that
    /// `strata run` loads without compiling.
    Compile(CompileCommand),
    /// Run WebAssembly spec test scripts (`.wast`).
    Wast(WastCommand),
    /// Print the disassembly of a module's compiled functions.
    Objdump(ObjdumpCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Run(command) => command.execute(),
        Command::Compile(command) => command.execute(),
        Command::Wast(command) => command.execute(),
        Command::Objdump(command) => command.execute(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err:?}");
            ExitCode::FAILURE
        }
    }
}

/// Logs strata's events to stderr, as `STRATA_LOG` filters them (the syntax of
/// `tracing_subscriber::EnvFilter`, which wasmtime's `WASMTIME_LOG` uses too).
fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_env(LOG_VARIABLE))
        .init();
}
