//! Wasm 3.0 tail calls: `return_call` and `return_call_indirect` replace the caller's
//! frame, so tail recursion of any depth runs in the default 512 KiB wasm stack, across
//! instances and into host functions too; traps, backtraces, stack overflow and fuel
//! keep working through them.

use crate::instantiate;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use strata::{Caller, Config, Engine, Instance, Linker, Module, Store, Trap, Val};

/// Deep enough that a frame of even a few bytes per level would overflow 512 KiB.
const DEEP: i32 = 10_000_000;

/// `even` and `odd` by mutual recursion, once with tail calls (`even`, `odd`), once
/// with `return_call_indirect` through a table (`even_indirect`, `odd_indirect`), and
/// once with plain calls (`even_plain`), which must overflow at depth [`DEEP`].
const EVEN_ODD: &str = r#"
(module
  (type $pred (func (param i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $even_indirect $odd_indirect)
  (func $even (export "even") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 1))
      (else (return_call $odd (i32.sub (local.get 0) (i32.const 1))))))
  (func $odd (export "odd") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (return_call $even (i32.sub (local.get 0) (i32.const 1))))))
  (func $even_indirect (export "even_indirect") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 1))
      (else (return_call_indirect (type $pred)
              (i32.sub (local.get 0) (i32.const 1)) (i32.const 1)))))
  (func $odd_indirect (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (return_call_indirect (type $pred)
              (i32.sub (local.get 0) (i32.const 1)) (i32.const 0)))))
  (func $even_plain (export "even_plain") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 1))
      (else (call $odd_plain (i32.sub (local.get 0) (i32.const 1))))))
  (func $odd_plain (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (call $even_plain (i32.sub (local.get 0) (i32.const 1)))))))
"#;

fn trap_of(err: &strata::Error) -> Trap {
    err.trap()
        .unwrap_or_else(|| panic!("expected a trap, got: {err:?}"))
}

/// The function names of `err`'s backtrace, innermost first.
fn frame_names(err: &strata::Error) -> Vec<String> {
    err.wasm_backtrace()
        .map(|bt| {
            bt.frames()
                .iter()
                .map(|f| f.func_name().unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn ten_million_deep_mutual_tail_recursion_runs_in_the_default_stack() {
    let (mut store, instance) = instantiate(EVEN_ODD);
    let even = instance
        .get_typed_func::<i32, i32>(&mut store, "even")
        .unwrap();
    let odd = instance
        .get_typed_func::<i32, i32>(&mut store, "odd")
        .unwrap();
    assert_eq!(even.call(&mut store, DEEP).unwrap(), 1);
    assert_eq!(even.call(&mut store, DEEP + 1).unwrap(), 0);
    assert_eq!(odd.call(&mut store, DEEP + 1).unwrap(), 1);

    // The same recursion with plain calls needs a frame per level: the depth is real.
    let plain = instance
        .get_typed_func::<i32, i32>(&mut store, "even_plain")
        .unwrap();
    assert_eq!(plain.call(&mut store, 100).unwrap(), 1);
    let err = plain.call(&mut store, DEEP).unwrap_err();
    assert_eq!(trap_of(&err), Trap::StackOverflow);
}

#[test]
fn ten_million_deep_return_call_indirect_runs_in_the_default_stack() {
    let (mut store, instance) = instantiate(EVEN_ODD);
    let even = instance
        .get_typed_func::<i32, i32>(&mut store, "even_indirect")
        .unwrap();
    assert_eq!(even.call(&mut store, DEEP).unwrap(), 1);
    assert_eq!(even.call(&mut store, DEEP + 1).unwrap(), 0);
    assert_eq!(even.call(&mut store, 0).unwrap(), 1);
}

/// Sixteen `i64` parameters besides the two vmctx pointers: more than fit in argument
/// registers, so the tail calls between `small` and `big` move the stack argument area
/// back and forth.
#[test]
fn tail_calls_between_functions_with_stack_arguments_stay_in_bounded_stack() {
    let params: String = (0..16).map(|_| " i64").collect();
    let sum: String = (0..16)
        .map(|i| format!("(local.get {})", i + 2))
        .fold("(local.get 1)".to_owned(), |acc, p| {
            format!("(i64.add {acc} {p})")
        });
    let consts: String = (1..=16).map(|i| format!(" (i64.const {i})")).collect();
    let wat = format!(
        r#"(module
             (func $small (export "small") (param i32 i64) (result i64)
               (if (result i64) (i32.eqz (local.get 0))
                 (then (local.get 1))
                 (else (return_call $big (i32.sub (local.get 0) (i32.const 1))
                         (local.get 1){consts}))))
             (func $big (param i32 i64{params}) (result i64)
               (return_call $small (local.get 0) {sum})))"#
    );
    let (mut store, instance) = instantiate(&wat);
    let small = instance
        .get_typed_func::<(i32, i64), i64>(&mut store, "small")
        .unwrap();
    // Each visit of `big` adds 1 + 2 + ... + 16.
    assert_eq!(small.call(&mut store, (3, 5)).unwrap(), 5 + 3 * 136);
    assert_eq!(
        small.call(&mut store, (DEEP, 0)).unwrap(),
        i64::from(DEEP) * 136
    );
}

/// `ping` (in `a`) tail-calls through its own table, into which `b` put its `pong`;
/// `pong` tail-calls `ping` as an import. Each counts its calls in a global of its own
/// instance, which only works if every callee runs with its own vmctx.
const PING: &str = r#"
(module $a
  (type $t (func (param i32) (result i32)))
  (table (export "t") 1 funcref)
  (global $calls (export "calls") (mut i32) (i32.const 0))
  (func $ping (export "ping") (param i32) (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 100))
      (else (return_call_indirect (type $t)
              (i32.sub (local.get 0) (i32.const 1)) (i32.const 0))))))
"#;

const PONG: &str = r#"
(module $b
  (type $t (func (param i32) (result i32)))
  (import "a" "t" (table 1 funcref))
  (import "a" "ping" (func $ping (type $t)))
  (global $calls (export "calls") (mut i32) (i32.const 0))
  (elem (i32.const 0) $pong)
  (func $pong (export "pong") (param i32) (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 200))
      (else (return_call $ping (i32.sub (local.get 0) (i32.const 1)))))))
