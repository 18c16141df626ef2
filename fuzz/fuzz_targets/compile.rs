//! `compile`: arbitrary bytes through `Module::new`, which must return and never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| strata_fuzzing::oracles::compile(bytes));
