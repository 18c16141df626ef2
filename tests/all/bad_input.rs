//! Malformed and invalid modules are refused with an error naming the problem and, for
//! decoding errors, the byte offset.

use strata::{Config, Engine, Module};

fn compile_error(bytes: &[u8]) -> String {
    let engine = Engine::default();
    match Module::new(&engine, bytes) {
        Ok(_) => panic!("{bytes:x?} compiled"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_binary_version_is_reported_with_its_offset() {
    let message = compile_error(b"\0asm\x02\0\0\0");
    assert!(message.contains("version"), "{message}");
    assert!(message.contains("offset 0x4"), "{message}");
}

#[test]
fn bytes_that_are_not_wasm_are_parsed_as_text_and_refused() {
    let message = compile_error(b"\0asn\x01\0\0\0");
    assert!(message.contains("text"), "{message}");
}

#[test]
fn truncated_module_is_reported_with_its_offset() {
    // A type section that claims 5 bytes and has 1.
    let message = compile_error(b"\0asm\x01\0\0\0\x01\x05\x01");
    assert!(message.contains("offset 0x"), "{message}");
}

#[test]
fn unknown_section_order_is_malformed() {
    // A function section (3) before the type section (1).
    let message = compile_error(b"\0asm\x01\0\0\0\x03\x01\x00\x01\x01\x00");
    assert!(message.contains("offset"), "{message}");
}

#[test]
fn ill_typed_function_bodies_are_invalid() {
    let engine = Engine::default();
    let err = Module::new(&engine, r#"(module (func (result i32) (i64.const 1)))"#)
        .expect_err("an i64 where an i32 is due is invalid");
    let message = err.to_string();
    assert!(message.contains("type mismatch"), "{message}");
    assert!(message.contains("offset"), "{message}");
}

#[test]
fn validate_agrees_with_new() {
    let engine = Engine::default();
    let good = wat::parse_str("(module (func (export \"f\") (result i32) i32.const 1))").unwrap();
    Module::validate(&engine, &good).unwrap();
    let bad = wat::parse_str("(module (func (result i32)))").unwrap();
    let err = Module::validate(&engine, &bad).unwrap_err();
    assert!(err.to_string().contains("offset"), "{err}");
    assert!(Module::new(&engine, &bad).is_err());
}

#[test]
fn bad_text_is_a_parse_error() {
    let message = compile_error(b"(module (func (i32.add)");
    assert!(message.contains("text"), "{message}");
}

#[test]
fn disabled_features_are_refused() {
    let mut config = Config::new();
    config.wasm_multi_value(false);
    let engine = Engine::new(&config).unwrap();
    let err = Module::new(
        &engine,
        "(module (func (result i32 i32) i32.const 1 i32.const 2))",
    )
    .expect_err("multi-value is off");
    assert!(err.to_string().contains("multi"), "{err}");
}

#[test]
fn truncations_of_a_valid_module_are_errors_with_offsets() {
    let engine = Engine::default();
    let bytes = wat::parse_str(
        r#"(module
             (memory 1)
             (global (mut i32) (i32.const 3))
             (data (i32.const 8) "abc")
             (func (export "f") (param i32) (result i32)
               (i32.add (local.get 0) (global.get 0))))"#,
    )
    .unwrap();
    Module::new(&engine, &bytes).unwrap();
    // A prefix ending between sections is a valid, smaller module; any other is an error
    // that points into the bytes.
    let mut refused = 0;
    for len in 0..bytes.len() {
        if let Err(e) = Module::from_binary(&engine, &bytes[..len]) {
            assert!(e.to_string().contains("offset"), "prefix of {len}: {e}");
            refused += 1;
        }
    }
    assert!(
        refused + 8 >= bytes.len(),
        "only {refused} of {} refused",
        bytes.len()
    );
}

/// Wide arithmetic is opt-in, as in wasmtime: without `Config::wasm_wide_arithmetic`
/// its instructions are invalid, and the validator's message names the feature.
#[test]
fn wide_arithmetic_is_refused_unless_enabled() {
    let wat = r#"(module
        (func (export "add128") (param i64 i64 i64 i64) (result i64 i64)
          (i64.add128 (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
        (func (export "mul_wide_u") (param i64 i64) (result i64 i64)
          (i64.mul_wide_u (local.get 0) (local.get 1))))"#;
    let err = Module::new(&Engine::default(), wat).expect_err("wide arithmetic is off");
    let message = format!("{err:?}");
    assert!(
        message.contains("wide arithmetic support is not enabled"),
        "{message}"
    );

    let mut config = Config::new();
    config.wasm_wide_arithmetic(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, wat).unwrap();
    let mut store = strata::Store::new(&engine, ());
    let instance = strata::Instance::new(&mut store, &module, &[]).unwrap();
    let add128 = instance
        .get_typed_func::<(u64, u64, u64, u64), (u64, u64)>(&mut store, "add128")
        .unwrap();
    // The carry out of the low half reaches the high half.
    assert_eq!(
        add128.call(&mut store, (u64::MAX, 1, 1, 2)).unwrap(),
        (0, 4)
    );
    let mul_wide_u = instance
        .get_typed_func::<(u64, u64), (u64, u64)>(&mut store, "mul_wide_u")
        .unwrap();
    // (2^64 - 1)^2 = 2^128 - 2^65 + 1.
    assert_eq!(
        mul_wide_u.call(&mut store, (u64::MAX, u64::MAX)).unwrap(),
        (1, u64::MAX - 1)
    );
}
