//! Runtime functions compiled code calls through the vmctx's builtin table.
//!
//! Each is `extern "C"` and must never unwind: failures are reported as sentinel values
//! that compiled code checks (`0` for a trap, see [`strata_environ::BuiltinFunctionIndex`]).
//!
//! # Safety
//! Every libcall has the same contract: `vmctx` is the vmctx of a live instance whose
//! compiled code is the caller, running on this thread, so nothing else holds the
//! instance; the indices were validated against its module.

use crate::instance::Instance;
use crate::vmcontext::{Growth, VMContext, VMStoreHooks};
use crate::{UnwindReason, record_unwind_reason};
use strata_environ::{DataIndex, ElemIndex, GROW_TRAPPED, MemoryIndex, TableIndex, TagIndex, Trap};

/// The builtin function table, in [`strata_environ::BuiltinFunctionIndex`] order.
#[repr(C)]
pub(crate) struct VMBuiltinFunctions {
    memory_grow: unsafe extern "C" fn(*mut VMContext, u64, u32) -> u64,
    raise: unsafe extern "C" fn(*mut VMContext) -> !,
    table_grow: unsafe extern "C" fn(*mut VMContext, u32, u64, *mut u8) -> u64,
    table_fill: unsafe extern "C" fn(*mut VMContext, u32, u64, *mut u8, u64) -> u32,
    table_copy: unsafe extern "C" fn(*mut VMContext, u32, u32, u64, u64, u64) -> u32,
    table_init: unsafe extern "C" fn(*mut VMContext, u32, u32, u64, u64, u64) -> u32,
    elem_drop: unsafe extern "C" fn(*mut VMContext, u32),
    memory_copy: unsafe extern "C" fn(*mut VMContext, u32, u32, u64, u64, u64) -> u32,
    memory_fill: unsafe extern "C" fn(*mut VMContext, u32, u64, u64, u64) -> u32,
    memory_init: unsafe extern "C" fn(*mut VMContext, u32, u32, u64, u64, u64) -> u32,
    data_drop: unsafe extern "C" fn(*mut VMContext, u32),
    table_get_lazy_init: unsafe extern "C" fn(*mut VMContext, u32, u64) -> *mut u8,
    out_of_gas: unsafe extern "C" fn(*mut VMContext) -> u32,
    new_epoch: unsafe extern "C" fn(*mut VMContext) -> u32,
    fma_f32: unsafe extern "C" fn(*mut VMContext, f32, f32, f32) -> f32,
    fma_f64: unsafe extern "C" fn(*mut VMContext, f64, f64, f64) -> f64,
    exn_new: unsafe extern "C" fn(*mut VMContext, u32) -> *mut u8,
    throw_ref: unsafe extern "C" fn(*mut VMContext, *mut u8, usize) -> !,
}

pub(crate) static BUILTINS: VMBuiltinFunctions = VMBuiltinFunctions {
    memory_grow,
    raise: crate::traphandlers::raise,
    table_grow,
    table_fill,
    table_copy,
    table_init,
    elem_drop,
    memory_copy,
    memory_fill,
    memory_init,
    data_drop,
    table_get_lazy_init,
    out_of_gas,
    new_epoch,
    fma_f32,
    fma_f64,
    exn_new,
    throw_ref,
};

/// The libcall result for an operation that may trap.
fn status(result: Result<(), Trap>) -> u32 {
    u32::from(result.is_ok())
}

/// The instance whose compiled code called a libcall.
///
/// # Safety
/// See the module's contract.
unsafe fn caller<'a>(vmctx: *mut VMContext) -> &'a mut Instance {
    // SAFETY: per the module's contract, `vmctx` belongs to a live instance nobody else
    // is using.
    unsafe { Instance::from_vmctx(vmctx) }
}

/// `memory.grow`: the old size in pages, or `u64::MAX` if the memory could not grow.
///
/// # Safety
/// `vmctx` must be a live instance's vmctx; called only from its compiled code.
unsafe extern "C" fn memory_grow(vmctx: *mut VMContext, delta: u64, memory: u32) -> u64 {
    let index = MemoryIndex::from_u32(memory);
    // SAFETY: per the contract, `vmctx` belongs to a live instance nobody else holds.
    let growth = unsafe { caller(vmctx) }.memory_growth(index, delta);
    // SAFETY: as above; compiled code is running on this thread.
    unsafe { limited_grow(vmctx, growth, |i| i.memory_grow(index, delta)) }
}

