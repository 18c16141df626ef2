//! `instantiate`: valid modules compile, and instantiate with dummy imports unless they
//! trap.

use crate::generators::{self, limits};
use crate::oracles::dummy;
use arbitrary::{Result, Unstructured};
use std::sync::OnceLock;
use strata::{Engine, Instance, Module, Store, StoreLimits, StoreLimitsBuilder, Val};

/// An engine that consumes fuel, shared by every case.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = generators::strata_config();
        config.consume_fuel(true);
        Engine::new(&config).expect("a fuel-consuming engine")
    })
}

/// A store with the fuzzing limits and [`limits::FUEL`] fuel.
pub(crate) fn store(engine: &Engine) -> Store<StoreLimits> {
    let limits = StoreLimitsBuilder::new()
        .memory_size(limits::MEMORY_BYTES)
        .table_elements(limits::TABLE_ELEMENTS as usize)
        .build();
    let mut store = Store::new(engine, limits);
    store.limiter(|limits| limits);
    store
}

/// Generates a module with a swarm configuration, compiles it, instantiates it with
/// dummy imports, and calls each exported function once with zero arguments, each with
/// [`limits::FUEL`] fuel.
///
/// # Panics
/// If the module fails to compile (wasm-smith made it valid, within strata's
/// features), or instantiating or calling fails by anything but a trap or an
/// uncaught exception.
///
/// # Errors
/// Fails if the input runs out before a module is generated.
pub fn instantiate(u: &mut Unstructured<'_>) -> Result<()> {
    let config = generators::swarm(u)?;
    let wasm = wasm_smith::Module::new(config, u)?.to_bytes();
    let engine = engine();
    let module = Module::new(engine, &wasm)
        .unwrap_or_else(|e| panic!("a valid module failed to compile: {e:?}"));
    let mut store = store(engine);
    let imports = dummy::imports(&mut store, &module)
        .unwrap_or_else(|e| panic!("dummy imports within the limits failed: {e:?}"));
    store.set_fuel(limits::FUEL).expect("fuel is on");
    let instance = match Instance::new(&mut store, &module, &imports) {
        Ok(instance) => instance,
        Err(e) if e.trap().is_some() || e.is::<strata::ThrownException>() => return Ok(()),
        Err(e) => panic!("instantiation failed without a trap: {e:?}"),
    };
    let exports: Vec<String> = module.exports().map(|e| e.name().to_string()).collect();
    for name in exports {
        let Some(func) = instance.get_func(&mut store, &name) else {
            continue;
        };
        let ty = func.ty(&store);
        let params: Vec<Val> = ty.params().map(|t| dummy::zero(&t)).collect();
        let mut results: Vec<Val> = ty.results().map(|t| dummy::zero(&t)).collect();
        store.set_fuel(limits::FUEL).expect("fuel is on");
        if let Err(e) = func.call(&mut store, &params, &mut results) {
            // An exception that nothing caught is an outcome of wasm too.
            let uncaught = e.is::<strata::ThrownException>();
            assert!(
                e.trap().is_some() || uncaught,
                "`{name}` failed without a trap or an uncaught exception: {e:?}"
            );
        }
    }
    Ok(())
}
