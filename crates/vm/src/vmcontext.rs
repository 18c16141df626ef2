//! `#[repr(C)]` structures that compiled code reads and writes. Their layout must match
//! [`strata_environ::VMOffsets`]; the tests at the bottom pin every field.

use crate::UnwindReason;
use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::AtomicU64;

/// The opaque vmctx of an instance; compiled code receives a pointer to it.
#[repr(C, align(16))]
pub struct VMContext {
    pub(crate) _marker: core::marker::PhantomPinned,
}

/// A 16-byte slot of the array-call ABI holding one value, little-endian.
#[derive(Copy, Clone, Default, Debug, PartialEq, Eq)]
#[repr(C, align(16))]
pub struct ValRaw([u8; 16]);

impl ValRaw {
    /// A slot holding a 32-bit integer.
    pub fn i32(v: i32) -> ValRaw {
        ValRaw::u128(u128::from(v.cast_unsigned()))
    }
    /// A slot holding a 64-bit integer.
    pub fn i64(v: i64) -> ValRaw {
        ValRaw::u128(u128::from(v.cast_unsigned()))
    }
    /// A slot holding raw bits.
    pub fn u128(v: u128) -> ValRaw {
        ValRaw(v.to_le_bytes())
    }
    /// A slot holding a pointer.
    pub fn ptr(p: *mut u8) -> ValRaw {
        ValRaw::u128(p as usize as u128)
    }
    /// The low 32 bits.
    pub fn get_i32(&self) -> i32 {
        i32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
    /// The low 64 bits.
    pub fn get_i64(&self) -> i64 {
        i64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"))
    }
    /// All 128 bits.
    pub fn get_u128(&self) -> u128 {
        u128::from_le_bytes(self.0)
    }
    /// The low bits as a pointer.
    pub fn get_ptr(&self) -> *mut u8 {
        usize::from_le_bytes(
            self.0[..size_of::<usize>()]
                .try_into()
                .expect("pointer bytes"),
        ) as *mut u8
    }
}

/// The entry point of every callable:
/// `(callee_vmctx, caller_vmctx, values, len) -> success`.
pub type VMArrayCallFunction =
    unsafe extern "C" fn(*mut VMContext, *mut VMContext, *mut ValRaw, usize) -> bool;

/// A function reference: everything needed to call a function from host or wasm.
#[derive(Debug)]
#[repr(C)]
pub struct VMFuncRef {
    /// Entry in the array-call convention.
    pub array_call: VMArrayCallFunction,
    /// Entry in the wasm convention, or null for a host function that no module has
    /// given a trampoline yet.
    pub wasm_call: *const u8,
    /// The callee vmctx to pass.
    pub vmctx: *mut VMContext,
    /// The engine-wide id of the function's type.
    pub type_index: u32,
}

/// An imported function as the importing instance sees it.
#[derive(Debug)]
#[repr(C)]
pub struct VMFunctionImport {
    /// Entry in the wasm convention.
    pub wasm_call: *const u8,
    /// Entry in the array-call convention.
    pub array_call: VMArrayCallFunction,
    /// The callee vmctx to pass.
    pub vmctx: *mut VMContext,
}

/// Where a linear memory is and how long it is now.
#[derive(Debug)]
#[repr(C)]
pub struct VMMemoryDefinition {
    /// The first byte.
    pub base: *mut u8,
    /// The accessible length in bytes.
    pub current_length: usize,
}

/// Where a table's elements are and how many there are.
#[derive(Debug)]
#[repr(C)]
pub struct VMTableDefinition {
    /// The first element (each a `*mut VMFuncRef` or other pointer-sized reference).
    pub base: *mut *mut u8,
    /// The number of elements.
    pub current_elements: usize,
}

/// Storage of one global: 16 bytes, enough for a `v128`.
#[derive(Debug, Default)]
#[repr(C, align(16))]
pub struct VMGlobalDefinition {
    storage: UnsafeCell<[u8; 16]>,
}

impl VMGlobalDefinition {
    /// A pointer to the storage.
    pub fn as_ptr(&self) -> *mut u8 {
        self.storage.get().cast()
    }
}

/// An exception tag. Its address is the tag's identity: every instance importing the
/// tag points to the definition in the defining instance's vmctx (or the store, for a
/// tag the host made).
#[derive(Debug)]
#[repr(C)]
pub struct VMTagDefinition {
    /// The engine-wide id of the tag's function type.
    pub type_index: u32,
}

/// Per-store state shared by all instances of a store and written by compiled code.
#[derive(Debug)]
#[repr(C, align(16))]
pub struct VMStoreContext {
    /// The lowest stack address wasm may use; `usize::MAX` outside wasm.
    pub stack_limit: UnsafeCell<usize>,
    /// The frame pointer of the newest wasm-to-host trampoline.
    pub last_wasm_exit_trampoline_fp: UnsafeCell<usize>,
    /// The wasm return address into the newest wasm-to-host trampoline.
    pub last_wasm_exit_pc: UnsafeCell<usize>,
    /// The stack pointer of the newest host-to-wasm trampoline before its call.
    pub last_wasm_entry_sp: UnsafeCell<usize>,
    /// The frame pointer of the newest host-to-wasm trampoline.
    pub last_wasm_entry_fp: UnsafeCell<usize>,
    /// Where a trap resumes in the newest host-to-wasm trampoline.
    pub last_wasm_entry_trap_handler: UnsafeCell<usize>,
    /// Fuel used, counting up from minus the fuel the store was given; at zero or above
    /// the store is out of fuel (with fuel consumption on).
    pub fuel_consumed: UnsafeCell<i64>,
    /// The epoch at which running code stops (with epoch interruption on).
    pub epoch_deadline: UnsafeCell<u64>,
    /// The engine's epoch counter (with epoch interruption on).
    pub epoch_ptr: UnsafeCell<*const AtomicU64>,
    /// What libcalls ask of the store; not read by compiled code.
    pub hooks: UnsafeCell<Option<VMStoreHooks>>,
    /// The store's exception objects; not read by compiled code.
    pub exceptions: UnsafeCell<crate::ExnHeap>,
}

impl Default for VMStoreContext {
    fn default() -> Self {
        static NO_EPOCH: AtomicU64 = AtomicU64::new(0);
        VMStoreContext {
            stack_limit: UnsafeCell::new(usize::MAX),
            last_wasm_exit_trampoline_fp: UnsafeCell::new(0),
            last_wasm_exit_pc: UnsafeCell::new(0),
            last_wasm_entry_sp: UnsafeCell::new(0),
            last_wasm_entry_fp: UnsafeCell::new(0),
            last_wasm_entry_trap_handler: UnsafeCell::new(0),
            fuel_consumed: UnsafeCell::new(0),
            epoch_deadline: UnsafeCell::new(0),
            epoch_ptr: UnsafeCell::new(&raw const NO_EPOCH),
            hooks: UnsafeCell::new(None),
            exceptions: UnsafeCell::new(crate::ExnHeap::default()),
        }
    }
}

/// The store's answers to what compiled code runs into: a hand-made trait object over
/// the embedder's store (its type parameter needs no `'static` bound this way).
///
/// Each function gets `data` and runs on the thread running the store's wasm, while
/// that wasm is suspended in a libcall; an `Err` unwinds the wasm with that reason.
#[derive(Copy, Clone, Debug)]
pub struct VMStoreHooks {
    /// The store, as the functions below expect it.
    pub data: *mut (),
    /// The fuel counter reached zero: refill it (`Ok`) or stop.
    pub out_of_gas: unsafe fn(*mut ()) -> Result<(), UnwindReason>,
    /// The engine's epoch reached the deadline: move the deadline (`Ok`) or stop.
    pub new_epoch: unsafe fn(*mut ()) -> Result<(), UnwindReason>,
    /// A memory or table wants to grow from `current` to `desired` (bytes or
    /// elements; `maximum` is its declared limit): allow it (`Ok(true)`), refuse it
    /// (`Ok(false)`: the grow instruction returns -1) or stop.
    pub growing: unsafe fn(*mut (), Growth) -> Result<bool, UnwindReason>,
    /// An allowed growth failed: carry on (the instruction returns -1) or stop.
    pub grow_failed: unsafe fn(*mut (), Growth) -> Result<(), UnwindReason>,
}

/// A memory or table growth the store is asked about.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Growth {
    /// Whether a memory (sizes in bytes) or a table (sizes in elements) grows.
    pub memory: bool,
    /// The current size.
    pub current: usize,
    /// The size asked for.
    pub desired: usize,
    /// The declared maximum, if any.
    pub maximum: Option<usize>,
}

