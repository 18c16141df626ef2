//! Value plumbing between `.wast` scripts and strata: turning script
//! arguments into [`Val`]s, checking returned [`Val`]s against the script's
//! expected-result patterns (including the NaN patterns), and rendering both
//! sides as text for failure messages.

use strata::{ExternRef, Store, Val, ValType};
use wast::core::{AbstractHeapType, HeapType, NanPattern, V128Pattern, WastArgCore, WastRetCore};
use wast::token::{F32, F64};
use wast::{WastArg, WastRet};

/// Sign-less mask of an `f32`: everything except the sign bit.
const F32_ABS: u32 = 0x7fff_ffff;
/// Exponent all ones plus the most significant mantissa bit of an `f32`.
const F32_QUIET_NAN: u32 = 0x7fc0_0000;
/// Sign-less mask of an `f64`: everything except the sign bit.
const F64_ABS: u64 = 0x7fff_ffff_ffff_ffff;
/// Exponent all ones plus the most significant mantissa bit of an `f64`.
const F64_QUIET_NAN: u64 = 0x7ff8_0000_0000_0000;

/// Converts one `invoke` argument of a script into a strata value.
///
/// `ref.extern N` becomes an [`ExternRef`] holding `N` in `store`. Returns a
/// human-readable reason when the argument has no strata counterpart.
pub(crate) fn arg_to_val(store: &mut Store<()>, arg: &WastArg<'_>) -> Result<Val, String> {
    let WastArg::Core(core) = arg else {
        return Err("unsupported argument: component-model value".to_string());
    };
    match core {
        WastArgCore::I32(x) => Ok(Val::I32(*x)),
        WastArgCore::I64(x) => Ok(Val::I64(*x)),
        WastArgCore::F32(x) => Ok(Val::F32(x.bits)),
        WastArgCore::F64(x) => Ok(Val::F64(x.bits)),
        WastArgCore::RefNull(heap) if is_func_heap(heap) => Ok(Val::FuncRef(None)),
        WastArgCore::V128(c) => Ok(Val::V128(u128::from_le_bytes(c.to_le_bytes()))),
        WastArgCore::RefNull(heap) if is_extern_heap(heap) => Ok(Val::ExternRef(None)),
        WastArgCore::RefNull(heap) if is_exn_heap(heap) => Ok(Val::ExnRef(None)),
        WastArgCore::RefNull(_) => {
            Err("unsupported argument: ref.null of a GC heap type".to_string())
        }
        WastArgCore::RefExtern(n) => ExternRef::new(store, *n)
            .map(Val::from)
            .map_err(|e| e.to_string()),
        WastArgCore::RefHost(_) => Err("unsupported argument: ref.host".to_string()),
    }
}

/// Whether `heap` denotes (the bottom of) the untyped function hierarchy.
fn is_func_heap(heap: &HeapType<'_>) -> bool {
    matches!(
        heap,
        HeapType::Abstract {
            shared: false,
            ty: AbstractHeapType::Func | AbstractHeapType::NoFunc,
        }
    )
}

/// Whether `heap` denotes (the bottom of) the exception hierarchy.
fn is_exn_heap(heap: &HeapType<'_>) -> bool {
    matches!(
        heap,
        HeapType::Abstract {
            shared: false,
            ty: AbstractHeapType::Exn | AbstractHeapType::NoExn,
        }
    )
}

/// Whether `heap` denotes (the bottom of) the external hierarchy.
fn is_extern_heap(heap: &HeapType<'_>) -> bool {
    matches!(
        heap,
        HeapType::Abstract {
            shared: false,
            ty: AbstractHeapType::Extern | AbstractHeapType::NoExtern,
        }
    )
}

/// The number an `externref` made by [`arg_to_val`] holds.
fn extern_payload(store: &Store<()>, e: ExternRef) -> Option<u32> {
    e.data(store).downcast_ref::<u32>().copied()
}

/// A value of type `ty` used to pre-fill the result slots of a call.
pub(crate) fn placeholder(ty: &ValType) -> Val {
    match ty {
        ValType::I64 => Val::I64(0),
        ValType::F32 => Val::F32(0),
        ValType::F64 => Val::F64(0),
        ValType::V128 => Val::V128(0),
        ValType::Ref(r) if r.is_func() => Val::FuncRef(None),
        ValType::Ref(r) if r.is_exn() => Val::ExnRef(None),
        ValType::Ref(_) => Val::ExternRef(None),
        _ => Val::I32(0),
    }
}

