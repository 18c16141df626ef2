//! [`Config`]: settings an [`Engine`](crate::Engine) is built with.

use strata_environ::{Tunables, WasmFeatures};

/// How hard the compiler optimizes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OptLevel {
    /// No optimizations.
    None,
    /// Optimize for speed (the default).
    #[default]
    Speed,
    /// Optimize for speed and code size.
    SpeedAndSize,
}

/// Global settings for compiling and running WebAssembly.
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) features: WasmFeatures,
    pub(crate) tunables: Tunables,
    pub(crate) opt_level: OptLevel,
    pub(crate) nan_canonicalization: bool,
    pub(crate) compiler_inlining: bool,
    pub(crate) parallel_compilation: bool,
    pub(crate) max_wasm_stack: usize,
    pub(crate) memory_init_cow: bool,
    pub(crate) allocation_strategy: InstanceAllocationStrategy,
    #[cfg(feature = "async")]
    pub(crate) async_support: bool,
    #[cfg(feature = "async")]
    pub(crate) async_stack_size: usize,
    #[cfg(feature = "async")]
    pub(crate) async_stack_zeroing: bool,
    /// Where the compiler writes the CLIF of what it compiles, if anywhere.
    #[cfg(feature = "cranelift")]
    pub(crate) clif_dir: Option<std::path::PathBuf>,
    /// Where compiled modules are cached, if anywhere.
    #[cfg(feature = "cache")]
    pub(crate) cache_dir: Option<std::path::PathBuf>,
    /// The most bytes the cache's entries may take together.
    #[cfg(feature = "cache")]
    pub(crate) cache_max_size: u64,
}

/// The default of [`Config::cache_max_size`]: 512 MiB.
#[cfg(feature = "cache")]
pub(crate) const DEFAULT_CACHE_MAX_SIZE: u64 = 512 << 20;

/// Stack a fiber must have beyond [`Config::max_wasm_stack`] for the host code that
/// wasm calls (host functions, libcalls) and for strata's own frames.
#[cfg(feature = "async")]
pub(crate) const MIN_ASYNC_HOST_STACK: usize = 64 * 1024;

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