"#;

#[test]
fn tail_calls_through_an_import_of_another_instance_keep_each_callee_vmctx() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let a = Instance::new(&mut store, &Module::new(&engine, PING).unwrap(), &[]).unwrap();
    let mut linker = Linker::new(&engine);
    linker.instance(&mut store, "a", a).unwrap();
    let b = linker
        .instantiate(&mut store, &Module::new(&engine, PONG).unwrap())
        .unwrap();
    let pong = b.get_typed_func::<i32, i32>(&mut store, "pong").unwrap();
    let calls = |store: &mut Store<()>, instance: Instance| {
        instance
            .get_global(&mut *store, "calls")
            .unwrap()
            .get(&mut *store)
            .i32()
            .unwrap()
    };

    // pong(n) -> ping(n - 1) -> pong(n - 2) ...: an even n ends in pong.
    assert_eq!(pong.call(&mut store, DEEP).unwrap(), 200);
    assert_eq!(calls(&mut store, a), DEEP / 2);
    assert_eq!(calls(&mut store, b), DEEP / 2 + 1);
    assert_eq!(pong.call(&mut store, DEEP + 1).unwrap(), 100);
    assert_eq!(calls(&mut store, a), DEEP + 1);
    assert_eq!(calls(&mut store, b), DEEP + 2);
}

#[derive(Debug)]
struct HostFailure;

impl std::fmt::Display for HostFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the host refuses")
    }
}

impl std::error::Error for HostFailure {}

/// Tail calls into the host function `host.f`, which doubles its argument and adds the
/// calling instance's global `id`, or fails on a negative argument.
const TAIL_CALLS_HOST: &str = r#"
(module $m
  (import "host" "f" (func $f (param i32) (result i32)))
  (global (export "id") i32 (i32.const 7))
  (func $via_tail (param i32) (result i32) (return_call $f (local.get 0)))
  (func $outer (export "outer") (param i32) (result i32)
    (i32.add (call $via_tail (local.get 0)) (i32.const 1)))
  (func $direct (export "direct") (param i32) (result i32) (return_call $f (local.get 0)))
  (func $plain (export "plain") (param i32) (result i32) (call $f (local.get 0)))
  (func $count (export "count") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (return_call $f (i32.const 21)))
      (else (return_call $count (i32.sub (local.get 0) (i32.const 1)))))))
