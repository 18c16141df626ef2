//! [`Instance`]: an instantiated module.

use crate::runtime::store::InstanceData;
use crate::runtime::{
    AsContextMut, Extern, Func, Global, Memory, Table, TypedFunc, WasmParams, WasmResults,
};
use crate::types::{ExternType, limits_match};
use crate::{Error, GlobalType, Module, Result};
use strata_environ::EntityIndex;
use strata_vm::{Imports, InstanceAllocationRequest, InstanceHandle, SendSyncPtr};

/// An instance of a module in a store. A small `Copy` handle.
#[derive(Copy, Clone, Debug)]
pub struct Instance {
    pub(crate) store: u64,
    pub(crate) index: usize,
}

impl Instance {
    /// Instantiates `module` with `imports`, given in the module's import order.
    ///
    /// # Errors
    /// Fails if an import is missing or has the wrong type, or if initialization or the
    /// start function traps.
    ///
    /// On a store with async support, use [`Instance::new_async`] instead.
    pub fn new(
        mut store: impl AsContextMut,
        module: &Module,
        imports: &[Extern],
    ) -> Result<Instance> {
        let inner = store.as_context_mut().0;
        inner.opaque.check_sync("Instance::new")?;
        Instance::new_unchecked(inner, module, imports)
    }

    /// Instantiates `module` on a fiber, as a future: the start function may wait for
    /// async host functions, and an async resource limiter is consulted.
    ///
    /// # Errors
    /// As [`Instance::new`], and fails if the engine has no async support.
    #[cfg(feature = "async")]
    pub async fn new_async(
        mut store: impl AsContextMut<Data: Send>,
        module: &Module,
        imports: &[Extern],
    ) -> Result<Instance> {
        let inner = store.as_context_mut().0;
        inner.opaque.check_async("Instance::new_async")?;
        crate::runtime::fiber::on_fiber(inner, |inner| {
            Instance::new_unchecked(inner, module, imports)
        })
        .await
    }

    fn new_unchecked<T>(
        inner: &mut crate::runtime::store::StoreInner<T>,
        module: &Module,
        imports: &[Extern],
    ) -> Result<Instance> {
        let info = module.info();
        inner.limit_instantiation(info)?;
        let store = &mut inner.opaque;
        if imports.len() != info.imports.len() {
            return Err(Error::msg(format!(
                "the module has {} imports but {} were provided",
                info.imports.len(),
                imports.len()
            )));
        }
        if !crate::Engine::same(module.engine(), &store.engine) {
            return Err(Error::msg("the module was compiled for another engine"));
        }
        let mut vm_imports = Imports::default();
        for (import, ext) in info.imports.iter().zip(imports) {
            let expected = module.entity_type(import.index);
            let mismatch = |found: ExternType| {
                Error::msg(module.engine().name_types(&format!(
                    "incompatible import type for `{}::{}`: expected {expected}, found {found}",
                    import.module, import.name
                )))
            };
            match (*ext, &expected) {
                (Extern::Func(f), ExternType::Func(want)) => {
                    let have = f.ty_opaque(store);
                    if have != *want {
                        return Err(mismatch(ExternType::Func(have)));
                    }
                    vm_imports.functions.push(f.func_ref(store));
                }
                (Extern::Global(g), ExternType::Global(want)) => {
                    store.check(g.store);
                    if !g.ty.matches(want) {
                        return Err(mismatch(ExternType::Global(g.ty)));
                    }
                    vm_imports.globals.push(g.ptr.0);
                }
                (Extern::Memory(m), ExternType::Memory(want)) => {
                    store.check(m.store);
                    let have = *store.instances[m.instance]
                        .handle
                        .as_ref()
                        .expect("live")
                        .memory(m.index)
                        .ty();
                    let pages = store.instances[m.instance]
                        .handle
                        .as_ref()
                        .expect("live")
                        .memory(m.index)
                        .pages();
                    // Sizes are counted in pages, so limits only compare between memories
                    // of the same page size; the index type must be the same too.
                    if !limits_match(pages, have.maximum, want.0.minimum, want.0.maximum)
                        || have.memory64 != want.0.memory64
                        || have.page_size_log2 != want.0.page_size_log2
                    {
                        return Err(mismatch(ExternType::Memory(crate::MemoryType(have))));
                    }
                    let owner = store.instance_mut(m.instance).as_ref();
                    vm_imports.memories.push((owner, m.index));
                }
                (Extern::Table(t), ExternType::Table(want)) => {
                    store.check(t.store);
                    let vm = store.instances[t.instance]
                        .handle
                        .as_ref()
                        .expect("live")
                        .table(t.index);
                    let have = *vm.ty();
                    if !limits_match(vm.size(), have.maximum, want.0.minimum, want.0.maximum)
                        || have.element != want.0.element
                        || have.table64 != want.0.table64
                    {
                        return Err(mismatch(ExternType::Table(crate::TableType(have))));
                    }
                    let owner = store.instance_mut(t.instance).as_ref();
                    vm_imports.tables.push((owner, t.index));
                }
                (Extern::Tag(t), ExternType::Tag(want)) => {
                    let have = t.ty_opaque(store);
                    if have != *want {
                        return Err(mismatch(ExternType::Tag(have)));
                    }
                    vm_imports.tags.push(t.ptr.0);
                }
                (ext, _) => {
                    let found = match ext {
                        Extern::Tag(t) => ExternType::Tag(t.ty_opaque(store)),
                        Extern::Func(f) => ExternType::Func(f.ty_opaque(store)),
                        Extern::Global(g) => ExternType::Global(g.ty),
                        Extern::Memory(_) => ExternType::Memory(crate::MemoryType::new(0, None)),
                        Extern::Table(_) => ExternType::Table(crate::TableType::new(
                            crate::RefType::FUNCREF,
                            0,
                            None,
                        )),
                    };
                    return Err(mismatch(found));
                }
            }
        }
        store.register_trampolines(module);
        let index = store.instances.len();
        let req = InstanceAllocationRequest {
            runtime: module.runtime().clone(),
            imports: vm_imports,
            store_context: &*store.vm_store_context,
            id: index,
            tunables: &store.engine.config().tunables,
        };
        // SAFETY: the imports were type-checked above and belong to this store, which
        // outlives the instance, as does its store context.
        let mut handle = match unsafe { InstanceHandle::new(req, store.engine.allocator()) } {
            Ok(handle) => handle,
            Err(e) => {
                // Host functions may use the trampolines just registered.
                store.keep_module(module);
                return Err(crate::error::vm_error(e));
            }
        };
        let init = handle.initialize();
        let exports = vec![None; info.exports.len()];
        store.count(info.num_defined_memories(), info.num_defined_tables());
        // The handle keeps the module's code and metadata alive as long as the store.
        store.instances.push(InstanceData {
            handle: Some(handle),
            exports,
        });
        init.map_err(Error::from)?;
        let instance = Instance {
            store: store.id,
            index,
        };
        if let Some(start) = info.start_func {
            let func_ref = store.instance_mut(index).func_ref(start);
            let func_ref = match func_ref {
                Some(f) => f,
                None => return Err(Error::msg("the start function has no function reference")),
            };
            let no_slots = core::ptr::NonNull::dangling().as_ptr();
            // SAFETY: the start function belongs to this store and takes and returns
            // nothing (validation checks that), so it needs no slots.
            unsafe { crate::runtime::func::invoke(store, func_ref, no_slots, 0) }?;
        }
        Ok(instance)
    }

