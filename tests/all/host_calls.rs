//! Calls across the host boundary in the shapes the fast paths treat specially: typed
//! calls of host functions with more results than parameters, untyped calls nested
//! inside untyped host functions (which share the store's scratch buffers), type checks
//! of untyped calls after their type is cached, and `Caller::get_export` when no
//! instance called.

use strata::{Caller, Engine, Func, FuncType, Instance, Linker, Module, Store, Val, ValType};

#[test]
fn typed_calls_of_host_functions_fill_every_result_slot() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let three = Func::wrap(&mut store, || (7i32, -8i64, 0.5f32));
    let f = three.typed::<(), (i32, i64, f32)>(&store).unwrap();
    assert_eq!(f.call(&mut store, ()).unwrap(), (7, -8, 0.5));
    let add = Func::wrap(&mut store, |a: i64, b: i64| a.wrapping_add(b));
    let f = add.typed::<(i64, i64), i64>(&store).unwrap();
    assert_eq!(f.call(&mut store, (i64::MAX, 1)).unwrap(), i64::MIN);
    // Through an export of wasm that calls the host function with the same shape.
    let module = Module::new(
        &engine,
        r#"(module (import "" "three" (func $t (result i32 i64 f32)))
                   (func (export "run") (result i32 i64 f32) (call $t)))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[three.into()]).unwrap();
    let run = instance
        .get_typed_func::<(), (i32, i64, f32)>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), (7, -8, 0.5));
}

#[test]
fn untyped_calls_nest_through_untyped_host_functions() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module
             (import "host" "down" (func $down (param i32) (result i32)))
             (import "host" "pair" (func $pair (param i64) (result i64 i32)))
             ;; f(n) = 0 for n = 0, else down(n) + 1, where down(n) calls f(n - 1).
             (func (export "f") (param $n i32) (result i32)
               (if (result i32) (i32.eqz (local.get $n))
                 (then (i32.const 0))
                 (else (i32.add (call $down (local.get $n)) (i32.const 1)))))
             (func (export "g") (param i64) (result i64 i32) (call $pair (local.get 0))))"#,
    )
    .unwrap();
    let mut linker = Linker::new(&engine);
    let down = FuncType::new(&engine, [ValType::I32], [ValType::I32]);
    linker
        .func_new("host", "down", down, |mut caller, args, results| {
            let n = args[0].i32().unwrap();
            let export = |caller: &mut Caller<'_, ()>, name| {
                caller.get_export(name).unwrap().into_func().unwrap()
            };
            // A call of another type in between, through another untyped host function.
            let g = export(&mut caller, "g");
            let mut pair = [Val::I64(0), Val::I32(0)];
            g.call(&mut caller, &[Val::I64(i64::from(n))], &mut pair)
                .unwrap();
            assert_eq!(pair[0].i64(), Some(i64::from(n) * 2));
            assert_eq!(pair[1].i32(), Some(-n));
            let f = export(&mut caller, "f");
            let mut out = [Val::I32(-1)];
            f.call(&mut caller, &[Val::I32(n - 1)], &mut out)?;
            results[0] = out[0];
            Ok(())
        })
        .unwrap();
    let pair = FuncType::new(&engine, [ValType::I64], [ValType::I64, ValType::I32]);
    linker
        .func_new("host", "pair", pair, |_caller, args, results| {
            let x = args[0].i64().unwrap();
            results[0] = Val::I64(x * 2);
            results[1] = Val::I32(-i32::try_from(x).unwrap());
            Ok(())
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let f = instance.get_func(&mut store, "f").unwrap();
    for n in [0, 1, 5, 20] {
        let mut out = [Val::I32(-1)];
        f.call(&mut store, &[Val::I32(n)], &mut out).unwrap();
        assert_eq!(out[0].i32(), Some(n), "f({n})");
    }
}

#[test]
fn untyped_calls_check_types_after_their_type_is_cached() {
    let engine = Engine::default();
    let module = Module::new(
        &engine,
        r#"(module (func (export "inc") (param i32) (result i32)
                     (i32.add (local.get 0) (i32.const 1))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let inc = instance.get_func(&mut store, "inc").unwrap();
    let mut out = [Val::I32(0)];
    inc.call(&mut store, &[Val::I32(1)], &mut out).unwrap();
    assert_eq!(out[0].i32(), Some(2));
    let wrong = inc.call(&mut store, &[Val::I64(1)], &mut out).unwrap_err();
    assert!(wrong.to_string().contains("argument 0"), "{wrong}");
    let few = inc.call(&mut store, &[], &mut out).unwrap_err();
    assert!(few.to_string().contains("expected 1 arguments"), "{few}");
    let no_room = inc.call(&mut store, &[Val::I32(1)], &mut []).unwrap_err();
    assert!(no_room.to_string().contains("room for 0"), "{no_room}");
    inc.call(&mut store, &[Val::I32(41)], &mut out).unwrap();
    assert_eq!(out[0].i32(), Some(42), "the store still works");
}

#[test]
fn untyped_host_functions_check_their_results_every_call() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let ty = FuncType::new(&engine, [ValType::I32], [ValType::I32]);
    let odd = Func::new(&mut store, ty, |_caller, args, results| {
        let n = args[0].i32().unwrap();
        results[0] = if n % 2 == 0 {
            Val::I32(n)
        } else {
            Val::I64(i64::from(n))
        };
        Ok(())
    });
    let f = odd.typed::<i32, i32>(&store).unwrap();
    assert_eq!(f.call(&mut store, 4).unwrap(), 4);
    let err = f.call(&mut store, 3).unwrap_err();
    assert!(err.to_string().contains("returned a i64"), "{err}");
    assert_eq!(f.call(&mut store, 6).unwrap(), 6, "the store still works");
}

#[test]
fn a_host_function_called_from_the_host_has_no_calling_instance() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let probe = Func::wrap(&mut store, |mut caller: Caller<'_, ()>| {
        i32::from(caller.get_export("memory").is_some())
    });
    let f = probe.typed::<(), i32>(&store).unwrap();
    assert_eq!(f.call(&mut store, ()).unwrap(), 0);
    let module = Module::new(
        &engine,
        r#"(module (import "" "probe" (func $p (result i32)))
                   (memory (export "memory") 1)
                   (func (export "run") (result i32) (call $p)))"#,
    )
    .unwrap();
    let instance = Instance::new(&mut store, &module, &[probe.into()]).unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), 1);
}
