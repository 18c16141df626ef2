//! WASI preview1 (`wasi_snapshot_preview1`) for the strata WebAssembly runtime. Like
//! every strata crate but `strata` itself, it makes no stability promise.
//!
//! Build a [`WasiCtx`] with a [`WasiCtxBuilder`], keep it in the store's data, and
//! define the 46 preview1 functions in a [`Linker`](strata::Linker) with
//! [`add_to_linker`]:
//!
//! ```
//! # fn main() -> strata::Result<()> {
//! use strata::{Engine, Linker, Module, Store};
//! use strata_wasi::{MemoryOutputPipe, WasiCtx, WasiCtxBuilder};
//!
//! let engine = Engine::default();
//! let module = Module::new(&engine, r#"
//!     (module
//!       (import "wasi_snapshot_preview1" "fd_write"
//!         (func $fd_write (param i32 i32 i32 i32) (result i32)))
//!       (memory (export "memory") 1)
//!       (data (i32.const 16) "hello\n")
//!       (func (export "_start")
//!         ;; one iovec at 0: 6 bytes at 16
//!         (i32.store (i32.const 0) (i32.const 16))
//!         (i32.store (i32.const 4) (i32.const 6))
//!         (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
//! "#)?;
//!
//! let stdout = MemoryOutputPipe::new(1024);
//! let cx = WasiCtxBuilder::new().arg("hello.wasm").stdout(stdout.clone()).build();
//! let mut linker = Linker::new(&engine);
//! strata_wasi::add_to_linker(&mut linker, |cx: &mut WasiCtx| cx)?;
//! let mut store = Store::new(&engine, cx);
//! let instance = linker.instantiate(&mut store, &module)?;
//! let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
//! start.call(&mut store, ())?;
//! assert_eq!(stdout.contents(), b"hello\n");
//! # Ok(())
//! # }
//! ```
//!
//! A guest sees only what the builder gives it: its arguments, environment and stdio,
//! the directories pre-opened for it (sandboxed by cap-std, so `..`, absolute paths and
//! symlinks cannot leave them; see [`WasiCtxBuilder::preopened_dir`]) and pre-opened
//! listening sockets. Every fd carries preview1 rights, which can be dropped but never
//! regained. Only Unix hosts are supported.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod abi;
mod ctx;
mod errno;
mod memory;
mod perms;
mod pipe;
mod preview1;
mod stdio;
mod table;

pub use ctx::{WasiCtx, WasiCtxBuilder};
pub use errno::Errno;
pub use perms::{DirPerms, FilePerms};
pub use pipe::{MemoryInputPipe, MemoryOutputPipe};
pub use preview1::add_to_linker;
