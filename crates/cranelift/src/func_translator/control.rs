//! Structured control flow: `block`, `loop`, `if`/`else`, `end`, the branches (with
//! `br_on_null` and `br_on_non_null`) and `return`, `unreachable`.

use super::{ControlFrame, Else, FrameKind, FuncTranslator, Result, block_args};
use crate::trap_code;
use cranelift_codegen::ir::{self, BlockCall, InstBuilder, JumpTableData};
use strata_environ::Trap;
use wasmparser::{BlockType, Operator};

impl FuncTranslator<'_, '_> {
    pub(super) fn push_frame(
        &mut self,
        kind: FrameKind,
        ty: BlockType,
        header: Option<ir::Block>,
    ) -> Result<()> {
        let (params, results) = self.block_type(ty)?;
        let destination = self.block_with_params(&results);
        let height = if self.reachable {
            self.stack.len() - params.len()
        } else {
            self.stack.len()
        };
        let if_params = match kind {
            FrameKind::If { .. } if self.reachable => self.top_n(params.len()).to_vec(),
            _ => Vec::new(),
        };
        self.frames.push(ControlFrame {
            kind,
            destination,
            header,
            num_params: params.len(),
            num_results: results.len(),
            height,
            reachable_at_start: self.reachable,
            exit_reached: false,
            if_params,
        });
        Ok(())
    }

    /// Ends the current block with the branch of an `if` just pushed, on `cond`, and
    /// continues in its true arm; returns where the false edge went.
    fn branch_into_if(&mut self, cond: ir::Value) -> Else {
        let frame = self.frames.last().expect("the if's frame");
        let then_block = self.builder.create_block();
        let dfg = &self.builder.func.dfg;
        let passes_through = frame.if_params.iter().map(|&v| dfg.value_type(v)).eq(dfg
            .block_params(frame.destination)
            .iter()
            .map(|&v| dfg.value_type(v)));
        let els = if passes_through {
            let args = block_args(&frame.if_params);
            let destination = frame.destination;
            let branch = self
                .builder
                .ins()
                .brif(cond, then_block, &[], destination, &args);
            Else::Direct(branch)
        } else {
            let else_block = self.builder.create_block();
            self.builder
                .ins()
                .brif(cond, then_block, &[], else_block, &[]);
            self.builder.seal_block(else_block);
            Else::Pending(else_block)
        };
        self.builder.seal_block(then_block);
        self.builder.switch_to_block(then_block);
        els
    }

    /// Where a branch to the label `depth` frames out goes and how many values it
    /// carries; notes that the frame's end is reached.
    pub(super) fn label_target(&mut self, depth: u32) -> (ir::Block, usize) {
        let i = self.frames.len() - 1 - depth as usize;
        if self.frames[i].header.is_none() {
            self.frames[i].exit_reached = true;
        }
        self.frames[i].branch_target()
    }

    /// Emits a jump from the current position to the frame `depth` levels out.
    pub(super) fn branch(&mut self, depth: u32) {
        let (target, n) = self.label_target(depth);
        let args = block_args(self.top_n(n));
        self.builder.ins().jump(target, &args);
    }

    /// Branches to the label `depth` frames out, with the values it takes from the top
    /// of the stack, if `cond` is nonzero (`when_nonzero`) or zero (otherwise); else
    /// goes on in a new block.
    fn branch_on(&mut self, cond: ir::Value, depth: u32, when_nonzero: bool) {
        let (target, n) = self.label_target(depth);
        let args = block_args(self.top_n(n));
        let next = self.builder.create_block();
        if when_nonzero {
            self.builder.ins().brif(cond, target, &args, next, &[]);
        } else {
            self.builder.ins().brif(cond, next, &[], target, &args);
        }
        self.builder.seal_block(next);
        self.builder.switch_to_block(next);
    }

