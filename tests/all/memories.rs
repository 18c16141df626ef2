//! The Wasm 3.0 memory features: 64-bit memories and tables (memory64), several memories
//! per module (multi-memory) and 1-byte pages (custom page sizes), on demand and pooled.

use strata::{
    Config, Engine, Instance, InstanceAllocationStrategy, Memory, MemoryType, Module,
    PoolingAllocationConfig, Ref, RefType, ResourceLimiter, Store, StoreLimitsBuilder, Table,
    TableType, Trap,
};

const GIB: u64 = 1 << 30;
const PAGE: u64 = 1 << 16;

/// A 64-bit memory of one page with loads and stores at any address, with no offset
/// and with the largest offset there is.
const MEMORY64: &str = r#"
(module
  (memory (export "mem") i64 1)
  (func (export "load") (param i64) (result i32) (i32.load (local.get 0)))
  (func (export "load_far") (param i64) (result i32)
    (i32.load offset=0xffff_ffff_ffff_fff0 (local.get 0)))
  (func (export "load_4g") (param i64) (result i32)
    (i32.load offset=0x1_0000_0000 (local.get 0)))
  (func (export "store64") (param i64 i64) (i64.store (local.get 0) (local.get 1)))
  (func (export "size") (result i64) (memory.size))
  (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0))))
"#;

fn pooled(configure: impl FnOnce(&mut PoolingAllocationConfig)) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(4)
        .total_memories(8)
        .total_tables(8);
    configure(&mut pool);
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

fn trap_of<T: std::fmt::Debug>(result: strata::Result<T>) -> Trap {
    match result {
        Ok(v) => panic!("expected a trap, got {v:?}"),
        Err(err) => err
            .trap()
            .unwrap_or_else(|| panic!("expected a trap, got: {err:?}")),
    }
}

#[test]
fn memory64_accesses_are_checked_at_every_edge_of_the_address_space() {
    for config in [Config::new(), pooled(|_| {})] {
        let engine = Engine::new(&config).unwrap();
        let module = Module::new(&engine, MEMORY64).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let load = instance
            .get_typed_func::<u64, i32>(&mut store, "load")
            .unwrap();
        let load_far = instance
            .get_typed_func::<u64, i32>(&mut store, "load_far")
            .unwrap();
        let load_4g = instance
            .get_typed_func::<u64, i32>(&mut store, "load_4g")
            .unwrap();
        let store64 = instance
            .get_typed_func::<(u64, u64), ()>(&mut store, "store64")
            .unwrap();

        store64.call(&mut store, (PAGE - 8, u64::MAX)).unwrap();
        assert_eq!(load.call(&mut store, PAGE - 4).unwrap(), -1);
        for address in [
            PAGE - 3,
            PAGE,
            // Truncated to 32 bits, these would be in bounds.
            1 << 32,
            (1 << 32) + 4,
            // These wrap around when the access size is added.
            u64::MAX,
            u64::MAX - 3,
            u64::MAX - 2,
            i64::MAX as u64,
        ] {
            assert_eq!(
                trap_of(load.call(&mut store, address)),
                Trap::MemoryOutOfBounds,
                "load at {address:#x}"
            );
        }
        // The offset and the address overflow together: 16 + (2^64 - 16) wraps to 0.
        for address in [0, 15, 16, 17, 0x10_0000] {
            assert_eq!(
                trap_of(load_far.call(&mut store, address)),
                Trap::MemoryOutOfBounds,
                "offset 2^64-16 at {address:#x}"
            );
        }
        assert_eq!(
            trap_of(load_4g.call(&mut store, 0)),
            Trap::MemoryOutOfBounds
        );
        // A store that would straddle the end writes nothing.
        assert_eq!(
            trap_of(store64.call(&mut store, (PAGE - 7, 0))),
            Trap::MemoryOutOfBounds
        );
        assert_eq!(load.call(&mut store, PAGE - 4).unwrap(), -1);
    }
}

/// Records the sizes a memory asked to grow to.
#[derive(Default)]
struct Recorder {
    desired: Vec<usize>,
    limit: usize,
}

