//! Async embedding with tokio: many instances share one thread.
//!
//! Each of 100 tasks instantiates a module and calls its `handle` export. The wasm
//! calls the async host function `host::fetch`, which awaits a tokio timer as a
//! stand-in for network I/O; while it waits, the wasm stays suspended on its fiber and
//! the thread runs the other tasks. A second export, `crunch`, is a compute loop: with
//! epoch interruption it yields back to tokio at every tick of a ticker thread, so it
//! cannot starve the I/O-bound tasks.
//!
//! Run with `cargo run --example async_tokio`.

use anyhow::Result;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use strata::{Caller, Config, Engine, Linker, Module, Store};

const WAT: &str = r#"
(module
  (import "host" "fetch" (func $fetch (param i32) (result i32)))
  ;; Fetches twice and combines the answers.
  (func (export "handle") (param $id i32) (result i32)
    (i32.add
      (call $fetch (local.get $id))
      (call $fetch (i32.add (local.get $id) (i32.const 1000)))))
  ;; Counts up to $n the slow way.
  (func (export "crunch") (param $n i32) (result i32)
    (local $i i32)
    (loop $again
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i)))
"#;

/// What each store holds: how many fetches its instance made.
#[derive(Default)]
struct Requests {
    fetches: u32,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut config = Config::new();
    config.async_support(true).epoch_interruption(true);
    let engine = Engine::new(&config)?;
    let module = Module::new(&engine, WAT)?;

    let mut linker = Linker::new(&engine);
    linker.func_wrap_async(
        "host",
        "fetch",
        |mut caller: Caller<'_, Requests>, (key,): (i32,)| {
            Box::new(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                caller.data_mut().fetches += 1;
                key * 2
            })
        },
    )?;
    let linker = Arc::new(linker);

    // The epoch advances every millisecond; stores yield when it passes their
    // deadline, then carry on with the deadline one tick later. The ticker is a
    // thread of its own: a tokio task would only run when the wasm yields.
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = std::thread::spawn({
        let (engine, stop) = (engine.clone(), stop.clone());
        move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
                engine.increment_epoch();
            }
        }
    });

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..100 {
        let (engine, module, linker) = (engine.clone(), module.clone(), linker.clone());
        tasks.spawn(async move {
            let mut store = Store::new(&engine, Requests::default());
            store.epoch_deadline_async_yield_and_update(1);
            let instance = linker.instantiate_async(&mut store, &module).await?;
            let handle = instance.get_typed_func::<i32, i32>(&mut store, "handle")?;
            let answer = handle.call_async(&mut store, id).await?;
            anyhow::Ok((answer, store.data().fetches))
        });
    }
    let crunch = tokio::spawn({
        let (engine, module, linker) = (engine.clone(), module.clone(), linker.clone());
        async move {
            let mut store = Store::new(&engine, Requests::default());
            store.epoch_deadline_async_yield_and_update(1);
            let instance = linker.instantiate_async(&mut store, &module).await?;
            let crunch = instance.get_typed_func::<i32, i32>(&mut store, "crunch")?;
            crunch.call_async(&mut store, 1_000_000_000).await
        }
    });

    let (mut total, mut fetches) = (0_i64, 0);
    while let Some(result) = tasks.join_next().await {
        let (answer, count) = result??;
        total += i64::from(answer);
        fetches += count;
    }
    let io_done = started.elapsed();
    let counted = crunch.await??;
    stop.store(true, Ordering::Relaxed);
    ticker.join().expect("the ticker does not panic");

    println!("100 handlers made {fetches} fetches (answers summing to {total}),");
    println!("each waiting 2 x 20 ms, and all finished after {io_done:.0?}, on one thread");
    println!(
        "shared with a compute loop that counted to {counted} in {:.0?}.",
        started.elapsed()
    );
    Ok(())
}
