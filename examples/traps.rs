//! Traps and host errors, and how they reach the embedder.
//!
//! Calls exports that hit `unreachable`, divide by zero, store out of bounds and recurse
//! forever. Each call returns an `Err` whose `Trap` code says what happened and whose
//! `WasmBacktrace` says where (`{:?}` of the error prints both). A host function that
//! returns an error unwinds the wasm frames the same way, and its error comes back to
//! the caller of the export unchanged.
//!
//! Run with `cargo run --example traps`.

use anyhow::{Result, bail};
use std::fmt;
use strata::{Engine, Linker, Module, Store, Trap};

const WAT: &str = r#"
(module $demo
  (import "host" "check" (func $check (param i32)))
  (memory 1)

  (func $fail (unreachable))
  (func $unreachable (export "unreachable") (call $fail))

  (func $divide (export "divide") (param i32 i32) (result i32)
    (i32.div_s (local.get 0) (local.get 1)))

  ;; The memory is one page: 65536 is the first byte past its end.
  (func $store_out_of_bounds (export "store_out_of_bounds")
    (i32.store (i32.const 65536) (i32.const 1)))

  (func $recurse (export "recurse") (param i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))

  (func $validate (param i32) (call $check (local.get 0)))
  (func $run_validate (export "validate") (param i32) (call $validate (local.get 0))))
"#;

/// The error our host function reports.
#[derive(Debug)]
struct Rejected(i32);

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the host rejected {}", self.0)
    }
}

impl std::error::Error for Rejected {}

/// Checks that `result` is a trap with code `expected`, and returns the error.
fn expect_trap<R: fmt::Debug>(
    what: &str,
    result: strata::Result<R>,
    expected: Trap,
) -> Result<strata::Error> {
    let error = match result {
        Ok(value) => bail!("{what}: expected a trap, returned {value:?}"),
        Err(error) => error,
    };
    // `error.trap()` gives the same code.
    match error.downcast_ref::<Trap>() {
        Some(&trap) if trap == expected => println!("{what}: Trap::{trap:?}"),
        _ => bail!("{what}: expected {expected:?}, got {error:?}"),
    }
    Ok(error)
}

fn main() -> Result<()> {
    let engine = Engine::default();
    let module = Module::new(&engine, WAT)?;
    let mut linker = Linker::new(&engine);
    linker.func_wrap("host", "check", |value: i32| -> strata::Result<()> {
        if value < 0 {
            return Err(strata::Error::new(Rejected(value)));
        }
        Ok(())
    })?;
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module)?;

    let unreachable = instance.get_typed_func::<(), ()>(&mut store, "unreachable")?;
    let e = expect_trap(
        "unreachable",
        unreachable.call(&mut store, ()),
        Trap::UnreachableCodeReached,
    )?;
    // Debug shows the message and the backtrace, innermost frame first.
    println!("{e:?}");

    let divide = instance.get_typed_func::<(i32, i32), i32>(&mut store, "divide")?;
    println!("divide(7, 2) = {}", divide.call(&mut store, (7, 2))?);
    let e = expect_trap(
        "divide(1, 0)",
        divide.call(&mut store, (1, 0)),
        Trap::IntegerDivisionByZero,
    )?;
    println!("{e:?}");
    let e = expect_trap(
        "divide(i32::MIN, -1)",
        divide.call(&mut store, (i32::MIN, -1)),
        Trap::IntegerOverflow,
    )?;
    // Display shows just the message.
    println!("{e}\n");

    let oob = instance.get_typed_func::<(), ()>(&mut store, "store_out_of_bounds")?;
    let e = expect_trap(
        "store_out_of_bounds",
        oob.call(&mut store, ()),
        Trap::MemoryOutOfBounds,
    )?;
    println!("{e:?}");

    let recurse = instance.get_typed_func::<i32, i32>(&mut store, "recurse")?;
    let e = expect_trap("recurse", recurse.call(&mut store, 0), Trap::StackOverflow)?;
    // The backtrace keeps only the innermost frames of a deep stack.
    let frames = e.wasm_backtrace().map_or(&[][..], |bt| bt.frames());
    if let Some(innermost) = frames.first() {
        println!(
            "{e}: {} frames kept, the innermost in `{}` at offset {:#x}\n",
            frames.len(),
            innermost.func_name().unwrap_or("?"),
            innermost.module_offset().unwrap_or(0),
        );
    }

    // The store is still usable after any number of traps.
    println!("divide(-9, 3) = {}", divide.call(&mut store, (-9, 3))?);

    // A host error is not a trap: it comes back as the host made it, with the wasm
    // frames it unwound through.
    let validate = instance.get_typed_func::<i32, ()>(&mut store, "validate")?;
    validate.call(&mut store, 5)?;
    println!("validate(5): ok");
    match validate.call(&mut store, -3) {
        Err(e) if e.trap().is_none() => match e.downcast_ref::<Rejected>() {
            Some(Rejected(value)) => println!("validate(-3): host error for {value}\n{e:?}"),
            None => bail!("validate(-3): unexpected error {e:?}"),
        },
        other => bail!("validate(-3): expected a host error, got {other:?}"),
    }
    Ok(())
}
