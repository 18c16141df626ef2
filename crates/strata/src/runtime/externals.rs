//! The entities other than functions: [`Memory`], [`Global`], [`Table`]. Their handles
//! (and [`Extern`](crate::Extern)) are defined in `handles.rs`, below the store.

use crate::runtime::handles::{Func, Global, Memory, Table};
use crate::runtime::store::{InstanceData, StoreOpaque};
use crate::runtime::{AsContext, AsContextMut, ExternRef, Ref, Val};
use crate::{Error, GlobalType, MemoryType, Mutability, RefType, Result, TableType, ValType};
use core::fmt;
use core::ptr::NonNull;
use std::sync::Arc;
use strata_environ::{
    ConstExpr, DefinedMemoryIndex, DefinedTableIndex, EntityRef, GlobalIndex, Module as ModuleInfo,
    VMOffsets, WasmValType,
};
use strata_vm::{
    ConstValue, Imports, InstanceAllocationRequest, InstanceHandle, ModuleRuntimeInfo, VMFuncRef,
    VMGlobalDefinition, ValRaw,
};

/// Creates a code-less instance in `store` that owns the entities of `module`, for
/// memories, tables and globals the host makes.
fn host_instance(store: &mut StoreOpaque, module: ModuleInfo) -> Result<usize> {
    let module = Arc::new(module);
    let runtime = Arc::new(ModuleRuntimeInfo {
        offsets: VMOffsets::for_host(&module),
        module,
        type_ids: Box::new([]),
        code: None,
        memory_init_cow: false,
        memory_images: std::sync::OnceLock::new(),
    });
    let id = store.instances.len();
    let req = InstanceAllocationRequest {
        runtime,
        imports: Imports::default(),
        store_context: &*store.vm_store_context,
        id,
        tunables: &store.engine.config().tunables,
    };
    // SAFETY: the module imports nothing, and the store context outlives the instance.
    let handle = unsafe { InstanceHandle::new(req, store.engine.allocator()) }
        .map_err(crate::error::vm_error)?;
    store.instances.push(InstanceData {
        handle: Some(handle),
        exports: Vec::new(),
    });
    Ok(id)
}

impl StoreOpaque {
    /// Encodes a value for an array-call slot or a table.
    #[inline]
    pub(crate) fn val_to_raw(&self, val: Val) -> Result<ValRaw> {
        Ok(match val {
            Val::I32(v) => ValRaw::i32(v),
            Val::I64(v) => ValRaw::i64(v),
            Val::F32(v) => ValRaw::u128(u128::from(v)),
            Val::F64(v) => ValRaw::u128(u128::from(v)),
            Val::V128(v) => ValRaw::u128(v),
            Val::FuncRef(f) => ValRaw::ptr(self.func_ref_ptr(f)),
            Val::ExternRef(e) => ValRaw::ptr(self.extern_ref_ptr(e)?),
            Val::ExnRef(e) => ValRaw::ptr(self.exn_ref_ptr(e)?),
        })
    }

    /// Encodes `vals` into `out`, after checking each against its type in `tys`;
    /// `mismatch(i, val, ty)` describes a value that does not match.
    ///
    /// # Errors
    /// The first value that does not match its type or belongs to another store.
    pub(crate) fn vals_to_raw(
        &self,
        vals: &[Val],
        tys: impl IntoIterator<Item = ValType>,
        out: &mut Vec<ValRaw>,
        mismatch: impl Fn(usize, &Val, ValType) -> String,
    ) -> Result<()> {
        for (i, (val, ty)) in vals.iter().zip(tys).enumerate() {
            if !val.matches(self, ty) {
                return Err(Error::msg(mismatch(i, val, ty)));
            }
            out.push(self.val_to_raw(*val)?);
        }
        Ok(())
    }

    /// The word wasm holds for `e`.
    pub(crate) fn extern_ref_ptr(&self, e: Option<ExternRef>) -> Result<*mut u8> {
        match e {
            None => Ok(core::ptr::null_mut()),
            Some(e) if e.store == self.id => Ok(core::ptr::without_provenance_mut(e.to_raw())),
            Some(_) => Err(Error::msg(
                "externref used with a store it does not belong to",
            )),
        }
    }

