//! Integration tests of the public `strata` API: one binary, one module per subject.

mod api;
mod async_calls;
mod bad_input;
mod cache;
mod cli;
mod exceptions;
mod function_references;
mod host_calls;
mod hostile;
mod interrupt;
mod limits;
mod linking;
mod memories;
mod pooling;
mod precompiled;
mod regressions;
mod relaxed_simd;
mod tail_calls;
mod traps;

use strata::{Engine, Instance, Module, Store};

/// Compiles `wat` and instantiates it with no imports in a fresh store.
fn instantiate(wat: &str) -> (Store<()>, Instance) {
    let engine = Engine::default();
    let module = Module::new(&engine, wat).expect("test module compiles");
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).expect("test module instantiates");
    (store, instance)
}

/// A module whose first function, `big` (returning 7), is over 64 KiB of machine code,
/// so that its precompiled text's first 64 KiB checksum chunk holds only that function;
/// `small` returns 1.
fn big_code_module() -> String {
    let body: String = (0..12_000)
        .map(|i| {
            format!(
                "(i32.store (i32.const {}) (i32.load (i32.const {})))\n",
                i * 4,
                i * 4 + 8
            )
        })
        .collect();
    format!(
        r#"(module
             (memory 1)
             (func (export "big") (result i32) {body} i32.const 7)
             (func (export "small") (result i32) i32.const 1))"#
    )
}

/// Instantiates `module` with no imports in a fresh store and calls its export `f`.
fn call_f(engine: &Engine, module: &Module) -> strata::Result<i32> {
    call(engine, module, "f")
}

/// Instantiates `module` with no imports in a fresh store and calls its export `name`,
/// which takes nothing and returns an `i32`.
fn call(engine: &Engine, module: &Module, name: &str) -> strata::Result<i32> {
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, module, &[])?;
    let f = instance.get_typed_func::<(), i32>(&mut store, name)?;
    f.call(&mut store, ())
}