/// Checks a list of actual results against the script's expected results.
///
/// `Ok(())` when everything matches, otherwise a message describing the
/// mismatch (or the unsupported pattern).
pub(crate) fn check_results(
    store: &Store<()>,
    actual: &[Val],
    expected: &[WastRet<'_>],
) -> Result<(), String> {
    if actual.len() != expected.len() {
        return Err(format!(
            "expected {} result(s) {}, got {} result(s) {}",
            expected.len(),
            fmt_rets(expected),
            actual.len(),
            fmt_vals(actual),
        ));
    }
    for (i, (val, ret)) in actual.iter().zip(expected).enumerate() {
        let WastRet::Core(pattern) = ret else {
            return Err("unsupported expected result: component-model value".to_string());
        };
        if matches_pattern(store, val, pattern)? {
            continue;
        }
        return Err(if expected.len() == 1 {
            format!("expected {}, got {}", fmt_ret(pattern), fmt_val(val))
        } else {
            format!(
                "result {i}: expected {}, got {} (expected {}, got {})",
                fmt_ret(pattern),
                fmt_val(val),
                fmt_rets(expected),
                fmt_vals(actual),
            )
        });
    }
    Ok(())
}

/// Does `val` satisfy `pattern`? `Err` when the pattern cannot be checked
/// against strata values.
fn matches_pattern(
    store: &Store<()>,
    val: &Val,
    pattern: &WastRetCore<'_>,
) -> Result<bool, String> {
    Ok(match pattern {
        WastRetCore::I32(x) => matches!(val, Val::I32(y) if x == y),
        WastRetCore::I64(x) => matches!(val, Val::I64(y) if x == y),
        WastRetCore::F32(p) => match val {
            Val::F32(bits) => f32_matches(*bits, p),
            _ => false,
        },
        WastRetCore::F64(p) => match val {
            Val::F64(bits) => f64_matches(*bits, p),
            _ => false,
        },
        WastRetCore::V128(p) => match val {
            Val::V128(bits) => v128_matches(*bits, p),
            _ => false,
        },
        WastRetCore::RefNull(None) => matches!(
            val,
            Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None)
        ),
        WastRetCore::RefNull(Some(heap)) if is_exn_heap(heap) => matches!(val, Val::ExnRef(None)),
        WastRetCore::RefNull(Some(heap)) if is_func_heap(heap) => {
            matches!(val, Val::FuncRef(None))
        }
        WastRetCore::RefNull(Some(heap)) if is_extern_heap(heap) => {
            matches!(val, Val::ExternRef(None))
        }
        WastRetCore::RefFunc(_) => matches!(val, Val::FuncRef(Some(_))),
        WastRetCore::RefExtern(None) => matches!(val, Val::ExternRef(Some(_))),
        WastRetCore::RefExtern(Some(n)) => match val {
            Val::ExternRef(Some(e)) => extern_payload(store, *e) == Some(*n),
            _ => false,
        },
        WastRetCore::Either(options) => {
            let mut unsupported = None;
            for option in options {
                match matches_pattern(store, val, option) {
                    Ok(true) => return Ok(true),
                    Ok(false) => {}
                    Err(e) => unsupported = Some(e),
                }
            }
            match unsupported {
                Some(e) => return Err(e),
                None => false,
            }
        }
        other => {
            return Err(format!(
                "unsupported expected result pattern {}",
                fmt_ret(other)
            ));
        }
    })
}

/// Bitwise comparison of an `f32`, or a NaN-class check for NaN patterns.
fn f32_matches(bits: u32, pattern: &NanPattern<F32>) -> bool {
    match pattern {
        NanPattern::CanonicalNan => bits & F32_ABS == F32_QUIET_NAN,
        NanPattern::ArithmeticNan => bits & F32_QUIET_NAN == F32_QUIET_NAN,
        NanPattern::Value(expected) => expected.bits == bits,
    }
}

