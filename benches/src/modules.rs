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

/// A module for the four kinds of call across the host boundary (the `calls` binary),
/// all of type `[i32] -> [i32]`:
///
/// - `inc(x)` returns `x + 1`: the host calls it, typed and untyped;
/// - `typed(n)` and `untyped(n)` start from 0 and apply the imported `host.typed` or
///   `host.untyped` (each meant to add 1) `n` times, so both return `n`.
pub const CALLS_WAT: &str = r#"(module
  (import "host" "typed" (func $typed (param i32) (result i32)))
  (import "host" "untyped" (func $untyped (param i32) (result i32)))
  (func (export "inc") (param $x i32) (result i32)
    (i32.add (local.get $x) (i32.const 1)))
  (func (export "typed") (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (call $typed (local.get $acc)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $acc))
  (func (export "untyped") (param $n i32) (result i32)
    (local $acc i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (call $untyped (local.get $acc)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $acc))
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

/// Number of generated functions in [`large_module`] at full size (its `answer` export
/// comes on top).
pub const LARGE_FUNCS: u32 = 25_000;
/// Size in bytes of [`large_module`]'s active data segment.
pub const LARGE_DATA_BYTES: u32 = 1 << 20;
/// Offset of that data segment: 1024, as wasi-sdk's default global base, so it is not
/// page-aligned.
pub const LARGE_DATA_OFFSET: u32 = 1024;
/// Size of [`large_module`]'s memory in 64 KiB pages (2 MiB).
pub const LARGE_MEMORY_PAGES: u32 = 32;
/// What [`large_module`]'s trivial export `answer: [] -> [i32]` returns.
pub const LARGE_ANSWER: i32 = 42;

/// Namespaces that [`large_func_name`] picks from, so that the name section looks like
/// a C++ program's (of average length, not content).
const NAMESPACES: [&str; 8] = [
    "js::frontend::Parser::",
    "js::jit::MacroAssembler::",
    "js::gc::GCRuntime::",
    "JS::",
    "mozilla::detail::HashTable::",
    "js::wasm::",
    "icu_76::UnicodeSet::",
    "",
];

/// A small deterministic pseudo-random generator (SplitMix64), so that the generated
/// module is the same on every run and machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u32) -> u32 {
        // Truncation intended: the remainder is below `n`.
        (self.next() % u64::from(n)) as u32
    }

    /// True with probability `1 / n`.
    fn one_in(&mut self, n: u32) -> bool {
        self.below(n) == 0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(u32::try_from(items.len()).expect("short list")) as usize]
    }
}

/// The signature of generated function `i` in [`large_module`], an index into:
///
/// ```text
/// $s0  (param i32)     (result i32)
/// $s1  (param i32 i32) (result i32)
/// $s2  (param i32 i64) (result i64)
/// $s3  (param i32 i64)
/// ```
fn large_sig(i: u32) -> u32 {
    Rng::new(u64::from(i) ^ 0x5157_0000).below(4)
}

/// The name of generated function `i` in [`large_module`] (and in its name section).
pub fn large_func_name(i: u32) -> String {
    let ns = NAMESPACES[Rng::new(u64::from(i) ^ 0x4e41_4d45).below(8) as usize];
    format!("{ns}fn{i}")
}

