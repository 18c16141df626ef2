//! Imports are checked at instantiation and calls at the API boundary: each mistake is an
//! `Err` whose message says what is wrong.

use strata::{
    Engine, Extern, Func, Global, GlobalType, Instance, Linker, Memory, MemoryType, Module,
    Mutability, Store, Val, ValType,
};

const IMPORTS: &str = r#"
(module
  (import "env" "f" (func (param i32) (result i32)))
  (import "env" "mem" (memory 1 2))
  (import "env" "g" (global (mut i64)))
  (func (export "call") (param i32) (result i32) (call 0 (local.get 0))))
"#;

fn setup() -> (Engine, Module, Store<()>) {
    let engine = Engine::default();
    let module = Module::new(&engine, IMPORTS).unwrap();
    let store = Store::new(&engine, ());
    (engine, module, store)
}

fn good_imports(store: &mut Store<()>) -> [Extern; 3] {
    let f = Func::wrap(&mut *store, |x: i32| x + 1);
    let mem = Memory::new(&mut *store, MemoryType::new(1, Some(2))).unwrap();
    let g = Global::new(
        &mut *store,
        GlobalType::new(ValType::I64, Mutability::Var),
        Val::I64(0),
    )
    .unwrap();
    [f.into(), mem.into(), g.into()]
}

fn link_error(store: &mut Store<()>, module: &Module, imports: &[Extern]) -> String {
    match Instance::new(store, module, imports) {
        Ok(_) => panic!("instantiation succeeded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn matching_imports_link() {
    let (_, module, mut store) = setup();
    let imports = good_imports(&mut store);
    let instance = Instance::new(&mut store, &module, &imports).unwrap();
    let call = instance
        .get_typed_func::<i32, i32>(&mut store, "call")
        .unwrap();
    assert_eq!(call.call(&mut store, 41).unwrap(), 42);
}

#[test]
fn unknown_import_names_module_and_field() {
    let (engine, module, mut store) = setup();
    let linker = Linker::new(&engine);
    let err = linker.instantiate(&mut store, &module).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("unknown import"), "{message}");
    assert!(
        message.contains("env") && message.contains('f'),
        "{message}"
    );
}

#[test]
fn function_import_with_the_wrong_signature_is_refused() {
    let (_, module, mut store) = setup();
    let mut imports = good_imports(&mut store);
    imports[0] = Func::wrap(&mut store, |x: i64| x).into();
    let message = link_error(&mut store, &module, &imports);
    assert!(message.contains("incompatible import type"), "{message}");
    assert!(
        message.contains("env") && message.contains("i64"),
        "{message}"
    );
}

#[test]
fn import_of_the_wrong_kind_is_refused() {
    let (_, module, mut store) = setup();
    let mut imports = good_imports(&mut store);
    imports.swap(0, 1);
    let message = link_error(&mut store, &module, &imports);
    assert!(message.contains("incompatible import type"), "{message}");
}

#[test]
fn memory_and_global_imports_are_checked_by_limits_and_type() {
    let (_, module, mut store) = setup();
    let mut imports = good_imports(&mut store);
    imports[1] = Memory::new(&mut store, MemoryType::new(1, None))
        .unwrap()
        .into();
    let message = link_error(&mut store, &module, &imports);
    assert!(message.contains("incompatible import type"), "{message}");

    let mut imports = good_imports(&mut store);
    imports[2] = Global::new(
        &mut store,
        GlobalType::new(ValType::I64, Mutability::Const),
        Val::I64(0),
    )
    .unwrap()
    .into();
    let message = link_error(&mut store, &module, &imports);
    assert!(message.contains("incompatible import type"), "{message}");
}

#[test]
fn wrong_number_of_imports_is_refused() {
    let (_, module, mut store) = setup();
    let imports = good_imports(&mut store);
    let message = link_error(&mut store, &module, &imports[..2]);
    assert!(message.contains('3') && message.contains('2'), "{message}");
}

#[test]
fn calls_with_wrong_arguments_are_refused() {
    let (_, module, mut store) = setup();
    let imports = good_imports(&mut store);
    let instance = Instance::new(&mut store, &module, &imports).unwrap();
    let call = instance.get_func(&mut store, "call").unwrap();
    let mut out = [Val::I32(0)];
    let err = call.call(&mut store, &[], &mut out).unwrap_err();
    assert!(err.to_string().contains("expected 1 arguments"), "{err}");
    let err = call.call(&mut store, &[Val::I64(1)], &mut out).unwrap_err();
    assert!(err.to_string().contains("i64"), "{err}");
    let err = call.call(&mut store, &[Val::I32(1)], &mut []).unwrap_err();
    assert!(err.to_string().contains("results"), "{err}");
    let err = call.typed::<i64, i32>(&store).err().unwrap();
    assert!(err.to_string().contains("type mismatch"), "{err}");
    let err = call.typed::<i32, ()>(&store).err().unwrap();
    assert!(err.to_string().contains("type mismatch"), "{err}");
    call.call(&mut store, &[Val::I32(1)], &mut out).unwrap();
    assert_eq!(out[0].i32(), Some(2));
}

#[test]
fn linker_resolves_instances_and_refuses_duplicates() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    let provider = Module::new(
        &engine,
        r#"(module (func (export "f") (param i32) (result i32)
                     (i32.mul (local.get 0) (i32.const 3)))
                   (memory (export "mem") 1 2)
                   (global (export "g") (mut i64) (i64.const 5)))"#,
    )
    .unwrap();
    let provider = linker.instantiate(&mut store, &provider).unwrap();
    linker.instance(&mut store, "env", provider).unwrap();
    let user = Module::new(&engine, IMPORTS).unwrap();
    let instance = linker.instantiate(&mut store, &user).unwrap();
    let call = instance
        .get_typed_func::<i32, i32>(&mut store, "call")
        .unwrap();
    assert_eq!(call.call(&mut store, 5).unwrap(), 15);

    let err = linker
        .func_wrap("env", "f", |x: i32| x)
        .err()
        .expect("redefinition without shadowing");
    assert!(err.to_string().contains("env"), "{err}");
    linker.allow_shadowing(true);
    linker.func_wrap("env", "f", |x: i32| x).unwrap();
    let instance = linker.instantiate(&mut store, &user).unwrap();
    let call = instance
        .get_typed_func::<i32, i32>(&mut store, "call")
        .unwrap();
    assert_eq!(call.call(&mut store, 5).unwrap(), 5);
}

