//! `interrupt`: what fuel metering and epoch checks cost running code, in strata and in
//! wasmtime, each against the same runtime without them.
//!
//! Two compute-bound kernels: the doubly recursive `fib(30)` (calls, no loops) and the
//! Collatz step count of 1..=300 000 (nested loops with a branch per step). Each runs
//! once to warm up, then `--rounds` times; the median round is reported. The overhead
//! of a mode is its time divided by the plain time of the same runtime; the last column
//! divides strata's overhead by wasmtime's.

use strata_benches::cli;
use strata_benches::measure::{fmt_opt, per_iteration, ratio};
use strata_benches::{Interruption, Result, modules, strata_side, wasmtime_side};

const USAGE: &str = "\
usage: interrupt [--rounds N] [--runtime strata|wasmtime]

  --rounds N   timed rounds; the median is reported (default 5)
  --runtime    run only this runtime (default: both)";

const FIB_N: i32 = 30;
const COLLATZ_N: i32 = 300_000;

fn parse_args() -> Result<cli::Common> {
    cli::parse(USAGE, 5, |_, _| Ok(false))
}

/// One kernel: its module, export, argument and expected answer.
struct Kernel {
    name: &'static str,
    wat: &'static str,
    export: &'static str,
    n: i32,
    want: i32,
}

/// Median ms per call of `kernel` under `mode`, checking every answer.
fn time(rounds: u32, kernel: &Kernel, mut run: impl FnMut(i32) -> Result<i32>) -> Result<f64> {
    let call = || -> Result<()> {
        let got = run(kernel.n)?;
        if got == kernel.want {
            Ok(())
        } else {
            Err(format!(
                "{}: got {got}, expected {}",
                kernel.name, kernel.want
            ))
        }
    };
    Ok(per_iteration(1, 1, rounds, call)?.median_ns / 1e6)
}

/// Plain, fuel and epoch times (ms) of one runtime.
type Times = [Option<f64>; 3];

fn measure(opts: &cli::Common, kernel: &Kernel) -> Result<(Times, Times)> {
    let mut strata = [None; 3];
    let mut wasmtime = [None; 3];
    for (i, mode) in Interruption::ALL.into_iter().enumerate() {
        if opts.which.strata() {
            let mut k = strata_side::Kernel::new(kernel.wat, kernel.export, mode)?;
            strata[i] = Some(time(opts.rounds, kernel, |n| k.run(n))?);
        }
        if opts.which.wasmtime() {
            let mut k = wasmtime_side::Kernel::new(kernel.wat, kernel.export, mode)?;
            wasmtime[i] = Some(time(opts.rounds, kernel, |n| k.run(n))?);
        }
    }
    Ok((strata, wasmtime))
}

fn main() {
    let opts = parse_args().unwrap_or_else(|e| cli::usage_error(&e, USAGE));
    let kernels = [
        Kernel {
            name: "fib(30)",
            wat: modules::FIB_WAT,
            export: "fib",
            n: FIB_N,
            want: modules::fib(FIB_N.unsigned_abs()),
        },
        Kernel {
            name: "collatz(300000)",
            wat: modules::COLLATZ_WAT,
            export: "collatz",
            n: COLLATZ_N,
            want: modules::collatz(COLLATZ_N.unsigned_abs()),
        },
    ];
    println!(
        "median of {} rounds, after one warm-up round; overhead = time / plain time of \
         the same runtime\n",
        opts.rounds
    );
    println!(
        "{:<16} {:<7} {:>10} {:>12} {:>16} {:>18} {:>20}",
        "kernel",
        "mode",
        "strata ms",
        "wasmtime ms",
        "strata overhead",
        "wasmtime overhead",
        "overhead strata/wt"
    );
    for kernel in &kernels {
        let (s, w) = measure(&opts, kernel).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(1)
        });
        for (i, mode) in Interruption::ALL.into_iter().enumerate() {
            let so = ratio(s[i], s[0]);
            let wo = ratio(w[i], w[0]);
            println!(
                "{:<16} {:<7} {:>10} {:>12} {:>16} {:>18} {:>20}",
                kernel.name,
                mode.label(),
                fmt_opt(s[i], 2),
                fmt_opt(w[i], 2),
                fmt_opt(so, 3),
                fmt_opt(wo, 3),
                fmt_opt(ratio(so, wo), 3),
            );
        }
    }
}
