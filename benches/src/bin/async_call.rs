//! `async_call`: the cost of an async call into wasm, strata against wasmtime.
//!
//! Each runtime has one async store per allocator (on demand, pooling) with a module
//! whose `nop` does nothing and whose `wait` calls an async host function that is
//! pending once. `TypedFunc::call_async` futures are polled to the end with a no-op
//! waker, so no executor is timed: `nop` costs taking a fiber stack, switching onto it
//! and back, and giving the stack back; `wait` adds one suspension and resumption in
//! the middle. `--calls` untimed calls warm up, then `--rounds` rounds of `--calls`
//! timed calls; the median round is reported in ns per call.

use strata_benches::cli::{self, Which};
use strata_benches::measure::{Rounds, fmt_opt, per_iteration, ratio};
use strata_benches::{Allocator, Result, strata_side, wasmtime_side};

const USAGE: &str = "\
usage: async_call [--calls N] [--rounds N] [--runtime strata|wasmtime]

  --calls N    calls per round (default 200000)
  --rounds N   timed rounds; the median is reported (default 5)
  --runtime    run only this runtime (default: both)";

struct Options {
    calls: u32,
    rounds: u32,
    which: Which,
}

fn parse_args() -> Result<Options> {
    let mut calls = 200_000;
    let common = cli::parse(USAGE, 5, |flag, args| match flag {
        "--calls" => {
            calls = cli::value(args, flag)?;
            Ok(true)
        }
        _ => Ok(false),
    })?;
    if calls == 0 {
        return Err("--calls must be positive".into());
    }
    Ok(Options {
        calls,
        rounds: common.rounds,
        which: common.which,
    })
}

/// Times `call` (which returns how often the future was pending), checking that it
/// was pending `expected` times.
fn time(
    opts: &Options,
    expected: usize,
    mut call: impl FnMut() -> Result<usize>,
) -> Result<Rounds> {
    per_iteration(opts.calls, opts.calls, opts.rounds, || match call()? {
        n if n == expected => Ok(()),
        n => Err(format!("the call was pending {n} times, not {expected}")),
    })
}

macro_rules! measure {
    ($side:ident, $opts:expr, $alloc:expr) => {{
        let mut calls = $side::AsyncCalls::new($alloc)?;
        let nop = time($opts, 0, || calls.nop())?;
        let wait = time($opts, 1, || calls.wait())?;
        Ok::<_, String>([nop, wait])
    }};
}

fn main() {
    let opts = parse_args().unwrap_or_else(|e| cli::usage_error(&e, USAGE));
    println!(
        "median of {} rounds of {} calls, after {} warm-up calls\n",
        opts.rounds, opts.calls, opts.calls
    );
    println!(
        "{:<44} {:>10} {:>10} {:>16}",
        "benchmark, ns/call", "strata", "wasmtime", "strata/wasmtime"
    );
    for alloc in Allocator::ALL {
        let run = || -> Result<_> {
            let s = opts
                .which
                .strata()
                .then(|| measure!(strata_side, &opts, alloc))
                .transpose()?;
            let w = opts
                .which
                .wasmtime()
                .then(|| measure!(wasmtime_side, &opts, alloc))
                .transpose()?;
            Ok((s, w))
        };
        let (s, w) = run().unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(1)
        });
        for (i, what) in [
            "call_async of an empty function",
            "... calling a host fn pending once",
        ]
        .into_iter()
        .enumerate()
        {
            let (sm, wm) = (s.map(|r| r[i].median_ns), w.map(|r| r[i].median_ns));
            println!(
                "{:<44} {:>10} {:>10} {:>16}",
                format!("{what} ({})", alloc.label()),
                fmt_opt(sm, 0),
                fmt_opt(wm, 0),
                fmt_opt(ratio(sm, wm), 2)
            );
        }
    }
}
