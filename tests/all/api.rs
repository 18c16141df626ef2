//! Round trips through the public API: values in and out of functions, globals, memories
//! and tables, host functions over `Val`s, and module introspection.

use crate::instantiate;
use strata::{
    Caller, Engine, ExternRef, ExternType, Func, FuncType, Instance, Linker, Module, Ref, Store,
    Val, ValType,
};

#[test]
fn typed_calls_round_trip_every_number_type() {
    let (mut store, instance) = instantiate(
        r#"(module
             (func (export "swap") (param i32 i64 f32 f64) (result f64 f32 i64 i32)
               local.get 3 local.get 2 local.get 1 local.get 0))"#,
    );
    let swap = instance
        .get_typed_func::<(i32, i64, f32, f64), (f64, f32, i64, i32)>(&mut store, "swap")
        .unwrap();
    let (a, b, c, d) = swap
        .call(&mut store, (-1, i64::MIN, 1.5, f64::MAX))
        .unwrap();
    assert_eq!((a, b, c, d), (f64::MAX, 1.5, i64::MIN, -1));
    let nan = f32::from_bits(0x7fa0_0001);
    let (_, b, _, _) = swap.call(&mut store, (0, 0, nan, 0.0)).unwrap();
    assert_eq!(
        b.to_bits(),
        0x7fa0_0001,
        "NaN payloads pass through untouched"
    );
}

#[test]
fn untyped_calls_report_the_function_type() {
    let (mut store, instance) = instantiate(
        r#"(module (func (export "add") (param i64 i64) (result i64)
                     (i64.add (local.get 0) (local.get 1))))"#,
    );
    let add = instance.get_func(&mut store, "add").unwrap();
    let ty = add.ty(&store);
    assert_eq!(
        ty.params().collect::<Vec<_>>(),
        [ValType::I64, ValType::I64]
    );
    assert_eq!(ty.results().collect::<Vec<_>>(), [ValType::I64]);
    let mut out = [Val::I64(0)];
    add.call(&mut store, &[Val::I64(40), Val::I64(2)], &mut out)
        .unwrap();
    assert_eq!(out[0].i64(), Some(42));
}

#[test]
fn host_functions_see_the_store_data_through_caller() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, 0u32);
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap("host", "bump", |mut caller: Caller<'_, u32>, by: u32| {
            *caller.data_mut() += by;
            *caller.data()
        })
        .unwrap();
    let module = Module::new(
        &engine,
        r#"(module (import "host" "bump" (func $bump (param i32) (result i32)))
                   (func (export "twice") (param i32) (result i32)
                     (drop (call $bump (local.get 0)))
                     (call $bump (local.get 0))))"#,
    )
    .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let twice = instance
        .get_typed_func::<u32, u32>(&mut store, "twice")
        .unwrap();
    assert_eq!(twice.call(&mut store, 5).unwrap(), 10);
    assert_eq!(twice.call(&mut store, 1).unwrap(), 12);
    assert_eq!(*store.data(), 12);
}

#[test]
fn host_functions_reach_exports_of_the_calling_instance() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap("host", "peek", |mut caller: Caller<'_, ()>, at: u32| {
            let memory = caller.get_export("memory").unwrap().into_memory().unwrap();
            i32::from(memory.data(&caller)[at as usize])
        })
        .unwrap();
    let module = Module::new(
        &engine,
        r#"(module (import "host" "peek" (func $peek (param i32) (result i32)))
                   (memory (export "memory") 1)
                   (data (i32.const 100) "\2a")
                   (func (export "run") (result i32) (call $peek (i32.const 100))))"#,
    )
    .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), 42);
}

#[test]
fn func_new_takes_and_returns_vals() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let ty = FuncType::new(&engine, [ValType::I32, ValType::F64], [ValType::F64]);
    let scale = Func::new(&mut store, ty, |_caller, args, results| {
        let n = args[0].i32().unwrap();
        let x = args[1].f64().unwrap();
        results[0] = Val::from(f64::from(n) * x);
        Ok(())
    });
    let module = Module::new(
        &engine,
        r#"(module (import "" "scale" (func $s (param i32 f64) (result f64)))
                   (func (export "run") (result f64) (call $s (i32.const 3) (f64.const 0.5))))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[scale.into()]).unwrap();
    let run = instance
        .get_typed_func::<(), f64>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), 1.5);
    // A host function is callable from the host too.
    let mut out = [Val::F64(0)];
    scale
        .call(&mut store, &[Val::I32(2), Val::from(2.5f64)], &mut out)
        .unwrap();
    assert_eq!(out[0].f64(), Some(5.0));
}