/// `table.grow`: the old size, or `u64::MAX`.
///
/// # Safety
/// See the module's contract.
unsafe extern "C" fn table_grow(
    vmctx: *mut VMContext,
    table: u32,
    delta: u64,
    init: *mut u8,
) -> u64 {
    let index = TableIndex::from_u32(table);
    // SAFETY: forwarded contract.
    let growth = unsafe { caller(vmctx) }.table_growth(index, delta);
    // SAFETY: as above.
    unsafe { limited_grow(vmctx, growth, |i| i.table_grow(index, delta, init)) }
}

/// `table.fill`.
///
/// # Safety
/// See the module's contract.
unsafe extern "C" fn table_fill(
    vmctx: *mut VMContext,
    table: u32,
    dst: u64,
    value: *mut u8,
    len: u64,
) -> u32 {
    // SAFETY: forwarded contract.
    let instance = unsafe { caller(vmctx) };
    status(instance.table_fill(TableIndex::from_u32(table), dst, value, len))
}

/// `table.copy`.
///
/// # Safety
/// See the module's contract.
unsafe extern "C" fn table_copy(
    vmctx: *mut VMContext,
    dst_table: u32,
    src_table: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: forwarded contract.
    let instance = unsafe { caller(vmctx) };
    let (dst_table, src_table) = (
        TableIndex::from_u32(dst_table),
        TableIndex::from_u32(src_table),
    );
    status(instance.table_copy(dst_table, src_table, dst, src, len))
}

/// `table.init`.
///
/// # Safety
/// See the module's contract.
unsafe extern "C" fn table_init(
    vmctx: *mut VMContext,
    table: u32,
    elem: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: forwarded contract.
    let instance = unsafe { caller(vmctx) };
    let (table, elem) = (TableIndex::from_u32(table), ElemIndex::from_u32(elem));
    status(instance.table_init(table, elem, dst, src, len))
}

/// `elem.drop`.
///
/// # Safety
/// See the module's contract.
unsafe extern "C" fn elem_drop(vmctx: *mut VMContext, elem: u32) {
    // SAFETY: forwarded contract.
    let instance = unsafe { caller(vmctx) };
    instance.elem_drop(ElemIndex::from_u32(elem));
}

/// `memory.copy`.
///
/// # Safety
/// See the module's contract.
unsafe extern "C" fn memory_copy(
    vmctx: *mut VMContext,
    dst_memory: u32,
    src_memory: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: forwarded contract.
    let instance = unsafe { caller(vmctx) };
    let (dst_memory, src_memory) = (
        MemoryIndex::from_u32(dst_memory),
        MemoryIndex::from_u32(src_memory),
    );
    status(instance.memory_copy(dst_memory, dst, src_memory, src, len))
}

/// `memory.fill`: stores the low byte of `value`.
///
/// # Safety
/// See the module's contract.
#[expect(
    clippy::cast_possible_truncation,
    reason = "memory.fill stores the low byte"
)]
unsafe extern "C" fn memory_fill(
    vmctx: *mut VMContext,
    memory: u32,
    dst: u64,
    value: u64,
    len: u64,
) -> u32 {
    // SAFETY: forwarded contract.
    let instance = unsafe { caller(vmctx) };
    status(instance.memory_fill(MemoryIndex::from_u32(memory), dst, value as u8, len))
}

/// `memory.init`.
///
/// # Safety
/// See the module's contract.
unsafe extern "C" fn memory_init(
    vmctx: *mut VMContext,
    memory: u32,
    data: u32,
    dst: u64,
    src: u64,
    len: u64,
) -> u32 {
    // SAFETY: forwarded contract.
    let instance = unsafe { caller(vmctx) };
    let (memory, data) = (MemoryIndex::from_u32(memory), DataIndex::from_u32(data));
    status(instance.memory_init(memory, data, dst, src, len))
}

/// `data.drop`.
///
/// # Safety
/// See the module's contract.
unsafe extern "C" fn data_drop(vmctx: *mut VMContext, data: u32) {
    // SAFETY: forwarded contract.
    let instance = unsafe { caller(vmctx) };
    instance.data_drop(DataIndex::from_u32(data));
}

