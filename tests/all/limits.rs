//! Resource limiters: memory and table growth, and instance counts.

use strata::{Engine, Instance, Module, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder};

const GROWER: &str = r#"
(module
  (memory (export "mem") 1)
  (table (export "t") 1 funcref)
  (func (export "grow_memory") (param i32) (result i32)
    (memory.grow (local.get 0)))
  (func (export "grow_table") (param i32) (result i32)
    (table.grow (ref.null func) (local.get 0))))
"#;

fn store_with(limits: StoreLimits) -> (Store<StoreLimits>, Module) {
    let engine = Engine::default();
    let module = Module::new(&engine, GROWER).unwrap();
    let mut store = Store::new(&engine, limits);
    store.limiter(|limits| limits);
    (store, module)
}

/// An instance of [`GROWER`] and its `grow_memory` export.
fn instantiate<T>(
    store: &mut Store<T>,
    module: &Module,
) -> (Instance, strata::TypedFunc<i32, i32>) {
    let instance = Instance::new(&mut *store, module, &[]).unwrap();
    let grow = instance
        .get_typed_func::<i32, i32>(&mut *store, "grow_memory")
        .unwrap();
    (instance, grow)
}

#[test]
fn growth_past_a_limit_fails_with_minus_one() {
    let limits = StoreLimitsBuilder::new()
        .memory_size(3 * 65536)
        .table_elements(5)
        .build();
    let (mut store, module) = store_with(limits);
    let (instance, grow_memory) = instantiate(&mut store, &module);
    let grow_table = instance
        .get_typed_func::<i32, i32>(&mut store, "grow_table")
        .unwrap();
    assert_eq!(
        grow_memory.call(&mut store, 2).unwrap(),
        1,
        "to 3 pages: allowed"
    );
    assert_eq!(
        grow_memory.call(&mut store, 1).unwrap(),
        -1,
        "to 4 pages: refused"
    );
    assert_eq!(grow_table.call(&mut store, 4).unwrap(), 1);
    assert_eq!(grow_table.call(&mut store, 1).unwrap(), -1);

    // The host is held to the same limits.
    let mem = instance.get_memory(&mut store, "mem").unwrap();
    assert_eq!(mem.size(&store), 3);
    let err = mem.grow(&mut store, 1).unwrap_err();
    assert!(err.to_string().contains("limiter refused"), "{err}");
    let table = instance.get_table(&mut store, "t").unwrap();
    assert!(table.grow(&mut store, 1, strata::Ref::Func(None)).is_err());
    assert_eq!(table.size(&store), 5);
}

#[test]
fn growth_past_a_limit_can_trap_instead() {
    let limits = StoreLimitsBuilder::new()
        .memory_size(2 * 65536)
        .trap_on_grow_failure(true)
        .build();
    let (mut store, module) = store_with(limits);
    let (_, grow_memory) = instantiate(&mut store, &module);
    let err = grow_memory.call(&mut store, 5).unwrap_err();
    assert!(
        err.to_string().contains("exceeds the store's limit"),
        "{err}"
    );
    assert!(err.downcast_ref::<strata::WasmBacktrace>().is_some());
    // Within the limit it still grows.
    assert_eq!(grow_memory.call(&mut store, 1).unwrap(), 1);
}

#[test]
fn instantiation_respects_counts_and_initial_sizes() {
    let limits = StoreLimitsBuilder::new().instances(2).build();
    let (mut store, module) = store_with(limits);
    Instance::new(&mut store, &module, &[]).unwrap();
    Instance::new(&mut store, &module, &[]).unwrap();
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert!(err.to_string().contains("instance count"), "{err}");

    let limits = StoreLimitsBuilder::new().memory_size(1000).build();
    let (mut store, module) = store_with(limits);
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert!(err.to_string().contains("memory minimum size"), "{err}");

    let limits = StoreLimitsBuilder::new().memories(0).build();
    let (mut store, module) = store_with(limits);
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert!(err.to_string().contains("memory count"), "{err}");
}

/// A limiter that records what it is asked and fails on a large request.
#[derive(Default)]
struct Recorder {
    asked: Vec<(usize, usize, Option<usize>)>,
}

impl ResourceLimiter for Recorder {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        max: Option<usize>,
    ) -> strata::Result<bool> {
        self.asked.push((current, desired, max));
        if desired > 100 * 65536 {
            return Err(strata::Error::msg("that is too much memory"));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _: usize, _: usize, _: Option<usize>) -> strata::Result<bool> {
        Ok(true)
    }
}

#[test]
fn a_custom_limiter_sees_every_request_and_its_errors_stop_wasm() {
    let engine = Engine::default();
    let module = Module::new(&engine, GROWER).unwrap();
    let mut store = Store::new(&engine, Recorder::default());
    store.limiter(|r| r);
    let (_, grow_memory) = instantiate(&mut store, &module);
    assert_eq!(grow_memory.call(&mut store, 1).unwrap(), 1);
    let err = grow_memory.call(&mut store, 1000).unwrap_err();
    assert_eq!(err.to_string(), "that is too much memory");
    assert_eq!(
        store.data().asked,
        [
            (0, 65536, None),
            (65536, 2 * 65536, None),
            (2 * 65536, 1002 * 65536, None)
        ]
    );
}
