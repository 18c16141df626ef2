//! The compilation cache of `strata run` and `strata wast`: on by default in
//! `$XDG_CACHE_HOME/strata` (else `$HOME/.cache/strata`), and the `-C cache`,
//! `-C cache-dir` and `-C cache-config` options that change that, as `wasmtime run`
//! has them. Each test gives `strata` a home and cache home of its own.

use super::{assert_failure, assert_output, describe, repo, scratch_dir, strata_command};
use crate::cache::{entries, files, modified, set_modified};
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

/// The debug line of a cache hit, from `strata::runtime::cache`.
const HIT: &str = "loaded a module from the compilation cache";

/// The debug line of a cache miss that wrote an entry.
const WROTE: &str = "wrote a compilation cache entry";

/// `strata run OPTIONS examples/hello.wat` with `$HOME` `home/home` and
/// `$XDG_CACHE_HOME` `home/xdg`.
fn run_hello(home: &Path, options: &[&OsStr]) -> Command {
    let mut args: Vec<&OsStr> = vec![OsStr::new("run")];
    args.extend(options);
    let hello = repo().join("examples/hello.wat");
    args.push(hello.as_os_str());
    let mut command = strata_command(args);
    command
        .env("HOME", home.join("home"))
        .env("XDG_CACHE_HOME", home.join("xdg"));
    command
}

/// Runs `command`, which must print hello's `55` and nothing on stderr.
#[track_caller]
fn run_quietly(mut command: Command) {
    assert_output(&command.output().expect("strata starts"), 0, "55\n", "");
}

/// Runs `command` with `STRATA_LOG=strata=debug`; it must print `55`. Returns its
/// stderr.
#[track_caller]
fn run_logged(mut command: Command) -> String {
    let output = command
        .env("STRATA_LOG", "strata=debug")
        .output()
        .expect("strata starts");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_eq!(output.stdout, b"55\n", "{}", describe(&output));
    String::from_utf8(output.stderr).unwrap()
}

/// The only entry in `dir`, which holds nothing else.
#[track_caller]
fn only_entry(dir: &Path) -> PathBuf {
    let all = files(dir, |_| true);
    match &all[..] {
        [entry] if entry.extension() == Some(OsStr::new("swasm")) => entry.clone(),
        other => panic!("expected one entry in {}, found {other:?}", dir.display()),
    }
}

