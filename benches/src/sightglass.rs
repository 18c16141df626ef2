//! The Sightglass programs (`../shared/bench/sightglass/`): finding them, running one on
//! either runtime, and checking what it printed.
//!
//! Each program is a WASI preview1 command that imports `bench.start` and `bench.end`
//! and calls each once; the time between the two calls is its execute time. It runs with
//! its own folder pre-opened as `.`, and its stdout and stderr must equal the
//! `.expected` files beside it where those exist.

use crate::{Result, err};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Programs in the folder that are not plain preview1 core-module commands, with the
/// reason the folder's README gives. Components are also recognized by their header.
const NOT_PREVIEW1_CORE: &[(&str, &str)] = &[
    (
        "kotlin-richards",
        "a component (WASI 0.2) that needs the GC proposal",
    ),
    ("cm-online-stats", "a component (WASI 0.2)"),
    ("splay", "needs the GC proposal"),
];

/// Capacity of the captured stdout and stderr of one run.
const OUTPUT_CAPACITY: usize = 16 << 20;

/// One program: a `.wasm` file and its folder.
pub struct Program {
    /// `folder/stem`, e.g. `shootout/shootout-sieve`.
    pub name: String,
    /// The folder, pre-opened as `.`.
    pub dir: PathBuf,
    /// The module's bytes.
    pub wasm: Vec<u8>,
    /// What stdout must be, if the folder says.
    pub stdout: Option<Vec<u8>>,
    /// What stderr must be, if the folder says.
    pub stderr: Option<Vec<u8>>,
}

/// A program that is left out, and why.
pub struct Skipped {
    /// `folder/stem`.
    pub name: String,
    /// Why it does not run here.
    pub reason: &'static str,
}

/// The folder of Sightglass programs: `$SIGHTGLASS_DIR`, or `../shared/bench/sightglass`
/// from the repository root.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("SIGHTGLASS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/sightglass"),
    }
}

/// Every `.wasm` under `root` (one level of folders) whose name contains `filter`,
/// split into programs to run and programs left out.
///
/// # Errors
/// Fails if the folder cannot be read.
pub fn discover(root: &Path, filter: &str) -> Result<(Vec<Program>, Vec<Skipped>)> {
    let (mut programs, mut skipped) = (Vec::new(), Vec::new());
    for dir in sorted_entries(root)? {
        if !dir.is_dir() {
            continue;
        }
        let folder = file_name(&dir);
        let wasms: Vec<PathBuf> = sorted_entries(&dir)?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        for path in &wasms {
            let stem = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into());
            let name = format!("{folder}/{stem}");
            if !name.contains(filter) {
                continue;
            }
            let wasm = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let listed = NOT_PREVIEW1_CORE.iter().find(|(f, _)| *f == folder);
            if let Some((_, reason)) = listed {
                skipped.push(Skipped { name, reason });
                continue;
            }
            if is_component(&wasm) {
                skipped.push(Skipped {
                    name,
                    reason: "a component, not a core module",
                });
                continue;
            }
            // `<stem>.stdout.expected`; a folder with a single program may name its
            // files `default.*` instead.
            let expected = |stream: &str| {
                let own = dir.join(format!("{stem}.{stream}.expected"));
                let shared = dir.join(format!("default.{stream}.expected"));
                std::fs::read(own).ok().or_else(|| {
                    (wasms.len() == 1)
                        .then(|| std::fs::read(shared).ok())
                        .flatten()
                })
            };
            programs.push(Program {
                stdout: expected("stdout"),
                stderr: expected("stderr"),
                name,
                dir: dir.clone(),
                wasm,
            });
        }
    }
    Ok((programs, skipped))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(err)?;
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |s| s.to_string_lossy().into())
}

/// Whether `wasm` starts with the component-model preamble (layer 1).
fn is_component(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && wasm[..4] == *b"\0asm" && wasm[6..8] == [1, 0]
}