/// Writes generated function `i` of [`large_module`]: locals, a counted loop with
/// `br_if` whose body mixes i32/i64 arithmetic, loads and stores with offsets and a
/// conditional; direct calls to earlier functions; usually a `call_indirect` through
/// the table and a `br_table`; then its result.
fn large_func(wat: &mut String, i: u32, funcs: u32) {
    let mut r = Rng::new(u64::from(i));
    let sig = large_sig(i);
    let params = if sig == 0 { 1 } else { 2 };
    // Locals by index: params first, then x: i32, y: i64, n: i32, then extras.
    let (x, y, n) = (params, params + 1, params + 2);
    let extras: Vec<&str> = (0..r.below(5))
        .map(|_| if r.one_in(3) { "i64" } else { "i32" })
        .collect();
    let extra_base = params + 3;

    write!(wat, "  (func ${} (type $s{sig})", large_func_name(i)).expect("write to String");
    wat.push_str(" (local i32 i64 i32");
    for ty in &extras {
        write!(wat, " {ty}").expect("write to String");
    }
    wat.push_str(")\n");

    // Prologue: read the state from memory.
    let off = r.below(4096) * 4;
    writeln!(
        wat,
        "    (local.set {x} (i32.load offset={off} (i32.and (local.get 0) (i32.const 0xffffc))))"
    )
    .expect("write to String");
    if sig >= 2 {
        writeln!(
            wat,
            "    (local.set {y} (i64.add (local.get 1) (i64.load offset={} (i32.and (local.get {x}) (i32.const 0xffff8)))))",
            r.below(2048) * 8
        )
    } else {
        writeln!(wat, "    (local.set {y} (i64.extend_i32_u (local.get {x})))")
    }
    .expect("write to String");

    // The loop: mostly short bodies, now and then a long one.
    let statements = if r.one_in(16) {
        16 + r.below(40)
    } else {
        1 + r.below(7)
    };
    let trip = 1 + r.below(100);
    // Labels by depth, not by name: toolchains write no label names, and `wat` would
    // put `$names` in the name section.
    wat.push_str("    (block ;; exit\n      (loop ;; top\n");
    for _ in 0..statements {
        wat.push_str("        ");
        large_statement(wat, &mut r, (x, y, n), extra_base, &extras);
        wat.push('\n');
    }
    writeln!(
        wat,
        "        (local.set {n} (i32.add (local.get {n}) (i32.const 1)))\n        \
         (br_if 0 (i32.lt_u (local.get {n}) (i32.const {trip})))))"
    )
    .expect("write to String");

    // Direct calls to earlier functions, mostly near ones.
    if i > 0 {
        for _ in 0..1 + r.below(3) {
            let back = if r.one_in(4) { i } else { i.min(64) };
            let callee = i - 1 - r.below(back);
            let name = large_func_name(callee);
            match large_sig(callee) {
                0 => writeln!(
                    wat,
                    "    (local.set {x} (i32.add (local.get {x}) (call ${name} (local.get {x}))))"
                ),
                1 => writeln!(
                    wat,
                    "    (local.set {x} (i32.xor (local.get {x}) (call ${name} (local.get {x}) (local.get {n}))))"
                ),
                2 => writeln!(
                    wat,
                    "    (local.set {y} (i64.add (local.get {y}) (call ${name} (local.get {x}) (local.get {y}))))"
                ),
                _ => writeln!(wat, "    (call ${name} (local.get {x}) (local.get {y}))"),
            }
            .expect("write to String");
        }
    }

    // An indirect call through the table holding every function.
    if !r.one_in(3) {
        let slot = format!("(i32.rem_u (local.get {x}) (i32.const {funcs}))");
        match r.below(4) {
            0 => writeln!(
                wat,
                "    (local.set {x} (call_indirect $table (type $s0) (local.get {n}) {slot}))"
            ),
            1 => writeln!(
                wat,
                "    (local.set {x} (call_indirect $table (type $s1) (local.get {x}) (local.get {n}) {slot}))"
            ),
            2 => writeln!(
                wat,
                "    (local.set {y} (call_indirect $table (type $s2) (local.get {x}) (local.get {y}) {slot}))"
            ),
            _ => writeln!(
                wat,
                "    (call_indirect $table (type $s3) (local.get {x}) (local.get {y}) {slot})"
            ),
        }
        .expect("write to String");
    }

    // A switch: `br_table` over nested blocks, one case per block.
    if r.below(5) < 2 {
        let cases = 3 + r.below(6);
        // Case `c` branches to block `c` (innermost 0); its code follows that block's
        // end, then it branches out of the outermost block.
        for _ in 0..cases {
            wat.push_str("    (block\n");
        }
        wat.push_str("    (br_table");
        for c in 0..cases {
            write!(wat, " {c}").expect("write to String");
        }
        writeln!(wat, " (i32.rem_u (local.get {x}) (i32.const {cases})))")
            .expect("write to String");
        for c in 0..cases - 1 {
            writeln!(
                wat,
                "    ) (local.set {x} (i32.add (i32.mul (local.get {x}) (i32.const {})) (i32.const {c}))) (br {})",
                3 + 2 * c,
                cases - 2 - c
            )
            .expect("write to String");
        }
        writeln!(
            wat,
            "    ) (local.set {y} (i64.rotl (local.get {y}) (i64.const 7)))"
        )
        .expect("write to String");
    }

    match sig {
        0 | 1 => writeln!(
            wat,
            "    (i32.add (local.get {x}) (i32.wrap_i64 (local.get {y}))))"
        ),
        2 => writeln!(
            wat,
            "    (i64.add (local.get {y}) (i64.extend_i32_u (local.get {x}))))"
        ),
        _ => writeln!(
            wat,
            "    (i64.store offset={} (i32.const 0) (local.get {y})))",
            r.below(128) * 8
        ),
    }
    .expect("write to String");
}

