//! Calling an export from the command line: arguments parsed by the function's
//! parameter types, results rendered as text.

use anyhow::{Context as _, bail};
use strata::{Func, Store, Val, ValType};

use super::guest_error::GuestError;

/// Calls `func` (described as `what` in messages) with its arguments parsed from the
/// start of `raw`; arguments beyond the parameters are ignored (they are still the
/// guest's argv), as `wasmtime run` does.
///
/// # Errors
/// Fails if there are too few arguments or one does not parse, and with a
/// [`GuestError`] if the call fails.
pub fn call<T>(
    store: &mut Store<T>,
    func: &Func,
    what: &str,
    raw: &[String],
) -> anyhow::Result<Vec<Val>> {
    let ty = func.ty(&*store);
    let params: Vec<ValType> = ty.params().collect();
    if params.len() > raw.len() {
        bail!(
            "not enough arguments for {what}: it takes {}, {} given",
            params.len(),
            raw.len()
        );
    }
    let args = params
        .iter()
        .zip(raw)
        .enumerate()
        .map(|(i, (ty, text))| {
            parse_arg(ty, text).with_context(|| format!("invalid argument {i}: `{text}`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut results: Vec<Val> = ty.results().map(|ty| placeholder(&ty)).collect();
    func.call(&mut *store, &args, &mut results)
        .map_err(GuestError::from)
        .with_context(|| format!("failed to invoke {what}"))?;
    Ok(results)
}

/// Parses one command-line argument as a value of type `ty`; integers may be
/// decimal or `0x` hexadecimal.
fn parse_arg(ty: &ValType, text: &str) -> anyhow::Result<Val> {
    let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
    Ok(match ty {
        ValType::I32 => Val::I32(match hex {
            Some(digits) => u32::from_str_radix(digits, 16)?.cast_signed(),
            None => text.parse()?,
        }),
        ValType::I64 => Val::I64(match hex {
            Some(digits) => u64::from_str_radix(digits, 16)?.cast_signed(),
            None => text.parse()?,
        }),
        ValType::F32 => Val::F32(text.parse::<f32>()?.to_bits()),
        ValType::F64 => Val::F64(text.parse::<f64>()?.to_bits()),
        _ => bail!("parameters of type {ty} cannot be passed on the command line"),
    })
}

/// A value of type `ty` used to pre-fill a result slot.
fn placeholder(ty: &ValType) -> Val {
    match ty {
        ValType::I64 => Val::I64(0),
        ValType::F32 => Val::F32(0),
        ValType::F64 => Val::F64(0),
        ValType::V128 => Val::V128(0),
        ValType::Ref(_) => Val::FuncRef(None),
        _ => Val::I32(0),
    }
}

/// Renders a result for printing: integers in decimal, floats as Rust prints them.
pub fn render(val: &Val) -> String {
    match val {
        Val::I32(x) => x.to_string(),
        Val::I64(x) => x.to_string(),
        Val::F32(bits) => f32::from_bits(*bits).to_string(),
        Val::F64(bits) => f64::from_bits(*bits).to_string(),
        Val::V128(bits) => format!("0x{bits:032x}"),
        Val::FuncRef(None) => "ref.null func".to_string(),
        Val::FuncRef(Some(_)) => "ref.func".to_string(),
        _ => "<unprintable value>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_by_type_in_decimal_and_hex() {
        let parse = |ty, text| render(&parse_arg(&ty, text).unwrap());
        assert_eq!(parse(ValType::I32, "-5"), "-5");
        assert_eq!(parse(ValType::I32, "0xffffffff"), "-1");
        assert_eq!(parse(ValType::I64, "0X10"), "16");
        assert_eq!(parse(ValType::F64, "2.5"), "2.5");
        assert_eq!(parse(ValType::F32, "-0.5"), "-0.5");
        assert!(parse_arg(&ValType::I32, "4294967296").is_err());
        assert!(parse_arg(&ValType::I64, "1.5").is_err());
    }
}
