//! Instance allocators: reuse of pooled slots and of on-demand reservations without
//! leaks between occupants, the pool-full error, the hybrid overflow mode, and the
//! pooling allocator's metrics.

use strata::{
    Config, Engine, InstanceAllocationStrategy, Module, PoolConcurrencyLimitError,
    PoolingAllocationConfig, Store,
};

/// An engine whose pools hold `instances` instances with one memory and one table each.
fn engine(instances: u32, tweak: impl FnOnce(&mut PoolingAllocationConfig)) -> Engine {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(instances)
        .total_memories(instances)
        .total_tables(instances)
        .max_memory_size(1 << 20)
        .table_elements(100);
    tweak(&mut pool);
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).unwrap()
}

const WITH_DATA: &str = r#"
(module
  (memory (export "mem") 1 8)
  (data (i32.const 4096) "initial")
  (table (export "t") 4 funcref)
  (func $f (result i32) i32.const 1)
  (elem (i32.const 1) $f)
  (func (export "scribble") (param i32)
    (i32.store (local.get 0) (i32.const 0x5ec2e7))
    (i32.store (i32.const 4096) (i32.const 0x5ec2e7))
    (table.set (i32.const 3) (ref.func $f))
    (drop (memory.grow (i32.const 2)))))
"#;

const WITHOUT_DATA: &str = r#"
(module
  (memory (export "mem") 1)
  (table (export "t") 4 funcref)
  (func (export "scribble") (param i32)
    (i32.store (local.get 0) (i32.const 0x5ec2e7))))
"#;

/// Instantiates `module` in a fresh store, runs `scribble(at)` and returns the store.
fn scribble(engine: &Engine, module: &Module, at: i32) -> Store<()> {
    let mut store = Store::new(engine, ());
    let instance = strata::Instance::new(&mut store, module, &[]).unwrap();
    let f = instance
        .get_typed_func::<i32, ()>(&mut store, "scribble")
        .unwrap();
    f.call(&mut store, at).unwrap();
    store
}

/// The memory and table of a fresh instance of `module`.
fn fresh_state(engine: &Engine, module: &Module) -> (Vec<u8>, Vec<bool>) {
    let mut store = Store::new(engine, ());
    let instance = strata::Instance::new(&mut store, module, &[]).unwrap();
    let mem = instance.get_memory(&mut store, "mem").unwrap();
    let table = instance.get_table(&mut store, "t").unwrap();
    let bytes = mem.data(&store).to_vec();
    let entries = (0..table.size(&store))
        .map(|i| match table.get(&mut store, i) {
            Some(strata::Ref::Func(f)) => f.is_some(),
            other => panic!("unexpected element {other:?}"),
        })
        .collect();
    (bytes, entries)
}

/// Checks that a fresh instance of [`WITH_DATA`] holds nothing but its initial state.
fn assert_fresh_with_data(engine: &Engine, module: &Module) {
    let (bytes, entries) = fresh_state(engine, module);
    assert_eq!(bytes.len(), 65536, "the memory is back at its minimum size");
    assert_eq!(&bytes[4096..4103], b"initial");
    assert!(bytes[..4096].iter().all(|&b| b == 0));
    assert!(bytes[4103..].iter().all(|&b| b == 0));
    assert_eq!(entries, [false, true, false, false]);
}

#[test]
fn a_reused_slot_shows_nothing_of_its_previous_occupant() {
    let engine = engine(1, |_| {});
    let with = Module::new(&engine, WITH_DATA).unwrap();
    let without = Module::new(&engine, WITHOUT_DATA).unwrap();
    for _ in 0..3 {
        drop(scribble(&engine, &with, 100));
        assert_fresh_with_data(&engine, &with);

        // Another module in the same (only) slot sees zeroes, not the image.
        drop(scribble(&engine, &without, 200));
        let (bytes, entries) = fresh_state(&engine, &without);
        assert!(bytes.iter().all(|&b| b == 0));
        assert_eq!(entries, [false; 4]);
    }
    let metrics = engine.pooling_allocator_metrics().unwrap();
    assert_eq!(metrics.core_instances, 0);
    assert_eq!(metrics.memories, 0);
    assert_eq!(metrics.unused_warm_memories, 1);
}

