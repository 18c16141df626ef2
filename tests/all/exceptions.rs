//! Wasm 3.0 exception handling: throwing and catching across frames and instances,
//! exceptions that reach the host and host functions that throw, tags made by the
//! host, traps that no handler catches, and the feature turned off.

use strata::{
    Config, Engine, ExnRef, Extern, Func, FuncType, Instance, Linker, Module, Store, Tag, TagType,
    ThrownException, Trap, Val, ValType,
};

/// A module that throws `$e` (an `i32` and an `i64`) from three frames down, catches
/// it, and can call an imported function inside a `try_table`.
const THROWER: &str = r#"
(module
  (import "host" "call" (func $host (param i32)))
  (tag $e (export "e") (param i32 i64))
  (func $deep (export "deep") (param i32)
    (throw $e (local.get 0) (i64.const -9)))
  (func $mid (param i32) (call $deep (local.get 0)))
  (func (export "catch") (param i32) (result i32 i64)
    (block $h (result i32 i64)
      (try_table (catch $e $h) (call $mid (local.get 0)))
      (unreachable)))
  (func (export "catch_host") (param i32) (result i32)
    (block $h (result i32 i64)
      (try_table (catch $e $h) (call $host (local.get 0)))
      (return (i32.const -1)))
    (drop))
  (func (export "trap_in_try") (result i32)
    (block $h
      (try_table (catch_all $h) (unreachable)))
    (i32.const 1))
)
"#;

fn instantiate(engine: &Engine, host: Func, store: &mut Store<()>) -> Instance {
    let module = Module::new(engine, THROWER).expect("compiles");
    Instance::new(&mut *store, &module, &[host.into()]).expect("instantiates")
}

fn no_op_host(store: &mut Store<()>) -> Func {
    Func::wrap(&mut *store, |_: i32| {})
}

#[test]
fn an_exception_is_caught_three_frames_up_with_its_fields() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let host = no_op_host(&mut store);
    let instance = instantiate(&engine, host, &mut store);
    let f = instance
        .get_typed_func::<i32, (i32, i64)>(&mut store, "catch")
        .unwrap();
    assert_eq!(f.call(&mut store, 5).unwrap(), (5, -9));
    // Many times: nothing accumulates on the stack or in the activation.
    for i in 0..1000 {
        assert_eq!(f.call(&mut store, i).unwrap(), (i, -9));
    }
}

#[test]
fn an_uncaught_exception_reaches_the_host_with_its_tag_fields_and_backtrace() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let host = no_op_host(&mut store);
    let instance = instantiate(&engine, host, &mut store);
    let deep = instance.get_func(&mut store, "deep").unwrap();
    let err = deep
        .call(&mut store, &[Val::I32(3)], &mut [])
        .expect_err("nothing catches it");
    assert!(err.trap().is_none(), "an exception is not a trap: {err}");
    let thrown = err
        .downcast_ref::<ThrownException>()
        .expect("a thrown exception")
        .clone();
    assert!(err.to_string().contains("uncaught wasm exception"), "{err}");
    let exn = thrown.exception();
    // The store keeps it as its pending exception too, as wasmtime's does.
    assert_eq!(store.take_pending_exception(), Some(exn));
    assert!(!store.has_pending_exception());
    let tag = exn.tag(&mut store);
    let exported = instance
        .get_export(&mut store, "e")
        .unwrap()
        .into_tag()
        .unwrap();
    assert!(Tag::eq(&tag, &exported, &store));
    let ty = exn.ty(&mut store);
    assert_eq!(
        ty.fields().collect::<Vec<_>>(),
        [ValType::I32, ValType::I64]
    );
    let fields = exn.fields(&mut store);
    assert_eq!(fields.len(), 2);
    assert_eq!(fields[0].i32(), Some(3));
    assert_eq!(fields[1].i64(), Some(-9));
    let frames = err.wasm_backtrace().expect("a backtrace").frames();
    assert!(!frames.is_empty(), "the throwing frame is in the backtrace");
}

