//! Reference-type and bulk-memory instructions: table access inline, everything that
//! copies, fills, grows or drops through libcalls (see
//! [`strata_environ::BuiltinFunctionIndex`] for their signatures).

use super::{FuncEnvironment, offset};
use crate::trap_code;
use cranelift_codegen::ir::{self, InstBuilder, MemFlagsData, Value, condcodes::IntCC, types};
use cranelift_frontend::FunctionBuilder;
use strata_environ::{
    BuiltinFunctionIndex, DataIndex, ElemIndex, FUNCREF_INIT_BIT, FuncIndex, MemoryIndex,
    TableIndex, Trap,
};

/// The table and memory instructions that copy, fill or initialize a range.
#[derive(Clone, Copy)]
pub(crate) enum BulkOp {
    /// `table.fill`.
    TableFill(TableIndex),
    /// `table.copy`.
    TableCopy { dst: TableIndex, src: TableIndex },
    /// `table.init`.
    TableInit { table: TableIndex, elem: ElemIndex },
    /// `memory.fill`.
    MemoryFill(MemoryIndex),
    /// `memory.copy`.
    MemoryCopy { dst: MemoryIndex, src: MemoryIndex },
    /// `memory.init`.
    MemoryInit {
        memory: MemoryIndex,
        data: DataIndex,
    },
}

/// An operand of a libcall: a value computed by the function, or an index immediate.
#[derive(Clone, Copy)]
pub(super) enum Arg {
    /// A value; its type is the parameter's.
    Value(Value),
    /// A 32-bit immediate: a table, memory or segment index.
    Index(u32),
}