impl Growth {
    /// A memory of type `ty` growing from `current` bytes by `delta` pages; `None` if
    /// the new size does not fit the address space.
    pub fn of_memory(ty: &strata_environ::Memory, current: usize, delta: u64) -> Option<Growth> {
        let bytes = |pages: u64| {
            pages
                .checked_mul(ty.page_size())
                .and_then(|b| usize::try_from(b).ok())
        };
        Some(Growth {
            memory: true,
            current,
            desired: bytes(delta)?.checked_add(current)?,
            maximum: ty.maximum.and_then(bytes),
        })
    }

    /// A table of type `ty` growing from `current` elements by `delta`; `None` if the
    /// new size does not fit the address space.
    pub fn of_table(ty: &strata_environ::Table, current: u64, delta: u64) -> Option<Growth> {
        Some(Growth {
            memory: false,
            current: usize::try_from(current).ok()?,
            desired: usize::try_from(current.checked_add(delta)?).ok()?,
            maximum: ty.maximum.and_then(|m| usize::try_from(m).ok()),
        })
    }
}

// SAFETY: the cells are only touched by the thread currently running the store, which
// owns it mutably (a `Store` is `Send`, not shared).
unsafe impl Send for VMStoreContext {}
// SAFETY: as above.
unsafe impl Sync for VMStoreContext {}

