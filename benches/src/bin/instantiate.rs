//! `instantiate`: how long strata and wasmtime take to instantiate a small module and
//! drop it again, with the on-demand and the pooling allocator.
//!
//! Default mode: one thread; for each runtime and allocator, the mean time of
//! "new store, instantiate, drop the store" over `--iters` iterations, after a warm-up,
//! repeated `--rounds` times; the median round is reported.
//!
//! `--threads` mode: per runtime and allocator, one thread instantiates `--iters` times,
//! then two threads do `--iters` each at once from the same `Engine` and `Module`. It
//! reports each rate, the per-thread rate as a fraction of the one-thread rate, failed
//! instantiations and the process's mapping count before and after.

use std::time::{Duration, Instant};
use strata_benches::cli::{self, Which};
use strata_benches::measure::{self, Rounds, fmt_opt, mapping_count, ratio};
use strata_benches::{Allocator, Instantiate, Result, modules, strata_side, wasmtime_side};

const USAGE: &str = "\
usage: instantiate [--threads] [--iters N] [--rounds N] [--warmup N]
                   [--runtime strata|wasmtime] [--alloc on-demand|pooling]

  --iters N    instantiations per round (default 10000); with --threads, per thread
               (default 100000)
  --rounds N   timed rounds; the median is reported (default 5)
  --warmup N   untimed instantiations first (default 1000)
  --threads    one thread, then two threads at once, sharing one Engine and Module
  --runtime    run only this runtime (default: both)
  --alloc      use only this allocator (default: both)";

struct Options {
    threads: bool,
    iters: Option<u32>,
    rounds: u32,
    warmup: u32,
    which: Which,
    alloc: Option<Allocator>,
}

impl Options {
    /// The allocators selected with `--alloc`.
    fn allocators(&self) -> impl Iterator<Item = Allocator> + use<> {
        let only = self.alloc;
        Allocator::ALL
            .into_iter()
            .filter(move |a| only.is_none_or(|o| o == *a))
    }
}

