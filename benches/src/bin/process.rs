//! `process`: `strata run` against `wasmtime run` as whole processes, the way a user
//! meets them: wall time from spawn to exit and the peak resident set of the process,
//! with a cold compilation cache and a warm one.
//!
//!     process [--runs N] [--strata PATH] [--wasmtime PATH] MODULE [ARGS...]
//!
//! Each run gets `XDG_CACHE_HOME` of its own, which both command-line tools take as the
//! base of their default cache directory (`strata/`, `wasmtime/`). A cold run starts
//! with an empty one; warm runs share one that a first, untimed run of the same tool
//! filled. The two tools take turns run by run, so that a change in the machine's load
//! falls on both. Both must print the same and exit with the same status.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use strata_benches::Result;
use strata_benches::measure::{Rounds, nanos};

const USAGE: &str = "usage: process [--runs N] [--strata PATH] [--wasmtime PATH] MODULE [ARGS...]

  --runs N         timed runs of each tool in each mode (default 20); medians are reported
  --strata PATH    the strata binary (default: target/release/strata of the repository)
  --wasmtime PATH  the wasmtime binary (default: `wasmtime` on PATH)";

/// What one process run cost.
struct Run {
    wall: Duration,
    /// Peak resident set, in KiB, as the kernel reports it for the waited child.
    max_rss_kib: u64,
    status: i32,
    stdout: Vec<u8>,
}

/// One tool to measure.
struct Tool {
    name: &'static str,
    program: PathBuf,
}

impl Tool {
    /// Runs `tool run MODULE ARGS...` with `cache_home` as `XDG_CACHE_HOME`.
    fn run(&self, cache_home: &Path, module: &Path, args: &[OsString]) -> Result<Run> {
        let out_file = cache_home.join("stdout");
        let stdout = std::fs::File::create(&out_file)
            .map_err(|e| format!("cannot create {}: {e}", out_file.display()))?;
        let start = Instant::now();
        let child = Command::new(&self.program)
            .arg("run")
            .arg(module)
            .args(args)
            .env("XDG_CACHE_HOME", cache_home)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
        let (status, max_rss_kib) = wait_with_rusage(child.id())?;
        let wall = start.elapsed();
        let stdout = std::fs::read(&out_file)
            .map_err(|e| format!("cannot read {}: {e}", out_file.display()))?;
        std::fs::remove_file(&out_file)
            .map_err(|e| format!("cannot remove {}: {e}", out_file.display()))?;
        Ok(Run {
            wall,
            max_rss_kib,
            status,
            stdout,
        })
    }
}

/// Waits for child `pid` and returns its exit status (128 + signal if it was killed)
/// and its peak resident set in KiB. `std::process::Child::wait` does not give the
/// second, and `getrusage(RUSAGE_CHILDREN)` keeps the maximum over all children.
fn wait_with_rusage(pid: u32) -> Result<(i32, u64)> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own unwaited child (the `Child` was not waited on), and
        // both out-pointers point to live, writable locals of the right types.
        let got = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
        if got == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waiting for process {pid}: {error}"));
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let max_rss = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    Ok((code, max_rss))
}

/// A fresh empty directory under the system's temporary directory.
fn fresh_dir(tag: &str, n: u32) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "strata-process-bench-{}-{tag}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

struct Options {
    runs: u32,
    tools: [Tool; 2],
    module: PathBuf,
    args: Vec<OsString>,
}

fn parse_args() -> Result<Options> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut runs = 20;
    let mut strata = repo.join("target/release/strata");
    let mut wasmtime = PathBuf::from("wasmtime");
    let mut args = std::env::args_os().skip(1);
    let module = loop {
        let Some(arg) = args.next() else {
            return Err("no MODULE given".into());
        };
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.to_str() {
            Some("--runs") => {
                let text = value("--runs")?;
                runs = text
                    .to_str()
                    .and_then(|t| t.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("bad value {text:?} for --runs"))?;
            }
            Some("--strata") => strata = value("--strata")?.into(),
            Some("--wasmtime") => wasmtime = value("--wasmtime")?.into(),
            Some("-h" | "--help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            Some(flag) if flag.starts_with('-') => {
                return Err(format!("unknown argument `{flag}`"));
            }
            _ => break PathBuf::from(arg),
        }
    };
    Ok(Options {
        runs,
        tools: [
            Tool {
                name: "strata",
                program: strata,
            },
            Tool {
                name: "wasmtime",
                program: wasmtime,
            },
        ],
        module,
        args: args.collect(),
    })
}