    pub(super) fn control(&mut self, op: &Operator<'_>) -> Result<bool> {
        match *op {
            Operator::Block { blockty } => self.push_frame(FrameKind::Block, blockty, None)?,
            Operator::Loop { blockty } => {
                let (params, _) = self.block_type(blockty)?;
                let header = self.block_with_params(&params);
                if self.reachable {
                    let args = block_args(self.top_n(params.len()));
                    self.builder.ins().jump(header, &args);
                    let len = self.stack.len();
                    self.stack.truncate(len - params.len());
                    self.builder.switch_to_block(header);
                    self.stack
                        .extend_from_slice(self.builder.block_params(header));
                    self.loop_header_checks();
                }
                self.push_frame(FrameKind::Loop, blockty, Some(header))?;
            }
            Operator::If { blockty } => {
                let cond = self.reachable.then(|| self.pop());
                self.push_frame(FrameKind::If(Else::Done), blockty, None)?;
                if let Some(cond) = cond {
                    let els = self.branch_into_if(cond);
                    self.frames.last_mut().expect("just pushed").kind = FrameKind::If(els);
                }
            }
            Operator::Else => {
                let frame = self.frames.last_mut().expect("validated");
                if self.reachable {
                    frame.exit_reached = true;
                    let (dest, n) = (frame.destination, frame.num_results);
                    let args = block_args(&self.stack[self.stack.len() - n..]);
                    self.builder.ins().jump(dest, &args);
                }
                let frame = self.frames.last_mut().expect("validated");
                let FrameKind::If(els) = &mut frame.kind else {
                    unreachable!("validated")
                };
                let els = std::mem::replace(els, Else::Done);
                self.stack.truncate(frame.height);
                self.reachable = frame.reachable_at_start;
                let (destination, if_params) = (frame.destination, frame.if_params.clone());
                let else_block = match els {
                    Else::Pending(block) => {
                        self.stack.extend_from_slice(&if_params);
                        block
                    }
                    Else::Direct(branch) => {
                        let types: Vec<ir::Type> = if_params
                            .iter()
                            .map(|&v| self.builder.func.dfg.value_type(v))
                            .collect();
                        let block = self.block_with_params(&types);
                        self.builder
                            .change_jump_destination(branch, destination, block);
                        self.builder.seal_block(block);
                        self.stack
                            .extend_from_slice(self.builder.block_params(block));
                        block
                    }
                    Else::Done => return Ok(true),
                };
                self.builder.switch_to_block(else_block);
            }
            Operator::End => self.end_frame(),
            Operator::TryTable { ref try_table } => self.try_table(try_table)?,
            Operator::Throw { tag_index } => {
                if self.reachable {
                    self.throw(tag_index);
                }
            }
            Operator::ThrowRef => {
                if self.reachable {
                    self.throw_ref();
                }
            }
            Operator::Br { relative_depth } => {
                if self.reachable {
                    self.branch(relative_depth);
                    self.reachable = false;
                }
            }
            Operator::BrIf { relative_depth } => {
                if self.reachable {
                    let cond = self.pop();
                    self.branch_on(cond, relative_depth, true);
                }
            }
            // A null reference is zero, so the reference itself is the condition.
            Operator::BrOnNull { relative_depth } => {
                if self.reachable {
                    let r = self.pop();
                    self.branch_on(r, relative_depth, false);
                    self.push(r);
                }
            }
            Operator::BrOnNonNull { relative_depth } => {
                if self.reachable {
                    // The label takes the reference too, so it stays on the stack for
                    // the branch and is dropped when execution falls through.
                    let r = *self.stack.last().expect("validated operand");
                    self.branch_on(r, relative_depth, true);
                    self.pop();
                }
            }
            Operator::BrTable { ref targets } => {
                if self.reachable {
                    let index = self.pop();
                    let mut calls = Vec::with_capacity(targets.len() as usize);
                    let mut depths = Vec::with_capacity(targets.len() as usize);
                    for depth in targets.targets() {
                        depths.push(depth?);
                    }
                    let default = targets.default();
                    for &depth in depths.iter().chain([&default]) {
                        let (target, n) = self.label_target(depth);
                        let args = block_args(self.top_n(n));
                        let pool = &mut self.builder.func.dfg.value_lists;
                        calls.push(BlockCall::new(target, args, pool));
                    }
                    let default_call = calls.pop().expect("br_table has a default");
                    let table = self
                        .builder
                        .create_jump_table(JumpTableData::new(default_call, &calls));
                    self.builder.ins().br_table(index, table);
                    self.reachable = false;
                }
            }
            Operator::Return => {
                if self.reachable {
                    self.fuel_save();
                    let n = self.frames[0].num_results;
                    let values = self.top_n(n).to_vec();
                    self.builder.ins().return_(&values);
                    self.reachable = false;
                }
            }
            Operator::Unreachable => {
                if self.reachable {
                    self.builder
                        .ins()
                        .trap(trap_code(Trap::UnreachableCodeReached));
                    self.reachable = false;
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub(super) fn end_frame(&mut self) {
        let frame = self.frames.pop().expect("validated");
        if let FrameKind::Loop = frame.kind {
            let header = frame.header.expect("loops have headers");
            if frame.reachable_at_start {
                self.builder.seal_block(header);
            }
            // Falling out of a loop continues in the same block with its results.
            if self.reachable {
                let results = self.stack.split_off(self.stack.len() - frame.num_results);
                self.stack.truncate(frame.height);
                self.stack.extend(results);
            } else {
                self.stack.truncate(frame.height);
            }
            return;
        }
        let mut exit_reached = frame.exit_reached;
        if self.reachable {
            let args = block_args(self.top_n(frame.num_results));
            self.builder.ins().jump(frame.destination, &args);
            exit_reached = true;
        }
        // No `else`: the false branch passes the parameters through as results.
        match frame.kind {
            FrameKind::If(Else::Pending(else_block)) => {
                self.builder.switch_to_block(else_block);
                let args = block_args(&frame.if_params);
                self.builder.ins().jump(frame.destination, &args);
                exit_reached = true;
            }
            FrameKind::If(Else::Direct(_)) => exit_reached = true,
            FrameKind::TryTable => {
                let scope = self.tries.pop().expect("each try_table has its scope");
                if scope.used {
                    self.land(scope);
                }
            }
            _ => {}
        }
        self.stack.truncate(frame.height);
        self.reachable = exit_reached;
        if exit_reached {
            self.builder.switch_to_block(frame.destination);
            self.builder.seal_block(frame.destination);
            self.stack
                .extend_from_slice(self.builder.block_params(frame.destination));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::translate;

    /// The blocks of `func` without parameters that hold nothing but a jump, as an
    /// empty else arm would be.
    fn jump_only_blocks(func: &cranelift_codegen::ir::Function) -> usize {
        func.layout
            .blocks()
            .filter(|&b| func.dfg.num_block_params(b) == 0)
            .filter(|&b| {
                let mut insts = func.layout.block_insts(b);
                let first = insts.next();
                insts.next().is_none()
                    && first.is_some_and(|i| {
                        func.dfg.insts[i].opcode() == cranelift_codegen::ir::Opcode::Jump
                    })
            })
            .count()
    }

    #[test]
    fn an_if_without_else_branches_straight_past_its_end() {
        // With and without parameters, which then pass through as the results.
        for body in [
            "(if (local.get 0) (then (local.set 0 (i32.const 7))))",
            "(local.get 0) (if (param i32) (result i32) (local.get 0) (then (i32.add (i32.const 1))))
             (local.set 0)",
        ] {
            let func = translate(&format!(
                "(module (func (param i32) (result i32) {body} (local.get 0)))"
            ));
            assert_eq!(jump_only_blocks(&func), 0, "{body}: {}", func.display());
        }
        // With an `else`, the false edge is redirected to the else arm.
        let func = translate(
            "(module (func (param i32) (result i32)
               (local.get 0)
               (if (param i32) (result i32) (local.get 0)
                 (then (i32.add (i32.const 1)))
                 (else (i32.sub (i32.const 1))))))",
        );
        let text = func.display().to_string();
        assert!(text.contains("iadd") && text.contains("isub"), "{text}");
        assert_eq!(jump_only_blocks(&func), 0, "{text}");
    }

    #[test]
    fn br_on_null_and_br_on_non_null_branch_on_the_reference_itself() {
        use super::super::testing::insts;
        use cranelift_codegen::ir::{Opcode, types};
        // `br_on_null` takes the reference off for its branch; `br_on_non_null` takes
        // it to the label.
        let blocks = [
            (
                "br_on_null",
                "(block $l (br_on_null $l (local.get 0)) (drop))",
            ),
            (
                "br_on_non_null",
                "(drop (block $l (result (ref $t)) (br_on_non_null $l (local.get 0)) \
                 (return (i32.const 1))))",
            ),
        ];
        for (op, body) in blocks {
            let func = translate(&format!(
                r#"(module
                     (type $t (func))
                     (func (param (ref null $t)) (result i32)
                       {body}
                       (i32.const 0)))"#
            ));
            let f = func.display();
            let [brif] = insts(&func, Opcode::Brif)[..] else {
                panic!("one brif expected for {op} in {f}");
            };
            let cond = func.dfg.inst_args(brif)[0];
            assert_eq!(func.dfg.value_type(cond), types::I64, "{op}: {f}");
            assert!(insts(&func, Opcode::Icmp).is_empty(), "{op}: {f}");
        }
    }
}
