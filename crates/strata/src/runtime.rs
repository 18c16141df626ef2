//! The part of the API that instantiates and runs modules.

#[cfg(feature = "cache")]
mod cache;
mod engine;
mod exceptions;
mod externals;
#[cfg(feature = "async")]
mod fiber;
mod func;
mod handles;
mod instance;
mod interrupt;
mod limiter;
mod limits;
mod linker;
mod module;
mod store;
mod values;

pub use engine::{Engine, Precompiled};
pub use exceptions::{ExnRef, ThrownException};
pub use externals::MemoryAccessError;
pub use func::{Caller, IntoFunc, TypedFunc, WasmParams, WasmResults, WasmRet, WasmTy};
pub use handles::{Extern, Func, Global, Memory, Table, Tag};
pub use instance::Instance;
#[cfg(feature = "async")]
pub use limiter::ResourceLimiterAsync;
pub use limiter::{
    DEFAULT_INSTANCE_LIMIT, DEFAULT_MEMORY_LIMIT, DEFAULT_TABLE_LIMIT, ResourceLimiter,
};
pub use limits::{StoreLimits, StoreLimitsBuilder};
pub use linker::Linker;
pub use module::{Module, ModuleFunction};
pub use store::{AsContext, AsContextMut, Store, StoreContext, StoreContextMut, UpdateDeadline};
pub use values::{ExternRef, Ref, Val};
