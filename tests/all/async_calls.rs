//! Async execution: wasm on fibers, async host functions, yielding on fuel and epochs,
//! async resource limits, cancellation, and moving suspended calls between threads.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use strata::{
    Caller, Config, Engine, Func, InstanceAllocationStrategy, Linker, Module,
    PoolingAllocationConfig, ResourceLimiterAsync, Store, Trap, UpdateDeadline, Val,
};

fn async_engine(tweak: impl FnOnce(&mut Config)) -> Engine {
    let mut config = Config::new();
    config.async_support(true);
    tweak(&mut config);
    Engine::new(&config).unwrap()
}

fn trap_of(e: &strata::Error) -> Option<Trap> {
    e.downcast_ref::<Trap>().copied()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Polls `future` once with a waker that does nothing.
fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// Polls `future` until it is ready; its output and how often it was pending.
fn poll_to_end<F: Future>(future: F) -> (F::Output, usize) {
    let mut future = pin!(future);
    let mut pending = 0;
    loop {
        match poll_once(future.as_mut()) {
            Poll::Pending => pending += 1,
            Poll::Ready(output) => return (output, pending),
        }
    }
}

/// Calls `host::wait` (which returns its argument plus one) and traps if asked to.
const WAITER: &str = r#"
(module
  (import "host" "wait" (func $wait (param i32) (result i32)))
  (func (export "run") (param i32) (result i32)
    (call $wait (local.get 0)))
  (func $fail (unreachable))
  (func (export "run_then_trap") (param i32) (result i32)
    (drop (call $wait (local.get 0)))
    (call $fail)
    (i32.const 0)))
"#;

/// An async engine, the [`WAITER`] module, and a linker with `wait` as `host::wait`.
fn waiter<F>(wait: F) -> (Engine, Module, Linker<()>)
where
    F: for<'a> Fn(Caller<'a, ()>, (i32,)) -> Box<dyn Future<Output = i32> + Send + 'a>
        + Send
        + Sync
        + 'static,
{
    let engine = async_engine(|_| {});
    let module = Module::new(&engine, WAITER).unwrap();
    let mut linker = Linker::new(&engine);
    linker.func_wrap_async("host", "wait", wait).unwrap();
    (engine, module, linker)
}

#[test]
fn async_calls_run_wasm_that_waits_for_async_host_functions() {
    let engine = async_engine(|_| {});
    let module = Module::new(&engine, WAITER).unwrap();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async(
            "host",
            "wait",
            |mut caller: Caller<'_, u32>, (x,): (i32,)| {
                Box::new(async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    *caller.data_mut() += 1;
                    x + 1
                })
            },
        )
        .unwrap();
    current_thread().block_on(async {
        let mut store = Store::new(&engine, 0_u32);
        let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
        let run = instance
            .get_typed_func::<i32, i32>(&mut store, "run")
            .unwrap();
        assert_eq!(run.call_async(&mut store, 41).await.unwrap(), 42);

        let untyped = instance.get_func(&mut store, "run").unwrap();
        let mut results = [Val::I32(0)];
        untyped
            .call_async(&mut store, &[Val::I32(1)], &mut results)
            .await
            .unwrap();
        assert!(matches!(results, [Val::I32(2)]));
        assert_eq!(*store.data(), 2, "the host function ran twice");
    });
}

#[test]
fn a_thousand_instances_wait_for_a_timer_at_once_on_one_thread() {
    const INSTANCES: usize = 1000;
    let engine = async_engine(|_| {});
    let module = Module::new(&engine, WAITER).unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(INSTANCES));
    let waiting = Arc::new(AtomicUsize::new(0));
    let most_waiting = Arc::new(AtomicUsize::new(0));
    let mut linker = Linker::new(&engine);
    {
        let (barrier, waiting, most_waiting) =
            (barrier.clone(), waiting.clone(), most_waiting.clone());
        linker
            .func_wrap_async("host", "wait", move |_: Caller<'_, ()>, (x,): (i32,)| {
                let (barrier, waiting, most_waiting) =
                    (barrier.clone(), waiting.clone(), most_waiting.clone());
                Box::new(async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    let now = waiting.fetch_add(1, Ordering::Relaxed) + 1;
                    most_waiting.fetch_max(now, Ordering::Relaxed);
                    // Released only once every instance waits here: all of them are
                    // suspended in the middle of their wasm at the same time.
                    barrier.wait().await;
                    waiting.fetch_sub(1, Ordering::Relaxed);
                    x * 2
                })
            })
            .unwrap();
    }
    let linker = Arc::new(linker);
    let sum = current_thread().block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..INSTANCES {
            let (engine, module, linker) = (engine.clone(), module.clone(), linker.clone());
            // `spawn` takes only `Send` futures: async calls are.
            tasks.spawn(async move {
                let mut store = Store::new(&engine, ());
                let instance = linker.instantiate_async(&mut store, &module).await?;
                let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
                run.call_async(&mut store, i32::try_from(i).unwrap()).await
            });
        }
        let all = async {
            let mut sum = 0_i64;
            while let Some(result) = tasks.join_next().await {
                sum += i64::from(result.unwrap().unwrap());
            }
            sum
        };
        tokio::time::timeout(Duration::from_secs(300), all)
            .await
            .expect("the instances deadlocked instead of waiting together")
    });
    let n = INSTANCES as i64;
    assert_eq!(sum, n * (n - 1), "each returned twice its index");
    assert_eq!(most_waiting.load(Ordering::Relaxed), INSTANCES);
}

