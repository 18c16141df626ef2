//! `sightglass`: every Sightglass program on strata and on wasmtime in the same run.
//!
//! For each program: the median compile time (`Module::new` from bytes, default
//! configuration, parallel compilation on both), then `--rounds` runs, each in a fresh
//! store with a fresh WASI context: the median instantiate time (store, WASI context,
//! linking, instantiation) and the median execute time (`bench.start` to `bench.end`).
//! The runtimes take turns round by round, so a change in the machine's load hits both.
//! Every run's stdout and stderr are checked against the program's `.expected` files.
//!
//! Programs whose measured region is shorter than [`TOO_SHORT`] on both runtimes (the
//! `noop` program measures nothing at all) are listed but left out of the execute
//! geomean: at that size the ratio measures the clock, not the code.

use std::time::Duration;
use strata_benches::cli::{self, Which};
use strata_benches::measure::{fmt_opt, nanos, ratio};
use strata_benches::sightglass::{self, Program, Run, Runtime, Strata, Wasmtime};
use strata_benches::{Result, err};

const USAGE: &str = "\
usage: sightglass [--filter TEXT] [--rounds N] [--compile-rounds N] [--dir PATH]
                  [--runtime strata|wasmtime]

  --filter TEXT       only programs whose `folder/name` contains TEXT
  --rounds N          runs of each program; medians are reported (default 3)
  --compile-rounds N  compilations of each program (default 3)
  --dir PATH          the Sightglass folder (default: $SIGHTGLASS_DIR or
                      ../shared/bench/sightglass beside the repository)
  --runtime           run only this runtime (default: both)";

/// Execute times below this on both runtimes are too short to compare.
const TOO_SHORT: Duration = Duration::from_micros(50);

struct Options {
    filter: String,
    rounds: u32,
    compile_rounds: u32,
    dir: std::path::PathBuf,
    which: Which,
}

