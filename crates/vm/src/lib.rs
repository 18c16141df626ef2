//! Internal crate of the strata WebAssembly runtime: the machinery that runs compiled code.
//!
//! This crate has no stability promise; embedders use the `strata` crate. It owns the
//! `#[repr(C)]` structures compiled code reads (`vmcontext`), executable code memory and
//! the process-wide code registry, instances and their vmctx, linear memories, tables,
//! the instance allocators, libcalls, and traps: the signal handlers, unwinding back to the
//! host entry, and backtraces. It never sees the compiler.
//!
//! Nearly everything here is `unsafe` with written contracts; the `strata` crate wraps it
//! in a safe API.
#![deny(missing_docs)]
#![warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

mod allocator;
mod backtrace;
mod code_memory;
mod cow;
mod cpu;
mod exception;
#[cfg(feature = "async")]
mod fiber;
mod instance;
mod libcalls;
mod memory;
mod mmap;
mod pagemap;
#[cfg(feature = "pooling-allocator")]
mod pooling;
mod shard;
mod table;
mod traphandlers;
mod vmcontext;

pub use allocator::{InstanceAllocator, InstanceSlot, OnDemandInstanceAllocator};
pub use backtrace::{Backtrace, BacktraceFrame};
pub use code_memory::{ArtifactImage, CodeObject, lookup_code};
pub use cow::{DataFile, MemoryImage, ModuleMemoryImages};
pub use cpu::host_has_cpu_feature;
pub use exception::{ExnHeap, VMExnRef};
#[cfg(feature = "async")]
pub use fiber::{AsyncCx, Cancelled, FiberFuture};
pub use instance::{
    ConstValue, Imports, InstanceAllocationRequest, InstanceHandle, InstanceHandleRef,
    ModuleRuntimeInfo, instance_id_of_vmctx, read_global_value, write_global_value,
};
pub use memory::Memory;
#[cfg(feature = "pooling-allocator")]
pub use pooling::{
    PoolConcurrencyLimitError, PoolingConfig, PoolingInstanceAllocator, PoolingMetrics,
};
#[cfg(feature = "async")]
pub use strata_fiber::FiberStack;
pub use table::{MAX_TABLE_ELEMENTS, Table};
pub use traphandlers::{
    HostError, UnwindReason, catch_traps, init_traps, record_unwind_reason, tls_eager_initialize,
};
pub use vmcontext::{
    Growth, SendSyncPtr, VMArrayCallFunction, VMContext, VMFuncRef, VMFunctionImport,
    VMGlobalDefinition, VMHostFuncContext, VMMemoryDefinition, VMStoreContext, VMStoreHooks,
    VMTableDefinition, VMTagDefinition, ValRaw,
};

/// Errors from the VM layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum VmError {
    /// The operating system refused a memory mapping.
    Mmap(std::io::Error),
    /// A resource limit was exceeded.
    Limit(String),
    /// A pooling allocator had no free slot.
    #[cfg(feature = "pooling-allocator")]
    PoolLimit(PoolConcurrencyLimitError),
    /// The data segments of a precompiled module do not match their checksum.
    CorruptedData,
    /// The trap table or the address map of a precompiled module does not match its
    /// checksum.
    CorruptedTables,
    /// Precompiled code does not match its checksum.
    CorruptedCode {
        /// Text offset of the first chunk that does not match.
        start: u32,
        /// Text offset of its end.
        end: u32,
    },
}

impl core::fmt::Display for VmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            // The OS error is the source, which error chains print after this.
            VmError::Mmap(_) => f.write_str("failed to map memory"),
            VmError::Limit(msg) => f.write_str(msg),
            #[cfg(feature = "pooling-allocator")]
            VmError::PoolLimit(e) => e.fmt(f),
            VmError::CorruptedData => f.write_str(
                "precompiled module is corrupted: checksum mismatch in its data section",
            ),
            VmError::CorruptedTables => f.write_str(
                "precompiled module is corrupted: checksum mismatch in its trap table or \
                 address map",
            ),
            VmError::CorruptedCode { start, end } => write!(
                f,
                "precompiled code is corrupted: text bytes {start:#x}..{end:#x} do not match \
                 their checksum, so they were not run"
            ),
        }
    }
}

impl std::error::Error for VmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VmError::Mmap(e) => Some(e),
            VmError::Limit(_)
            | VmError::CorruptedData
            | VmError::CorruptedTables
            | VmError::CorruptedCode { .. } => None,
            // Displayed as itself above, so not repeated as a source.
            #[cfg(feature = "pooling-allocator")]
            VmError::PoolLimit(_) => None,
        }
    }
}

/// The host's page size.
pub fn host_page_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size).unwrap_or(4096)
    })
}

#[cfg(test)]
mod tests {
    use super::VmError;

    #[test]
    fn an_os_error_is_the_source_and_not_repeated_in_the_message() {
        let e = VmError::Mmap(std::io::Error::from_raw_os_error(libc::ENOMEM));
        assert_eq!(e.to_string(), "failed to map memory");
        let source = std::error::Error::source(&e).expect("the OS error");
        assert!(source.to_string().contains("os error 12"), "{source}");
    }
}