"#;

/// A linker with `host.f`, which records how deep in the stack it ran in `depth`.
fn host_linker(engine: &Engine, depth: Arc<AtomicUsize>) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap(
            "host",
            "f",
            move |mut caller: Caller<'_, ()>, x: i32| -> strata::Result<i32> {
                let here = 0u8;
                depth.store(
                    std::hint::black_box(&here) as *const u8 as usize,
                    Ordering::Relaxed,
                );
                if x < 0 {
                    return Err(strata::Error::new(HostFailure));
                }
                let id = caller
                    .get_export("id")
                    .and_then(strata::Extern::into_global)
                    .expect("the caller exports its id")
                    .get(&mut caller);
                Ok(x * 2 + id.i32().unwrap())
            },
        )
        .unwrap();
    linker
}

/// A tail call into a host function is a real tail call: the wasm-to-host trampoline
/// uses the wasm calling convention, so it takes the place of the frame that called it
/// (see "Tail calls" in docs/design/overview.md). The host sees the instance that made
/// the call as its caller, the stack does not grow with the tail calls before it, and a
/// host error's backtrace lacks the replaced frame.
#[test]
fn a_tail_call_to_a_host_function_replaces_the_callers_frame() {
    let engine = Engine::default();
    let depth = Arc::new(AtomicUsize::new(0));
    let linker = host_linker(&engine, depth.clone());
    let mut store = Store::new(&engine, ());
    let m = linker
        .instantiate(&mut store, &Module::new(&engine, TAIL_CALLS_HOST).unwrap())
        .unwrap();
    let outer = m.get_typed_func::<i32, i32>(&mut store, "outer").unwrap();
    let direct = m.get_typed_func::<i32, i32>(&mut store, "direct").unwrap();
    let count = m.get_typed_func::<i32, i32>(&mut store, "count").unwrap();
    let plain = m.get_typed_func::<i32, i32>(&mut store, "plain").unwrap();

    assert_eq!(outer.call(&mut store, 5).unwrap(), 5 * 2 + 7 + 1);
    assert_eq!(direct.call(&mut store, 5).unwrap(), 5 * 2 + 7);

    // The host runs at the same depth after no tail calls and after ten million.
    let mut run = |f: &strata::TypedFunc<i32, i32>, n: i32, expected: i32| {
        assert_eq!(f.call(&mut store, n).unwrap(), expected);
        depth.load(Ordering::Relaxed)
    };
    let counted = 21 * 2 + 7;
    let depths = [
        run(&count, 0, counted),
        run(&count, DEEP, counted),
        run(&count, 0, counted),
    ];
    assert_ne!(depths[0], 0);
    assert_eq!(depths, [depths[0]; 3]);
    // And called straight from an export, it runs in the export's place: above where a
    // plain call from the same export runs it (the stack grows down).
    let (tail, plain) = (run(&direct, 3, 13), run(&plain, 3, 13));
    assert!(
        tail > plain,
        "tail-called at {tail:#x}, called at {plain:#x}"
    );

    // `via_tail` gave its frame to the host call: only `outer` is left.
    let err = outer.call(&mut store, -1).unwrap_err();
    assert!(err.downcast_ref::<HostFailure>().is_some(), "{err:?}");
    assert_eq!(frame_names(&err), ["outer"]);
    // No wasm frame is left at all when the export itself tail-called the host.
    let err = direct.call(&mut store, -1).unwrap_err();
    assert!(err.downcast_ref::<HostFailure>().is_some(), "{err:?}");
    assert_eq!(frame_names(&err), Vec::<String>::new());
    // The store is fine afterwards.
    assert_eq!(outer.call(&mut store, 1).unwrap(), 10);
}

#[test]
fn a_host_function_tail_called_through_another_instance_sees_the_last_caller() {
    let engine = Engine::default();
    let depth = Arc::new(AtomicUsize::new(0));
    let mut linker = host_linker(&engine, depth);
    let mut store = Store::new(&engine, ());
    let m = linker
        .instantiate(&mut store, &Module::new(&engine, TAIL_CALLS_HOST).unwrap())
        .unwrap();
    linker.instance(&mut store, "m", m).unwrap();
    let n = linker
        .instantiate(
            &mut store,
            &Module::new(
                &engine,
                r#"(module
                     (import "m" "count" (func $count (param i32) (result i32)))
                     (global (export "id") i32 (i32.const 9))
                     (func (export "run") (param i32) (result i32)
                       (return_call $count (local.get 0))))"#,
            )
            .unwrap(),
        )
        .unwrap();
    let run = n.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
    // `m`'s `count` made the call to the host, so the host reads `m`'s id, not `n`'s.
    assert_eq!(run.call(&mut store, 1000).unwrap(), 21 * 2 + 7);
}