    /// The export called `name`.
    pub fn get_export(&self, mut store: impl AsContextMut, name: &str) -> Option<Extern> {
        let store = &mut store.as_context_mut().0.opaque;
        store.check(self.store);
        let module = store.instance_module(self.index)?.clone();
        let position = *module.export_names.get(name)?;
        if let Some(ext) = store.instances[self.index].exports[position] {
            return Some(ext);
        }
        let handle = store.instance_mut(self.index);
        let ext = match module.exports[position].index {
            EntityIndex::Function(f) => {
                let func_ref = handle.func_ref(f)?;
                Extern::Func(Func {
                    store: store.id,
                    index: store.push_func(func_ref),
                })
            }
            EntityIndex::Global(g) => {
                let ptr = SendSyncPtr(handle.global_ptr(g));
                let ty = module.globals[g].to_engine(&handle.runtime().type_ids);
                Extern::Global(Global {
                    store: store.id,
                    ptr,
                    ty: GlobalType(ty),
                })
            }
            EntityIndex::Memory(m) => {
                let (owner, index) = handle.memory_owner(m);
                // SAFETY: the owner is an instance of this store, alive as long as it.
                let instance = unsafe { owner.id() };
                Extern::Memory(Memory {
                    store: store.id,
                    instance,
                    index,
                })
            }
            EntityIndex::Tag(t) => {
                let ptr = SendSyncPtr(handle.tag_ptr(t));
                Extern::Tag(crate::Tag {
                    store: store.id,
                    ptr,
                })
            }
            EntityIndex::Table(t) => {
                let (owner, index) = handle.table_owner(t);
                // SAFETY: as above.
                let instance = unsafe { owner.id() };
                Extern::Table(Table {
                    store: store.id,
                    instance,
                    index,
                })
            }
        };
        store.instances[self.index].exports[position] = Some(ext);
        Some(ext)
    }

    /// The exported function `name`.
    pub fn get_func(&self, store: impl AsContextMut, name: &str) -> Option<Func> {
        self.get_export(store, name)?.into_func()
    }

    /// The exported function `name` with static types.
    ///
    /// # Errors
    /// Fails if there is no such function or its type differs.
    pub fn get_typed_func<Params: WasmParams, Results: WasmResults>(
        &self,
        mut store: impl AsContextMut,
        name: &str,
    ) -> Result<TypedFunc<Params, Results>> {
        let func = self
            .get_func(&mut store, name)
            .ok_or_else(|| Error::msg(format!("failed to find function export `{name}`")))?;
        func.typed(&store)
    }

    /// The exported memory `name`.
    pub fn get_memory(&self, store: impl AsContextMut, name: &str) -> Option<Memory> {
        self.get_export(store, name)?.into_memory()
    }

    /// The exported global `name`.
    pub fn get_global(&self, store: impl AsContextMut, name: &str) -> Option<Global> {
        self.get_export(store, name)?.into_global()
    }

    /// The exported table `name`.
    pub fn get_table(&self, store: impl AsContextMut, name: &str) -> Option<Table> {
        self.get_export(store, name)?.into_table()
    }

    /// All exports, in order.
    pub fn exports(&self, mut store: impl AsContextMut) -> Vec<(String, Extern)> {
        let names: Vec<String> = {
            let s = &store.as_context_mut().0.opaque;
            s.check(self.store);
            s.instance_module(self.index)
                .map(|m| m.exports.iter().map(|e| e.name.clone()).collect())
                .unwrap_or_default()
        };
        names
            .into_iter()
            .filter_map(|n| {
                let ext = self.get_export(&mut store, &n)?;
                Some((n, ext))
            })
            .collect()
    }
}