impl FuncEnvironment<'_> {
    /// Widens a table or memory index operand to 64 bits.
    fn widen(b: &mut FunctionBuilder, value: Value) -> Value {
        if b.func.dfg.value_type(value) == types::I64 {
            value
        } else {
            b.ins().uextend(types::I64, value)
        }
    }

    /// Calls `builtin` with the vmctx and `args`, returning its result if it has one.
    pub(super) fn libcall(
        &self,
        b: &mut FunctionBuilder,
        builtin: BuiltinFunctionIndex,
        args: &[Arg],
        result: Option<ir::Type>,
    ) -> Option<Value> {
        let mut sig = ir::Signature::new(self.host_call_conv);
        sig.params.push(ir::AbiParam::new(self.pointer));
        let mut values = vec![self.vmctx];
        for arg in args {
            let value = match *arg {
                Arg::Value(v) => v,
                Arg::Index(i) => b.ins().iconst(types::I32, i64::from(i)),
            };
            sig.params
                .push(ir::AbiParam::new(b.func.dfg.value_type(value)));
            values.push(value);
        }
        sig.returns.extend(result.map(ir::AbiParam::new));
        self.call_builtin(b, builtin, sig, &values).first().copied()
    }

    /// Calls a libcall that reports failure with `0`, and traps with `trap` on it.
    fn trapping_libcall(
        &self,
        b: &mut FunctionBuilder,
        builtin: BuiltinFunctionIndex,
        args: &[Arg],
        trap: Trap,
    ) {
        let ok = self
            .libcall(b, builtin, args, Some(types::I32))
            .expect("trapping libcalls return a status");
        b.ins().trapz(ok, trap_code(trap));
    }

    /// The address of element `index` of `table`, after checking it is in bounds and
    /// masking it against speculation past the check (see
    /// [`FuncEnvironment::spectre_guard`]), and the index widened to 64 bits.
    pub(super) fn table_slot(
        &self,
        b: &mut FunctionBuilder,
        table: TableIndex,
        index: Value,
    ) -> (Value, Value) {
        let (base, length) = self.table_base_and_length(b, table);
        let index = Self::widen(b, index);
        let oob = b
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, index, length);
        b.ins().trapnz(oob, trap_code(Trap::TableOutOfBounds));
        let scaled = b
            .ins()
            .imul_imm_s(index, i64::from(self.offsets.pointer_size()));
        let slot = b.ins().iadd(base, scaled);
        (self.spectre_guard(b, oob, slot), index)
    }

    fn is_funcref_table(&self, table: TableIndex) -> bool {
        self.module.tables[table].element.heap_type.is_func()
    }

    /// Reads element `index` (in bounds) of `table` at `slot`. A funcref table stores
    /// its elements tagged with [`FUNCREF_INIT_BIT`] and zero for an element not
    /// initialized yet, which a cold libcall resolves.
    pub(super) fn load_table_element(
        &self,
        b: &mut FunctionBuilder,
        table: TableIndex,
        slot: Value,
        index: Value,
    ) -> Value {
        let raw = b.ins().load(self.pointer, MemFlagsData::trusted(), slot, 0);
        if !self.is_funcref_table(table) {
            return raw;
        }
        let initialized = b.create_block();
        let lazy = b.create_block();
        let done = b.create_block();
        let value = b.append_block_param(done, self.pointer);
        b.ins().brif(raw, initialized, &[], lazy, &[]);

        b.switch_to_block(initialized);
        b.seal_block(initialized);
        let mask = !(FUNCREF_INIT_BIT as i64);
        let untagged = b.ins().band_imm_s(raw, mask);
        b.ins().jump(done, &[untagged.into()]);

        b.switch_to_block(lazy);
        b.seal_block(lazy);
        b.set_cold_block(lazy);
        let args = [Arg::Index(table.as_u32()), Arg::Value(index)];
        let resolved = self
            .libcall(
                b,
                BuiltinFunctionIndex::TableGetLazyInit,
                &args,
                Some(self.pointer),
            )
            .expect("table_get_lazy_init returns the element");
        b.ins().jump(done, &[resolved.into()]);

        b.switch_to_block(done);
        b.seal_block(done);
        value
    }

    /// Narrows a 64-bit size or index result to the table's index type.
    fn table_index_result(&self, b: &mut FunctionBuilder, table: TableIndex, v: Value) -> Value {
        if self.module.tables[table].table64 {
            v
        } else {
            b.ins().ireduce(types::I32, v)
        }
    }

    /// `table.get`.
    pub(crate) fn table_get(
        &self,
        b: &mut FunctionBuilder,
        table: TableIndex,
        index: Value,
    ) -> Value {
        let (slot, index) = self.table_slot(b, table, index);
        self.load_table_element(b, table, slot, index)
    }

    /// `table.set`.
    pub(crate) fn table_set(
        &self,
        b: &mut FunctionBuilder,
        table: TableIndex,
        index: Value,
        value: Value,
    ) {
        let (slot, _) = self.table_slot(b, table, index);
        let value = if self.is_funcref_table(table) {
            b.ins().bor_imm_s(value, FUNCREF_INIT_BIT as i64)
        } else {
            value
        };
        b.ins().store(MemFlagsData::trusted(), value, slot, 0);
    }

    /// `table.size`.
    pub(crate) fn table_size(&self, b: &mut FunctionBuilder, table: TableIndex) -> Value {
        let (_, length) = self.table_base_and_length(b, table);
        self.table_index_result(b, table, length)
    }

    /// `table.grow`: the old size, or -1.
    pub(crate) fn table_grow(
        &self,
        b: &mut FunctionBuilder,
        table: TableIndex,
        init: Value,
        delta: Value,
    ) -> Value {
        let delta = Self::widen(b, delta);
        let args = [
            Arg::Index(table.as_u32()),
            Arg::Value(delta),
            Arg::Value(init),
        ];
        let old = self
            .libcall(b, BuiltinFunctionIndex::TableGrow, &args, Some(types::I64))
            .expect("table_grow returns the old size");
        self.trap_if_grow_trapped(b, old);
        self.table_index_result(b, table, old)
    }

    /// A bulk operation: `operands` are the destination, the source (or fill value) and
    /// the length, in stack order.
    pub(crate) fn bulk(&self, b: &mut FunctionBuilder, op: BulkOp, operands: [Value; 3]) {
        use BuiltinFunctionIndex as B;
        let (builtin, immediates, trap) = match op {
            BulkOp::TableFill(t) => (B::TableFill, vec![t.as_u32()], Trap::TableOutOfBounds),
            BulkOp::TableCopy { dst, src } => (
                B::TableCopy,
                vec![dst.as_u32(), src.as_u32()],
                Trap::TableOutOfBounds,
            ),
            BulkOp::TableInit { table, elem } => (
                B::TableInit,
                vec![table.as_u32(), elem.as_u32()],
                Trap::TableOutOfBounds,
            ),
            BulkOp::MemoryFill(m) => (B::MemoryFill, vec![m.as_u32()], Trap::MemoryOutOfBounds),
            BulkOp::MemoryCopy { dst, src } => (
                B::MemoryCopy,
                vec![dst.as_u32(), src.as_u32()],
                Trap::MemoryOutOfBounds,
            ),
            BulkOp::MemoryInit { memory, data } => (
                B::MemoryInit,
                vec![memory.as_u32(), data.as_u32()],
                Trap::MemoryOutOfBounds,
            ),
        };
        let mut args: Vec<Arg> = immediates.into_iter().map(Arg::Index).collect();
        for (i, operand) in operands.into_iter().enumerate() {
            // A table's fill value is a reference and goes as it is; every other operand
            // is an index, a length or a fill byte, passed as 64 bits.
            let keep = i == 1 && matches!(op, BulkOp::TableFill(_));
            let operand = if keep {
                operand
            } else {
                Self::widen(b, operand)
            };
            args.push(Arg::Value(operand));
        }
        self.trapping_libcall(b, builtin, &args, trap);
    }

    /// `elem.drop`.
    pub(crate) fn elem_drop(&self, b: &mut FunctionBuilder, elem: ElemIndex) {
        let args = [Arg::Index(elem.as_u32())];
        self.libcall(b, BuiltinFunctionIndex::ElemDrop, &args, None);
    }

    /// `data.drop`.
    pub(crate) fn data_drop(&self, b: &mut FunctionBuilder, data: DataIndex) {
        let args = [Arg::Index(data.as_u32())];
        self.libcall(b, BuiltinFunctionIndex::DataDrop, &args, None);
    }

    /// `ref.func`: the address of the function's `VMFuncRef` in this vmctx.
    pub(crate) fn ref_func(&self, b: &mut FunctionBuilder, func: FuncIndex) -> Value {
        let slot = self.module.functions[func]
            .func_ref
            .expect("functions named by ref.func are declared, so they escape");
        let off = self.offsets.vmctx_func_ref(slot);
        b.ins().iadd_imm_s(self.vmctx, i64::from(offset(off)))
    }
}
