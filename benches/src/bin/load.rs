//! `load`: how long strata and wasmtime take to load a precompiled module, against
//! compiling it.
//!
//! For each module, on both runtimes with their default `Engine`: the median compile
//! time (`Module::new`) of `--compile-rounds`, the size of the artifact `Module::serialize`
//! writes, and the mean time per load, median of `--rounds` rounds, of
//!
//! - `deserialize_file`: `unsafe Module::deserialize_file` of the artifact written to a
//!   file in the temporary directory, then dropping the module (the headline);
//! - `deserialize`: `unsafe Module::deserialize` of the artifact's bytes, then dropping it;
//! - `deserialize_file + instantiate (+ call)`: `deserialize_file`, a new `Store`,
//!   instantiation with every imported function defined as a stub that fails if called,
//!   and a call of the export `answer` where the module has one; then all is dropped.
//!
//! The runtimes take turns round by round, so a change in the machine's load hits
//! both. The loads in a round are as many as fit in `--round-ms`, counted for each
//! runtime and measure on a few untimed loads first.
//!
//! `--precompile-wasmtime IN OUT` writes wasmtime's artifact of IN to OUT instead, for
//! a wasmtime built with only `runtime` and `std` (for `size.sh`, which runs it with
//! the wasmtime twin of the minimal embedder).

use std::path::{Path, PathBuf};
use std::time::Instant;
use strata_benches::cli::{self, Which};
use strata_benches::measure::{Rounds, fmt_opt, nanos, ratio};
use strata_benches::{Result, err, modules, sightglass};

const USAGE: &str = "\
usage: load [--module PATH] [--rounds N] [--compile-rounds N] [--round-ms N]
            [--measure file|bytes|run] [--dir PATH] [--runtime strata|wasmtime]
       load --precompile-wasmtime IN OUT

  --module PATH       load only this module (.wasm or .wat), or with `synthetic`
                      only the generated one (default: sqlite3, gcc-loops and the
                      synthetic SpiderMonkey-sized module)
  --rounds N          timed rounds of loads; the median is reported (default 5)
  --compile-rounds N  compilations of each module; the median is reported (default 3)
  --round-ms N        about how long one round of one measure lasts, which sets the
                      loads per round (default 200)
  --measure M         time only `deserialize_file` (file), `deserialize` (bytes) or
                      `deserialize_file` + instantiate + call (run), e.g. for `perf`
                      (default: all three)
  --dir PATH          the Sightglass folder (default: $SIGHTGLASS_DIR or
                      ../shared/bench/sightglass beside the repository)
  --runtime           run only this runtime (default: both)
  --precompile-wasmtime IN OUT
                      write wasmtime's precompiled artifact of IN (.wasm or .wat) to
                      OUT, for a wasmtime built with only its `runtime` and `std`
                      features (benches/minimal-wasmtime), and exit";

struct Options {
    module: Option<PathBuf>,
    rounds: u32,
    compile_rounds: u32,
    round_ms: u32,
    dir: PathBuf,
    which: Which,
    precompile_wasmtime: Option<(PathBuf, PathBuf)>,
    measure: Option<Measure>,
}

