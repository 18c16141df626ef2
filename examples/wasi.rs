//! A WASI preview1 command embedded in a host program.
//!
//! The guest reads `/data/greeting.txt` from a directory the host pre-opens read-only,
//! writes the text to its stdout, and exits with status 3. The host captures stdout in
//! an in-memory pipe, and tells the guest's exit from a trap.
//!
//! Run with `cargo run --example wasi`.

use anyhow::{Context as _, Result, bail};
use strata::{Engine, Linker, Module, Store};
use strata_wasi::{DirPerms, FilePerms, MemoryOutputPipe, WasiCtx, WasiCtxBuilder};

const WAT: &str = r#"
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "greeting.txt")
  (func (export "_start")
    ;; fd 3 is the first preopen: open greeting.txt in it, for reading (fd_read right).
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 12)
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16))
      (then unreachable))
    ;; One iovec at 32: up to 256 bytes at 64.
    (i32.store (i32.const 32) (i32.const 64))
    (i32.store (i32.const 36) (i32.const 256))
    (if (call $fd_read (i32.load (i32.const 16)) (i32.const 32) (i32.const 1) (i32.const 40))
      (then unreachable))
    ;; Write what was read to stdout.
    (i32.store (i32.const 36) (i32.load (i32.const 40)))
    (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 44)))
    (call $proc_exit (i32.const 3))))
"#;

/// The store's data: the guest's WASI context.
struct Host {
    wasi: WasiCtx,
}

fn main() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("strata-wasi-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("greeting.txt"),
        "hello from a pre-opened directory\n",
    )?;

    let engine = Engine::default();
    let module = Module::new(&engine, WAT)?;
    let stdout = MemoryOutputPipe::new(4096);
    let wasi = WasiCtxBuilder::new()
        .arg("greet.wasm")
        .stdout(stdout.clone())
        .inherit_stderr()
        .preopened_dir(&dir, "/data", DirPerms::READ, FilePerms::READ)?
        .build();
    let mut linker = Linker::new(&engine);
    strata_wasi::add_to_linker(&mut linker, |host: &mut Host| &mut host.wasi)?;
    let mut store = Store::new(&engine, Host { wasi });
    let instance = linker.instantiate(&mut store, &module)?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;

    let status = match start.call(&mut store, ()) {
        Ok(()) => 0,
        Err(e) => match e.i32_exit_status() {
            Some(status) => status,
            // A trap or a host error: its message comes with the wasm backtrace.
            None => return Err(anyhow::anyhow!("{e:?}")).context("the guest failed"),
        },
    };
    std::fs::remove_dir_all(&dir)?;

    let printed = String::from_utf8(stdout.contents())?;
    print!("the guest printed: {printed}");
    println!("and exited with status {status}");
    if printed != "hello from a pre-opened directory\n" || status != 3 {
        bail!("unexpected output or status");
    }
    Ok(())
}
