//! `pooling`: instantiate/drop/grow sequences on the pooling allocator: no tenant sees an earlier one's bytes; metrics count what is live.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = strata_fuzzing::oracles::pooling(&mut strata_fuzzing::Unstructured::new(bytes));
});