#[test]
fn a_reused_on_demand_reservation_shows_nothing_of_its_previous_occupant() {
    let engine = Engine::default();
    let with = Module::new(&engine, WITH_DATA).unwrap();
    let base_of = |module: &Module| {
        let mut store = Store::new(&engine, ());
        let instance = strata::Instance::new(&mut store, module, &[]).unwrap();
        let mem = instance.get_memory(&mut store, "mem").unwrap();
        mem.data_ptr(&store) as usize
    };
    let first = base_of(&with);
    for _ in 0..3 {
        drop(scribble(&engine, &with, 100));
        assert_eq!(
            base_of(&with),
            first,
            "the reservation is reused on this thread"
        );
        assert_fresh_with_data(&engine, &with);
    }
}

#[test]
fn resident_bytes_are_zeroed_too() {
    let engine = engine(1, |pool| {
        pool.linear_memory_keep_resident(65536)
            .table_keep_resident(4096);
    });
    let module = Module::new(&engine, WITHOUT_DATA).unwrap();
    drop(scribble(&engine, &module, 8));
    let (bytes, _) = fresh_state(&engine, &module);
    assert!(bytes.iter().all(|&b| b == 0));
}

#[test]
fn a_full_pool_is_a_distinct_error_and_leaks_nothing() {
    let engine = engine(1, |_| {});
    let module = Module::new(&engine, WITH_DATA).unwrap();
    let mut first = Store::new(&engine, ());
    strata::Instance::new(&mut first, &module, &[]).unwrap();
    let mut second = Store::new(&engine, ());
    let err = strata::Instance::new(&mut second, &module, &[]).unwrap_err();
    let limit = err
        .downcast_ref::<PoolConcurrencyLimitError>()
        .unwrap_or_else(|| panic!("expected a pool limit error, got {err:?}"));
    assert_eq!(limit.kind(), "core instance");
    assert_eq!(limit.limit(), 1);
    assert!(err.to_string().contains("limit of 1"), "{err}");
    drop(first);
    let metrics = engine.pooling_allocator_metrics().unwrap();
    assert_eq!(
        (metrics.core_instances, metrics.memories, metrics.tables),
        (0, 0, 0)
    );
    strata::Instance::new(&mut second, &module, &[]).unwrap();
}

#[test]
fn hybrid_mode_overflows_to_on_demand_allocation() {
    let engine = engine(1, |pool| {
        pool.overflow_to_on_demand(true);
    });
    let module = Module::new(&engine, WITH_DATA).unwrap();
    let stores: Vec<Store<()>> = (0..3).map(|i| scribble(&engine, &module, i * 4)).collect();
    let metrics = engine.pooling_allocator_metrics().unwrap();
    assert_eq!(metrics.core_instances, 3);
    assert_eq!(metrics.overflow_instances, 2);
    assert_eq!(metrics.memories, 1);
    assert_eq!(
        metrics.overflow_allocations, 4,
        "two memories and two tables"
    );
    drop(stores);
    let metrics = engine.pooling_allocator_metrics().unwrap();
    assert_eq!(metrics.core_instances, 0);
    assert_eq!(metrics.overflow_allocations, 0);
    assert_eq!(metrics.total_overflow_allocations, 4);
}

#[test]
fn pooled_memories_grow_up_to_the_slot_size() {
    let engine = engine(2, |_| {});
    let module = Module::new(
        &engine,
        r#"(module (memory (export "mem") 1)
                   (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
                   (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = strata::Instance::new(&mut store, &module, &[]).unwrap();
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    let load = instance
        .get_typed_func::<i32, i32>(&mut store, "load")
        .unwrap();
    assert_eq!(grow.call(&mut store, 15).unwrap(), 1);
    assert_eq!(load.call(&mut store, 16 * 65536 - 4).unwrap(), 0);
    assert_eq!(
        grow.call(&mut store, 1).unwrap(),
        -1,
        "the slot holds 1 MiB"
    );
    let err = load.call(&mut store, 16 * 65536).unwrap_err();
    assert_eq!(err.trap(), Some(strata::Trap::MemoryOutOfBounds));
}

#[test]
fn modules_too_big_for_a_slot_are_refused() {
    let engine = engine(1, |_| {});
    let module = Module::new(&engine, r#"(module (memory 17))"#).unwrap();
    let mut store = Store::new(&engine, ());
    let err = strata::Instance::new(&mut store, &module, &[]).unwrap_err();
    assert!(err.to_string().contains("pool"), "{err}");
}