/// What one run of a program measured and printed.
pub struct Run {
    /// Creating the store and WASI context and instantiating.
    pub instantiate: Duration,
    /// From `bench.start` to `bench.end`.
    pub execute: Duration,
    /// The captured stdout.
    pub stdout: Vec<u8>,
    /// The captured stderr.
    pub stderr: Vec<u8>,
}

impl Program {
    /// Checks a run's output against the expected files.
    ///
    /// # Errors
    /// Describes the first stream that differs.
    pub fn check(&self, run: &Run) -> Result<()> {
        for (stream, expected, got) in [
            ("stdout", &self.stdout, &run.stdout),
            ("stderr", &self.stderr, &run.stderr),
        ] {
            if let Some(expected) = expected
                && expected != got
            {
                return Err(format!(
                    "{}: {stream} differs from the expected file ({} bytes expected, {} printed; \
                     printed begins {:?})",
                    self.name,
                    expected.len(),
                    got.len(),
                    String::from_utf8_lossy(&got[..got.len().min(200)])
                ));
            }
        }
        Ok(())
    }

    /// Whether any expected file exists.
    pub fn has_expectations(&self) -> bool {
        self.stdout.is_some() || self.stderr.is_some()
    }
}

/// The times `bench.start` and `bench.end` were called.
#[derive(Default)]
struct Marks {
    start: Option<Instant>,
    end: Option<Instant>,
}

impl Marks {
    fn execute(&self, name: &str) -> Result<Duration> {
        match (self.start, self.end) {
            (Some(start), Some(end)) => Ok(end.duration_since(start)),
            _ => Err(format!(
                "{name}: did not call both bench.start and bench.end"
            )),
        }
    }
}

/// One runtime's way to compile and run a program.
pub trait Runtime {
    /// A compiled program.
    type Module;

    /// Compiles `wasm`.
    ///
    /// # Errors
    /// Fails if it does not compile.
    fn compile(&self, wasm: &[u8]) -> Result<Self::Module>;

    /// Instantiates `module` with WASI (the program's folder pre-opened as `.`, output
    /// captured) and `bench.*`, and runs `_start`.
    ///
    /// # Errors
    /// Fails if instantiation fails, `_start` traps or exits nonzero, or the program did
    /// not call both `bench.start` and `bench.end`.
    fn run(&self, program: &Program, module: &Self::Module) -> Result<Run>;
}

/// strata, with its default configuration.
pub struct Strata(strata::Engine);

impl Strata {
    /// An engine with the default configuration.
    ///
    /// # Errors
    /// Fails if the engine cannot be created.
    pub fn new() -> Result<Strata> {
        strata::Engine::new(&strata::Config::new())
            .map(Strata)
            .map_err(err)
    }
}

/// The store data of a strata run.
struct StrataHost {
    wasi: strata_wasi::WasiCtx,
    marks: Marks,
}

impl Runtime for Strata {
    type Module = strata::Module;

    fn compile(&self, wasm: &[u8]) -> Result<strata::Module> {
        strata::Module::new(&self.0, wasm).map_err(err)
    }

