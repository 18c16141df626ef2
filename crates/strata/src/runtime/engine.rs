//! [`Engine`]: compiler, settings and the registry of function types.

use crate::{Config, FuncType, OptLevel, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use strata_environ::{ArtifactTarget, PrimaryMap, TypeIndex, WasmFuncType};
use strata_vm::{InstanceAllocator, OnDemandInstanceAllocator};

/// What [`Engine::detect_precompiled`] finds.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Precompiled {
    /// A module artifact, from [`Engine::precompile_module`] or
    /// [`Module::serialize`](crate::Module::serialize).
    Module,
}

/// Shared, thread-safe context for compiling and running modules. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

/// Aligned so that the `Arc`'s reference count, which every new store updates, sits on
/// another cache line than the configuration that instantiation reads.
#[repr(align(128))]
struct EngineInner {
    config: Config,
    #[cfg(feature = "cranelift")]
    compiler: strata_cranelift::CraneliftCompiler,
    types: Mutex<TypeRegistry>,
    /// What this engine's code is compiled for, as artifacts record it.
    artifact_target: ArtifactTarget,
    allocator: Arc<dyn InstanceAllocator>,
    #[cfg(feature = "pooling-allocator")]
    pooling: Option<Arc<strata_vm::PoolingInstanceAllocator>>,
    epoch: EpochCounter,
}

/// The engine's epoch, on a cache line of its own: another thread bumps it while stores
/// read the configuration next to it.
#[repr(align(128))]
#[derive(Default)]
struct EpochCounter(AtomicU64);

/// The allocator `config` asks for, and the pooling allocator again if it is that one.
#[cfg(feature = "pooling-allocator")]
type Allocators = (
    Arc<dyn InstanceAllocator>,
    Option<Arc<strata_vm::PoolingInstanceAllocator>>,
);

#[cfg(feature = "pooling-allocator")]
fn allocators(config: &Config) -> Result<Allocators> {
    match &config.allocation_strategy {
        crate::InstanceAllocationStrategy::OnDemand => {
            Ok((Arc::new(OnDemandInstanceAllocator::default()), None))
        }
        crate::InstanceAllocationStrategy::Pooling(pool) => {
            #[cfg_attr(
                not(feature = "async"),
                expect(unused_mut, reason = "no stacks to set up")
            )]
            let mut pool = pool.inner.clone();
            #[cfg(feature = "async")]
            {
                pool.stack_size = config.async_stack_size;
                pool.stack_zeroing = config.async_stack_zeroing;
            }
            let pooling = strata_vm::PoolingInstanceAllocator::new(&pool, &config.tunables)
                .map_err(|e| {
                    crate::Error::new(e).context("failed to reserve the pooling allocator's pools")
                })?;
            let pooling = Arc::new(pooling);
            Ok((pooling.clone(), Some(pooling)))
        }
    }
}

/// Engine-wide ids of function types, so `call_indirect` can compare types across
/// modules with one integer comparison.
#[derive(Default)]
struct TypeRegistry {
    ids: HashMap<WasmFuncType, u32>,
    types: Vec<WasmFuncType>,
}

impl TypeRegistry {
    /// The id of `ty`, whose concrete types are engine ids, registering it if new.
    fn intern(&mut self, ty: &WasmFuncType) -> u32 {
        if let Some(&id) = self.ids.get(ty) {
            return id;
        }
        let id = u32::try_from(self.types.len()).expect("fewer than 2^32 function types");
        self.types.push(ty.clone());
        self.ids.insert(ty.clone(), id);
        id
    }
}

impl Default for Engine {
    fn default() -> Engine {
        Engine::new(&Config::default()).expect("the default configuration is valid for the host")
    }
}

