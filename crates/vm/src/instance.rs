//! Instances: an `Instance` header and the module's vmctx in one allocation.
//!
//! ```text
//!  allocation:  [ Instance { runtime info, memories, tables, ... } | vmctx bytes ... ]
//!                                                                 ^ the pointer compiled code gets
//! ```
//!
//! Libcalls get from a vmctx to its `Instance` by subtracting the header's size.

mod bulk;

use crate::allocator::InstanceAllocator;
use crate::code_memory::CodeObject;
use crate::libcalls::BUILTINS;
use crate::vmcontext::{
    Growth, VMContext, VMFuncRef, VMFunctionImport, VMGlobalDefinition, VMStoreContext,
    VMTagDefinition,
};
use crate::{Memory, Table, VmError};
use core::alloc::Layout;
use core::mem::offset_of;
use core::ptr::NonNull;
use std::sync::Arc;
use strata_environ::{
    ConstExpr, ConstOp, DefinedMemoryIndex, DefinedTableIndex, ElemSegmentMode, EntityRef,
    FuncIndex, GlobalIndex, MemoryIndex, Module, PrimaryMap, TableIndex, TagIndex, Trap, Tunables,
    VM_CONTEXT_MAGIC, VMOffsets, WasmValType,
};

/// What the runtime needs to know about a module to instantiate it.
///
/// Aligned so that, behind an `Arc`, the reference count (which every instance of the
/// module updates) sits on another cache line than the fields instantiation reads:
/// threads instantiating the module at once would otherwise keep stealing that line.
#[repr(align(128))]
pub struct ModuleRuntimeInfo {
    /// The module's metadata.
    pub module: Arc<Module>,
    /// Its vmctx layout.
    pub offsets: VMOffsets,
    /// The engine-wide id of each of the module's types.
    pub type_ids: Box<[u32]>,
    /// Its compiled code; `None` for the code-less modules that hold host-made memories,
    /// tables and globals.
    pub code: Option<Arc<CodeObject>>,
    /// Whether its memories start from copy-on-write images.
    pub memory_init_cow: bool,
    /// Copy-on-write images of its defined memories, built at the first instantiation
    /// (empty when images are off); see [`ModuleRuntimeInfo::memory_images`].
    pub memory_images: std::sync::OnceLock<crate::ModuleMemoryImages>,
}

impl ModuleRuntimeInfo {
    /// The bytes of the module's data segments, checked against the artifact's
    /// checksum on first use; empty for a module without code.
    ///
    /// # Errors
    /// [`VmError::CorruptedData`] if they do not match it.
    pub fn wasm_data(&self) -> Result<&[u8], VmError> {
        self.code.as_ref().map_or(Ok(&[]), |code| code.wasm_data())
    }

    /// The images of the module's defined memories, built on first use so that
    /// loading a module costs nothing per data segment.
    ///
    /// # Errors
    /// Fails if an image cannot be built (a memfd cannot be created or written).
    pub fn memory_images(&self) -> Result<&crate::ModuleMemoryImages, VmError> {
        if let Some(images) = self.memory_images.get() {
            return Ok(images);
        }
        let images = if self.memory_init_cow {
            let file = self.code.as_ref().and_then(|code| code.data_file());
            crate::ModuleMemoryImages::new(&self.module, self.wasm_data()?, file)?
        } else {
            crate::ModuleMemoryImages::default()
        };
        // Two threads may build images at once; the loser's are dropped.
        Ok(self.memory_images.get_or_init(|| images))
    }
}

/// The value of a constant expression.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum ConstValue {
    /// Raw bits of a number (zero-extended).
    Bits(u128),
    /// A reference (null or a pointer).
    Ref(*mut u8),
}

/// The definitions an instance imports, in import order per kind.
#[derive(Default)]
pub struct Imports {
    /// Functions.
    pub functions: Vec<NonNull<VMFuncRef>>,
    /// Tables, as their owning instance and defined index.
    pub tables: Vec<(InstanceHandleRef, DefinedTableIndex)>,
    /// Memories, as their owning instance and defined index.
    pub memories: Vec<(InstanceHandleRef, DefinedMemoryIndex)>,
    /// Globals' storage.
    pub globals: Vec<NonNull<VMGlobalDefinition>>,
    /// Tags, by their identity.
    pub tags: Vec<NonNull<VMTagDefinition>>,
}

