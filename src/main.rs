//! The `strata` command-line tool: `strata run` executes a WebAssembly
//! module (binary or text) and prints what the invoked function returns;
//! `strata wast` runs WebAssembly spec test scripts and reports failing
//! directives.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, Subcommand};
use strata::{Config, Engine, Func, Linker, Module, Store, Val, ValType};

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
    /// Compile, instantiate and run a WebAssembly module.
    Run(RunArgs),
    /// Run WebAssembly spec test scripts (`.wast`).
    Wast(WastArgs),
}

/// Arguments of `strata run`.
#[derive(clap::Args)]
struct RunArgs {
    /// The module to run: a binary `.wasm` or text `.wat` file.
    file: PathBuf,
    /// Exported function to call (defaults to `_start` when exported).
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,
    /// Arguments for the function, parsed according to its parameter types.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Arguments of `strata wast`.
#[derive(clap::Args)]
struct WastArgs {
    /// The scripts to run.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(&args),
        Command::Wast(args) => wast(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err:?}");
            ExitCode::FAILURE
        }
    }
}

/// Converts a runtime error into an `anyhow` error that keeps the runtime's
/// full `Debug` rendering (message plus wasm backtrace).
fn runtime(err: strata::Error) -> anyhow::Error {
    anyhow!("{err:?}")
}

/// `strata run`.
fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let engine = Engine::new(&Config::new()).map_err(runtime)?;
    let module = Module::from_file(&engine, &args.file)
        .map_err(runtime)
        .with_context(|| format!("failed to compile `{}`", args.file.display()))?;
    let mut store = Store::new(&engine, ());
    let linker = Linker::new(&engine);
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(runtime)
        .with_context(|| format!("failed to instantiate `{}`", args.file.display()))?;

    let (name, func) = match &args.invoke {
        Some(name) => {
            let func = instance
                .get_func(&mut store, name)
                .ok_or_else(|| anyhow!("module has no exported function named `{name}`"))?;
            (name.as_str(), func)
        }
        None => match instance.get_func(&mut store, "_start") {
            Some(func) => ("_start", func),
            None if args.args.is_empty() => return Ok(ExitCode::SUCCESS),
            None => bail!("arguments given but the module exports no `_start`; use --invoke NAME"),
        },
    };
    let results = call(&mut store, &func, name, &args.args)?;
    for result in &results {
        println!("{}", render(result));
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `raw` according to the parameters of `func` (exported as `name`)
/// and calls it.
fn call(
    store: &mut Store<()>,
    func: &Func,
    name: &str,
    raw: &[String],
) -> anyhow::Result<Vec<Val>> {
    let ty = func.ty(&*store);
    let params: Vec<ValType> = ty.params().collect();
    if params.len() != raw.len() {
        bail!(
            "`{name}` expects {} argument(s), {} given",
            params.len(),
            raw.len()
        );
    }
    let args = params
        .iter()
        .zip(raw)
        .enumerate()
        .map(|(i, (ty, text))| {
            parse_arg(ty, text).with_context(|| format!("invalid argument {i}: `{text}`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut results: Vec<Val> = ty.results().map(|ty| placeholder(&ty)).collect();
    func.call(&mut *store, &args, &mut results)
        .map_err(runtime)
        .with_context(|| format!("failed to invoke `{name}`"))?;
    Ok(results)
}

/// Parses one command-line argument as a value of type `ty`.
fn parse_arg(ty: &ValType, text: &str) -> anyhow::Result<Val> {
    Ok(match ty {
        ValType::I32 => Val::I32(text.parse()?),
        ValType::I64 => Val::I64(text.parse()?),
        ValType::F32 => Val::F32(text.parse::<f32>()?.to_bits()),
        ValType::F64 => Val::F64(text.parse::<f64>()?.to_bits()),
        _ => bail!("parameters of this type cannot be passed on the command line"),
    })
}

/// A value of type `ty` used to pre-fill a result slot.
fn placeholder(ty: &ValType) -> Val {
    match ty {
        ValType::I64 => Val::I64(0),
        ValType::F32 => Val::F32(0),
        ValType::F64 => Val::F64(0),
        ValType::V128 => Val::V128(0),
        ValType::Ref(_) => Val::FuncRef(None),
        _ => Val::I32(0),
    }
}

/// Renders a result for printing: integers in decimal, floats as Rust prints
/// them.
fn render(val: &Val) -> String {
    match val {
        Val::I32(x) => x.to_string(),
        Val::I64(x) => x.to_string(),
        Val::F32(bits) => f32::from_bits(*bits).to_string(),
        Val::F64(bits) => f64::from_bits(*bits).to_string(),
        Val::V128(bits) => format!("0x{bits:032x}"),
        Val::FuncRef(None) => "ref.null func".to_string(),
        Val::FuncRef(Some(_)) => "ref.func".to_string(),
        _ => "<unprintable value>".to_string(),
    }
}

/// `strata wast`.
fn wast(args: &WastArgs) -> anyhow::Result<ExitCode> {
    let mut passed = 0;
    let mut failed = 0;
    for path in &args.files {
        let (p, f) = wast_file(path);
        passed += p;
        failed += f;
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs one script, printing its failures; returns (passed, failed) counts.
/// A script that cannot be read or parsed counts as a single failure.
fn wast_file(path: &Path) -> (usize, usize) {
    let name = path.display().to_string();
    let contents = match std::fs::read_to_string(path) {
        Ok(contents) => contents,
        Err(err) => {
            println!("{name}: failed to read file: {err}");
            return (0, 1);
        }
    };
    match strata_wast::run_file(&name, &contents) {
        Ok(report) => {
            for failure in &report.failed {
                println!("{name}:{failure}");
            }
            (report.passed, report.failed_count())
        }
        Err(err) => {
            println!("{name}: {err:#}");
            (0, 1)
        }
    }
}
