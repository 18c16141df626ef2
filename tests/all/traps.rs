//! Every way wasm can fail at run time comes back as an `Err` carrying the trap code and
//! a backtrace of wasm frames; none of them hurts the host or the store.

use crate::instantiate;
use strata::{Engine, Func, Linker, Module, Store, Trap, Val};

const TRAPPING: &str = r#"
(module $traps
  (memory 1)
  (func $unreachable (export "unreachable") unreachable)
  (func $div (export "div") (param i32 i32) (result i32)
    (i32.div_s (local.get 0) (local.get 1)))
  (func $rem (export "rem") (param i64 i64) (result i64)
    (i64.rem_u (local.get 0) (local.get 1)))
  (func $load (export "load") (param i32) (result i32)
    (i32.load (local.get 0)))
  (func $store (export "store") (param i32)
    (i64.store offset=8 (local.get 0) (i64.const 1)))
  (func $recurse (export "recurse") (param i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func $overflow (export "overflow") (result i32)
    (i32.div_s (i32.const 0x80000000) (i32.const -1)))
  (func $convert (export "convert") (param f64) (result i32)
    (i32.trunc_f64_s (local.get 0)))
  (func $outer (export "outer") call $middle)
  (func $middle call $unreachable)
  (func (export "ok") (result i32) i32.const 7))
"#;

fn trap_of(err: &strata::Error) -> Trap {
    err.trap()
        .unwrap_or_else(|| panic!("expected a trap, got: {err:?}"))
}

#[test]
fn unreachable_traps_with_backtrace() {
    let (mut store, instance) = instantiate(TRAPPING);
    let f = instance
        .get_typed_func::<(), ()>(&mut store, "unreachable")
        .unwrap();
    let err = f.call(&mut store, ()).unwrap_err();
    assert_eq!(trap_of(&err), Trap::UnreachableCodeReached);
    assert!(err.to_string().contains("unreachable"), "{err}");
    let bt = err.wasm_backtrace().expect("traps carry a backtrace");
    assert_eq!(bt.frames()[0].func_name(), Some("unreachable"));
    assert_eq!(bt.frames()[0].module_name(), Some("traps"));
    assert!(bt.frames()[0].module_offset().is_some());
}

#[test]
fn backtraces_list_every_wasm_frame_innermost_first() {
    let (mut store, instance) = instantiate(TRAPPING);
    let f = instance
        .get_typed_func::<(), ()>(&mut store, "outer")
        .unwrap();
    let err = f.call(&mut store, ()).unwrap_err();
    let names: Vec<_> = err
        .wasm_backtrace()
        .unwrap()
        .frames()
        .iter()
        .map(|f| f.func_name().unwrap_or("?"))
        .collect();
    assert_eq!(names, ["unreachable", "middle", "outer"]);
    let debug = format!("{err:?}");
    assert!(debug.contains("middle"), "{debug}");
}

/// The frames of the trap of `export` in `TRAPPING`, compiled with inlining on or off:
/// `(function name, module offset)`, innermost first.
fn frames_of(export: &str, args: &[Val], inlining: bool) -> Vec<(String, Option<u32>)> {
    let mut config = strata::Config::new();
    config.compiler_inlining(inlining);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, TRAPPING).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = strata::Instance::new(&mut store, &module, &[]).unwrap();
    let f = instance.get_func(&mut store, export).unwrap();
    let err = f.call(&mut store, args, &mut []).unwrap_err();
    err.wasm_backtrace()
        .unwrap()
        .frames()
        .iter()
        .map(|f| (f.func_name().unwrap_or("?").to_string(), f.module_offset()))
        .collect()
}

#[test]
fn inlined_functions_keep_their_frames_and_offsets() {
    // `$unreachable` is a leaf, inlined into `$middle`; `$load`'s callers are the host.
    let frames = frames_of("outer", &[], true);
    assert_eq!(frames, frames_of("outer", &[], false));
    let names: Vec<&str> = frames.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["unreachable", "middle", "outer"]);
    assert!(
        frames.iter().all(|(_, offset)| offset.is_some()),
        "{frames:?}"
    );
}

#[test]
fn integer_division_traps() {
    let (mut store, instance) = instantiate(TRAPPING);
    let div = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "div")
        .unwrap();
    assert_eq!(div.call(&mut store, (7, 2)).unwrap(), 3);
    let err = div.call(&mut store, (7, 0)).unwrap_err();
    assert_eq!(trap_of(&err), Trap::IntegerDivisionByZero);
    let rem = instance
        .get_typed_func::<(i64, i64), i64>(&mut store, "rem")
        .unwrap();
    assert_eq!(
        trap_of(&rem.call(&mut store, (1, 0)).unwrap_err()),
        Trap::IntegerDivisionByZero
    );
    let overflow = instance
        .get_typed_func::<(), i32>(&mut store, "overflow")
        .unwrap();
    assert_eq!(
        trap_of(&overflow.call(&mut store, ()).unwrap_err()),
        Trap::IntegerOverflow
    );
}

#[test]
fn invalid_float_conversion_traps() {
    let (mut store, instance) = instantiate(TRAPPING);
    let f = instance
        .get_typed_func::<f64, i32>(&mut store, "convert")
        .unwrap();
    assert_eq!(f.call(&mut store, -7.9).unwrap(), -7);
    assert_eq!(
        trap_of(&f.call(&mut store, f64::NAN).unwrap_err()),
        Trap::BadConversionToInteger
    );
    assert_eq!(
        trap_of(&f.call(&mut store, 3e9).unwrap_err()),
        Trap::IntegerOverflow
    );
}