#[test]
fn a_panic_in_an_async_host_function_reaches_the_caller() {
    let (engine, module, linker) = waiter(|_, (x,)| {
        Box::new(async move {
            tokio::task::yield_now().await;
            if x == 13 {
                panic!("unlucky number {x}");
            }
            x
        })
    });
    let rt = current_thread();
    let mut store = Store::new(&engine, ());
    let instance = rt
        .block_on(linker.instantiate_async(&mut store, &module))
        .unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(run.call_async(&mut store, 13))
    }))
    .expect_err("the panic propagates");
    let message = payload.downcast_ref::<String>().unwrap();
    assert_eq!(message, "unlucky number 13");
    // The store and its instance are still usable.
    assert_eq!(rt.block_on(run.call_async(&mut store, 5)).unwrap(), 5);
}

#[test]
fn sync_and_async_entry_points_refuse_the_other_kind_of_engine() {
    let module_text = r#"(module (func (export "f")))"#;

    let engine = async_engine(|_| {});
    let module = Module::new(&engine, module_text).unwrap();
    let mut store = Store::new(&engine, ());
    let err = strata::Instance::new(&mut store, &module, &[]).unwrap_err();
    assert!(
        err.to_string().contains("use `Instance::new_async`"),
        "{err}"
    );
    let err = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .unwrap_err();
    assert!(err.to_string().contains("Instance::new_async"), "{err}");
    let rt = current_thread();
    let instance = rt
        .block_on(strata::Instance::new_async(&mut store, &module, &[]))
        .unwrap();
    let f = instance.get_typed_func::<(), ()>(&mut store, "f").unwrap();
    let err = f.call(&mut store, ()).unwrap_err();
    assert!(err.to_string().contains("`TypedFunc::call_async`"), "{err}");
    let err = f.func().call(&mut store, &[], &mut []).unwrap_err();
    assert!(err.to_string().contains("`Func::call_async`"), "{err}");
    rt.block_on(f.call_async(&mut store, ())).unwrap();

    let engine = Engine::default();
    let module = Module::new(&engine, module_text).unwrap();
    let mut store = Store::new(&engine, ());
    let err = rt
        .block_on(strata::Instance::new_async(&mut store, &module, &[]))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("needs an engine with async support")
    );
    let instance = strata::Instance::new(&mut store, &module, &[]).unwrap();
    let f = instance.get_typed_func::<(), ()>(&mut store, "f").unwrap();
    let err = rt.block_on(f.call_async(&mut store, ())).unwrap_err();
    assert!(
        err.to_string().contains("`TypedFunc::call_async` needs"),
        "{err}"
    );
    let mut linker = Linker::<()>::new(&engine);
    let err = linker
        .func_wrap_async("host", "f", |_: Caller<'_, ()>, (): ()| Box::new(async {}))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("no async support"), "{err}");
    assert!(store.fuel_async_yield_interval(Some(10)).is_err());
}

const RECURSE: &str = r#"
(module
  (import "host" "again" (func $again))
  (func $down (export "down") (call $down))
  (func (export "via_host") (call $again))
  (func (export "ok") (result i32) (i32.const 7)))
"#;

