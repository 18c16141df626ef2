//! The fuzzing oracles on a fixed list of seeds, so that `cargo test` keeps exercising
//! them. Each seed becomes a few kilobytes of input ([`seeded_input`]); together the
//! four tests run several hundred cases in well under a minute.

use strata_fuzzing::{Unstructured, oracles, seeded_input};

/// Runs `oracle` on `cases` seeded inputs of `len` bytes; returns how many generated a
/// case at all (the rest ran out of input first).
fn run(cases: u64, len: usize, oracle: fn(&mut Unstructured<'_>) -> arbitrary::Result<()>) -> u64 {
    (0..cases)
        .filter(|&seed| {
            let input = seeded_input(seed, len);
            oracle(&mut Unstructured::new(&input)).is_ok()
        })
        .count() as u64
}

#[test]
fn compile_never_panics_on_noise_or_on_mutated_modules() {
    for seed in 0..300 {
        oracles::compile(&seeded_input(seed, 64 + (seed as usize % 512)));
    }
    // Valid modules with bytes flipped: deeper into the parser and validator.
    let valid = wat::parse_str(
        r#"(module (memory 1) (func (export "f") (param i32) (result i32)
             (i32.load (local.get 0))) (data (i32.const 0) "abc"))"#,
    )
    .expect("valid");
    for seed in 0..300 {
        let mut bytes = valid.clone();
        let noise = seeded_input(seed, 4);
        let at = usize::from(noise[0]) % bytes.len();
        bytes[at] ^= noise[1] | 1;
        oracles::compile(&bytes);
    }
}

#[test]
fn instantiate_smoke() {
    assert!(run(150, 4096, oracles::instantiate) > 100);
}

#[test]
fn differential_smoke() {
    assert!(run(200, 8192, oracles::differential) > 150);
}

#[test]
fn pooling_smoke() {
    assert!(run(100, 2048, oracles::pooling) > 90);
}