impl ResourceLimiter for Recorder {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> strata::Result<bool> {
        self.desired.push(desired);
        Ok(desired <= self.limit)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> strata::Result<bool> {
        Ok(true)
    }
}

#[test]
fn memory64_grows_past_4_gib_as_limiters_see_it() {
    let five_gib = usize::try_from(5 * GIB).unwrap();
    for config in [
        Config::new(),
        pooled(|p| {
            p.max_memory_size(five_gib);
        }),
    ] {
        let engine = Engine::new(&config).unwrap();
        let module = Module::new(&engine, MEMORY64).unwrap();
        let mut store = Store::new(
            &engine,
            Recorder {
                desired: Vec::new(),
                limit: five_gib,
            },
        );
        store.limiter(|r| r);
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let grow = instance
            .get_typed_func::<u64, i64>(&mut store, "grow")
            .unwrap();
        let load = instance
            .get_typed_func::<u64, i32>(&mut store, "load")
            .unwrap();
        let store64 = instance
            .get_typed_func::<(u64, u64), ()>(&mut store, "store64")
            .unwrap();

        // From one page to 4 GiB + 2 pages.
        let pages = (4 * GIB) / PAGE + 1;
        assert_eq!(grow.call(&mut store, pages).unwrap(), 1);
        let end = 4 * GIB + 2 * PAGE;
        store64
            .call(&mut store, (end - 8, 0x0102_0304_0506_0708))
            .unwrap();
        assert_eq!(load.call(&mut store, end - 8).unwrap(), 0x0506_0708);
        assert_eq!(
            trap_of(load.call(&mut store, end - 3)),
            Trap::MemoryOutOfBounds
        );
        let memory = instance.get_memory(&mut store, "mem").unwrap();
        assert_eq!(memory.size(&store), pages + 1);
        assert_eq!(memory.data_size(&store) as u64, end);
        // Past the limiter's 5 GiB: -1, and the size stays.
        assert_eq!(grow.call(&mut store, GIB / PAGE).unwrap(), -1);
        assert_eq!(memory.size(&store), pages + 1);
        assert!(memory.grow(&mut store, GIB / PAGE).is_err());
        let desired = &store.data().desired;
        assert_eq!(desired[desired.len() - 3], end as usize, "{desired:?}");
        assert_eq!(desired[desired.len() - 1], (end + GIB) as usize);
    }
}

#[test]
fn pooled_memory64_stops_at_the_pools_max_memory_size() {
    let config = pooled(|p| {
        p.max_memory_size(usize::try_from(4 * GIB + PAGE).unwrap());
    });
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, MEMORY64).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let grow = instance
        .get_typed_func::<u64, i64>(&mut store, "grow")
        .unwrap();
    assert_eq!(grow.call(&mut store, (4 * GIB) / PAGE + 1).unwrap(), -1);
    assert_eq!(grow.call(&mut store, (4 * GIB) / PAGE).unwrap(), 1);
    assert_eq!(grow.call(&mut store, 1).unwrap(), -1);
}

#[test]
fn growth_past_store_limits_fails_for_64_bit_memories() {
    let engine = Engine::default();
    let module = Module::new(&engine, MEMORY64).unwrap();
    let limits = StoreLimitsBuilder::new()
        .memory_size(usize::try_from(4 * GIB + PAGE).unwrap())
        .build();
    let mut store = Store::new(&engine, limits);
    store.limiter(|l| l);
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let grow = instance
        .get_typed_func::<u64, i64>(&mut store, "grow")
        .unwrap();
    assert_eq!(grow.call(&mut store, 4 * GIB / PAGE + 1).unwrap(), -1);
    assert_eq!(grow.call(&mut store, 4 * GIB / PAGE).unwrap(), 1);
    // A delta whose byte size overflows 64 bits is refused, not wrapped.
    assert_eq!(grow.call(&mut store, u64::MAX).unwrap(), -1);
    assert_eq!(grow.call(&mut store, 1 << 48).unwrap(), -1);
}

