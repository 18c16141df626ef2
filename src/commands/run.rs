//! `strata run`: runs a WebAssembly module as a WASI preview1 command, with the
//! options, output and exit statuses of `wasmtime run`.
//!
//! The exit status is the guest's `proc_exit` status, 0 if its entry point returns,
//! 134 (as if aborted, 128 + SIGABRT) if it traps, and 1 for every other failure.

mod guest_error;
mod invoke;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::thread;

use anyhow::{Context as _, anyhow};
use strata::{Engine, Linker, Module, Store, StoreLimits, StoreLimitsBuilder};
use strata_wasi::{DirPerms, FilePerms, WasiCtx, WasiCtxBuilder};

use super::codegen_options::{self, CodegenOptionList, CodegenOptions};
use super::wasm_options::{self, WasmOptionList, WasmOptions};
use guest_error::{Ending, GuestError};

/// The exit status after a trap: that of a process killed by SIGABRT.
const TRAP_EXIT_STATUS: i32 = 134;

/// Arguments of `strata run`.
#[derive(clap::Args)]
pub struct RunCommand {
    /// Give the guest the host directory HOST, named GUEST inside (HOST if not given).
    #[arg(long = "dir", value_name = "HOST[::GUEST]", value_parser = parse_dir)]
    dirs: Vec<Preopen>,
    /// Set the guest's environment variable KEY to VALUE; without `=VALUE`, pass on the
    /// host's value of KEY (if it has one).
    #[arg(long = "env", value_name = "KEY[=VALUE]", value_parser = parse_env)]
    envs: Vec<EnvVar>,
    /// Call this export instead of `_start`; the guest arguments are then also its
    /// parameters, parsed by their types, and its results are printed.
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,
    /// The guest's `argv[0]` (default: the module's file name without its directory).
    #[arg(long, value_name = "NAME")]
    argv0: Option<String>,
    /// Limits on the guest: `fuel=N`, `max-memory-size=BYTES`, `timeout=DURATION`
    /// (`10s`, `500ms`, `2m`, `1us`, `3ns`; a bare number is seconds); and proposals on
    /// or off: `KEY[=y|n]` for `simd`, `multi-value`, `bulk-memory`, `reference-types`,
    /// `tail-call`, `extended-const`, `multi-memory`, `memory64`, `relaxed-simd`,
    /// `relaxed-simd-deterministic`, `wide-arithmetic`, `custom-page-sizes`,
    /// `function-references`, `exceptions`.
    /// Repeatable and comma-separated.
    #[arg(short = 'W', long = "wasm", value_name = "KEY[=VALUE][,..]", value_parser = wasm_options::parse)]
    wasm: Vec<WasmOptionList>,
    // Its help, shared with `strata wast`, is `codegen_options::HELP`.
    #[arg(short = 'C', long = "codegen", value_name = "KEY[=VALUE][,..]", value_parser = codegen_options::parse, help = codegen_options::HELP)]
    codegen: Vec<CodegenOptionList>,
    /// The module (binary `.wasm` or text `.wat`), then the guest's arguments:
    /// everything after the module belongs to the guest.
    #[arg(value_name = "FILE", required = true, trailing_var_arg = true)]
    module_and_args: Vec<OsString>,
}

/// A `--dir` argument: a host directory and the name the guest sees it under.
#[derive(Clone, Debug)]
struct Preopen {
    /// The directory on the host.
    host: String,
    /// Its name inside the guest.
    guest: String,
}

/// An `--env` argument: a value, or `None` to pass on the host's value.
#[derive(Clone, Debug)]
struct EnvVar {
    /// The variable's name.
    key: String,
    /// Its value, or `None` to inherit it.
    value: Option<String>,
}

/// Parses `HOST[::GUEST]`.
fn parse_dir(arg: &str) -> Result<Preopen, String> {
    let (host, guest) = arg.split_once("::").unwrap_or((arg, arg));
    if host.is_empty() || guest.is_empty() {
        return Err("expected HOST or HOST::GUEST with neither part empty".to_string());
    }
    Ok(Preopen {
        host: host.to_string(),
        guest: guest.to_string(),
    })
}

/// Parses `KEY[=VALUE]`.
fn parse_env(arg: &str) -> Result<EnvVar, String> {
    let (key, value) = match arg.split_once('=') {
        Some((key, value)) => (key, Some(value.to_string())),
        None => (arg, None),
    };
    if key.is_empty() {
        return Err("the variable name is empty".to_string());
    }
    Ok(EnvVar {
        key: key.to_string(),
        value,
    })
}

/// Compiles the module in `path`, or loads it if it is precompiled (by `strata
/// compile`).
pub(super) fn load_module(engine: &Engine, path: &Path) -> strata::Result<Module> {
    if engine.detect_precompiled_file(path)?.is_none() {
        return Module::from_file(engine, path);
    }
    // The one unsafe operation of the command-line tool.
    #[allow(
        unsafe_code,
        reason = "running a precompiled module means trusting its machine code"
    )]
    // SAFETY: the user named this file to run, as they would a native program: its
    // code is trusted as theirs. Loading still refuses, with an error naming the
    // mismatch, files that are truncated, corrupted, or precompiled by another strata,
    // for another host or with other code-affecting options (`-W fuel`, `-W timeout`,
    // the features).
    unsafe {
        Module::deserialize_file(engine, path)
    }
}

