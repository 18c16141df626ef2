//! Seeing the code: `strata compile --emit-clif` and `strata objdump`.

use super::{assert_failure, assert_output, describe, repo, scratch_dir, strata};
use std::ffi::OsStr;
use std::path::Path;

/// A module with a named function holding a loop over memory, an unnamed one, and an
/// import (which has no code of its own).
const LOOP: &str = r#"(module
  (import "host" "log" (func (param i32)))
  (memory 1)
  (func $sum (export "sum") (param i32) (result i32) (local i32)
    (loop $l
      (local.set 1 (i32.add (local.get 1) (i32.load (local.get 0))))
      (local.set 0 (i32.add (local.get 0) (i32.const 4)))
      (br_if $l (i32.lt_u (local.get 0) (i32.const 4096))))
    (local.get 1))
  (func (export "twice") (param i32) (result i32)
    (i32.mul (local.get 0) (i32.const 2))))"#;

fn write_loop(dir: &Path) -> std::path::PathBuf {
    let wat = dir.join("loop.wat");
    std::fs::write(&wat, LOOP).unwrap();
    wat
}

/// `strata compile OPTIONS WAT -o OUT`, which must succeed silently.
fn compile(options: &[&OsStr], wat: &Path, out: &Path) {
    let mut args: Vec<&OsStr> = vec![OsStr::new("compile")];
    args.extend(options);
    args.extend([wat.as_os_str(), OsStr::new("-o"), out.as_os_str()]);
    assert_output(&strata(args), 0, "", "");
}

fn stdout_of(args: &[&OsStr]) -> String {
    let output = strata(args);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn emit_clif_writes_each_function_as_wasmtime_names_it() {
    let dir = scratch_dir("emit_clif");
    let wat = write_loop(&dir);
    let clif = dir.join("clif").join("nested");
    let swasm = dir.join("loop.swasm");
    compile(&[OsStr::new("--emit-clif"), clif.as_os_str()], &wat, &swasm);

    // Functions 1 and 2 (0 is the import), an entry trampoline per export and one
    // host-call trampoline for the import's signature.
    let mut files: Vec<String> = std::fs::read_dir(&clif)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert!(
        files.contains(&"wasm[0]--function[1].clif".to_string())
            && files.contains(&"wasm[0]--function[2].clif".to_string())
            && files.contains(&"wasm[0]--array_to_wasm_trampoline[1].clif".to_string())
            && !files.iter().any(|f| f.contains("function[0]")),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("wasm_to_array_trampoline.clif")),
        "{files:?}"
    );

    let sum = std::fs::read_to_string(clif.join("wasm[0]--function[1].clif")).unwrap();
    assert!(
        sum.starts_with(
            ";; Intermediate Representation of function <wasm[0]::function[1]> (sum):\n"
        ),
        "{sum}"
    );
    // The IR after optimization: the loop's load of linear memory, in its region.
    assert!(sum.contains("load.i32 little region0"), "{sum}");
    let twice = std::fs::read_to_string(clif.join("wasm[0]--function[2].clif")).unwrap();
    assert!(
        twice.starts_with(";; Intermediate Representation of function <wasm[0]::function[2]>:\n"),
        "an unnamed function has no name in its header: {twice}"
    );

    // Writing the IR changes nothing in the artifact.
    let plain = dir.join("plain.swasm");
    compile(&[], &wat, &plain);
    assert_eq!(
        std::fs::read(&swasm).unwrap(),
        std::fs::read(&plain).unwrap()
    );
}

#[test]
fn emit_clif_into_a_file_fails_with_the_path() {
    let dir = scratch_dir("emit_clif_file");
    let wat = write_loop(&dir);
    let file = dir.join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let output = strata([
        OsStr::new("compile"),
        OsStr::new("--emit-clif"),
        file.as_os_str(),
        wat.as_os_str(),
    ]);
    assert_failure(&output, 1, &["not-a-dir"]);
}

