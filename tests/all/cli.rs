//! End-to-end tests of the `strata` binary: `strata run` as a drop-in for
//! `wasmtime run` on WASI preview1 commands. The guests are the C programs in
//! `tests/wasi/`, built with clang for wasm32-wasi when a test first needs them.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

mod cache;
mod inspect;

/// The packages the C tests need (Debian names).
const CLANG_PACKAGES: &str = "clang lld wasi-libc libclang-rt-14-dev-wasm32";

/// The repository root, where `examples/` and `tests/wasi/` are.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds `tests/wasi/NAME.c` into a wasm32-wasi command (once per test run) and
/// returns the path of the `.wasm` file. Set `CLANG` to use another clang binary.
///
/// # Panics
/// If clang is missing or the program does not compile, saying what to install.
fn build(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    // Held while compiling: tests that need the same program wait for one build.
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(path) = built.get_or_insert_default().get(name) {
        return path.clone();
    }
    let source = repo().join("tests/wasi").join(format!("{name}.c"));
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasi");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join(format!("{name}.wasm"));
    // Build under a name of this process's own, so concurrent test runs never see
    // a half-written module.
    let partial = out_dir.join(format!("{name}.{}.wasm", std::process::id()));
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    let result = Command::new(&clang)
        .args(["--target=wasm32-wasi", "-O1", "-Wall", "-Werror", "-o"])
        .arg(&partial)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{clang}` ({e}); the WASI tests need: apt install {CLANG_PACKAGES}")
        });
    assert!(
        result.status.success(),
        "`{clang} --target=wasm32-wasi` failed on {} ({}); the WASI tests need: apt install \
         {CLANG_PACKAGES}\n{}",
        source.display(),
        result.status,
        String::from_utf8_lossy(&result.stderr)
    );
    std::fs::rename(&partial, &out).unwrap();
    built
        .get_or_insert_default()
        .insert(name.to_string(), out.clone());
    out
}

/// A fresh, empty directory for one test.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(test);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The home directory the tests give `strata`, so that its compilation cache (in
/// `$XDG_CACHE_HOME/strata` by default) is under the target directory, never the
/// user's or CI's own. The tests share it, as concurrent runs of `strata` may.
fn test_home() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-home")
}

/// The `strata` binary with `args`, its stdin empty, caching in [`test_home`].
fn strata_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    let home = test_home();
    command
        .args(args)
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        // Keep stderr free of Rust backtraces of the host, and of logs.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("STRATA_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `strata` with `args` and waits for it.
fn strata<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    strata_command(args).output().expect("strata starts")
}

/// `strata run -W OPTION WASM ARG`: a C program with one limit and one argument.
fn run_with_option(wasm: &Path, option: &str, arg: &str) -> Output {
    strata([
        OsStr::new("run"),
        OsStr::new("-W"),
        OsStr::new(option),
        wasm.as_os_str(),
        OsStr::new(arg),
    ])
}

/// Runs `command` with `input` on its stdin and waits for it, killing it (and
/// failing the test) if it takes longer than `limit`.
fn run_bounded(mut command: Command, input: &[u8], limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .spawn()
        .expect("strata starts");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // A thread of its own, so a guest that does not read cannot block the test.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!("strata ran for more than {limit:?}; {}", describe(&output));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    writer.join().unwrap();
    child.wait_with_output().unwrap()
}

/// A generous bound on any one run of a test program.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Status, stdout and stderr of `output`, for failure messages.
fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts the exact exit status, stdout and stderr of a run.
#[track_caller]
fn assert_output(output: &Output, status: i32, stdout: &str, stderr: &str) {
    let ok = output.status.code() == Some(status)
        && output.stdout == stdout.as_bytes()
        && output.stderr == stderr.as_bytes();
    assert!(
        ok,
        "expected status {status}, stdout {stdout:?}, stderr {stderr:?}; got {}",
        describe(output)
    );
}

/// Asserts a run exited with `status` and its stderr contains each of `needles`.
#[track_caller]
fn assert_failure(output: &Output, status: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(status), "{}", describe(output));
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}; {}",
            describe(output)
        );
    }
}

// ---------------------------------------------------------------------------------
// The command line, without WASI programs.

/// A program throwing an exception three frames down, a cleanup that runs while it
/// passes, and its catch (what a C++ program with a destructor and `try`/`catch`
/// does); then an exception nothing catches.
#[test]
fn exceptions_unwind_through_cleanups_and_uncaught_ones_fail_with_a_backtrace() {
    let output = strata([
        OsStr::new("run"),
        repo().join("tests/wasi/exceptions.wat").as_os_str(),
    ]);
    assert_output(
        &output,
        0,
        "~Guard(level2) during unwinding\ncaught: runtime_error 42\ndone\n",
        "",
    );

    let dir = test_home().join("uncaught");
    std::fs::create_dir_all(&dir).unwrap();
    let uncaught = dir.join("uncaught.wat");
    std::fs::write(
        &uncaught,
        r#"(module
             (tag $oops (param i32))
             (func $deep (throw $oops (i32.const 7)))
             (func $mid (call $deep))
             (func (export "_start") (call $mid)))"#,
    )
    .unwrap();
    let output = strata([OsStr::new("run"), uncaught.as_os_str()]);
    assert_failure(
        &output,
        1,
        &[
            "uncaught wasm exception of a tag of type (func (param i32))",
            "wasm backtrace:",
            "deep",
            "mid",
        ],
    );
}

#[test]
fn hello_wat_prints_the_result_of_start() {
    let output = strata([
        OsStr::new("run"),
        repo().join("examples/hello.wat").as_os_str(),
    ]);
    assert_output(&output, 0, "55\n", "");
}

#[test]
fn invoke_calls_an_export_with_parsed_arguments() {
    let hello = repo().join("examples/hello.wat");
    let output = strata([
        OsStr::new("run"),
        OsStr::new("--invoke"),
        OsStr::new("fib"),
        hello.as_os_str(),
        OsStr::new("20"),
    ]);
    assert_output(&output, 0, "6765\n", "");

    let output = strata([
        OsStr::new("run"),
        OsStr::new("--invoke"),
        OsStr::new("fib"),
        hello.as_os_str(),
        OsStr::new("0x14"),
    ]);
    assert_output(&output, 0, "6765\n", "");

    let output = strata([
        OsStr::new("run"),
        OsStr::new("--invoke"),
        OsStr::new("fib"),
        hello.as_os_str(),
    ]);
    assert_failure(&output, 1, &["not enough arguments for `fib`"]);

    let output = strata([
        OsStr::new("run"),
        OsStr::new("--invoke"),
        OsStr::new("fib"),
        hello.as_os_str(),
        OsStr::new("twenty"),
    ]);
    assert_failure(&output, 1, &["invalid argument 0: `twenty`"]);

    let output = strata([
        OsStr::new("run"),
        OsStr::new("--invoke"),
        OsStr::new("nope"),
        hello.as_os_str(),
    ]);
    assert_failure(
        &output,
        1,
        &[
            "failed to run main module",
            "no func export named `nope` found",
        ],
    );
}

#[test]
fn a_missing_module_is_an_error_naming_the_file() {
    let output = strata(["run", "no/such/module.wasm"]);
    assert_failure(&output, 1, &["Error:", "no/such/module.wasm"]);
    assert!(output.stdout.is_empty(), "{}", describe(&output));
}

#[test]
fn unknown_wasm_options_are_rejected() {
    let hello = repo().join("examples/hello.wat");
    let output = strata([
        OsStr::new("run"),
        OsStr::new("-W"),
        OsStr::new("fuel=10,frobnicate=1"),
        hello.as_os_str(),
    ]);
    // Status 2, as for every command-line usage error.
    assert_failure(&output, 2, &["unknown -W option `frobnicate`"]);
    assert!(output.stdout.is_empty(), "{}", describe(&output));

    let output = strata([
        OsStr::new("run"),
        OsStr::new("-W"),
        OsStr::new("timeout=soon"),
        hello.as_os_str(),
    ]);
    assert_failure(&output, 2, &["invalid duration `soon`"]);
}

#[test]
fn wasm_options_limit_text_modules_too() {
    let hello = repo().join("examples/hello.wat");
    let output = strata([
        OsStr::new("run"),
        OsStr::new("-W"),
        OsStr::new("fuel=1000000,timeout=1m"),
        OsStr::new("-W"),
        OsStr::new("max-memory-size=65536"),
        hello.as_os_str(),
    ]);
    assert_output(&output, 0, "55\n", "");

    let output = strata([
        OsStr::new("run"),
        OsStr::new("-W"),
        OsStr::new("fuel=100"),
        hello.as_os_str(),
    ]);
    assert_failure(
        &output,
        134,
        &["failed to run main module", "all fuel consumed", "fib"],
    );
}

#[test]
fn compiled_modules_run_without_compiling() {
    let dir = scratch_dir("compile_hello");
    let hello = repo().join("examples/hello.wat");
    let swasm = dir.join("hello.swasm");
    let output = strata([
        OsStr::new("compile"),
        hello.as_os_str(),
        OsStr::new("-o"),
        swasm.as_os_str(),
    ]);
    assert_output(&output, 0, "", "");
    let output = strata([OsStr::new("run"), swasm.as_os_str()]);
    assert_output(&output, 0, "55\n", "");
    let output = strata([
        OsStr::new("run"),
        OsStr::new("--invoke"),
        OsStr::new("fib"),
        swasm.as_os_str(),
        OsStr::new("20"),
    ]);
    assert_output(&output, 0, "6765\n", "");

    // Without `-o`, the artifact goes beside the input.
    let copy = dir.join("copy.wat");
    std::fs::copy(&hello, &copy).unwrap();
    assert_output(
        &strata([OsStr::new("compile"), copy.as_os_str()]),
        0,
        "",
        "",
    );
    assert!(dir.join("copy.swasm").exists());
}

#[test]
fn compiled_modules_need_the_options_they_were_compiled_with() {
    let dir = scratch_dir("compile_options");
    let hello = repo().join("examples/hello.wat");
    let plain = dir.join("plain.swasm");
    let fueled = dir.join("fueled.swasm");
    let compile = |out: &Path, extra: &[&str]| {
        let mut args = vec![OsStr::new("compile"), hello.as_os_str()];
        args.extend(extra.iter().map(OsStr::new));
        args.extend([OsStr::new("-o"), out.as_os_str()]);
        assert_output(&strata(args), 0, "", "");
    };
    compile(&plain, &[]);
    compile(&fueled, &["-W", "fuel=1"]);

    let output = run_with_option(&plain, "fuel=100", "");
    assert_failure(
        &output,
        1,
        &["setting `consume_fuel` = false", "this engine has true"],
    );
    let output = strata([
        OsStr::new("run"),
        OsStr::new("-W"),
        OsStr::new("fuel=100"),
        fueled.as_os_str(),
    ]);
    assert_failure(&output, 134, &["all fuel consumed", "fib"]);

    // A damaged artifact is refused, never run.
    let mut bytes = std::fs::read(&plain).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let damaged = dir.join("damaged.swasm");
    std::fs::write(&damaged, bytes).unwrap();
    let output = strata([OsStr::new("run"), damaged.as_os_str()]);
    assert_failure(
        &output,
        1,
        &["damaged.swasm", "precompiled code is corrupted", "not run"],
    );
}

#[test]
fn proc_exit_from_a_text_module_sets_the_exit_status() {
    let dir = scratch_dir("proc_exit_wat");
    let wat = dir.join("exit.wat");
    std::fs::write(
        &wat,
        r#"(module
             (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (func (export "_start") (call $exit (i32.const 9)) unreachable))"#,
    )
    .unwrap();
    let output = strata([OsStr::new("run"), wat.as_os_str()]);
    assert_output(&output, 9, "", "");
}

#[test]
fn unknown_imports_fail_to_link_with_status_1() {
    let dir = scratch_dir("unknown_import");
    let wat = dir.join("import.wat");
    std::fs::write(
        &wat,
        r#"(module (import "env" "missing" (func)) (func (export "_start")))"#,
    )
    .unwrap();
    let output = strata([OsStr::new("run"), wat.as_os_str()]);
    assert_failure(&output, 1, &["failed to run main module", "missing"]);
}

#[test]
fn modules_without_start_only_instantiate() {
    let dir = scratch_dir("no_start");
    let wat = dir.join("lib.wat");
    std::fs::write(
        &wat,
        r#"(module (func (export "f") (result i32) i32.const 1))"#,
    )
    .unwrap();
    let output = strata([OsStr::new("run"), wat.as_os_str(), OsStr::new("ignored")]);
    assert_output(&output, 0, "", "");
}

/// A module that needs the custom-page-sizes proposal (off by default): its memory has
/// 1-byte pages, and `grow` returns its size in pages after growing it by 100.
const CUSTOM_PAGES: &str = r#"(module
  (memory 1 (pagesize 1))
  (func (export "grow") (result i32)
    (drop (memory.grow (i32.const 100)))
    (memory.size)))"#;

/// The message wasmparser gives for a memory with a custom page size when the
/// proposal is off.
const CUSTOM_PAGES_OFF: &str =
    "the custom page sizes proposal must be enabled to customize a memory's page size";

/// `strata run [-W OPTION..] --invoke EXPORT MODULE`.
fn invoke(module: &Path, export: &str, options: &[&str]) -> Output {
    let mut args = vec![OsStr::new("run")];
    for option in options {
        args.extend([OsStr::new("-W"), OsStr::new(option)]);
    }
    args.extend([
        OsStr::new("--invoke"),
        OsStr::new(export),
        module.as_os_str(),
    ]);
    strata(args)
}

#[test]
fn wasm_features_are_turned_on_and_off_with_w() {
    let dir = scratch_dir("wasm_features");
    let pages = dir.join("pages.wat");
    std::fs::write(&pages, CUSTOM_PAGES).unwrap();
    assert_failure(&invoke(&pages, "grow", &[]), 1, &[CUSTOM_PAGES_OFF]);
    for option in [
        "custom-page-sizes",
        "custom-page-sizes=y",
        "custom-page-sizes=yes",
        "custom-page-sizes=true",
    ] {
        assert_output(&invoke(&pages, "grow", &[option]), 0, "101\n", "");
    }
    // The last setting wins, within one -W and across several.
    let output = invoke(&pages, "grow", &["custom-page-sizes,custom-page-sizes=no"]);
    assert_failure(&output, 1, &[CUSTOM_PAGES_OFF]);
    let output = invoke(
        &pages,
        "grow",
        &["custom-page-sizes=n", "custom-page-sizes"],
    );
    assert_output(&output, 0, "101\n", "");

    // Wide arithmetic: validation names the feature when it is off, and the module
    // runs when it is on ((2^64 - 1) * 2 = 2^65 - 2: low half -2, high half 1).
    let wide = dir.join("wide.wat");
    std::fs::write(
        &wide,
        r#"(module (func (export "f") (result i64 i64)
             (i64.mul_wide_u (i64.const -1) (i64.const 2))))"#,
    )
    .unwrap();
    let off = "wide arithmetic support is not enabled";
    assert_failure(&invoke(&wide, "f", &[]), 1, &[off]);
    assert_output(&invoke(&wide, "f", &["wide-arithmetic"]), 0, "-2\n1\n", "");

    // Features that are on by default can be turned off.
    let wide_memory = dir.join("memory64.wat");
    std::fs::write(
        &wide_memory,
        r#"(module (memory i64 3) (func (export "size") (result i64) (memory.size)))"#,
    )
    .unwrap();
    assert_output(&invoke(&wide_memory, "size", &[]), 0, "3\n", "");
    assert_output(&invoke(&wide_memory, "size", &["memory64"]), 0, "3\n", "");
    assert_failure(
        &invoke(&wide_memory, "size", &["memory64=false"]),
        1,
        &["memory64 must be enabled for 64-bit memories"],
    );

    // Function references are on by default too.
    let typed = dir.join("typed.wat");
    std::fs::write(
        &typed,
        r#"(module
             (type $t (func (result i32)))
             (func $seven (type $t) (i32.const 7))
             (elem declare func $seven)
             (func (export "f") (result i32) (call_ref $t (ref.func $seven))))"#,
    )
    .unwrap();
    assert_output(
        &invoke(&typed, "f", &[]),
        0,
        "7
",
        "",
    );
    assert_output(
        &invoke(&typed, "f", &["function-references=y"]),
        0,
        "7
",
        "",
    );
    assert_failure(
        &invoke(&typed, "f", &["function-references=n"]),
        1,
        &["function references"],
    );

    // And exceptions.
    let exceptions = dir.join("exceptions.wat");
    std::fs::write(
        &exceptions,
        r#"(module
             (tag $t (param i32))
             (func (export "f") (result i32)
               (block $h (result i32)
                 (try_table (catch $t $h) (throw $t (i32.const 9)))
                 (i32.const 0))))"#,
    )
    .unwrap();
    assert_output(&invoke(&exceptions, "f", &["exceptions=y"]), 0, "9\n", "");
    assert_failure(
        &invoke(&exceptions, "f", &["exceptions=n"]),
        1,
        &["exceptions proposal not enabled"],
    );

    assert_failure(
        &invoke(&pages, "grow", &["custom-page-sizes=maybe"]),
        2,
        &["invalid value `maybe` for -W custom-page-sizes"],
    );
}

#[test]
fn compiled_modules_need_the_features_they_were_compiled_with() {
    let dir = scratch_dir("compile_features");
    let wat = dir.join("pages.wat");
    std::fs::write(&wat, CUSTOM_PAGES).unwrap();
    let swasm = dir.join("pages.swasm");
    let compile = |extra: &[&str]| {
        let mut args = vec![OsStr::new("compile")];
        args.extend(extra.iter().map(OsStr::new));
        args.extend([wat.as_os_str(), OsStr::new("-o"), swasm.as_os_str()]);
        strata(args)
    };
    assert_failure(&compile(&[]), 1, &[CUSTOM_PAGES_OFF]);
    assert_output(&compile(&["-W", "custom-page-sizes"]), 0, "", "");

    assert_output(
        &invoke(&swasm, "grow", &["custom-page-sizes"]),
        0,
        "101\n",
        "",
    );
    // Loading checks the features too: an engine without the one the artifact was
    // compiled with refuses it, naming the setting.
    assert_failure(
        &invoke(&swasm, "grow", &[]),
        1,
        &[
            "setting `wasm_custom_page_sizes` = true",
            "this engine has false",
        ],
    );
}

#[test]
fn wast_scripts_run_with_the_features_given() {
    let dir = scratch_dir("wast_features");
    let script = dir.join("pages.wast");
    std::fs::write(
        &script,
        format!("{CUSTOM_PAGES}\n(assert_return (invoke \"grow\") (i32.const 101))\n"),
    )
    .unwrap();
    let wast = |extra: &[&str]| {
        let mut args = vec![OsStr::new("wast")];
        args.extend(extra.iter().map(OsStr::new));
        args.push(script.as_os_str());
        strata(args)
    };
    assert_output(
        &wast(&["-W", "custom-page-sizes"]),
        0,
        "2 passed, 0 failed\n",
        "",
    );
    // Fuel only compiles its checks in: scripts never run out.
    let output = wast(&["-W", "custom-page-sizes=yes,fuel=1", "-W", "tail-call=n"]);
    assert_output(&output, 0, "2 passed, 0 failed\n", "");

    let output = wast(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        stdout.contains(CUSTOM_PAGES_OFF) && stdout.ends_with("0 passed, 2 failed\n"),
        "{}",
        describe(&output)
    );

    assert_failure(
        &wast(&["-W", "frobnicate"]),
        2,
        &["unknown -W option `frobnicate`"],
    );
    assert_failure(
        &wast(&["-W", "max-memory-size=65536"]),
        1,
        &["does not take -W max-memory-size"],
    );
}

// ---------------------------------------------------------------------------------
// WASI programs written in C.

#[test]
fn stdio_reads_stdin_and_writes_stdout_and_stderr() {
    let wasm = build("stdio");
    let output = run_bounded(
        strata_command([OsStr::new("run"), wasm.as_os_str()]),
        b"hello\nworld\n",
        RUN_LIMIT,
    );
    let sum: u32 = b"hello\nworld\n".iter().map(|&b| u32::from(b)).sum();
    assert_output(
        &output,
        0,
        &format!("HELLO\nWORLD\n\nread 12 bytes, sum {sum}\n"),
        "this line goes to stderr\n",
    );

    // Larger than any one read, to see every chunk arrive.
    let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let sum: u64 = big.iter().map(|&b| u64::from(b)).sum();
    let output = run_bounded(
        strata_command([OsStr::new("run"), wasm.as_os_str()]),
        &big,
        RUN_LIMIT,
    );
    let head = String::from_utf8(big[..64].to_ascii_uppercase()).unwrap();
    assert_output(
        &output,
        0,
        &format!("{head}\nread 200000 bytes, sum {sum}\n"),
        "this line goes to stderr\n",
    );

    let output = strata([OsStr::new("run"), wasm.as_os_str()]);
    assert_output(
        &output,
        0,
        "\nread 0 bytes, sum 0\n",
        "this line goes to stderr\n",
    );
}

#[test]
fn args_reach_the_guest_with_the_module_name_as_argv0() {
    let wasm = build("args_env");
    // Everything after the module belongs to the guest, even what looks like options.
    let output = strata([
        OsStr::new("run"),
        wasm.as_os_str(),
        OsStr::new("-x"),
        OsStr::new("--y"),
        OsStr::new("--dir"),
        OsStr::new("two words"),
        OsStr::new(""),
    ]);
    assert_output(
        &output,
        0,
        "argc=6\nargv[0]=args_env.wasm\nargv[1]=-x\nargv[2]=--y\nargv[3]=--dir\n\
         argv[4]=two words\nargv[5]=\n",
        "",
    );

    let output = strata([
        OsStr::new("run"),
        OsStr::new("--argv0"),
        OsStr::new("renamed"),
        OsStr::new("--"),
        wasm.as_os_str(),
        OsStr::new("a"),
    ]);
    assert_output(&output, 0, "argc=2\nargv[0]=renamed\nargv[1]=a\n", "");
}

#[test]
fn env_sets_and_inherits_variables() {
    let wasm = build("args_env");
    let mut command = strata_command([
        OsStr::new("run"),
        OsStr::new("--env"),
        OsStr::new("GREETING=hello world"),
        OsStr::new("--env"),
        OsStr::new("EMPTY="),
        OsStr::new("--env"),
        OsStr::new("STRATA_TEST_INHERITED"),
        OsStr::new("--env"),
        OsStr::new("STRATA_TEST_NOT_SET_ANYWHERE"),
        OsStr::new("--env"),
        OsStr::new("EQUATION=a=b"),
        wasm.as_os_str(),
        OsStr::new("--getenv"),
        OsStr::new("GREETING"),
        OsStr::new("STRATA_TEST_INHERITED"),
        OsStr::new("STRATA_TEST_NOT_SET_ANYWHERE"),
        OsStr::new("STRATA_TEST_NOT_PASSED"),
    ]);
    command
        .env("STRATA_TEST_INHERITED", "from the host")
        .env("STRATA_TEST_NOT_PASSED", "secret")
        .env_remove("STRATA_TEST_NOT_SET_ANYWHERE");
    let output = run_bounded(command, b"", RUN_LIMIT);
    assert_output(
        &output,
        0,
        "argc=6\nargv[0]=args_env.wasm\nargv[1]=--getenv\nargv[2]=GREETING\n\
         argv[3]=STRATA_TEST_INHERITED\nargv[4]=STRATA_TEST_NOT_SET_ANYWHERE\n\
         argv[5]=STRATA_TEST_NOT_PASSED\n\
         env GREETING=hello world\nenv EMPTY=\nenv STRATA_TEST_INHERITED=from the host\n\
         env EQUATION=a=b\n\
         getenv(GREETING)=hello world\ngetenv(STRATA_TEST_INHERITED)=from the host\n\
         getenv(STRATA_TEST_NOT_SET_ANYWHERE)=(unset)\ngetenv(STRATA_TEST_NOT_PASSED)=(unset)\n",
        "",
    );
}

/// What `files.c` prints when every step works.
const FILES_STDOUT: &str = "read back: hello, file world\n\
    at offset 7: file\n\
    tell: 12\n\
    size: 23, regular: 1\n\
    sub is a directory: 1\n\
    ls sub: a.txt empty\n\
    ls sub: b.txt empty\n\
    ls sub:\n\
    removed sub\n\
    many: 300 entries, last seen: 1\n\
    host.txt: written by the host\n\
    ls .: guest.txt host.txt\n\
    done\n";

/// Runs `files.c` in a fresh directory pre-opened with `dir_arg(host_dir)`, the
/// guest seeing it as `guest_dir(host_dir)`, and checks the guest's file on the host.
fn check_files(test: &str, dir_arg: impl Fn(&Path) -> String, guest_dir: impl Fn(&Path) -> String) {
    let wasm = build("files");
    let dir = scratch_dir(test);
    std::fs::write(dir.join("host.txt"), "written by the host\n").unwrap();
    let output = strata([
        OsStr::new("run"),
        OsStr::new("--dir"),
        OsStr::new(&dir_arg(&dir)),
        wasm.as_os_str(),
        OsStr::new(&guest_dir(&dir)),
    ]);
    assert_output(&output, 0, FILES_STDOUT, "");
    assert_eq!(
        std::fs::read_to_string(dir.join("guest.txt")).unwrap(),
        "written by the guest\n"
    );
    assert!(!dir.join("sub").exists(), "the guest removed sub/");
}

#[test]
fn files_in_a_directory_mapped_to_a_guest_name() {
    check_files(
        "files_mapped",
        |host| format!("{}::/data", host.display()),
        |_| "/data".to_string(),
    );
}

#[test]
fn files_in_a_directory_preopened_under_its_own_name() {
    check_files(
        "files_same_name",
        |host| host.display().to_string(),
        |host| host.display().to_string(),
    );
}

#[test]
fn files_outside_every_preopen_are_unreachable() {
    let wasm = build("files");
    let dir = scratch_dir("files_no_preopen");
    let output = strata([OsStr::new("run"), wasm.as_os_str(), dir.as_os_str()]);
    assert_failure(&output, 1, &[]);
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("FAIL mkdir sub:"),
        "{}",
        describe(&output)
    );
    assert!(!dir.join("sub").exists());
}

#[test]
fn a_missing_preopen_directory_is_an_error() {
    let wasm = build("files");
    let dir = scratch_dir("missing_preopen").join("absent");
    let output = strata([
        OsStr::new("run"),
        OsStr::new("--dir"),
        dir.as_os_str(),
        wasm.as_os_str(),
        OsStr::new("/"),
    ]);
    assert_failure(&output, 1, &["directory", "absent"]);
    assert!(output.stdout.is_empty(), "{}", describe(&output));
}

/// Asserts `sandbox.c` reported `arg` as denied by the sandbox: ENOTCAPABLE or EPERM.
#[track_caller]
fn assert_denied(stdout: &str, arg: &str) {
    let line = sandbox_line(stdout, arg);
    assert!(
        line.contains("ENOTCAPABLE") || line.contains("EPERM"),
        "{arg} was not denied by the sandbox: {line}\n{stdout}"
    );
}

/// Runs `sandbox.c` with `--dir` arguments `dirs` and guest arguments `args`; returns
/// its stdout, after checking it exited with status 0.
fn run_sandbox(dirs: &[String], args: &[&str]) -> String {
    let mut command = strata_command(["run"]);
    for dir in dirs {
        command.args(["--dir", dir]);
    }
    command.arg(build("sandbox")).args(args);
    let output = run_bounded(command, b"", RUN_LIMIT);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    String::from_utf8(output.stdout).unwrap()
}

/// The line `sandbox.c` printed for `arg`.
#[track_caller]
fn sandbox_line<'a>(stdout: &'a str, arg: &str) -> &'a str {
    stdout
        .lines()
        .find(|line| line.starts_with(&format!("{arg}: ")))
        .unwrap_or_else(|| panic!("no line for {arg} in:\n{stdout}"))
}

#[test]
fn guests_cannot_escape_their_preopened_directories() {
    let root = scratch_dir("sandbox");
    let jail = root.join("jail");
    std::fs::create_dir_all(jail.join("sub")).unwrap();
    std::fs::write(root.join("secret.txt"), "outside\n").unwrap();
    std::fs::write(jail.join("inside.txt"), "inside\n").unwrap();
    std::os::unix::fs::symlink(root.join("secret.txt"), jail.join("absolute_link")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", jail.join("relative_link")).unwrap();
    std::os::unix::fs::symlink("/etc", jail.join("etc_link")).unwrap();
    std::os::unix::fs::symlink("inside.txt", jail.join("inner_link")).unwrap();

    // The jail as both `.` (relative paths) and `/data`: wasi-libc hands these paths
    // to the runtime, which must refuse every one that leads out of the jail.
    let inside = ["r:inside.txt", "r:inner_link", "r:/data/inside.txt"];
    let escapes = [
        "r:../secret.txt",
        "r:/data/../secret.txt",
        "r:/data/sub/../../secret.txt",
        "r:absolute_link",
        "r:/data/relative_link",
        "r:etc_link/passwd",
        "r:/data/etc_link/passwd",
        "w:../escaped.txt",
        "w:/data/../escaped.txt",
        "w:/data/relative_link",
        "d:../escaped_dir",
        "d:/data/sub/../../escaped_dir",
    ];
    let dirs = [
        format!("{}::.", jail.display()),
        format!("{}::/data", jail.display()),
    ];
    let stdout = run_sandbox(&dirs, &[&inside[..], &escapes[..]].concat());
    for arg in inside {
        assert_eq!(
            sandbox_line(&stdout, arg),
            format!("{arg}: opened"),
            "{stdout}"
        );
    }
    for arg in escapes {
        assert_denied(&stdout, arg);
    }

    // Only `/data`: paths under no preopen are refused by wasi-libc itself.
    let unreachable = ["r:/etc/passwd", "r:../secret.txt", "r:secret.txt"];
    let stdout = run_sandbox(&dirs[1..], &unreachable);
    for arg in unreachable {
        assert_denied(&stdout, arg);
    }

    // The jail as `/`: `/etc/passwd` is the jail's, which does not exist.
    let dirs = [format!("{}::/", jail.display())];
    let stdout = run_sandbox(
        &dirs,
        &["r:/etc/passwd", "r:/../secret.txt", "r:/inside.txt"],
    );
    assert_eq!(
        sandbox_line(&stdout, "r:/etc/passwd"),
        "r:/etc/passwd: ENOENT (No such file or directory)"
    );
    assert_denied(&stdout, "r:/../secret.txt");
    assert_eq!(
        sandbox_line(&stdout, "r:/inside.txt"),
        "r:/inside.txt: opened"
    );

    assert!(!root.join("escaped.txt").exists());
    assert!(!root.join("escaped_dir").exists());
    assert_eq!(
        std::fs::read_to_string(root.join("secret.txt")).unwrap(),
        "outside\n"
    );
}

#[test]
fn clocks_are_monotonic_realtime_and_sleep_long_enough() {
    let wasm = build("clocks");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let output = strata([
        OsStr::new("run"),
        wasm.as_os_str(),
        OsStr::new(&now.to_string()),
    ]);
    assert_output(
        &output,
        0,
        "monotonic went backwards 0 times\n\
         monotonic resolution positive: 1\n\
         realtime within a minute of host: 1\n\
         slept at least 10ms: 1\n",
        "",
    );
}

#[test]
fn random_bytes_are_random() {
    let wasm = build("random");
    let output = strata([OsStr::new("run"), wasm.as_os_str()]);
    assert_output(
        &output,
        0,
        "first all zero: 0\nsecond all zero: 0\ncalls differ: 1\n",
        "",
    );
}

#[test]
fn exit_statuses_come_from_the_guest() {
    let wasm = build("exit");
    for (how, status) in [
        ("exit7", 7),
        ("_Exit42", 42),
        ("return3", 3),
        ("return0", 0),
    ] {
        let output = strata([OsStr::new("run"), wasm.as_os_str(), OsStr::new(how)]);
        assert_output(&output, status, &format!("ending with {how}\n"), "");
    }
    // A status the host could not keep (256 would become 0) is an error instead.
    let output = strata([OsStr::new("run"), wasm.as_os_str(), OsStr::new("exit256")]);
    assert_failure(
        &output,
        1,
        &[
            &format!("Error: failed to run main module `{}`", wasm.display()),
            "256",
            "outside 0..126",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "ending with exit256\n",
        "{}",
        describe(&output)
    );
}

#[test]
fn traps_exit_134_with_a_wasm_backtrace() {
    let wasm = build("trap");
    let output = strata([OsStr::new("run"), wasm.as_os_str()]);
    assert_failure(
        &output,
        134,
        &[
            &format!("Error: failed to run main module `{}`", wasm.display()),
            "Caused by:",
            "wasm trap",
            "unreachable",
            "wasm backtrace",
            "- crash_here",
            "- _start",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "about to trap\n",
        "{}",
        describe(&output)
    );
    // The innermost frame comes first.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.find("- crash_here") < stderr.find("- _start"),
        "{}",
        describe(&output)
    );
}

#[test]
fn fuel_bounds_how_long_a_guest_runs() {
    let wasm = build("spin");
    let output = run_with_option(&wasm, "fuel=1000", "1000000000");
    assert_failure(
        &output,
        134,
        &["failed to run main module", "all fuel consumed"],
    );
    assert!(output.stdout.is_empty(), "{}", describe(&output));

    let output = run_with_option(&wasm, "fuel=10000000", "1000");
    assert_output(&output, 0, "counted to 1000\n", "");
}

#[test]
fn timeout_interrupts_an_endless_loop() {
    let wasm = build("spin");
    let command = strata_command([
        OsStr::new("run"),
        OsStr::new("-W"),
        OsStr::new("timeout=200ms"),
        wasm.as_os_str(),
        OsStr::new("forever"),
    ]);
    let output = run_bounded(command, b"", Duration::from_secs(30));
    assert_failure(&output, 134, &["failed to run main module", "interrupt"]);

    let output = run_with_option(&wasm, "timeout=1m", "1000");
    assert_output(&output, 0, "counted to 1000\n", "");
}

#[test]
fn max_memory_size_makes_large_mallocs_fail() {
    let wasm = build("memory");
    let output = run_with_option(&wasm, "max-memory-size=4194304", "64");
    assert_output(&output, 0, "malloc failed\n", "");

    let output = run_with_option(&wasm, "max-memory-size=4194304", "1");
    assert_output(&output, 0, "malloc ok, 256 pages touched\n", "");

    let output = strata([OsStr::new("run"), wasm.as_os_str(), OsStr::new("64")]);
    assert_output(&output, 0, "malloc ok, 16384 pages touched\n", "");
}
