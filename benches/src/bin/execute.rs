//! `execute`: the cost of running code once instantiated, strata against wasmtime.
//!
//! - wasm→host calls: a wasm loop calls an imported no-op host function `--calls` times
//!   (default 10,000,000); reported in ns per call, loop included.
//! - fib: the doubly recursive `fib(--fib)` (default 30) in wasm; reported in ms.
//!
//! Each is run once to warm up, then `--rounds` times; the median round is reported.

use strata_benches::cli::{self, Which};
use strata_benches::measure::{Rounds, per_iteration, print_comparison};
use strata_benches::{Result, modules, strata_side, wasmtime_side};

const USAGE: &str = "\
usage: execute [--calls N] [--fib N] [--rounds N] [--runtime strata|wasmtime]

  --calls N    wasm→host calls per round (default 10000000)
  --fib N      argument of fib (default 30)
  --rounds N   timed rounds; the median is reported (default 5)
  --runtime    run only this runtime (default: both)";

struct Options {
    calls: i32,
    fib: i32,
    rounds: u32,
    which: Which,
}

fn parse_args() -> Result<Options> {
    let (mut calls, mut fib) = (10_000_000, 30);
    let common = cli::parse(USAGE, 5, |flag, args| {
        match flag {
            "--calls" => calls = cli::value(args, flag)?,
            "--fib" => fib = cli::value(args, flag)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if calls <= 0 || !(0..=40).contains(&fib) {
        return Err("--calls must be positive and --fib in 0..=40".into());
    }
    Ok(Options {
        calls,
        fib,
        rounds: common.rounds,
        which: common.which,
    })
}

/// Calls `run` once to warm up, then `rounds` times timed; per-round time in ns.
fn rounds(rounds: u32, run: impl FnMut() -> Result<()>) -> Result<Rounds> {
    per_iteration(1, 1, rounds, run)
}

/// Times the host-call loop; ns per call.
fn host_calls(opts: &Options) -> Result<(Option<f64>, Option<f64>)> {
    let per_call = |r: Rounds| r.median_ns / f64::from(opts.calls);
    let strata = opts.which.strata().then(|| -> Result<f64> {
        let mut b = strata_side::HostCalls::new()?;
        Ok(per_call(rounds(opts.rounds, || b.run(opts.calls))?))
    });
    let wasmtime = opts.which.wasmtime().then(|| -> Result<f64> {
        let mut b = wasmtime_side::HostCalls::new()?;
        Ok(per_call(rounds(opts.rounds, || b.run(opts.calls))?))
    });
    Ok((strata.transpose()?, wasmtime.transpose()?))
}

/// Times fib, checking its result; ms per call.
fn fib(opts: &Options) -> Result<(Option<f64>, Option<f64>)> {
    let n = opts.fib;
    let want = modules::fib(n.unsigned_abs());
    let check = |name: &str, got: i32| {
        if got == want {
            Ok(())
        } else {
            Err(format!("{name}: fib({n}) = {got}, expected {want}"))
        }
    };
    let ms = |r: Rounds| r.median_ns / 1e6;
    let strata = opts.which.strata().then(|| -> Result<f64> {
        let mut b = strata_side::Fib::new()?;
        Ok(ms(rounds(opts.rounds, || check("strata", b.run(n)?))?))
    });
    let wasmtime = opts.which.wasmtime().then(|| -> Result<f64> {
        let mut b = wasmtime_side::Fib::new()?;
        Ok(ms(rounds(opts.rounds, || check("wasmtime", b.run(n)?))?))
    });
    Ok((strata.transpose()?, wasmtime.transpose()?))
}

fn main() {
    let opts = parse_args().unwrap_or_else(|e| cli::usage_error(&e, USAGE));
    let results = host_calls(&opts).and_then(|calls| Ok((calls, fib(&opts)?)));
    let ((cs, cw), (fs, fw)) = results.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    println!(
        "median of {} rounds, after one warm-up round\n",
        opts.rounds
    );
    let calls = format!("wasm→host call ×{}, ns/call", opts.calls);
    let fib = format!("fib({}), ms", opts.fib);
    print_comparison(&[(calls, cs, cw, 2), (fib, fs, fw, 1)]);
}
