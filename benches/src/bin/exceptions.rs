//! `exceptions`: exception handling and typed function references, strata against
//! wasmtime, and what turning exceptions on costs code that never throws.
//!
//! - throw-and-catch: a loop whose body calls a function that throws (one frame up) or
//!   calls down ten frames to the thrower (ten frames up) and catches the exception in
//!   a `try_table`; ns per throw.
//! - `call_ref` against `call_indirect` of the same one-instruction function in a loop;
//!   ns per call.
//! - fib(30) with `Config::wasm_exceptions` on and off in each runtime; ms.
//!
//! Each is run once to warm up, then `--rounds` times; the median round is reported.

use strata_benches::cli;
use strata_benches::measure::{Row, per_iteration, print_comparison};
use strata_benches::{Interruption, Result, modules, strata_side, wasmtime_side};

const USAGE: &str = "\
usage: exceptions [--iterations N] [--rounds N] [--runtime strata|wasmtime]

  --iterations N  throws or calls per round (default 1000000)
  --rounds N      timed rounds; the median is reported (default 5)
  --runtime       run only this runtime (default: both)";

const FIB_N: i32 = 30;

/// Median ns per round of `run(n)`, checking every answer against `want`.
fn time(rounds: u32, n: i32, want: i32, mut run: impl FnMut(i32) -> Result<i32>) -> Result<f64> {
    let call = || -> Result<()> {
        let got = run(n)?;
        if got == want {
            Ok(())
        } else {
            Err(format!("got {got}, expected {want}"))
        }
    };
    Ok(per_iteration(1, 1, rounds, call)?.median_ns)
}

/// One loop kernel of [`modules::EXCEPTIONS_WAT`] in both runtimes: ns per iteration.
fn kernel(
    opts: &cli::Common,
    export: &str,
    n: i32,
    want: i32,
) -> Result<(Option<f64>, Option<f64>)> {
    let per = |ns: f64| ns / f64::from(n);
    let wat = modules::EXCEPTIONS_WAT;
    let strata = opts.which.strata().then(|| -> Result<f64> {
        let mut k = strata_side::Kernel::new(wat, export, Interruption::None)?;
        Ok(per(time(opts.rounds, n, want, |n| k.run(n))?))
    });
    let wasmtime = opts.which.wasmtime().then(|| -> Result<f64> {
        let mut k = wasmtime_side::Kernel::new(wat, export, Interruption::None)?;
        Ok(per(time(opts.rounds, n, want, |n| k.run(n))?))
    });
    Ok((strata.transpose()?, wasmtime.transpose()?))
}

/// fib(30) in both runtimes with exceptions on or off: ms.
fn fib(opts: &cli::Common, exceptions: bool) -> Result<(Option<f64>, Option<f64>)> {
    let want = modules::fib(FIB_N.unsigned_abs());
    let ms = |ns: f64| ns / 1e6;
    let (wat, mode) = (modules::FIB_WAT, Interruption::None);
    let strata = opts.which.strata().then(|| -> Result<f64> {
        let mut k = strata_side::Kernel::new_with(wat, "fib", mode, |c| {
            c.wasm_exceptions(exceptions);
        })?;
        Ok(ms(time(opts.rounds, FIB_N, want, |n| k.run(n))?))
    });
    let wasmtime = opts.which.wasmtime().then(|| -> Result<f64> {
        let mut k = wasmtime_side::Kernel::new_with(wat, "fib", mode, |c| {
            c.wasm_exceptions(exceptions);
        })?;
        Ok(ms(time(opts.rounds, FIB_N, want, |n| k.run(n))?))
    });
    Ok((strata.transpose()?, wasmtime.transpose()?))
}

fn main() {
    let mut iterations: i32 = 1_000_000;
    let opts = cli::parse(USAGE, 5, |flag, args| {
        if flag == "--iterations" {
            iterations = cli::value(args, flag)?;
            Ok(true)
        } else {
            Ok(false)
        }
    })
    .unwrap_or_else(|e| cli::usage_error(&e, USAGE));
    if iterations <= 0 {
        cli::usage_error("--iterations must be positive", USAGE);
    }
    let n = iterations;
    let sum = modules::sum_below(n.unsigned_abs());
    let rows = (|| -> Result<Vec<Row>> {
        let row = |name: &str, (s, w): (Option<f64>, Option<f64>), decimals| {
            (name.to_string(), s, w, decimals)
        };
        Ok(vec![
            row(
                "throw + catch 1 frame up, ns",
                kernel(&opts, "throw1", n, sum)?,
                1,
            ),
            row(
                "throw + catch 10 frames up, ns",
                kernel(&opts, "throw10", n, sum)?,
                1,
            ),
            row(
                "call_ref in a loop, ns/call",
                kernel(&opts, "call_ref", n, n)?,
                2,
            ),
            row(
                "call_indirect in a loop, ns/call",
                kernel(&opts, "call_indirect", n, n)?,
                2,
            ),
            row(
                &format!("fib({FIB_N}), exceptions on, ms"),
                fib(&opts, true)?,
                1,
            ),
            row(
                &format!("fib({FIB_N}), exceptions off, ms"),
                fib(&opts, false)?,
                1,
            ),
        ])
    })()
    .unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    println!(
        "median of {} rounds, after one warm-up round; {n} iterations per round\n",
        opts.rounds
    );
    print_comparison(&rows);
}
