//! Trampolines between the host's array-call convention and wasm's own convention.
//!
//! * Array-to-wasm (host calls wasm): unpacks `ValRaw` arguments, records where traps
//!   resume (this frame's FP, SP and exception-handler address) in the `VMStoreContext`,
//!   and calls the function with `try_call`. A trap anywhere below resumes at the handler,
//!   which returns `false`.
//! * Wasm-to-array (wasm calls a host function): records the exit FP and PC for
//!   backtraces, spills the arguments into a stack `ValRaw` array, calls the host's
//!   `array_call`, and if that reports failure calls the `raise` builtin, which unwinds to
//!   the innermost array-to-wasm handler.

use crate::{VAL_RAW_SIZE, array_call_signature, value_type, wasm_signature};
use cranelift_codegen::ir::{
    self, BlockArg, BlockCall, ExceptionTableData, ExceptionTableItem, InstBuilder, MemFlagsData,
    StackSlotData, StackSlotKind, UserFuncName, types,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use strata_environ::{BuiltinFunctionIndex, DefinedFuncIndex, VMOffsets, WasmFuncType};

/// What every trampoline needs to know of the target and the vmctx layout.
#[derive(Clone, Copy)]
pub(crate) struct TrampolineTarget<'a> {
    pub offsets: &'a VMOffsets,
    pub pointer: ir::Type,
    pub host_call_conv: CallConv,
    pub frontend: TargetFrontendConfig,
}

fn little() -> MemFlagsData {
    MemFlagsData::trusted().with_endianness(ir::Endianness::Little)
}

/// Loads the pointer-sized field `offset` bytes into `base`.
fn load_field(
    b: &mut FunctionBuilder<'_>,
    pointer: ir::Type,
    base: ir::Value,
    offset: u32,
) -> ir::Value {
    let offset = i32::try_from(offset).expect("vmctx offsets fit in i32");
    b.ins().load(pointer, MemFlagsData::trusted(), base, offset)
}

fn slot_offset(i: usize) -> i32 {
    i32::try_from(i)
        .ok()
        .and_then(|i| i.checked_mul(VAL_RAW_SIZE as i32))
        .expect("few values")
}

/// Builds the array-to-wasm trampoline for defined function `callee` of type `ty`.
pub(crate) fn array_to_wasm(
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
    target: TrampolineTarget<'_>,
    callee: DefinedFuncIndex,
    ty: &WasmFuncType,
) {
    let TrampolineTarget {
        offsets,
        pointer,
        host_call_conv,
        frontend,
    } = target;
    func.signature = array_call_signature(pointer, host_call_conv);
    func.name = UserFuncName::default();
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let [callee_vmctx, caller_vmctx, values, _len] = *b.block_params(entry) else {
        unreachable!("four parameters")
    };

    // The handler address cannot name the entry block: call from a block of its own.
    let call_block = b.create_block();
    b.ins().jump(call_block, &[]);
    b.seal_block(entry);
    b.switch_to_block(call_block);

    let mut args = vec![callee_vmctx, caller_vmctx];
    for (i, &param) in ty.params().iter().enumerate() {
        let v = b
            .ins()
            .load(value_type(param, pointer), little(), values, slot_offset(i));
        args.push(v);
    }

    let store_ctx = load_field(&mut b, pointer, callee_vmctx, offsets.vmctx_store_context());
    let fp = b.ins().get_frame_pointer(pointer);
    let sp = b.ins().get_stack_pointer(pointer);
    let handler = b
        .ins()
        .get_exception_handler_address(pointer, call_block, 0);
    for (value, field) in [
        (fp, offsets.vmstore_context_last_wasm_entry_fp()),
        (sp, offsets.vmstore_context_last_wasm_entry_sp()),
        (
            handler,
            offsets.vmstore_context_last_wasm_entry_trap_handler(),
        ),
    ] {
        b.ins()
            .store(MemFlagsData::trusted(), value, store_ctx, i32::from(field));
    }

    let sig = wasm_signature(ty, pointer);
    let normal = b.create_block();
    let results: Vec<_> = sig
        .returns
        .iter()
        .map(|r| b.append_block_param(normal, r.value_type))
        .collect();
    let trapped = b.create_block();
    let sig_ref = b.import_signature(sig);
    let callee_ref = crate::import_defined_function(&mut b, callee, sig_ref);
    let dfg = &mut b.func.dfg;
    let returns = (0..results.len()).map(|i| BlockArg::TryCallRet(u32::try_from(i).expect("few")));
    let normal_call = BlockCall::new(normal, returns, &mut dfg.value_lists);
    let trap_call = BlockCall::new(trapped, [], &mut dfg.value_lists);
    let table = dfg.exception_tables.push(ExceptionTableData::new(
        sig_ref,
        normal_call,
        [ExceptionTableItem::Default(trap_call)],
    ));
    b.ins().try_call(callee_ref, &args, table);
    b.seal_block(call_block);
    b.seal_block(normal);
    b.seal_block(trapped);

    b.switch_to_block(normal);
    for (i, &v) in results.iter().enumerate() {
        b.ins().store(little(), v, values, slot_offset(i));
    }
    let ok = b.ins().iconst(types::I8, 1);
    b.ins().return_(&[ok]);

    b.switch_to_block(trapped);
    let failed = b.ins().iconst(types::I8, 0);
    b.ins().return_(&[failed]);
    b.finalize(frontend);
}