#[test]
fn memory64_through_the_api() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let ty = MemoryType::new64(1, Some(1 << 20));
    assert!(ty.is_64());
    assert_eq!(ty.page_size(), PAGE);
    let memory = Memory::new(&mut store, ty).unwrap();
    assert_eq!(memory.grow(&mut store, 2).unwrap(), 1);
    assert_eq!(memory.size(&store), 3);
    assert!(memory.ty(&store).is_64());

    let module = Module::new(
        &engine,
        r#"(module
             (import "" "mem" (memory i64 1))
             (func (export "size") (result i64) (memory.size)))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[memory.into()]).unwrap();
    let size = instance
        .get_typed_func::<(), i64>(&mut store, "size")
        .unwrap();
    assert_eq!(size.call(&mut store, ()).unwrap(), 3);
    // A 32-bit memory does not satisfy a 64-bit import, nor the other way round.
    let memory32 = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
    let err = Instance::new(&mut store, &module, &[memory32.into()]).unwrap_err();
    assert!(
        err.to_string().contains("incompatible import type"),
        "{err}"
    );

    assert!(
        MemoryType::builder()
            .memory64(true)
            .min(1 << 48)
            .build()
            .is_ok()
    );
    for (builder, message) in [
        (
            MemoryType::builder().min(3).max(Some(2)).build(),
            "exceeds maximum",
        ),
        (
            MemoryType::builder().min(65537).build(),
            "32-bit address space",
        ),
        (
            MemoryType::builder()
                .memory64(true)
                .min((1 << 48) + 1)
                .build(),
            "64-bit address space",
        ),
        (
            MemoryType::builder().page_size_log2(12).build(),
            "page size",
        ),
    ] {
        let err = builder.unwrap_err().to_string();
        assert!(err.contains(message), "{err}");
    }
}

const TABLE64: &str = r#"
(module
  (type $ret (func (result i32)))
  (table $t (export "t") i64 2 funcref)
  (func $seven (result i32) (i32.const 7))
  (elem (table $t) (i64.const 1) func $seven)
  (func (export "call") (param i64) (result i32) (call_indirect $t (type $ret) (local.get 0)))
  (func (export "grow") (param i64) (result i64) (table.grow $t (ref.null func) (local.get 0)))
  (func (export "size") (result i64) (table.size $t))
  (func (export "fill") (param i64 i64) (table.fill $t (local.get 0) (ref.func $seven) (local.get 1))))
"#;

#[test]
fn table64_indexes_grows_and_traps_with_64_bit_operands() {
    for config in [Config::new(), pooled(|_| {})] {
        let engine = Engine::new(&config).unwrap();
        let module = Module::new(&engine, TABLE64).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let call = instance
            .get_typed_func::<u64, i32>(&mut store, "call")
            .unwrap();
        let grow = instance
            .get_typed_func::<u64, i64>(&mut store, "grow")
            .unwrap();
        let size = instance
            .get_typed_func::<(), i64>(&mut store, "size")
            .unwrap();
        let fill = instance
            .get_typed_func::<(u64, u64), ()>(&mut store, "fill")
            .unwrap();
        assert_eq!(call.call(&mut store, 1).unwrap(), 7);
        assert_eq!(trap_of(call.call(&mut store, 0)), Trap::IndirectCallToNull);
        // Truncated to 32 bits, index 2^32 + 1 would be element 1.
        for index in [2, 1 << 32, (1 << 32) + 1, u64::MAX] {
            assert_eq!(
                trap_of(call.call(&mut store, index)),
                Trap::TableOutOfBounds,
                "index {index:#x}"
            );
        }
        assert_eq!(grow.call(&mut store, 3).unwrap(), 2);
        assert_eq!(size.call(&mut store, ()).unwrap(), 5);
        assert_eq!(grow.call(&mut store, u64::MAX).unwrap(), -1);
        assert_eq!(grow.call(&mut store, 1 << 32).unwrap(), -1);
        fill.call(&mut store, (3, 2)).unwrap();
        assert_eq!(call.call(&mut store, 4).unwrap(), 7);
        assert_eq!(
            trap_of(fill.call(&mut store, (4, u64::MAX))),
            Trap::TableOutOfBounds
        );

        let table = instance.get_table(&mut store, "t").unwrap();
        assert!(table.ty(&store).is_64());
        assert_eq!(table.size(&store), 5);
    }
}

