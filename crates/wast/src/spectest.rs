//! The `spectest` host module that the WebAssembly spec test scripts import
//! from: printing functions (which print nothing here), four immutable
//! globals, a funcref table and a memory.

use strata::{
    Global, GlobalType, Linker, Memory, MemoryType, Mutability, Ref, RefType, Store, Table,
    TableType, Val, ValType,
};

/// Name of the host module.
const MODULE: &str = "spectest";

/// Defines every `spectest` item in `linker`, allocating the stateful ones
/// (globals, table, memory) in `store`.
pub(crate) fn define(linker: &mut Linker<()>, store: &mut Store<()>) -> strata::Result<()> {
    linker.func_wrap(MODULE, "print", || {})?;
    linker.func_wrap(MODULE, "print_i32", |_: i32| {})?;
    linker.func_wrap(MODULE, "print_i64", |_: i64| {})?;
    linker.func_wrap(MODULE, "print_f32", |_: f32| {})?;
    linker.func_wrap(MODULE, "print_f64", |_: f64| {})?;
    linker.func_wrap(MODULE, "print_i32_f32", |_: i32, _: f32| {})?;
    linker.func_wrap(MODULE, "print_f64_f64", |_: f64, _: f64| {})?;

    let globals = [
        ("global_i32", ValType::I32, Val::I32(666)),
        ("global_i64", ValType::I64, Val::I64(666)),
        ("global_f32", ValType::F32, Val::F32(666.6_f32.to_bits())),
        ("global_f64", ValType::F64, Val::F64(666.6_f64.to_bits())),
    ];
    for (name, ty, init) in globals {
        let global = Global::new(&mut *store, GlobalType::new(ty, Mutability::Const), init)?;
        linker.define(&*store, MODULE, name, global)?;
    }

    let table = Table::new(
        &mut *store,
        TableType::new(RefType::FUNCREF, 10, Some(20)),
        Ref::Func(None),
    )?;
    linker.define(&*store, MODULE, "table", table)?;

    let memory = Memory::new(&mut *store, MemoryType::new(1, Some(2)))?;
    linker.define(&*store, MODULE, "memory", memory)?;
    Ok(())
}
