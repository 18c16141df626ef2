//! The layout of an instance's `VMContext` and of the `#[repr(C)]` structures compiled
//! code reads.
//!
//! The vmctx is a byte region whose layout depends on the module; the compiler and the
//! runtime both compute it here, so they cannot disagree. Every region is aligned to its
//! element's alignment.
//!
//! ```text
//!  offset  region                      element
//!  0       magic: u32 ("core") + pad
//!  8       store_context: *mut VMStoreContext
//!  16      builtin_functions: *const [fn; BuiltinFunctionIndex::COUNT]
//!  24      type_ids: *const u32        (module type index -> engine type id)
//!  32      memories[all]               *mut VMMemoryDefinition
//!  ..      memory_bases[all]           *mut u8 (null for a memory that may move)
//!  ..      tables[all]                 *mut VMTableDefinition
//!  ..      tags[all]                   *const VMTagDefinition
//!  ..      imported_functions[imports] VMFunctionImport { wasm_call, array_call, vmctx }
//!  ..      imported_globals[imports]   *mut VMGlobalDefinition
//!  (16)    globals[defined]            VMGlobalDefinition (16 bytes of storage)
//!  ..      func_refs[escaped]          VMFuncRef { array_call, wasm_call, vmctx, type_index }
//!  ..      defined_tags[defined]       VMTagDefinition { type_index: u32 }
//! ```
//!
//! A tag's identity is the address of its `VMTagDefinition`: the one in the defining
//! instance's vmctx (or in the store, for a tag the host made), which every instance
//! importing it points to as well.

use crate::{
    BuiltinFunctionIndex, DefinedGlobalIndex, DefinedTagIndex, EntityRef, FuncIndex, FuncRefIndex,
    GlobalIndex, MemoryIndex, Module, TableIndex, TagIndex,
};

/// The value of the magic word at offset 0 of every instance's vmctx.
pub const VM_CONTEXT_MAGIC: u32 = u32::from_le_bytes(*b"core");

/// Offsets of everything compiled code reads from a module's vmctx.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VMOffsets {
    ptr: u8,
    num_memories: u32,
    num_tables: u32,
    num_imported_funcs: u32,
    num_imported_globals: u32,
    num_defined_globals: u32,
    num_func_refs: u32,
    num_tags: u32,
    num_defined_tags: u32,
    memories: u32,
    memory_bases: u32,
    tables: u32,
    imported_functions: u32,
    imported_globals: u32,
    defined_globals: u32,
    func_refs: u32,
    tags: u32,
    defined_tags: u32,
    size: u32,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).expect("module entity counts are bounded by the validator")
}

fn align(offset: u32, to: u32) -> u32 {
    offset
        .checked_next_multiple_of(to)
        .expect("vmctx size overflow")
}

fn region(start: u32, align_to: u32, count: u32, elem: u32) -> (u32, u32) {
    let start = align(start, align_to);
    let len = count.checked_mul(elem).expect("vmctx size overflow");
    (start, start.checked_add(len).expect("vmctx size overflow"))
}

impl VMOffsets {
    /// The layout for `module` on a target whose pointers are `ptr` bytes wide.
    pub fn new(ptr: u8, module: &Module) -> VMOffsets {
        let p = u32::from(ptr);
        let mut o = VMOffsets {
            ptr,
            num_memories: count(module.memories.len()),
            num_tables: count(module.tables.len()),
            num_imported_funcs: count(module.num_imported_funcs),
            num_imported_globals: count(module.num_imported_globals),
            num_defined_globals: count(module.num_defined_globals()),
            num_func_refs: count(module.num_escaped_funcs),
            num_tags: count(module.tags.len()),
            num_defined_tags: count(module.num_defined_tags()),
            memories: 0,
            memory_bases: 0,
            tables: 0,
            imported_functions: 0,
            imported_globals: 0,
            defined_globals: 0,
            func_refs: 0,
            tags: 0,
            defined_tags: 0,
            size: 0,
        };
        let (memories, end) = region(VMOffsets::vmctx_memories_begin(ptr), p, o.num_memories, p);
        let (memory_bases, end) = region(end, p, o.num_memories, p);
        let (tables, end) = region(end, p, o.num_tables, p);
        let (tags, end) = region(end, p, o.num_tags, p);
        let import_size = u32::from(o.size_of_vmfunction_import());
        let (imported_functions, end) = region(end, p, o.num_imported_funcs, import_size);
        let (imported_globals, end) = region(end, p, o.num_imported_globals, p);
        let (defined_globals, end) = region(end, 16, o.num_defined_globals, 16);
        let func_ref_size = u32::from(o.size_of_vm_func_ref());
        let (func_refs, end) = region(end, p, o.num_func_refs, func_ref_size);
        let (defined_tags, end) = region(end, 4, o.num_defined_tags, 4);
        o.memories = memories;
        o.memory_bases = memory_bases;
        o.tables = tables;
        o.imported_functions = imported_functions;
        o.imported_globals = imported_globals;
        o.defined_globals = defined_globals;
        o.func_refs = func_refs;
        o.tags = tags;
        o.defined_tags = defined_tags;
        o.size = align(end, 16);
        o
    }