#[test]
fn table64_through_the_api() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let ty = TableType::new64(RefType::FUNCREF, 1, Some(10));
    assert!(ty.is_64());
    let table = Table::new(&mut store, ty, Ref::Func(None)).unwrap();
    assert_eq!(table.grow(&mut store, 4, Ref::Func(None)).unwrap(), 1);
    assert_eq!(table.size(&store), 5);
    let module = Module::new(
        &engine,
        r#"(module
             (import "" "t" (table i64 1 funcref))
             (func (export "size") (result i64) (table.size 0)))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[table.into()]).unwrap();
    let size = instance
        .get_typed_func::<(), i64>(&mut store, "size")
        .unwrap();
    assert_eq!(size.call(&mut store, ()).unwrap(), 5);
    let table32 = Table::new(
        &mut store,
        TableType::new(RefType::FUNCREF, 1, None),
        Ref::Func(None),
    )
    .unwrap();
    let err = Instance::new(&mut store, &module, &[table32.into()]).unwrap_err();
    assert!(
        err.to_string().contains("incompatible import type"),
        "{err}"
    );
}

/// Three memories: one imported, two defined with data of their own.
const THREE_MEMORIES: &str = r#"
(module
  (import "" "shared" (memory $a 1))
  (memory $b (export "b") 1)
  (memory $c (export "c") 2 3)
  (data (memory $b) (i32.const 16) "bee")
  (data (memory $c) (i32.const 65536) "sea")
  (func (export "copy_b_to_c") (param $dst i32) (param $src i32) (param $n i32)
    (memory.copy $c $b (local.get $dst) (local.get $src) (local.get $n)))
  (func (export "copy_c_to_a") (param $dst i32) (param $src i32) (param $n i32)
    (memory.copy $a $c (local.get $dst) (local.get $src) (local.get $n)))
  (func (export "sizes") (result i32 i32 i32)
    (memory.size $a) (memory.size $b) (memory.size $c))
  (func (export "grow_c") (param i32) (result i32) (memory.grow $c (local.get 0)))
  (func (export "load_c") (param i32) (result i32) (i32.load8_u $c (local.get 0)))
  (func (export "store_b") (param i32 i32) (i32.store8 $b (local.get 0) (local.get 1))))
"#;

#[test]
fn several_memories_keep_their_own_contents_and_sizes() {
    let pooled_config = pooled(|p| {
        p.max_memories_per_module(2);
    });
    for (cow, config) in [
        (true, Config::new()),
        (true, pooled_config.clone()),
        (false, pooled_config),
    ] {
        let mut config = config;
        config.memory_init_cow(cow);
        let engine = Engine::new(&config).unwrap();
        let module = Module::new(&engine, THREE_MEMORIES).unwrap();
        // Twice: the second instance must see its images afresh, not what the first
        // wrote (a pooled slot is reused).
        for round in 0..2 {
            let mut store = Store::new(&engine, ());
            let shared = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
            let instance = Instance::new(&mut store, &module, &[shared.into()]).unwrap();
            let b = instance.get_memory(&mut store, "b").unwrap();
            let c = instance.get_memory(&mut store, "c").unwrap();
            assert_eq!(&b.data(&store)[16..19], b"bee", "round {round}");
            assert_eq!(&c.data(&store)[65536..65539], b"sea", "round {round}");
            assert_eq!(c.data(&store)[16..19], [0; 3], "round {round}");

            let copy_b_to_c = instance
                .get_typed_func::<(i32, i32, i32), ()>(&mut store, "copy_b_to_c")
                .unwrap();
            let copy_c_to_a = instance
                .get_typed_func::<(i32, i32, i32), ()>(&mut store, "copy_c_to_a")
                .unwrap();
            let sizes = instance
                .get_typed_func::<(), (i32, i32, i32)>(&mut store, "sizes")
                .unwrap();
            let grow_c = instance
                .get_typed_func::<i32, i32>(&mut store, "grow_c")
                .unwrap();
            let load_c = instance
                .get_typed_func::<i32, i32>(&mut store, "load_c")
                .unwrap();
            let store_b = instance
                .get_typed_func::<(i32, i32), ()>(&mut store, "store_b")
                .unwrap();

            copy_b_to_c.call(&mut store, (100, 16, 3)).unwrap();
            assert_eq!(&c.data(&store)[100..103], b"bee");
            copy_c_to_a.call(&mut store, (7, 65536, 3)).unwrap();
            assert_eq!(&shared.data(&store)[7..10], b"sea");
            assert_eq!(
                trap_of(copy_b_to_c.call(&mut store, (2 * 65536 - 2, 16, 3))),
                Trap::MemoryOutOfBounds
            );
            store_b.call(&mut store, (16, i32::from(b'B'))).unwrap();
            assert_eq!(&b.data(&store)[16..19], b"Bee");

            assert_eq!(sizes.call(&mut store, ()).unwrap(), (1, 1, 2));
            assert_eq!(grow_c.call(&mut store, 1).unwrap(), 2);
            assert_eq!(grow_c.call(&mut store, 1).unwrap(), -1, "maximum 3");
            assert_eq!(sizes.call(&mut store, ()).unwrap(), (1, 1, 3));
            assert_eq!(
                trap_of(load_c.call(&mut store, 3 * 65536)),
                Trap::MemoryOutOfBounds
            );
            assert_eq!(load_c.call(&mut store, 3 * 65536 - 1).unwrap(), 0);
        }
    }
}

