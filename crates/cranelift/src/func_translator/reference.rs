//! Reference and table instructions: `ref.*`, `table.*` and `elem.drop`.

use super::{FuncTranslator, Result};
use crate::func_environ::BulkOp;
use crate::trap_code;
use cranelift_codegen::ir::{InstBuilder, condcodes::IntCC, types::I32};
use strata_environ::{ElemIndex, FuncIndex, TableIndex, Trap};
use wasmparser::Operator;

impl FuncTranslator<'_, '_> {
    /// Reference instructions, table instructions and the bulk table operations.
    pub(super) fn reference(&mut self, op: &Operator<'_>) -> Result<bool> {
        let b = &mut self.builder;
        match *op {
            Operator::RefNull { .. } => {
                let v = b.ins().iconst(self.env.pointer, 0);
                self.push(v);
            }
            Operator::RefIsNull => self.unop(|b, r| {
                let is_null = b.ins().icmp_imm_s(IntCC::Equal, r, 0);
                b.ins().uextend(I32, is_null)
            }),
            Operator::RefAsNonNull => {
                let r = *self.stack.last().expect("validated operand");
                b.ins().trapz(r, trap_code(Trap::NullReference));
            }
            Operator::RefFunc { function_index } => {
                let v = self.env.ref_func(b, FuncIndex::from_u32(function_index));
                self.push(v);
            }
            Operator::TableGet { table } => {
                let index = self.pop();
                let table = TableIndex::from_u32(table);
                let v = self.env.table_get(&mut self.builder, table, index);
                self.push(v);
            }
            Operator::TableSet { table } => {
                let (index, value) = self.pop2();
                let table = TableIndex::from_u32(table);
                self.env.table_set(&mut self.builder, table, index, value);
            }
            Operator::TableSize { table } => {
                let v = self.env.table_size(b, TableIndex::from_u32(table));
                self.push(v);
            }
            Operator::TableGrow { table } => {
                let (init, delta) = self.pop2();
                let table = TableIndex::from_u32(table);
                let v = self.env.table_grow(&mut self.builder, table, init, delta);
                self.push(v);
            }
            Operator::ElemDrop { elem_index } => {
                self.env.elem_drop(b, ElemIndex::from_u32(elem_index));
            }
            Operator::TableFill { table } => {
                self.bulk(BulkOp::TableFill(TableIndex::from_u32(table)))
            }
            Operator::TableCopy {
                dst_table,
                src_table,
            } => self.bulk(BulkOp::TableCopy {
                dst: TableIndex::from_u32(dst_table),
                src: TableIndex::from_u32(src_table),
            }),
            Operator::TableInit { elem_index, table } => self.bulk(BulkOp::TableInit {
                table: TableIndex::from_u32(table),
                elem: ElemIndex::from_u32(elem_index),
            }),
            _ => return Ok(false),
        }
        Ok(true)
    }
}
