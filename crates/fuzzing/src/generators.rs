//! Configurations for wasm-smith: random ("swarm") feature and size choices, cut down to
//! what strata implements (WebAssembly 2.0) and to sizes a fuzzer can afford.

use arbitrary::{Result, Unstructured};
use wasm_smith::Config;

/// A swarm configuration: wasm-smith's arbitrary choice of features and limits, with the
/// proposals strata does not implement turned off (Wasm 3.0's memory64, multi-memory,
/// tail calls, exceptions, GC, extended constants, relaxed SIMD, and threads) and
/// memories and tables kept small enough to instantiate within [`limits`].
///
/// # Errors
/// Fails if the input runs out.
pub fn swarm(u: &mut Unstructured<'_>) -> Result<Config> {
    let mut config: Config = u.arbitrary()?;
    config.memory64_enabled = false;
    config.max_memories = config.max_memories.min(1);
    config.tail_call_enabled = false;
    config.exceptions_enabled = false;
    config.gc_enabled = false;
    config.extended_const_enabled = false;
    config.relaxed_simd_enabled = false;
    config.threads_enabled = false;
    config.shared_everything_threads_enabled = false;
    config.compact_imports_enabled = false;
    config.custom_page_sizes_enabled = false;
    config.wide_arithmetic_enabled = false;
    config.max_memory32_bytes = config.max_memory32_bytes.min(limits::MEMORY_BYTES as u64);
    config.max_table_elements = config.max_table_elements.min(limits::TABLE_ELEMENTS);
    Ok(config)
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
    // Memories are compared byte by byte after every run.
    config.max_memory32_bytes = config.max_memory32_bytes.min(1 << 20);
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
