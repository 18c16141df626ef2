//! Embedding API of the strata WebAssembly runtime.
//!
//! Compile a module once with an [`Engine`], instantiate it in a [`Store`] with a
//! [`Linker`] that supplies its imports, and call its exports:
//!
//! ```
//! # fn main() -> strata::Result<()> {
//! use strata::{Engine, Linker, Module, Store};
//! let engine = Engine::default();
//! let module = Module::new(&engine, r#"
//!     (module
//!       (import "host" "double" (func $double (param i32) (result i32)))
//!       (func (export "run") (param i32) (result i32)
//!         (call $double (i32.add (local.get 0) (i32.const 1)))))
//! "#)?;
//! let mut linker = Linker::new(&engine);
//! linker.func_wrap("host", "double", |x: i32| x * 2)?;
//! let mut store = Store::new(&engine, ());
//! let instance = linker.instantiate(&mut store, &module)?;
//! let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
//! assert_eq!(run.call(&mut store, 20)?, 42);
//! # Ok(())
//! # }
//! ```
//!
//! | feature                | default | effect                                                  |
//! |------------------------|---------|---------------------------------------------------------|
//! | `runtime`              | yes     | instantiate and run modules                             |
//! | `cranelift`            | yes     | compile WebAssembly at run time                         |
//! | `parallel-compilation` | yes     | compile a module's functions on a thread pool           |
//! | `wat`                  | yes     | accept the text format wherever bytes are accepted      |
//! | `pooling-allocator`    | yes     | the pooling instance allocator                          |
//! | `async`                | yes     | async calls into wasm on fibers, async host functions   |
//! | `cache`                | no      | cache compiled modules on disk (`Config::cache_dir`)    |
#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![doc(test(attr(deny(warnings))))]

mod config;
mod error;
mod types;

#[cfg(feature = "pooling-allocator")]
pub use config::PoolingAllocationConfig;
pub use config::{Config, InstanceAllocationStrategy, OptLevel};
pub use error::{Error, FrameInfo, Result, WasmBacktrace};
pub use strata_environ::Trap;
#[cfg(feature = "pooling-allocator")]
pub use strata_vm::{PoolConcurrencyLimitError, PoolingMetrics as PoolingAllocatorMetrics};
pub use types::{
    ExnType, ExportType, ExternType, FuncType, GlobalType, ImportType, MemoryType,
    MemoryTypeBuilder, Mutability, RefType, TableType, TagType, ValType,
};

#[cfg(feature = "runtime")]
mod runtime;
#[cfg(feature = "runtime")]
pub use runtime::*;
