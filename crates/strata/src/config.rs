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
    pub(crate) parallel_compilation: bool,
    pub(crate) max_wasm_stack: usize,
    pub(crate) memory_init_cow: bool,
}

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
    /// The default settings: WebAssembly 2.0 features, optimizing compilation.
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
            | WasmFeatures::GC_TYPES;
        Config {
            features,
            tunables: Tunables::default_host(),
            opt_level: OptLevel::Speed,
            nan_canonicalization: false,
            parallel_compilation: true,
            max_wasm_stack: 512 * 1024,
            memory_init_cow: true,
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
    }

    /// How hard the compiler optimizes.
    pub fn cranelift_opt_level(&mut self, level: OptLevel) -> &mut Self {
        self.opt_level = level;
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

    /// The most stack, in bytes, wasm may use before it traps with a stack overflow.
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

    /// Initializes linear memories by mapping a copy-on-write image of the module's data
    /// segments, built once per module, instead of copying the segments into each new
    /// memory. On by default; modules whose segments do not allow an image (offsets that
    /// are not constant, or outside the minimum size) are initialized by copying.
    pub fn memory_init_cow(&mut self, enable: bool) -> &mut Self {
        self.memory_init_cow = enable;
        self
    }

    /// Extra bytes reserved when a memory that must move to grow is moved.
    pub fn memory_reservation_for_growth(&mut self, bytes: u64) -> &mut Self {
        self.tunables.memory_reservation_for_growth = bytes;
        self
    }
}