/// Every file under `dir`, at any depth.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for path in files(dir, |_| true) {
        if path.is_dir() {
            found.extend(all_files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_default_run_writes_one_entry_in_xdg_cache_home_that_the_next_run_hits() {
    let home = scratch_dir("cache_default");
    run_quietly(run_hello(&home, &[]));
    let entry = only_entry(&home.join("xdg/strata"));
    assert!(!home.join("home").exists(), "HOME is not used");

    // A hit logs it and marks the entry used; nothing else is written.
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    set_modified(&entry, an_hour_ago);
    let log = run_logged(run_hello(&home, &[]));
    assert!(log.contains(HIT) && !log.contains(WROTE), "{log}");
    assert!(
        modified(&entry) > an_hour_ago,
        "the hit refreshed the entry"
    );
    assert_eq!(only_entry(&home.join("xdg/strata")), entry);
}

#[test]
fn without_xdg_cache_home_the_cache_is_in_home() {
    let home = scratch_dir("cache_home");
    let mut command = run_hello(&home, &[]);
    command.env_remove("XDG_CACHE_HOME");
    run_quietly(command);
    only_entry(&home.join("home/.cache/strata"));
    assert!(!home.join("xdg").exists());
}

#[test]
fn without_a_cache_directory_strata_runs_uncached() {
    let home = scratch_dir("cache_nowhere");
    let mut command = run_hello(&home, &[]);
    command
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", "")
        .current_dir(&home);
    run_quietly(command);
    assert!(all_files(&home).is_empty(), "{:?}", all_files(&home));
    // It says so when asked.
    let mut command = run_hello(&home, &[]);
    command.env_remove("XDG_CACHE_HOME").env_remove("HOME");
    let output = command.env("STRATA_LOG", "warn").output().unwrap();
    assert_eq!(output.stdout, b"55\n", "{}", describe(&output));
    assert_failure(&output, 0, &["no cache directory"]);
}

#[test]
fn cache_n_writes_nothing() {
    let home = scratch_dir("cache_off");
    for off in ["-Ccache=n", "-Ccache=no", "-Ccache=false"] {
        let log = run_logged(run_hello(&home, &[OsStr::new(off)]));
        assert!(log.contains("the compilation cache is off"), "{off}: {log}");
        assert!(all_files(&home).is_empty(), "{off}: {:?}", all_files(&home));
    }
    // The last setting wins.
    run_quietly(run_hello(&home, &["-C", "cache=n,cache"].map(OsStr::new)));
    only_entry(&home.join("xdg/strata"));
}

#[test]
fn cache_dir_puts_the_cache_in_dir() {
    let home = scratch_dir("cache_dir");
    let dir = home.join("my cache").join("nested");
    let option = format!("cache-dir={}", dir.display());
    run_quietly(run_hello(&home, &["-C", &option].map(OsStr::new)));
    let entry = only_entry(&dir);
    assert_eq!(all_files(&home), [entry]);
    let log = run_logged(run_hello(&home, &["--codegen", &option].map(OsStr::new)));
    assert!(log.contains(HIT), "{log}");
}

/// Writes the cache config `text` to `home/FILE` and returns its path.
fn config_file(home: &Path, name: &str, text: &str) -> PathBuf {
    let path = home.join(name);
    fs::write(&path, text).unwrap();
    path
}

/// `-C cache-config=FILE`.
fn cache_config(file: &Path) -> String {
    format!("cache-config={}", file.display())
}

#[test]
fn cache_config_reads_wasmtime_settings() {
    let home = scratch_dir("cache_config");
    let dir = home.join("from-config");
    let file = config_file(
        &home,
        "cache.toml",
        &format!(
            "# wasmtime's format\n[cache]\nenabled = true\ndirectory = {:?}\n\
             files-total-size-soft-limit = \"512Mi\"\n",
            dir.display().to_string()
        ),
    );
    run_quietly(run_hello(
        &home,
        &["-C", &cache_config(&file)].map(OsStr::new),
    ));
    only_entry(&dir);

    // A bound smaller than an entry keeps none.
    let tiny = config_file(
        &home,
        "tiny.toml",
        &format!(
            "[cache]\ndirectory = {:?}\nfiles-total-size-soft-limit = \"1K\"\n",
            home.join("tiny").display().to_string()
        ),
    );
    let log = run_logged(run_hello(
        &home,
        &["-C", &cache_config(&tiny)].map(OsStr::new),
    ));
    assert!(log.contains(WROTE), "{log}");
    assert!(entries(&home.join("tiny")).is_empty());

    // `enabled = false` turns the cache off, unless the command line turns it on; a
    // `cache-dir` on the command line wins over the file's `directory`.
    let disabled = config_file(&home, "disabled.toml", "[cache]\nenabled = false\n");
    run_quietly(run_hello(
        &home,
        &["-C", &cache_config(&disabled)].map(OsStr::new),
    ));
    assert!(!home.join("xdg").exists());
    let mine = home.join("mine");
    let options = format!(
        "{},cache=y,cache-dir={}",
        cache_config(&disabled),
        mine.display()
    );
    run_quietly(run_hello(&home, &["-C", &options].map(OsStr::new)));
    only_entry(&mine);
    assert!(!home.join("xdg").exists());
}

#[test]
fn bad_cache_configs_are_errors_naming_the_file_and_the_key() {
    let home = scratch_dir("cache_config_errors");
    let run = |file: &Path| {
        let mut command = run_hello(&home, &["-C", &cache_config(file)].map(OsStr::new));
        command.output().unwrap()
    };
    let unknown = config_file(&home, "unknown.toml", "[cache]\ncolour = \"red\"\n");
    let shown = unknown.display().to_string();
    assert_failure(
        &run(&unknown),
        1,
        &[
            &format!("invalid cache config file {shown}"),
            "line 2",
            "unknown field `colour`",
        ],
    );
    let relative = config_file(&home, "relative.toml", "[cache]\ndirectory = \"c\"\n");
    assert_failure(&run(&relative), 1, &["relative.toml", "absolute path"]);
    let size = config_file(
        &home,
        "size.toml",
        "[cache]\nfiles-total-size-soft-limit = \"1 parsec\"\n",
    );
    assert_failure(
        &run(&size),
        1,
        &[
            "size.toml",
            "`files-total-size-soft-limit`: invalid size `1 parsec`",
        ],
    );
    let missing = home.join("missing.toml");
    assert_failure(
        &run(&missing),
        1,
        &["failed to read the cache config file", "missing.toml"],
    );
    let output = run_hello(&home, &["-C", "cache-size=1"].map(OsStr::new))
        .output()
        .unwrap();
    assert_failure(&output, 2, &["unknown -C option `cache-size`"]);
    assert!(!home.join("xdg").exists(), "nothing ran");
}

/// A module whose `_start` returns 55, with enough code (600 functions) that compiling
/// it takes a while, so that processes started together compile it at the same time.
fn slow_module() -> String {
    let funcs: String = (0..600)
        .map(|i| {
            format!(
                "(func $f{i} (param i32) (result i32)
                   (i32.add (i32.mul (local.get 0) (i32.const {i}))
                            (i32.xor (local.get 0) (i32.const 7))))\n"
            )
        })
        .collect();
    format!(
        "(module {funcs}
           (func (export \"_start\") (result i32)
             (i32.sub (call $f599 (i32.const 0)) (i32.const -48))))"
    )
}

#[test]
fn processes_started_together_on_an_empty_cache_all_succeed_and_leave_one_entry() {
    const PROCESSES: usize = 8;
    let home = scratch_dir("cache_processes");
    let wat = home.join("slow.wat");
    fs::write(&wat, slow_module()).unwrap();
    let dir = home.join("xdg/strata");
    let spawn = || {
        let mut command = strata_command([OsStr::new("run"), wat.as_os_str()]);
        command.env("XDG_CACHE_HOME", home.join("xdg"));
        command.spawn().expect("strata starts")
    };
    let children: Vec<_> = (0..PROCESSES).map(|_| spawn()).collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect();
    for output in &outputs {
        assert_output(output, 0, "55\n", "");
    }
    let entry = only_entry(&dir);
    // The entry is whole: a run that loads it (and checks every section) succeeds.
    let mut command = strata_command([OsStr::new("run"), wat.as_os_str()]);
    command
        .env("XDG_CACHE_HOME", home.join("xdg"))
        .env("STRATA_LOG", "strata=debug");
    let output = command.output().unwrap();
    assert_eq!(output.stdout, b"55\n", "{}", describe(&output));
    assert_failure(&output, 0, &[HIT]);
    assert_eq!(only_entry(&dir), entry);
}

#[test]
fn wast_caches_and_compile_does_not() {
    let home = scratch_dir("cache_commands");
    let wast = home.join("answer.wast");
    fs::write(
        &wast,
        "(module (func (export \"f\") (result i32) i32.const 42))\n\
         (assert_return (invoke \"f\") (i32.const 42))\n",
    )
    .unwrap();
    let xdg = home.join("xdg");
    let mut command = strata_command([OsStr::new("wast"), wast.as_os_str()]);
    command.env("XDG_CACHE_HOME", &xdg);
    assert_output(&command.output().unwrap(), 0, "2 passed, 0 failed\n", "");
    only_entry(&xdg.join("strata"));

    // `strata compile` writes its artifact, and no entry (as `wasmtime compile`).
    let compile_home = home.join("compile");
    let out = home.join("answer.swasm");
    let hello = repo().join("examples/hello.wat");
    let mut command = strata_command([
        OsStr::new("compile"),
        hello.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    command.env("XDG_CACHE_HOME", &compile_home);
    assert_output(&command.output().unwrap(), 0, "", "");
    assert!(out.exists());
    assert!(!compile_home.exists());
    // Nor does running a precompiled module.
    let mut command = strata_command([OsStr::new("run"), out.as_os_str()]);
    command.env("XDG_CACHE_HOME", &compile_home);
    assert_output(&command.output().unwrap(), 0, "55\n", "");
    assert!(!compile_home.exists());
}