/// Bitwise comparison of an `f64`, or a NaN-class check for NaN patterns.
fn f64_matches(bits: u64, pattern: &NanPattern<F64>) -> bool {
    match pattern {
        NanPattern::CanonicalNan => bits & F64_ABS == F64_QUIET_NAN,
        NanPattern::ArithmeticNan => bits & F64_QUIET_NAN == F64_QUIET_NAN,
        NanPattern::Value(expected) => expected.bits == bits,
    }
}

/// Lane-wise comparison of a `v128` against a lane pattern.
fn v128_matches(bits: u128, pattern: &V128Pattern) -> bool {
    let bytes = bits.to_le_bytes();
    match pattern {
        V128Pattern::I8x16(lanes) => lanes
            .iter()
            .zip(bytes)
            .all(|(lane, byte)| lane.to_le_bytes()[0] == byte),
        V128Pattern::I16x8(lanes) => lanes
            .iter()
            .zip(bytes.chunks_exact(2))
            .all(|(lane, chunk)| lane.to_le_bytes()[..] == *chunk),
        V128Pattern::I32x4(lanes) => lanes
            .iter()
            .zip(bytes.chunks_exact(4))
            .all(|(lane, chunk)| lane.to_le_bytes()[..] == *chunk),
        V128Pattern::I64x2(lanes) => lanes
            .iter()
            .zip(bytes.chunks_exact(8))
            .all(|(lane, chunk)| lane.to_le_bytes()[..] == *chunk),
        V128Pattern::F32x4(lanes) => {
            lanes
                .iter()
                .zip(bytes.chunks_exact(4))
                .all(|(lane, chunk)| {
                    let mut raw = [0; 4];
                    raw.copy_from_slice(chunk);
                    f32_matches(u32::from_le_bytes(raw), lane)
                })
        }
        V128Pattern::F64x2(lanes) => {
            lanes
                .iter()
                .zip(bytes.chunks_exact(8))
                .all(|(lane, chunk)| {
                    let mut raw = [0; 8];
                    raw.copy_from_slice(chunk);
                    f64_matches(u64::from_le_bytes(raw), lane)
                })
        }
    }
}

/// Renders a strata value, floats with both their value and raw bits.
pub(crate) fn fmt_val(val: &Val) -> String {
    match val {
        Val::I32(x) => format!("i32:{x}"),
        Val::I64(x) => format!("i64:{x}"),
        Val::F32(bits) => format!("f32:{} (0x{bits:08x})", f32::from_bits(*bits)),
        Val::F64(bits) => format!("f64:{} (0x{bits:016x})", f64::from_bits(*bits)),
        Val::V128(bits) => format!("v128:0x{bits:032x}"),
        Val::FuncRef(None) => "ref.null func".to_string(),
        Val::FuncRef(Some(_)) => "ref.func".to_string(),
        Val::ExternRef(None) => "ref.null extern".to_string(),
        Val::ExternRef(Some(_)) => "ref.extern".to_string(),
        Val::ExnRef(None) => "ref.null exn".to_string(),
        Val::ExnRef(Some(_)) => "ref.exn".to_string(),
        _ => "<unprintable value>".to_string(),
    }
}

/// Renders a list of values as `[a, b, ...]`.
pub(crate) fn fmt_vals(vals: &[Val]) -> String {
    let parts: Vec<String> = vals.iter().map(fmt_val).collect();
    format!("[{}]", parts.join(", "))
}

/// Renders one expected-result pattern.
fn fmt_ret(pattern: &WastRetCore<'_>) -> String {
    match pattern {
        WastRetCore::I32(x) => format!("i32:{x}"),
        WastRetCore::I64(x) => format!("i64:{x}"),
        WastRetCore::F32(NanPattern::Value(x)) => {
            format!("f32:{} (0x{:08x})", f32::from_bits(x.bits), x.bits)
        }
        WastRetCore::F64(NanPattern::Value(x)) => {
            format!("f64:{} (0x{:016x})", f64::from_bits(x.bits), x.bits)
        }
        WastRetCore::F32(NanPattern::CanonicalNan) => "f32:nan:canonical".to_string(),
        WastRetCore::F32(NanPattern::ArithmeticNan) => "f32:nan:arithmetic".to_string(),
        WastRetCore::F64(NanPattern::CanonicalNan) => "f64:nan:canonical".to_string(),
        WastRetCore::F64(NanPattern::ArithmeticNan) => "f64:nan:arithmetic".to_string(),
        WastRetCore::V128(p) => format!("v128:{p:?}"),
        WastRetCore::RefNull(None) => "ref.null".to_string(),
        WastRetCore::RefNull(Some(heap)) => format!("ref.null {}", fmt_heap(heap)),
        WastRetCore::RefExtern(None) => "ref.extern".to_string(),
        WastRetCore::RefExtern(Some(n)) => format!("ref.extern {n}"),
        WastRetCore::RefHost(n) => format!("ref.host {n}"),
        WastRetCore::RefFunc(_) => "ref.func".to_string(),
        WastRetCore::RefAny => "ref.any".to_string(),
        WastRetCore::RefEq => "ref.eq".to_string(),
        WastRetCore::RefArray => "ref.array".to_string(),
        WastRetCore::RefStruct => "ref.struct".to_string(),
        WastRetCore::RefI31 => "ref.i31".to_string(),
        WastRetCore::RefI31Shared => "ref.i31_shared".to_string(),
        WastRetCore::Either(options) => {
            let parts: Vec<String> = options.iter().map(fmt_ret).collect();
            format!("(either {})", parts.join(" "))
        }
    }
}

