//! [`Module`]: a compiled module, shareable across stores and threads.

use crate::types::{
    ExportType, ExternType, FuncType, GlobalType, ImportType, MemoryType, TableType,
};
use crate::{Engine, Error, Result};
use std::sync::Arc;
use strata_environ::{ArtifactLayout, EntityIndex, Module as ModuleInfo, Section};
use strata_vm::{ArtifactImage, CodeObject, ModuleRuntimeInfo};

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
        #[cfg(feature = "cache")]
        if let Some(dir) = &engine.config().cache_dir {
            return super::cache::module_from_cache(engine, dir, wasm);
        }
        let (module, artifact) = compile_artifact(engine, wasm)?;
        Module::from_compiled(engine, module, artifact)
    }

    /// Publishes `artifact`, just compiled for `module` by `engine`'s compiler.
    #[cfg(feature = "cranelift")]
    pub(super) fn from_compiled(
        engine: &Engine,
        module: Arc<ModuleInfo>,
        artifact: Vec<u8>,
    ) -> Result<Module> {
        let layout = ArtifactLayout::parse(&artifact).map_err(Error::new)?;
        let image = ArtifactImage::copy_of(&artifact, layout.range(Section::Text).start)
            .map_err(Error::new)?;
        drop(artifact);
        // SAFETY: the code was just compiled for `module` by this engine's compiler, and
        // the bytes are intact: they never left this process.
        let code = unsafe { CodeObject::publish(image, layout, module.clone(), true) }
            .map_err(Error::new)?;
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

    /// Compiles `bytes` (binary or, with the `wat` feature, text) into the artifact
    /// [`Engine::precompile_module`] returns.
    #[cfg(feature = "cranelift")]
    pub(crate) fn precompile(engine: &Engine, bytes: &[u8]) -> Result<Vec<u8>> {
        #[cfg(feature = "wat")]
        let bytes = &*wat::parse_bytes(bytes)
            .map_err(|e| Error::msg(e).context("failed to parse the WebAssembly text"))?;
        Ok(compile_artifact(engine, bytes)?.1)
    }

    /// Writes this module as a precompiled artifact that [`Module::deserialize`] and
    /// [`Module::deserialize_file`] load, in this or another process, without compiling
    /// it again. The format is described in `docs/precompiled.md`.
    ///
    /// # Errors
    /// Fails if the module was loaded from an artifact whose code is corrupted.
    pub fn serialize(&self) -> Result<Vec<u8>> {
        let Some(code) = &self.inner.runtime.code else {
            return Err(Error::msg("cannot serialize a module without code"));
        };
        // Never pass on a loaded artifact whose text turned out to be damaged.
        self.check_code()
            .map_err(|e| e.context("cannot serialize the module"))?;
        Ok(code.artifact().to_vec())
    }

    /// Loads a module from an artifact made by [`Module::serialize`] or
    /// [`Engine::precompile_module`], without compiling anything.
    ///
    /// # Safety
    /// The artifact's machine code is run as it is: `bytes` must be an artifact that
    /// strata wrote, not bytes an untrusted party could have crafted. Loading checks
    /// for accidents and refuses, with an error naming the problem, bytes that are not
    /// an artifact, are truncated or corrupted (every section has a checksum), or were
    /// written by another strata version, for another target or CPU, or with other
    /// code-affecting settings (the error names the setting); but a deliberately
    /// consistent artifact with malicious code would be run.
    ///
    /// # Errors
    /// Fails on any of the mismatches above.
    pub unsafe fn deserialize(engine: &Engine, bytes: impl AsRef<[u8]>) -> Result<Module> {
        let bytes = bytes.as_ref();
        let context = |e: Error| e.context("failed to load precompiled module");
        let layout = ArtifactLayout::parse(bytes).map_err(|e| context(Error::new(e)))?;
        let image = ArtifactImage::copy_of(bytes, layout.range(Section::Text).start)
            .map_err(|e| context(Error::new(e)))?;
        // SAFETY: the caller vouches for the artifact.
        unsafe { Module::load(engine, image, layout) }.map_err(context)
    }

    /// Loads a module from an artifact file, as [`Module::deserialize`] does, mapping it
    /// into memory: its code runs straight from the file's pages when the text is
    /// page-aligned, which it is in artifacts strata writes.
    ///
    /// # Safety
    /// As for [`Module::deserialize`]; besides, the file must not be modified or
    /// truncated while the module or any instance of it lives, since its pages are used
    /// in place.
    ///
    /// # Errors
    /// Fails if the file cannot be opened or mapped, or as [`Module::deserialize`].
    pub unsafe fn deserialize_file(
        engine: &Engine,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Module> {
        let path = path.as_ref();
        let context = || format!("failed to load precompiled module {}", path.display());
        let file = std::fs::File::open(path).map_err(|e| Error::new(e).context(context()))?;
        // SAFETY: the caller's obligations are those of `Module::deserialize_file`.
        unsafe { Module::load_file(engine, &file, path) }
    }

    /// Loads a module from `file`, opened from `path`, as [`Module::deserialize_file`]
    /// does.
    ///
    /// # Safety
    /// As for [`Module::deserialize_file`].
    pub(super) unsafe fn load_file(
        engine: &Engine,
        file: &std::fs::File,
        path: &std::path::Path,
    ) -> Result<Module> {
        let context = || format!("failed to load precompiled module {}", path.display());
        // SAFETY: the caller promises that the file stays as it is.
        let image = unsafe { ArtifactImage::map_file(file) }
            .map_err(|e| Error::new(e).context(context()))?;
        let layout =
            ArtifactLayout::parse(image.bytes()).map_err(|e| Error::new(e).context(context()))?;
        // SAFETY: the caller vouches for the artifact and that the file stays as it is.
        unsafe { Module::load(engine, image, layout) }.map_err(|e| e.context(context()))
    }

    /// Checks and publishes the artifact in `image`, parsed into `layout`.
    ///
    /// # Safety
    /// As for [`Module::deserialize_file`].
    unsafe fn load(
        engine: &Engine,
        image: ArtifactImage,
        layout: ArtifactLayout,
    ) -> Result<Module> {
        layout
            .check_compatible(engine.artifact_target(), strata_vm::host_has_cpu_feature)
            .map_err(Error::new)?;
        // The text is checked chunk by chunk as it first runs (see `CodeObject`), so
        // that loading costs nothing per byte of code.
        layout.verify_tables(image.bytes()).map_err(Error::new)?;
        let module = Arc::new(layout.decode_module(image.bytes()).map_err(Error::new)?);
        // SAFETY: the caller vouches for the artifact, which was checked to have been
        // compiled for this engine's settings and host, and whose tables are intact.
        let code = unsafe { CodeObject::publish(image, layout, module.clone(), false) }
            .map_err(Error::new)?;
        Module::from_parts(engine, module, Some(code))
    }

    /// Checks all of the module's code and data against the artifact's checksums now,
    /// rather than each part at its first use (see `docs/precompiled.md`).
    ///
    /// # Errors
    /// Names the first part of the text that does not match.
    pub(super) fn check_code(&self) -> Result<()> {
        match &self.inner.runtime.code {
            Some(code) => code.check_all().map_err(Error::new),
            None => Ok(()),
        }
    }

    pub(crate) fn from_parts(
        engine: &Engine,
        module: Arc<ModuleInfo>,
        code: Option<Arc<strata_vm::CodeObject>>,
    ) -> Result<Module> {
        let type_ids = engine.register_module_types(&module.types);
        let offsets = strata_environ::VMOffsets::for_host(&module);
        Ok(Module {
            inner: Arc::new(ModuleInner {
                engine: engine.clone(),
                runtime: Arc::new(ModuleRuntimeInfo {
                    module,
                    offsets,
                    type_ids,
                    code,
                    memory_init_cow: engine.config().memory_init_cow,
                    memory_images: std::sync::OnceLock::new(),
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
        let ids = &self.inner.runtime.type_ids;
        match index {
            EntityIndex::Function(f) => {
                let id = ids[m.functions[f].signature.as_u32() as usize];
                ExternType::Func(FuncType(self.engine().type_of(id)))
            }
            EntityIndex::Table(t) => ExternType::Table(TableType(m.tables[t].to_engine(ids))),
            EntityIndex::Memory(i) => ExternType::Memory(MemoryType(m.memories[i])),
            EntityIndex::Global(g) => ExternType::Global(GlobalType(m.globals[g].to_engine(ids))),
            EntityIndex::Tag(t) => {
                let id = ids[m.tags[t].signature.as_u32() as usize];
                ExternType::Tag(crate::TagType(FuncType(self.engine().type_of(id))))
            }
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

    /// The compiled machine code of the module: every defined function (see
    /// [`Module::functions`]) and the trampolines between wasm and the host. Empty for
    /// a module without code. The text of a module loaded from an artifact is what the
    /// artifact holds: a chunk is checked against its checksum only when it first runs.
    pub fn text(&self) -> &[u8] {
        self.inner
            .runtime
            .code
            .as_ref()
            .map_or(&[], |code| code.text())
    }

    /// Where each function defined in the module sits in [`Module::text`], in index
    /// order, with its name from the name section: what a disassembler or profiler
    /// needs to label the code.
    pub fn functions(&self) -> impl ExactSizeIterator<Item = ModuleFunction<'_>> + '_ {
        let info = self.info();
        let code = self.inner.runtime.code.as_deref();
        let defined = if code.is_some() {
            info.num_defined_funcs()
        } else {
            0
        };
        (0..defined).map(move |i| {
            let def = strata_environ::DefinedFuncIndex::from_u32(
                u32::try_from(i).expect("function indices are u32"),
            );
            let index = info.func_index(def);
            let loc = code.and_then(|c| c.function_loc(def)).unwrap_or_default();
            ModuleFunction {
                index: index.as_u32(),
                name: info.func_name(index),
                offset: loc.start as usize,
                len: loc.length as usize,
            }
        })
    }
}

/// A function defined in a [`Module`], as [`Module::functions`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModuleFunction<'a> {
    /// The function's index in the module's function index space (imports first).
    pub index: u32,
    /// Its name from the module's name section, if it has one.
    pub name: Option<&'a str>,
    /// The offset of its first instruction in [`Module::text`].
    pub offset: usize,
    /// The length of its machine code in bytes.
    pub len: usize,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// Translates and compiles `wasm` into an artifact for `engine`.
#[cfg(feature = "cranelift")]
pub(super) fn compile_artifact(engine: &Engine, wasm: &[u8]) -> Result<(Arc<ModuleInfo>, Vec<u8>)> {
    use strata_environ::Compiler;
    let translation = strata_environ::translate_module(wasm, engine.config().features)
        .map_err(|e| Error::new(e).context("failed to parse WebAssembly module"))?;
    let module = Arc::new(translation.module);
    let compiled = engine
        .compiler()
        .compile_module(&module, translation.function_bodies)
        .map_err(|e| Error::new(e).context("failed to compile WebAssembly module"))?;
    let artifact = strata_environ::write_artifact(
        engine.artifact_target(),
        &module,
        &compiled,
        &translation.data,
    );
    Ok((module, artifact))
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Module>();
};