#[test]
fn memories_are_read_written_and_grown_from_the_host() {
    let (mut store, instance) = instantiate(
        r#"(module (memory (export "mem") 1 3)
                   (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
                   (func (export "size") (result i32) memory.size))"#,
    );
    let mem = instance.get_memory(&mut store, "mem").unwrap();
    let load = instance
        .get_typed_func::<i32, i32>(&mut store, "load")
        .unwrap();
    mem.write(&mut store, 16, &0x0102_0304u32.to_le_bytes())
        .unwrap();
    assert_eq!(load.call(&mut store, 16).unwrap(), 0x0102_0304);
    assert_eq!(mem.data_size(&store), 65536);
    assert!(mem.write(&mut store, 65535, &[1, 2]).is_err());

    assert_eq!(mem.grow(&mut store, 2).unwrap(), 1);
    assert_eq!(mem.size(&store), 3);
    assert!(mem.grow(&mut store, 1).is_err(), "the maximum is 3 pages");
    let size = instance
        .get_typed_func::<(), i32>(&mut store, "size")
        .unwrap();
    assert_eq!(size.call(&mut store, ()).unwrap(), 3);
    // Wasm sees the grown memory, and the host sees what wasm wrote.
    mem.data_mut(&mut store)[3 * 65536 - 4..].copy_from_slice(&[9, 0, 0, 0]);
    assert_eq!(load.call(&mut store, 3 * 65536 - 4).unwrap(), 9);
    let mut buf = [0u8; 4];
    mem.read(&store, 16, &mut buf).unwrap();
    assert_eq!(u32::from_le_bytes(buf), 0x0102_0304);
}

#[test]
fn globals_round_trip_and_respect_mutability() {
    let (mut store, instance) = instantiate(
        r#"(module (global (export "counter") (mut i64) (i64.const 10))
                   (global (export "pi") f64 (f64.const 3.25))
                   (func (export "bump") (global.set 0 (i64.add (global.get 0) (i64.const 1)))))"#,
    );
    let counter = instance.get_global(&mut store, "counter").unwrap();
    let pi = instance.get_global(&mut store, "pi").unwrap();
    let bump = instance
        .get_typed_func::<(), ()>(&mut store, "bump")
        .unwrap();
    bump.call(&mut store, ()).unwrap();
    assert_eq!(counter.get(&mut store).i64(), Some(11));
    counter.set(&mut store, Val::I64(100)).unwrap();
    bump.call(&mut store, ()).unwrap();
    assert_eq!(counter.get(&mut store).i64(), Some(101));
    assert!(counter.set(&mut store, Val::I32(1)).is_err(), "wrong type");
    assert!(pi.set(&mut store, Val::from(1.0f64)).is_err(), "immutable");
    assert_eq!(pi.get(&mut store).f64(), Some(3.25));
}

#[test]
fn tables_hold_functions_callable_indirectly() {
    let (mut store, instance) = instantiate(
        r#"(module (table (export "t") 2 funcref)
                   (type $v (func (result i32)))
                   (func $seven (export "seven") (result i32) i32.const 7)
                   (elem (i32.const 0) $seven)
                   (func (export "call") (param i32) (result i32)
                     (call_indirect (type $v) (local.get 0))))"#,
    );
    let table = instance.get_table(&mut store, "t").unwrap();
    let call = instance
        .get_typed_func::<i32, i32>(&mut store, "call")
        .unwrap();
    assert_eq!(table.size(&store), 2);
    assert_eq!(call.call(&mut store, 0).unwrap(), 7);
    assert_eq!(
        call.call(&mut store, 1).unwrap_err().trap(),
        Some(strata::Trap::IndirectCallToNull)
    );
    let eight = Func::wrap(&mut store, || 8i32);
    table.set(&mut store, 1, Ref::Func(Some(eight))).unwrap();
    assert_eq!(call.call(&mut store, 1).unwrap(), 8);
    let wrong = Func::wrap(&mut store, || 8i64);
    table.set(&mut store, 1, Ref::Func(Some(wrong))).unwrap();
    assert_eq!(
        call.call(&mut store, 1).unwrap_err().trap(),
        Some(strata::Trap::BadSignature)
    );
    assert_eq!(
        call.call(&mut store, 2).unwrap_err().trap(),
        Some(strata::Trap::TableOutOfBounds)
    );
    assert_eq!(table.grow(&mut store, 3, Ref::Func(None)).unwrap(), 2);
    assert_eq!(table.size(&store), 5);
    assert!(table.get(&mut store, 5).is_none());
}

