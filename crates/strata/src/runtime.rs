//! The part of the API that instantiates and runs modules.

#[cfg(feature = "cache")]
mod cache;
mod engine;
mod externals;
#[cfg(feature = "async")]
mod fiber;
mod func;
mod instance;
mod interrupt;
mod limits;
mod linker;
mod module;
mod store;
mod values;

pub use engine::{Engine, Precompiled};
pub use externals::{Extern, Global, Memory, MemoryAccessError, Table};
pub use func::{Caller, Func, IntoFunc, TypedFunc, WasmParams, WasmResults, WasmRet, WasmTy};
pub use instance::Instance;
pub use interrupt::UpdateDeadline;
#[cfg(feature = "async")]
pub use limits::ResourceLimiterAsync;
pub use limits::{
    DEFAULT_INSTANCE_LIMIT, DEFAULT_MEMORY_LIMIT, DEFAULT_TABLE_LIMIT, ResourceLimiter,
    StoreLimits, StoreLimitsBuilder,
};
pub use linker::Linker;
pub use module::Module;
pub use store::{AsContext, AsContextMut, Store, StoreContext, StoreContextMut};
pub use values::{ExternRef, Ref, Val};