#[test]
fn a_host_function_throws_into_its_wasm_caller() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    // The host throws an exception of the module's own tag, which it learns from a
    // first instance's export; the second instance imports this host function.
    let module = Module::new(&engine, THROWER).unwrap();
    let tag_holder = {
        let host = no_op_host(&mut store);
        Instance::new(&mut store, &module, &[host.into()]).unwrap()
    };
    let tag = tag_holder
        .get_export(&mut store, "e")
        .unwrap()
        .into_tag()
        .unwrap();
    // A host function throwing the first instance's tag: the second instance's
    // `catch $e` is its own tag, so it does not catch this one.
    let thrower = Func::wrap(
        &mut store,
        move |mut caller: strata::Caller<'_, ()>, x: i32| {
            let exn = ExnRef::new(&mut caller, &tag, &[Val::I32(x * 2), Val::I64(1)])?;
            caller.throw(exn)?;
            Ok(())
        },
    );
    let other = Instance::new(&mut store, &module, &[thrower.into()]).unwrap();
    let f = other
        .get_typed_func::<i32, i32>(&mut store, "catch_host")
        .unwrap();
    let err = f.call(&mut store, 4).expect_err("another instance's tag");
    let thrown = err.downcast_ref::<ThrownException>().expect("still thrown");
    assert_eq!(thrown.exception().fields(&mut store)[0].i32(), Some(8));

    // The same host function throwing into the instance whose tag it uses is caught.
    let linker_module = Module::new(
        &engine,
        r#"(module
             (import "m" "e" (tag $e (param i32 i64)))
             (import "host" "call" (func $host (param i32)))
             (func (export "run") (param i32) (result i32)
               (block $h (result i32 i64)
                 (try_table (catch $e $h) (call $host (local.get 0)))
                 (return (i32.const -1)))
               (drop)))"#,
    )
    .unwrap();
    let mut linker = Linker::new(&engine);
    linker.instance(&mut store, "m", tag_holder).unwrap();
    linker.define(&store, "host", "call", thrower).unwrap();
    let catcher = linker.instantiate(&mut store, &linker_module).unwrap();
    let run = catcher
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, 21).unwrap(), 42);
    // Caught in wasm, the exception the host threw is no longer pending.
    assert!(!store.has_pending_exception());
}

#[test]
fn exceptions_cross_instances_and_imported_tags_are_the_same_tag() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let host_tag = Tag::new(
        &mut store,
        &TagType::new(FuncType::new(&engine, [ValType::I32], [])),
    )
    .unwrap();
    let thrower = Module::new(
        &engine,
        r#"(module
             (import "env" "tag" (tag $t (param i32)))
             (func (export "throw") (param i32) (throw $t (local.get 0))))"#,
    )
    .unwrap();
    let catcher = Module::new(
        &engine,
        r#"(module
             (import "env" "tag" (tag $t (param i32)))
             (import "env" "throw" (func $throw (param i32)))
             (func (export "run") (param i32) (result i32)
               (block $h (result i32)
                 (try_table (catch $t $h) (call $throw (local.get 0)))
                 (i32.const -1))))"#,
    )
    .unwrap();
    let a = Instance::new(&mut store, &thrower, &[host_tag.into()]).unwrap();
    let throw = a.get_func(&mut store, "throw").unwrap();
    let b = Instance::new(&mut store, &catcher, &[host_tag.into(), throw.into()]).unwrap();
    let run = b.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
    assert_eq!(run.call(&mut store, 11).unwrap(), 11);

    // A tag of the same type but another identity is not caught by `catch $t`.
    let other_tag = Tag::new(
        &mut store,
        &TagType::new(FuncType::new(&engine, [ValType::I32], [])),
    )
    .unwrap();
    let a2 = Instance::new(&mut store, &thrower, &[other_tag.into()]).unwrap();
    let throw2 = a2.get_func(&mut store, "throw").unwrap();
    let b2 = Instance::new(&mut store, &catcher, &[host_tag.into(), throw2.into()]).unwrap();
    let run2 = b2.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
    let err = run2.call(&mut store, 1).expect_err("another tag");
    assert!(err.is::<ThrownException>(), "{err}");
}

#[test]
fn a_tag_import_of_another_type_is_refused_with_both_types() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let tag = Tag::new(
        &mut store,
        &TagType::new(FuncType::new(&engine, [ValType::I64], [])),
    )
    .unwrap();
    let module = Module::new(
        &engine,
        r#"(module (import "env" "tag" (tag (param i32))))"#,
    )
    .unwrap();
    let err = Instance::new(&mut store, &module, &[Extern::Tag(tag)]).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("env::tag"), "{message}");
    assert!(
        message.contains("(param i32)") && message.contains("(param i64)"),
        "{message}"
    );
    // A tag type has no results.
    let bad = TagType::new(FuncType::new(&engine, [], [ValType::I32]));
    assert!(Tag::new(&mut store, &bad).is_err());
}

#[test]
fn a_trap_is_never_caught_by_a_catch_all() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let host = no_op_host(&mut store);
    let instance = instantiate(&engine, host, &mut store);
    let f = instance
        .get_typed_func::<(), i32>(&mut store, "trap_in_try")
        .unwrap();
    let err = f.call(&mut store, ()).unwrap_err();
    assert_eq!(err.trap(), Some(Trap::UnreachableCodeReached), "{err}");
    assert!(!err.is::<ThrownException>());
}

#[test]
fn exceptions_work_in_precompiled_modules_and_with_the_pooling_allocator() {
    let mut config = Config::new();
    let mut pool = strata::PoolingAllocationConfig::new();
    pool.total_core_instances(4)
        .total_memories(4)
        .total_tables(4)
        .max_memory_size(1 << 20);
    config.allocation_strategy(strata::InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).unwrap();
    let bytes = engine.precompile_module(THROWER.as_bytes()).unwrap();
    // SAFETY: the artifact was just made by this engine.
    let module = unsafe { Module::deserialize(&engine, &bytes) }.unwrap();
    let mut store = Store::new(&engine, ());
    let host = no_op_host(&mut store);
    let instance = Instance::new(&mut store, &module, &[host.into()]).unwrap();
    let f = instance
        .get_typed_func::<i32, (i32, i64)>(&mut store, "catch")
        .unwrap();
    assert_eq!(f.call(&mut store, 77).unwrap(), (77, -9));
}