fn parse_args() -> Result<Options> {
    let (mut filter, mut compile_rounds, mut dir) = (String::new(), 3, sightglass::default_dir());
    let common = cli::parse(USAGE, 3, |flag, args| {
        match flag {
            "--filter" => filter = cli::value(args, flag)?,
            "--compile-rounds" => compile_rounds = cli::value(args, flag)?,
            "--dir" => dir = cli::value(args, flag)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if compile_rounds == 0 {
        return Err("--compile-rounds must be positive".into());
    }
    Ok(Options {
        filter,
        rounds: common.rounds,
        compile_rounds,
        dir,
        which: common.which,
    })
}

/// One runtime's medians for one program, in nanoseconds.
#[derive(Clone, Copy, Default)]
struct Medians {
    compile: f64,
    instantiate: f64,
    execute: f64,
}

/// A runtime and the module it compiled for the current program.
struct Side<R: Runtime> {
    runtime: R,
    module: Option<R::Module>,
    compile: Vec<f64>,
    instantiate: Vec<f64>,
    execute: Vec<f64>,
}

impl<R: Runtime> Side<R> {
    fn new(runtime: R) -> Self {
        Side {
            runtime,
            module: None,
            compile: vec![],
            instantiate: vec![],
            execute: vec![],
        }
    }

    fn compile(&mut self, program: &Program) -> Result<()> {
        let began = std::time::Instant::now();
        let module = self.runtime.compile(&program.wasm)?;
        self.compile.push(nanos(began.elapsed()));
        self.module = Some(module);
        Ok(())
    }

    fn run(&mut self, program: &Program) -> Result<()> {
        let module = self.module.as_ref().ok_or("not compiled")?;
        let run: Run = self.runtime.run(program, module)?;
        program.check(&run)?;
        self.instantiate.push(nanos(run.instantiate));
        self.execute.push(nanos(run.execute));
        Ok(())
    }

    /// The medians so far, and a reset for the next program.
    fn take(&mut self) -> Medians {
        self.module = None;
        Medians {
            compile: median(std::mem::take(&mut self.compile)),
            instantiate: median(std::mem::take(&mut self.instantiate)),
            execute: median(std::mem::take(&mut self.execute)),
        }
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs `program` on the chosen runtimes, taking turns.
fn measure(
    opts: &Options,
    program: &Program,
    strata: &mut Option<Side<Strata>>,
    wasmtime: &mut Option<Side<Wasmtime>>,
) -> Result<(Option<Medians>, Option<Medians>)> {
    for _ in 0..opts.compile_rounds {
        if let Some(s) = strata {
            s.compile(program).map_err(|e| format!("strata: {e}"))?;
        }
        if let Some(w) = wasmtime {
            w.compile(program).map_err(|e| format!("wasmtime: {e}"))?;
        }
    }
    for _ in 0..opts.rounds {
        if let Some(s) = strata {
            s.run(program).map_err(|e| format!("strata: {e}"))?;
        }
        if let Some(w) = wasmtime {
            w.run(program).map_err(|e| format!("wasmtime: {e}"))?;
        }
    }
    Ok((
        strata.as_mut().map(Side::take),
        wasmtime.as_mut().map(Side::take),
    ))
}

/// The geometric mean of the ratios given.
fn geomean(ratios: &[f64]) -> Option<f64> {
    (!ratios.is_empty())
        .then(|| (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp())
}

fn main() {
    let opts = parse_args().unwrap_or_else(|e| cli::usage_error(&e, USAGE));
    if let Err(e) = bench(&opts) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn bench(opts: &Options) -> Result<()> {
    let (programs, skipped) = sightglass::discover(&opts.dir, &opts.filter)?;
    let mut strata = opts
        .which
        .strata()
        .then(Strata::new)
        .transpose()?
        .map(Side::new);
    let mut wasmtime = opts
        .which
        .wasmtime()
        .then(Wasmtime::new)
        .transpose()?
        .map(Side::new);
    println!(
        "{} programs from {} ({} compilations and {} runs each; medians; ratio = strata / wasmtime)\n",
        programs.len(),
        opts.dir.display(),
        opts.compile_rounds,
        opts.rounds
    );
    println!(
        "| program | compile ms (strata / wasmtime) | ratio | instantiate µs | ratio | execute ms | ratio | output |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    let (mut compile, mut instantiate, mut execute) = (vec![], vec![], vec![]);
    let mut failures = Vec::new();
    for program in &programs {
        let (s, w) = match measure(opts, program, &mut strata, &mut wasmtime) {
            Ok(medians) => medians,
            Err(e) => {
                println!("| {} | failed | | | | | | |", program.name);
                failures.push(e);
                continue;
            }
        };
        let pick = |m: Option<Medians>, f: fn(Medians) -> f64| m.map(f);
        let c = (pick(s, |m| m.compile), pick(w, |m| m.compile));
        let i = (pick(s, |m| m.instantiate), pick(w, |m| m.instantiate));
        let x = (pick(s, |m| m.execute), pick(w, |m| m.execute));
        let short = |t: Option<f64>| t.is_none_or(|t| t < nanos(TOO_SHORT));
        let too_short = short(x.0) && short(x.1);
        compile.extend(ratio(c.0, c.1));
        instantiate.extend(ratio(i.0, i.1));
        if !too_short {
            execute.extend(ratio(x.0, x.1));
        }
        let pair = |(a, b): (Option<f64>, Option<f64>), scale: f64, decimals: usize| {
            format!(
                "{} / {}",
                fmt_opt(a.map(|a| a / scale), decimals),
                fmt_opt(b.map(|b| b / scale), decimals)
            )
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {}{} | {} |",
            program.name,
            pair(c, 1e6, 1),
            fmt_opt(ratio(c.0, c.1), 2),
            pair(i, 1e3, 0),
            fmt_opt(ratio(i.0, i.1), 2),
            pair(x, 1e6, 3),
            fmt_opt(ratio(x.0, x.1), 2),
            if too_short { " (too short)" } else { "" },
            if program.has_expectations() {
                "matches"
            } else {
                "(no .expected)"
            },
        );
    }
    println!(
        "\ngeomean of ratios over {} programs: compile {}, instantiate {}, execute {} ({} programs)",
        compile.len(),
        fmt_opt(geomean(&compile), 3),
        fmt_opt(geomean(&instantiate), 3),
        fmt_opt(geomean(&execute), 3),
        execute.len()
    );
    for s in &skipped {
        println!("left out: {} ({})", s.name, s.reason);
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} program(s) failed:\n{}",
            failures.len(),
            failures.join("\n")
        ))
        .map_err(err)
    }
}