/// Everything needed to allocate an instance.
pub struct InstanceAllocationRequest<'a> {
    /// The module.
    pub runtime: Arc<ModuleRuntimeInfo>,
    /// Resolved imports.
    pub imports: Imports,
    /// The store's context, shared by all its instances.
    pub store_context: *const VMStoreContext,
    /// The embedder's id for this instance (its index in the store).
    pub id: usize,
    /// Layout settings.
    pub tunables: &'a Tunables,
}

#[repr(C)]
pub(crate) struct Instance {
    runtime: Arc<ModuleRuntimeInfo>,
    id: usize,
    memories: PrimaryMap<DefinedMemoryIndex, Memory>,
    tables: PrimaryMap<DefinedTableIndex, Table>,
    imported_memories: Vec<(InstanceHandleRef, DefinedMemoryIndex)>,
    imported_tables: Vec<(InstanceHandleRef, DefinedTableIndex)>,
    /// Which element segments were dropped (by `elem.drop`, or by instantiation for
    /// active and declared segments); a dropped segment reads as empty.
    dropped_elems: Vec<bool>,
    /// Which data segments were dropped, likewise.
    dropped_data: Vec<bool>,
    /// The instance's claim on its allocator.
    slot: Option<crate::InstanceSlot>,
    vmctx: VMContext,
}

/// A non-owning pointer to an instance, for import bookkeeping.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct InstanceHandleRef(NonNull<Instance>);

// SAFETY: a plain pointer; dereferencing it is governed by the store that owns both ends.
unsafe impl Send for InstanceHandleRef {}
// SAFETY: as above.
unsafe impl Sync for InstanceHandleRef {}

impl InstanceHandleRef {
    /// The embedder's id of the instance.
    ///
    /// # Safety
    /// The instance must be alive.
    pub unsafe fn id(self) -> usize {
        // SAFETY: guaranteed by the caller.
        unsafe { self.0.as_ref().id }
    }
}

/// The embedder's id of the instance whose vmctx is `vmctx`, or `None` if `vmctx` is
/// not an instance's (a host function's context, for example).
///
/// # Safety
/// `vmctx` must point to a live instance vmctx or host function context, and no
/// `&mut Instance` of that instance may be in use across this call (strata calls it only
/// where wasm enters a host function, when the instance is reached through raw
/// pointers alone).
pub unsafe fn instance_id_of_vmctx(vmctx: *mut VMContext) -> Option<usize> {
    // SAFETY: both kinds of context start with a readable magic word.
    let magic = unsafe { vmctx.cast::<u32>().read() };
    if magic != strata_environ::VM_CONTEXT_MAGIC {
        return None;
    }
    // SAFETY: the magic says this is an instance's vmctx, which sits at this fixed offset
    // inside its live instance's allocation. The id is read in place through a raw
    // pointer, and the caller guarantees that no `&mut Instance` is in use meanwhile.
    let id = unsafe {
        let instance = vmctx
            .byte_sub(offset_of!(Instance, vmctx))
            .cast::<Instance>();
        (*instance).id
    };
    Some(id)
}

impl Instance {
    fn layout(offsets: &VMOffsets) -> Layout {
        let size = offset_of!(Instance, vmctx) + offsets.size() as usize;
        Layout::from_size_align(size, align_of::<Instance>()).expect("instance layout")
    }

    /// The instance owning `vmctx`.
    ///
    /// # Safety
    /// `vmctx` must be the vmctx of a live instance, and no other reference to that
    /// instance may be in use.
    pub(crate) unsafe fn from_vmctx<'a>(vmctx: *mut VMContext) -> &'a mut Instance {
        // SAFETY: the vmctx sits at this fixed offset inside its instance's allocation.
        unsafe {
            &mut *vmctx
                .byte_sub(offset_of!(Instance, vmctx))
                .cast::<Instance>()
        }
    }

    fn vmctx_ptr(&mut self) -> *mut VMContext {
        &raw mut self.vmctx
    }

