//! The WebAssembly modules the benchmarks run, generated as WAT text, and the values a
//! correct runtime must compute with them.

use std::fmt::Write;

/// Number of functions defined by [`instantiation_module`].
pub const FUNCS: u32 = 100;
/// Number of entries in its funcref table, all filled by one active element segment.
pub const TABLE_ENTRIES: u32 = 10;
/// Size in bytes of its active data segment.
pub const DATA_BYTES: u32 = 4096;
/// Offset of that data segment in linear memory: page-aligned, so copy-on-write
/// initialization can map it straight from the module's memory image.
pub const DATA_OFFSET: u32 = 0;
/// Number of mutable globals (half `i32`, half `i64`).
pub const GLOBALS: u32 = 10;

/// The byte the data segment holds at index `i`.
pub fn data_byte(i: u32) -> u8 {
    // Truncation intended: a repeating byte pattern.
    (i.wrapping_mul(31).wrapping_add(7) & 0xff) as u8
}

/// The constant that the even-numbered function `$f{i}` returns.
pub fn const_func_result(i: u32) -> i32 {
    i32::try_from(i * 7 + 1).expect("small")
}

/// What the exported `dispatch` returns for table slot `slot`: slot `k` holds `$f{10 k}`.
pub fn dispatch_result(slot: u32) -> i32 {
    const_func_result(slot * (FUNCS / TABLE_ENTRIES))
}

/// A small module that is typical of what an embedder instantiates per request:
///
/// ```text
/// memory   1 page, exported as "memory"; 4 KiB active data segment at offset 0
/// table    10 funcrefs, filled by an active element segment with $f0 $f10 .. $f90
/// globals  5 × (mut i32), 5 × (mut i64)
/// funcs    100: even $f{i} return a constant, odd $f{i} add their two i32 params
/// exports  "f0", "add1" ($f1), "dispatch" (call_indirect into the table), "bump"
///          (increments global 0 and returns it), "memory"
/// ```
pub fn instantiation_module() -> String {
    let mut wat = String::from("(module\n");
    wat.push_str("  (type $const (func (result i32)))\n");
    wat.push_str("  (type $add (func (param i32 i32) (result i32)))\n");
    wat.push_str("  (memory (export \"memory\") 1)\n");

    write!(wat, "  (data (i32.const {DATA_OFFSET}) \"").expect("write to String");
    for i in 0..DATA_BYTES {
        write!(wat, "\\{:02x}", data_byte(i)).expect("write to String");
    }
    wat.push_str("\")\n");

    writeln!(wat, "  (table $t {TABLE_ENTRIES} funcref)").expect("write to String");
    wat.push_str("  (elem (table $t) (i32.const 0) func");
    for slot in 0..TABLE_ENTRIES {
        write!(wat, " $f{}", slot * (FUNCS / TABLE_ENTRIES)).expect("write to String");
    }
    wat.push_str(")\n");

    for g in 0..GLOBALS {
        let ty = if g % 2 == 0 { "i32" } else { "i64" };
        writeln!(wat, "  (global $g{g} (mut {ty}) ({ty}.const {g}))").expect("write to String");
    }

    for i in 0..FUNCS {
        if i % 2 == 0 {
            writeln!(
                wat,
                "  (func $f{i} (type $const) (i32.const {}))",
                const_func_result(i)
            )
        } else {
            writeln!(
                wat,
                "  (func $f{i} (type $add) (i32.add (local.get 0) (local.get 1)))"
            )
        }
        .expect("write to String");
    }

    wat.push_str(
        r#"  (export "f0" (func $f0))
  (export "add1" (func $f1))
  (func (export "dispatch") (param $slot i32) (result i32)
    (call_indirect $t (type $const) (local.get $slot)))
  (func (export "bump") (result i32)
    (global.set $g0 (i32.add (global.get $g0) (i32.const 1)))
    (global.get $g0))
)
"#,
    );
    wat
}

/// Where [`check_instance`] expects the 16 bytes of memory it is given to come from.
pub const CHECKED_DATA_AT: usize = DATA_OFFSET as usize + 100;