fn parse_args() -> Result<Options> {
    let mut opts = Options {
        threads: false,
        iters: None,
        rounds: 5,
        warmup: 1000,
        which: Which::Both,
        alloc: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => opts.threads = true,
            "--iters" => opts.iters = Some(cli::value(&mut args, &arg)?),
            "--rounds" => opts.rounds = cli::value(&mut args, &arg)?,
            "--warmup" => opts.warmup = cli::value(&mut args, &arg)?,
            "--runtime" => opts.which = cli::value(&mut args, &arg)?,
            "--alloc" => opts.alloc = Some(cli::value(&mut args, &arg)?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    if opts.iters == Some(0) || opts.rounds == 0 {
        return Err("--iters and --rounds must be positive".into());
    }
    Ok(opts)
}

/// Both runtimes set up for `alloc`, each `None` if not selected with `--runtime`.
struct Pair {
    strata: Option<Box<dyn Instantiate>>,
    wasmtime: Option<Box<dyn Instantiate>>,
}

impl Pair {
    fn new(alloc: Allocator, which: Which, wasm: &[u8]) -> Result<Pair> {
        let setup = |name: &str, make: &dyn Fn() -> Result<Box<dyn Instantiate>>| {
            let side = make().map_err(|e| format!("{name}, {}: {e}", alloc.label()))?;
            side.check()
                .map_err(|e| format!("{name}, {}: wrong instance: {e}", alloc.label()))?;
            Ok::<_, String>(side)
        };
        let strata = which
            .strata()
            .then(|| {
                setup("strata", &|| {
                    Ok(Box::new(strata_side::Instantiator::new(alloc, wasm)?))
                })
            })
            .transpose()?;
        let wasmtime = which
            .wasmtime()
            .then(|| {
                setup("wasmtime", &|| {
                    Ok(Box::new(wasmtime_side::Instantiator::new(alloc, wasm)?))
                })
            })
            .transpose()?;
        Ok(Pair { strata, wasmtime })
    }

    /// The selected runtimes, named.
    fn sides(&self) -> impl Iterator<Item = (&'static str, &dyn Instantiate)> {
        let strata = self.strata.as_deref().map(|s| ("strata", s));
        let wasmtime = self.wasmtime.as_deref().map(|w| ("wasmtime", w));
        strata.into_iter().chain(wasmtime)
    }
}

fn single_thread(opts: &Options, wasm: &[u8]) -> Result<()> {
    let iters = opts.iters.unwrap_or(10_000);
    println!(
        "instantiate + drop, one thread: mean of {iters} iterations, median of {} rounds \
         (after {} warm-up iterations)\n",
        opts.rounds, opts.warmup
    );
    println!(
        "{:<18} {:>10} {:>12} {:>16}   round spread (max-min)/median",
        "config", "strata µs", "wasmtime µs", "strata/wasmtime"
    );
    for alloc in opts.allocators() {
        let pair = Pair::new(alloc, opts.which, wasm)?;
        let time = |side: Option<&dyn Instantiate>| -> Result<Option<Rounds>> {
            side.map(|s| {
                measure::per_iteration(opts.warmup, iters, opts.rounds, || s.instantiate_once())
            })
            .transpose()
        };
        let s = time(pair.strata.as_deref())?;
        let w = time(pair.wasmtime.as_deref())?;
        let us = |r: Option<Rounds>| r.map(|r| r.median_ns / 1e3);
        let spread = |r: Option<Rounds>| {
            r.map_or("-".to_string(), |r| format!("{:.0}%", r.spread_percent()))
        };
        println!(
            "{:<18} {:>10} {:>12} {:>16}   strata {}, wasmtime {}",
            alloc.label(),
            fmt_opt(us(s), 2),
            fmt_opt(us(w), 2),
            fmt_opt(ratio(us(s), us(w)), 2),
            spread(s),
            spread(w),
        );
    }
    Ok(())
}

/// How far the mapping count may move in `--threads` mode before it counts as a leak.
/// A leak of one mapping per instantiation moves it by hundreds of thousands; a handful
/// come and go with which pooling slots are warm (wasmtime's pool shows ±3).
const MAPS_TOLERANCE: usize = 16;

/// What one instantiation loop did.
struct LoopResult {
    elapsed: Duration,
    failures: u32,
    first_error: Option<String>,
}

fn instantiate_loop(side: &dyn Instantiate, iters: u32) -> LoopResult {
    let mut failures = 0;
    let mut first_error = None;
    let start = Instant::now();
    for _ in 0..iters {
        if let Err(e) = side.instantiate_once() {
            failures += 1;
            first_error.get_or_insert(e);
        }
    }
    LoopResult {
        elapsed: start.elapsed(),
        failures,
        first_error,
    }
}

fn two_threads(side: &dyn Instantiate, iters: u32) -> [LoopResult; 2] {
    std::thread::scope(|scope| {
        let a = scope.spawn(|| instantiate_loop(side, iters));
        let b = scope.spawn(|| instantiate_loop(side, iters));
        [a, b].map(|t| t.join().expect("benchmark thread panicked"))
    })
}

/// One runtime's results in `--threads` mode.
struct ThreadsRow {
    one_thread_rate: f64,
    per_thread_rates: [f64; 2],
    maps_before: usize,
    maps_after: usize,
    failures: u32,
    first_error: Option<String>,
}

impl ThreadsRow {
    fn mean_per_thread_rate(&self) -> f64 {
        (self.per_thread_rates[0] + self.per_thread_rates[1]) / 2.0
    }
}

fn measure_threads(side: &dyn Instantiate, iters: u32, warmup: u32) -> ThreadsRow {
    // Warm up both shapes first, so that malloc's per-thread arenas and glibc's cache
    // of thread stacks exist before the first mapping count: what is left to change
    // is the runtime's own mappings.
    let mut runs = vec![instantiate_loop(side, warmup)];
    runs.extend(two_threads(side, warmup));

    let maps_before = mapping_count();
    let one = instantiate_loop(side, iters);
    let two = two_threads(side, iters);
    let maps_after = mapping_count();

    let rate = |r: &LoopResult| f64::from(iters) / r.elapsed.as_secs_f64();
    let one_thread_rate = rate(&one);
    let per_thread_rates = [rate(&two[0]), rate(&two[1])];
    runs.push(one);
    runs.extend(two);
    ThreadsRow {
        one_thread_rate,
        per_thread_rates,
        maps_before,
        maps_after,
        failures: runs.iter().map(|r| r.failures).sum(),
        first_error: runs.into_iter().find_map(|r| r.first_error),
    }
}

fn threads(opts: &Options, wasm: &[u8]) -> Result<bool> {
    let iters = opts.iters.unwrap_or(100_000);
    println!(
        "instantiate + drop: one thread × {iters}, then two threads × {iters} each at once, \
         sharing one Engine and Module\n"
    );
    println!(
        "{:<9} {:<16} {:>12} {:>21} {:>13} {:>19} {:>7}",
        "runtime",
        "config",
        "1 thread /s",
        "2 threads /s each",
        "per-thread÷1",
        "maps before→after",
        "failed"
    );
    let mut ok = true;
    let mut per_thread_us = Vec::new();
    for alloc in opts.allocators() {
        let pair = Pair::new(alloc, opts.which, wasm)?;
        let mut row_us = [None, None];
        for (name, side) in pair.sides() {
            let row = measure_threads(side, iters, opts.warmup);
            println!(
                "{:<9} {:<16} {:>12.0} {:>10.0} {:>10.0} {:>13.2} {:>9} → {:<7} {:>7}",
                name,
                alloc.label(),
                row.one_thread_rate,
                row.per_thread_rates[0],
                row.per_thread_rates[1],
                row.mean_per_thread_rate() / row.one_thread_rate,
                row.maps_before,
                row.maps_after,
                row.failures,
            );
            if let Some(e) = &row.first_error {
                println!("    first failure: {e}");
            }
            ok &= row.failures == 0 && row.maps_after.abs_diff(row.maps_before) <= MAPS_TOLERANCE;
            row_us[usize::from(name == "wasmtime")] = Some(1e6 / row.mean_per_thread_rate());
        }
        per_thread_us.push((alloc, row_us));
    }
    println!("\nper-thread µs per instantiation with two threads:");
    println!(
        "{:<18} {:>10} {:>12} {:>16}",
        "config", "strata µs", "wasmtime µs", "strata/wasmtime"
    );
    for (alloc, [s, w]) in per_thread_us {
        println!(
            "{:<18} {:>10} {:>12} {:>16}",
            alloc.label(),
            fmt_opt(s, 2),
            fmt_opt(w, 2),
            fmt_opt(ratio(s, w), 2)
        );
    }
    Ok(ok)
}

fn main() {
    let opts = parse_args().unwrap_or_else(|e| cli::usage_error(&e, USAGE));
    let wasm = wat::parse_str(modules::instantiation_module()).expect("the module is valid WAT");
    println!(
        "module: {} bytes; 1 page memory with a {} B data segment, {}-entry funcref table, \
         {} functions, {} mutable globals\n",
        wasm.len(),
        modules::DATA_BYTES,
        modules::TABLE_ENTRIES,
        modules::FUNCS,
        modules::GLOBALS
    );
    let result = if opts.threads {
        threads(&opts, &wasm)
    } else {
        single_thread(&opts, &wasm).map(|()| true)
    };
    match result {
        Ok(true) => {}
        Ok(false) => {
            eprintln!(
                "\nFAILED: an instantiation failed or the mapping count moved by more than \
                 {MAPS_TOLERANCE}"
            );
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