/// Resolves an element of a funcref table that compiled code found uninitialized.
///
/// # Safety
/// See the module's contract; `index` is in bounds (compiled code checked it).
unsafe extern "C" fn table_get_lazy_init(vmctx: *mut VMContext, table: u32, index: u64) -> *mut u8 {
    // SAFETY: forwarded contract.
    let instance = unsafe { caller(vmctx) };
    instance
        .table_get(TableIndex::from_u32(table), index)
        .unwrap_or(core::ptr::null_mut())
}

/// Asks the store behind `vmctx` through its hooks; on `Err` records why wasm must
/// unwind and returns `None`, so that compiled code traps and the trap handler unwinds
/// with the recorded reason.
///
/// # Safety
/// See the module's contract; `ask` may only call the hooks with their own `data`.
unsafe fn ask_store<R>(
    vmctx: *mut VMContext,
    ask: impl FnOnce(VMStoreHooks) -> Result<R, UnwindReason>,
) -> Option<R> {
    // SAFETY: per the module's contract the vmctx is live; its store context outlives
    // it, and only this thread touches it while its wasm runs.
    let hooks = unsafe { *(*caller(vmctx).store_context()).hooks.get() };
    let Some(hooks) = hooks else {
        record_unwind_reason(UnwindReason::Host(
            "the store answers no libcalls (a strata bug)".into(),
        ));
        return None;
    };
    // The hooks run embedder code (an epoch callback, a resource limiter); a panic must
    // not unwind into compiled frames, so it travels as the unwind reason instead.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ask(hooks)));
    match result {
        Ok(Ok(r)) => Some(r),
        Ok(Err(reason)) => {
            record_unwind_reason(reason);
            None
        }
        Err(payload) => {
            record_unwind_reason(UnwindReason::Panic(payload));
            None
        }
    }
}

/// The fuel counter reached zero.
///
/// # Safety
/// `vmctx` must be a live instance's vmctx; called only from its compiled code.
unsafe extern "C" fn out_of_gas(vmctx: *mut VMContext) -> u32 {
    // SAFETY: forwarded contract; the store set its hooks for itself and is suspended
    // in this libcall.
    let ok = unsafe { ask_store(vmctx, |h| (h.out_of_gas)(h.data)) };
    u32::from(ok.is_some())
}

/// The engine's epoch reached the store's deadline.
///
/// # Safety
/// `vmctx` must be a live instance's vmctx; called only from its compiled code.
unsafe extern "C" fn new_epoch(vmctx: *mut VMContext) -> u32 {
    // SAFETY: as in `out_of_gas`.
    let ok = unsafe { ask_store(vmctx, |h| (h.new_epoch)(h.data)) };
    u32::from(ok.is_some())
}