#[test]
fn exceptions_can_be_turned_off() {
    let mut config = Config::new();
    config.wasm_exceptions(false);
    let engine = Engine::new(&config).unwrap();
    let err = Module::new(&engine, "(module (tag))").unwrap_err();
    assert!(err.to_string().contains("exceptions"), "{err}");
}

/// Catches `host::wait`'s exceptions of its own tag `$e`, giving their field; throws
/// `$e` itself when asked to.
const ASYNC_CATCHER: &str = r#"
(module
  (tag $e (export "e") (param i32))
  (import "host" "wait" (func $wait (param i32)))
  (func (export "run") (param i32) (result i32)
    (block $h (result i32)
      (try_table (catch $e $h) (call $wait (local.get 0)))
      (i32.const -1)))
  (func (export "throw") (param i32) (throw $e (local.get 0))))
"#;

#[test]
fn exceptions_cross_async_host_functions_and_leave_call_async_as_errors() {
    let mut config = Config::new();
    config.async_support(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, ASYNC_CATCHER).unwrap();
    let tag = std::sync::Arc::new(std::sync::OnceLock::<Tag>::new());
    let mut linker = Linker::new(&engine);
    let host_tag = tag.clone();
    linker
        .func_wrap_async(
            "host",
            "wait",
            move |mut caller: strata::Caller<'_, ()>, (x,): (i32,)| {
                let tag = *host_tag.get().expect("set after instantiation");
                Box::new(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    let exn = ExnRef::new(&mut caller, &tag, &[Val::I32(x + 100)])?;
                    caller.throw::<()>(exn)?;
                    Ok(())
                })
            },
        )
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let e = instance
            .get_export(&mut store, "e")
            .unwrap()
            .into_tag()
            .unwrap();
        tag.set(e).unwrap();
        let run = instance
            .get_typed_func::<i32, i32>(&mut store, "run")
            .unwrap();
        // Thrown by the host after it was suspended, caught by its wasm caller.
        assert_eq!(run.call_async(&mut store, 1).await.unwrap(), 101);
        let throw = instance
            .get_typed_func::<i32, ()>(&mut store, "throw")
            .unwrap();
        let err = throw.call_async(&mut store, 6).await.unwrap_err();
        let thrown = err
            .downcast_ref::<ThrownException>()
            .expect("thrown")
            .clone();
        assert_eq!(thrown.exception().fields(&mut store)[0].i32(), Some(6));
    });
}

#[test]
fn tags_count_towards_the_pooling_allocators_instance_size_limit() {
    let mut pool = strata::PoolingAllocationConfig::new();
    pool.total_core_instances(2)
        .max_core_instance_size(16 << 10);
    let mut config = Config::new();
    config.allocation_strategy(strata::InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).unwrap();
    let mut store = Store::new(&engine, ());
    // 4,000 tags: a pointer and a definition each, about 48 KiB of vmctx.
    let many = format!("(module {})", "(tag (param i32))".repeat(4000));
    let module = Module::new(&engine, &many).unwrap();
    let err = Instance::new(&mut store, &module, &[]).unwrap_err();
    let message = format!("{err:?}");
    assert!(message.contains("max_core_instance_size"), "{message}");
    // A few tags fit, and the slot is free again for them.
    let few = Module::new(&engine, "(module (tag (param i32)) (tag))").unwrap();
    Instance::new(&mut store, &few, &[]).unwrap();
}

#[test]
fn an_exception_from_a_nested_call_is_rethrown_by_the_host_into_the_outer_wasm() {
    // wasm `outer` calls the host, which calls wasm `inner`, which throws; the host
    // passes the error on with `?` and `outer` catches the exception.
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let module = Module::new(
        &engine,
        r#"(module
             (import "host" "reenter" (func $reenter (param i32)))
             (tag $e (param i32))
             (func (export "inner") (param i32) (throw $e (local.get 0)))
             (func (export "outer") (param i32) (result i32)
               (block $h (result i32)
                 (try_table (catch $e $h) (call $reenter (local.get 0)))
                 (i32.const -1))))"#,
    )
    .unwrap();
    let reenter = Func::wrap(&mut store, |mut caller: strata::Caller<'_, ()>, x: i32| {
        let inner = caller
            .get_export("inner")
            .and_then(Extern::into_func)
            .expect("exported");
        inner.call(&mut caller, &[Val::I32(x + 1)], &mut [])
    });
    let instance = Instance::new(&mut store, &module, &[reenter.into()]).unwrap();
    let outer = instance
        .get_typed_func::<i32, i32>(&mut store, "outer")
        .unwrap();
    assert_eq!(outer.call(&mut store, 41).unwrap(), 42);
}
