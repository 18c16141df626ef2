//! Runtime functions compiled code calls through the vmctx's builtin table.
//!
//! Each is `extern "C"` and must never unwind: failures are reported as sentinel values
//! that compiled code checks.

use crate::instance::Instance;
use crate::vmcontext::VMContext;
use strata_environ::MemoryIndex;

/// The builtin function table, in [`strata_environ::BuiltinFunctionIndex`] order.
#[repr(C)]
pub(crate) struct VMBuiltinFunctions {
    memory_grow: unsafe extern "C" fn(*mut VMContext, u64, u32) -> u64,
    raise: unsafe extern "C" fn(*mut VMContext) -> !,
}

pub(crate) static BUILTINS: VMBuiltinFunctions = VMBuiltinFunctions {
    memory_grow,
    raise: crate::traphandlers::raise,
};

/// `memory.grow`: the old size in pages, or `u64::MAX` if the memory could not grow.
///
/// # Safety
/// `vmctx` must be a live instance's vmctx; called only from its compiled code.
unsafe extern "C" fn memory_grow(vmctx: *mut VMContext, delta: u64, memory: u32) -> u64 {
    // SAFETY: per the contract, `vmctx` belongs to a live instance.
    let instance = unsafe { Instance::from_vmctx(vmctx) };
    // SAFETY: compiled code is running on this thread, so nothing else holds the instance.
    unsafe { instance.memory_grow(MemoryIndex::from_u32(memory), delta) }.unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;
    use strata_environ::{BuiltinFunctionIndex, Module, VMOffsets};

    #[test]
    fn builtin_table_matches_the_indices() {
        let o = VMOffsets::for_host(&Module::default());
        assert_eq!(
            offset_of!(VMBuiltinFunctions, memory_grow),
            o.builtin_function(BuiltinFunctionIndex::MemoryGrow) as usize
        );
        assert_eq!(
            offset_of!(VMBuiltinFunctions, raise),
            o.builtin_function(BuiltinFunctionIndex::Raise) as usize
        );
        assert_eq!(
            size_of::<VMBuiltinFunctions>(),
            BuiltinFunctionIndex::COUNT as usize * size_of::<usize>()
        );
    }
}