#[test]
fn out_of_bounds_memory_access_traps() {
    let (mut store, instance) = instantiate(TRAPPING);
    let load = instance
        .get_typed_func::<i32, i32>(&mut store, "load")
        .unwrap();
    let store_fn = instance
        .get_typed_func::<i32, ()>(&mut store, "store")
        .unwrap();
    assert_eq!(load.call(&mut store, 65532).unwrap(), 0);
    for address in [65533, 65536, -1, i32::MIN] {
        let err = load.call(&mut store, address).unwrap_err();
        assert_eq!(trap_of(&err), Trap::MemoryOutOfBounds, "load at {address}");
    }
    store_fn.call(&mut store, 65520).unwrap();
    for address in [65521, -8, -1] {
        let err = store_fn.call(&mut store, address).unwrap_err();
        assert_eq!(trap_of(&err), Trap::MemoryOutOfBounds, "store at {address}");
    }
}

#[test]
fn infinite_recursion_is_a_stack_overflow_trap() {
    let (mut store, instance) = instantiate(TRAPPING);
    let f = instance
        .get_typed_func::<i32, i32>(&mut store, "recurse")
        .unwrap();
    let err = f.call(&mut store, 0).unwrap_err();
    assert_eq!(trap_of(&err), Trap::StackOverflow);
    // Twice: the guard and the trap machinery must be usable again afterwards.
    let err = f.call(&mut store, 0).unwrap_err();
    assert_eq!(trap_of(&err), Trap::StackOverflow);
}

#[test]
fn the_store_stays_usable_after_every_kind_of_trap() {
    let (mut store, instance) = instantiate(TRAPPING);
    let ok = instance
        .get_typed_func::<(), i32>(&mut store, "ok")
        .unwrap();
    for name in ["unreachable", "outer", "overflow"] {
        let f = instance.get_func(&mut store, name).unwrap();
        let ty = f.ty(&store);
        let mut results = vec![Val::I32(0); ty.results().len()];
        assert!(f.call(&mut store, &[], &mut results).is_err());
        assert_eq!(ok.call(&mut store, ()).unwrap(), 7);
    }
}

#[test]
fn traps_on_other_threads_are_caught_there() {
    let engine = Engine::default();
    let module = Module::new(&engine, TRAPPING).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (engine, module) = (engine.clone(), module.clone());
            std::thread::spawn(move || {
                let mut store = Store::new(&engine, ());
                let instance = strata::Instance::new(&mut store, &module, &[]).unwrap();
                let f = instance
                    .get_typed_func::<i32, i32>(&mut store, "recurse")
                    .unwrap();
                trap_of(&f.call(&mut store, 0).unwrap_err())
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), Trap::StackOverflow);
    }
}

#[derive(Debug)]
struct HostFailure(u32);

impl std::fmt::Display for HostFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host failure {}", self.0)
    }
}

impl std::error::Error for HostFailure {}

const CALLS_HOST: &str = r#"
(module
  (import "host" "f" (func $f (param i32) (result i32)))
  (func $inner (param i32) (result i32) (call $f (local.get 0)))
  (func (export "run") (param i32) (result i32)
    (i32.add (call $inner (local.get 0)) (i32.const 1))))
"#;

#[test]
fn host_errors_reach_the_wasm_caller_unchanged() {
    let engine = Engine::default();
    let module = Module::new(&engine, CALLS_HOST).unwrap();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap("host", "f", |x: i32| -> strata::Result<i32> {
            if x < 0 {
                Err(strata::Error::new(HostFailure(42)))
            } else {
                Ok(x * 2)
            }
        })
        .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(run.call(&mut store, 5).unwrap(), 11);
    let err = run.call(&mut store, -1).unwrap_err();
    assert!(err.trap().is_none(), "a host error is not a trap: {err:?}");
    assert_eq!(err.downcast_ref::<HostFailure>().map(|h| h.0), Some(42));
    assert!(err.to_string().contains("host failure 42"), "{err}");
    let bt = err
        .wasm_backtrace()
        .expect("host errors carry the wasm frames");
    let names: Vec<_> = bt.frames().iter().map(|f| f.func_name()).collect();
    assert_eq!(
        names,
        [Some("inner"), None],
        "the export has no name in the name section"
    );
    assert_eq!(run.call(&mut store, 20).unwrap(), 41);
}

#[test]
fn host_panics_resume_on_the_host_side() {
    let engine = Engine::default();
    let module = Module::new(&engine, CALLS_HOST).unwrap();
    let mut store = Store::new(&engine, ());
    let f = Func::wrap(&mut store, |x: i32| -> i32 {
        assert!(x >= 0, "the host refuses {x}");
        x
    });
    let instance = strata::Instance::new(&mut store, &module, &[f.into()]).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    let payload =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.call(&mut store, -3)))
            .expect_err("the panic crosses wasm back to the host");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert_eq!(message, "the host refuses -3");
    // The store and its instance still work after the panic went through wasm frames.
    assert_eq!(run.call(&mut store, 3).unwrap(), 4);
}

#[test]
fn host_functions_can_raise_traps() {
    let engine = Engine::default();
    let module = Module::new(&engine, CALLS_HOST).unwrap();
    let mut store = Store::new(&engine, ());
    let f = Func::wrap(&mut store, |_: i32| -> strata::Result<i32> {
        Err(Trap::UnreachableCodeReached.into())
    });
    let instance = strata::Instance::new(&mut store, &module, &[f.into()]).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    let err = run.call(&mut store, 1).unwrap_err();
    assert_eq!(err.trap(), Some(Trap::UnreachableCodeReached));
}