    /// The layout for `module` on the host.
    pub fn for_host(module: &Module) -> VMOffsets {
        VMOffsets::new(HOST_PTR, module)
    }

    /// Pointer width in bytes.
    pub fn pointer_size(&self) -> u8 {
        self.ptr
    }

    /// Total size of the vmctx in bytes.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Offset of the magic word.
    pub fn vmctx_magic(&self) -> u32 {
        0
    }

    /// Offset of the `*mut VMStoreContext`.
    pub fn vmctx_store_context(&self) -> u32 {
        u32::from(self.ptr)
    }

    /// Offset of the pointer to the builtin function table.
    pub fn vmctx_builtin_functions(&self) -> u32 {
        2 * u32::from(self.ptr)
    }

    /// Offset of the pointer to the module's engine type ids.
    pub fn vmctx_type_ids(&self) -> u32 {
        3 * u32::from(self.ptr)
    }

    /// Offset of the pointer to memory 0's `VMMemoryDefinition`. The pointers of all
    /// memories, imported ones first, follow the fixed header, so this is the same for
    /// every module: the runtime finds a memory's definition without the module's layout.
    pub const fn vmctx_memories_begin(ptr: u8) -> u32 {
        4 * ptr as u32
    }

    /// Offset of the pointer to memory `index`'s `VMMemoryDefinition`.
    pub fn vmctx_memory_definition_ptr(&self, index: MemoryIndex) -> u32 {
        assert!(count(index.index()) < self.num_memories);
        self.memories + count(index.index()) * u32::from(self.ptr)
    }

    /// Offset of memory `index`'s base address, kept in the vmctx itself so that
    /// compiled code reaches the heap with one load instead of two. It is set for a
    /// memory whose base never moves (a static reservation, see
    /// [`MemoryStyle`](crate::MemoryStyle), or a slot of the pooling allocator), once,
    /// when the instance is created; for any other memory it is null. Compiled code
    /// reads it for memories of the static style and reads the base of the others
    /// from their definition.
    pub fn vmctx_memory_base(&self, index: MemoryIndex) -> u32 {
        assert!(count(index.index()) < self.num_memories);
        self.memory_bases + count(index.index()) * u32::from(self.ptr)
    }

    /// Offset of the pointer to table `index`'s `VMTableDefinition`.
    pub fn vmctx_table_definition_ptr(&self, index: TableIndex) -> u32 {
        assert!(count(index.index()) < self.num_tables);
        self.tables + count(index.index()) * u32::from(self.ptr)
    }

    /// Offset of the pointer to tag `index`'s `VMTagDefinition`, its identity.
    pub fn vmctx_tag_ptr(&self, index: TagIndex) -> u32 {
        assert!(count(index.index()) < self.num_tags);
        self.tags + count(index.index()) * u32::from(self.ptr)
    }

    /// Offset of defined tag `index`'s `VMTagDefinition`.
    pub fn vmctx_tag_definition(&self, index: DefinedTagIndex) -> u32 {
        assert!(count(index.index()) < self.num_defined_tags);
        self.defined_tags + count(index.index()) * 4
    }