/// The callee context of a host function: a magic word and its [`VMFuncRef`], followed
/// by the embedder's data.
#[repr(C)]
pub struct VMHostFuncContext<T> {
    magic: u32,
    /// The function reference (its `vmctx` points back at this context).
    pub func_ref: VMFuncRef,
    /// The embedder's data (the closure and whatever it needs).
    pub data: T,
}

/// The magic word of host function contexts.
pub const VM_HOST_FUNC_MAGIC: u32 = u32::from_le_bytes(*b"ACHF");

impl<T> VMHostFuncContext<T> {
    /// Boxes a context for `array_call` of engine type `type_index`; its `vmctx` points
    /// at the context itself.
    pub fn new(array_call: VMArrayCallFunction, type_index: u32, data: T) -> Box<Self> {
        let mut ctx = Box::new(VMHostFuncContext {
            magic: VM_HOST_FUNC_MAGIC,
            func_ref: VMFuncRef {
                array_call,
                wasm_call: core::ptr::null(),
                vmctx: core::ptr::null_mut(),
                type_index,
            },
            data,
        });
        let this: *mut Self = &mut *ctx;
        ctx.func_ref.vmctx = this.cast();
        ctx
    }

    /// The context behind a host function's `vmctx`.
    ///
    /// # Safety
    /// `vmctx` must come from [`VMHostFuncContext::new`] with the same `T`, and the
    /// context must still be alive.
    pub unsafe fn from_vmctx<'a>(vmctx: *mut VMContext) -> &'a VMHostFuncContext<T> {
        // SAFETY: guaranteed by the caller.
        let ctx = unsafe { &*vmctx.cast::<VMHostFuncContext<T>>() };
        debug_assert_eq!(ctx.magic, VM_HOST_FUNC_MAGIC);
        ctx
    }

    /// A pointer to the function reference, for tables and imports.
    pub fn func_ref_ptr(&self) -> NonNull<VMFuncRef> {
        NonNull::from(&self.func_ref)
    }
}

// SAFETY: the context's pointers refer to itself and to code; `T` decides the rest.
unsafe impl<T: Send> Send for VMHostFuncContext<T> {}

/// A raw pointer that may cross threads, for structures whose owner guarantees that only
/// one thread uses the pointee at a time (a store and everything in it).
#[derive(Debug)]
pub struct SendSyncPtr<T: ?Sized>(pub NonNull<T>);

impl<T: ?Sized> Clone for SendSyncPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: ?Sized> Copy for SendSyncPtr<T> {}

