//! `calls`: the cost of one call across the host boundary, strata against wasmtime, in
//! all four kinds, each of type `[i32] -> [i32]` (see [`strata_benches::modules::CALLS_WAT`]):
//!
//! - wasm→host typed: a wasm loop calls a `Func::wrap` closure `x + 1`;
//! - wasm→host untyped: the same loop calls a `Func::new` closure over `Val`s;
//! - host→wasm typed: a Rust loop calls the wasm `inc` through `TypedFunc::call`;
//! - host→wasm untyped: the same through `Func::call` with `Val` slices.
//!
//! Each kind makes `--calls` calls per round (default 10,000,000), reported in ns per
//! call, loop included; every round checks its result. Both runtimes run one warm-up
//! round, then `--rounds` timed rounds taking turns (strata first in even rounds,
//! wasmtime first in odd ones), so drifts in machine load hit both alike; the median
//! round is reported.

use std::time::Instant;
use strata_benches::cli::{self, Which};
use strata_benches::measure::{Rounds, fmt_opt, nanos, ratio};
use strata_benches::{Result, strata_side, wasmtime_side};

const USAGE: &str = "\
usage: calls [--calls N] [--rounds N] [--runtime strata|wasmtime]

  --calls N    calls per round of each kind (default 10000000)
  --rounds N   timed rounds; the median is reported (default 7)
  --runtime    run only this runtime (default: both)";

struct Options {
    calls: i32,
    rounds: u32,
    which: Which,
}

fn parse_args() -> Result<Options> {
    let mut calls = 10_000_000;
    let common = cli::parse(USAGE, 7, |flag, args| match flag {
        "--calls" => {
            calls = cli::value(args, flag)?;
            Ok(true)
        }
        _ => Ok(false),
    })?;
    if calls <= 0 {
        return Err("--calls must be positive".into());
    }
    Ok(Options {
        calls,
        rounds: common.rounds,
        which: common.which,
    })
}

/// The four kinds of call, in report order.
#[derive(Copy, Clone)]
enum Kind {
    WasmToHostTyped,
    WasmToHostUntyped,
    HostToWasmTyped,
    HostToWasmUntyped,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::WasmToHostTyped,
        Kind::WasmToHostUntyped,
        Kind::HostToWasmTyped,
        Kind::HostToWasmUntyped,
    ];

    fn label(self) -> &'static str {
        match self {
            Kind::WasmToHostTyped => "wasm→host, Func::wrap",
            Kind::WasmToHostUntyped => "wasm→host, Func::new",
            Kind::HostToWasmTyped => "host→wasm, TypedFunc::call",
            Kind::HostToWasmUntyped => "host→wasm, Func::call",
        }
    }
}

/// Runs one round of `kind` on one runtime's `Calls`; the macro keeps the two sides
/// the same code.
macro_rules! round {
    ($calls:expr, $kind:expr, $n:expr) => {{
        let (calls, n) = (&mut *$calls, $n);
        let start = Instant::now();
        let got = match $kind {
            Kind::WasmToHostTyped => calls.wasm_to_host_typed(n),
            Kind::WasmToHostUntyped => calls.wasm_to_host_untyped(n),
            Kind::HostToWasmTyped => calls.host_to_wasm_typed(n),
            Kind::HostToWasmUntyped => calls.host_to_wasm_untyped(n),
        }?;
        let ns = nanos(start.elapsed()) / f64::from(n);
        if got != n {
            return Err(format!("{}: got {got}, expected {n}", $kind.label()));
        }
        Ok::<f64, String>(ns)
    }};
}

/// Times `kind` on the runtimes `opts` asks for; ns per call for each.
fn measure(
    opts: &Options,
    kind: Kind,
    strata: &mut strata_side::Calls,
    wasmtime: &mut wasmtime_side::Calls,
) -> Result<(Option<Rounds>, Option<Rounds>)> {
    let (mut s, mut w) = (Vec::new(), Vec::new());
    // Round 0 is the warm-up, untimed.
    for round in 0..=opts.rounds {
        let strata_first = round % 2 == 0;
        for turn in 0..2 {
            if (turn == 0) == strata_first {
                if opts.which.strata() {
                    let ns = round!(strata, kind, opts.calls)?;
                    if round > 0 {
                        s.push(ns);
                    }
                }
            } else if opts.which.wasmtime() {
                let ns = round!(wasmtime, kind, opts.calls)?;
                if round > 0 {
                    w.push(ns);
                }
            }
        }
    }
    let summary = |v: Vec<f64>| (!v.is_empty()).then(|| Rounds::from_means(v));
    Ok((summary(s), summary(w)))
}

/// One kind's result: its strata and wasmtime rounds, for the runtimes that ran.
type Row = (Kind, Option<Rounds>, Option<Rounds>);

fn run(opts: &Options) -> Result<Vec<Row>> {
    let mut strata = strata_side::Calls::new()?;
    let mut wasmtime = wasmtime_side::Calls::new()?;
    Kind::ALL
        .into_iter()
        .map(|kind| {
            let (s, w) = measure(opts, kind, &mut strata, &mut wasmtime)?;
            Ok((kind, s, w))
        })
        .collect()
}

fn main() {
    let opts = parse_args().unwrap_or_else(|e| cli::usage_error(&e, USAGE));
    let results = run(&opts).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    println!(
        "{} calls of [i32] -> [i32] per round; median of {} rounds after one warm-up \
         round, the runtimes taking turns\n",
        opts.calls, opts.rounds
    );
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>11} {:>11}",
        "ns per call", "strata", "wasmtime", "ratio", "spread s %", "spread w %"
    );
    for (kind, s, w) in results {
        let median = |r: Option<Rounds>| r.map(|r| r.median_ns);
        let spread = |r: Option<Rounds>| r.map(|r| r.spread_percent());
        println!(
            "{:<28} {:>9} {:>9} {:>9} {:>11} {:>11}",
            kind.label(),
            fmt_opt(median(s), 2),
            fmt_opt(median(w), 2),
            fmt_opt(ratio(median(s), median(w)), 2),
            fmt_opt(spread(s), 0),
            fmt_opt(spread(w), 0),
        );
    }
}
