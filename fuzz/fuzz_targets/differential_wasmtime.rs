//! `differential_wasmtime`: wasm-smith modules with exception handling (which wasmi
//! does not implement) run the same on strata and on wasmtime 48.0.8, the oracle:
//! the same results, the same traps, the same uncaught exceptions, and the same
//! exported memories and globals afterwards.
#![no_main]

use std::sync::OnceLock;
use strata_fuzzing::Unstructured;
use strata_fuzzing::generators;
use strata_fuzzing::oracles::compare::{
    MAX_CALLS, MEMORY_BYTES, MODULE_FUEL, Outcome, TABLE_ELEMENTS, Value, arbitrary_value,
    call_strata, from_strata,
};

fn strata_engine() -> &'static strata::Engine {
    static ENGINE: OnceLock<strata::Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = generators::strata_config();
        config.wasm_exceptions(true);
        strata::Engine::new(&config).expect("the differential configuration")
    })
}

fn wasmtime_engine() -> &'static wasmtime::Engine {
    static ENGINE: OnceLock<wasmtime::Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = wasmtime::Config::new();
        config
            .wasm_exceptions(true)
            .wasm_wide_arithmetic(true)
            .wasm_custom_page_sizes(true);
        wasmtime::Engine::new(&config).expect("wasmtime's configuration")
    })
}

fn wasmtime_outcome(e: &wasmtime::Error) -> Outcome {
    if e.is::<wasmtime::ThrownException>() {
        return Outcome::Uncaught;
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => Outcome::Trapped(format!("{trap:?}")),
        None => Outcome::Failed(e.to_string()),
    }
}

fn to_wasmtime(ty: &wasmtime::ValType, v: Value) -> wasmtime::Val {
    match (v, ty) {
        (Value::I32(x), _) => wasmtime::Val::I32(x),
        (Value::I64(x), _) => wasmtime::Val::I64(x),
        (Value::F32(x), _) => wasmtime::Val::F32(x),
        (Value::F64(x), _) => wasmtime::Val::F64(x),
        (Value::V128(x), _) => wasmtime::Val::V128(x.into()),
        (Value::Ref { .. }, wasmtime::ValType::Ref(r)) => wasmtime::Val::null_ref(r.heap_type()),
        (Value::Ref { .. }, _) => wasmtime::Val::null_func_ref(),
    }
}

fn from_wasmtime(v: &wasmtime::Val) -> Value {
    match v {
        wasmtime::Val::I32(x) => Value::I32(*x),
        wasmtime::Val::I64(x) => Value::I64(*x),
        wasmtime::Val::F32(x) => Value::F32(*x),
        wasmtime::Val::F64(x) => Value::F64(*x),
        wasmtime::Val::V128(x) => Value::V128(x.as_u128()),
        wasmtime::Val::FuncRef(f) => Value::Ref { null: f.is_none() },
        wasmtime::Val::ExternRef(r) => Value::Ref { null: r.is_none() },
        wasmtime::Val::AnyRef(r) => Value::Ref { null: r.is_none() },
        wasmtime::Val::ExnRef(r) => Value::Ref { null: r.is_none() },
        wasmtime::Val::ContRef(r) => Value::Ref { null: r.is_none() },
    }
}

