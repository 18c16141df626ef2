//! `compile`: arbitrary bytes never make compilation panic.

use std::sync::OnceLock;
use strata::{Engine, Module};

/// Compiles `bytes` (binary, or text when they parse as UTF-8) and drops the result:
/// a malformed or invalid module is an `Err`, and the only bug is a panic.
pub fn compile(bytes: &[u8]) {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| {
        Engine::new(&crate::generators::strata_config()).expect("the fuzzing configuration")
    });
    if let Ok(module) = Module::new(engine, bytes) {
        // A module that compiles must describe itself consistently.
        let _ = module.imports().count() + module.exports().count();
    }
}
