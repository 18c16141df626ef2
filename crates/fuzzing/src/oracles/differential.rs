//! `differential`: the same module, run on strata and on the wasmi interpreter, must
//! give the same results, the same traps, and leave the same memories and globals.

use super::compare::{
    MAX_CALLS, MEMORY_BYTES, MODULE_FUEL, Outcome, TABLE_ELEMENTS, Value, arbitrary_value,
    call_strata, from_strata,
};
use crate::generators;
use arbitrary::{Result, Unstructured};
use std::sync::OnceLock;

/// Generates a module that imports nothing and exports everything, instantiates it on
/// both engines, calls up to 20 exported functions with arbitrary arguments,
/// and compares every outcome, then every exported memory and global.
///
/// # Panics
/// On any divergence, or if strata rejects a module wasmi accepts.
///
/// # Errors
/// Fails if the input runs out before a module is generated.
pub fn differential(u: &mut Unstructured<'_>) -> Result<()> {
    let config = generators::differential(u)?;
    let mut module = wasm_smith::Module::new(config, u)?;
    if module.ensure_termination(MODULE_FUEL).is_err() {
        // wasm-smith could not instrument this module (it ran out of indices).
        return Ok(());
    }
    let wasm = module.to_bytes();

    let Ok(wasmi_module) = wasmi::Module::new(wasmi_engine(), &wasm) else {
        // A limit of the reference interpreter, not a finding.
        return Ok(());
    };
    let strata_engine = strata_engine();
    let strata_module = strata::Module::new(strata_engine, &wasm)
        .unwrap_or_else(|e| panic!("strata rejects a module wasmi accepts: {e:?}"));

    // The same limits on both: growth past them fails alike, where each engine's own
    // implementation limits would differ (the spec lets growth fail at any size).
    let mut wasmi_store = wasmi::Store::new(
        wasmi_engine(),
        wasmi::StoreLimitsBuilder::new()
            .memory_size(MEMORY_BYTES)
            .table_elements(TABLE_ELEMENTS)
            .build(),
    );
    wasmi_store.limiter(|limits| limits);
    let mut strata_store = strata::Store::new(
        strata_engine,
        strata::StoreLimitsBuilder::new()
            .memory_size(MEMORY_BYTES)
            .table_elements(TABLE_ELEMENTS)
            .build(),
    );
    strata_store.limiter(|limits| limits);
    let wasmi_instance =
        wasmi::Linker::new(wasmi_engine()).instantiate_and_start(&mut wasmi_store, &wasmi_module);
    let strata_instance = strata::Instance::new(&mut strata_store, &strata_module, &[]);
    let (wasmi_instance, strata_instance) = match (wasmi_instance, strata_instance) {
        (Ok(a), Ok(b)) => (a, b),
        // Both failed: the spec makes a failed segment initialization a trap, but wasmi
        // reports some as plain errors, so only the failure itself is compared.
        (Err(_), Err(_)) => return Ok(()),
        (Err(e), Ok(_)) if wasmi_outcome(&e).exhausted() => return Ok(()),
        (Ok(_), Err(e)) if Outcome::of_strata_error(&e).exhausted() => return Ok(()),
        (a, b) => panic!(
            "instantiation: wasmi {:?}, strata {:?}",
            a.map(|_| ()),
            b.map(|_| ())
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
        let wasmi_func = wasmi_instance
            .get_func(&wasmi_store, name)
            .expect("exported");
        let ty = strata_func.ty(&strata_store);
        let args = ty
            .params()
            .map(|t| arbitrary_value(u, &t))
            .collect::<Result<Vec<_>>>()?;
        let a = call_wasmi(&mut wasmi_store, &wasmi_func, &args);
        let b = call_strata(&mut strata_store, &strata_func, &args);
        if a.exhausted() || b.exhausted() {
            return Ok(());
        }
        assert_eq!(a, b, "`{name}` with {args:?}: wasmi vs strata");
    }

    for (name, ty) in &exports {
        match ty {
            strata::ExternType::Memory(_) => {
                let a = wasmi_instance
                    .get_memory(&wasmi_store, name)
                    .expect("exported");
                let b = strata_instance
                    .get_memory(&mut strata_store, name)
                    .expect("exported");
                let (a, b) = (a.data(&wasmi_store), b.data(&strata_store));
                assert_eq!(a.len(), b.len(), "memory `{name}` size");
                if let Some(at) = a.iter().zip(b).position(|(x, y)| x != y) {
                    panic!(
                        "memory `{name}` differs at byte {at}: wasmi {}, strata {}",
                        a[at], b[at]
                    );
                }
            }
            strata::ExternType::Global(_) => {
                let a = wasmi_instance
                    .get_global(&wasmi_store, name)
                    .expect("exported");
                let b = strata_instance
                    .get_global(&mut strata_store, name)
                    .expect("exported");
                let (a, b) = (
                    from_wasmi(&a.get(&wasmi_store)),
                    from_strata(&b.get(&mut strata_store)),
                );
                assert_eq!(a, b, "global `{name}`");
            }
            _ => {}
        }
    }
    Ok(())
}

fn strata_engine() -> &'static strata::Engine {
    static ENGINE: OnceLock<strata::Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        // The generator leaves relaxed SIMD out (see `generators::differential`).
        strata::Engine::new(&generators::strata_config()).expect("the differential configuration")
    })
}

