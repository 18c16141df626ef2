//! `pooling`: instances come and go through the pooling allocator's slots, and none
//! sees a byte of an earlier tenant; the allocator's metrics count what is live.

use arbitrary::{Result, Unstructured};
use std::sync::OnceLock;
use strata::{
    Config, Engine, Instance, InstanceAllocationStrategy, Module, PoolingAllocationConfig, Ref,
    Store,
};

/// Slots of each kind in the pool.
const SLOTS: u32 = 4;
/// Most pages of a pooled memory.
const MAX_PAGES: u64 = 4;
/// Most elements of a pooled table.
const TABLE_ELEMENTS: usize = 64;
/// Operations per case.
const MAX_OPS: usize = 64;

/// Where the image module's data segment goes, and what it holds.
const IMAGE_AT: usize = 1000;
const IMAGE: &[u8] = b"the image of the first tenant";

/// The modules tenants are made of: one whose memory starts from an image and whose
/// table has an element segment, one that starts empty with more pages (and has tags,
/// part of its vmctx, and throws and catches an exception of one), and one with two
/// memories (the first 64-bit, with the image) and a 64-bit table.
const MODULES: [&str; 3] = [
    r#"(module
         (memory (export "memory") 1 4)
         (table (export "table") 10 funcref)
         (func $f (export "f"))
         (elem (i32.const 2) $f $f)
         (data (i32.const 1000) "the image of the first tenant"))"#,
    r#"(module
         (memory (export "memory") 2 4)
         (table (export "table") 5 20 funcref)
         (tag $e (param i32))
         (tag $other (param i32))
         (func (export "f"))
         (func (export "catch") (result i32)
           (block $other_caught (result i32)
             (block $h (result i32)
               (try_table (catch $other $other_caught) (catch $e $h)
                 (throw $e (i32.const 5)))
               (i32.const 0))
             (return))
           (drop)
           (i32.const -1)))"#,
    r#"(module
         (memory (export "memory") i64 1 4)
         (memory (export "memory2") 2 3)
         (table (export "table") i64 3 funcref)
         (func $f (export "f"))
         (elem (table 0) (i64.const 1) func $f)
         (data (memory 0) (i64.const 1000) "the image of the first tenant"))"#,
];

/// What each module's instances start with: per memory its export name, pages and
/// whether it holds the image; and which table elements are set.
type Start = (&'static [(&'static str, u64, bool)], &'static [u64]);
const START: [Start; 3] = [
    (&[("memory", 1, true)], &[2, 3]),
    (&[("memory", 2, false)], &[]),
    (&[("memory", 1, true), ("memory2", 2, false)], &[1]),
];

/// The memories each module defines.
fn memories_of(kind: usize) -> usize {
    START[kind].0.len()
}

/// An engine per combination of copy-on-write initialization and keeping memory
/// resident, with a pool of [`SLOTS`] instances and tables and twice as many memories,
/// and the modules compiled for it.
fn engines() -> &'static [(Engine, [Module; 3]); 4] {
    static ENGINES: OnceLock<[(Engine, [Module; 3]); 4]> = OnceLock::new();
    ENGINES.get_or_init(|| {
        std::array::from_fn(|i| {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_core_instances(SLOTS)
                .total_memories(2 * SLOTS)
                .max_memories_per_module(2)
                .total_tables(SLOTS)
                .max_memory_size((MAX_PAGES as usize) << 16)
                .table_elements(TABLE_ELEMENTS)
                .linear_memory_keep_resident(if i & 2 == 0 { 0 } else { 4096 })
                .table_keep_resident(if i & 2 == 0 { 0 } else { 4096 });
            let mut config = Config::new();
            config
                .memory_init_cow(i & 1 == 0)
                .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
            let engine = Engine::new(&config).expect("a pooling engine");
            let modules = MODULES.map(|wat| Module::new(&engine, wat).expect("compiles"));
            (engine, modules)
        })
    })
}

/// A live instance in a store of its own.
struct Tenant {
    store: Store<()>,
    instance: Instance,
    kind: usize,
}