/// Checks what a runtime's `Instantiate::check` read from a fresh instance: the results
/// of `f0()`, `add1(40, 2)`, `dispatch(0..10)` and `bump()`, in that order, and the
/// bytes of memory at [`CHECKED_DATA_AT`].
///
/// # Errors
/// Says what differs.
pub fn check_instance(results: &[i32], memory: &[u8]) -> Result<(), String> {
    let mut want = vec![const_func_result(0), 42];
    want.extend((0..TABLE_ENTRIES).map(dispatch_result));
    want.push(1);
    if results != want {
        return Err(format!("exports returned {results:?}, expected {want:?}"));
    }
    let first = u32::try_from(CHECKED_DATA_AT - DATA_OFFSET as usize).expect("small");
    let want_data: Vec<u8> = (first..).take(memory.len()).map(data_byte).collect();
    if memory != want_data {
        return Err(format!("memory holds {memory:?}, expected {want_data:?}"));
    }
    Ok(())
}

/// A module whose exported `run(n)` calls the imported `host.nop: [] -> []` `n` times.
pub const HOST_CALL_WAT: &str = r#"(module
  (import "host" "nop" (func $nop))
  (func (export "run") (param $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (call $nop)
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next))))
)
"#;

/// A module for async calls: `nop` does nothing, `wait` calls the async host function
/// `host::wait` once.
pub const ASYNC_WAT: &str = r#"(module
  (import "host" "wait" (func $wait))
  (func (export "nop"))
  (func (export "wait") (call $wait)))
"#;

/// A module exporting the naive doubly recursive `fib: [i32] -> [i32]`.
pub const FIB_WAT: &str = r#"(module
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else
        (i32.add
          (call $fib (i32.sub (local.get $n) (i32.const 1)))
          (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
)
"#;

/// A loop kernel: the total number of Collatz steps of `1..=n`, in two nested loops
/// with a branch per step.
pub const COLLATZ_WAT: &str = r#"(module
  (func (export "collatz") (param $n i32) (result i32)
    (local $i i32) (local $x i64) (local $steps i32)
    (local.set $i (i32.const 1))
    (loop $outer
      (local.set $x (i64.extend_i32_u (local.get $i)))
      (block $done
        (loop $inner
          (br_if $done (i64.le_u (local.get $x) (i64.const 1)))
          (local.set $steps (i32.add (local.get $steps) (i32.const 1)))
          (if (i64.eqz (i64.and (local.get $x) (i64.const 1)))
            (then (local.set $x (i64.shr_u (local.get $x) (i64.const 1))))
            (else (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 3)) (i64.const 1)))))
          (br $inner)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $outer (i32.le_u (local.get $i) (local.get $n))))
    (local.get $steps))
)
"#;

/// [`COLLATZ_WAT`]'s answer computed on the host.
pub fn collatz(n: u32) -> i32 {
    let mut steps = 0i32;
    for i in 1..=u64::from(n) {
        let mut x = i;
        while x > 1 {
            steps = steps.wrapping_add(1);
            x = if x % 2 == 0 { x / 2 } else { 3 * x + 1 };
        }
    }
    steps
}

/// `fib(n)` computed on the host, to check the runtimes' answers.
pub fn fib(n: u32) -> i32 {
    let (mut a, mut b) = (0i32, 1i32);
    for _ in 0..n {
        (a, b) = (b, a.wrapping_add(b));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_parse() {
        let bytes = wat::parse_str(instantiation_module()).unwrap();
        // 4 KiB of data plus 100 small bodies: a few KiB in all.
        assert!(bytes.len() > DATA_BYTES as usize && bytes.len() < 8 * 1024);
        wat::parse_str(HOST_CALL_WAT).unwrap();
        wat::parse_str(FIB_WAT).unwrap();
        wat::parse_str(COLLATZ_WAT).unwrap();
    }

    #[test]
    fn host_collatz() {
        // 2 → 1 takes one step, 3 → 10 → 5 → 16 → 8 → 4 → 2 → 1 seven.
        assert_eq!(collatz(1), 0);
        assert_eq!(collatz(3), 8);
    }

    #[test]
    fn host_fib() {
        assert_eq!(fib(0), 0);
        assert_eq!(fib(10), 55);
        assert_eq!(fib(30), 832_040);
    }
}
