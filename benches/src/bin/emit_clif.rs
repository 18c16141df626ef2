//! `emit-clif`: the optimized Cranelift IR of a module, as compiled by both runtimes,
//! to set strata's code for a function beside wasmtime's without installing
//! wasmtime's command-line tool.
//!
//!     emit-clif MODULE.wasm DIR
//!
//! writes `DIR/strata/` (as `strata compile --emit-clif`) and `DIR/wasmtime/` (as
//! `wasmtime compile --emit-clif`); both name a function's file
//! `wasm[0]--function[N].clif`, so `diff DIR/strata/X DIR/wasmtime/X` compares them.

use std::path::PathBuf;
use strata_benches::{Result, err};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(module), Some(dir), None) = (args.next(), args.next(), args.next()) else {
        return Err("usage: emit-clif MODULE.wasm DIR".into());
    };
    let bytes = std::fs::read(&module).map_err(|e| format!("cannot read {module}: {e}"))?;
    let dir = PathBuf::from(dir);
    let (strata_dir, wasmtime_dir) = (dir.join("strata"), dir.join("wasmtime"));
    for d in [&strata_dir, &wasmtime_dir] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }

    let mut config = strata::Config::new();
    config.emit_clif(&strata_dir);
    let engine = strata::Engine::new(&config).map_err(err)?;
    strata::Module::new(&engine, &bytes).map_err(err)?;

    let mut config = wasmtime::Config::new();
    config.emit_clif(&wasmtime_dir);
    let engine = wasmtime::Engine::new(&config).map_err(err)?;
    wasmtime::Module::new(&engine, &bytes).map_err(err)?;
    println!(
        "wrote {} and {}",
        strata_dir.display(),
        wasmtime_dir.display()
    );
    Ok(())
}
