//! Wasm 3.0 typed function references: `call_ref` and `return_call_ref`, typed tables
//! and globals shared between modules, host values checked against typed parameters,
//! and the engine-wide identity of types that name other types.

use strata::{Config, Engine, Extern, Instance, Module, Store, Trap, Val};

/// A module whose types name each other: `$binop` takes two `i32`s, `$apply` a
/// `(ref $binop)` and two `i32`s, and `$unary` takes a nullable `$binop`. (A type
/// that names itself needs the GC proposal's recursion groups.)
const TYPED: &str = r#"
(module
  (type $binop (func (param i32 i32) (result i32)))
  (type $apply (func (param (ref $binop) i32 i32) (result i32)))
  (type $unary (func (param (ref null $binop)) (result i32)))
  (func $add (export "add") (type $binop) (i32.add (local.get 0) (local.get 1)))
  (func $sub (type $binop) (i32.sub (local.get 0) (local.get 1)))
  (func $apply (export "apply") (type $apply)
    (call_ref $binop (local.get 1) (local.get 2) (local.get 0)))
  (func (export "apply_tail") (param (ref null $binop) i32 i32) (result i32)
    (return_call_ref $binop (local.get 1) (local.get 2) (local.get 0)))
  (func $me (export "me") (type $unary) (i32.const 7))
  (table $ops (export "ops") 2 (ref $binop) (ref.func $sub))
  (global (export "add_ref") (ref $binop) (ref.func $add))
  (func (export "op") (param i32 i32 i32) (result i32)
    (call_ref $binop (local.get 1) (local.get 2) (table.get $ops (local.get 0))))
  (elem declare func $sub)
)
"#;

fn instantiate_typed(engine: &Engine) -> (Store<()>, Instance) {
    let module = Module::new(engine, TYPED).expect("typed module compiles");
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, &module, &[]).expect("instantiates");
    (store, instance)
}

#[test]
fn call_ref_and_return_call_ref_call_their_reference_and_trap_on_null() {
    let (mut store, instance) = instantiate_typed(&Engine::default());
    let add = instance.get_func(&mut store, "add").unwrap();
    let apply = instance.get_func(&mut store, "apply").unwrap();
    let mut out = [Val::I32(0)];
    apply
        .call(
            &mut store,
            &[Val::FuncRef(Some(add)), Val::I32(40), Val::I32(2)],
            &mut out,
        )
        .unwrap();
    assert_eq!(out[0].i32(), Some(42));

    let tail = instance.get_func(&mut store, "apply_tail").unwrap();
    tail.call(
        &mut store,
        &[Val::FuncRef(Some(add)), Val::I32(1), Val::I32(2)],
        &mut out,
    )
    .unwrap();
    assert_eq!(out[0].i32(), Some(3));
    let err = tail
        .call(
            &mut store,
            &[Val::FuncRef(None), Val::I32(1), Val::I32(2)],
            &mut out,
        )
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<Trap>(),
        Some(&Trap::NullFunctionReference),
        "{err:?}"
    );
    assert!(err.to_string().contains("null function reference"), "{err}");
}

#[test]
fn a_table_with_an_initializer_starts_with_its_value_everywhere() {
    let (mut store, instance) = instantiate_typed(&Engine::default());
    let op = instance.get_func(&mut store, "op").unwrap();
    let mut out = [Val::I32(0)];
    for index in 0..2 {
        op.call(
            &mut store,
            &[Val::I32(index), Val::I32(10), Val::I32(3)],
            &mut out,
        )
        .unwrap();
        assert_eq!(out[0].i32(), Some(7), "element {index} is $sub");
    }
}

#[test]
fn host_arguments_are_checked_against_typed_parameters() {
    let (mut store, instance) = instantiate_typed(&Engine::default());
    let apply = instance.get_func(&mut store, "apply").unwrap();
    let me = instance.get_func(&mut store, "me").unwrap();
    let mut out = [Val::I32(0)];
    // `$me` is a function, but not a `$binop`; null is no `(ref $binop)` at all.
    for wrong in [Val::FuncRef(Some(me)), Val::FuncRef(None)] {
        let err = apply
            .call(&mut store, &[wrong, Val::I32(1), Val::I32(2)], &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("argument 0"), "{err}");
    }
    let add = instance.get_func(&mut store, "add").unwrap();
    let ty = apply.ty(&store);
    let param = ty.params().next().unwrap();
    assert!(Val::FuncRef(Some(add)).matches_ty(&store, &param));
    assert!(!Val::FuncRef(Some(me)).matches_ty(&store, &param));
    assert!(!Val::FuncRef(None).matches_ty(&store, &param));
    assert!(Val::FuncRef(None).matches_ty(&store, &strata::ValType::FUNCREF));
}