#[test]
fn start_function_traps_fail_instantiation() {
    let engine = Engine::default();
    let module = Module::new(&engine, r#"(module (func $s unreachable) (start $s))"#).unwrap();
    let mut store = Store::new(&engine, ());
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert_eq!(err.trap(), Some(strata::Trap::UnreachableCodeReached));
}

#[test]
fn out_of_bounds_data_segment_fails_instantiation() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (memory 1) (data (i32.const 65535) "ab"))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    assert_eq!(err.trap(), Some(strata::Trap::MemoryOutOfBounds));
}

/// Funcref tables are filled lazily from a plan made at compile time. Whoever reads an
/// element first — `call_indirect`, `table.get`, `table.copy` from another instance, or
/// the host — must see what eager initialization would have written, including a later
/// segment the plan could not take overwriting an earlier one it did.
#[test]
fn lazily_initialized_table_elements_look_the_same_through_every_reader() {
    const OWNER: &str = r#"
    (module
      (global $at (import "env" "at") i32)
      (table (export "t") 4 funcref)
      (func $one (result i32) i32.const 1)
      (func $two (result i32) i32.const 2)
      (func $three (result i32) i32.const 3)
      (elem (i32.const 0) $one $two)
      (elem (i32.const 2) $three)
      (elem (global.get $at) $three)
      (func (export "call") (param i32) (result i32)
        (call_indirect (result i32) (local.get 0))))
    "#;
    const USER: &str = r#"
    (module
      (import "owner" "t" (table $theirs 4 funcref))
      (table $mine 4 funcref)
      (func (export "copy_and_call") (param i32) (result i32)
        (table.copy $mine $theirs (i32.const 0) (i32.const 0) (i32.const 4))
        (call_indirect $mine (result i32) (local.get 0)))
      (func (export "is_null") (param i32) (result i32)
        (ref.is_null (table.get $theirs (local.get 0)))))
    "#;
    let engine = Engine::default();
    let owner = Module::new(&engine, OWNER).unwrap();
    let user = Module::new(&engine, USER).unwrap();
    let expected = [Some(3), Some(2), Some(3), None];
    // Each reader goes first in a store of its own.
    for reader in ["host", "call_indirect", "table.get", "table.copy"] {
        let mut store = Store::new(&engine, ());
        let at = Global::new(
            &mut store,
            GlobalType::new(ValType::I32, Mutability::Const),
            Val::I32(0),
        )
        .unwrap();
        let owner = Instance::new(&mut store, &owner, &[at.into()]).unwrap();
        let table = owner.get_table(&mut store, "t").unwrap();
        let user = Instance::new(&mut store, &user, &[table.into()]).unwrap();
        let call = owner
            .get_typed_func::<i32, i32>(&mut store, "call")
            .unwrap();
        let copy_and_call = user
            .get_typed_func::<i32, i32>(&mut store, "copy_and_call")
            .unwrap();
        let is_null = user
            .get_typed_func::<i32, i32>(&mut store, "is_null")
            .unwrap();
        for (i, want) in (0..).zip(expected) {
            let got = match reader {
                "host" => match table.get(&mut store, i as u64) {
                    Some(strata::Ref::Func(Some(f))) => Some(
                        f.typed::<(), i32>(&store)
                            .unwrap()
                            .call(&mut store, ())
                            .unwrap(),
                    ),
                    Some(strata::Ref::Func(None)) => None,
                    other => panic!("unexpected element {other:?}"),
                },
                "call_indirect" => call.call(&mut store, i).ok(),
                "table.get" => (is_null.call(&mut store, i).unwrap() == 0)
                    .then(|| call.call(&mut store, i).unwrap()),
                _ => copy_and_call.call(&mut store, i).ok(),
            };
            assert_eq!(got, want, "element {i} read first by {reader}");
            // Whatever read it first, every reader now agrees.
            assert_eq!(call.call(&mut store, i).ok(), want);
            assert_eq!(copy_and_call.call(&mut store, i).ok(), want);
        }
    }
}

