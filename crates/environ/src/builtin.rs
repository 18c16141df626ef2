//! Libcalls: runtime functions that compiled code reaches through the vmctx.

/// A runtime function compiled code may call, by its slot in the table that
/// `VMContext::builtin_functions` points to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum BuiltinFunctionIndex {
    /// `memory_grow(vmctx, delta_pages: u64, memory: u32) -> u64`: the old size in pages,
    /// or `u64::MAX` if the memory could not grow.
    MemoryGrow = 0,
    /// `raise(vmctx) -> !`: unwinds to the innermost host entry after a host function
    /// reported an error. Called only by wasm-to-host trampolines.
    Raise = 1,
}

impl BuiltinFunctionIndex {
    /// The number of builtins.
    pub const COUNT: u32 = 2;

    /// The slot of this builtin in the builtin table.
    pub fn index(self) -> u32 {
        self as u32
    }
}
