//! Calls: `call`, `call_indirect` and `call_ref`, and their tail-call forms
//! `return_call`, `return_call_indirect` and `return_call_ref`.
//!
//! A tail call ends its block like `return`: the fuel counter is saved first (the
//! callee and the host read it from the store context), the callee's results become the
//! caller's, and the code after it is unreachable. Cranelift's `tail` convention, which
//! every wasm function and wasm-to-host trampoline uses, lets the callee's frame replace
//! the caller's, so tail recursion runs in bounded stack.

use super::{FuncTranslator, Result};
use crate::func_environ::CallKind;
use cranelift_codegen::ir;
use strata_environ::{FuncIndex, TableIndex, TypeIndex};
use wasmparser::Operator;

impl FuncTranslator<'_, '_> {
    /// `call`, `call_indirect`, `call_ref` and their tail-call forms.
    pub(super) fn call(&mut self, op: &Operator<'_>) -> Result<bool> {
        match *op {
            Operator::Call { function_index } => {
                self.direct_call(function_index, CallKind::Normal);
            }
            Operator::ReturnCall { function_index } => {
                self.direct_call(function_index, CallKind::Tail);
            }
            Operator::CallIndirect {
                type_index,
                table_index,
            } => self.indirect_call(type_index, table_index, CallKind::Normal),
            Operator::ReturnCallIndirect {
                type_index,
                table_index,
            } => self.indirect_call(type_index, table_index, CallKind::Tail),
            Operator::CallRef { type_index } => self.ref_call(type_index, CallKind::Normal),
            Operator::ReturnCallRef { type_index } => self.ref_call(type_index, CallKind::Tail),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A call of function `function_index` with its arguments from the stack.
    fn direct_call(&mut self, function_index: u32, kind: CallKind) {
        let callee = FuncIndex::from_u32(function_index);
        let n = self.env.module.func_type(callee).params().len();
        let args = self.stack.split_off(self.stack.len() - n);
        self.fuel_save();
        let kind = self.catching(kind);
        let results = self.env.call(&mut self.builder, callee, &args, kind);
        self.after_call(results, kind);
    }

    /// A call through table `table_index` of type `type_index`, with the element index
    /// on top of the arguments.
    fn indirect_call(&mut self, type_index: u32, table_index: u32, kind: CallKind) {
        let ty = TypeIndex::from_u32(type_index);
        let index = self.pop();
        let n = self.env.module.types[ty].params().len();
        let args = self.stack.split_off(self.stack.len() - n);
        let table = TableIndex::from_u32(table_index);
        self.fuel_save();
        let kind = self.catching(kind);
        let results = self
            .env
            .call_indirect(&mut self.builder, table, ty, index, &args, kind);
        self.after_call(results, kind);
    }

    /// A call of type `type_index` through the function reference on top of the
    /// arguments.
    fn ref_call(&mut self, type_index: u32, kind: CallKind) {
        let ty = TypeIndex::from_u32(type_index);
        let func_ref = self.pop();
        let n = self.env.module.types[ty].params().len();
        let args = self.stack.split_off(self.stack.len() - n);
        self.fuel_save();
        let kind = self.catching(kind);
        let results = self
            .env
            .call_ref(&mut self.builder, ty, func_ref, &args, kind);
        self.after_call(results, kind);
    }

    /// A normal call inside a `try_table` lands its exceptions there; a tail call
    /// leaves the `try_table` with the frame.
    fn catching(&mut self, kind: CallKind) -> CallKind {
        match (kind, self.tries.last_mut()) {
            (CallKind::Normal, Some(scope)) => {
                scope.used = true;
                CallKind::Try(scope.landing)
            }
            _ => kind,
        }
    }

    /// After a normal call, reloads what the callee may have changed and pushes its
    /// results; after a tail call, nothing follows.
    fn after_call(&mut self, results: Vec<ir::Value>, kind: CallKind) {
        match kind {
            CallKind::Normal | CallKind::Try(_) => {
                self.reload_after_call();
                self.stack.extend(results);
            }
            CallKind::Tail => self.reachable = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{insts, translate, translate_with};
    use crate::trap_code;
    use cranelift_codegen::ir::{self, Opcode};
    use strata_environ::{Trap, Tunables};

    /// The last instruction of the block holding `inst`.
    fn ends_its_block(func: &ir::Function, inst: ir::Inst) -> bool {
        let block = func.layout.inst_block(inst).expect("inst is laid out");
        func.layout.last_inst(block) == Some(inst)
    }

    #[test]
    fn return_call_to_a_defined_function_is_a_cranelift_tail_call() {
        let func = translate(
            r#"(module
                 (func (param i32) (result i32)
                   (return_call 1 (local.get 0))
                   (i32.const 7))
                 (func (param i32) (result i32) (local.get 0)))"#,
        );
        let [tail] = insts(&func, Opcode::ReturnCall)[..] else {
            panic!("one return_call expected in {}", func.display());
        };
        assert!(ends_its_block(&func, tail), "{}", func.display());
        assert!(insts(&func, Opcode::Call).is_empty(), "{}", func.display());
        // The unreachable `i32.const 7` and the function's end emit no return.
        assert!(
            insts(&func, Opcode::Return).is_empty(),
            "{}",
            func.display()
        );
        assert!(
            insts(&func, Opcode::Iconst).is_empty(),
            "{}",
            func.display()
        );
    }

    #[test]
    fn return_call_to_an_import_goes_through_the_import_record() {
        let func = translate(
            r#"(module
                 (import "m" "g" (func $g (param i64) (result i64)))
                 (func (param i64) (result i64) (return_call $g (local.get 0))))"#,
        );
        let [tail] = insts(&func, Opcode::ReturnCallIndirect)[..] else {
            panic!("one return_call_indirect expected in {}", func.display());
        };
        assert!(ends_its_block(&func, tail), "{}", func.display());
        let args = func.dfg.inst_args(tail);
        // The code pointer, the import's vmctx and then the caller's own vmctx.
        let vmctx = func.dfg.block_params(func.layout.entry_block().unwrap())[0];
        assert_ne!(args[1], vmctx, "{}", func.display());
        assert_eq!(args[2], vmctx, "{}", func.display());
    }

    #[test]
    fn return_call_indirect_checks_the_signature_before_the_tail_call() {
        let func = translate(
            r#"(module
                 (type $t (func (result i32)))
                 (table 1 funcref)
                 (func (param i32) (result i32)
                   (return_call_indirect (type $t) (local.get 0))))"#,
        );
        let [tail] = insts(&func, Opcode::ReturnCallIndirect)[..] else {
            panic!("one return_call_indirect expected in {}", func.display());
        };
        assert!(ends_its_block(&func, tail), "{}", func.display());
        let checks = insts(&func, Opcode::Trapnz);
        let signature = checks
            .iter()
            .find(|&&t| func.dfg.insts[t].trap_code() == Some(trap_code(Trap::BadSignature)))
            .unwrap_or_else(|| panic!("no signature check in {}", func.display()));
        assert_eq!(
            func.layout.inst_block(*signature),
            func.layout.inst_block(tail),
            "{}",
            func.display()
        );
        assert!(
            func.layout.pp_cmp(*signature, tail).is_lt(),
            "{}",
            func.display()
        );
    }

    #[test]
    fn fuel_is_saved_with_the_run_cost_before_a_tail_call() {
        let tunables = Tunables {
            consume_fuel: true,
            ..Tunables::default_host()
        };
        let func = translate_with(
            r#"(module
                 (func (param i32) (result i32) (return_call 1 (local.get 0)))
                 (func (param i32) (result i32) (local.get 0)))"#,
            &tunables,
        );
        let [tail] = insts(&func, Opcode::ReturnCall)[..] else {
            panic!("one return_call expected in {}", func.display());
        };
        let block = func.layout.inst_block(tail).unwrap();
        let before: Vec<_> = func.layout.block_insts(block).collect();
        let store = before
            .iter()
            .rev()
            .find(|&&i| func.dfg.insts[i].opcode() == Opcode::Store)
            .unwrap_or_else(|| panic!("no fuel store before the tail call in {}", func.display()));
        // The stored counter includes the cost of the `local.get` and the `return_call`.
        let stored = func.dfg.inst_args(*store)[0];
        let ir::ValueDef::Result(add, _) = func.dfg.value_def(stored) else {
            panic!(
                "the stored counter is no instruction result in {}",
                func.display()
            );
        };
        assert_eq!(
            func.dfg.insts[add].opcode(),
            Opcode::Iadd,
            "{}",
            func.display()
        );
        let cost = func.dfg.inst_args(add)[1];
        assert!(is_iconst(&func, cost, 2), "{}", func.display());
        assert!(func.layout.pp_cmp(*store, tail).is_lt());
    }