#[test]
fn bulk_memory_operations_reach_an_imported_memory_after_it_grew() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let memory = Memory::new(&mut store, MemoryType::new(1, None)).unwrap();
    memory.write(&mut store, 0, b"strata").unwrap();
    let module = Module::new(
        &engine,
        r#"(module
             (import "host" "mem" (memory 1))
             (func (export "copy") (param i32 i32 i32)
               (memory.copy (local.get 0) (local.get 1) (local.get 2)))
             (func (export "fill") (param i32 i32 i32)
               (memory.fill (local.get 0) (local.get 1) (local.get 2))))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[memory.into()]).unwrap();
    let copy = instance
        .get_typed_func::<(i32, i32, i32), ()>(&mut store, "copy")
        .unwrap();
    let fill = instance
        .get_typed_func::<(i32, i32, i32), ()>(&mut store, "fill")
        .unwrap();
    // Grown from the host, so the importer's bounds come from the exporter's
    // definition, not from anything the importer saw at instantiation.
    memory.grow(&mut store, 1).unwrap();
    copy.call(&mut store, (65536 + 10, 0, 6)).unwrap();
    fill.call(&mut store, (2 * 65536 - 2, 0x21, 2)).unwrap();
    let data = memory.data(&store);
    assert_eq!(&data[65536 + 10..65536 + 16], b"strata");
    assert_eq!(&data[2 * 65536 - 2..], b"!!");
    let err = copy.call(&mut store, (2 * 65536 - 1, 0, 2)).unwrap_err();
    assert_eq!(err.trap(), Some(strata::Trap::MemoryOutOfBounds));
    let err = fill.call(&mut store, (2 * 65536, 0, 1)).unwrap_err();
    assert_eq!(err.trap(), Some(strata::Trap::MemoryOutOfBounds));
}

