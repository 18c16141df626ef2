//! Integration tests of the public `strata` API: one binary, one module per subject.

mod api;
mod async_calls;
mod bad_input;
mod cli;
mod hostile;
mod interrupt;
mod limits;
mod linking;
mod pooling;
mod regressions;
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
