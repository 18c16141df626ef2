//! `instantiate`: wasm-smith modules (swarm configurations) compile, and instantiate with dummy imports under fuel, failing only by trapping.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = strata_fuzzing::oracles::instantiate(&mut strata_fuzzing::Unstructured::new(bytes));
});
