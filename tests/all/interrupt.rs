//! Stopping wasm from outside: fuel and epoch deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use strata::{Config, Engine, Instance, Linker, Module, Store, Trap, UpdateDeadline};

const SPIN: &str = r#"
(module
  (func (export "spin") (loop $l (br $l)))
  (func (export "three") (result i32)
    i32.const 1
    i32.const 2
    i32.add)
  (func $down (param i32)
    (if (local.get 0)
      (then (call $down (i32.sub (local.get 0) (i32.const 1))))))
  (func (export "recurse") (param i32) (call $down (local.get 0))))
"#;

fn engine(tweak: impl FnOnce(&mut Config)) -> Engine {
    let mut config = Config::new();
    tweak(&mut config);
    Engine::new(&config).unwrap()
}

/// A store holding `data` with an instance of [`SPIN`].
fn spin<T>(engine: &Engine, data: T) -> (Store<T>, Instance) {
    let module = Module::new(engine, SPIN).unwrap();
    let mut store = Store::new(engine, data);
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    (store, instance)
}

fn trap_of(e: &strata::Error) -> Option<Trap> {
    e.downcast_ref::<Trap>().copied()
}

#[test]
fn fuel_stops_an_infinite_loop_and_can_be_refilled() {
    let engine = engine(|c| {
        c.consume_fuel(true);
    });
    let (mut store, instance) = spin(&engine, ());
    let spin = instance
        .get_typed_func::<(), ()>(&mut store, "spin")
        .unwrap();
    let three = instance
        .get_typed_func::<(), i32>(&mut store, "three")
        .unwrap();

    store.set_fuel(10_000).unwrap();
    let err = spin.call(&mut store, ()).unwrap_err();
    assert_eq!(trap_of(&err), Some(Trap::OutOfFuel), "{err:?}");
    assert_eq!(store.get_fuel().unwrap(), 0);

    // A store with no fuel left runs nothing; with fuel it runs again.
    let err = three.call(&mut store, ()).unwrap_err();
    assert_eq!(trap_of(&err), Some(Trap::OutOfFuel));
    store.set_fuel(100).unwrap();
    assert_eq!(three.call(&mut store, ()).unwrap(), 3);
    // Two constants and an add; `end` is free.
    assert_eq!(store.get_fuel().unwrap(), 97);
    // More than the counter compiled code uses holds is kept in reserve.
    store.set_fuel(u64::MAX).unwrap();
    assert_eq!(store.get_fuel().unwrap(), u64::MAX);
    assert_eq!(three.call(&mut store, ()).unwrap(), 3);
    assert_eq!(store.get_fuel().unwrap(), u64::MAX - 3);
}

#[test]
fn fuel_is_counted_across_calls() {
    let engine = engine(|c| {
        c.consume_fuel(true);
    });
    let (mut store, instance) = spin(&engine, ());
    let recurse = instance
        .get_typed_func::<i32, ()>(&mut store, "recurse")
        .unwrap();
    store.set_fuel(1_000_000).unwrap();
    recurse.call(&mut store, 10).unwrap();
    let used_10 = 1_000_000 - store.get_fuel().unwrap();
    store.set_fuel(1_000_000).unwrap();
    recurse.call(&mut store, 20).unwrap();
    let used_20 = 1_000_000 - store.get_fuel().unwrap();
    // Each level costs the same: local.get, if, local.get, i32.const, i32.sub, call.
    assert_eq!(used_20 - used_10, 10 * 6, "{used_10} then {used_20}");
    // Too little fuel stops the recursion part of the way down.
    store.set_fuel(100).unwrap();
    let err = recurse.call(&mut store, 1000).unwrap_err();
    assert_eq!(trap_of(&err), Some(Trap::OutOfFuel));
}

#[test]
fn host_functions_see_and_change_the_fuel() {
    let engine = engine(|c| {
        c.consume_fuel(true);
    });
    let module = Module::new(
        &engine,
        r#"(module
             (import "host" "refill" (func $refill))
             (func (export "run") (result i32)
               (local $i i32)
               (loop $l
                 (local.set $i (i32.add (local.get $i) (i32.const 1)))
                 (if (i32.eq (local.get $i) (i32.const 50)) (then (call $refill)))
                 (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))
               (local.get $i)))"#,
    )
    .unwrap();
    let mut linker = Linker::new(&engine);
    let seen = Arc::new(AtomicU32::new(0));
    let seen2 = seen.clone();
    linker
        .func_wrap(
            "host",
            "refill",
            move |mut caller: strata::Caller<'_, ()>| {
                let left = caller.get_fuel().unwrap();
                seen2.store(u32::try_from(left).unwrap(), Ordering::Relaxed);
                caller.set_fuel(1_000).unwrap();
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    // Not enough for 100 iterations of about 14 units, enough for 50 with the refill.
    store.set_fuel(900).unwrap();
    assert_eq!(run.call(&mut store, ()).unwrap(), 100);
    let at_refill = seen.load(Ordering::Relaxed);
    assert!(at_refill > 0 && at_refill < 900, "{at_refill}");
    assert!(store.get_fuel().unwrap() < 1_000);
}