    /// The table bound `call_indirect` compares its index with: the second operand of
    /// the `icmp` whose result the table-bounds trap tests.
    fn table_bound(func: &ir::Function) -> ir::Value {
        let trap = insts(func, Opcode::Trapnz)
            .into_iter()
            .find(|&t| func.dfg.insts[t].trap_code() == Some(trap_code(Trap::TableOutOfBounds)))
            .unwrap_or_else(|| panic!("no table bounds check in {}", func.display()));
        let ir::ValueDef::Result(cmp, _) = func.dfg.value_def(func.dfg.inst_args(trap)[0]) else {
            panic!("the check is no instruction result in {}", func.display());
        };
        func.dfg.inst_args(cmp)[1]
    }

    /// Whether `v` is the constant `n`.
    fn is_iconst(func: &ir::Function, v: ir::Value, n: i64) -> bool {
        matches!(
            func.dfg.value_def(v),
            ir::ValueDef::Result(inst, _) if matches!(
                func.dfg.insts[inst],
                ir::InstructionData::UnaryImm { opcode: Opcode::Iconst, imm } if imm.bits() == n
            )
        )
    }

    fn is_load(func: &ir::Function, v: ir::Value) -> Option<ir::MemFlagsData> {
        match func.dfg.value_def(v) {
            ir::ValueDef::Result(inst, _) if func.dfg.insts[inst].opcode() == Opcode::Load => {
                func.dfg.insts[inst].memflags_data(&func.dfg)
            }
            _ => None,
        }
    }