#[test]
fn modules_list_their_imports_and_exports() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module $m (import "a" "b" (func (param i32)))
                      (import "a" "m" (memory 1))
                      (func (export "f") (result i64) i64.const 0)
                      (global (export "g") i32 (i32.const 0)))"#,
    )
    .unwrap();
    assert_eq!(module.name(), Some("m"));
    let imports: Vec<_> = module
        .imports()
        .map(|i| (i.module().to_owned(), i.name().to_owned()))
        .collect();
    assert_eq!(
        imports,
        [("a".into(), "b".into()), ("a".into(), "m".into())]
    );
    let exports: Vec<_> = module.exports().map(|e| e.name().to_owned()).collect();
    assert_eq!(exports, ["f", "g"]);
    match module.get_export("f") {
        Some(ExternType::Func(ty)) => assert_eq!(ty.results().collect::<Vec<_>>(), [ValType::I64]),
        other => panic!("f is {other:?}"),
    }
    assert!(module.get_export("nope").is_none());
}

#[test]
fn modules_show_where_each_function_is_in_their_code() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (import "a" "b" (func))
                   (func $first (result i32) i32.const 1)
                   (func (param i64) (result i64) (i64.mul (local.get 0) (local.get 0)))
                   (func $third (export "t") call 0))"#,
    )
    .unwrap();
    let functions: Vec<_> = module.functions().collect();
    let labels: Vec<_> = functions.iter().map(|f| (f.index, f.name)).collect();
    assert_eq!(labels, [(1, Some("first")), (2, None), (3, Some("third"))]);
    let text = module.text();
    let mut end = 0;
    for f in &functions {
        assert!(f.len > 0, "{f:?}");
        assert!(
            f.offset >= end,
            "functions are laid out in order, apart: {f:?}"
        );
        end = f.offset + f.len;
    }
    // Trampolines follow the functions.
    assert!(end < text.len());
    // Wasm functions start at the preferred alignment, so a loop's place relative to
    // the processor's fetch windows does not change with the code in front of it.
    if cfg!(target_arch = "x86_64") {
        for f in &functions {
            assert_eq!(f.offset % 32, 0, "{f:?}");
        }
    }
    // A precompiled copy has the same code in the same places.
    let bytes = module.serialize().unwrap();
    // SAFETY: the artifact was just made by this engine.
    let copy = unsafe { Module::deserialize(&engine, &bytes) }.unwrap();
    assert_eq!(copy.text(), text);
    assert_eq!(copy.functions().collect::<Vec<_>>(), functions);
}

#[test]
fn modules_are_shared_between_stores_and_threads() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (global $g (mut i32) (i32.const 0))
                   (func (export "next") (result i32)
                     (global.set $g (i32.add (global.get $g) (i32.const 1)))
                     (global.get $g)))"#,
    )
    .unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (engine, module) = (engine.clone(), module.clone());
            std::thread::spawn(move || {
                let mut store = Store::new(&engine, ());
                let instance = Instance::new(&mut store, &module, &[]).unwrap();
                let next = instance
                    .get_typed_func::<(), i32>(&mut store, "next")
                    .unwrap();
                (0..100).map(|_| next.call(&mut store, ()).unwrap()).last()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(
            h.join().unwrap(),
            Some(100),
            "each store has its own instance"
        );
    }
}