// SAFETY: users promise single-threaded use of the pointee (see the type's docs).
unsafe impl<T: ?Sized> Send for SendSyncPtr<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized> Sync for SendSyncPtr<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;
    use strata_environ::{Module, VMOffsets};

    fn offsets() -> VMOffsets {
        VMOffsets::for_host(&Module::default())
    }

    #[test]
    fn func_ref_matches_offsets() {
        let o = offsets();
        assert_eq!(
            offset_of!(VMFuncRef, array_call),
            usize::from(o.vm_func_ref_array_call())
        );
        assert_eq!(
            offset_of!(VMFuncRef, wasm_call),
            usize::from(o.vm_func_ref_wasm_call())
        );
        assert_eq!(
            offset_of!(VMFuncRef, vmctx),
            usize::from(o.vm_func_ref_vmctx())
        );
        assert_eq!(
            offset_of!(VMFuncRef, type_index),
            usize::from(o.vm_func_ref_type_index())
        );
        assert_eq!(size_of::<VMFuncRef>(), usize::from(o.size_of_vm_func_ref()));
    }

    #[test]
    fn function_import_matches_offsets() {
        let o = offsets();
        assert_eq!(
            offset_of!(VMFunctionImport, wasm_call),
            usize::from(o.vmfunction_import_wasm_call())
        );
        assert_eq!(
            offset_of!(VMFunctionImport, array_call),
            usize::from(o.vmfunction_import_array_call())
        );
        assert_eq!(
            offset_of!(VMFunctionImport, vmctx),
            usize::from(o.vmfunction_import_vmctx())
        );
        assert_eq!(
            size_of::<VMFunctionImport>(),
            usize::from(o.size_of_vmfunction_import())
        );
    }

    #[test]
    fn memory_and_table_definitions_match_offsets() {
        let o = offsets();
        assert_eq!(
            offset_of!(VMMemoryDefinition, base),
            usize::from(o.vmmemory_definition_base())
        );
        assert_eq!(
            offset_of!(VMMemoryDefinition, current_length),
            usize::from(o.vmmemory_definition_current_length())
        );
        assert_eq!(
            offset_of!(VMTableDefinition, base),
            usize::from(o.vmtable_definition_base())
        );
        assert_eq!(
            offset_of!(VMTableDefinition, current_elements),
            usize::from(o.vmtable_definition_current_elements())
        );
        assert_eq!(size_of::<VMGlobalDefinition>(), 16);
    }

    #[test]
    fn store_context_matches_offsets() {
        let o = offsets();
        assert_eq!(
            offset_of!(VMStoreContext, stack_limit),
            usize::from(o.vmstore_context_stack_limit())
        );
        assert_eq!(
            offset_of!(VMStoreContext, last_wasm_exit_trampoline_fp),
            usize::from(o.vmstore_context_last_wasm_exit_trampoline_fp())
        );
        assert_eq!(
            offset_of!(VMStoreContext, last_wasm_exit_pc),
            usize::from(o.vmstore_context_last_wasm_exit_pc())
        );
        assert_eq!(
            offset_of!(VMStoreContext, last_wasm_entry_sp),
            usize::from(o.vmstore_context_last_wasm_entry_sp())
        );
        assert_eq!(
            offset_of!(VMStoreContext, last_wasm_entry_fp),
            usize::from(o.vmstore_context_last_wasm_entry_fp())
        );
        assert_eq!(
            offset_of!(VMStoreContext, last_wasm_entry_trap_handler),
            usize::from(o.vmstore_context_last_wasm_entry_trap_handler())
        );
        assert_eq!(
            offset_of!(VMStoreContext, fuel_consumed),
            usize::from(o.vmstore_context_fuel_consumed())
        );
        assert_eq!(
            offset_of!(VMStoreContext, epoch_deadline),
            usize::from(o.vmstore_context_epoch_deadline())
        );
        assert_eq!(
            offset_of!(VMStoreContext, epoch_ptr),
            usize::from(o.vmstore_context_epoch_ptr())
        );
    }

    #[test]
    fn host_func_context_keeps_its_func_ref_where_trampolines_look() {
        let o = offsets();
        assert_eq!(
            offset_of!(VMHostFuncContext<u64>, func_ref),
            usize::from(o.vmhost_func_context_func_ref())
        );
        unsafe extern "C" fn nop(
            _: *mut VMContext,
            _: *mut VMContext,
            _: *mut ValRaw,
            _: usize,
        ) -> bool {
            true
        }
        let ctx = VMHostFuncContext::new(nop, 3, 42u64);
        assert_eq!(
            ctx.func_ref
                .vmctx
                .cast::<VMHostFuncContext<u64>>()
                .cast_const(),
            &*ctx as *const _
        );
        // SAFETY: the vmctx was made by `new` with `T = u64` and `ctx` is alive.
        let data = unsafe { VMHostFuncContext::<u64>::from_vmctx(ctx.func_ref.vmctx) }.data;
        assert_eq!(data, 42);
    }

    #[test]
    fn val_raw_round_trips() {
        assert_eq!(ValRaw::i32(-5).get_i32(), -5);
        assert_eq!(ValRaw::i64(i64::MIN).get_i64(), i64::MIN);
        assert_eq!(ValRaw::u128(u128::MAX).get_u128(), u128::MAX);
        let p = 0x1234usize as *mut u8;
        assert_eq!(ValRaw::ptr(p).get_ptr(), p);
    }
}