    /// The word a table of element type `ty` holds for `r`.
    ///
    /// # Errors
    /// Fails if `r` is not of type `ty` or belongs to another store.
    pub(crate) fn ref_to_ptr(&self, r: Ref, ty: RefType) -> Result<*mut u8> {
        match r {
            _ if !r.to_val().matches(self, ValType::Ref(ty)) => Err(Error::msg(format!(
                "a {} where a {ty} is expected",
                r.to_val().ty()
            ))),
            Ref::Func(f) if ty.is_func() => Ok(self.func_ref_ptr(f)),
            Ref::Exn(e) if ty.is_exn() => self.exn_ref_ptr(e),
            Ref::Extern(e) if !ty.is_func() && !ty.is_exn() => self.extern_ref_ptr(e),
            _ => Err(Error::msg(format!(
                "a {} where a {ty} is expected",
                r.to_val().ty()
            ))),
        }
    }

    /// The reference of type `ty` that a table holds as `ptr`.
    pub(crate) fn ref_from_ptr(&mut self, ptr: *mut u8, ty: RefType) -> Ref {
        if ty.is_func() {
            Ref::Func(self.func_from_ptr(ptr))
        } else if ty.is_exn() {
            Ref::Exn(self.exn_from_ptr(ptr))
        } else {
            Ref::Extern(ExternRef::from_raw(self.id, ptr.addr()))
        }
    }

    pub(crate) fn func_ref_ptr(&self, f: Option<Func>) -> *mut u8 {
        f.map_or(core::ptr::null_mut(), |f| f.func_ref(self).as_ptr().cast())
    }

    /// Decodes a value of type `ty`.
    #[inline]
    pub(crate) fn val_from_raw(&mut self, ty: ValType, raw: ValRaw) -> Val {
        match ty {
            ValType::I32 => Val::I32(raw.get_i32()),
            ValType::I64 => Val::I64(raw.get_i64()),
            ValType::F32 => Val::F32(raw.get_i32().cast_unsigned()),
            ValType::F64 => Val::F64(raw.get_i64().cast_unsigned()),
            ValType::V128 => Val::V128(raw.get_u128()),
            ValType::Ref(r) => self.ref_from_ptr(raw.get_ptr(), r).to_val(),
        }
    }

    /// A handle for the function reference `ptr` (null gives `None`).
    pub(crate) fn func_from_ptr(&mut self, ptr: *mut u8) -> Option<Func> {
        let ptr = NonNull::new(ptr.cast::<VMFuncRef>())?;
        Some(Func {
            store: self.id,
            index: self.push_func(ptr),
        })
    }

    fn const_value(&self, val: Val) -> Result<ConstValue> {
        Ok(match val {
            Val::FuncRef(f) => ConstValue::Ref(self.func_ref_ptr(f)),
            Val::ExternRef(e) => ConstValue::Ref(self.extern_ref_ptr(e)?),
            Val::ExnRef(e) => ConstValue::Ref(self.exn_ref_ptr(e)?),
            other => ConstValue::Bits(self.val_to_raw(other)?.get_u128()),
        })
    }
}

/// An out-of-bounds [`Memory::read`] or [`Memory::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryAccessError;

impl fmt::Display for MemoryAccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("out of bounds memory access")
    }
}

impl std::error::Error for MemoryAccessError {}

impl Memory {
    /// A new memory of type `ty` in `store`.
    ///
    /// # Errors
    /// Fails if the memory cannot be allocated.
    pub fn new(mut store: impl AsContextMut, ty: MemoryType) -> Result<Memory> {
        let store = &mut store.as_context_mut().0.opaque;
        let mut module = ModuleInfo::default();
        module.memories.push(ty.0);
        let instance = host_instance(store, module)?;
        Ok(Memory {
            store: store.id,
            instance,
            index: DefinedMemoryIndex::new(0),
        })
    }