macro_rules! feature_toggles {
    ($($(#[$doc:meta])* $method:ident => $flag:ident;)*) => {$(
        $(#[$doc])*
        pub fn $method(&mut self, enable: bool) -> &mut Self {
            self.features.set(WasmFeatures::$flag, enable);
            self
        }
    )*};
}

impl Config {
    /// The default settings: the WebAssembly 2.0 features and the Wasm 3.0 features that
    /// strata implements and wasmtime enables by default; optimizing compilation.
    pub fn new() -> Config {
        let features = WasmFeatures::MUTABLE_GLOBAL
            | WasmFeatures::SATURATING_FLOAT_TO_INT
            | WasmFeatures::SIGN_EXTENSION
            | WasmFeatures::MULTI_VALUE
            | WasmFeatures::BULK_MEMORY
            | WasmFeatures::REFERENCE_TYPES
            | WasmFeatures::SIMD
            | WasmFeatures::FLOATS
            // wasmparser counts `externref` among the "GC types"; the GC proposal itself
            // (structs, arrays, `anyref`) stays off.
            | WasmFeatures::GC_TYPES
            // The Wasm 3.0 features that wasmtime 48 enables by default and strata
            // implements.
            | WasmFeatures::TAIL_CALL
            | WasmFeatures::EXTENDED_CONST
            | WasmFeatures::MULTI_MEMORY
            | WasmFeatures::MEMORY64
            | WasmFeatures::RELAXED_SIMD;
        // On by default where the `gc` feature is built in, as in wasmtime.
        let features = if cfg!(feature = "gc") {
            features | WasmFeatures::FUNCTION_REFERENCES | WasmFeatures::EXCEPTIONS
        } else {
            features
        };
        Config {
            features,
            tunables: Tunables::default_host(),
            opt_level: OptLevel::Speed,
            nan_canonicalization: false,
            compiler_inlining: true,
            parallel_compilation: true,
            max_wasm_stack: 512 * 1024,
            memory_init_cow: true,
            allocation_strategy: InstanceAllocationStrategy::OnDemand,
            #[cfg(feature = "async")]
            async_support: false,
            #[cfg(feature = "async")]
            async_stack_size: 2 << 20,
            #[cfg(feature = "async")]
            async_stack_zeroing: false,
            #[cfg(feature = "cranelift")]
            clif_dir: None,
            #[cfg(feature = "cache")]
            cache_dir: None,
            #[cfg(feature = "cache")]
            cache_max_size: DEFAULT_CACHE_MAX_SIZE,
        }
    }

    feature_toggles! {
        /// Multi-value blocks and functions.
        wasm_multi_value => MULTI_VALUE;
        /// Bulk memory operations.
        wasm_bulk_memory => BULK_MEMORY;
        /// Reference types.
        wasm_reference_types => REFERENCE_TYPES;
        /// 128-bit SIMD.
        wasm_simd => SIMD;
        /// Sign-extension operators.
        wasm_sign_extension => SIGN_EXTENSION;
        /// Non-trapping float-to-int conversions.
        wasm_saturating_float_to_int => SATURATING_FLOAT_TO_INT;
        /// Tail calls: `return_call` and `return_call_indirect`, which replace the
        /// caller's frame, so that a chain of tail calls of any length runs in constant
        /// stack space. On by default.
        wasm_tail_call => TAIL_CALL;
        /// Extended constant expressions: `i32`/`i64` `add`, `sub` and `mul` in the
        /// initializers of globals and the offsets of data and element segments. On by
        /// default.
        wasm_extended_const => EXTENDED_CONST;
        /// Typed function references: `(ref $t)` and `(ref null $t)` types,
        /// non-nullable locals, `call_ref` and `return_call_ref` (with no signature
        /// check: validation proves the type), `ref.as_non_null`, `br_on_null`,
        /// `br_on_non_null`, and tables with an initializer expression. On by default;
        /// needs the `gc` Cargo feature, as in wasmtime.
        #[cfg(feature = "gc")]
        wasm_function_references => FUNCTION_REFERENCES;
        /// Exception handling with `exnref`: tags, `throw`, `throw_ref` and
        /// `try_table`. A call that throws nothing costs what it did without: handlers
        /// are found from return addresses only when something is thrown. An
        /// exception no wasm handler catches reaches the host as a
        /// [`ThrownException`](crate::ThrownException). On by default; needs the `gc`
        /// Cargo feature, as in wasmtime.
        #[cfg(feature = "gc")]
        wasm_exceptions => EXCEPTIONS;
        /// Multi-memory: any number of linear memories per module, each memory
        /// instruction naming its memory. On by default.
        wasm_multi_memory => MULTI_MEMORY;
        /// 64-bit memories and tables, indexed with `i64` (memory64 and table64). On by
        /// default. Guard pages cannot cover a 64-bit index, so every access to a
        /// 64-bit memory is bounds-checked explicitly.
        wasm_memory64 => MEMORY64;
        /// Relaxed SIMD: SIMD instructions whose results may differ between hosts
        /// within bounds the specification sets. On by default; see
        /// [`Config::relaxed_simd_deterministic`] for results that are the same
        /// everywhere.
        wasm_relaxed_simd => RELAXED_SIMD;
        /// Wide arithmetic: `i64.add128`, `i64.sub128`, `i64.mul_wide_s` and
        /// `i64.mul_wide_u`. Off by default, as in wasmtime.
        wasm_wide_arithmetic => WIDE_ARITHMETIC;
        /// Custom page sizes: memories whose pages are 1 byte instead of 64 KiB. Off by
        /// default, as in wasmtime.
        wasm_custom_page_sizes => CUSTOM_PAGE_SIZES;
    }

    /// Makes every relaxed SIMD instruction give one fixed result, the same on every
    /// host, instead of the fastest result the host's instructions give. Off by
    /// default, as in wasmtime.
    ///
    /// The fixed results are wasmtime 48's, so that the two runtimes agree: the
    /// non-relaxed counterpart where there is one (`swizzle`, `trunc_sat`,
    /// `bitselect`, `min`/`max`, `q15mulr_sat_s`), a fused multiply-add for
    /// `relaxed_madd`/`relaxed_nmadd`, signed products for the dot products, summed
    /// exactly by `i32x4.relaxed_dot_i8x16_i7x16_add_s`. They are among the results the
    /// specification allows, though its own "deterministic profile" picks the unfused
    /// multiply-add.
    pub fn relaxed_simd_deterministic(&mut self, enable: bool) -> &mut Self {
        self.tunables.relaxed_simd_deterministic = enable;
        self
    }

    /// How hard the compiler optimizes.
    pub fn cranelift_opt_level(&mut self, level: OptLevel) -> &mut Self {
        self.opt_level = level;
        self
    }

    /// Writes the Cranelift IR of every function and trampoline the engine compiles into
    /// the directory `dir`, after optimization, one `.clif` file each, named as
    /// wasmtime's `Config::emit_clif` names them (`wasm[0]--function[3].clif` for
    /// function 3). The directory must exist when a module is compiled; a file that
    /// cannot be written fails the compilation. A module loaded from the
    /// [cache](Config::cache_dir) or from an artifact is not compiled and writes nothing.
    /// The setting changes no generated code.
    #[cfg(feature = "cranelift")]
    pub fn emit_clif(&mut self, dir: impl Into<std::path::PathBuf>) -> &mut Self {
        self.clif_dir = Some(dir.into());
        self
    }

    /// Whether the compiler inlines small leaf functions (functions that call nothing)
    /// into their direct callers within a module: those of up to 20 Cranelift
    /// instructions at every call, those of up to 60 at calls inside loops, each
    /// caller growing by at most an eighth of its size (or 100 instructions).
    ///
    /// On by default, unlike wasmtime's `compiler_inlining`, which inlines far more (and
    /// doubled its compile time of the Sightglass programs on our machines). Backtraces
    /// are unchanged: a trap inside inlined code shows the inlined function's frame and
    /// offset, then its caller's at the call. Code compiled with fuel or epoch checks
    /// has no leaves (every function may call into the runtime), so nothing is inlined.
    pub fn compiler_inlining(&mut self, enable: bool) -> &mut Self {
        self.compiler_inlining = enable;
        self
    }

    /// Makes every NaN produced by float arithmetic canonical, for deterministic results.
    pub fn cranelift_nan_canonicalization(&mut self, enable: bool) -> &mut Self {
        self.nan_canonicalization = enable;
        self
    }

    /// Compiles a module's functions in parallel (with the `parallel-compilation` feature).
    pub fn parallel_compilation(&mut self, enable: bool) -> &mut Self {
        self.parallel_compilation = enable;
        self
    }

    /// The most stack, in bytes, wasm may use before it traps with a stack overflow
    /// (default 512 KiB). With async support, it must fit in
    /// [`Config::async_stack_size`] with room to spare.
    pub fn max_wasm_stack(&mut self, bytes: usize) -> &mut Self {
        self.max_wasm_stack = bytes;
        self
    }

    /// Bytes of address space reserved for each linear memory. Memories whose maximum
    /// fits are never moved and need no bounds checks.
    pub fn memory_reservation(&mut self, bytes: u64) -> &mut Self {
        self.tunables.memory_reservation = bytes;
        self
    }

    /// Bytes of inaccessible guard region after each linear memory.
    pub fn memory_guard_size(&mut self, bytes: u64) -> &mut Self {
        self.tunables.memory_guard_size = bytes;
        self
    }

    /// Where instances' memories and tables come from: on demand (the default) or from
    /// pools.
    pub fn allocation_strategy(&mut self, strategy: InstanceAllocationStrategy) -> &mut Self {
        self.allocation_strategy = strategy;
        self
    }

    /// Initializes linear memories by mapping a copy-on-write image of the module's data
    /// segments, built once per module, instead of copying the segments into each new
    /// memory. On by default; modules whose segments do not allow an image (offsets that
    /// are not constant, or outside the minimum size) are initialized by copying.
    pub fn memory_init_cow(&mut self, enable: bool) -> &mut Self {
        self.memory_init_cow = enable;
        self
    }

    /// Makes compiled code count fuel: one unit for each operator run, except those
    /// that only shape control flow or the operand stack (`nop`, `drop`, `block`,
    /// `loop`, `else`, `end`, `unreachable`, `return`). A store starts with no fuel;
    /// give it some with [`Store::set_fuel`](crate::Store::set_fuel). Wasm that runs out
    /// traps with [`Trap::OutOfFuel`](crate::Trap::OutOfFuel).
    pub fn consume_fuel(&mut self, enable: bool) -> &mut Self {
        self.tunables.consume_fuel = enable;
        self
    }

    /// Makes compiled code compare the engine's epoch with its store's deadline at
    /// every function entry and loop iteration, so that
    /// [`Engine::increment_epoch`](crate::Engine::increment_epoch) from any thread can
    /// stop runaway wasm (see [`Store::set_epoch_deadline`](crate::Store::set_epoch_deadline)).
    pub fn epoch_interruption(&mut self, enable: bool) -> &mut Self {
        self.tunables.epoch_interruption = enable;
        self
    }

    /// Makes every store of the engine async: wasm runs only through the `_async`
    /// entry points ([`Func::call_async`](crate::Func::call_async),
    /// [`Instance::new_async`](crate::Instance::new_async), ...), each on a fiber
    /// stack of its own, and host functions defined with
    /// [`Linker::func_wrap_async`](crate::Linker::func_wrap_async) can wait for
    /// futures while the wasm under them stays suspended. Synchronous calls into wasm
    /// fail on such stores, and async calls fail on the stores of other engines. Off
    /// by default.
    #[cfg(feature = "async")]
    pub fn async_support(&mut self, enable: bool) -> &mut Self {
        self.async_support = enable;
        self
    }

    /// Bytes of the fiber stack each async call runs on (default 2 MiB). It holds the
    /// wasm frames, at most [`Config::max_wasm_stack`] bytes, and the host functions
    /// wasm calls, so it must be at least 64 KiB larger than that; the engine refuses
    /// other settings.
    #[cfg(feature = "async")]
    pub fn async_stack_size(&mut self, bytes: usize) -> &mut Self {
        self.async_stack_size = bytes;
        self
    }

    /// Zeroes a fiber stack before it is used again (off by default). Wasm cannot
    /// read its native stack, so this only keeps host code that reads
    /// uninitialized stack memory from seeing an earlier call's data. Stacks the
    /// on-demand allocator maps are always fresh; this setting affects pooled ones.
    #[cfg(feature = "async")]
    pub fn async_stack_zeroing(&mut self, enable: bool) -> &mut Self {
        self.async_stack_zeroing = enable;
        self
    }

    /// Caches compiled modules in the directory `dir` (created if missing; off by
    /// default): [`Module::new`](crate::Module::new) and
    /// [`Module::from_binary`](crate::Module::from_binary) look for an entry made from
    /// the same bytes by an engine with the same strata version, target, CPU features
    /// and code-affecting settings, in a process running the same executable file (the
    /// same size and modification time: development builds of one version must not
    /// share code, and a rebuilt or reinstalled program starts afresh while its old
    /// entries age out), and load it, mapped from its file, instead of compiling;
    /// otherwise they compile and write the entry. Any number of engines,
    /// threads and processes may share a directory. An entry that fails to load
    /// (truncated, corrupted, or mismatched) is logged, deleted and written again;
    /// failing to write one (a read-only directory, a full disk) is logged and does not
    /// fail the compilation. The directory is kept under
    /// [`Config::cache_max_size`] by deleting the least recently used entries; strata
    /// only ever touches the files it writes there: entries named after their key (64
    /// hex digits, then `.swasm`) and temporary `.tmp-*` files.
    ///
    /// # Trust
    /// Entries are machine code that is run as it is, like the precompiled modules of
    /// [`Module::deserialize_file`](crate::Module::deserialize_file), and like those of
    /// wasmtime's cache. Loading an entry catches accidents (every section has a
    /// checksum, and the target and settings are compared), not an attacker: whoever
    /// can write to `dir` can make this process run any code. The directory must
    /// therefore be writable only by the user, and the processes, that use it: never a
    /// shared or world-writable location such as `/tmp` itself. A missing directory is
    /// created readable and writable by its owner only (on Unix).
    #[cfg(feature = "cache")]
    pub fn cache_dir(&mut self, dir: impl Into<std::path::PathBuf>) -> &mut Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// The most bytes the entries of the [`Config::cache_dir`] may take together
    /// (default 512 MiB). After writing an entry, strata deletes the entries used least
    /// recently (by modification time, which a cache hit refreshes) until the total is
    /// within this bound; an entry larger than the bound is not kept.
    #[cfg(feature = "cache")]
    pub fn cache_max_size(&mut self, bytes: u64) -> &mut Self {
        self.cache_max_size = bytes;
        self
    }

    /// Checks that the settings agree with one another.
    #[cfg(feature = "async")]
    pub(crate) fn validate(&self) -> crate::Result<()> {
        if self.async_support
            && self.async_stack_size < self.max_wasm_stack.saturating_add(MIN_ASYNC_HOST_STACK)
        {
            return Err(crate::Error::msg(format!(
                "async_stack_size ({} bytes) must exceed max_wasm_stack ({} bytes) by at \
                 least {} KiB, which host functions called from wasm run in",
                self.async_stack_size,
                self.max_wasm_stack,
                MIN_ASYNC_HOST_STACK / 1024
            )));
        }
        Ok(())
    }

    /// Extra bytes reserved when a memory that must move to grow is moved.
    pub fn memory_reservation_for_growth(&mut self, bytes: u64) -> &mut Self {
        self.tunables.memory_reservation_for_growth = bytes;
        self
    }

    /// Every setting that changes generated code, by the name of its `Config` method,
    /// as precompiled modules record them: a module loads only into an engine whose
    /// values are the same.
    #[cfg(feature = "runtime")]
    pub(crate) fn code_settings(&self) -> Vec<(String, String)> {
        let opt_level = match self.opt_level {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
            OptLevel::SpeedAndSize => "speed_and_size",
        };
        let t = &self.tunables;
        let mut settings: Vec<(String, String)> = [
            ("cranelift_opt_level", opt_level.to_string()),
            (
                "cranelift_nan_canonicalization",
                self.nan_canonicalization.to_string(),
            ),
            ("compiler_inlining", self.compiler_inlining.to_string()),
            ("memory_reservation", t.memory_reservation.to_string()),
            ("memory_guard_size", t.memory_guard_size.to_string()),
            ("consume_fuel", t.consume_fuel.to_string()),
            ("epoch_interruption", t.epoch_interruption.to_string()),
            (
                "relaxed_simd_deterministic",
                t.relaxed_simd_deterministic.to_string(),
            ),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
        // Features decide which modules validate, and so which code can exist.
        for (name, flag) in WasmFeatures::all().iter_names() {
            settings.push((
                format!("wasm_{}", name.to_ascii_lowercase()),
                self.features.contains(flag).to_string(),
            ));
        }
        settings
    }
}

/// Where instances' memories and tables come from.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum InstanceAllocationStrategy {
    /// Map each memory and allocate each table when an instance is created (the default).
    #[default]
    OnDemand,
    /// Take them from pools reserved once, sized by the configuration.
    #[cfg(feature = "pooling-allocator")]
    Pooling(PoolingAllocationConfig),
}

/// Sizes and limits of the pooling allocator. The defaults match wasmtime's.
#[cfg(feature = "pooling-allocator")]
#[derive(Clone, Debug, Default)]
pub struct PoolingAllocationConfig {
    pub(crate) inner: strata_vm::PoolingConfig,
}

#[cfg(feature = "pooling-allocator")]
macro_rules! pooling_setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {$(
        $(#[$doc])*
        pub fn $name(&mut self, value: $ty) -> &mut Self {
            self.inner.$name = value;
            self
        }
    )*};
}

#[cfg(feature = "pooling-allocator")]
impl PoolingAllocationConfig {
    /// The default pool sizes.
    pub fn new() -> PoolingAllocationConfig {
        PoolingAllocationConfig::default()
    }

    pooling_setters! {
        /// Instances alive at once (default 1000).
        total_core_instances: u32;
        /// Linear memories alive at once (default 1000).
        total_memories: u32;
        /// Tables alive at once (default 1000).
        total_tables: u32;
        /// The most linear memories a module may define to be instantiated in the pool
        /// (default 1, as in wasmtime); imported memories do not count. A module that
        /// defines more fails to instantiate with an error naming this setting.
        max_memories_per_module: u32;
        /// The most tables a module may define to be instantiated in the pool (default
        /// 1, as in wasmtime); imported tables do not count.
        max_tables_per_module: u32;
        /// Fiber stacks alive at once, for async calls (default 1000). Each is
        /// [`Config::async_stack_size`] bytes and a guard page.
        total_stacks: u32;
        /// The most bytes a pooled memory may grow to (default 4 GiB).
        max_memory_size: usize;
        /// The most elements a pooled table may grow to (default 20 000).
        table_elements: usize;
        /// The most bytes an instance's metadata (header and vmctx) may take
        /// (default 1 MiB).
        max_core_instance_size: usize;
        /// Bytes of a freed memory's written pages that are zeroed in place and stay
        /// resident for the next instance, instead of being given back (default 0).
        /// Pages nobody wrote are left alone either way; memories with a
        /// copy-on-write image give all written pages back, to the image.
        linear_memory_keep_resident: usize;
        /// Likewise for tables (default 0).
        table_keep_resident: usize;
        /// Freed slots per pool that keep their pages and memory image for reuse
        /// (default 100).
        max_unused_warm_slots: u32;
        /// Freed slots reset together with one round of `madvise` (default 1).
        decommit_batch_size: usize;
    }

    /// When a pool is full, allocate the instance, memory or table on demand instead of
    /// failing with [`PoolConcurrencyLimitError`](crate::PoolConcurrencyLimitError).
    /// Off by default (wasmtime has no such mode); the overflow shows in
    /// [`PoolingAllocatorMetrics`](crate::PoolingAllocatorMetrics).
    pub fn overflow_to_on_demand(&mut self, enable: bool) -> &mut Self {
        self.inner.overflow_to_on_demand = enable;
        self
    }
}