/// Writes one statement of a generated loop body.
fn large_statement(
    wat: &mut String,
    r: &mut Rng,
    (x, y, n): (u32, u32, u32),
    extra_base: u32,
    extras: &[&str],
) {
    let c = r.below(100_000);
    let off = r.below(1024) * 4;
    let written = match r.below(9) {
        0 | 1 => {
            let op = r.pick(&["add", "sub", "xor", "or", "and", "mul", "shl", "rotl"]);
            let op2 = r.pick(&["add", "mul", "xor", "shr_u"]);
            write!(
                wat,
                "(local.set {x} (i32.{op} (local.get {x}) (i32.{op2} (local.get {n}) (i32.const {c}))))"
            )
        }
        2 => {
            let op = r.pick(&["add", "sub", "xor", "mul", "rotr"]);
            write!(
                wat,
                "(local.set {y} (i64.{op} (local.get {y}) (i64.extend_i32_s (local.get {x}))))"
            )
        }
        3 => write!(
            wat,
            "(i32.store offset={off} (i32.and (local.get {x}) (i32.const 0xffffc)) (local.get {x}))"
        ),
        4 => write!(
            wat,
            "(i64.store offset={off} (i32.and (local.get {n}) (i32.const 0xffff8)) (local.get {y}))"
        ),
        5 => write!(
            wat,
            "(local.set {x} (i32.add (local.get {x}) (i32.load8_u offset={off} (i32.and (local.get {x}) (i32.const 0xfffff)))))"
        ),
        6 => write!(
            wat,
            "(if (i32.eqz (i32.and (local.get {x}) (i32.const 1))) \
             (then (local.set {x} (i32.shr_u (local.get {x}) (i32.const 1)))) \
             (else (local.set {x} (i32.add (i32.mul (local.get {x}) (i32.const 3)) (i32.const 1)))))"
        ),
        7 if !extras.is_empty() => {
            let e = r.below(u32::try_from(extras.len()).expect("few locals"));
            let local = extra_base + e;
            if extras[e as usize] == "i64" {
                write!(
                    wat,
                    "(local.set {local} (i64.add (local.get {local}) (i64.mul (local.get {y}) (i64.const {c}))))"
                )
            } else {
                write!(
                    wat,
                    "(local.set {local} (i32.sub (local.get {local}) (local.get {x})))"
                )
            }
        }
        _ => write!(
            wat,
            "(br_if 1 (i32.gt_u (local.get {x}) (i32.const {})))",
            c + 1_000_000
        ),
    };
    written.expect("write to String");
}