    fn vm<'a>(&self, store: &'a StoreOpaque) -> &'a strata_vm::Memory {
        store.check(self.store);
        store.instances[self.instance]
            .handle
            .as_ref()
            .expect("live")
            .memory(self.index)
    }

    fn vm_mut<'a>(&self, store: &'a mut StoreOpaque) -> &'a mut strata_vm::Memory {
        store.check(self.store);
        store.instance_mut(self.instance).memory_mut(self.index)
    }

    /// The memory's type.
    pub fn ty(&self, store: impl AsContext) -> MemoryType {
        MemoryType(*self.vm(&store.as_context().0.opaque).ty())
    }

    /// The current size in pages.
    pub fn size(&self, store: impl AsContext) -> u64 {
        self.vm(&store.as_context().0.opaque).pages()
    }

    /// The current size in bytes.
    pub fn data_size(&self, store: impl AsContext) -> usize {
        self.vm(&store.as_context().0.opaque).byte_size()
    }

    /// The address of the memory's first byte; it changes when a memory without room
    /// to grow in place grows.
    pub fn data_ptr(&self, store: impl AsContext) -> *mut u8 {
        self.vm(&store.as_context().0.opaque).base()
    }

    /// The memory's bytes.
    pub fn data<'a, T: 'a>(&self, store: impl Into<crate::StoreContext<'a, T>>) -> &'a [u8] {
        let store = store.into().0;
        self.vm(&store.opaque).data()
    }

    /// The memory's bytes, mutably.
    pub fn data_mut<'a, T: 'a>(
        &self,
        store: impl Into<crate::StoreContextMut<'a, T>>,
    ) -> &'a mut [u8] {
        let store = store.into().0;
        self.vm_mut(&mut store.opaque).data_mut()
    }

    /// The memory's bytes and the store's data, both mutably: what a host function
    /// needs to read and write guest memory while it updates its own state.
    pub fn data_and_store_mut<'a, T: 'a>(
        &self,
        store: impl Into<crate::StoreContextMut<'a, T>>,
    ) -> (&'a mut [u8], &'a mut T) {
        let store = store.into().0;
        let data = self.vm_mut(&mut store.opaque).data_mut();
        (data, &mut store.data)
    }

    /// Copies `buffer.len()` bytes at `offset` into `buffer`.
    ///
    /// # Errors
    /// Fails if the range is out of bounds.
    pub fn read(
        &self,
        store: impl AsContext,
        offset: usize,
        buffer: &mut [u8],
    ) -> Result<(), MemoryAccessError> {
        let data = self.vm(&store.as_context().0.opaque).data();
        let end = offset.checked_add(buffer.len()).ok_or(MemoryAccessError)?;
        buffer.copy_from_slice(data.get(offset..end).ok_or(MemoryAccessError)?);
        Ok(())
    }

    /// Copies `buffer` into the memory at `offset`.
    ///
    /// # Errors
    /// Fails if the range is out of bounds.
    pub fn write(
        &self,
        mut store: impl AsContextMut,
        offset: usize,
        buffer: &[u8],
    ) -> Result<(), MemoryAccessError> {
        let data = self.vm_mut(&mut store.as_context_mut().0.opaque).data_mut();
        let end = offset.checked_add(buffer.len()).ok_or(MemoryAccessError)?;
        data.get_mut(offset..end)
            .ok_or(MemoryAccessError)?
            .copy_from_slice(buffer);
        Ok(())
    }

    /// Grows the memory by `delta` pages and returns the old size.
    ///
    /// # Errors
    /// Fails if the memory may not grow that far.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u64) -> Result<u64> {
        let inner = store.as_context_mut().0;
        let vm = self.vm(&inner.opaque);
        let growth = strata_vm::Growth::of_memory(vm.ty(), vm.byte_size(), delta)
            .ok_or_else(|| Error::msg(format!("failed to grow memory by {delta} pages")))?;
        inner.host_growing(growth)?;
        let memory = self.vm_mut(&mut inner.opaque);
        match memory.grow(delta).map_err(Error::new)? {
            Some(old) => Ok(old),
            None => Err(Error::msg(format!(
                "failed to grow memory by {delta} pages"
            ))),
        }
    }

    /// Like [`Memory::grow`], for stores with an async resource limiter
    /// ([`Store::limiter_async`](crate::Store::limiter_async)), whose decision this
    /// waits for.
    ///
    /// # Errors
    /// As [`Memory::grow`], and fails if the engine has no async support.
    #[cfg(feature = "async")]
    pub async fn grow_async(
        &self,
        mut store: impl AsContextMut<Data: Send>,
        delta: u64,
    ) -> Result<u64> {
        let inner = store.as_context_mut().0;
        inner.opaque.check_async("Memory::grow_async")?;
        crate::runtime::fiber::on_fiber(inner, |inner| {
            self.grow(crate::StoreContextMut(inner), delta)
        })
        .await
    }
}