#[test]
fn a_pooled_module_with_more_memories_or_tables_than_allowed_fails_clearly() {
    let engine = Engine::new(&pooled(|_| {})).unwrap();
    let module = Module::new(&engine, "(module (memory 1) (memory 1))").unwrap();
    let mut store = Store::new(&engine, ());
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("defines 2 memories")
            && message.contains("limit of 1")
            && message.contains("max_memories_per_module"),
        "{message}"
    );
    let module = Module::new(&engine, "(module (table 1 funcref) (table 1 funcref))").unwrap();
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert!(
        format!("{err:#}").contains("max_tables_per_module"),
        "{err:#}"
    );
    // Imports do not count, and nothing leaked: the pool still serves instances.
    let module = Module::new(&engine, r#"(module (import "" "m" (memory 1)) (memory 1))"#).unwrap();
    for _ in 0..8 {
        let mut store = Store::new(&engine, ());
        let imported = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
        Instance::new(&mut store, &module, &[imported.into()]).unwrap();
    }
}

/// A memory of 1-byte pages.
const SMALL_PAGES: &str = r#"
(module
  (memory (export "mem") 3 100 (pagesize 1))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "store8") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "size") (result i32) (memory.size))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
"#;

#[test]
fn one_byte_pages_are_checked_and_grow_byte_by_byte() {
    let mut on_demand = Config::new();
    on_demand.wasm_custom_page_sizes(true);
    let mut pool = pooled(|_| {});
    pool.wasm_custom_page_sizes(true);
    for config in [on_demand, pool] {
        let engine = Engine::new(&config).unwrap();
        let module = Module::new(&engine, SMALL_PAGES).unwrap();
        for _ in 0..2 {
            let mut store = Store::new(&engine, ());
            let instance = Instance::new(&mut store, &module, &[]).unwrap();
            let load = instance
                .get_typed_func::<i32, i32>(&mut store, "load")
                .unwrap();
            let store8 = instance
                .get_typed_func::<(i32, i32), ()>(&mut store, "store8")
                .unwrap();
            let size = instance
                .get_typed_func::<(), i32>(&mut store, "size")
                .unwrap();
            let grow = instance
                .get_typed_func::<i32, i32>(&mut store, "grow")
                .unwrap();
            assert_eq!(size.call(&mut store, ()).unwrap(), 3);
            // Four bytes do not fit in three.
            assert_eq!(trap_of(load.call(&mut store, 0)), Trap::MemoryOutOfBounds);
            store8.call(&mut store, (2, 0x5a)).unwrap();
            assert_eq!(
                trap_of(store8.call(&mut store, (3, 1))),
                Trap::MemoryOutOfBounds
            );
            assert_eq!(grow.call(&mut store, 1).unwrap(), 3);
            assert_eq!(load.call(&mut store, 0).unwrap(), 0x5a_0000);
            assert_eq!(trap_of(load.call(&mut store, 1)), Trap::MemoryOutOfBounds);
            assert_eq!(grow.call(&mut store, 97).unwrap(), -1, "maximum 100");
            assert_eq!(grow.call(&mut store, 96).unwrap(), 4);
            assert_eq!(load.call(&mut store, 96).unwrap(), 0);
            assert_eq!(trap_of(load.call(&mut store, 97)), Trap::MemoryOutOfBounds);
            let memory = instance.get_memory(&mut store, "mem").unwrap();
            assert_eq!(memory.size(&store), 100);
            assert_eq!(memory.data_size(&store), 100);
            assert_eq!(memory.ty(&store).page_size(), 1);
        }
    }
}