/// A module of roughly the shape and size of SpiderMonkey compiled to wasm (which is
/// not among the Sightglass programs here), for the `load` benchmark; deterministic:
///
/// ```text
/// types    $s0..$s3 (see `large_sig`), and [] -> [i32] for `answer`
/// memory   32 pages (2 MiB), exported as "memory"; a 1 MiB active data segment at 1024
/// table    `funcs` funcrefs, exported as "table", holding every generated function
///          (one active element segment)
/// funcs    `funcs` generated functions of varied shape (see `large_func`), then
///          `answer`, which returns 42
/// exports  every 10th generated function as "f{i}", "answer", "memory", "table"
/// names    a name section naming every function (`large_func_name`)
/// ```
///
/// With [`LARGE_FUNCS`] functions it is about 6 MB of wasm.
pub fn large_module(funcs: u32) -> String {
    let mut wat = String::with_capacity(funcs as usize * 1500 + 4 * LARGE_DATA_BYTES as usize);
    wat.push_str(
        "(module\n  (type $s0 (func (param i32) (result i32)))\n  \
         (type $s1 (func (param i32 i32) (result i32)))\n  \
         (type $s2 (func (param i32 i64) (result i64)))\n  \
         (type $s3 (func (param i32 i64)))\n",
    );
    writeln!(wat, "  (memory (export \"memory\") {LARGE_MEMORY_PAGES})").expect("write to String");
    writeln!(
        wat,
        "  (table $table (export \"table\") {funcs} {funcs} funcref)"
    )
    .expect("write to String");

    write!(wat, "  (data (i32.const {LARGE_DATA_OFFSET}) \"").expect("write to String");
    let mut r = Rng::new(0xda7a);
    for _ in 0..LARGE_DATA_BYTES {
        // Like a program's data: many zeros, some text, some tables of numbers.
        let byte = match r.below(8) {
            0..=2 => 0,
            3 | 4 => b'a' + u8::try_from(r.below(26)).expect("a letter"),
            _ => u8::try_from(r.below(256)).expect("a byte"),
        };
        write!(wat, "\\{byte:02x}").expect("write to String");
    }
    wat.push_str("\")\n");

    wat.push_str("  (elem (table $table) (i32.const 0) func");
    for i in 0..funcs {
        write!(wat, " ${}", large_func_name(i)).expect("write to String");
    }
    wat.push_str(")\n");

    for i in 0..funcs {
        large_func(&mut wat, i, funcs);
        if i % 10 == 0 {
            writeln!(wat, "  (export \"f{i}\" (func ${}))", large_func_name(i))
                .expect("write to String");
        }
    }
    writeln!(
        wat,
        "  (func $answer (export \"answer\") (result i32) (i32.const {LARGE_ANSWER}))\n)"
    )
    .expect("write to String");
    wat
}