    fn offsets(&self) -> &VMOffsets {
        &self.runtime.offsets
    }

    /// # Safety
    /// `offset` must name a field of type `T` inside this vmctx.
    unsafe fn vmctx_field<T>(&mut self, offset: u32) -> *mut T {
        // SAFETY: the allocation extends `offsets.size()` bytes past `vmctx`.
        unsafe { self.vmctx_ptr().byte_add(offset as usize).cast() }
    }

    /// The number of fields of an exception of tag `index`.
    pub(crate) fn tag_fields(&self, index: TagIndex) -> usize {
        self.runtime.module.tag_type(index).params().len()
    }

    /// The identity of tag `index`: its definition, here or in the instance (or store)
    /// it is imported from.
    pub(crate) fn tag_ptr(&mut self, index: TagIndex) -> NonNull<VMTagDefinition> {
        let off = self.offsets().vmctx_tag_ptr(index);
        // SAFETY: the vmctx holds every tag's pointer at that offset, written (non-null)
        // when the instance was created.
        unsafe { NonNull::new_unchecked(*self.vmctx_field::<*mut VMTagDefinition>(off)) }
    }

    /// The store context this instance's vmctx points to.
    pub(crate) fn store_context(&mut self) -> *const VMStoreContext {
        let off = self.offsets().vmctx_store_context();
        // SAFETY: the vmctx holds the store context pointer at that offset, written when
        // the instance was created.
        unsafe { *self.vmctx_field::<*const VMStoreContext>(off) }
    }

    fn memory_owner(&mut self, index: MemoryIndex) -> (&mut Instance, DefinedMemoryIndex) {
        match self.runtime.module.defined_memory_index(index) {
            Some(def) => (self, def),
            None => {
                let (owner, def) = self.imported_memories[index.index()];
                // SAFETY: imported instances outlive importers (the store keeps all), and
                // the store runs one thread at a time.
                (unsafe { &mut *owner.0.as_ptr() }, def)
            }
        }
    }

    fn table_owner(&mut self, index: TableIndex) -> (&mut Instance, DefinedTableIndex) {
        match self.runtime.module.defined_table_index(index) {
            Some(def) => (self, def),
            None => {
                let (owner, def) = self.imported_tables[index.index()];
                // SAFETY: as in `memory_owner`.
                (unsafe { &mut *owner.0.as_ptr() }, def)
            }
        }
    }

    /// Grows memory `index` by `delta` pages; the old size, or `None`.
    ///
    /// # Safety
    /// Only the store's running thread may call this.
    pub(crate) unsafe fn memory_grow(&mut self, index: MemoryIndex, delta: u64) -> Option<u64> {
        let (owner, def) = self.memory_owner(index);
        owner.memories[def].grow(delta).ok().flatten()
    }

    /// What growing memory `index` by `delta` pages asks for, or `None` if the size
    /// would not fit the address space.
    pub(crate) fn memory_growth(&mut self, index: MemoryIndex, delta: u64) -> Option<Growth> {
        let (owner, def) = self.memory_owner(index);
        let memory = &owner.memories[def];
        Growth::of_memory(memory.ty(), memory.byte_size(), delta)
    }

    /// What growing table `index` by `delta` elements asks for, or `None` if the size
    /// would not fit the address space.
    pub(crate) fn table_growth(&mut self, index: TableIndex, delta: u64) -> Option<Growth> {
        let (owner, def) = self.table_owner(index);
        let table = &owner.tables[def];
        Growth::of_table(table.ty(), table.size(), delta)
    }

    fn global_ptr(&mut self, index: GlobalIndex) -> *mut VMGlobalDefinition {
        let offsets = self.offsets().clone();
        match self.runtime.module.defined_global_index(index) {
            // SAFETY: the offset names this defined global's storage.
            Some(def) => unsafe { self.vmctx_field(offsets.vmctx_global_definition(def)) },
            // SAFETY: the offset names the import's pointer, set at instantiation.
            None => unsafe {
                *self.vmctx_field::<*mut VMGlobalDefinition>(offsets.vmctx_global_import_ptr(index))
            },
        }
    }