/// The data of the store the guest runs in.
struct Host {
    /// The guest's WASI state.
    wasi: WasiCtx,
    /// The limits `-W max-memory-size` sets.
    limits: StoreLimits,
}

impl RunCommand {
    /// Runs the module. Exits the process directly when the guest calls `proc_exit`
    /// (with its status) or traps (with status 134, after printing the error).
    ///
    /// # Errors
    /// Fails if the `-C cache-config` file is not a valid one, or the module cannot be
    /// read, compiled, linked or run for any reason other than a trap or an exit.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let options = WasmOptions::new(&self.wasm);
        let mut config = options.config();
        CodegenOptions::new(&self.codegen).configure(&mut config)?;
        let engine = Engine::new(&config).map_err(GuestError::from)?;
        let module = load_module(&engine, self.file()).map_err(GuestError::from)?;

        let mut limits = StoreLimitsBuilder::new();
        if let Some(bytes) = options.max_memory_size {
            limits = limits.memory_size(bytes);
        }
        let host = Host {
            wasi: self.wasi_ctx()?,
            limits: limits.build(),
        };
        let mut store = Store::new(&engine, host);
        store.limiter(|host| &mut host.limits);
        if let Some(fuel) = options.fuel {
            store.set_fuel(fuel).map_err(GuestError::from)?;
        }
        let mut linker = Linker::new(&engine);
        strata_wasi::add_to_linker(&mut linker, |host: &mut Host| &mut host.wasi)
            .map_err(GuestError::from)?;

        let result = self
            .run_main(&mut store, &linker, &module, &options)
            .with_context(|| format!("failed to run main module `{}`", self.file().display()));
        let err = match result {
            Ok(()) => return Ok(ExitCode::SUCCESS),
            Err(err) => err,
        };
        match GuestError::ending_of(&err) {
            Some(Ending::Exit(status)) => exit(status),
            Some(Ending::Trap) => {
                eprintln!("Error: {err:?}");
                exit(TRAP_EXIT_STATUS)
            }
            Some(Ending::Other) | None => Err(err),
        }
    }

    /// The module's path.
    fn file(&self) -> &Path {
        Path::new(&self.module_and_args[0])
    }

    /// The guest's arguments after `argv[0]`.
    fn guest_args(&self) -> anyhow::Result<Vec<String>> {
        self.module_and_args[1..]
            .iter()
            .map(|arg| {
                arg.to_str()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("argument {arg:?} is not valid UTF-8"))
            })
            .collect()
    }

    /// The guest's `argv`: `--argv0` or the module's file name, then the arguments.
    fn argv(&self) -> anyhow::Result<Vec<String>> {
        let argv0 = match &self.argv0 {
            Some(argv0) => argv0.clone(),
            None => {
                let name = self.file().file_name().unwrap_or(self.file().as_os_str());
                name.to_str()
                    .ok_or_else(|| anyhow!("module name {name:?} is not valid UTF-8"))?
                    .to_string()
            }
        };
        let mut argv = vec![argv0];
        argv.extend(self.guest_args()?);
        Ok(argv)
    }

    /// The guest's WASI context: inherited stdio, `argv`, `--env` variables and
    /// `--dir` preopens.
    fn wasi_ctx(&self) -> anyhow::Result<WasiCtx> {
        let mut builder = WasiCtxBuilder::new();
        builder.inherit_stdio().args(&self.argv()?);
        for EnvVar { key, value } in &self.envs {
            let value = match value {
                Some(value) => value.clone(),
                None => match std::env::var_os(key) {
                    Some(value) => value
                        .into_string()
                        .map_err(|_| anyhow!("environment variable `{key}` is not valid UTF-8"))?,
                    None => continue,
                },
            };
            builder.env(key, value);
        }
        for Preopen { host, guest } in &self.dirs {
            builder
                .preopened_dir(host, guest, DirPerms::all(), FilePerms::all())
                .map_err(GuestError::from)?;
        }
        Ok(builder.build())
    }

    /// Instantiates the module and calls its entry point: `--invoke`'s export, else
    /// `_start` if exported; prints the results.
    fn run_main(
        &self,
        store: &mut Store<Host>,
        linker: &Linker<Host>,
        module: &Module,
        options: &WasmOptions,
    ) -> anyhow::Result<()> {
        if let Some(timeout) = options.timeout {
            store.set_epoch_deadline(1);
            let engine = store.engine().clone();
            thread::spawn(move || {
                thread::sleep(timeout);
                engine.increment_epoch();
            });
        }
        let instance = linker
            .instantiate(&mut *store, module)
            .map_err(GuestError::from)
            .with_context(|| format!("failed to instantiate `{}`", self.file().display()))?;
        if let Some(initialize) = instance.get_func(&mut *store, "_initialize") {
            invoke::call(store, &initialize, "`_initialize`", &[])?;
        }
        let (func, what) = match &self.invoke {
            Some(name) => {
                let func = instance
                    .get_func(&mut *store, name)
                    .ok_or_else(|| anyhow!("no func export named `{name}` found"))?;
                (func, format!("`{name}`"))
            }
            None => match instance.get_func(&mut *store, "_start") {
                Some(func) => (func, "command default".to_string()),
                None => return Ok(()),
            },
        };
        let results = invoke::call(store, &func, &what, &self.guest_args()?)?;
        for result in &results {
            println!("{}", invoke::render(result));
        }
        Ok(())
    }
}

/// Flushes the host's output streams and exits the process with `status`.
fn exit(status: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(status)
}
