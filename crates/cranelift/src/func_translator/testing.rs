//! Helpers for unit tests that translate a small module and look at the CLIF.

use super::translate_function;
use crate::func_environ::{AliasRegions, FuncEnvironment};
use crate::wasm_signature;
use cranelift_codegen::ir::{self, Opcode, UserFuncName, Value};
use cranelift_codegen::isa::TargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use strata_environ::{Tunables, VMOffsets, WasmFeatures, translate_module};

/// Translates the first function of the module `wat` into CLIF, unoptimized, with the
/// host's default tunables.
pub(crate) fn translate(wat: &str) -> ir::Function {
    translate_with(wat, &Tunables::default_host())
}

/// Translates the first function of the module `wat` into CLIF, unoptimized, for the
/// host with its detected CPU features.
pub(crate) fn translate_with(wat: &str, tunables: &Tunables) -> ir::Function {
    translate_for(wat, tunables, &*host_isa(&[]))
}

/// The host's target with its detected CPU features, changed by `(flag, value)` pairs
/// (such as `("has_fma", "false")`, to stand for an older CPU).
pub(crate) fn host_isa(isa_flags: &[(&str, &str)]) -> cranelift_codegen::isa::OwnedTargetIsa {
    let mut builder = cranelift_native::builder().expect("host is supported");
    for &(name, value) in isa_flags {
        builder
            .set(name, value)
            .expect("a flag of the host's target");
    }
    builder
        .finish(settings::Flags::new(settings::builder()))
        .expect("default flags are valid")
}

/// Translates the first function of the module `wat` into CLIF for `isa`, unoptimized.
pub(crate) fn translate_for(wat: &str, tunables: &Tunables, isa: &dyn TargetIsa) -> ir::Function {
    let wasm = wat::parse_str(wat).expect("test module parses");
    // Wide arithmetic is off by default; the other defaults are the engine's.
    let features = WasmFeatures::default() | WasmFeatures::WIDE_ARITHMETIC;
    let translation = translate_module(&wasm, features).expect("valid module");
    let module = &translation.module;
    let (index, input) = translation
        .function_bodies
        .into_iter()
        .next()
        .expect("one function");
    let pointer = isa.pointer_type();
    let offsets = VMOffsets::new(isa.pointer_bytes(), module);
    let ty = module.func_type(module.func_index(index));
    let mut func =
        ir::Function::with_name_signature(UserFuncName::default(), wasm_signature(ty, pointer));
    let mut fctx = FunctionBuilderContext::new();
    let heap_region = AliasRegions::heap(&mut func);
    let env = FuncEnvironment {
        module,
        offsets: &offsets,
        tunables,
        pointer,
        vmctx: Value::from_u32(0),
        host_call_conv: isa.default_call_conv(),
        heap_region,
        isa,
    };
    let mut validator = input.validator.into_validator(Default::default());
    translate_function(
        env,
        FunctionBuilder::new(&mut func, &mut fctx),
        isa.frontend_config(),
        &input.body,
        &mut validator,
        ty.params(),
        ty.results(),
    )
    .expect("the function translates");
    func
}

/// The instructions of `func` with `opcode`, in layout order.
pub(crate) fn insts(func: &ir::Function, opcode: Opcode) -> Vec<ir::Inst> {
    func.layout
        .blocks()
        .flat_map(|block| func.layout.block_insts(block))
        .filter(|&inst| func.dfg.insts[inst].opcode() == opcode)
        .collect()
}
