//! `native`: small C kernels as native code and as wasm on strata and wasmtime, to see
//! how far generated code is from what clang makes of the same source.
//!
//! Each kernel in `benches/native/` is built twice with the system's clang at `-O2`:
//! for the host, and for `wasm32-wasi` (Debian's wasi-libc). Both builds time the same
//! region: the native one with its own clock (it prints `bench-ns N` on stderr), the wasm
//! one between its `bench.start` and `bench.end` imports, which the Sightglass runner
//! times. Every run must print what the native build printed. Compilation is not timed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use strata_benches::cli;
use strata_benches::measure::{Rounds, nanos};
use strata_benches::sightglass::{Program, Runtime, Strata, Wasmtime};
use strata_benches::{Result, err};

const USAGE: &str = "\
usage: native [--filter TEXT] [--scalar] [--rounds N] [--runtime strata|wasmtime]

  --filter TEXT  only kernels whose name contains TEXT
  --scalar       build the native side without clang's vectorizers, as the wasm
                 side (no -msimd128) is built
  --rounds N     runs of each kernel on each side; medians are reported (default 5)
  --runtime      run only this runtime beside native (default: both)";

/// The kernels, and the flags each adds to `-O2` on both targets.
const KERNELS: &[(&str, &[&str])] = &[
    ("sieve", &[]),
    ("matmul", &[]),
    ("hash", &[]),
    // Without it, clang turns the copy loops into calls of the C library's memmove.
    ("memmove", &["-fno-builtin"]),
    ("interp", &[]),
];

/// The folder of the kernels' sources.
fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("native")
}

/// Where the builds go: `native-kernels/` beside this binary, in the target directory.
fn build_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(err)?;
    let dir = exe
        .parent()
        .ok_or("the benchmark binary has no folder")?
        .join("native-kernels");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Runs clang on `source` with `args`, writing `out`.
fn clang(source: &Path, out: &Path, args: &[&str]) -> Result<()> {
    let output = Command::new("clang")
        .arg("-O2")
        .args(args)
        .arg("-o")
        .arg(out)
        .arg(source)
        .output()
        .map_err(|e| {
            format!("cannot run clang ({e}); install clang, lld, wasi-libc and libclang-rt-14-dev-wasm32, e.g. with .ci/install-deps")
        })?;
    if !output.status.success() {
        return Err(format!(
            "clang failed on {}:\n{}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// One kernel, built for both targets.
struct Kernel {
    name: &'static str,
    native: PathBuf,
    program: Program,
}

/// clang's flags that keep the host build scalar: wasm32 code without `-msimd128` has
/// no vectors, so these make both builds the same loops.
const SCALAR: &[&str] = &["-fno-vectorize", "-fno-slp-vectorize"];

fn build(name: &'static str, flags: &[&str], scalar: bool, dir: &Path) -> Result<Kernel> {
    let source = source_dir().join(format!("{name}.c"));
    let native = dir.join(if scalar {
        format!("{name}-scalar")
    } else {
        name.to_string()
    });
    let wasm = dir.join(format!("{name}.wasm"));
    let mut native_args = flags.to_vec();
    if scalar {
        native_args.extend_from_slice(SCALAR);
    }
    clang(&source, &native, &native_args)?;
    let mut wasm_args = vec![
        "--target=wasm32-wasi",
        "--sysroot=/usr",
        "-Wl,--strip-all",
        // The `bench.*` imports are declared in `bench.h`; the linker leaves them to
        // the host.
        "-Wl,--allow-undefined",
    ];
    wasm_args.extend_from_slice(flags);
    clang(&source, &wasm, &wasm_args)?;
    let bytes = std::fs::read(&wasm).map_err(|e| format!("cannot read {}: {e}", wasm.display()))?;
    Ok(Kernel {
        name,
        native,
        program: Program {
            name: format!("native/{name}"),
            dir: dir.to_path_buf(),
            wasm: bytes,
            stdout: None,
            stderr: None,
        },
    })
}

/// Runs the native build once: its timed region and what it printed.
fn run_native(kernel: &Kernel) -> Result<(Duration, Vec<u8>)> {
    let output = Command::new(&kernel.native)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", kernel.native.display()))?;
    if !output.status.success() {
        return Err(format!("{} failed: {}", kernel.name, output.status));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let ns: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("bench-ns "))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("{} printed no `bench-ns` line: {stderr}", kernel.name))?;
    Ok((Duration::from_nanos(ns), output.stdout))
}

/// The median execute time of `rounds` runs of `kernel` on `runtime`, each checked.
fn run_wasm<R: Runtime>(runtime: &R, kernel: &Kernel, rounds: u32) -> Result<Rounds> {
    let module = runtime.compile(&kernel.program.wasm)?;
    let mut times = Vec::new();
    for _ in 0..rounds {
        let run = runtime.run(&kernel.program, &module)?;
        kernel.program.check(&run)?;
        times.push(nanos(run.execute));
    }
    Ok(Rounds::from_means(times))
}

fn main() -> Result<()> {
    let mut filter = String::new();
    let mut scalar = false;
    let common = cli::parse(USAGE, 5, |flag, args| {
        if flag == "--filter" {
            filter = cli::value(args, flag)?;
            return Ok(true);
        }
        if flag == "--scalar" {
            scalar = true;
            return Ok(true);
        }
        Ok(false)
    })
    .unwrap_or_else(|e| cli::usage_error(&e, USAGE));
    let dir = build_dir()?;
    let strata = Strata::new()?;
    let wasmtime = Wasmtime::new()?;

    println!(
        "| kernel | native ms | strata ms | wasmtime ms | strata/native | wasmtime/native | strata/wasmtime | spread % (n / s / w) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for &(name, flags) in KERNELS.iter().filter(|(n, _)| n.contains(&filter)) {
        let mut kernel = build(name, flags, scalar, &dir)?;
        let mut native = Vec::new();
        for _ in 0..common.rounds {
            let (time, stdout) = run_native(&kernel)?;
            native.push(nanos(time));
            kernel.program.stdout = Some(stdout);
        }
        let native = Rounds::from_means(native);
        let s = common
            .which
            .strata()
            .then(|| run_wasm(&strata, &kernel, common.rounds))
            .transpose()?;
        let w = common
            .which
            .wasmtime()
            .then(|| run_wasm(&wasmtime, &kernel, common.rounds))
            .transpose()?;
        let ms = |r: &Option<Rounds>| {
            r.as_ref()
                .map_or("n/a".into(), |r| format!("{:.2}", r.median_ns / 1e6))
        };
        let over = |a: &Option<Rounds>, b: f64| {
            a.as_ref()
                .map_or("n/a".into(), |a| format!("{:.2}", a.median_ns / b))
        };
        let spread = |r: &Option<Rounds>| {
            r.as_ref()
                .map_or("-".into(), |r| format!("{:.0}", r.spread_percent()))
        };
        let sw = match (&s, &w) {
            (Some(s), Some(w)) => format!("{:.2}", s.median_ns / w.median_ns),
            _ => "n/a".into(),
        };
        println!(
            "| {name} | {:.2} | {} | {} | {} | {} | {sw} | {:.0} / {} / {} |",
            native.median_ns / 1e6,
            ms(&s),
            ms(&w),
            over(&s, native.median_ns),
            over(&w, native.median_ns),
            native.spread_percent(),
            spread(&s),
            spread(&w),
        );
    }
    Ok(())
}
