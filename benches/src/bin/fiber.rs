//! `fiber`: the cost of switching onto a fiber's stack and back, strata-fiber against
//! wasmtime's fiber crate (`wasmtime-internal-fiber`, the one wasmtime 48 runs async
//! calls on).
//!
//! One pair is a `resume` from the host stack into a suspended fiber and the fiber's
//! `suspend` back, passing a `u64` each way; reported in ns per pair. Each runtime runs
//! one fiber on a 64 KiB stack: `--pairs` untimed pairs to warm up, then `--rounds`
//! rounds of `--pairs` timed pairs; the median round is reported.

use std::hint::black_box;
use strata_benches::Result;
use strata_benches::cli::{self, Which};
use strata_benches::measure::{Rounds, fmt_opt, per_iteration, ratio};

const USAGE: &str = "\
usage: fiber [--pairs N] [--rounds N] [--runtime strata|wasmtime]

  --pairs N    resume+suspend pairs per round (default 10000000)
  --rounds N   timed rounds; the median is reported (default 5)
  --runtime    run only this runtime (default: both)";

/// Stack size of both fibers.
const STACK_SIZE: usize = 64 * 1024;

struct Options {
    pairs: u32,
    rounds: u32,
    which: Which,
}

fn parse_args() -> Result<Options> {
    let mut pairs: u32 = 10_000_000;
    let common = cli::parse(USAGE, 5, |flag, args| match flag {
        "--pairs" => {
            pairs = cli::value(args, flag)?;
            Ok(true)
        }
        _ => Ok(false),
    })?;
    if pairs == 0 {
        return Err("--pairs must be positive".into());
    }
    if pairs.checked_mul(common.rounds + 1).is_none() {
        return Err("--pairs × (--rounds + 1) must fit in 32 bits".into());
    }
    Ok(Options {
        pairs,
        rounds: common.rounds,
        which: common.which,
    })
}

/// The same benchmark over both crates, which have the same `Fiber` shape.
macro_rules! pairs {
    ($krate:ident, $opts:expr) => {{
        let opts: &Options = $opts;
        // Every pair the fiber will be resumed for, plus the final resume that
        // lets it return.
        let total = u64::from(opts.pairs) * u64::from(opts.rounds + 1);
        let stack = $krate::FiberStack::new(STACK_SIZE, false).map_err(strata_benches::err)?;
        let fiber = $krate::Fiber::new(stack, move |first: u64, suspend| {
            let mut x = first;
            for _ in 0..total {
                x = suspend.suspend(x + 1);
            }
            x
        })
        .map_err(strata_benches::err)?;
        let mut next = 0u64;
        let rounds = per_iteration(opts.pairs, opts.pairs, opts.rounds, || {
            match fiber.resume(black_box(next)) {
                Err(y) if y == next + 1 => {
                    next = y;
                    Ok(())
                }
                other => Err(format!("resume({next}) gave {other:?}")),
            }
        })?;
        match fiber.resume(u64::MAX) {
            Ok(u64::MAX) if fiber.done() => Ok(rounds),
            other => Err(format!("final resume gave {other:?}")),
        }
    }};
}

fn strata(opts: &Options) -> Result<Rounds> {
    pairs!(strata_fiber, opts)
}

fn wasmtime(opts: &Options) -> Result<Rounds> {
    pairs!(wasmtime_fiber, opts)
}

fn main() {
    let opts = parse_args().unwrap_or_else(|e| cli::usage_error(&e, USAGE));
    let run = || -> Result<(Option<Rounds>, Option<Rounds>)> {
        let s = opts.which.strata().then(|| strata(&opts)).transpose()?;
        let w = opts.which.wasmtime().then(|| wasmtime(&opts)).transpose()?;
        Ok((s, w))
    };
    let (s, w) = run().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    println!(
        "median of {} rounds of {} pairs, after one warm-up round\n",
        opts.rounds, opts.pairs
    );
    println!(
        "{:<30} {:>10} {:>10} {:>16}",
        "benchmark", "strata", "wasmtime", "strata/wasmtime"
    );
    let (sm, wm) = (s.map(|r| r.median_ns), w.map(|r| r.median_ns));
    println!(
        "{:<30} {:>10} {:>10} {:>16}",
        "resume+suspend, ns/pair",
        fmt_opt(sm, 2),
        fmt_opt(wm, 2),
        fmt_opt(ratio(sm, wm), 2)
    );
    println!(
        "{:<30} {:>10} {:>10}",
        "spread of rounds, %",
        fmt_opt(s.map(|r| r.spread_percent()), 1),
        fmt_opt(w.map(|r| r.spread_percent()), 1)
    );
}