/// `a * b + c` with one rounding (the standard library's `mul_add`, correctly rounded
/// in software where the CPU has no fused instruction). The vmctx is unused.
extern "C" fn fma_f32(_vmctx: *mut VMContext, a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

/// As [`fma_f32`], for `f64`.
extern "C" fn fma_f64(_vmctx: *mut VMContext, a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

/// `exn_new`: a new exception of the caller's tag `tag`, with zeroed fields.
///
/// # Safety
/// `vmctx` must be a live instance's vmctx; called only from its compiled code.
unsafe extern "C" fn exn_new(vmctx: *mut VMContext, tag: u32) -> *mut u8 {
    // SAFETY: per the contract, `vmctx` belongs to a live instance nobody else holds.
    let instance = unsafe { caller(vmctx) };
    let tag = TagIndex::from_u32(tag);
    let fields = instance.tag_fields(tag);
    let identity = instance.tag_ptr(tag);
    // SAFETY: the store context outlives its instances, and only this thread touches
    // its exception heap while its wasm runs.
    let heap = unsafe { &mut *(*instance.store_context()).exceptions.get() };
    heap.alloc(identity, fields).as_raw()
}

/// `throw_ref`: throws `exn` from the wasm frame with frame pointer `fp`. Its return
/// address, the throwing frame's position, is read by a stub in front of
/// [`throw_from`], which this function's entry becomes.
///
/// # Safety
/// Called only by compiled code, with its own vmctx and frame pointer and a non-null
/// exception of its store.
#[unsafe(naked)]
unsafe extern "C" fn throw_ref(_vmctx: *mut VMContext, _exn: *mut u8, _fp: usize) -> ! {
    // The return address is the fourth argument; nothing is pushed, so `throw_from`
    // starts with the stack exactly as a direct call from wasm leaves it.
    #[cfg(target_arch = "x86_64")]
    core::arch::naked_asm!("mov rcx, [rsp]", "jmp {target}", target = sym throw_from);
    #[cfg(target_arch = "aarch64")]
    core::arch::naked_asm!("mov x3, x30", "b {target}", target = sym throw_from);
}

/// The body of [`throw_ref`], with the return address `pc` into the throwing frame.
///
/// # Safety
/// As [`throw_ref`]; `pc` is a return address in the frame of `fp`.
unsafe extern "C" fn throw_from(vmctx: *mut VMContext, exn: *mut u8, fp: usize, pc: usize) -> ! {
    // SAFETY: per the contract the vmctx is live and `exn` an object of its store.
    let (ctx, exn) = unsafe {
        let ctx = &*caller(vmctx).store_context();
        (
            ctx,
            crate::VMExnRef::from_raw(exn).expect("compiled code checks for null"),
        )
    };
    // SAFETY: the caller is the wasm frame `fp` at `pc`, running on this thread in an
    // activation of `ctx`; this frame owns nothing that needs dropping.
    unsafe { crate::exception::throw(ctx, exn, pc, fp) }
}

/// Runs a memory or table growth past the store's limiter: `grow` does it once the
/// limiter allows, and returns the old size or `None` on failure.
///
/// # Safety
/// See the module's contract.
unsafe fn limited_grow(
    vmctx: *mut VMContext,
    growth: Option<Growth>,
    grow: impl FnOnce(&mut Instance) -> Option<u64>,
) -> u64 {
    let Some(growth) = growth else {
        return u64::MAX;
    };
    // SAFETY: forwarded contract, as in `out_of_gas`.
    match unsafe { ask_store(vmctx, |h| (h.growing)(h.data, growth)) } {
        None => return GROW_TRAPPED,
        Some(false) => return u64::MAX,
        Some(true) => {}
    }
    // SAFETY: forwarded contract.
    if let Some(old) = grow(unsafe { caller(vmctx) }) {
        return old;
    }
    // SAFETY: as above.
    match unsafe { ask_store(vmctx, |h| (h.grow_failed)(h.data, growth)) } {
        None => GROW_TRAPPED,
        Some(()) => u64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;
    use strata_environ::{BuiltinFunctionIndex, Module, VMOffsets};

    #[test]
    fn fma_rounds_once() {
        // 1 + 2^-23 squared is 1 + 2^-22 + 2^-46: unfused, the 2^-46 is lost to the
        // product's rounding before -1 - 2^-22 cancels the rest.
        let x = 1.0 + f32::EPSILON;
        let c = -(1.0 + 2.0 * f32::EPSILON);
        assert_eq!(fma_f32(core::ptr::null_mut(), x, x, c), 2f32.powi(-46));
        let x = 1.0 + f64::EPSILON;
        let c = -(1.0 + 2.0 * f64::EPSILON);
        assert_eq!(fma_f64(core::ptr::null_mut(), x, x, c), 2f64.powi(-104));
    }

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
            offset_of!(VMBuiltinFunctions, table_grow),
            o.builtin_function(BuiltinFunctionIndex::TableGrow) as usize
        );
        assert_eq!(
            offset_of!(VMBuiltinFunctions, data_drop),
            o.builtin_function(BuiltinFunctionIndex::DataDrop) as usize
        );
        assert_eq!(
            offset_of!(VMBuiltinFunctions, table_get_lazy_init),
            o.builtin_function(BuiltinFunctionIndex::TableGetLazyInit) as usize
        );
        assert_eq!(
            offset_of!(VMBuiltinFunctions, fma_f64),
            o.builtin_function(BuiltinFunctionIndex::FmaF64) as usize
        );
        assert_eq!(
            size_of::<VMBuiltinFunctions>(),
            BuiltinFunctionIndex::COUNT as usize * size_of::<usize>()
        );
    }
}