    #[test]
    fn a_table_of_fixed_size_is_checked_against_a_constant() {
        let func = translate(
            r#"(module (type $t (func)) (table 5 5 funcref)
                 (func (param i32) (call_indirect (type $t) (local.get 0))))"#,
        );
        assert!(
            is_iconst(&func, table_bound(&func), 5),
            "{}",
            func.display()
        );
        // Its base never moves: the load of it may leave loops.
        let bases: Vec<_> = insts(&func, Opcode::Load)
            .into_iter()
            .filter_map(|i| func.dfg.insts[i].memflags_data(&func.dfg))
            .filter(|f| f.readonly() && f.can_move())
            .collect();
        assert!(bases.len() >= 2, "def pointer and base: {}", func.display());
    }

    #[test]
    fn a_table_that_may_grow_is_checked_against_its_current_length() {
        let func = translate(
            r#"(module (type $t (func)) (table 5 10 funcref)
                 (func (param i32) (call_indirect (type $t) (local.get 0))))"#,
        );
        let flags = is_load(&func, table_bound(&func))
            .unwrap_or_else(|| panic!("the bound is loaded in {}", func.display()));
        assert!(!flags.readonly() && !flags.can_move(), "{}", func.display());
    }

    /// The instructions of `func` whose trap code is `trap`.
    fn trapping(func: &ir::Function, trap: Trap) -> Vec<ir::Inst> {
        func.layout
            .blocks()
            .flat_map(|block| func.layout.block_insts(block))
            .filter(|&inst| {
                let data = &func.dfg.insts[inst];
                data.trap_code() == Some(trap_code(trap))
                    || data.memflags_data(&func.dfg).and_then(|f| f.trap_code())
                        == Some(trap_code(trap))
            })
            .collect()
    }

    #[test]
    fn call_ref_checks_no_signature_and_traps_on_null_with_its_code_load() {
        let func = translate(
            r#"(module
                 (type $t (func (param i32) (result i32)))
                 (func (param (ref null $t)) (result i32)
                   (call_ref $t (i32.const 1) (local.get 0))))"#,
        );
        assert_eq!(
            insts(&func, Opcode::CallIndirect).len(),
            1,
            "{}",
            func.display()
        );
        assert!(
            trapping(&func, Trap::BadSignature).is_empty(),
            "{}",
            func.display()
        );
        let [null_check] = trapping(&func, Trap::NullFunctionReference)[..] else {
            panic!("one null check expected in {}", func.display());
        };
        assert_eq!(func.dfg.insts[null_check].opcode(), Opcode::Load);
    }

    #[test]
    fn return_call_ref_is_a_cranelift_tail_call() {
        let func = translate(
            r#"(module
                 (type $t (func (result i32)))
                 (func (param (ref $t)) (result i32)
                   (return_call_ref $t (local.get 0))))"#,
        );
        let [tail] = insts(&func, Opcode::ReturnCallIndirect)[..] else {
            panic!("one return_call_indirect expected in {}", func.display());
        };
        assert!(ends_its_block(&func, tail), "{}", func.display());
        assert!(
            trapping(&func, Trap::BadSignature).is_empty(),
            "{}",
            func.display()
        );
    }
}