/// `even` and `odd` by tail calls; `even(0)` traps. `outer` calls `even` plainly.
const TRAP_AFTER_TAIL_CALLS: &str = r#"
(module $tails
  (type $t (func (param i32) (result i32)))
  (table 3 funcref)
  (elem (i32.const 0) $even $odd)
  (func $even (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then unreachable)
      (else (return_call $odd (i32.sub (local.get 0) (i32.const 1))))))
  (func $odd (param i32) (result i32)
    (return_call_indirect (type $t) (i32.sub (local.get 0) (i32.const 1)) (i32.const 0)))
  (func $outer (export "outer") (param i32) (result i32)
    (i32.add (call $even (local.get 0)) (i32.const 1)))
  (func $indirect (param i32 i32) (result i32)
    (return_call_indirect (type $t) (local.get 0) (local.get 1)))
  (func $wrong_type (param i32 i32) (result i32)
    (return_call_indirect (param i32 i32) (result i32)
      (local.get 0) (local.get 0) (local.get 1)))
  (func (export "indirect") (param i32 i32) (result i32)
    (i32.add (call $indirect (local.get 0) (local.get 1)) (i32.const 1)))
  (func (export "wrong_type") (param i32 i32) (result i32)
    (i32.add (call $wrong_type (local.get 0) (local.get 1)) (i32.const 1))))
"#;

#[test]
fn a_trap_after_tail_calls_has_the_callee_in_place_of_its_tail_callers() {
    let (mut store, instance) = instantiate(TRAP_AFTER_TAIL_CALLS);
    let outer = instance
        .get_typed_func::<i32, i32>(&mut store, "outer")
        .unwrap();
    // No tail call: `even` traps at once.
    let direct = outer.call(&mut store, 0).unwrap_err();
    assert_eq!(trap_of(&direct), Trap::UnreachableCodeReached);
    assert_eq!(frame_names(&direct), ["even", "outer"]);
    // A thousand tail calls later the stack looks the same: every tail caller's frame
    // was replaced, and the walk still reaches `outer`.
    let after = outer.call(&mut store, 1000).unwrap_err();
    assert_eq!(trap_of(&after), Trap::UnreachableCodeReached);
    assert_eq!(frame_names(&after), ["even", "outer"]);
    let offsets = |err: &strata::Error| -> Vec<Option<u32>> {
        let bt = err.wasm_backtrace().unwrap();
        bt.frames().iter().map(|f| f.module_offset()).collect()
    };
    assert_eq!(offsets(&direct), offsets(&after));
    assert!(offsets(&after).iter().all(Option::is_some));
    assert_eq!(
        after.wasm_backtrace().unwrap().frames()[0].module_name(),
        Some("tails")
    );
    // Deeper than the stack could hold with plain calls.
    let deep = outer.call(&mut store, DEEP).unwrap_err();
    assert_eq!(frame_names(&deep), ["even", "outer"]);
}

#[test]
fn return_call_indirect_traps_like_call_indirect_in_the_callers_frame() {
    let (mut store, instance) = instantiate(TRAP_AFTER_TAIL_CALLS);
    let indirect = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "indirect")
        .unwrap();
    let wrong_type = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "wrong_type")
        .unwrap();
    // Element 1 is `odd`, which tail-calls `even` (element 0), which traps at 0.
    let err = indirect.call(&mut store, (1, 1)).unwrap_err();
    assert_eq!(trap_of(&err), Trap::UnreachableCodeReached);
    assert_eq!(frame_names(&err), ["even", "?"]);
    for ((value, element), trap) in [
        ((0, 2), Trap::IndirectCallToNull),
        ((0, 3), Trap::TableOutOfBounds),
        ((0, -1), Trap::TableOutOfBounds),
    ] {
        let err = indirect.call(&mut store, (value, element)).unwrap_err();
        assert_eq!(trap_of(&err), trap, "element {element}");
        // The check failed before the tail call: `indirect` is still on the stack.
        assert_eq!(frame_names(&err), ["indirect", "?"], "element {element}");
    }
    let err = wrong_type.call(&mut store, (0, 0)).unwrap_err();
    assert_eq!(trap_of(&err), Trap::BadSignature);
    assert_eq!(frame_names(&err), ["wrong_type", "?"]);
}