#[test]
fn stack_overflow_on_a_fiber_traps_also_in_nested_async_calls() {
    let engine = async_engine(|c| {
        c.max_wasm_stack(128 << 10).async_stack_size(256 << 10);
    });
    let module = Module::new(&engine, RECURSE).unwrap();
    let mut linker = Linker::new(&engine);
    // The host function calls back into wasm with a nested async call, which gets
    // a fiber of its own.
    linker
        .func_wrap_async("host", "again", |mut caller: Caller<'_, ()>, (): ()| {
            Box::new(async move {
                let down = caller
                    .get_export("down")
                    .and_then(strata::Extern::into_func)
                    .unwrap();
                down.call_async(&mut caller, &[], &mut []).await
            })
        })
        .unwrap();
    let rt = current_thread();
    let mut store = Store::new(&engine, ());
    let instance = rt
        .block_on(linker.instantiate_async(&mut store, &module))
        .unwrap();
    for name in ["down", "via_host"] {
        let f = instance.get_typed_func::<(), ()>(&mut store, name).unwrap();
        let err = rt.block_on(f.call_async(&mut store, ())).unwrap_err();
        assert_eq!(trap_of(&err), Some(Trap::StackOverflow), "{name}: {err:?}");
    }
    let ok = instance
        .get_typed_func::<(), i32>(&mut store, "ok")
        .unwrap();
    assert_eq!(rt.block_on(ok.call_async(&mut store, ())).unwrap(), 7);

    // The fiber must have room for the wasm stack and the host code under it.
    let mut config = Config::new();
    config.async_support(true).async_stack_size(512 << 10);
    let err = Engine::new(&config).err().expect("the stack is too small");
    assert!(err.to_string().contains("async_stack_size"), "{err}");
}

/// A future that is pending until `ready` is set.
struct Flag(Arc<AtomicBool>);

impl Future for Flag {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A linker whose `host::wait` waits until `ready` is set, then returns its argument
/// plus one; `dropped` is set when a wait's future is dropped.
fn flag_linker(engine: &Engine, ready: &Arc<AtomicBool>, dropped: &Arc<AtomicBool>) -> Linker<()> {
    let mut linker = Linker::new(engine);
    let (ready, dropped) = (ready.clone(), dropped.clone());
    linker
        .func_wrap_async("host", "wait", move |_: Caller<'_, ()>, (x,): (i32,)| {
            let (ready, guard) = (Flag(ready.clone()), DropFlag(dropped.clone()));
            Box::new(async move {
                let _guard = guard;
                ready.await;
                x + 1
            })
        })
        .unwrap();
    linker
}

#[test]
fn dropping_a_suspended_call_unwinds_its_wasm_and_frees_its_stack() {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(2)
        .total_memories(2)
        .total_tables(2)
        .total_stacks(1)
        .max_memory_size(1 << 20);
    let engine = async_engine(|c| {
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    });
    let module = Module::new(&engine, WAITER).unwrap();
    let (ready, dropped) = (Arc::default(), Arc::default());
    let linker = flag_linker(&engine, &ready, &dropped);
    let mut store = Store::new(&engine, ());
    let rt = current_thread();
    let instance = rt
        .block_on(linker.instantiate_async(&mut store, &module))
        .unwrap();
    let stacks = || engine.pooling_allocator_metrics().unwrap().stacks;
    assert_eq!(stacks(), 1, "the store keeps its instantiation's stack");
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    {
        let mut call = pin!(run.call_async(&mut store, 1));
        assert!(poll_once(call.as_mut()).is_pending());
        assert!(poll_once(call.as_mut()).is_pending());
        assert_eq!(stacks(), 1, "the suspended call holds the only stack");
    }
    assert!(
        dropped.load(Ordering::SeqCst),
        "the host future was dropped"
    );
    assert_eq!(stacks(), 0, "the cancelled call gave its stack back");

    // The store goes on working, and the stack is reused; the store keeps it for its
    // next call until it is dropped.
    ready.store(true, Ordering::SeqCst);
    assert_eq!(rt.block_on(run.call_async(&mut store, 1)).unwrap(), 2);
    assert_eq!(rt.block_on(run.call_async(&mut store, 2)).unwrap(), 3);
    assert_eq!(stacks(), 1);
    drop(store);
    assert_eq!(stacks(), 0);
}

#[test]
fn a_suspended_call_resumes_on_another_thread_and_traps_there() {
    let engine = async_engine(|_| {});
    let module = Module::new(&engine, WAITER).unwrap();
    let (ready, dropped) = (Arc::new(AtomicBool::new(false)), Arc::default());
    let linker = flag_linker(&engine, &ready, &dropped);
    let mut store = Store::new(&engine, ());
    let instance = current_thread()
        .block_on(linker.instantiate_async(&mut store, &module))
        .unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run_then_trap")
        .unwrap();
    let mut call = Box::pin(run.call_async(&mut store, 1));
    assert!(poll_once(call.as_mut()).is_pending());
    ready.store(true, Ordering::SeqCst);
    let result = std::thread::scope(|s| {
        s.spawn(move || match poll_once(call.as_mut()) {
            Poll::Ready(result) => result,
            Poll::Pending => panic!("the host future is ready"),
        })
        .join()
        .unwrap()
    });
    let err = result.unwrap_err();
    assert_eq!(trap_of(&err), Some(Trap::UnreachableCodeReached), "{err:?}");
    let frames = err.wasm_backtrace().unwrap().frames();
    let names: Vec<_> = frames.iter().map(|f| f.func_index()).collect();
    assert_eq!(
        names,
        [2, 3],
        "the trap's backtrace: $fail called by run_then_trap"
    );

    // Back on this thread, wasm of the same store traps as usual.
    let err = current_thread()
        .block_on(run.call_async(&mut store, 1))
        .unwrap_err();
    assert_eq!(trap_of(&err), Some(Trap::UnreachableCodeReached));
}

