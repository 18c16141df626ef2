//! Parametric and variable instructions: `nop`, `drop`, `select`, `local.*` and
//! `global.*`.

use super::{FuncTranslator, Result};
use crate::value_type;
use cranelift_codegen::ir::InstBuilder;
use strata_environ::GlobalIndex;
use wasmparser::Operator;

impl FuncTranslator<'_, '_> {
    /// The parametric and variable instructions: `nop`, `drop`, `select`, locals and
    /// globals.
    pub(super) fn variable(&mut self, op: &Operator<'_>) -> Result<bool> {
        match *op {
            Operator::Nop => {}
            Operator::Drop => {
                self.pop();
            }
            Operator::Select | Operator::TypedSelect { .. } => {
                let cond = self.pop();
                let (a, b) = self.pop2();
                let v = self.builder.ins().select(cond, a, b);
                self.push(v);
            }
            Operator::LocalGet { local_index } => {
                let (var, _) = self.locals[local_index as usize];
                let v = self.builder.use_var(var);
                self.push(v);
            }
            Operator::LocalSet { local_index } => {
                let v = self.pop();
                self.builder.def_var(self.locals[local_index as usize].0, v);
            }
            Operator::LocalTee { local_index } => {
                let v = *self.stack.last().expect("validated");
                self.builder.def_var(self.locals[local_index as usize].0, v);
            }
            Operator::GlobalGet { global_index } => {
                let index = GlobalIndex::from_u32(global_index);
                let ty = value_type(self.env.module.globals[index].ty, self.ptr());
                let (base, offset) = self.env.global_address(&mut self.builder, index);
                let flags = self.env.global_flags(&mut self.builder, index);
                let v = self.builder.ins().load(ty, flags, base, offset);
                self.push(v);
            }
            Operator::GlobalSet { global_index } => {
                let index = GlobalIndex::from_u32(global_index);
                let v = self.pop();
                let (base, offset) = self.env.global_address(&mut self.builder, index);
                let flags = self.env.global_flags(&mut self.builder, index);
                self.builder.ins().store(flags, v, base, offset);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}