#[test]
fn recursion_that_only_partly_tail_calls_still_overflows_the_stack() {
    // `f` calls `g` plainly and `g` tail-calls `f`: one frame per round.
    let (mut store, instance) = instantiate(
        r#"(module
             (func $f (export "f") (param i32) (result i32)
               (i32.add (call $g (local.get 0)) (i32.const 1)))
             (func $g (param i32) (result i32)
               (return_call $f (i32.add (local.get 0) (i32.const 1)))))"#,
    );
    let f = instance
        .get_typed_func::<i32, i32>(&mut store, "f")
        .unwrap();
    for _ in 0..2 {
        let err = f.call(&mut store, 0).unwrap_err();
        assert_eq!(trap_of(&err), Trap::StackOverflow);
    }
}

#[test]
fn tail_calls_need_the_feature() {
    let mut config = Config::new();
    config.wasm_tail_call(false);
    let engine = Engine::new(&config).unwrap();
    for wat in [
        r#"(module (func $f (return_call $f)))"#,
        r#"(module (type $t (func)) (table 1 funcref)
             (func (return_call_indirect (type $t) (i32.const 0))))"#,
    ] {
        let err = Module::new(&engine, wat).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("tail call"), "{message}");
    }
    // On by default.
    assert!(Module::new(&Engine::default(), r#"(module (func $f (return_call $f)))"#).is_ok());
}

#[test]
fn fuel_is_counted_through_tail_calls_and_stops_a_tail_call_loop() {
    let mut config = Config::new();
    config.consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module
             (func $count (export "count") (param i32) (result i32)
               (if (result i32) (i32.eqz (local.get 0))
                 (then (i32.const 0))
                 (else (return_call $count (i32.sub (local.get 0) (i32.const 1))))))
             (func $forever (export "forever") (return_call $forever)))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let count = instance
        .get_typed_func::<i32, i32>(&mut store, "count")
        .unwrap();
    let used = |store: &mut Store<()>, n: i32| {
        store.set_fuel(u64::MAX / 2).unwrap();
        assert_eq!(count.call(&mut *store, n).unwrap(), 0);
        u64::MAX / 2 - store.get_fuel().unwrap()
    };
    // The last level: local.get, i32.eqz, if, i32.const. Each level before it also
    // costs local.get, i32.eqz, if and then local.get, i32.const, i32.sub, return_call.
    assert_eq!(used(&mut store, 0), 4);
    assert_eq!(used(&mut store, 1), 4 + 7);
    assert_eq!(used(&mut store, 1000), 4 + 7 * 1000);
    assert_eq!(used(&mut store, DEEP), 4 + 7 * DEEP as u64);

    // A loop made of tail calls checks fuel at every function entry.
    store.set_fuel(10_000).unwrap();
    let forever = instance
        .get_typed_func::<(), ()>(&mut store, "forever")
        .unwrap();
    let err = forever.call(&mut store, ()).unwrap_err();
    assert_eq!(trap_of(&err), Trap::OutOfFuel);
    assert_eq!(store.get_fuel().unwrap(), 0);
    // Too little fuel stops a deep tail recursion part of the way.
    store.set_fuel(1000).unwrap();
    let err = count.call(&mut store, DEEP).unwrap_err();
    assert_eq!(trap_of(&err), Trap::OutOfFuel);
}

#[test]
fn an_epoch_deadline_stops_a_tail_call_loop() {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(
        &engine,
        r#"(module
             (func $forever (export "forever") (param i32) (result i32)
               (return_call $forever (i32.add (local.get 0) (i32.const 1)))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let forever = instance
        .get_typed_func::<i32, i32>(&mut store, "forever")
        .unwrap();
    store.set_epoch_deadline(1);
    let bumper = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            engine.increment_epoch();
        })
    };
    let err = forever.call(&mut store, 0).unwrap_err();
    bumper.join().unwrap();
    assert_eq!(trap_of(&err), Trap::Interrupt);
    assert_eq!(frame_names(&err), ["forever"]);
}