#[test]
fn calls_migrate_between_the_threads_of_a_runtime() {
    let (engine, module, linker) = waiter(|_, (x,)| {
        Box::new(async move {
            for _ in 0..3 {
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
            x + 1
        })
    });
    let linker = Arc::new(linker);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let threads_seen = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let (engine, module, linker) = (engine.clone(), module.clone(), linker.clone());
            tasks.spawn(async move {
                let mut store = Store::new(&engine, ());
                let instance = linker.instantiate_async(&mut store, &module).await.unwrap();
                let name = if i % 2 == 0 { "run" } else { "run_then_trap" };
                let f = instance
                    .get_typed_func::<i32, i32>(&mut store, name)
                    .unwrap();
                let before = std::thread::current().id();
                let result = f.call_async(&mut store, i).await;
                let after = std::thread::current().id();
                match result {
                    Ok(v) => assert_eq!(v, i + 1),
                    Err(e) => {
                        assert_eq!(i % 2, 1);
                        assert_eq!(trap_of(&e), Some(Trap::UnreachableCodeReached));
                        assert_eq!(e.wasm_backtrace().unwrap().frames().len(), 2);
                    }
                }
                before != after
            });
        }
        let mut moved = 0;
        while let Some(result) = tasks.join_next().await {
            moved += usize::from(result.unwrap());
        }
        moved
    });
    // Which tasks move is up to the runtime; the asserts above are what matters.
    println!("{threads_seen} of 200 calls finished on another thread than they began");
}

const SPIN: &str = r#"
(module
  (global $turns (export "turns") (mut i32) (i32.const 0))
  (func (export "spin")
    (loop $l
      (global.set $turns (i32.add (global.get $turns) (i32.const 1)))
      (br $l)))
  (func (export "three") (result i32) (i32.const 3)))
"#;

/// An async engine configured by `tweak`, and a store holding `data` with an instance
/// of [`SPIN`].
fn async_spin<T: Send>(
    tweak: impl FnOnce(&mut Config) -> &mut Config,
    data: T,
) -> (Engine, Store<T>, strata::Instance) {
    let engine = async_engine(|c| {
        tweak(c);
    });
    let module = Module::new(&engine, SPIN).unwrap();
    let mut store = Store::new(&engine, data);
    let instance = current_thread()
        .block_on(strata::Instance::new_async(&mut store, &module, &[]))
        .unwrap();
    (engine, store, instance)
}

#[test]
fn fuel_is_handed_out_in_slices_with_a_yield_between_them() {
    let (_engine, mut store, instance) = async_spin(|c| c.consume_fuel(true), ());
    let spin = instance
        .get_typed_func::<(), ()>(&mut store, "spin")
        .unwrap();
    store.set_fuel(10_000).unwrap();
    assert!(store.fuel_async_yield_interval(Some(0)).is_err());
    store.fuel_async_yield_interval(Some(1_000)).unwrap();
    assert_eq!(store.get_fuel().unwrap(), 10_000, "the total is unchanged");
    let (result, yields) = poll_to_end(spin.call_async(&mut store, ()));
    let err = result.unwrap_err();
    assert_eq!(trap_of(&err), Some(Trap::OutOfFuel), "{err:?}");
    assert_eq!(yields, 9, "a yield between each two of the ten slices");
    assert_eq!(store.get_fuel().unwrap(), 0);
}

/// Increments `engine`'s epoch every millisecond until dropped.
struct Ticker(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Ticker {
    fn new(engine: &Engine) -> Ticker {
        let (stop, engine) = (Arc::new(AtomicBool::new(false)), engine.clone());
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    engine.increment_epoch();
                }
            }
        });
        Ticker(stop, Some(thread))
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        self.1.take().unwrap().join().unwrap();
    }
}

