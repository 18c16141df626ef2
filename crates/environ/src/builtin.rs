//! Libcalls: runtime functions that compiled code reaches through the vmctx.
//!
//! Every libcall takes the calling instance's vmctx first. Index operands arrive widened
//! to 64 bits whatever the index type of their table or memory. Libcalls that can fail
//! return `0` for "trap" and `1` for success; the caller emits the trap itself, so that
//! the trap table and the backtrace see a wasm instruction.

/// What `memory_grow` and `table_grow` return when the store's resource limiter stopped
/// execution: compiled code traps, and the runtime reports the limiter's reason.
pub const GROW_TRAPPED: u64 = u64::MAX - 1;

/// A runtime function compiled code may call, by its slot in the table that
/// `VMContext::builtin_functions` points to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum BuiltinFunctionIndex {
    /// `memory_grow(vmctx, delta_pages: u64, memory: u32) -> u64`: the old size in pages,
    /// `u64::MAX` if the memory could not grow, or [`GROW_TRAPPED`] if the store's
    /// resource limiter stopped execution.
    MemoryGrow = 0,
    /// `raise(vmctx) -> !`: unwinds to the innermost host entry after a host function
    /// reported an error. Called only by wasm-to-host trampolines.
    Raise = 1,
    /// `table_grow(vmctx, table: u32, delta: u64, init: ptr) -> u64`: the old size,
    /// `u64::MAX` if the table could not grow, or [`GROW_TRAPPED`].
    TableGrow = 2,
    /// `table_fill(vmctx, table: u32, dst: u64, value: ptr, len: u64) -> u32`.
    TableFill = 3,
    /// `table_copy(vmctx, dst_table: u32, src_table: u32, dst: u64, src: u64, len: u64)
    /// -> u32`.
    TableCopy = 4,
    /// `table_init(vmctx, table: u32, elem: u32, dst: u64, src: u64, len: u64) -> u32`.
    TableInit = 5,
    /// `elem_drop(vmctx, elem: u32)`.
    ElemDrop = 6,
    /// `memory_copy(vmctx, dst_memory: u32, src_memory: u32, dst: u64, src: u64, len: u64)
    /// -> u32`.
    MemoryCopy = 7,
    /// `memory_fill(vmctx, memory: u32, dst: u64, value: u64, len: u64) -> u32`: fills
    /// with the low byte of `value`.
    MemoryFill = 8,
    /// `memory_init(vmctx, memory: u32, data: u32, dst: u64, src: u64, len: u64) -> u32`.
    MemoryInit = 9,
    /// `data_drop(vmctx, data: u32)`.
    DataDrop = 10,
    /// `table_get_lazy_init(vmctx, table: u32, index: u64) -> ptr`: resolves element
    /// `index` (in bounds) of a funcref table that has not been initialized yet, stores
    /// it and returns the function reference (null for null).
    TableGetLazyInit = 11,
    /// `out_of_gas(vmctx) -> u32`: the store's fuel counter reached zero; `1` once it was
    /// refilled (`fuel_consumed` is negative again), `0` to trap.
    OutOfGas = 12,
    /// `new_epoch(vmctx) -> u32`: the engine's epoch reached the store's deadline; `1`
    /// once the deadline was moved, `0` to trap.
    NewEpoch = 13,
    /// `fma_f32(vmctx, a: f32, b: f32, c: f32) -> f32`: `a * b + c` rounded once, for
    /// the deterministic relaxed multiply-add on hosts without a fused instruction.
    FmaF32 = 14,
    /// `fma_f64(vmctx, a: f64, b: f64, c: f64) -> f64`: as [`Self::FmaF32`].
    FmaF64 = 15,
    /// `exn_new(vmctx, tag: u32) -> ptr`: a new exception of the caller's tag `tag` in
    /// the store, its fields zeroed for compiled code to store (see
    /// [`VMOffsets::exn_field`](crate::VMOffsets::exn_field)).
    ExnNew = 16,
    /// `throw_ref(vmctx, exn: ptr, fp: ptr) -> !`: throws `exn` (not null) to the
    /// callers of the wasm frame whose frame pointer is `fp`: that frame found no
    /// handler of its own. Resumes at the first handler of a caller, or unwinds to the
    /// innermost host entry if none catches it.
    ThrowRef = 17,
}

impl BuiltinFunctionIndex {
    /// The number of builtins.
    pub const COUNT: u32 = 18;

    /// The slot of this builtin in the builtin table.
    pub fn index(self) -> u32 {
        self as u32
    }
}
