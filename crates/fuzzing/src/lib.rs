//! Internal crate of the strata WebAssembly runtime: the fuzzing oracles. It makes no
//! stability promise.
//!
//! Each oracle takes fuzzer input (raw bytes, or an [`Unstructured`] to draw a module
//! and its inputs from) and panics when it sees a bug; anything else, including every
//! error and trap that the input deserves, returns normally. The cargo-fuzz targets in
//! `fuzz/` call them with libFuzzer's input, and `tests/smoke.rs` with a fixed list of
//! seeds ([`seeded_input`]), so `cargo test` keeps exercising them.
//!
//! | oracle | checks |
//! |---|---|
//! | [`oracles::compile`] | arbitrary bytes: `Module::new` returns `Ok` or `Err`, never panics |
//! | [`oracles::instantiate`] | wasm-smith modules (swarm configs) compile, and instantiate with dummy imports under fuel, failing only by trapping |
//! | [`oracles::differential`] | wasm-smith modules run the same on strata and on wasmi: results, traps, memories and globals |
//! | `differential_wasmtime` (in `fuzz/`) | the same against wasmtime 48, with exception handling, which wasmi lacks; it shares [`oracles::compare`] |
//! | [`oracles::pooling`] | instantiate/drop/grow sequences on the pooling allocator: no byte of an earlier tenant is visible, metrics count what is live |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod generators;
pub mod oracles;

pub use arbitrary::Unstructured;

/// `len` bytes of fuzzer-like input made from `seed` (a fixed xorshift stream), for
/// running the oracles deterministically outside a fuzzer.
pub fn seeded_input(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}
