//! Exceptions: `try_call`s with their landing block, and exception objects' tags and
//! fields.
//!
//! Every call inside a `try_table` is a `try_call` with one catch-all handler, the
//! `try_table`'s landing block; the landing code (built by the translator) compares
//! the exception's tag with the `catch` clauses itself. Matching in the landing code
//! keeps the runtime's unwinder free of tags and instances: it only finds the first
//! frame with a handler.

use super::bulk::Arg;
use super::{FuncEnvironment, constant_field, offset};
use crate::trap_code;
use crate::value_type;
use cranelift_codegen::ir::{
    self, BlockArg, BlockCall, ExceptionTableData, ExceptionTableItem, InstBuilder, MemFlagsData,
    Value, condcodes::IntCC,
};
use cranelift_frontend::FunctionBuilder;
use strata_environ::{BuiltinFunctionIndex, TagIndex, Trap};

/// Exception objects are written once, by `throw`, before anything else sees them,
/// and never change afterwards.
fn exn_field_flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

impl FuncEnvironment<'_> {
    /// The exception table of a `try_call` of signature `sig` whose exceptions go to
    /// `landing` (with the exception as its argument), and the block its normal return
    /// goes to, with one parameter per result.
    pub(super) fn exception_table(
        b: &mut FunctionBuilder,
        sig: ir::SigRef,
        landing: ir::Block,
    ) -> (ir::ExceptionTable, ir::Block) {
        let normal = b.create_block();
        let returns: Vec<ir::Type> = b.func.dfg.signatures[sig]
            .returns
            .iter()
            .map(|r| r.value_type)
            .collect();
        for &ty in &returns {
            b.append_block_param(normal, ty);
        }
        let dfg = &mut b.func.dfg;
        let results = (0..returns.len())
            .map(|i| BlockArg::TryCallRet(u32::try_from(i).expect("few results")));
        let normal_call = BlockCall::new(normal, results, &mut dfg.value_lists);
        let landing_call = BlockCall::new(landing, [BlockArg::TryCallExn(0)], &mut dfg.value_lists);
        let table = dfg.exception_tables.push(ExceptionTableData::new(
            sig,
            normal_call,
            [ExceptionTableItem::Default(landing_call)],
        ));
        (table, normal)
    }

    /// Continues in `normal`, the normal return block of the `try_call` just emitted,
    /// and returns the call's results.
    pub(super) fn continue_after_try_call(
        b: &mut FunctionBuilder,
        normal: ir::Block,
    ) -> Vec<Value> {
        b.seal_block(normal);
        b.switch_to_block(normal);
        b.block_params(normal).to_vec()
    }

    /// A new exception of tag `tag` holding `fields`, the tag's parameters in order.
    pub(crate) fn exn_new(
        &self,
        b: &mut FunctionBuilder,
        tag: TagIndex,
        fields: &[Value],
    ) -> Value {
        let exn = self
            .libcall(
                b,
                BuiltinFunctionIndex::ExnNew,
                &[Arg::Index(tag.as_u32())],
                Some(self.pointer),
            )
            .expect("exn_new returns the exception");
        for (i, &field) in fields.iter().enumerate() {
            let at = offset(self.offsets.exn_field(i));
            b.ins().store(exn_field_flags(), field, exn, at);
        }
        exn
    }

    /// The fields of `exn`, an exception of tag `tag`.
    pub(crate) fn exn_fields(
        &self,
        b: &mut FunctionBuilder,
        tag: TagIndex,
        exn: Value,
    ) -> Vec<Value> {
        let params = self.module.tag_type(tag).params();
        params
            .iter()
            .enumerate()
            .map(|(i, &ty)| {
                let at = offset(self.offsets.exn_field(i));
                b.ins()
                    .load(value_type(ty, self.pointer), exn_field_flags(), exn, at)
            })
            .collect()
    }

    /// The identity of `exn`'s tag.
    pub(crate) fn exn_tag(&self, b: &mut FunctionBuilder, exn: Value) -> Value {
        let at = i32::from(self.offsets.exn_tag());
        b.ins().load(self.pointer, exn_field_flags(), exn, at)
    }

    /// Whether `identity` (an exception's tag) is this instance's tag `tag`.
    pub(crate) fn is_tag(&self, b: &mut FunctionBuilder, identity: Value, tag: TagIndex) -> Value {
        let ours = self.load_ptr(
            b,
            constant_field(),
            self.vmctx,
            self.offsets.vmctx_tag_ptr(tag),
        );
        b.ins().icmp(IntCC::Equal, identity, ours)
    }

    /// Throws `exn` (not null) out of this function: no handler of this frame takes
    /// it. Ends the current block.
    pub(crate) fn throw_out(&self, b: &mut FunctionBuilder, exn: Value) {
        let fp = b.ins().get_frame_pointer(self.pointer);
        self.libcall(
            b,
            BuiltinFunctionIndex::ThrowRef,
            &[Arg::Value(exn), Arg::Value(fp)],
            None,
        );
        // `throw_ref` does not return.
        b.ins().trap(trap_code(Trap::UnreachableCodeReached));
    }

    /// Traps unless `exn` is an exception (`throw_ref` of null).
    pub(crate) fn check_exn_not_null(&self, b: &mut FunctionBuilder, exn: Value) {
        b.ins().trapz(exn, trap_code(Trap::NullReference));
    }
}