#[test]
fn objdump_labels_each_function_and_disassembles_it() {
    let dir = scratch_dir("objdump");
    let wat = write_loop(&dir);
    let text = stdout_of(&[OsStr::new("objdump"), wat.as_os_str()]);
    let labels: Vec<&str> = text.lines().filter(|l| l.ends_with(':')).collect();
    assert_eq!(
        labels,
        ["wasm[0]::function[1] (sum):", "wasm[0]::function[2]:"],
        "{text}"
    );
    // Every other line is an instruction at an offset, the last of each function a
    // return.
    let return_mnemonic = if cfg!(target_arch = "x86_64") {
        "retq"
    } else {
        "ret"
    };
    for function in text.split("\n\n").map(str::trim).filter(|f| !f.is_empty()) {
        let instructions: Vec<&str> = function.lines().skip(1).collect();
        assert!(instructions.len() > 2, "{function}");
        for line in &instructions {
            let (offset, instruction) = line.split_once(":  ").expect(line);
            assert!(u64::from_str_radix(offset.trim(), 16).is_ok(), "{line}");
            assert!(!instruction.trim().is_empty(), "{line}");
        }
        assert!(
            instructions.last().unwrap().ends_with(return_mnemonic),
            "{function}"
        );
    }
    assert!(!text.contains("not decoded"), "{text}");

    // A precompiled module holds the same code.
    let swasm = dir.join("loop.swasm");
    compile(&[], &wat, &swasm);
    assert_eq!(stdout_of(&[OsStr::new("objdump"), swasm.as_os_str()]), text);
}

#[test]
fn objdump_filters_functions_and_shows_bytes() {
    let dir = scratch_dir("objdump_filter");
    let wat = write_loop(&dir);
    let plain = stdout_of(&[
        OsStr::new("objdump"),
        OsStr::new("--filter"),
        OsStr::new("sum"),
        wat.as_os_str(),
    ]);
    assert!(
        plain.contains("(sum):") && !plain.contains("function[2]"),
        "{plain}"
    );
    let with_bytes = stdout_of(&[
        OsStr::new("objdump"),
        OsStr::new("--bytes"),
        OsStr::new("--filter"),
        OsStr::new("function[2]"),
        wat.as_os_str(),
    ]);
    assert!(!with_bytes.contains("sum"), "{with_bytes}");
    // The first instruction's bytes, in hex, then the instruction.
    let first = with_bytes.lines().nth(2).unwrap();
    let (_, rest) = first.split_once(":  ").unwrap();
    let hex = rest.split_whitespace().next().unwrap();
    assert!(
        hex.len() == 2 && u8::from_str_radix(hex, 16).is_ok(),
        "{with_bytes}"
    );
}

#[test]
fn objdump_of_a_module_that_does_not_load_says_why() {
    let dir = scratch_dir("objdump_bad");
    let bad = dir.join("bad.wat");
    std::fs::write(&bad, "(module (func (result i32) f32.const 1))").unwrap();
    let output = strata([OsStr::new("objdump"), bad.as_os_str()]);
    assert_failure(&output, 1, &["bad.wat", "type mismatch"]);
    // The hello example is a valid module, but not with SIMD off if it were compiled
    // with it on; a precompiled module needs the options it was compiled with.
    let swasm = dir.join("hello.swasm");
    let hello = repo().join("examples/hello.wat");
    compile(&[OsStr::new("-W"), OsStr::new("simd=n")], &hello, &swasm);
    let output = strata([OsStr::new("objdump"), swasm.as_os_str()]);
    assert_failure(&output, 1, &["hello.swasm", "simd"]);
    let text = stdout_of(&[
        OsStr::new("objdump"),
        OsStr::new("-W"),
        OsStr::new("simd=n"),
        swasm.as_os_str(),
    ]);
    assert!(text.contains("wasm[0]::function[0] (fib):"), "{text}");
}