    fn run(&self, program: &Program, module: &strata::Module) -> Result<Run> {
        use strata_wasi::{DirPerms, FilePerms, MemoryOutputPipe, WasiCtxBuilder};
        let began = Instant::now();
        let (stdout, stderr) = (
            MemoryOutputPipe::new(OUTPUT_CAPACITY),
            MemoryOutputPipe::new(OUTPUT_CAPACITY),
        );
        let wasi = WasiCtxBuilder::new()
            .arg(&program.name)
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .preopened_dir(&program.dir, ".", DirPerms::READ, FilePerms::READ)
            .map_err(err)?
            .build();
        let mut linker = strata::Linker::new(&self.0);
        strata_wasi::add_to_linker(&mut linker, |h: &mut StrataHost| &mut h.wasi).map_err(err)?;
        linker
            .func_wrap("bench", "start", |mut c: strata::Caller<'_, StrataHost>| {
                c.data_mut().marks.start = Some(Instant::now());
            })
            .map_err(err)?;
        linker
            .func_wrap("bench", "end", |mut c: strata::Caller<'_, StrataHost>| {
                c.data_mut().marks.end = Some(Instant::now());
            })
            .map_err(err)?;
        let host = StrataHost {
            wasi,
            marks: Marks::default(),
        };
        let mut store = strata::Store::new(&self.0, host);
        let instance = linker.instantiate(&mut store, module).map_err(err)?;
        let instantiate = began.elapsed();
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(err)?;
        match start.call(&mut store, ()) {
            Ok(()) => {}
            Err(e) if e.i32_exit_status() == Some(0) => {}
            Err(e) => return Err(format!("{}: {e:?}", program.name)),
        }
        Ok(Run {
            instantiate,
            execute: store.data().marks.execute(&program.name)?,
            stdout: stdout.contents(),
            stderr: stderr.contents(),
        })
    }
}

/// wasmtime, with its default configuration and its preview1 implementation.
pub struct Wasmtime(wasmtime::Engine);

impl Wasmtime {
    /// An engine with the default configuration.
    ///
    /// # Errors
    /// Fails if the engine cannot be created.
    pub fn new() -> Result<Wasmtime> {
        wasmtime::Engine::new(&wasmtime::Config::new())
            .map(Wasmtime)
            .map_err(err)
    }
}

/// The store data of a wasmtime run.
struct WasmtimeHost {
    wasi: wasmtime_wasi::p1::WasiP1Ctx,
    marks: Marks,
}

impl Runtime for Wasmtime {
    type Module = wasmtime::Module;

    fn compile(&self, wasm: &[u8]) -> Result<wasmtime::Module> {
        wasmtime::Module::new(&self.0, wasm).map_err(err)
    }

    fn run(&self, program: &Program, module: &wasmtime::Module) -> Result<Run> {
        use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
        use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
        let began = Instant::now();
        let (stdout, stderr) = (
            MemoryOutputPipe::new(OUTPUT_CAPACITY),
            MemoryOutputPipe::new(OUTPUT_CAPACITY),
        );
        let wasi = WasiCtxBuilder::new()
            .arg(&program.name)
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .preopened_dir(&program.dir, ".", FsPerms::ReadOnly)
            .map_err(err)?
            .build_p1();
        let mut linker = wasmtime::Linker::new(&self.0);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |h: &mut WasmtimeHost| &mut h.wasi)
            .map_err(err)?;
        linker
            .func_wrap(
                "bench",
                "start",
                |mut c: wasmtime::Caller<'_, WasmtimeHost>| {
                    c.data_mut().marks.start = Some(Instant::now());
                },
            )
            .map_err(err)?;
        linker
            .func_wrap(
                "bench",
                "end",
                |mut c: wasmtime::Caller<'_, WasmtimeHost>| {
                    c.data_mut().marks.end = Some(Instant::now());
                },
            )
            .map_err(err)?;
        let host = WasmtimeHost {
            wasi,
            marks: Marks::default(),
        };
        let mut store = wasmtime::Store::new(&self.0, host);
        let instance = linker.instantiate(&mut store, module).map_err(err)?;
        let instantiate = began.elapsed();
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(err)?;
        match start.call(&mut store, ()) {
            Ok(()) => {}
            Err(e)
                if e.downcast_ref::<wasmtime_wasi::I32Exit>()
                    .is_some_and(|x| x.0 == 0) => {}
            Err(e) => return Err(format!("{}: {e:?}", program.name)),
        }
        Ok(Run {
            instantiate,
            execute: store.data().marks.execute(&program.name)?,
            stdout: stdout.contents().to_vec(),
            stderr: stderr.contents().to_vec(),
        })
    }
}