impl Global {
    /// A new global of type `ty` holding `value`.
    ///
    /// # Errors
    /// Fails if `value` does not have the global's type.
    pub fn new(mut store: impl AsContextMut, ty: GlobalType, value: Val) -> Result<Global> {
        let store = &mut store.as_context_mut().0.opaque;
        if !value.matches(store, ty.content()) {
            return Err(Error::msg(format!(
                "value of type {} for a global of type {}",
                value.ty(),
                ty.content()
            )));
        }
        let mut module = ModuleInfo::default();
        module.globals.push(ty.0);
        module
            .global_initializers
            .push(ConstExpr { ops: Box::new([]) });
        let value = store.const_value(value)?;
        let instance = host_instance(store, module)?;
        let handle = store.instance_mut(instance);
        let index = GlobalIndex::new(0);
        handle.set_global(index, value);
        let ptr = strata_vm::SendSyncPtr(handle.global_ptr(index));
        Ok(Global {
            store: store.id,
            ptr,
            ty,
        })
    }

    /// The global's type.
    pub fn ty(&self, _store: impl AsContext) -> GlobalType {
        self.ty
    }

    /// The current value.
    pub fn get(&self, mut store: impl AsContextMut) -> Val {
        let store = &mut store.as_context_mut().0.opaque;
        store.check(self.store);
        let ty = self.ty.0.ty;
        // SAFETY: a global's storage lives as long as its store, which we borrow.
        let raw = ValRaw::u128(match unsafe { read(self.ptr.0, ty) } {
            ConstValue::Bits(b) => b,
            ConstValue::Ref(p) => p as usize as u128,
        });
        store.val_from_raw(self.ty.content(), raw)
    }

    /// Sets the value.
    ///
    /// # Errors
    /// Fails if the global is immutable or `value` has another type.
    pub fn set(&self, mut store: impl AsContextMut, value: Val) -> Result<()> {
        let store = &mut store.as_context_mut().0.opaque;
        store.check(self.store);
        if self.ty.mutability() == Mutability::Const {
            return Err(Error::msg("immutable global cannot be set"));
        }
        if !value.matches(store, self.ty.content()) {
            return Err(Error::msg(format!(
                "value of type {} for a global of type {}",
                value.ty(),
                self.ty.content()
            )));
        }
        let value = store.const_value(value)?;
        // SAFETY: as in `get`.
        unsafe { write(self.ptr.0, self.ty.0.ty, value) };
        Ok(())
    }
}

/// # Safety
/// `ptr` must be live storage of a global of type `ty`.
unsafe fn read(ptr: NonNull<VMGlobalDefinition>, ty: WasmValType) -> ConstValue {
    // SAFETY: forwarded contract.
    unsafe { strata_vm::read_global_value(ptr, ty) }
}

/// # Safety
/// `ptr` must be live storage of a global of type `ty`.
unsafe fn write(ptr: NonNull<VMGlobalDefinition>, ty: WasmValType, value: ConstValue) {
    // SAFETY: forwarded contract.
    unsafe { strata_vm::write_global_value(ptr, ty, value) }
}