#[test]
fn one_global_imported_twice_reads_back_what_either_import_wrote() {
    // Compiled code keeps each defined global in an alias region of its own; imports share
    // one region, because two of them may be the same global, as here.
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let global = Global::new(
        &mut store,
        GlobalType::new(ValType::I32, Mutability::Var),
        Val::I32(1),
    )
    .unwrap();
    let module = Module::new(
        &engine,
        r#"(module
             (import "host" "g" (global $a (mut i32)))
             (import "host" "g" (global $b (mut i32)))
             (global $own (mut i32) (i32.const 0))
             (memory 1)
             (func (export "f") (result i32)
               (global.set $a (i32.const 5))
               (global.set $own (global.get $b))
               (i32.store (i32.const 0) (i32.const 9))
               (global.set $b (i32.add (global.get $a) (i32.const 1)))
               (i32.add (global.get $a) (global.get $own))))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[global.into(), global.into()]).unwrap();
    let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
    assert_eq!(f.call(&mut store, ()).unwrap(), 6 + 5);
    assert_eq!(global.get(&mut store).i32(), Some(6));
}

/// A memory import matches only a memory of the same page size and index type: sizes
/// are counted in pages, so limits alone would let a 1-byte-page memory stand in for a
/// 64 KiB-page one.
#[test]
fn memory_imports_are_checked_by_page_size_and_index_type() {
    let mut config = strata::Config::new();
    config.wasm_custom_page_sizes(true);
    let engine = Engine::new(&config).unwrap();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    let provider = Module::new(
        &engine,
        r#"(module
             (memory (export "small") 1 (pagesize 1))
             (memory (export "large") 1 (pagesize 65536))
             (memory (export "wide") i64 1))"#,
    )
    .unwrap();
    let provider = linker.instantiate(&mut store, &provider).unwrap();
    linker.instance(&mut store, "m", provider).unwrap();
    let Some(Extern::Memory(small)) = provider.get_export(&mut store, "small") else {
        panic!("no memory export `small`");
    };
    let small = small.ty(&store);
    assert_eq!((small.page_size(), small.page_size_log2()), (1, 0));

    let import = |field: &str, ty: &str| format!(r#"(module (import "m" "{field}" {ty}))"#);
    let cases = [
        (
            "small",
            "(memory 1 (pagesize 65536))",
            "(memory 1 (pagesize 1))",
        ),
        ("large", "(memory 1 (pagesize 1))", "(memory 1)"),
        ("wide", "(memory 1)", "(memory i64 1)"),
        ("large", "(memory i64 1)", "(memory 1)"),
    ];
    for (field, wanted, found) in cases {
        let module = Module::new(&engine, import(field, wanted)).unwrap();
        let err = linker
            .instantiate(&mut store, &module)
            .err()
            .unwrap_or_else(|| panic!("importing `{field}` as {wanted} linked"));
        let message = err.to_string();
        assert!(message.contains("incompatible import type"), "{message}");
        assert!(message.contains(&format!("found {found}")), "{message}");
    }

    for (field, ty) in [
        ("small", "(memory 1 (pagesize 1))"),
        ("large", "(memory 1 (pagesize 65536))"),
        ("wide", "(memory i64 1)"),
    ] {
        let module = Module::new(&engine, import(field, ty)).unwrap();
        linker.instantiate(&mut store, &module).unwrap();
    }
}
