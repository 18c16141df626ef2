//! Host functions: Rust code that a WebAssembly module imports and calls.
//!
//! Defines one host function with `Func::wrap`, which counts its calls in the store's
//! data through its `Caller`, and two by name with `Linker::func_wrap`, one of which
//! reads the calling instance's memory. They are linked into a module written in the
//! text format, whose exports are then called through statically typed handles.
//!
//! Run with `cargo run --example host_function`.

use anyhow::Result;
use strata::{Caller, Engine, Error, Func, Linker, Module, Store};

/// The embedder's data: owned by the store, visible to host functions.
struct Counter {
    calls: u32,
}

const WAT: &str = r#"
(module
  (import "host" "tick" (func $tick (param i32) (result i32)))
  (import "math" "square" (func $square (param i64) (result i64)))
  (import "host" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hello from wasm")

  ;; Calls `tick` with n, n-1, ..., 1 and returns what the last call returned.
  (func (export "countdown") (param $n i32) (result i32)
    (local $last i32)
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $last (call $tick (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (local.get $last))

  (func (export "sum_of_squares") (param i64 i64) (result i64)
    (i64.add (call $square (local.get 0)) (call $square (local.get 1))))

  (func (export "greet")
    (call $log (i32.const 0) (i32.const 15))))
"#;

fn main() -> Result<()> {
    let engine = Engine::default();
    let module = Module::new(&engine, WAT)?;
    let mut store = Store::new(&engine, Counter { calls: 0 });

    // A function that lives in this store. Taking a `Caller` first gives it the store's
    // data; its parameter and result types become the wasm type `(i32) -> i32`.
    let tick = Func::wrap(&mut store, |mut caller: Caller<'_, Counter>, n: i32| {
        let counter = caller.data_mut();
        counter.calls += 1;
        println!("  host: tick({n}), call #{}", counter.calls);
        counter.calls
    });

    let mut linker = Linker::new(&engine);
    linker.define(&store, "host", "tick", tick)?;
    // Defined by name only: created in the store when a module that imports it is
    // instantiated.
    linker.func_wrap("math", "square", |x: i64| x * x)?;
    // Through its `Caller`, a host function can reach the exports of the instance that
    // called it, such as its memory. Returning `Err` makes the wasm call fail.
    linker.func_wrap(
        "host",
        "log",
        |mut caller: Caller<'_, Counter>, ptr: u32, len: u32| -> strata::Result<()> {
            let memory = caller
                .get_export("memory")
                .and_then(|e| e.into_memory())
                .ok_or_else(|| Error::msg("the caller exports no memory"))?;
            let (start, end) = (ptr as usize, ptr as usize + len as usize);
            let bytes = memory
                .data(&caller)
                .get(start..end)
                .ok_or_else(|| Error::msg("string out of bounds"))?;
            println!("  host: log({:?})", String::from_utf8_lossy(bytes));
            Ok(())
        },
    )?;

    let instance = linker.instantiate(&mut store, &module)?;

    let countdown = instance.get_typed_func::<i32, i32>(&mut store, "countdown")?;
    let last = countdown.call(&mut store, 3)?;
    println!("countdown(3) = {last}");
    println!("the store counted {} calls", store.data().calls);

    // `get_func` + `typed` does the same in two steps; the types are checked once, here.
    let sum = instance
        .get_func(&mut store, "sum_of_squares")
        .expect("the module exports `sum_of_squares`")
        .typed::<(i64, i64), i64>(&store)?;
    println!("sum_of_squares(3, 4) = {}", sum.call(&mut store, (3, 4))?);

    instance
        .get_typed_func::<(), ()>(&mut store, "greet")?
        .call(&mut store, ())?;

    // A wrong signature is an error, not undefined behaviour.
    let wrong = instance
        .get_func(&mut store, "countdown")
        .expect("exported")
        .typed::<i64, i64>(&store);
    if let Err(e) = wrong {
        println!("typed::<i64, i64>() on countdown: {e}");
    }
    Ok(())
}