impl Engine {
    /// An engine with `config`.
    ///
    /// # Errors
    /// Fails if settings contradict each other (see [`Config::async_stack_size`]), if
    /// the host is not supported by the compiler, or if the pooling allocator cannot
    /// reserve its pools.
    pub fn new(config: &Config) -> Result<Engine> {
        #[cfg(feature = "async")]
        config.validate()?;
        strata_vm::init_traps();
        #[cfg(feature = "cranelift")]
        let compiler = {
            let opt = match config.opt_level {
                OptLevel::None => strata_cranelift::OptLevel::None,
                OptLevel::Speed => strata_cranelift::OptLevel::Speed,
                OptLevel::SpeedAndSize => strata_cranelift::OptLevel::SpeedAndSize,
            };
            let mut compiler = strata_cranelift::CraneliftCompiler::new(
                config.tunables.clone(),
                opt,
                config.nan_canonicalization,
            )
            .map_err(|e| crate::Error::new(e).context("failed to set up the compiler"))?;
            if let Some(dir) = &config.clif_dir {
                compiler.emit_clif(dir);
            }
            compiler.set_inlining(config.compiler_inlining);
            compiler
        };
        #[cfg(not(feature = "cranelift"))]
        let _ = OptLevel::None;
        let artifact_target = ArtifactTarget {
            strata_version: env!("CARGO_PKG_VERSION").to_string(),
            target: strata_environ::host_target(),
            #[cfg(feature = "cranelift")]
            cpu_features: compiler.cpu_features(),
            // A runtime-only engine checks an artifact's features against the host.
            #[cfg(not(feature = "cranelift"))]
            cpu_features: Vec::new(),
            settings: config.code_settings(),
        };
        #[cfg(feature = "pooling-allocator")]
        let (allocator, pooling) = allocators(config)?;
        #[cfg(not(feature = "pooling-allocator"))]
        let allocator: Arc<dyn InstanceAllocator> = Arc::new(OnDemandInstanceAllocator::default());
        Ok(Engine {
            inner: Arc::new(EngineInner {
                config: config.clone(),
                #[cfg(feature = "cranelift")]
                compiler,
                types: Mutex::new(TypeRegistry::default()),
                artifact_target,
                allocator,
                #[cfg(feature = "pooling-allocator")]
                pooling,
                epoch: EpochCounter::default(),
            }),
        })
    }

    /// How full the pooling allocator's pools are; `None` for other strategies.
    #[cfg(feature = "pooling-allocator")]
    pub fn pooling_allocator_metrics(&self) -> Option<crate::PoolingAllocatorMetrics> {
        self.inner.pooling.as_ref().map(|p| p.metrics())
    }