    /// Offset of the `VMFunctionImport` of imported function `index`.
    pub fn vmctx_function_import(&self, index: FuncIndex) -> u32 {
        assert!(count(index.index()) < self.num_imported_funcs);
        self.imported_functions + count(index.index()) * u32::from(self.size_of_vmfunction_import())
    }

    /// Offset of the pointer to imported global `index`'s `VMGlobalDefinition`.
    pub fn vmctx_global_import_ptr(&self, index: GlobalIndex) -> u32 {
        assert!(count(index.index()) < self.num_imported_globals);
        self.imported_globals + count(index.index()) * u32::from(self.ptr)
    }

    /// Offset of defined global `index`'s storage.
    pub fn vmctx_global_definition(&self, index: DefinedGlobalIndex) -> u32 {
        assert!(count(index.index()) < self.num_defined_globals);
        self.defined_globals + count(index.index()) * 16
    }

    /// Offset of the `VMFuncRef` in slot `index`.
    pub fn vmctx_func_ref(&self, index: FuncRefIndex) -> u32 {
        assert!(count(index.index()) < self.num_func_refs);
        self.func_refs + count(index.index()) * u32::from(self.size_of_vm_func_ref())
    }

    /// Offset of `builtin`'s entry in the builtin function table.
    pub fn builtin_function(&self, builtin: BuiltinFunctionIndex) -> u32 {
        builtin.index() * u32::from(self.ptr)
    }

    /// `VMFunctionImport::wasm_call`.
    pub fn vmfunction_import_wasm_call(&self) -> u8 {
        0
    }
    /// `VMFunctionImport::array_call`.
    pub fn vmfunction_import_array_call(&self) -> u8 {
        self.ptr
    }
    /// `VMFunctionImport::vmctx`.
    pub fn vmfunction_import_vmctx(&self) -> u8 {
        2 * self.ptr
    }
    /// Size of `VMFunctionImport`.
    pub fn size_of_vmfunction_import(&self) -> u8 {
        3 * self.ptr
    }

    /// `VMFuncRef::array_call`.
    pub fn vm_func_ref_array_call(&self) -> u8 {
        0
    }
    /// `VMFuncRef::wasm_call`.
    pub fn vm_func_ref_wasm_call(&self) -> u8 {
        self.ptr
    }
    /// `VMFuncRef::vmctx`.
    pub fn vm_func_ref_vmctx(&self) -> u8 {
        2 * self.ptr
    }
    /// `VMFuncRef::type_index` (a `u32`).
    pub fn vm_func_ref_type_index(&self) -> u8 {
        3 * self.ptr
    }
    /// Size of `VMFuncRef`.
    pub fn size_of_vm_func_ref(&self) -> u8 {
        4 * self.ptr
    }

    /// `VMMemoryDefinition::base`.
    pub fn vmmemory_definition_base(&self) -> u8 {
        0
    }
    /// `VMMemoryDefinition::current_length`.
    pub fn vmmemory_definition_current_length(&self) -> u8 {
        self.ptr
    }

    /// `VMTableDefinition::base`.
    pub fn vmtable_definition_base(&self) -> u8 {
        0
    }
    /// `VMTableDefinition::current_elements`.
    pub fn vmtable_definition_current_elements(&self) -> u8 {
        self.ptr
    }

    /// The tag of an exception object: a `*const VMTagDefinition`, its identity.
    pub fn exn_tag(&self) -> u8 {
        0
    }
    /// Offset of field `index` of an exception object. Every field has 16 bytes, so
    /// any value type fits in one.
    pub fn exn_field(&self, index: usize) -> u32 {
        EXN_HEADER + count(index) * 16
    }