/// The samples of one tool in one mode.
#[derive(Default)]
struct Samples {
    wall_ns: Vec<f64>,
    rss_kib: Vec<f64>,
}

fn main() -> Result<()> {
    let opts = parse_args().map_err(|e| format!("{e}\n\n{USAGE}"))?;
    let module = std::fs::canonicalize(&opts.module)
        .map_err(|e| format!("cannot find {}: {e}", opts.module.display()))?;

    // The output every run must give: the first cold strata run's.
    let mut expected: Option<(i32, Vec<u8>)> = None;
    let mut check = |tool: &Tool, run: &Run| -> Result<()> {
        let got = (run.status, run.stdout.clone());
        match &expected {
            None => expected = Some(got),
            Some(want) if *want != got => {
                return Err(format!(
                    "{} printed {:?} and exited with {}, but the first run printed {:?} and exited with {}",
                    tool.name,
                    String::from_utf8_lossy(&run.stdout),
                    run.status,
                    String::from_utf8_lossy(&want.1),
                    want.0,
                ));
            }
            Some(_) => {}
        }
        Ok(())
    };

    let mut cold: [Samples; 2] = Default::default();
    let mut warm: [Samples; 2] = Default::default();
    let warm_homes = [fresh_dir("warm", 0)?, fresh_dir("warm", 1)?];
    for (tool, home) in opts.tools.iter().zip(&warm_homes) {
        let run = tool.run(home, &module, &opts.args)?;
        check(tool, &run)?;
    }
    for n in 0..opts.runs {
        for (i, tool) in opts.tools.iter().enumerate() {
            let home = fresh_dir("cold", n)?;
            let run = tool.run(&home, &module, &opts.args)?;
            check(tool, &run)?;
            cold[i].wall_ns.push(nanos(run.wall));
            cold[i].rss_kib.push(run.max_rss_kib as f64);
            std::fs::remove_dir_all(&home)
                .map_err(|e| format!("cannot remove {}: {e}", home.display()))?;

            let run = tool.run(&warm_homes[i], &module, &opts.args)?;
            check(tool, &run)?;
            warm[i].wall_ns.push(nanos(run.wall));
            warm[i].rss_kib.push(run.max_rss_kib as f64);
        }
    }
    for home in &warm_homes {
        let _ = std::fs::remove_dir_all(home);
    }

    println!(
        "{} {}: {} runs per tool and mode, medians (spread of the runs in %)",
        module.display(),
        opts.args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        opts.runs
    );
    println!(
        "{:<6} {:>16} {:>16} {:>7} {:>14} {:>14} {:>7}",
        "cache", "strata ms", "wasmtime ms", "ratio", "strata KiB", "wasmtime KiB", "ratio"
    );
    for (mode, [strata, wasmtime]) in [("cold", &cold), ("warm", &warm)] {
        let (sw, ww) = (
            Rounds::from_means(strata.wall_ns.clone()),
            Rounds::from_means(wasmtime.wall_ns.clone()),
        );
        let (sr, wr) = (
            Rounds::from_means(strata.rss_kib.clone()),
            Rounds::from_means(wasmtime.rss_kib.clone()),
        );
        println!(
            "{mode:<6} {:>8.2} ({:>4.0}%) {:>8.2} ({:>4.0}%) {:>7.2} {:>14.0} {:>14.0} {:>7.2}",
            sw.median_ns / 1e6,
            sw.spread_percent(),
            ww.median_ns / 1e6,
            ww.spread_percent(),
            sw.median_ns / ww.median_ns,
            sr.max_ns,
            wr.max_ns,
            sr.max_ns / wr.max_ns,
        );
    }
    println!("(RSS columns: the largest peak over the runs)");
    Ok(())
}
