//! Configurations for wasm-smith: random ("swarm") feature and size choices, cut down to
//! what strata implements (WebAssembly 2.0 and the Wasm 3.0 features of code generation
//! and memories) and to sizes a fuzzer can afford, and the strata configuration that
//! accepts everything they generate.

use arbitrary::{Result, Unstructured};
use wasm_smith::Config;

/// A swarm configuration: wasm-smith's arbitrary choice of features and limits, with the
/// proposals strata does not implement turned off (GC, threads, compact imports) and
/// memories and tables kept small enough to instantiate within [`limits`]. Everything
/// else, Wasm 3.0's tail calls, extended constants, multi-memory (up to four memories),
/// memory64 and table64, relaxed SIMD, wide arithmetic, custom page sizes and exception
/// handling included, stays as the input chose it.
///
/// # Errors
/// Fails if the input runs out.
pub fn swarm(u: &mut Unstructured<'_>) -> Result<Config> {
    let mut config: Config = u.arbitrary()?;
    config.max_memories = config.max_memories.min(4);
    // wasm-smith 0.263 generates typed function references only together with GC
    // (`gc_enabled` turns on both), so strata's function references are not fuzzed
    // until it implements GC; the spec scripts cover them.
    config.gc_enabled = false;
    config.threads_enabled = false;
    config.shared_everything_threads_enabled = false;
    config.compact_imports_enabled = false;
    config.custom_descriptors_enabled = false;
    config.max_memory32_bytes = config.max_memory32_bytes.min(limits::MEMORY_BYTES as u64);
    config.max_memory64_bytes = config.max_memory64_bytes.min(limits::MEMORY_BYTES as u128);
    config.max_table_elements = config.max_table_elements.min(limits::TABLE_ELEMENTS);
    Ok(config)
}

/// The strata configuration of every oracle: the defaults plus the features that are
/// off by default (wide arithmetic, custom page sizes), so that every module [`swarm`]
/// generates validates.
pub fn strata_config() -> strata::Config {
    let mut config = strata::Config::new();
    config
        .wasm_wide_arithmetic(true)
        .wasm_custom_page_sizes(true);
    config
}

/// A configuration for differential execution: a swarm configuration whose modules
/// import nothing, export everything, and canonicalize NaNs after every float
/// operation, so that two correct engines compute bit-identical results.
///
/// # Errors
/// Fails if the input runs out.
pub fn differential(u: &mut Unstructured<'_>) -> Result<Config> {
    let mut config = swarm(u)?;
    config.max_imports = 0;
    config.min_funcs = config.min_funcs.max(1);
    config.max_funcs = config.max_funcs.max(1);
    config.export_everything = true;
    config.canonicalize_nans = true;
    // Relaxed SIMD stays out: in its deterministic mode strata gives the results
    // wasmtime 48 gives, and wasmi's differ for one instruction
    // (`i32x4.relaxed_dot_i8x16_i7x16_add_s` adds each pair of products with wrapping
    // 16-bit arithmetic, where wasmtime sums exactly). The spec scripts check relaxed
    // SIMD in both modes, and `tests/all/relaxed_simd.rs` the deterministic results.
    config.relaxed_simd_enabled = false;
    // wasmi has no exception handling; the compile, instantiate and pooling targets
    // generate exceptions, and the spec scripts check what they do.
    config.exceptions_enabled = false;
    // Memories are compared byte by byte after every run.
    config.max_memory32_bytes = config.max_memory32_bytes.min(1 << 20);
    config.max_memory64_bytes = config.max_memory64_bytes.min(1 << 20);
    Ok(config)
}

/// Resource limits the oracles give each store; [`swarm`] keeps modules inside them.
pub mod limits {
    /// The largest linear memory, in bytes (4,096 pages).
    pub const MEMORY_BYTES: usize = 256 << 20;
    /// The most elements of one table.
    pub const TABLE_ELEMENTS: u64 = 100_000;
    /// Fuel for one instantiation or one call.
    pub const FUEL: u64 = 100_000;
}
