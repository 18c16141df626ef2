//! Internal crate of the strata WebAssembly runtime: compiles WebAssembly to native code
//! with Cranelift.
//!
//! This crate has no stability promise; embedders use the `strata` crate. It owns the
//! translation of wasm operators to Cranelift IR (`func_translator`), the way compiled
//! code reaches the vmctx (`func_environ`), the host-facing trampolines
//! (`trampoline`), and compiling and linking a whole module into one text section
//! ([`CraneliftCompiler`]). It sees runtime structures only through
//! [`strata_environ::VMOffsets`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

mod compiler;
mod func_environ;
mod func_translator;
mod inline;
mod trampoline;

pub use compiler::{CraneliftCompiler, OptLevel};

use cranelift_codegen::ir::{self, AbiParam, ArgumentPurpose, Signature, types};
use cranelift_codegen::isa::CallConv;
use strata_environ::{Trap, WasmFuncType, WasmValType};

/// The Cranelift type of a wasm value type.
fn value_type(ty: WasmValType, pointer: ir::Type) -> ir::Type {
    match ty {
        WasmValType::I32 => types::I32,
        WasmValType::I64 => types::I64,
        WasmValType::F32 => types::F32,
        WasmValType::F64 => types::F64,
        WasmValType::V128 => types::I8X16,
        WasmValType::Ref(_) => pointer,
    }
}

/// The signature of a wasm function: `(callee vmctx, caller vmctx, params...) -> results`
/// in the `tail` calling convention, which lets traps unwind through every frame.
fn wasm_signature(ty: &WasmFuncType, pointer: ir::Type) -> Signature {
    let mut sig = Signature::new(CallConv::Tail);
    sig.params
        .push(AbiParam::special(pointer, ArgumentPurpose::VMContext));
    sig.params.push(AbiParam::new(pointer));
    sig.params.extend(
        ty.params()
            .iter()
            .map(|&t| AbiParam::new(value_type(t, pointer))),
    );
    sig.returns.extend(
        ty.results()
            .iter()
            .map(|&t| AbiParam::new(value_type(t, pointer))),
    );
    sig
}

/// Declares a direct call target: defined function `callee` of this module, whose code
/// the linker places in the same text section, with the imported signature `sig`.
fn import_defined_function(
    b: &mut cranelift_frontend::FunctionBuilder<'_>,
    callee: strata_environ::DefinedFuncIndex,
    sig: ir::SigRef,
) -> ir::FuncRef {
    let name = b.func.declare_imported_user_function(ir::UserExternalName {
        namespace: 0,
        index: callee.as_u32(),
    });
    b.import_function(ir::ExtFuncData {
        name: ir::ExternalName::User(name),
        signature: sig,
        colocated: true,
        patchable: false,
    })
}

/// The signature of the array-call entry points:
/// `extern "C" fn(callee_vmctx, caller_vmctx, values: *mut ValRaw, len: usize) -> bool`.
fn array_call_signature(pointer: ir::Type, call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    sig.params.extend([AbiParam::new(pointer); 4]);
    sig.returns.push(AbiParam::new(types::I8));
    sig
}

/// The Cranelift trap code compiled code uses for `trap`.
fn trap_code(trap: Trap) -> ir::TrapCode {
    match trap {
        Trap::StackOverflow => ir::TrapCode::STACK_OVERFLOW,
        Trap::MemoryOutOfBounds => ir::TrapCode::HEAP_OUT_OF_BOUNDS,
        Trap::IntegerOverflow => ir::TrapCode::INTEGER_OVERFLOW,
        Trap::IntegerDivisionByZero => ir::TrapCode::INTEGER_DIVISION_BY_ZERO,
        Trap::BadConversionToInteger => ir::TrapCode::BAD_CONVERSION_TO_INTEGER,
        other => ir::TrapCode::unwrap_user(other.as_u8()),
    }
}

/// The strata trap for a Cranelift trap code found in compiled code.
fn trap_from_code(code: ir::TrapCode) -> Option<Trap> {
    Some(match code {
        ir::TrapCode::STACK_OVERFLOW => Trap::StackOverflow,
        ir::TrapCode::HEAP_OUT_OF_BOUNDS => Trap::MemoryOutOfBounds,
        ir::TrapCode::INTEGER_OVERFLOW => Trap::IntegerOverflow,
        ir::TrapCode::INTEGER_DIVISION_BY_ZERO => Trap::IntegerDivisionByZero,
        ir::TrapCode::BAD_CONVERSION_TO_INTEGER => Trap::BadConversionToInteger,
        other => return Trap::from_u8(other.as_raw().get()),
    })
}

/// The size of one `ValRaw` slot in array calls.
const VAL_RAW_SIZE: u32 = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_trap_survives_the_cranelift_trap_code() {
        for trap in Trap::ALL {
            assert_eq!(trap_from_code(trap_code(trap)), Some(trap), "{trap:?}");
        }
    }

    #[test]
    fn wasm_signatures_lead_with_both_vmctx_pointers() {
        let ty = WasmFuncType::new([WasmValType::F64], [WasmValType::I32, WasmValType::I64]);
        let sig = wasm_signature(&ty, types::I64);
        assert_eq!(sig.call_conv, CallConv::Tail);
        assert_eq!(sig.params.len(), 3);
        assert_eq!(sig.params[0].purpose, ArgumentPurpose::VMContext);
        assert_eq!(sig.params[2].value_type, types::F64);
        assert_eq!(sig.returns.len(), 2);
    }
}