/// Renders a heap type briefly for messages.
fn fmt_heap(heap: &HeapType<'_>) -> String {
    match heap {
        HeapType::Abstract { shared, ty } => {
            let name = format!("{ty:?}").to_lowercase();
            if *shared {
                format!("(shared {name})")
            } else {
                name
            }
        }
        HeapType::Concrete(_) | HeapType::Exact(_) => "<concrete type>".to_string(),
    }
}

/// Renders a list of expected results as `[a, b, ...]`.
fn fmt_rets(rets: &[WastRet<'_>]) -> String {
    let parts: Vec<String> = rets
        .iter()
        .map(|ret| match ret {
            WastRet::Core(core) => fmt_ret(core),
            _ => "<component value>".to_string(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_nan_classes() {
        let canonical = NanPattern::CanonicalNan;
        let arithmetic = NanPattern::ArithmeticNan;
        assert!(f32_matches(0x7fc0_0000, &canonical));
        assert!(f32_matches(0xffc0_0000, &canonical));
        assert!(!f32_matches(0x7fc0_0001, &canonical));
        assert!(!f32_matches(0x7fa0_0000, &canonical));
        assert!(f32_matches(0x7fc0_0001, &arithmetic));
        assert!(f32_matches(0xffff_ffff, &arithmetic));
        assert!(!f32_matches(0x7fa0_0000, &arithmetic));
        assert!(!f32_matches(0x3f80_0000, &arithmetic));
    }

    #[test]
    fn f64_nan_classes() {
        let canonical = NanPattern::CanonicalNan;
        let arithmetic = NanPattern::ArithmeticNan;
        assert!(f64_matches(0x7ff8_0000_0000_0000, &canonical));
        assert!(f64_matches(0xfff8_0000_0000_0000, &canonical));
        assert!(!f64_matches(0x7ff8_0000_0000_0001, &canonical));
        assert!(f64_matches(0x7ff8_0000_0000_0001, &arithmetic));
        assert!(!f64_matches(0x7ff4_0000_0000_0000, &arithmetic));
        assert!(!f64_matches(0x3ff0_0000_0000_0000, &arithmetic));
    }

    #[test]
    fn v128_lanes() {
        let bits =
            u128::from_le_bytes([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(v128_matches(bits, &V128Pattern::I32x4([1, 2, 3, -1])));
        assert!(!v128_matches(bits, &V128Pattern::I32x4([1, 2, 3, 4])));
        assert!(v128_matches(
            bits,
            &V128Pattern::I16x8([1, 0, 2, 0, 3, 0, -1, -1])
        ));
        let nan = u128::from(0x7fc0_0000_u32) << 96;
        let lanes = [
            NanPattern::Value(F32 { bits: 0 }),
            NanPattern::Value(F32 { bits: 0 }),
            NanPattern::Value(F32 { bits: 0 }),
            NanPattern::CanonicalNan,
        ];
        assert!(v128_matches(nan, &V128Pattern::F32x4(lanes)));
    }

    #[test]
    fn exact_float_bits() {
        let zero = NanPattern::Value(F32 { bits: 0 });
        assert!(f32_matches(0, &zero));
        assert!(!f32_matches(0x8000_0000, &zero));
    }
}