    fn func_ref(&mut self, index: FuncIndex) -> Option<NonNull<VMFuncRef>> {
        let slot = self.runtime.module.functions[index].func_ref?;
        let offset = self.offsets().vmctx_func_ref(slot);
        // SAFETY: the offset names this function's `VMFuncRef` slot.
        NonNull::new(unsafe { self.vmctx_field::<VMFuncRef>(offset) })
    }

    fn eval(&mut self, expr: &ConstExpr) -> ConstValue {
        let mut stack: Vec<ConstValue> = Vec::with_capacity(2);
        for op in expr.ops.iter() {
            let v = match *op {
                ConstOp::I32Const(v) => ConstValue::Bits(u128::from(v.cast_unsigned())),
                ConstOp::I64Const(v) => ConstValue::Bits(u128::from(v.cast_unsigned())),
                ConstOp::F32Const(v) => ConstValue::Bits(u128::from(v)),
                ConstOp::F64Const(v) => ConstValue::Bits(u128::from(v)),
                ConstOp::V128Const(v) => ConstValue::Bits(v),
                ConstOp::RefNull => ConstValue::Ref(core::ptr::null_mut()),
                ConstOp::RefFunc(f) => ConstValue::Ref(
                    self.func_ref(f)
                        .map_or(core::ptr::null_mut(), |p| p.as_ptr().cast()),
                ),
                ConstOp::GlobalGet(g) => {
                    let ty = self.runtime.module.globals[g].ty;
                    let ptr = self.global_ptr(g);
                    // SAFETY: the global's storage is initialized before any later
                    // expression may read it (validation orders global references).
                    unsafe { read_global(ptr, ty) }
                }
                ConstOp::I32Add | ConstOp::I32Sub | ConstOp::I32Mul => {
                    let (b, a) = (low32(stack.pop()), low32(stack.pop()));
                    let r = match *op {
                        ConstOp::I32Add => a.wrapping_add(b),
                        ConstOp::I32Sub => a.wrapping_sub(b),
                        _ => a.wrapping_mul(b),
                    };
                    ConstValue::Bits(u128::from(r))
                }
                ConstOp::I64Add | ConstOp::I64Sub | ConstOp::I64Mul => {
                    let (b, a) = (low64(stack.pop()), low64(stack.pop()));
                    let r = match *op {
                        ConstOp::I64Add => a.wrapping_add(b),
                        ConstOp::I64Sub => a.wrapping_sub(b),
                        _ => a.wrapping_mul(b),
                    };
                    ConstValue::Bits(u128::from(r))
                }
            };
            stack.push(v);
        }
        stack.pop().unwrap_or(ConstValue::Bits(0))
    }
}

fn bits(v: Option<ConstValue>) -> u128 {
    match v {
        Some(ConstValue::Bits(b)) => b,
        Some(ConstValue::Ref(p)) => p as usize as u128,
        None => 0,
    }
}

/// The low 32 bits of a constant: the value of an `i32` expression.
#[expect(
    clippy::cast_possible_truncation,
    reason = "an i32 lives in the low bits"
)]
fn low32(v: Option<ConstValue>) -> u32 {
    bits(v) as u32
}

/// The low 64 bits of a constant: the value of an `i64` expression.
#[expect(
    clippy::cast_possible_truncation,
    reason = "an i64 lives in the low bits"
)]
fn low64(v: Option<ConstValue>) -> u64 {
    bits(v) as u64
}

/// Reads a global's value.
///
/// # Safety
/// `ptr` must point to live storage of a global of type `ty`.
pub(crate) unsafe fn read_global(ptr: *mut VMGlobalDefinition, ty: WasmValType) -> ConstValue {
    let p = ptr.cast::<u8>();
    // SAFETY: the storage is 16 bytes, 16-aligned, and initialized.
    unsafe {
        match ty {
            WasmValType::I32 | WasmValType::F32 => {
                ConstValue::Bits(u128::from(p.cast::<u32>().read()))
            }
            WasmValType::I64 | WasmValType::F64 => {
                ConstValue::Bits(u128::from(p.cast::<u64>().read()))
            }
            WasmValType::V128 => ConstValue::Bits(p.cast::<u128>().read()),
            WasmValType::Ref(_) => ConstValue::Ref(p.cast::<*mut u8>().read()),
        }
    }
}