#[test]
fn fuel_needs_the_engine_setting() {
    let mut store = Store::new(&Engine::default(), ());
    let err = store.set_fuel(1).unwrap_err();
    assert!(err.to_string().contains("consume_fuel"), "{err}");
    assert!(store.get_fuel().is_err());
}

fn epoch_engine() -> Engine {
    engine(|c| {
        c.epoch_interruption(true);
    })
}

#[test]
fn an_epoch_bump_from_another_thread_stops_an_infinite_loop() {
    let engine = epoch_engine();
    let (mut store, instance) = spin(&engine, ());
    let spin = instance
        .get_typed_func::<(), ()>(&mut store, "spin")
        .unwrap();
    store.set_epoch_deadline(1);
    let ticker = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            engine.increment_epoch();
        })
    };
    let err = spin.call(&mut store, ()).unwrap_err();
    ticker.join().unwrap();
    assert_eq!(trap_of(&err), Some(Trap::Interrupt), "{err:?}");
    assert!(err.to_string().contains("interrupt"), "{err}");

    // The store runs again once it has a deadline ahead.
    store.set_epoch_deadline(1);
    let three = instance
        .get_typed_func::<(), i32>(&mut store, "three")
        .unwrap();
    assert_eq!(three.call(&mut store, ()).unwrap(), 3);
}

#[test]
fn a_reached_deadline_stops_at_the_next_function_entry() {
    let engine = epoch_engine();
    let (mut store, instance) = spin(&engine, ());
    let three = instance
        .get_typed_func::<(), i32>(&mut store, "three")
        .unwrap();
    // No deadline set: the deadline is the current epoch, already reached.
    let err = three.call(&mut store, ()).unwrap_err();
    assert_eq!(trap_of(&err), Some(Trap::Interrupt));
    store.set_epoch_deadline(2);
    engine.increment_epoch();
    assert_eq!(three.call(&mut store, ()).unwrap(), 3);
    engine.increment_epoch();
    assert_eq!(
        trap_of(&three.call(&mut store, ()).unwrap_err()),
        Some(Trap::Interrupt)
    );
}

#[test]
fn an_epoch_callback_extends_the_deadline_then_stops() {
    let engine = epoch_engine();
    let (mut store, instance) = spin(&engine, 0u32);
    let spin = instance
        .get_typed_func::<(), ()>(&mut store, "spin")
        .unwrap();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        *ctx.data_mut() += 1;
        Ok(if *ctx.data() < 3 {
            UpdateDeadline::Continue(1)
        } else {
            UpdateDeadline::Interrupt
        })
    });
    let ticker = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(5));
                engine.increment_epoch();
            }
        })
    };
    let err = spin.call(&mut store, ()).unwrap_err();
    assert_eq!(trap_of(&err), Some(Trap::Interrupt));
    assert_eq!(*store.data(), 3, "called at each reached deadline");

    // An error from the callback comes back as it is.
    store.epoch_deadline_callback(|_| Err(strata::Error::msg("out of time budget")));
    store.set_epoch_deadline(1);
    let err = spin.call(&mut store, ()).unwrap_err();
    ticker.join().unwrap();
    assert_eq!(err.to_string(), "out of time budget");
    assert!(err.downcast_ref::<strata::WasmBacktrace>().is_some());
}

#[test]
fn a_panicking_epoch_callback_reaches_the_caller() {
    let engine = epoch_engine();
    let (mut store, instance) = spin(&engine, ());
    let three = instance
        .get_typed_func::<(), i32>(&mut store, "three")
        .unwrap();
    store.epoch_deadline_callback(|_| panic!("callback gave up"));
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| three.call(&mut store, ())));
    let payload = result.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"callback gave up"));
    // The store is still usable.
    store.epoch_deadline_trap();
    store.set_epoch_deadline(1);
    assert_eq!(three.call(&mut store, ()).unwrap(), 3);
}