/// Runs up to 64 operations (instantiate, drop, grow, scribble) chosen by the
/// input on one of the pooling engines.
///
/// # Panics
/// If a new instance sees anything but its module's initial state, an instantiation
/// fails with free slots or succeeds without one, growth misbehaves, or the pool's
/// metrics disagree with the live instances.
///
/// # Errors
/// Fails if the input runs out before the first operation.
pub fn pooling(u: &mut Unstructured<'_>) -> Result<()> {
    let (engine, modules) = u.choose(engines())?;
    let mut tenants: Vec<Tenant> = Vec::new();
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        match u.int_in_range(0..=3)? {
            0 => {
                let kind = u.choose_index(MODULES.len())?;
                let mut store = Store::new(engine, ());
                match Instance::new(&mut store, &modules[kind], &[]) {
                    Ok(instance) => {
                        assert!(tenants.len() < SLOTS as usize, "a fifth instance fit");
                        let mut tenant = Tenant {
                            store,
                            instance,
                            kind,
                        };
                        check_fresh(&mut tenant, kind);
                        tenants.push(tenant);
                    }
                    Err(e) => assert_eq!(
                        tenants.len(),
                        SLOTS as usize,
                        "instantiation failed with a free slot: {e:?}"
                    ),
                }
            }
            1 if !tenants.is_empty() => {
                let i = u.choose_index(tenants.len())?;
                tenants.swap_remove(i);
            }
            2 if !tenants.is_empty() => {
                let i = u.choose_index(tenants.len())?;
                let delta = u.int_in_range(0..=3)?;
                let t = &mut tenants[i];
                let (name, maximum) = match u.choose_index(memories_of(t.kind))? {
                    0 => ("memory", MAX_PAGES),
                    _ => ("memory2", 3),
                };
                let memory = t.instance.get_memory(&mut t.store, name).expect("exported");
                let before = memory.size(&t.store);
                match memory.grow(&mut t.store, delta) {
                    Ok(old) => {
                        assert_eq!(old, before);
                        assert!(before + delta <= maximum, "grew past the maximum");
                        let data = memory.data(&t.store);
                        let new = &data[(before as usize) << 16..];
                        assert!(new.iter().all(|&b| b == 0), "grown pages are not zero");
                    }
                    Err(_) => assert!(before + delta > maximum, "growth within the maximum failed"),
                }
            }
            3 if !tenants.is_empty() => {
                let i = u.choose_index(tenants.len())?;
                let t = &mut tenants[i];
                let name = START[t.kind].0[u.choose_index(memories_of(t.kind))?].0;
                let memory = t.instance.get_memory(&mut t.store, name).expect("exported");
                let len = memory.data_size(&t.store);
                let at = u.choose_index(len)?;
                let bytes: Vec<u8> = (0..u.int_in_range(1..=64)?)
                    .map(|_| u.arbitrary::<u8>().map(|b| b | 1))
                    .collect::<Result<_>>()?;
                let end = (at + bytes.len()).min(len);
                memory.data_mut(&mut t.store)[at..end].copy_from_slice(&bytes[..end - at]);
                let table = t
                    .instance
                    .get_table(&mut t.store, "table")
                    .expect("exported");
                let f = t.instance.get_func(&mut t.store, "f").expect("exported");
                let index = u.choose_index(table.size(&t.store) as usize)? as u64;
                table
                    .set(&mut t.store, index, Ref::Func(Some(f)))
                    .expect("in bounds");
            }
            _ => {}
        }
        let metrics = engine
            .pooling_allocator_metrics()
            .expect("a pooling engine");
        assert_eq!(metrics.core_instances, tenants.len(), "live instances");
        let memories: usize = tenants.iter().map(|t| memories_of(t.kind)).sum();
        assert_eq!(metrics.memories, memories, "live memories");
        assert_eq!(metrics.tables, tenants.len(), "live tables");
    }
    Ok(())
}

/// Checks that a new instance of module `kind` holds exactly its initial state.
fn check_fresh(t: &mut Tenant, kind: usize) {
    let (memories, set) = START[kind];
    for &(name, pages, image) in memories {
        let memory = t.instance.get_memory(&mut t.store, name).expect("exported");
        assert_eq!(memory.size(&t.store), pages, "initial pages of `{name}`");
        let data = memory.data(&t.store);
        for (at, &byte) in data.iter().enumerate() {
            let expected = match at.checked_sub(IMAGE_AT) {
                Some(i) if image && i < IMAGE.len() => IMAGE[i],
                _ => 0,
            };
            assert_eq!(
                byte, expected,
                "byte {at} of a new memory `{name}`: an earlier tenant's?"
            );
        }
    }
    if let Some(catch) = t.instance.get_func(&mut t.store, "catch") {
        let catch = catch.typed::<(), i32>(&t.store).expect("its type");
        let caught = catch.call(&mut t.store, ()).expect("caught in wasm");
        assert_eq!(caught, 5, "the exception's field in a new instance");
    }
    let table = t
        .instance
        .get_table(&mut t.store, "table")
        .expect("exported");
    for index in 0..table.size(&t.store) {
        let element = table.get(&mut t.store, index).expect("in bounds");
        let is_set = matches!(element, Ref::Func(Some(_)));
        assert_eq!(
            is_set,
            set.contains(&index),
            "element {index} of a new table"
        );
    }
}