#[test]
fn one_byte_pages_through_the_api() {
    let mut config = Config::new();
    config.wasm_custom_page_sizes(true);
    let engine = Engine::new(&config).unwrap();
    let mut store = Store::new(&engine, ());
    let ty = MemoryType::builder()
        .page_size_log2(0)
        .min(10)
        .max(Some(20))
        .build()
        .unwrap();
    let memory = Memory::new(&mut store, ty).unwrap();
    assert_eq!(memory.grow(&mut store, 5).unwrap(), 10);
    assert_eq!(memory.data_size(&store), 15);
    assert!(memory.grow(&mut store, 6).is_err());
    let module = Module::new(
        &engine,
        r#"(module (import "" "m" (memory 1 (pagesize 1)))
                   (func (export "size") (result i32) (memory.size)))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[memory.into()]).unwrap();
    let size = instance
        .get_typed_func::<(), i32>(&mut store, "size")
        .unwrap();
    assert_eq!(size.call(&mut store, ()).unwrap(), 15);
}

#[test]
fn modules_using_a_disabled_memory_feature_fail_validation_naming_it() {
    type Case = (&'static str, fn(&mut Config), &'static str);
    let cases: [Case; 4] = [
        (
            "(module (memory i64 1))",
            |c| {
                c.wasm_memory64(false);
            },
            "memory64",
        ),
        (
            "(module (memory 1) (memory 1))",
            |c| {
                c.wasm_multi_memory(false);
            },
            "multiple memories",
        ),
        (
            "(module (memory 1 (pagesize 1)))",
            |_| {},
            "custom page sizes",
        ),
        (
            "(module (global i32 (i32.add (i32.const 1) (i32.const 2))))",
            |c| {
                c.wasm_extended_const(false);
            },
            "constant expression required",
        ),
    ];
    for (wat, configure, message) in cases {
        let mut config = Config::new();
        configure(&mut config);
        let engine = Engine::new(&config).unwrap();
        let err = Module::new(&engine, wat).unwrap_err();
        assert!(format!("{err:#}").contains(message), "{wat}: {err:#}");
        // With the defaults (and custom page sizes on) each compiles.
        let mut config = Config::new();
        config.wasm_custom_page_sizes(true);
        Module::new(&Engine::new(&config).unwrap(), wat).unwrap();
    }
}

#[test]
fn a_32_bit_memory_of_1_byte_pages_stops_at_2_to_the_32_minus_1_pages() {
    let mut config = Config::new();
    config.wasm_custom_page_sizes(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module
             (memory (export "mem") 0 (pagesize 1))
             (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
             (func (export "size") (result i32) (memory.size)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let grow = instance
        .get_typed_func::<u32, i32>(&mut store, "grow")
        .unwrap();
    let size = instance
        .get_typed_func::<(), u32>(&mut store, "size")
        .unwrap();
    // 2^32 pages would be 4 GiB, whose count `memory.size` cannot return.
    assert_eq!(grow.call(&mut store, u32::MAX).unwrap(), 0);
    assert_eq!(size.call(&mut store, ()).unwrap(), u32::MAX);
    assert_eq!(grow.call(&mut store, 1).unwrap(), -1);
    assert_eq!(size.call(&mut store, ()).unwrap(), u32::MAX);
    assert!(
        MemoryType::builder()
            .page_size_log2(0)
            .min(1 << 32)
            .build()
            .is_err()
    );
}
