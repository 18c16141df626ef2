//! [`Module`]: a compiled module, shareable across stores and threads.

use crate::types::{
    ExportType, ExternType, FuncType, GlobalType, ImportType, MemoryType, TableType,
};
use crate::{Engine, Error, Result};
use std::sync::Arc;
use strata_environ::{EntityIndex, Module as ModuleInfo};
use strata_vm::ModuleRuntimeInfo;

/// A compiled WebAssembly module. Cheap to clone.
#[derive(Clone)]
pub struct Module {
    inner: Arc<ModuleInner>,
}

struct ModuleInner {
    engine: Engine,
    runtime: Arc<ModuleRuntimeInfo>,
}

impl Module {
    /// Compiles a module from its binary or (with the `wat` feature) text form.
    ///
    /// # Errors
    /// Fails if the bytes are malformed or invalid; the message names the problem and its
    /// byte offset.
    #[cfg(feature = "cranelift")]
    pub fn new(engine: &Engine, bytes: impl AsRef<[u8]>) -> Result<Module> {
        let bytes = bytes.as_ref();
        #[cfg(feature = "wat")]
        let bytes = &*wat::parse_bytes(bytes)
            .map_err(|e| Error::msg(e).context("failed to parse the WebAssembly text"))?;
        Module::from_binary(engine, bytes)
    }

    /// Compiles a module from its binary form.
    ///
    /// # Errors
    /// See [`Module::new`].
    #[cfg(feature = "cranelift")]
    pub fn from_binary(engine: &Engine, wasm: &[u8]) -> Result<Module> {
        use strata_environ::Compiler;
        let translation = strata_environ::translate_module(wasm, engine.config().features)
            .map_err(|e| Error::new(e).context("failed to parse WebAssembly module"))?;
        let module = Arc::new(translation.module);
        let compiled = engine
            .compiler()
            .compile_module(&module, translation.function_bodies)
            .map_err(|e| Error::new(e).context("failed to compile WebAssembly module"))?;
        let code = strata_vm::CodeObject::new(compiled, module.clone()).map_err(Error::new)?;
        Module::from_parts(engine, module, Some(code))
    }

    /// Reads and compiles the module in the file at `path`.
    ///
    /// # Errors
    /// Fails if the file cannot be read, or as [`Module::new`].
    #[cfg(feature = "cranelift")]
    pub fn from_file(engine: &Engine, path: impl AsRef<std::path::Path>) -> Result<Module> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| Error::new(e).context(format!("failed to read {}", path.display())))?;
        Module::new(engine, bytes).map_err(|e| e.context(format!("in {}", path.display())))
    }

    /// Checks that `bytes` is a valid module without compiling it.
    ///
    /// # Errors
    /// Describes the first problem found.
    pub fn validate(engine: &Engine, bytes: &[u8]) -> Result<()> {
        let mut validator = wasmparser::Validator::new_with_features(engine.config().features);
        validator.validate_all(bytes).map(drop).map_err(|e| {
            Error::msg(format!("{} (at offset {:#x})", e.message(), e.offset()))
                .context("invalid WebAssembly module")
        })
    }

    #[cfg(feature = "cranelift")]
    pub(crate) fn from_parts(
        engine: &Engine,
        module: Arc<ModuleInfo>,
        code: Option<Arc<strata_vm::CodeObject>>,
    ) -> Result<Module> {
        let type_ids = module.types.values().map(|t| engine.type_id(t)).collect();
        let offsets = strata_environ::VMOffsets::for_host(&module);
        let memory_images = if engine.config().memory_init_cow {
            strata_vm::ModuleMemoryImages::new(&module)
                .map_err(|e| Error::new(e).context("failed to build memory images"))?
        } else {
            strata_vm::ModuleMemoryImages::default()
        };
        Ok(Module {
            inner: Arc::new(ModuleInner {
                engine: engine.clone(),
                runtime: Arc::new(ModuleRuntimeInfo {
                    module,
                    offsets,
                    type_ids,
                    code,
                    memory_images,
                }),
            }),
        })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn runtime(&self) -> &Arc<ModuleRuntimeInfo> {
        &self.inner.runtime
    }

    pub(crate) fn info(&self) -> &ModuleInfo {
        &self.inner.runtime.module
    }

    /// The module's name from its name section.
    pub fn name(&self) -> Option<&str> {
        self.info().name.as_deref()
    }

    pub(crate) fn entity_type(&self, index: EntityIndex) -> ExternType {
        let m = self.info();
        match index {
            EntityIndex::Function(f) => ExternType::Func(FuncType(m.func_type(f).clone())),
            EntityIndex::Table(t) => ExternType::Table(TableType(m.tables[t])),
            EntityIndex::Memory(i) => ExternType::Memory(MemoryType(m.memories[i])),
            EntityIndex::Global(g) => ExternType::Global(GlobalType(m.globals[g])),
        }
    }

    /// The module's imports in order.
    pub fn imports(&self) -> impl ExactSizeIterator<Item = ImportType<'_>> + '_ {
        self.info().imports.iter().map(|i| ImportType {
            module: &i.module,
            name: &i.name,
            ty: self.entity_type(i.index),
        })
    }

    /// The module's exports in order.
    pub fn exports(&self) -> impl ExactSizeIterator<Item = ExportType<'_>> + '_ {
        self.info().exports.iter().map(|e| ExportType {
            name: &e.name,
            ty: self.entity_type(e.index),
        })
    }

    /// The export called `name`.
    pub fn get_export(&self, name: &str) -> Option<ExternType> {
        self.info().export(name).map(|e| self.entity_type(e.index))
    }
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Module>();
};
