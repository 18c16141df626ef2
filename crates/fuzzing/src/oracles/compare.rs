//! What differential oracles compare: values both engines produce and how a call ended,
//! with strata's side of each conversion. The wasmi oracle ([`super::differential`])
//! and the wasmtime one (the `differential_wasmtime` fuzz target, outside the main
//! workspace) share them.

use arbitrary::{Result, Unstructured};

/// Fuel that `ensure_termination` compiles into each module: every loop iteration and
/// call spends one, and running out traps (`unreachable`) on both engines alike.
pub const MODULE_FUEL: u32 = 1_000;

/// The largest memory, on both engines (memories are compared byte by byte).
pub const MEMORY_BYTES: usize = 16 << 20;

/// The most elements of a table, on both engines: [`crate::generators::differential`] keeps
/// the modules' minimums below it.
pub const TABLE_ELEMENTS: usize = crate::generators::limits::TABLE_ELEMENTS as usize;

/// The most exported functions called per case.
pub const MAX_CALLS: usize = 20;

/// A value both engines can produce, compared bit for bit (the module canonicalizes
/// NaNs, so correct engines agree on float bits too). References compare by nullness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// An `i32`.
    I32(i32),
    /// An `i64`.
    I64(i64),
    /// An `f32`, as bits.
    F32(u32),
    /// An `f64`, as bits.
    F64(u64),
    /// A `v128`, as bits.
    V128(u128),
    /// A reference, null or not.
    Ref {
        /// Whether it is null.
        null: bool,
    },
}

/// How a call or an instantiation ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It returned these values.
    Returned(Vec<Value>),
    /// A trap, by its code's name: the engines name trap codes as the spec's
    /// descriptions do.
    Trapped(String),
    /// A wasm exception that nothing caught.
    Uncaught,
    /// Any other error, with its text.
    Failed(String),
}

impl Outcome {
    /// Whether the outcome depends on resources that differ between the engines (stack
    /// depth), so the rest of the case cannot be compared.
    pub fn exhausted(&self) -> bool {
        matches!(self, Outcome::Trapped(t) if t == "StackOverflow")
    }

    /// How strata's call or instantiation failed with `e`.
    pub fn of_strata_error(e: &strata::Error) -> Outcome {
        if e.is::<strata::ThrownException>() {
            return Outcome::Uncaught;
        }
        match e.trap() {
            Some(trap) => Outcome::Trapped(format!("{trap:?}")),
            None => Outcome::Failed(e.to_string()),
        }
    }
}

/// An argument of type `ty`: any bits for numbers (NaNs included), null for references.
///
/// # Errors
/// Fails if the input runs out.
pub fn arbitrary_value(u: &mut Unstructured<'_>, ty: &strata::ValType) -> Result<Value> {
    Ok(match ty {
        strata::ValType::I32 => Value::I32(u.arbitrary()?),
        strata::ValType::I64 => Value::I64(u.arbitrary()?),
        strata::ValType::F32 => Value::F32(u.arbitrary()?),
        strata::ValType::F64 => Value::F64(u.arbitrary()?),
        strata::ValType::V128 => Value::V128(u.arbitrary()?),
        strata::ValType::Ref(_) => Value::Ref { null: true },
    })
}

/// Calls `func` in `store` with `args`.
pub fn call_strata<T>(
    store: &mut strata::Store<T>,
    func: &strata::Func,
    args: &[Value],
) -> Outcome {
    let ty = func.ty(&*store);
    let params: Vec<strata::Val> = ty
        .params()
        .zip(args)
        .map(|(t, v)| to_strata(&t, v))
        .collect();
    let mut results: Vec<strata::Val> = ty
        .results()
        .map(|t| to_strata(&t, &Value::I32(0)))
        .collect();
    match func.call(&mut *store, &params, &mut results) {
        Ok(()) => Outcome::Returned(results.iter().map(from_strata).collect()),
        Err(e) => Outcome::of_strata_error(&e),
    }
}

/// `v` as a strata value of type `ty` (a reference becomes null of its hierarchy).
pub fn to_strata(ty: &strata::ValType, v: &Value) -> strata::Val {
    match (*v, ty) {
        (Value::I32(x), _) => strata::Val::I32(x),
        (Value::I64(x), _) => strata::Val::I64(x),
        (Value::F32(x), _) => strata::Val::F32(x),
        (Value::F64(x), _) => strata::Val::F64(x),
        (Value::V128(x), _) => strata::Val::V128(x),
        (Value::Ref { .. }, strata::ValType::Ref(r)) if r.is_func() => strata::Val::FuncRef(None),
        (Value::Ref { .. }, strata::ValType::Ref(r)) if r.is_exn() => strata::Val::ExnRef(None),
        (Value::Ref { .. }, strata::ValType::Ref(_)) => strata::Val::ExternRef(None),
        (Value::Ref { .. }, _) => strata::Val::FuncRef(None),
    }
}

/// The comparable form of a strata value.
///
/// # Panics
/// On a kind of value the oracles do not generate.
pub fn from_strata(v: &strata::Val) -> Value {
    match *v {
        strata::Val::I32(x) => Value::I32(x),
        strata::Val::I64(x) => Value::I64(x),
        strata::Val::F32(x) => Value::F32(x),
        strata::Val::F64(x) => Value::F64(x),
        strata::Val::V128(x) => Value::V128(x),
        strata::Val::FuncRef(f) => Value::Ref { null: f.is_none() },
        strata::Val::ExternRef(r) => Value::Ref { null: r.is_none() },
        strata::Val::ExnRef(r) => Value::Ref { null: r.is_none() },
        ref other => panic!("a value of a kind the oracle does not know: {other:?}"),
    }
}