/// Exception handling and typed calls, each an `i32 -> i32` loop of `n` iterations:
/// `throw1` throws from the function it calls and catches it (one frame up),
/// `throw10` throws ten frames down; each returns the sum of the caught fields
/// (`0 + 1 + .. + n-1`, wrapping). `call_ref` and `call_indirect` call the same
/// one-instruction function `n` times, through a typed reference and through a table,
/// and return `n`.
pub const EXCEPTIONS_WAT: &str = r#"(module
  (type $t (func (param i32) (result i32)))
  (tag $e (param i32))
  (func $d1 (param i32) (throw $e (local.get 0)))
  (func $d2 (param i32) (call $d1 (local.get 0)))
  (func $d3 (param i32) (call $d2 (local.get 0)))
  (func $d4 (param i32) (call $d3 (local.get 0)))
  (func $d5 (param i32) (call $d4 (local.get 0)))
  (func $d6 (param i32) (call $d5 (local.get 0)))
  (func $d7 (param i32) (call $d6 (local.get 0)))
  (func $d8 (param i32) (call $d7 (local.get 0)))
  (func $d9 (param i32) (call $d8 (local.get 0)))
  (func $d10 (param i32) (call $d9 (local.get 0)))
  (func (export "throw1") (param $n i32) (result i32)
    (local $i i32) (local $sum i32)
    (loop $next
      (block $caught (result i32)
        (try_table (catch $e $caught) (call $d1 (local.get $i)))
        (i32.const 0))
      (local.set $sum (i32.add (local.get $sum)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $sum))
  (func (export "throw10") (param $n i32) (result i32)
    (local $i i32) (local $sum i32)
    (loop $next
      (block $caught (result i32)
        (try_table (catch $e $caught) (call $d10 (local.get $i)))
        (i32.const 0))
      (local.set $sum (i32.add (local.get $sum)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $sum))
  (func $inc (type $t) (i32.add (local.get 0) (i32.const 1)))
  (table 1 funcref)
  (elem (i32.const 0) $inc)
  (func (export "call_ref") (param $n i32) (result i32)
    (local $i i32) (local $acc i32) (local $f (ref $t))
    (local.set $f (ref.func $inc))
    (loop $next
      (local.set $acc (call_ref $t (local.get $acc) (local.get $f)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc))
  (func (export "call_indirect") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (loop $next
      (local.set $acc (call_indirect (type $t) (local.get $acc) (i32.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc))
)
"#;

/// What `throw1` and `throw10` of [`EXCEPTIONS_WAT`] return for `n`.
pub fn sum_below(n: u32) -> i32 {
    (0..n).fold(0_i32, |sum, i| sum.wrapping_add(i.cast_signed()))
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
    fn large_module_is_valid_and_deterministic() {
        // A small instance of the generator: every shape of function appears in a few
        // hundred; the full size takes seconds to parse and is checked by `load`.
        let funcs = 300;
        let text = large_module(funcs);
        assert_eq!(text, large_module(funcs));
        let bytes = wat::parse_str(&text).unwrap();
        assert!(bytes.len() > LARGE_DATA_BYTES as usize);
        let engine = strata::Engine::default();
        strata::Module::validate(&engine, &bytes).unwrap();
        let module = strata::Module::new(&engine, &bytes).unwrap();
        let mut store = strata::Store::new(&engine, ());
        let instance = strata::Instance::new(&mut store, &module, &[]).unwrap();
        let answer = instance
            .get_typed_func::<(), i32>(&mut store, "answer")
            .unwrap();
        assert_eq!(answer.call(&mut store, ()).unwrap(), LARGE_ANSWER);
    }

    #[test]
    fn host_collatz() {
        // 2 → 1 takes one step, 3 → 10 → 5 → 16 → 8 → 4 → 2 → 1 seven.
        assert_eq!(collatz(1), 0);
        assert_eq!(collatz(3), 8);
    }

    #[test]
    fn exception_kernels_give_their_answers_on_both_runtimes() {
        let n = 100;
        let want = [
            ("throw1", sum_below(100)),
            ("throw10", sum_below(100)),
            ("call_ref", n),
            ("call_indirect", n),
        ];
        assert_eq!(sum_below(4), 6);
        let engine = strata::Engine::default();
        let module = strata::Module::new(&engine, EXCEPTIONS_WAT).unwrap();
        let mut store = strata::Store::new(&engine, ());
        let instance = strata::Instance::new(&mut store, &module, &[]).unwrap();
        let wt_engine = wasmtime::Engine::default();
        let wt_module = wasmtime::Module::new(&wt_engine, EXCEPTIONS_WAT).unwrap();
        let mut wt_store = wasmtime::Store::new(&wt_engine, ());
        let wt_instance = wasmtime::Instance::new(&mut wt_store, &wt_module, &[]).unwrap();
        for (export, answer) in want {
            let f = instance
                .get_typed_func::<i32, i32>(&mut store, export)
                .unwrap();
            assert_eq!(f.call(&mut store, n).unwrap(), answer, "strata {export}");
            let f = wt_instance
                .get_typed_func::<i32, i32>(&mut wt_store, export)
                .unwrap();
            assert_eq!(
                f.call(&mut wt_store, n).unwrap(),
                answer,
                "wasmtime {export}"
            );
        }
    }

    #[test]
    fn host_fib() {
        assert_eq!(fib(0), 0);
        assert_eq!(fib(10), 55);
        assert_eq!(fib(30), 832_040);
    }
}