impl Table {
    /// A new table of type `ty` with every element `init`.
    ///
    /// # Errors
    /// Fails if the table is too large.
    pub fn new(mut store: impl AsContextMut, ty: TableType, init: Ref) -> Result<Table> {
        let store = &mut store.as_context_mut().0.opaque;
        let init = store.ref_to_ptr(init, ty.element())?;
        let mut module = ModuleInfo::default();
        module.tables.push(ty.0);
        let instance = host_instance(store, module)?;
        let table = Table {
            store: store.id,
            instance,
            index: DefinedTableIndex::new(0),
        };
        // A new table's elements are already null.
        if !init.is_null() {
            let vm = table.vm_mut(store);
            for i in 0..vm.size() {
                vm.set(i, init);
            }
        }
        Ok(table)
    }

    fn vm<'a>(&self, store: &'a StoreOpaque) -> &'a strata_vm::Table {
        store.check(self.store);
        store.instances[self.instance]
            .handle
            .as_ref()
            .expect("live")
            .table(self.index)
    }

    fn vm_mut<'a>(&self, store: &'a mut StoreOpaque) -> &'a mut strata_vm::Table {
        store.check(self.store);
        store.instance_mut(self.instance).table_mut(self.index)
    }

    /// The table's type.
    pub fn ty(&self, store: impl AsContext) -> TableType {
        TableType(*self.vm(&store.as_context().0.opaque).ty())
    }

    /// The number of elements.
    pub fn size(&self, store: impl AsContext) -> u64 {
        self.vm(&store.as_context().0.opaque).size()
    }

    /// Element `index`, or `None` if out of bounds.
    pub fn get(&self, mut store: impl AsContextMut, index: u64) -> Option<Ref> {
        let store = &mut store.as_context_mut().0.opaque;
        let ty = RefType(self.vm(store).ty().element);
        store.check(self.store);
        let ptr = store
            .instance_mut(self.instance)
            .table_get(self.index, index)?;
        Some(store.ref_from_ptr(ptr, ty))
    }

    /// Sets element `index`.
    ///
    /// # Errors
    /// Fails if `index` is out of bounds.
    pub fn set(&self, mut store: impl AsContextMut, index: u64, value: Ref) -> Result<()> {
        let store = &mut store.as_context_mut().0.opaque;
        let ptr = store.ref_to_ptr(value, RefType(self.vm(store).ty().element))?;
        if self.vm_mut(store).set(index, ptr) {
            Ok(())
        } else {
            Err(Error::from(crate::Trap::TableOutOfBounds))
        }
    }

    /// Grows the table by `delta` elements set to `init`; returns the old size.
    ///
    /// # Errors
    /// Fails if the table may not grow that far.
    pub fn grow(&self, mut store: impl AsContextMut, delta: u64, init: Ref) -> Result<u64> {
        let inner = store.as_context_mut().0;
        let vm = self.vm(&inner.opaque);
        let growth = strata_vm::Growth::of_table(vm.ty(), vm.size(), delta)
            .ok_or_else(|| Error::msg(format!("failed to grow table by {delta}")))?;
        inner.host_growing(growth)?;
        let store = &mut inner.opaque;
        let ptr = store.ref_to_ptr(init, RefType(self.vm(store).ty().element))?;
        self.vm_mut(store)
            .grow(delta, ptr)
            .ok_or_else(|| Error::msg(format!("failed to grow table by {delta}")))
    }

    /// Like [`Table::grow`], for stores with an async resource limiter
    /// ([`Store::limiter_async`](crate::Store::limiter_async)), whose decision this
    /// waits for.
    ///
    /// # Errors
    /// As [`Table::grow`], and fails if the engine has no async support.
    #[cfg(feature = "async")]
    pub async fn grow_async(
        &self,
        mut store: impl AsContextMut<Data: Send>,
        delta: u64,
        init: Ref,
    ) -> Result<u64> {
        let inner = store.as_context_mut().0;
        inner.opaque.check_async("Table::grow_async")?;
        crate::runtime::fiber::on_fiber(inner, |inner| {
            self.grow(crate::StoreContextMut(inner), delta, init)
        })
        .await
    }
}