    /// `VMStoreContext::stack_limit`.
    pub fn vmstore_context_stack_limit(&self) -> u8 {
        0
    }
    /// `VMStoreContext::last_wasm_exit_trampoline_fp`.
    pub fn vmstore_context_last_wasm_exit_trampoline_fp(&self) -> u8 {
        self.ptr
    }
    /// `VMStoreContext::last_wasm_exit_pc`.
    pub fn vmstore_context_last_wasm_exit_pc(&self) -> u8 {
        2 * self.ptr
    }
    /// `VMStoreContext::last_wasm_entry_sp`.
    pub fn vmstore_context_last_wasm_entry_sp(&self) -> u8 {
        3 * self.ptr
    }
    /// `VMStoreContext::last_wasm_entry_fp`.
    pub fn vmstore_context_last_wasm_entry_fp(&self) -> u8 {
        4 * self.ptr
    }
    /// `VMStoreContext::last_wasm_entry_trap_handler`.
    pub fn vmstore_context_last_wasm_entry_trap_handler(&self) -> u8 {
        5 * self.ptr
    }
    /// `VMStoreContext::fuel_consumed`: an `i64` that counts up towards zero; at zero or
    /// above the store is out of fuel.
    pub fn vmstore_context_fuel_consumed(&self) -> u8 {
        6 * self.ptr
    }
    /// `VMStoreContext::epoch_deadline`: a `u64`; code stops once the engine's epoch
    /// reaches it.
    pub fn vmstore_context_epoch_deadline(&self) -> u8 {
        6 * self.ptr + 8
    }
    /// `VMStoreContext::epoch_ptr`: the address of the engine's epoch counter (`u64`).
    pub fn vmstore_context_epoch_ptr(&self) -> u8 {
        6 * self.ptr + 16
    }

    /// `VMHostFuncContext::func_ref`: where a host function's context keeps its
    /// `VMFuncRef` (after the magic word), so the wasm-to-host trampoline can find the
    /// Rust `array_call` entry from the callee vmctx.
    pub fn vmhost_func_context_func_ref(&self) -> u8 {
        self.ptr
    }
}

/// The bytes of an exception object before its fields: the tag pointer, padded so
/// that the fields are 16-byte aligned.
pub const EXN_HEADER: u32 = 16;

/// The pointer width of the host.
pub const HOST_PTR: u8 = {
    let size = core::mem::size_of::<usize>();
    assert!(size == 4 || size == 8);
    size as u8
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EntityRef, Global, Memory, ModuleFunction, TypeIndex, WasmValType};

    fn sample() -> Module {
        let mut m = Module::default();
        m.memories.push(Memory {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: 16,
        });
        m.num_imported_funcs = 1;
        m.num_imported_globals = 1;
        for _ in 0..3 {
            m.functions.push(ModuleFunction {
                signature: TypeIndex::new(0),
                func_ref: None,
            });
        }
        for _ in 0..4 {
            m.globals.push(Global {
                ty: WasmValType::I64,
                mutable: true,
            });
        }
        m.num_escaped_funcs = 2;
        m
    }

    #[test]
    fn regions_follow_each_other_in_order() {
        let o = VMOffsets::new(8, &sample());
        assert_eq!(o.vmctx_memory_definition_ptr(MemoryIndex::new(0)), 32);
        assert_eq!(o.vmctx_memory_base(MemoryIndex::new(0)), 40);
        assert_eq!(o.vmctx_function_import(FuncIndex::new(0)), 48);
        assert_eq!(o.vmctx_global_import_ptr(GlobalIndex::new(0)), 72);
        assert_eq!(o.vmctx_global_definition(DefinedGlobalIndex::new(0)), 80);
        assert_eq!(o.vmctx_global_definition(DefinedGlobalIndex::new(2)), 112);
        assert_eq!(o.vmctx_func_ref(FuncRefIndex::new(0)), 128);
        assert_eq!(o.vmctx_func_ref(FuncRefIndex::new(1)), 160);
        assert_eq!(o.size(), 192);
    }

    #[test]
    fn every_region_is_aligned_on_32_bit_targets_too() {
        let o = VMOffsets::new(4, &sample());
        assert_eq!(o.vmctx_memory_definition_ptr(MemoryIndex::new(0)), 16);
        assert_eq!(
            o.vmctx_global_definition(DefinedGlobalIndex::new(0)) % 16,
            0
        );
        assert_eq!(o.vmctx_func_ref(FuncRefIndex::new(0)) % 4, 0);
        assert_eq!(o.size() % 16, 0);
    }

    #[test]
    #[should_panic]
    fn out_of_range_indices_are_rejected() {
        VMOffsets::new(8, &sample()).vmctx_global_import_ptr(GlobalIndex::new(1));
    }

    #[test]
    fn empty_module_has_just_the_header() {
        assert_eq!(VMOffsets::new(8, &Module::default()).size(), 32);
    }
}