    /// Advances the engine's epoch by one. Wasm running in any store of this engine
    /// whose deadline is reached stops at its next function entry or loop iteration
    /// (with [`Config::epoch_interruption`]). Cheap and callable from any thread, for
    /// example a timer thread.
    pub fn increment_epoch(&self) {
        self.inner.epoch.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The current epoch.
    pub(crate) fn current_epoch(&self) -> u64 {
        self.inner.epoch.0.load(Ordering::Relaxed)
    }

    /// The epoch counter compiled code reads.
    pub(crate) fn epoch_counter(&self) -> *const AtomicU64 {
        &raw const self.inner.epoch.0
    }

    /// Whether two handles refer to the same engine.
    pub fn same(a: &Engine, b: &Engine) -> bool {
        Arc::ptr_eq(&a.inner, &b.inner)
    }

    /// Prepares this thread for calling into wasm now instead of at the first call.
    pub fn tls_eager_initialize() {
        strata_vm::tls_eager_initialize();
    }

    /// Compiles `bytes` (a module in binary or, with the `wat` feature, text form) into
    /// an artifact that [`Module::deserialize`](crate::Module::deserialize) loads into
    /// an engine with the same code-affecting settings, on a host like this one. Nothing
    /// is instantiated or made executable.
    ///
    /// # Errors
    /// As [`Module::new`](crate::Module::new).
    #[cfg(feature = "cranelift")]
    pub fn precompile_module(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        crate::Module::precompile(self, bytes)
    }

    /// Tells whether `bytes` are a precompiled artifact (which
    /// [`Module::deserialize`](crate::Module::deserialize) loads) rather than a module
    /// to compile. Looks only at the magic number: loading checks the rest.
    pub fn detect_precompiled(&self, bytes: &[u8]) -> Option<Precompiled> {
        strata_environ::is_artifact(bytes).then_some(Precompiled::Module)
    }

    /// Like [`Engine::detect_precompiled`] for the file at `path`, reading only its
    /// first bytes.
    ///
    /// # Errors
    /// Fails if the file cannot be opened or read.
    pub fn detect_precompiled_file(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<Option<Precompiled>> {
        use std::io::Read;
        let path = path.as_ref();
        let context =
            |e| crate::Error::new(e).context(format!("failed to read {}", path.display()));
        let mut head = Vec::with_capacity(strata_environ::ARTIFACT_MAGIC.len());
        std::fs::File::open(path)
            .and_then(|f| f.take(head.capacity() as u64).read_to_end(&mut head))
            .map_err(context)?;
        Ok(self.detect_precompiled(&head))
    }

    pub(crate) fn artifact_target(&self) -> &ArtifactTarget {
        &self.inner.artifact_target
    }

    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    #[cfg(feature = "cranelift")]
    pub(crate) fn compiler(&self) -> &strata_cranelift::CraneliftCompiler {
        &self.inner.compiler
    }

    pub(crate) fn allocator(&self) -> &dyn InstanceAllocator {
        &*self.inner.allocator
    }

    /// The allocator, shared.
    #[cfg(feature = "async")]
    pub(crate) fn allocator_arc(&self) -> Arc<dyn InstanceAllocator> {
        self.inner.allocator.clone()
    }

    /// The engine-wide id of `ty`, whose concrete types are engine ids, registering it
    /// if new.
    pub(crate) fn type_id(&self, ty: &WasmFuncType) -> u32 {
        let mut reg = self.inner.types.lock().unwrap_or_else(|e| e.into_inner());
        reg.intern(ty)
    }

    /// The engine-wide ids of a module's types, in order, registering those that are
    /// new.
    pub(crate) fn register_module_types(
        &self,
        types: &PrimaryMap<TypeIndex, WasmFuncType>,
    ) -> Box<[u32]> {
        let mut reg = self.inner.types.lock().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<u32> = Vec::with_capacity(types.len());
        for ty in types.values() {
            // Without the GC proposal a type may name only the types before it
            // (validation checks that), whose ids are known by now.
            let ty = ty.map_index(|i| i.to_engine(&ids));
            ids.push(reg.intern(&ty));
        }
        ids.into_boxed_slice()
    }

    /// The type with engine-wide id `id`, its concrete types as engine ids.
    /// `text` with every engine type id in it (`engine-type-N`, as types print without
    /// an engine) replaced by the function type it stands for, for error messages.
    pub(crate) fn name_types(&self, text: &str) -> String {
        const TOKEN: &str = "engine-type-";
        // Types name only earlier types (without GC's recursion groups), so a few
        // rounds resolve every nesting; the bound is for safety alone.
        let mut text = text.to_owned();
        for _ in 0..8 {
            let Some(at) = text.find(TOKEN) else { break };
            let mut out = String::with_capacity(text.len());
            let mut rest = &text[..];
            let mut next = Some(at);
            while let Some(at) = next {
                out.push_str(&rest[..at]);
                let after = &rest[at + TOKEN.len()..];
                let digits = after.bytes().take_while(u8::is_ascii_digit).count();
                let known = after[..digits]
                    .parse::<u32>()
                    .ok()
                    .filter(|&id| (id as usize) < self.num_types());
                match known {
                    Some(id) => out.push_str(&FuncType(self.type_of(id)).to_string()),
                    None => out.push_str(&rest[at..at + TOKEN.len() + digits]),
                }
                rest = &after[digits..];
                next = rest.find(TOKEN);
            }
            out.push_str(rest);
            if out == text {
                break;
            }
            text = out;
        }
        text
    }

    /// The number of function types the engine knows.
    fn num_types(&self) -> usize {
        let reg = self.inner.types.lock().unwrap_or_else(|e| e.into_inner());
        reg.types.len()
    }

    pub(crate) fn type_of(&self, id: u32) -> WasmFuncType {
        let reg = self.inner.types.lock().unwrap_or_else(|e| e.into_inner());
        reg.types[id as usize].clone()
    }
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Engine>();
};

#[cfg(all(test, feature = "cranelift"))]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_can_check_every_cpu_feature_the_compiler_uses() {
        let engine = Engine::default();
        for feature in &engine.artifact_target().cpu_features {
            assert_eq!(
                strata_vm::host_has_cpu_feature(feature),
                Some(true),
                "{feature}: the compiler uses it, so the host has it, and the runtime must say so"
            );
        }
    }
}