/// Reads the value of the global stored at `ptr`.
///
/// # Safety
/// `ptr` must point to live storage of a global of type `ty`.
pub unsafe fn read_global_value(ptr: NonNull<VMGlobalDefinition>, ty: WasmValType) -> ConstValue {
    // SAFETY: forwarded contract.
    unsafe { read_global(ptr.as_ptr(), ty) }
}

/// Writes the value of the global stored at `ptr`.
///
/// # Safety
/// `ptr` must point to live storage of a global of type `ty`, and nothing may read it
/// concurrently.
pub unsafe fn write_global_value(
    ptr: NonNull<VMGlobalDefinition>,
    ty: WasmValType,
    value: ConstValue,
) {
    // SAFETY: forwarded contract.
    unsafe { write_global(ptr.as_ptr(), ty, value) }
}

/// Writes a global's value.
///
/// # Safety
/// `ptr` must point to live storage of a global of type `ty`.
#[expect(
    clippy::cast_possible_truncation,
    reason = "narrow types keep their low bits"
)]
pub(crate) unsafe fn write_global(
    ptr: *mut VMGlobalDefinition,
    ty: WasmValType,
    value: ConstValue,
) {
    let p = ptr.cast::<u8>();
    let b = bits(Some(value));
    // SAFETY: the storage is 16 bytes, 16-aligned.
    unsafe {
        match ty {
            WasmValType::I32 | WasmValType::F32 => p.cast::<u32>().write(b as u32),
            WasmValType::I64 | WasmValType::F64 => p.cast::<u64>().write(b as u64),
            WasmValType::V128 => p.cast::<u128>().write(b),
            WasmValType::Ref(_) => p.cast::<*mut u8>().write(b as usize as *mut u8),
        }
    }
}

/// An owned instance. Dropping it without [`InstanceHandle::deallocate`] leaks it.
pub struct InstanceHandle {
    instance: NonNull<Instance>,
}

// SAFETY: the instance is owned by this handle and used by one thread at a time.
unsafe impl Send for InstanceHandle {}
// SAFETY: as above; shared access only reads immutable metadata.
unsafe impl Sync for InstanceHandle {}