/// Builds the wasm-to-array trampoline for host functions of type `ty`.
pub(crate) fn wasm_to_array(
    func: &mut ir::Function,
    fctx: &mut FunctionBuilderContext,
    target: TrampolineTarget<'_>,
    ty: &WasmFuncType,
) {
    let TrampolineTarget {
        offsets,
        pointer,
        host_call_conv,
        frontend,
    } = target;
    func.signature = wasm_signature(ty, pointer);
    func.name = UserFuncName::default();
    let len = ty.array_len();
    let slot_size = u32::try_from(len.max(1)).expect("few values") * VAL_RAW_SIZE;
    let slot = func.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        slot_size,
        4,
    ));
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry).to_vec();
    let (callee_vmctx, caller_vmctx) = (params[0], params[1]);

    let store_ctx = load_field(&mut b, pointer, caller_vmctx, offsets.vmctx_store_context());
    let fp = b.ins().get_frame_pointer(pointer);
    let pc = b.ins().get_return_address(pointer);
    b.ins().store(
        MemFlagsData::trusted(),
        fp,
        store_ctx,
        i32::from(offsets.vmstore_context_last_wasm_exit_trampoline_fp()),
    );
    b.ins().store(
        MemFlagsData::trusted(),
        pc,
        store_ctx,
        i32::from(offsets.vmstore_context_last_wasm_exit_pc()),
    );

    let values = b.ins().stack_addr(pointer, slot, 0);
    for (i, &v) in params[2..].iter().enumerate() {
        b.ins().store(little(), v, values, slot_offset(i));
    }
    let func_ref = i32::from(offsets.vmhost_func_context_func_ref());
    let array_call = b.ins().load(
        pointer,
        MemFlagsData::trusted(),
        callee_vmctx,
        func_ref + i32::from(offsets.vm_func_ref_array_call()),
    );
    let len_value = b
        .ins()
        .iconst(pointer, i64::try_from(len).expect("few values"));
    let sig = b.import_signature(array_call_signature(pointer, host_call_conv));
    let call = b.ins().call_indirect(
        sig,
        array_call,
        &[callee_vmctx, caller_vmctx, values, len_value],
    );
    let ok = b.inst_results(call)[0];

    let done = b.create_block();
    let failed = b.create_block();
    b.ins().brif(ok, done, &[], failed, &[]);
    b.seal_block(done);
    b.seal_block(failed);

    b.switch_to_block(failed);
    b.set_cold_block(failed);
    let mut raise_sig = ir::Signature::new(host_call_conv);
    raise_sig.params.push(ir::AbiParam::new(pointer));
    let table = load_field(
        &mut b,
        pointer,
        caller_vmctx,
        offsets.vmctx_builtin_functions(),
    );
    let raise = load_field(
        &mut b,
        pointer,
        table,
        offsets.builtin_function(BuiltinFunctionIndex::Raise),
    );
    let raise_sig = b.import_signature(raise_sig);
    b.ins().call_indirect(raise_sig, raise, &[caller_vmctx]);
    // `raise` does not return.
    b.ins().trap(crate::trap_code(
        strata_environ::Trap::UnreachableCodeReached,
    ));

    b.switch_to_block(done);
    let results: Vec<_> = ty
        .results()
        .iter()
        .enumerate()
        .map(|(i, &r)| {
            b.ins()
                .load(value_type(r, pointer), little(), values, slot_offset(i))
        })
        .collect();
    b.ins().return_(&results);
    b.finalize(frontend);
}