fn run(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let mut config = generators::differential(u)?;
    config.exceptions_enabled = true;
    let mut module = wasm_smith::Module::new(config, u)?;
    if module.ensure_termination(MODULE_FUEL).is_err() {
        return Ok(());
    }
    let wasm = module.to_bytes();
    let Ok(wasmtime_module) = wasmtime::Module::new(wasmtime_engine(), &wasm) else {
        return Ok(());
    };
    let strata_module = strata::Module::new(strata_engine(), &wasm)
        .unwrap_or_else(|e| panic!("strata rejects a module wasmtime accepts: {e:?}"));

    let mut wasmtime_store = wasmtime::Store::new(
        wasmtime_engine(),
        wasmtime::StoreLimitsBuilder::new()
            .memory_size(MEMORY_BYTES)
            .table_elements(TABLE_ELEMENTS)
            .build(),
    );
    wasmtime_store.limiter(|limits| limits);
    let mut strata_store = strata::Store::new(
        strata_engine(),
        strata::StoreLimitsBuilder::new()
            .memory_size(MEMORY_BYTES)
            .table_elements(TABLE_ELEMENTS)
            .build(),
    );
    strata_store.limiter(|limits| limits);
    let a = wasmtime::Instance::new(&mut wasmtime_store, &wasmtime_module, &[]);
    let b = strata::Instance::new(&mut strata_store, &strata_module, &[]);
    let (wasmtime_instance, strata_instance) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(a), Err(b)) => {
            let (a, b) = (wasmtime_outcome(&a), Outcome::of_strata_error(&b));
            if !(a.exhausted() || b.exhausted()) {
                assert_eq!(a, b, "instantiation: wasmtime vs strata");
            }
            return Ok(());
        }
        (Err(e), Ok(_)) if wasmtime_outcome(&e).exhausted() => return Ok(()),
        (Ok(_), Err(e)) if Outcome::of_strata_error(&e).exhausted() => return Ok(()),
        (a, b) => panic!(
            "instantiation: wasmtime {:?}, strata {:?}",
            a.map(|_| ()).map_err(|e| wasmtime_outcome(&e)),
            b.map(|_| ()).map_err(|e| Outcome::of_strata_error(&e))
        ),
    };

    let exports: Vec<(String, strata::ExternType)> = strata_module
        .exports()
        .map(|e| (e.name().to_string(), e.ty()))
        .collect();
    let funcs: Vec<&String> = exports
        .iter()
        .filter(|(_, ty)| matches!(ty, strata::ExternType::Func(_)))
        .map(|(name, _)| name)
        .collect();
    for _ in 0..MAX_CALLS {
        if funcs.is_empty() || u.is_empty() {
            break;
        }
        let name = *u.choose(&funcs)?;
        let strata_func = strata_instance
            .get_func(&mut strata_store, name)
            .expect("exported");
        let wasmtime_func = wasmtime_instance
            .get_func(&mut wasmtime_store, name)
            .expect("exported");
        let ty = strata_func.ty(&strata_store);
        let args = ty
            .params()
            .map(|t| arbitrary_value(u, &t))
            .collect::<arbitrary::Result<Vec<_>>>()?;

        let wty = wasmtime_func.ty(&wasmtime_store);
        let params: Vec<wasmtime::Val> = wty
            .params()
            .zip(&args)
            .map(|(t, v)| to_wasmtime(&t, *v))
            .collect();
        let mut results: Vec<wasmtime::Val> = wty
            .results()
            .map(|t| to_wasmtime(&t, Value::I32(0)))
            .collect();
        let a = match wasmtime_func.call(&mut wasmtime_store, &params, &mut results) {
            Ok(()) => Outcome::Returned(results.iter().map(from_wasmtime).collect()),
            Err(e) => wasmtime_outcome(&e),
        };

        let b = call_strata(&mut strata_store, &strata_func, &args);
        if a.exhausted() || b.exhausted() {
            return Ok(());
        }
        assert_eq!(a, b, "`{name}` with {args:?}: wasmtime vs strata");
    }

    for (name, ty) in &exports {
        match ty {
            strata::ExternType::Memory(_) => {
                let a = wasmtime_instance
                    .get_memory(&mut wasmtime_store, name)
                    .expect("exported");
                let b = strata_instance
                    .get_memory(&mut strata_store, name)
                    .expect("exported");
                let (a, b) = (a.data(&wasmtime_store), b.data(&strata_store));
                assert_eq!(a.len(), b.len(), "memory `{name}` size");
                if let Some(at) = a.iter().zip(b).position(|(x, y)| x != y) {
                    panic!(
                        "memory `{name}` differs at byte {at}: wasmtime {}, strata {}",
                        a[at], b[at]
                    );
                }
            }
            strata::ExternType::Global(_) => {
                let a = wasmtime_instance
                    .get_global(&mut wasmtime_store, name)
                    .expect("exported");
                let b = strata_instance
                    .get_global(&mut strata_store, name)
                    .expect("exported");
                let a = from_wasmtime(&a.get(&mut wasmtime_store));
                let b = from_strata(&b.get(&mut strata_store));
                assert_eq!(a, b, "global `{name}`");
            }
            _ => {}
        }
    }
    Ok(())
}

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = run(&mut Unstructured::new(bytes));
});
