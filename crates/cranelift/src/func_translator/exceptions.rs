//! Exception handling: `try_table`, `throw` and `throw_ref`.
//!
//! A `try_table` gets a landing block taking the exception. Its calls are `try_call`s
//! that land there (see [`CallKind::Try`](crate::func_environ::CallKind)), and a
//! `throw` inside it jumps there directly, so an exception thrown and caught in one
//! function never leaves it. The landing code tries the `catch` clauses in order; when
//! none takes the exception it goes to the enclosing `try_table`'s landing block or,
//! outside any, out of the function through the `throw_ref` libcall.

use super::{FrameKind, FuncTranslator, Result, TryScope, block_args};
use cranelift_codegen::ir::{self, InstBuilder};
use strata_environ::TagIndex;
use wasmparser::{Catch, TryTable};

impl FuncTranslator<'_, '_> {
    pub(super) fn try_table(&mut self, try_table: &TryTable) -> Result<()> {
        self.push_frame(FrameKind::TryTable, try_table.ty, None)?;
        let landing = self.builder.create_block();
        self.builder.append_block_param(landing, self.ptr());
        self.tries.push(TryScope {
            landing,
            used: false,
            catches: try_table.catches.clone(),
        });
        Ok(())
    }

    /// `throw` of tag `tag_index` with its fields from the stack.
    pub(super) fn throw(&mut self, tag_index: u32) {
        let tag = TagIndex::from_u32(tag_index);
        let n = self.env.module.tag_type(tag).params().len();
        let fields = self.stack.split_off(self.stack.len() - n);
        self.fuel_save();
        let exn = self.env.exn_new(&mut self.builder, tag, &fields);
        self.throw_exn(exn);
        self.reachable = false;
    }

    /// `throw_ref`: throws the exception on top of the stack again; traps on null.
    pub(super) fn throw_ref(&mut self) {
        let exn = self.pop();
        self.env.check_exn_not_null(&mut self.builder, exn);
        self.fuel_save();
        self.throw_exn(exn);
        self.reachable = false;
    }

    /// Throws `exn` from here: to the innermost `try_table`'s landing block, or out of
    /// the function. Ends the current block.
    fn throw_exn(&mut self, exn: ir::Value) {
        match self.tries.last_mut() {
            Some(scope) => {
                scope.used = true;
                let landing = scope.landing;
                self.builder.ins().jump(landing, &block_args(&[exn]));
            }
            None => self.env.throw_out(&mut self.builder, exn),
        }
    }

    /// Fills in the landing block of `scope`, a `try_table` that just ended (its
    /// clauses' labels count from the frames around it, the current ones). The
    /// current block is already terminated.
    pub(super) fn land(&mut self, scope: TryScope) {
        let landing = scope.landing;
        self.builder.switch_to_block(landing);
        self.builder.seal_block(landing);
        self.builder.set_cold_block(landing);
        let exn = self.builder.block_params(landing)[0];
        // A callee may have used fuel or moved the epoch deadline before it threw.
        self.reload_after_call();
        let mut identity = None;
        for catch in &scope.catches {
            let (tag, label, with_ref) = match *catch {
                Catch::One { tag, label } => (Some(tag), label, false),
                Catch::OneRef { tag, label } => (Some(tag), label, true),
                Catch::All { label } => (None, label, false),
                Catch::AllRef { label } => (None, label, true),
            };
            let Some(tag) = tag.map(TagIndex::from_u32) else {
                let values: &[ir::Value] = if with_ref { &[exn] } else { &[] };
                self.jump_to_label(label, values);
                return;
            };
            let identity = match identity {
                Some(v) => v,
                None => *identity.insert(self.env.exn_tag(&mut self.builder, exn)),
            };
            let is = self.env.is_tag(&mut self.builder, identity, tag);
            let caught = self.builder.create_block();
            let next = self.builder.create_block();
            self.builder.set_cold_block(caught);
            self.builder.set_cold_block(next);
            self.builder.ins().brif(is, caught, &[], next, &[]);
            self.builder.seal_block(caught);
            self.builder.seal_block(next);
            self.builder.switch_to_block(caught);
            let mut values = self.env.exn_fields(&mut self.builder, tag, exn);
            if with_ref {
                values.push(exn);
            }
            self.jump_to_label(label, &values);
            self.builder.switch_to_block(next);
        }
        // No clause took it: on to the enclosing handlers.
        self.throw_exn(exn);
    }

    /// Jumps to the label `depth` frames out with `values`.
    fn jump_to_label(&mut self, depth: u32, values: &[ir::Value]) {
        let (target, _) = self.label_target(depth);
        self.builder.ins().jump(target, &block_args(values));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{insts, translate};
    use cranelift_codegen::ir::Opcode;

    #[test]
    fn only_calls_inside_a_try_table_become_try_calls() {
        let func = translate(
            r#"(module
                 (tag $e (param i32))
                 (func (param i32) (result i32)
                   (drop (call $f (local.get 0)))
                   (block $h (result i32)
                     (try_table (result i32) (catch $e $h) (call $f (local.get 0)))))
                 (func $f (param i32) (result i32) (local.get 0)))"#,
        );
        let text = func.display();
        assert_eq!(insts(&func, Opcode::TryCall).len(), 1, "{text}");
        // The call outside is an ordinary call: nothing is registered for it.
        assert_eq!(insts(&func, Opcode::Call).len(), 1, "{text}");
    }

    #[test]
    fn a_throw_caught_in_its_own_function_jumps_to_the_handler() {
        let func = translate(
            r#"(module
                 (tag $e (param i32))
                 (func (result i32)
                   (block $h (result i32)
                     (try_table (catch $e $h) (throw $e (i32.const 3)))
                     (i32.const 0))))"#,
        );
        let text = func.display();
        // One libcall allocates the exception; none throws it, since the landing
        // code takes it and, if the tag does not match, throws it out.
        assert_eq!(insts(&func, Opcode::CallIndirect).len(), 2, "{text}");
        assert!(insts(&func, Opcode::TryCall).is_empty(), "{text}");
        assert!(insts(&func, Opcode::TryCallIndirect).is_empty(), "{text}");
    }
}