/// A second module that imports the first's typed exports, with its own copies of
/// the types at other indices.
const IMPORTER: &str = r#"
(module
  (type $other (func))
  (type $binop (func (param i32 i32) (result i32)))
  (type $unary (func (param (ref null $binop)) (result i32)))
  (import "typed" "add" (func $add (type $binop)))
  (import "typed" "me" (func $me (type $unary)))
  (import "typed" "ops" (table 2 (ref $binop)))
  (import "typed" "add_ref" (global $g (ref $binop)))
  (func (export "run") (result i32)
    (i32.add
      (call_ref $binop (i32.const 5) (i32.const 6) (global.get $g))
      (call $me (ref.null $binop))))
)
"#;

#[test]
fn typed_exports_link_by_structure_across_modules() {
    let engine = Engine::default();
    let (mut store, typed) = instantiate_typed(&engine);
    let importer = Module::new(&engine, IMPORTER).unwrap();
    let imports: Vec<Extern> = ["add", "me", "ops", "add_ref"]
        .iter()
        .map(|name| typed.get_export(&mut store, name).unwrap())
        .collect();
    let instance = Instance::new(&mut store, &importer, &imports).unwrap();
    let run = instance.get_func(&mut store, "run").unwrap();
    let mut out = [Val::I32(0)];
    run.call(&mut store, &[], &mut out).unwrap();
    assert_eq!(out[0].i32(), Some(18));
}

#[test]
fn typed_imports_of_another_type_are_refused_with_both_types() {
    let engine = Engine::default();
    let (mut store, typed) = instantiate_typed(&engine);
    // `me` for a `$binop` function, and a `(ref $binop)` global imported as a
    // `(ref $unary)` one.
    let cases = [
        (
            r#"(module (type $binop (func (param i32 i32) (result i32)))
                 (import "typed" "me" (func (type $binop))))"#,
            "me",
        ),
        (
            r#"(module (type $binop (func (param i32 i32) (result i32)))
                 (type $unary (func (param (ref null $binop)) (result i32)))
                 (import "typed" "add_ref" (global (ref $unary))))"#,
            "add_ref",
        ),
    ];
    for (wat, name) in cases {
        let module = Module::new(&engine, wat).unwrap();
        let import = typed.get_export(&mut store, name).unwrap();
        let err = Instance::new(&mut store, &module, &[import]).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("incompatible import type") && message.contains(name),
            "{message}"
        );
        // Types that name other types are spelled out, not given as engine ids.
        assert!(!message.contains("engine-type"), "{message}");
    }
    let module = Module::new(
        &engine,
        r#"(module (type $unary (func (param i64)))
             (import "typed" "add_ref" (global (ref $unary))))"#,
    )
    .unwrap();
    let import = typed.get_export(&mut store, "add_ref").unwrap();
    let message = Instance::new(&mut store, &module, &[import])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("expected (global (ref (func (param i64))))")
            && message.contains("found (global (ref (func (param i32 i32) (result i32))))"),
        "{message}"
    );
    // A `(ref $binop)` global is a `funcref` one too, when it cannot be written.
    let module = Module::new(
        &engine,
        r#"(module (import "typed" "add_ref" (global funcref)))"#,
    )
    .unwrap();
    let import = typed.get_export(&mut store, "add_ref").unwrap();
    Instance::new(&mut store, &module, &[import]).unwrap();
}

#[test]
fn a_host_function_of_a_type_that_names_types_links_as_that_type() {
    let engine = Engine::default();
    let (mut store, typed) = instantiate_typed(&engine);
    // The engine reports `$apply` with `$binop` as an engine type; a host function
    // made with it is an `$apply` to every module.
    let ty = typed.get_func(&mut store, "apply").unwrap().ty(&store);
    let host = strata::Func::new(&mut store, ty, |_, args, out| {
        out[0] = Val::I32(args[1].i32().unwrap() * args[2].i32().unwrap());
        Ok(())
    });
    let module = Module::new(
        &engine,
        r#"(module
             (type $binop (func (param i32 i32) (result i32)))
             (type $apply (func (param (ref $binop) i32 i32) (result i32)))
             (import "host" "apply" (func $apply (type $apply)))
             (func $add (type $binop) (i32.add (local.get 0) (local.get 1)))
             (elem declare func $add)
             (func (export "run") (result i32)
               (call $apply (ref.func $add) (i32.const 6) (i32.const 7))))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[host.into()]).unwrap();
    let run = instance.get_func(&mut store, "run").unwrap();
    let mut out = [Val::I32(0)];
    run.call(&mut store, &[], &mut out).unwrap();
    assert_eq!(out[0].i32(), Some(42));
}

#[test]
fn function_references_can_be_turned_off() {
    let mut config = Config::new();
    config.wasm_function_references(false);
    let engine = Engine::new(&config).unwrap();
    let err = Module::new(&engine, TYPED).unwrap_err();
    assert!(err.to_string().contains("function references"), "{err:#}");
}