#[test]
fn tail_calls_pass_every_value_type() {
    let (mut store, instance) = instantiate(
        r#"(module
             (func $swap (param i32 i64 f32 f64 v128) (result f64 f32 i64 i32 v128)
               (local.get 3) (local.get 2) (local.get 1) (local.get 0) (local.get 4))
             (func (export "run") (param i32 i64 f32 f64) (result f64 f32 i64 i32 v128)
               (return_call $swap (local.get 0) (local.get 1) (local.get 2) (local.get 3)
                 (v128.const i64x2 5 6))))"#,
    );
    let run = instance.get_func(&mut store, "run").unwrap();
    let mut results = [
        Val::I32(0),
        Val::I32(0),
        Val::I32(0),
        Val::I32(0),
        Val::I32(0),
    ];
    run.call(
        &mut store,
        &[
            Val::I32(1),
            Val::I64(2),
            Val::F32(3.5f32.to_bits()),
            Val::F64(4.25f64.to_bits()),
        ],
        &mut results,
    )
    .unwrap();
    assert_eq!(results[0].f64(), Some(4.25));
    assert_eq!(results[1].f32(), Some(3.5));
    assert_eq!(results[2].i64(), Some(2));
    assert_eq!(results[3].i32(), Some(1));
    assert!(
        matches!(results[4], Val::V128(v) if v == 5 | (6 << 64)),
        "{:?}",
        results[4]
    );
}

/// A host function reached by a tail call calls back into wasm, which traps: the walk
/// through the outer activation starts from the trampoline's exit record, whose return
/// address is now in the tail caller's caller (here `outer`, or the entry trampoline).
#[test]
fn a_trap_under_a_tail_called_host_function_walks_the_outer_activation() {
    let engine = Engine::default();
    let mut linker = Linker::<()>::new(&engine);
    linker
        .func_wrap(
            "host",
            "f",
            |mut caller: Caller<'_, ()>, x: i32| -> strata::Result<i32> {
                let boom = caller
                    .get_export("boom")
                    .and_then(strata::Extern::into_func)
                    .expect("the caller exports boom")
                    .typed::<i32, i32>(&caller)?;
                boom.call(&mut caller, x)
            },
        )
        .unwrap();
    let module = Module::new(
        &engine,
        r#"(module $reentry
             (import "host" "f" (func $f (param i32) (result i32)))
             (func $boom (export "boom") (param i32) (result i32)
               (if (result i32) (local.get 0) (then unreachable) (else (i32.const 5))))
             (func $via_tail (param i32) (result i32) (return_call $f (local.get 0)))
             (func $via_call (param i32) (result i32) (call $f (local.get 0)))
             (func (export "outer_tail") (param i32) (result i32)
               (i32.add (call $via_tail (local.get 0)) (i32.const 1)))
             (func (export "outer_call") (param i32) (result i32)
               (i32.add (call $via_call (local.get 0)) (i32.const 1)))
             (func (export "direct") (param i32) (result i32)
               (return_call $f (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let get = |store: &mut Store<()>, name: &str| {
        instance
            .get_typed_func::<i32, i32>(&mut *store, name)
            .unwrap()
    };
    let (outer_tail, outer_call, direct) = (
        get(&mut store, "outer_tail"),
        get(&mut store, "outer_call"),
        get(&mut store, "direct"),
    );
    assert_eq!(outer_tail.call(&mut store, 0).unwrap(), 6);
    assert_eq!(direct.call(&mut store, 0).unwrap(), 5);

    let err = outer_call.call(&mut store, 1).unwrap_err();
    assert_eq!(trap_of(&err), Trap::UnreachableCodeReached);
    assert_eq!(frame_names(&err), ["boom", "via_call", "?"]);
    let err = outer_tail.call(&mut store, 1).unwrap_err();
    assert_eq!(trap_of(&err), Trap::UnreachableCodeReached);
    assert_eq!(frame_names(&err), ["boom", "?"]);
    let err = direct.call(&mut store, 1).unwrap_err();
    assert_eq!(trap_of(&err), Trap::UnreachableCodeReached);
    assert_eq!(frame_names(&err), ["boom"]);
}
