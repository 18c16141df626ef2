//! Calls: `call` and `call_indirect`.

use super::{FuncTranslator, Result};
use strata_environ::{FuncIndex, TableIndex, TypeIndex};
use wasmparser::Operator;

impl FuncTranslator<'_, '_> {
    /// `call` and `call_indirect`.
    pub(super) fn call(&mut self, op: &Operator<'_>) -> Result<bool> {
        match *op {
            Operator::Call { function_index } => {
                let callee = FuncIndex::from_u32(function_index);
                let n = self.env.module.func_type(callee).params().len();
                let args = self.stack.split_off(self.stack.len() - n);
                self.fuel_save();
                let results = self.env.call(&mut self.builder, callee, &args);
                self.reload_after_call();
                self.stack.extend(results);
            }
            Operator::CallIndirect {
                type_index,
                table_index,
            } => {
                let ty = TypeIndex::from_u32(type_index);
                let index = self.pop();
                let n = self.env.module.types[ty].params().len();
                let args = self.stack.split_off(self.stack.len() - n);
                let table = TableIndex::from_u32(table_index);
                self.fuel_save();
                let results = self
                    .env
                    .call_indirect(&mut self.builder, table, ty, index, &args);
                self.reload_after_call();
                self.stack.extend(results);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}