fn wasmi_engine() -> &'static wasmi::Engine {
    static ENGINE: OnceLock<wasmi::Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = wasmi::Config::default();
        config
            .wasm_simd(true)
            .wasm_tail_call(true)
            .wasm_extended_const(true)
            .wasm_multi_memory(true)
            .wasm_memory64(true)
            .wasm_wide_arithmetic(true)
            .wasm_custom_page_sizes(true);
        wasmi::Engine::new(&config)
    })
}

fn call_wasmi(
    store: &mut wasmi::Store<wasmi::StoreLimits>,
    func: &wasmi::Func,
    args: &[Value],
) -> Outcome {
    let ty = func.ty(&*store);
    let params: Vec<wasmi::Val> = ty
        .params()
        .iter()
        .zip(args)
        .map(|(t, v)| to_wasmi(*t, v))
        .collect();
    let mut results: Vec<wasmi::Val> = ty
        .results()
        .iter()
        .map(|t| wasmi::Val::default(*t))
        .collect();
    match func.call(&mut *store, &params, &mut results) {
        Ok(()) => Outcome::Returned(results.iter().map(from_wasmi).collect()),
        Err(e) => wasmi_outcome(&e),
    }
}

/// How wasmi's call or instantiation failed with `e`.
fn wasmi_outcome(e: &wasmi::Error) -> Outcome {
    match e.as_trap_code() {
        Some(trap) => Outcome::Trapped(format!("{trap:?}")),
        None => Outcome::Failed(e.to_string()),
    }
}

fn to_wasmi(ty: wasmi::ValType, v: &Value) -> wasmi::Val {
    match *v {
        Value::I32(x) => wasmi::Val::I32(x),
        Value::I64(x) => wasmi::Val::I64(x),
        Value::F32(x) => wasmi::Val::F32(wasmi::F32::from_bits(x)),
        Value::F64(x) => wasmi::Val::F64(wasmi::F64::from_bits(x)),
        Value::V128(x) => wasmi::Val::V128(x.into()),
        Value::Ref { .. } => wasmi::Val::default(ty),
    }
}

fn from_wasmi(v: &wasmi::Val) -> Value {
    match v {
        wasmi::Val::I32(x) => Value::I32(*x),
        wasmi::Val::I64(x) => Value::I64(*x),
        wasmi::Val::F32(x) => Value::F32(x.to_bits()),
        wasmi::Val::F64(x) => Value::F64(x.to_bits()),
        wasmi::Val::V128(x) => Value::V128(x.as_u128()),
        wasmi::Val::FuncRef(f) => Value::Ref { null: f.is_null() },
        wasmi::Val::ExternRef(r) => Value::Ref { null: r.is_null() },
    }
}
