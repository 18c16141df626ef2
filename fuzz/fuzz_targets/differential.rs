//! `differential`: wasm-smith modules run the same on strata and on wasmi: results, traps, memories, globals.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = strata_fuzzing::oracles::differential(&mut strata_fuzzing::Unstructured::new(bytes));
});