#[test]
fn epoch_deadlines_can_yield_and_extend() {
    let (engine, mut store, instance) = async_spin(|c| c.epoch_interruption(true), 0_u32);
    let spin = instance
        .get_typed_func::<(), ()>(&mut store, "spin")
        .unwrap();
    let turns = instance.get_global(&mut store, "turns").unwrap();
    let _ticker = Ticker::new(&engine);

    // Yield at every tick, forever: the call is pending after each, until dropped.
    store.epoch_deadline_async_yield_and_update(1);
    {
        let mut call = pin!(spin.call_async(&mut store, ()));
        for _ in 0..5 {
            assert!(poll_once(call.as_mut()).is_pending());
        }
    }
    let Val::I32(after_yields) = turns.get(&mut store) else {
        panic!("an i32 global")
    };
    assert!(after_yields > 0, "the loop ran between the yields");

    // The callback yields three times, then stops the wasm.
    store.epoch_deadline_callback(|mut store| {
        *store.data_mut() += 1;
        Ok(if *store.data() <= 3 {
            UpdateDeadline::Yield(1)
        } else {
            UpdateDeadline::Interrupt
        })
    });
    let (result, pending) = poll_to_end(spin.call_async(&mut store, ()));
    assert_eq!(trap_of(&result.unwrap_err()), Some(Trap::Interrupt));
    assert_eq!((pending, *store.data()), (3, 4));
}

#[test]
fn yielding_outside_an_async_call_is_an_error() {
    let engine = Engine::new(Config::new().epoch_interruption(true)).unwrap();
    let module = Module::new(&engine, SPIN).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = strata::Instance::new(&mut store, &module, &[]).unwrap();
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
    let spin = instance
        .get_typed_func::<(), ()>(&mut store, "spin")
        .unwrap();
    let err = spin.call(&mut store, ()).unwrap_err();
    assert!(err.to_string().contains("async call"), "{err}");
}

/// Allows memories up to `max_pages` pages, deciding after a yield to the executor.
struct SlowLimiter {
    max_bytes: usize,
    asked: usize,
}

#[async_trait::async_trait]
impl ResourceLimiterAsync for SlowLimiter {
    async fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> strata::Result<bool> {
        tokio::task::yield_now().await;
        self.asked += 1;
        Ok(desired <= self.max_bytes)
    }

    async fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> strata::Result<bool> {
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }
}

#[test]
fn an_async_limiter_decides_on_growth_after_waiting() {
    const PAGE: usize = 65536;
    let engine = async_engine(|_| {});
    let module = Module::new(
        &engine,
        r#"(module
             (memory (export "mem") 1)
             (func (export "grow") (param i32) (result i32)
               (memory.grow (local.get 0))))"#,
    )
    .unwrap();
    let mut store = Store::new(
        &engine,
        SlowLimiter {
            max_bytes: 3 * PAGE,
            asked: 0,
        },
    );
    store.limiter_async(|l| l as &mut dyn ResourceLimiterAsync);
    let rt = current_thread();
    let instance = rt
        .block_on(strata::Instance::new_async(&mut store, &module, &[]))
        .unwrap();
    assert_eq!(store.data().asked, 1, "asked about the initial page");
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    assert_eq!(rt.block_on(grow.call_async(&mut store, 1)).unwrap(), 1);
    assert_eq!(rt.block_on(grow.call_async(&mut store, 5)).unwrap(), -1);

    let memory = instance.get_memory(&mut store, "mem").unwrap();
    let err = memory.grow(&mut store, 1).unwrap_err();
    assert!(format!("{err:#}").contains("limiter is async"), "{err:#}");
    assert_eq!(rt.block_on(memory.grow_async(&mut store, 1)).unwrap(), 2);
    assert!(rt.block_on(memory.grow_async(&mut store, 1)).is_err());
    assert_eq!(store.data().asked, 5);

    // The limiter allows one instance.
    let err = rt
        .block_on(strata::Instance::new_async(&mut store, &module, &[]))
        .unwrap_err();
    assert!(err.to_string().contains("instance count"), "{err}");
}

#[test]
fn sync_host_functions_work_in_async_calls() {
    let engine = async_engine(|_| {});
    let mut store = Store::new(&engine, ());
    let double = Func::wrap(&mut store, |x: i32| x * 2);
    let module = Module::new(
        &engine,
        r#"(module
             (import "" "double" (func $d (param i32) (result i32)))
             (func (export "run") (param i32) (result i32) (call $d (local.get 0))))"#,
    )
    .unwrap();
    let rt = current_thread();
    let instance = rt
        .block_on(strata::Instance::new_async(
            &mut store,
            &module,
            &[double.into()],
        ))
        .unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(rt.block_on(run.call_async(&mut store, 21)).unwrap(), 42);
}