fn parse_args() -> Result<Options> {
    let (mut module, mut compile_rounds, mut round_ms) = (None, 3, 200);
    let (mut dir, mut precompile_wasmtime) = (sightglass::default_dir(), None);
    let mut measure = None;
    let common = cli::parse(USAGE, 5, |flag, args| {
        match flag {
            "--module" => module = Some(cli::value(args, flag)?),
            "--compile-rounds" => compile_rounds = cli::value(args, flag)?,
            "--round-ms" => round_ms = cli::value(args, flag)?,
            "--dir" => dir = cli::value(args, flag)?,
            "--measure" => measure = Some(cli::value(args, flag)?),
            "--precompile-wasmtime" => {
                let input = cli::value(args, flag)?;
                precompile_wasmtime = Some((input, cli::value(args, flag)?));
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if compile_rounds == 0 || round_ms == 0 {
        return Err("--compile-rounds and --round-ms must be positive".into());
    }
    Ok(Options {
        module,
        rounds: common.rounds,
        compile_rounds,
        round_ms,
        dir,
        which: common.which,
        precompile_wasmtime,
        measure,
    })
}

/// What each runtime does, with the same names on both; expanded over `strata` and
/// `wasmtime` below, as `strata_benches::runtime_side!` does for the other benchmarks.
trait Loader {
    /// Compiles `wasm` with `Module::new` and keeps the module.
    fn compile(&mut self, wasm: &[u8]) -> Result<()>;
    /// The kept module's artifact, from `Module::serialize`.
    fn serialize(&self) -> Result<Vec<u8>>;
    /// `deserialize_file` of `path`, then drops the module.
    fn load_file(&self, path: &Path) -> Result<()>;
    /// `deserialize` of `bytes`, then drops the module.
    fn load_bytes(&self, bytes: &[u8]) -> Result<()>;
    /// Whether [`Loader::load_and_run`] can instantiate the kept module: all its
    /// imports are functions (which are given failing stubs).
    fn can_instantiate(&self) -> bool;
    /// `deserialize_file` of `path`, a new store, instantiation with stub imports, and
    /// a call of `answer` if the module exports it, returning its result; then drops it
    /// all.
    fn load_and_run(&self, path: &Path) -> Result<Option<i32>>;
}

macro_rules! loader {
    ($runtime:ident) => {
        use super::{Loader, Result, err};
        use std::path::Path;
        use $runtime::{Engine, Error, ExternType, Linker, Module, Store};

        /// The runtime's default engine, and what was made of the current module.
        pub struct Side {
            engine: Engine,
            module: Option<Module>,
            /// Stubs for the module's imports, if they are all functions.
            linker: Option<Linker<()>>,
            exports_answer: bool,
        }

        impl Side {
            pub fn new() -> Side {
                Side {
                    engine: Engine::default(),
                    module: None,
                    linker: None,
                    exports_answer: false,
                }
            }
        }

        impl Loader for Side {
            fn compile(&mut self, wasm: &[u8]) -> Result<()> {
                let module = Module::new(&self.engine, wasm).map_err(err)?;
                let mut linker = Some(Linker::new(&self.engine));
                for import in module.imports() {
                    match (import.ty(), &mut linker) {
                        (ExternType::Func(ty), Some(l)) => {
                            l.func_new(import.module(), import.name(), ty, |_, _, _| {
                                Err(Error::msg("a stub import was called"))
                            })
                            .map_err(err)?;
                        }
                        _ => linker = None,
                    }
                }
                self.exports_answer = module.get_export("answer").is_some();
                self.linker = linker;
                self.module = Some(module);
                Ok(())
            }

            fn serialize(&self) -> Result<Vec<u8>> {
                self.module
                    .as_ref()
                    .ok_or("not compiled")?
                    .serialize()
                    .map_err(err)
            }

            fn load_file(&self, path: &Path) -> Result<()> {
                // SAFETY: the file is an artifact this runtime wrote, and nothing
                // changes it while the module lives.
                let module = unsafe { Module::deserialize_file(&self.engine, path) };
                drop(module.map_err(err)?);
                Ok(())
            }

            fn load_bytes(&self, bytes: &[u8]) -> Result<()> {
                // SAFETY: the bytes are an artifact this runtime wrote.
                let module = unsafe { Module::deserialize(&self.engine, bytes) };
                drop(module.map_err(err)?);
                Ok(())
            }

            fn can_instantiate(&self) -> bool {
                self.linker.is_some()
            }

            fn load_and_run(&self, path: &Path) -> Result<Option<i32>> {
                let linker = self.linker.as_ref().ok_or("imports other than functions")?;
                // SAFETY: as in `load_file`.
                let module = unsafe { Module::deserialize_file(&self.engine, path) };
                let module = module.map_err(err)?;
                let mut store = Store::new(&self.engine, ());
                let instance = linker.instantiate(&mut store, &module).map_err(err)?;
                if !self.exports_answer {
                    return Ok(None);
                }
                let answer = instance
                    .get_typed_func::<(), i32>(&mut store, "answer")
                    .map_err(err)?;
                answer.call(&mut store, ()).map(Some).map_err(err)
            }
        }
    };
}

mod strata_loader {
    loader!(strata);
}

mod wasmtime_loader {
    loader!(wasmtime);
}

/// A module to measure.
struct Subject {
    /// The name in the table.
    name: String,
    /// What the table says about it besides its size.
    about: String,
    wasm: Vec<u8>,
    /// What `answer` must return, if it is exported.
    answer: Option<i32>,
}

impl Subject {
    fn from_file(path: &Path) -> Result<Subject> {
        let wasm = wat::parse_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into());
        Ok(Subject {
            about: functions_about(&wasm),
            name,
            wasm,
            answer: None,
        })
    }

    fn sightglass(dir: &Path, file: &str) -> Result<Subject> {
        let mut subject = Subject::from_file(&dir.join(file))?;
        subject.name = file.to_string();
        Ok(subject)
    }

    fn synthetic() -> Result<Subject> {
        let began = Instant::now();
        let text = modules::large_module(modules::LARGE_FUNCS);
        let wasm = wat::parse_str(&text).map_err(err)?;
        println!(
            "generated the synthetic module in {:.1} s: {} bytes of WAT, {} bytes of wasm, \
             {} functions",
            began.elapsed().as_secs_f64(),
            text.len(),
            wasm.len(),
            modules::LARGE_FUNCS + 1
        );
        println!("its largest sections: {}", section_sizes(&wasm));
        Ok(Subject {
            name: "synthetic SpiderMonkey-sized".into(),
            about: format!(
                "{} functions, all in the table, 1 MiB data segment, name section",
                modules::LARGE_FUNCS + 1
            ),
            wasm,
            answer: Some(modules::LARGE_ANSWER),
        })
    }
}

/// "N defined functions", read from the module's function section.
fn functions_about(wasm: &[u8]) -> String {
    defined_functions(wasm).map_or_else(String::new, |n| format!("{n} defined functions"))
}

/// Reads an unsigned LEB128 `u32` at `*at`, moving past it.
fn leb(bytes: &[u8], at: &mut usize) -> Option<u32> {
    let (mut value, mut shift) = (0u32, 0);
    loop {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
}

/// The sections of a binary module: id, where the contents start, and their size.
fn sections(wasm: &[u8]) -> Vec<(u8, usize, usize)> {
    let mut found = Vec::new();
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let Some(size) = leb(wasm, &mut at) else {
            break;
        };
        found.push((id, at, size as usize));
        at += size as usize;
    }
    found
}

/// The count at the start of the function section of a binary module, if it has one.
fn defined_functions(wasm: &[u8]) -> Option<u32> {
    let (_, start, _) = sections(wasm).into_iter().find(|s| s.0 == 3)?;
    leb(wasm, &mut { start })
}

/// "code N KiB, data N KiB, ...": the largest sections of a binary module.
fn section_sizes(wasm: &[u8]) -> String {
    sections(wasm)
        .into_iter()
        .filter(|&(_, _, size)| size >= 16 * 1024)
        .map(|(id, start, size)| {
            let name = match id {
                0 => {
                    let mut at = start;
                    let len = leb(wasm, &mut at).unwrap_or(0) as usize;
                    let name = wasm.get(at..at + len).unwrap_or_default();
                    format!("custom `{}`", String::from_utf8_lossy(name))
                }
                2 => "import".into(),
                3 => "function".into(),
                7 => "export".into(),
                9 => "element".into(),
                10 => "code".into(),
                11 => "data".into(),
                _ => format!("section {id}"),
            };
            format!("{name} {} KiB", size / 1024)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One runtime's numbers for one module.
#[derive(Default)]
struct Numbers {
    compile_ns: Vec<f64>,
    artifact_bytes: Option<usize>,
    file: Vec<f64>,
    bytes: Vec<f64>,
    run: Vec<f64>,
}

/// A runtime with its numbers and the files it loads for the current module.
struct Side {
    name: &'static str,
    loader: Box<dyn Loader>,
    numbers: Numbers,
    artifact: Vec<u8>,
    path: PathBuf,
}

/// The three load measures.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Measure {
    File,
    Bytes,
    Run,
}

impl std::str::FromStr for Measure {
    type Err = String;

    fn from_str(s: &str) -> Result<Measure> {
        match s {
            "file" => Ok(Measure::File),
            "bytes" => Ok(Measure::Bytes),
            "run" => Ok(Measure::Run),
            _ => Err(format!(
                "unknown measure `{s}`: expected file, bytes or run"
            )),
        }
    }
}

impl Side {
    fn once(&self, measure: Measure) -> Result<()> {
        match measure {
            Measure::File => self.loader.load_file(&self.path),
            Measure::Bytes => self.loader.load_bytes(&self.artifact),
            Measure::Run => self.loader.load_and_run(&self.path).map(drop),
        }
    }

    /// How many loads fit in `round_ms`, from a few untimed ones (at least 3, and for
    /// at least a tenth of `round_ms`).
    fn loads_per_round(&self, measure: Measure, round_ms: u32) -> Result<u32> {
        let began = Instant::now();
        let mut n = 0u32;
        while n < 3 || began.elapsed().as_secs_f64() * 1e4 < f64::from(round_ms) {
            self.once(measure)?;
            n += 1;
        }
        let per_load_ms = began.elapsed().as_secs_f64() * 1e3 / f64::from(n);
        // Truncation intended: a count of loads.
        Ok((f64::from(round_ms) / per_load_ms).clamp(3.0, 1e6) as u32)
    }

    /// The mean time per load over `loads` loads, in ns.
    fn round(&self, measure: Measure, loads: u32) -> Result<f64> {
        let began = Instant::now();
        for _ in 0..loads {
            self.once(measure)?;
        }
        Ok(nanos(began.elapsed()) / f64::from(loads))
    }

    fn samples(&mut self, measure: Measure) -> &mut Vec<f64> {
        match measure {
            Measure::File => &mut self.numbers.file,
            Measure::Bytes => &mut self.numbers.bytes,
            Measure::Run => &mut self.numbers.run,
        }
    }
}

/// A folder in the temporary directory for the artifacts, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let dir = std::env::temp_dir().join(format!("strata-load-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a left-over folder in the temporary directory does no harm.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Measures `subject` on every side; the loads per round of each side and measure.
fn measure(
    opts: &Options,
    subject: &Subject,
    sides: &mut [Side],
    tmp: &TempDir,
) -> Result<Vec<(Measure, Vec<u32>)>> {
    for side in sides.iter_mut() {
        side.numbers = Numbers::default();
    }
    for _ in 0..opts.compile_rounds {
        for side in sides.iter_mut() {
            let began = Instant::now();
            side.loader
                .compile(&subject.wasm)
                .map_err(|e| format!("{}: compiling: {e}", side.name))?;
            side.numbers.compile_ns.push(nanos(began.elapsed()));
        }
    }
    let stem: String = subject
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    for side in sides.iter_mut() {
        side.artifact = side.loader.serialize()?;
        side.numbers.artifact_bytes = Some(side.artifact.len());
        side.path = tmp.0.join(format!("{stem}.{}", side.name));
        std::fs::write(&side.path, &side.artifact)
            .map_err(|e| format!("{}: {e}", side.path.display()))?;
        // Check once that the artifact loads and runs before timing it.
        side.loader.load_bytes(&side.artifact)?;
        if side.loader.can_instantiate() {
            let got = side.loader.load_and_run(&side.path)?;
            if got != subject.answer {
                return Err(format!(
                    "{}: `answer` returned {got:?}, expected {:?}",
                    side.name, subject.answer
                ));
            }
        }
    }

    let mut measures = vec![Measure::File, Measure::Bytes];
    if sides.iter().all(|s| s.loader.can_instantiate()) {
        measures.push(Measure::Run);
    }
    measures.retain(|m| opts.measure.is_none_or(|o| o == *m));
    let mut loads = Vec::new();
    for &m in &measures {
        let per_side = sides
            .iter()
            .map(|s| s.loads_per_round(m, opts.round_ms))
            .collect::<Result<Vec<u32>>>()?;
        loads.push((m, per_side));
    }
    for _ in 0..opts.rounds {
        for (m, per_side) in &loads {
            for (side, &n) in sides.iter_mut().zip(per_side) {
                let mean = side.round(*m, n)?;
                side.samples(*m).push(mean);
            }
        }
    }
    for side in sides.iter() {
        // Best effort, as for `TempDir`: the folder goes at the end anyway.
        let _ = std::fs::remove_file(&side.path);
    }
    Ok(loads)
}

/// A row of the table: the median of `samples` of each runtime, scaled, and the spread.
fn row(label: &str, unit_ns: f64, decimals: usize, s: Option<&[f64]>, w: Option<&[f64]>) {
    let summary = |xs: Option<&[f64]>| {
        xs.filter(|xs| !xs.is_empty())
            .map(|xs| Rounds::from_means(xs.to_vec()))
    };
    let (s, w) = (summary(s), summary(w));
    let value = |r: Option<Rounds>| r.map(|r| r.median_ns / unit_ns);
    let spread =
        |r: Option<Rounds>| r.map_or("-".to_string(), |r| format!("{:.0}%", r.spread_percent()));
    println!(
        "| {label} | {} | {} | {} | {} / {} |",
        fmt_opt(value(s), decimals),
        fmt_opt(value(w), decimals),
        fmt_opt(ratio(value(s), value(w)), 2),
        spread(s),
        spread(w)
    );
}

fn report(opts: &Options, subject: &Subject, sides: &[Side], loads: &[(Measure, Vec<u32>)]) {
    let side = |name: &str| sides.iter().find(|s| s.name == name).map(|s| &s.numbers);
    let (s, w) = (side("strata"), side("wasmtime"));
    println!(
        "\n### {} ({} KiB of wasm{}{})\n",
        subject.name,
        subject.wasm.len() / 1024,
        if subject.about.is_empty() { "" } else { ", " },
        subject.about
    );
    println!("| | strata | wasmtime | strata/wasmtime | spread strata / wasmtime |");
    println!("|---|---:|---:|---:|---|");
    let kib = |n: Option<&Numbers>| n.and_then(|n| n.artifact_bytes).map(|b| b as f64 / 1024.0);
    println!(
        "| artifact size, KiB | {} | {} | {} | |",
        fmt_opt(kib(s), 0),
        fmt_opt(kib(w), 0),
        fmt_opt(ratio(kib(s), kib(w)), 2)
    );
    let compile_label = format!(
        "compile (`Module::new`), ms, median of {}",
        opts.compile_rounds
    );
    row(
        &compile_label,
        1e6,
        1,
        s.map(|n| &n.compile_ns[..]),
        w.map(|n| &n.compile_ns[..]),
    );
    for (m, per_side) in loads {
        let (label, pick): (&str, fn(&Numbers) -> &[f64]) = match m {
            Measure::File => ("**`deserialize_file` + drop, µs**", |n| &n.file),
            Measure::Bytes => ("`deserialize` (bytes) + drop, µs", |n| &n.bytes),
            Measure::Run if subject.answer.is_some() => (
                "`deserialize_file` + instantiate + call `answer`, µs",
                |n| &n.run,
            ),
            Measure::Run => (
                "`deserialize_file` + instantiate (stub imports), µs",
                |n| &n.run,
            ),
        };
        let counts = per_side
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join("/");
        row(
            &format!("{label} ({counts} per round)"),
            1e3,
            1,
            s.map(pick),
            w.map(pick),
        );
    }
}

fn main() {
    let opts = parse_args().unwrap_or_else(|e| cli::usage_error(&e, USAGE));
    let result = match &opts.precompile_wasmtime {
        Some((input, output)) => precompile_wasmtime(input, output),
        None => bench(&opts),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn precompile_wasmtime(input: &Path, output: &Path) -> Result<()> {
    let wasm = wat::parse_file(input).map_err(|e| format!("{}: {e}", input.display()))?;
    // wasmtime's artifacts record the compiling engine's wasm features and GC
    // collector, and an engine without them refuses to load them ("module was compiled
    // with GC however GC is disabled in the host"). The features this build of wasmtime
    // turns on by default beyond those of a build with only `runtime` and `std` are
    // turned off, so that `minimal-wasmtime` loads the artifact.
    let mut config = wasmtime::Config::new();
    config
        .gc_support(false)
        .wasm_exceptions(false)
        .wasm_threads(false)
        .wasm_component_model(false)
        .concurrency_support(false);
    let engine = wasmtime::Engine::new(&config).map_err(err)?;
    let artifact = engine.precompile_module(&wasm).map_err(err)?;
    std::fs::write(output, &artifact).map_err(|e| format!("{}: {e}", output.display()))?;
    println!(
        "wrote {} ({} bytes), wasmtime 48's artifact of {} for a build of wasmtime with \
         only `runtime` and `std`",
        output.display(),
        artifact.len(),
        input.display()
    );
    Ok(())
}

fn bench(opts: &Options) -> Result<()> {
    let mut sides = Vec::new();
    let new_side = |name, loader: Box<dyn Loader>| Side {
        name,
        loader,
        numbers: Numbers::default(),
        artifact: Vec::new(),
        path: PathBuf::new(),
    };
    if opts.which.strata() {
        sides.push(new_side("strata", Box::new(strata_loader::Side::new())));
    }
    if opts.which.wasmtime() {
        sides.push(new_side("wasmtime", Box::new(wasmtime_loader::Side::new())));
    }
    let tmp = TempDir::new()?;
    println!(
        "artifacts in {}; default Engine on both; load times are the mean per load of the \
         median of {} rounds, the runtimes taking turns; ratio = strata / wasmtime",
        tmp.0.display(),
        opts.rounds
    );
    let subjects: Vec<Box<dyn Fn() -> Result<Subject>>> = match &opts.module {
        Some(path) if path.as_os_str() == "synthetic" => vec![Box::new(Subject::synthetic)],
        Some(path) => vec![Box::new(move || Subject::from_file(path))],
        None => vec![
            Box::new(|| Subject::sightglass(&opts.dir, "sqlite3/sqlite3.wasm")),
            Box::new(|| Subject::sightglass(&opts.dir, "gcc-loops/benchmark.wasm")),
            Box::new(Subject::synthetic),
        ],
    };
    for make in subjects {
        let subject = make()?;
        let loads = measure(opts, &subject, &mut sides, &tmp)
            .map_err(|e| format!("{}: {e}", subject.name))?;
        report(opts, &subject, &sides, &loads);
    }
    Ok(())
}