impl InstanceHandle {
    /// Allocates an instance and initializes its vmctx: imports, memory and table
    /// definitions, globals and function references. Segments are applied by
    /// [`InstanceHandle::initialize`].
    ///
    /// # Errors
    /// Fails if a memory or table cannot be allocated.
    ///
    /// # Safety
    /// The imports must match the module's import types and stay alive as long as this
    /// instance; `store_context` must outlive it.
    pub unsafe fn new(
        req: InstanceAllocationRequest<'_>,
        allocator: &dyn InstanceAllocator,
    ) -> Result<InstanceHandle, VmError> {
        let InstanceAllocationRequest {
            runtime,
            imports,
            store_context,
            id,
            tunables,
        } = req;
        // The instance will own `runtime`; this pointer reads it meanwhile without
        // another reference count update (a contended cache line with many threads).
        let info: *const ModuleRuntimeInfo = Arc::as_ptr(&runtime);
        let module = &runtime.module;
        // A damaged data section fails the instantiation before any memory holds it.
        if !module.data_segments.is_empty() {
            runtime.wasm_data()?;
        }
        allocator.validate_module(module)?;
        let slot = allocator.allocate_instance(Instance::layout(&runtime.offsets).size())?;
        let mut memories = PrimaryMap::new();
        let mut tables = PrimaryMap::new();
        let result = (|| {
            for (index, ty) in module.memories.iter() {
                if let Some(def) = module.defined_memory_index(index) {
                    let image = runtime.memory_images()?.get(def);
                    memories.push(allocator.allocate_memory(ty, tunables, image)?);
                }
            }
            for (index, ty) in module.tables.iter() {
                if module.defined_table_index(index).is_some() {
                    // The table keeps its type with engine ids, so that it compares
                    // with other modules' types when it is imported.
                    let ty = ty.to_engine(&runtime.type_ids);
                    tables.push(allocator.allocate_table(&ty)?);
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            for (_, m) in memories {
                allocator.deallocate_memory(m);
            }
            for (_, t) in tables {
                allocator.deallocate_table(t);
            }
            allocator.deallocate_instance(slot);
            return Err(e);
        }

        let layout = Instance::layout(&runtime.offsets);
        let (num_elems, num_data) = (module.elem_segments.len(), module.data_segments.len());
        // SAFETY: the layout has a non-zero size (the header is not empty).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Instance>();
        let Some(instance) = NonNull::new(ptr) else {
            std::alloc::handle_alloc_error(layout)
        };
        // SAFETY: `ptr` is a fresh allocation of the right layout.
        unsafe {
            ptr.write(Instance {
                runtime,
                id,
                memories,
                tables,
                imported_memories: imports.memories.clone(),
                imported_tables: imports.tables.clone(),
                dropped_elems: vec![false; num_elems],
                dropped_data: vec![false; num_data],
                slot: Some(slot),
                vmctx: VMContext {
                    _marker: core::marker::PhantomPinned,
                },
            });
        }
        let mut handle = InstanceHandle { instance };
        // SAFETY: the caller's contract covers imports and store context; `info` points
        // into the `Arc` the instance now owns, alive as long as the instance.
        unsafe { handle.init_vmctx(&*info, &imports, store_context) };
        Ok(handle)
    }

    fn instance(&mut self) -> &mut Instance {
        // SAFETY: the handle owns a live instance.
        unsafe { self.instance.as_mut() }
    }

    fn instance_ref(&self) -> &Instance {
        // SAFETY: the handle owns a live instance.
        unsafe { self.instance.as_ref() }
    }

    /// # Safety
    /// See [`InstanceHandle::new`].
    unsafe fn init_vmctx(
        &mut self,
        runtime: &ModuleRuntimeInfo,
        imports: &Imports,
        store_context: *const VMStoreContext,
    ) {
        let module = &runtime.module;
        let o = &runtime.offsets;
        let inst = self.instance();
        let vmctx = inst.vmctx_ptr();
        // SAFETY: every offset below comes from this module's `VMOffsets`, naming a field
        // of the written type inside the zeroed vmctx.
        unsafe {
            *inst.vmctx_field::<u32>(o.vmctx_magic()) = VM_CONTEXT_MAGIC;
            *inst.vmctx_field::<*const VMStoreContext>(o.vmctx_store_context()) = store_context;
            *inst.vmctx_field::<*const u8>(o.vmctx_builtin_functions()) =
                (&raw const BUILTINS).cast();
            *inst.vmctx_field::<*const u32>(o.vmctx_type_ids()) = runtime.type_ids.as_ptr();

            for index in module.memories.keys() {
                let (owner, def) = inst.memory_owner(index);
                let memory = &owner.memories[def];
                let ptr = memory.definition_ptr();
                let base = memory.fixed_base().unwrap_or(core::ptr::null_mut());
                *inst.vmctx_field(o.vmctx_memory_definition_ptr(index)) = ptr;
                *inst.vmctx_field(o.vmctx_memory_base(index)) = base;
            }
            for index in module.tables.keys() {
                let (owner, def) = inst.table_owner(index);
                let ptr = owner.tables[def].definition_ptr();
                *inst.vmctx_field(o.vmctx_table_definition_ptr(index)) = ptr;
            }
            for (i, func_ref) in imports.functions.iter().enumerate() {
                let f = func_ref.as_ref();
                let import = VMFunctionImport {
                    wasm_call: f.wasm_call,
                    array_call: f.array_call,
                    vmctx: f.vmctx,
                };
                inst.vmctx_field::<VMFunctionImport>(o.vmctx_function_import(FuncIndex::new(i)))
                    .write(import);
            }
            for (i, global) in imports.globals.iter().enumerate() {
                *inst.vmctx_field(o.vmctx_global_import_ptr(GlobalIndex::new(i))) = global.as_ptr();
            }
            for (index, tag) in module.tags.iter() {
                let ptr = match module.defined_tag_index(index) {
                    Some(def) => {
                        let definition =
                            inst.vmctx_field::<VMTagDefinition>(o.vmctx_tag_definition(def));
                        definition.write(VMTagDefinition {
                            type_index: runtime.type_ids[tag.signature.index()],
                        });
                        definition
                    }
                    None => imports.tags[index.index()].as_ptr(),
                };
                *inst.vmctx_field(o.vmctx_tag_ptr(index)) = ptr;
            }
            // Function references before globals: `ref.func` initializers point at them.
            for (index, func) in module.functions.iter() {
                let Some(slot) = func.func_ref else { continue };
                let func_ref = match module.defined_func_index(index) {
                    Some(def) => {
                        let code = runtime
                            .code
                            .as_ref()
                            .expect("modules with functions have code");
                        let array_call = code
                            .array_to_wasm_trampoline(def)
                            .expect("escaping functions have trampolines");
                        VMFuncRef {
                            array_call: core::mem::transmute::<*const u8, crate::VMArrayCallFunction>(
                                array_call,
                            ),
                            wasm_call: code.function(def),
                            vmctx,
                            type_index: runtime.type_ids[func.signature.index()],
                        }
                    }
                    None => {
                        let f = imports.functions[index.index()].as_ref();
                        VMFuncRef {
                            array_call: f.array_call,
                            wasm_call: f.wasm_call,
                            vmctx: f.vmctx,
                            type_index: f.type_index,
                        }
                    }
                };
                inst.vmctx_field::<VMFuncRef>(o.vmctx_func_ref(slot))
                    .write(func_ref);
            }
            for (def, init) in module.global_initializers.iter() {
                let index = module.global_index(def);
                let value = inst.eval(init);
                write_global(inst.global_ptr(index), module.globals[index].ty, value);
            }
        }
    }

    /// Fills the tables that have an initializer expression, then applies the active
    /// element and data segments, in order, as `table.init` and
    /// `memory.init` followed by a drop; declared element segments are dropped too. A
    /// segment out of bounds traps; the segments before it stay applied.
    ///
    /// # Errors
    /// The trap that stopped initialization.
    pub fn initialize(&mut self) -> Result<(), Trap> {
        let info: *const ModuleRuntimeInfo = Arc::as_ptr(&self.instance_ref().runtime);
        // SAFETY: the instance owns this `Arc` for its whole life and initialization
        // never replaces it; reading through it spares a reference count update.
        let module = unsafe { &(*info).module };
        let inst = self.instance();
        // Tables with an initializer expression start with its value in every element,
        // before any segment writes them (such tables are left out of the plan).
        for (table, init) in module.table_initializers.iter() {
            let Some(expr) = init else { continue };
            let value = match inst.eval(expr) {
                ConstValue::Ref(p) => p,
                ConstValue::Bits(_) => core::ptr::null_mut(),
            };
            let t = &mut inst.tables[table];
            let len = usize::try_from(t.size()).expect("a table's elements are in memory");
            t.fill(0..len, value);
        }
        // Segments before `eager_from` are in the table initialization plan: their
        // elements are resolved on first use.
        let eager_from = module.table_initialization.eager_from;
        for (index, segment) in module.elem_segments.iter() {
            match &segment.mode {
                ElemSegmentMode::Active { .. } if index < eager_from => inst.elem_drop(index),
                ElemSegmentMode::Active { table, offset } => {
                    let start = low64(Some(inst.eval(offset)));
                    let len = segment.items.len() as u64;
                    inst.table_init(*table, index, start, 0, len)?;
                    inst.elem_drop(index);
                }
                ElemSegmentMode::Declared => inst.elem_drop(index),
                ElemSegmentMode::Passive => {}
            }
        }
        for (index, segment) in module.data_segments.iter() {
            let Some((memory, offset)) = &segment.active else {
                continue;
            };
            // A memory created from its copy-on-write image already holds the data.
            let imaged = module
                .defined_memory_index(*memory)
                .is_some_and(|def| inst.memories[def].has_image());
            if !imaged {
                let start = low64(Some(inst.eval(offset)));
                let len = segment.len() as u64;
                inst.memory_init(*memory, index, start, 0, len)?;
            }
            inst.data_drop(index);
        }
        Ok(())
    }

    /// A non-owning pointer to this instance.
    pub fn as_ref(&self) -> InstanceHandleRef {
        InstanceHandleRef(self.instance)
    }

    /// The vmctx pointer compiled code uses.
    pub fn vmctx(&mut self) -> *mut VMContext {
        self.instance().vmctx_ptr()
    }

    /// The module's runtime information.
    pub fn runtime(&self) -> &Arc<ModuleRuntimeInfo> {
        &self.instance_ref().runtime
    }

    /// The function reference of function `index`, if it escapes.
    pub fn func_ref(&mut self, index: FuncIndex) -> Option<NonNull<VMFuncRef>> {
        self.instance().func_ref(index)
    }

    /// The identity of tag `index`.
    pub fn tag_ptr(&mut self, index: TagIndex) -> NonNull<VMTagDefinition> {
        self.instance().tag_ptr(index)
    }

    /// The storage of global `index`.
    pub fn global_ptr(&mut self, index: GlobalIndex) -> NonNull<VMGlobalDefinition> {
        NonNull::new(self.instance().global_ptr(index)).expect("globals have storage")
    }

    /// The instance owning memory `index`, and its defined index there.
    pub fn memory_owner(&mut self, index: MemoryIndex) -> (InstanceHandleRef, DefinedMemoryIndex) {
        let (owner, def) = self.instance().memory_owner(index);
        (InstanceHandleRef(NonNull::from(owner)), def)
    }

    /// The instance owning table `index`, and its defined index there.
    pub fn table_owner(&mut self, index: TableIndex) -> (InstanceHandleRef, DefinedTableIndex) {
        let (owner, def) = self.instance().table_owner(index);
        (InstanceHandleRef(NonNull::from(owner)), def)
    }

    /// Defined memory `index`.
    pub fn memory(&self, index: DefinedMemoryIndex) -> &Memory {
        &self.instance_ref().memories[index]
    }

    /// Defined memory `index`, mutably.
    pub fn memory_mut(&mut self, index: DefinedMemoryIndex) -> &mut Memory {
        &mut self.instance().memories[index]
    }

    /// Defined table `index`.
    pub fn table(&self, index: DefinedTableIndex) -> &Table {
        &self.instance_ref().tables[index]
    }

    /// Element `element` of defined table `index`, resolved from the module's table
    /// initialization plan on first use; `None` if out of bounds.
    pub fn table_get(&mut self, index: DefinedTableIndex, element: u64) -> Option<*mut u8> {
        self.instance().defined_table_get(index, element)
    }

    /// Defined table `index`, mutably.
    pub fn table_mut(&mut self, index: DefinedTableIndex) -> &mut Table {
        &mut self.instance().tables[index]
    }

    /// Reads global `index`.
    pub fn get_global(&mut self, index: GlobalIndex) -> ConstValue {
        let ty = self.instance_ref().runtime.module.globals[index].ty;
        let ptr = self.instance().global_ptr(index);
        // SAFETY: the pointer is this instance's (or its import's) live storage of `ty`.
        unsafe { read_global(ptr, ty) }
    }

    /// Writes global `index` (mutability is the caller's concern).
    pub fn set_global(&mut self, index: GlobalIndex, value: ConstValue) {
        let ty = self.instance_ref().runtime.module.globals[index].ty;
        let ptr = self.instance().global_ptr(index);
        // SAFETY: as in `get_global`.
        unsafe { write_global(ptr, ty, value) }
    }

    /// Frees the instance, returning its memories and tables to `allocator`.
    ///
    /// # Safety
    /// Nothing may use the instance, its vmctx or anything it exported afterwards, and
    /// `allocator` must be the one that allocated it.
    pub unsafe fn deallocate(self, allocator: &dyn InstanceAllocator) {
        let ptr = self.instance.as_ptr();
        // SAFETY: we own the instance; it is read out once and its memory freed once.
        unsafe {
            let mut instance = ptr.read();
            let slot = instance
                .slot
                .take()
                .expect("live instances hold their slot");
            let layout = Instance::layout(&instance.runtime.offsets);
            std::alloc::dealloc(ptr.cast(), layout);
            for (_, m) in instance.memories {
                allocator.deallocate_memory(m);
            }
            for (_, t) in instance.tables {
                allocator.deallocate_table(t);
            }
            allocator.deallocate_instance(slot);
        }
    }
}