#[test]
fn externrefs_carry_host_values_through_wasm_and_tables() {
    let (mut store, instance) = instantiate(
        r#"(module (table (export "t") 2 externref)
                   (func (export "id") (param externref) (result externref) local.get 0)
                   (func (export "put") (param i32 externref)
                     (table.set (local.get 0) (local.get 1)))
                   (func (export "is_null") (param externref) (result i32)
                     (ref.is_null (local.get 0))))"#,
    );
    let greeting = ExternRef::new(&mut store, String::from("hello")).unwrap();
    let id = instance.get_func(&mut store, "id").unwrap();
    let mut out = [Val::ExternRef(None)];
    id.call(&mut store, &[greeting.into()], &mut out).unwrap();
    let Val::ExternRef(Some(back)) = out[0] else {
        panic!("expected a non-null externref, got {:?}", out[0]);
    };
    assert_eq!(back.data(&store).downcast_ref::<String>().unwrap(), "hello");

    let put = instance.get_func(&mut store, "put").unwrap();
    put.call(&mut store, &[Val::I32(1), greeting.into()], &mut [])
        .unwrap();
    let table = instance.get_table(&mut store, "t").unwrap();
    assert!(matches!(table.get(&mut store, 0), Some(Ref::Extern(None))));
    match table.get(&mut store, 1) {
        Some(Ref::Extern(Some(e))) => assert_eq!(e, greeting),
        other => panic!("slot 1 holds {other:?}"),
    }
    let err = table
        .set(&mut store, 0, Ref::Func(None))
        .expect_err("a funcref does not go into an externref table");
    assert!(err.to_string().contains("externref"), "{err}");

    let is_null = instance.get_func(&mut store, "is_null").unwrap();
    let mut out = [Val::I32(-1)];
    is_null
        .call(&mut store, &[Val::ExternRef(None)], &mut out)
        .unwrap();
    assert_eq!(out[0].i32(), Some(1));
    is_null
        .call(&mut store, &[greeting.into()], &mut out)
        .unwrap();
    assert_eq!(out[0].i32(), Some(0));
}

#[test]
fn bulk_memory_and_table_operations_trap_without_partial_writes() {
    let (mut store, instance) = instantiate(
        r#"(module (memory (export "mem") 1)
                   (data $d "abcdef")
                   (func (export "init") (param i32 i32 i32)
                     (memory.init $d (local.get 0) (local.get 1) (local.get 2)))
                   (func (export "drop") (data.drop $d))
                   (func (export "fill") (param i32 i32 i32)
                     (memory.fill (local.get 0) (local.get 1) (local.get 2)))
                   (func (export "copy") (param i32 i32 i32)
                     (memory.copy (local.get 0) (local.get 1) (local.get 2))))"#,
    );
    let mem = instance.get_memory(&mut store, "mem").unwrap();
    let init = instance
        .get_typed_func::<(i32, i32, i32), ()>(&mut store, "init")
        .unwrap();
    let fill = instance
        .get_typed_func::<(i32, i32, i32), ()>(&mut store, "fill")
        .unwrap();
    let copy = instance
        .get_typed_func::<(i32, i32, i32), ()>(&mut store, "copy")
        .unwrap();
    let drop = instance
        .get_typed_func::<(), ()>(&mut store, "drop")
        .unwrap();
    init.call(&mut store, (10, 1, 4)).unwrap();
    assert_eq!(&mem.data(&store)[10..14], b"bcde");
    copy.call(&mut store, (11, 10, 4)).unwrap();
    assert_eq!(
        &mem.data(&store)[10..15],
        b"bbcde",
        "overlapping copies move"
    );
    let err = fill.call(&mut store, (65530, 0x7a, 7)).unwrap_err();
    assert_eq!(err.trap(), Some(strata::Trap::MemoryOutOfBounds));
    assert!(mem.data(&store)[65530..].iter().all(|&b| b == 0));
    let err = init.call(&mut store, (0, 4, 3)).unwrap_err();
    assert_eq!(err.trap(), Some(strata::Trap::MemoryOutOfBounds));
    drop.call(&mut store, ()).unwrap();
    init.call(&mut store, (0, 0, 0)).unwrap();
    let err = init.call(&mut store, (0, 0, 1)).unwrap_err();
    assert_eq!(err.trap(), Some(strata::Trap::MemoryOutOfBounds), "dropped");
}

#[test]
fn store_borrows_convert_like_wasmtime() {
    use strata::AsContextMut;
    let (mut store, instance) = instantiate(r#"(module (memory (export "m") 1))"#);
    let mem = instance.get_memory(&mut store, "m").unwrap();
    {
        let mut cx = store.as_context_mut();
        mem.data_mut(&mut cx)[0] = 7;
        assert_eq!(mem.data(&cx)[0], 7);
        assert_eq!(mem.data(cx)[0], 7);
    }
    assert_eq!(mem.data(&mut store)[0], 7);
    assert_eq!(mem.data(&store)[0], 7);
}
