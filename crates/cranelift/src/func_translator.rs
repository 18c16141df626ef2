//! Translation of one function body from wasm operators to Cranelift IR.
//!
//! The operand stack holds SSA values. Control frames remember where their branches go
//! and how deep the stack was when they began. Code after an unconditional branch is
//! unreachable: its operators are skipped until the enclosing frame ends, keeping only
//! the nesting of control frames.

mod simd;
#[cfg(test)]
pub(crate) mod testing;

use crate::func_environ::{BulkOp, EpochDeadline, Fuel, FuncEnvironment};
use crate::{trap_code, value_type};
use cranelift_codegen::ir::{
    self, BlockArg, BlockCall, InstBuilder, JumpTableData, MemFlagsData, Value,
    condcodes::{FloatCC, IntCC},
    types::{self, F32, F64, I8, I16, I32, I64},
};
use cranelift_frontend::{FunctionBuilder, Variable};
use strata_environ::{
    CompileError, DataIndex, ElemIndex, FuncIndex, GlobalIndex, MemoryIndex, TableIndex, Trap,
    TypeIndex, WasmValType, operator_fuel_cost,
};
use wasmparser::{BlockType, FuncValidator, FunctionBody, MemArg, Operator, ValidatorResources};

#[derive(Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    Block,
    Loop,
    /// An `if`; `else_block` is where the false branch starts, `None` once `else` is seen.
    If {
        else_block: Option<ir::Block>,
    },
}

struct ControlFrame {
    kind: FrameKind,
    /// Where execution continues after `end`, with one parameter per result.
    destination: ir::Block,
    /// For loops, the header (with one parameter per loop parameter).
    header: Option<ir::Block>,
    num_params: usize,
    num_results: usize,
    /// The operand stack height below this frame's parameters.
    height: usize,
    /// Whether code at the start of the frame was reachable.
    reachable_at_start: bool,
    /// Whether anything reaches `destination`.
    exit_reached: bool,
    /// The parameter values at the start of an `if`, for its `else` arm.
    if_params: Vec<Value>,
}

impl ControlFrame {
    /// The block a branch to this frame goes to and how many values it carries.
    fn branch_target(&self) -> (ir::Block, usize) {
        match self.header {
            Some(header) => (header, self.num_params),
            None => (self.destination, self.num_results),
        }
    }
}

fn block_args(values: &[Value]) -> Vec<BlockArg> {
    values.iter().map(|&v| BlockArg::Value(v)).collect()
}

/// Translates wasm function bodies into Cranelift IR.
pub(crate) struct FuncTranslator<'a, 'b> {
    env: FuncEnvironment<'a>,
    builder: FunctionBuilder<'b>,
    validator: &'b mut FuncValidator<ValidatorResources>,
    stack: Vec<Value>,
    frames: Vec<ControlFrame>,
    locals: Vec<(Variable, ir::Type)>,
    reachable: bool,
    /// The fuel counter, with fuel consumption on.
    fuel: Option<Fuel>,
    /// The function's copy of the epoch deadline, with epoch interruption.
    epoch: Option<EpochDeadline>,
}

type Result<T> = core::result::Result<T, CompileError>;

fn unsupported(op: &Operator<'_>) -> CompileError {
    CompileError::Unsupported(format!("operator {op:?}"))
}

/// Translates `body` into the function `builder` is building, validating it as it goes.
pub(crate) fn translate_function(
    env: FuncEnvironment<'_>,
    builder: FunctionBuilder<'_>,
    frontend: cranelift_codegen::isa::TargetFrontendConfig,
    body: &FunctionBody<'_>,
    validator: &mut FuncValidator<ValidatorResources>,
    wasm_params: &[WasmValType],
    wasm_results: &[WasmValType],
) -> Result<()> {
    let mut builder = builder;
    let entry = builder.create_block();
    builder.append_block_params_for_function_params(entry);
    builder.switch_to_block(entry);
    builder.seal_block(entry);
    let mut env = env;
    env.vmctx = builder.block_params(entry)[0];
    let mut t = FuncTranslator {
        env,
        builder,
        validator,
        stack: Vec::new(),
        frames: Vec::new(),
        locals: Vec::new(),
        reachable: true,
        fuel: None,
        epoch: None,
    };
    t.translate(body, wasm_params, wasm_results)?;
    t.builder.finalize(frontend);
    Ok(())
}

impl FuncTranslator<'_, '_> {
    fn ptr(&self) -> ir::Type {
        self.env.pointer
    }

    fn wasm_type(&self, ty: wasmparser::ValType) -> Result<ir::Type> {
        let ty = WasmValType::from_wasmparser(ty)
            .ok_or_else(|| CompileError::Unsupported(format!("value type {ty:?}")))?;
        Ok(value_type(ty, self.ptr()))
    }

    fn translate(
        &mut self,
        body: &FunctionBody<'_>,
        params: &[WasmValType],
        results: &[WasmValType],
    ) -> Result<()> {
        let entry = self
            .builder
            .current_block()
            .expect("the entry block is current");
        let param_values = self.builder.block_params(entry)[2..].to_vec();
        let pointer = self.env.pointer;
        for (&value, &ty) in param_values.iter().zip(params) {
            let ty = value_type(ty, pointer);
            let var = self.builder.declare_var(ty);
            self.builder.def_var(var, value);
            self.locals.push((var, ty));
        }

        let mut reader = body.get_binary_reader();
        let local_groups = reader.read_var_u32()?;
        for _ in 0..local_groups {
            let offset = reader.original_position();
            let count = reader.read_var_u32()?;
            let ty = reader.read()?;
            self.validator.define_locals(offset, count, ty)?;
            let ty = self.wasm_type(ty)?;
            let zero = self.zero(ty);
            for _ in 0..count {
                let var = self.builder.declare_var(ty);
                self.builder.def_var(var, zero);
                self.locals.push((var, ty));
            }
        }

        if self.env.tunables.consume_fuel {
            self.fuel = Some(self.env.fuel_function_entry(&mut self.builder));
        }
        if self.env.tunables.epoch_interruption {
            self.epoch = Some(self.env.epoch_function_entry(&mut self.builder));
        }

        let exit = self.builder.create_block();
        for &ty in results {
            self.builder
                .append_block_param(exit, value_type(ty, pointer));
        }
        self.frames.push(ControlFrame {
            kind: FrameKind::Block,
            destination: exit,
            header: None,
            num_params: 0,
            num_results: results.len(),
            height: 0,
            reachable_at_start: true,
            exit_reached: false,
            if_params: Vec::new(),
        });

        reader.set_features(*self.validator.features());
        let mut reader = wasmparser::OperatorsReader::new(reader);
        while !reader.eof() {
            let offset = reader.original_position();
            let op = reader.read()?;
            self.validator.op(offset, &op)?;
            self.builder.set_srcloc(ir::SourceLoc::new(
                u32::try_from(offset).unwrap_or(u32::MAX),
            ));
            self.operator(&op)?;
        }
        reader.finish()?;

        // The final `end` left the exit block's parameters on the stack.
        if self.reachable {
            self.fuel_save();
            let values = std::mem::take(&mut self.stack);
            self.builder.ins().return_(&values);
        }
        Ok(())
    }

    fn zero(&mut self, ty: ir::Type) -> Value {
        let ins = self.builder.ins();
        match ty {
            F32 => ins.f32const(0.0),
            F64 => ins.f64const(0.0),
            types::I8X16 => {
                let zero = ins.iconst(types::I8, 0);
                self.builder.ins().splat(types::I8X16, zero)
            }
            ty => ins.iconst(ty, 0),
        }
    }

    fn pop(&mut self) -> Value {
        self.stack
            .pop()
            .expect("the validator checked the operand stack")
    }

    fn pop2(&mut self) -> (Value, Value) {
        let b = self.pop();
        let a = self.pop();
        (a, b)
    }

    /// Pops three operands, returned in stack order (the deepest first).
    fn pop3(&mut self) -> [Value; 3] {
        let c = self.pop();
        let (a, b) = self.pop2();
        [a, b, c]
    }

    /// A bulk table or memory operation on the top three operands.
    fn bulk(&mut self, op: BulkOp) {
        let operands = self.pop3();
        self.env.bulk(&mut self.builder, op, operands);
    }

    fn push(&mut self, v: Value) {
        self.stack.push(v);
    }

    fn top_n(&self, n: usize) -> &[Value] {
        &self.stack[self.stack.len() - n..]
    }

    fn block_type(&self, ty: BlockType) -> Result<(Vec<ir::Type>, Vec<ir::Type>)> {
        Ok(match ty {
            BlockType::Empty => (vec![], vec![]),
            BlockType::Type(t) => (vec![], vec![self.wasm_type(t)?]),
            BlockType::FuncType(index) => {
                let ty = &self.env.module.types[TypeIndex::from_u32(index)];
                let p = self.ptr();
                (
                    ty.params().iter().map(|&t| value_type(t, p)).collect(),
                    ty.results().iter().map(|&t| value_type(t, p)).collect(),
                )
            }
        })
    }

    fn block_with_params(&mut self, tys: &[ir::Type]) -> ir::Block {
        let block = self.builder.create_block();
        for &ty in tys {
            self.builder.append_block_param(block, ty);
        }
        block
    }

    fn push_frame(
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

    /// Emits a jump from the current position to the frame `depth` levels out.
    fn branch(&mut self, depth: u32) {
        let i = self.frames.len() - 1 - depth as usize;
        let (target, n) = self.frames[i].branch_target();
        if self.frames[i].header.is_none() {
            self.frames[i].exit_reached = true;
        }
        let args = block_args(self.top_n(n));
        self.builder.ins().jump(target, &args);
    }

    fn control(&mut self, op: &Operator<'_>) -> Result<bool> {
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
                let else_block = self.builder.create_block();
                if self.reachable {
                    let cond = self.pop();
                    let then_block = self.builder.create_block();
                    self.builder
                        .ins()
                        .brif(cond, then_block, &[], else_block, &[]);
                    self.builder.seal_block(then_block);
                    self.builder.seal_block(else_block);
                    self.builder.switch_to_block(then_block);
                }
                self.push_frame(
                    FrameKind::If {
                        else_block: Some(else_block),
                    },
                    blockty,
                    None,
                )?;
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
                let FrameKind::If { else_block } = &mut frame.kind else {
                    unreachable!("validated")
                };
                let else_block = else_block.take().expect("validated: one else per if");
                self.stack.truncate(frame.height);
                self.stack.extend_from_slice(&frame.if_params);
                self.reachable = frame.reachable_at_start;
                if self.reachable {
                    self.builder.switch_to_block(else_block);
                }
            }
            Operator::End => self.end_frame(),
            Operator::Br { relative_depth } => {
                if self.reachable {
                    self.branch(relative_depth);
                    self.reachable = false;
                }
            }
            Operator::BrIf { relative_depth } => {
                if self.reachable {
                    let cond = self.pop();
                    let i = self.frames.len() - 1 - relative_depth as usize;
                    let (target, n) = self.frames[i].branch_target();
                    if self.frames[i].header.is_none() {
                        self.frames[i].exit_reached = true;
                    }
                    let args = block_args(self.top_n(n));
                    let next = self.builder.create_block();
                    self.builder.ins().brif(cond, target, &args, next, &[]);
                    self.builder.seal_block(next);
                    self.builder.switch_to_block(next);
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
                        let i = self.frames.len() - 1 - depth as usize;
                        let (target, n) = self.frames[i].branch_target();
                        if self.frames[i].header.is_none() {
                            self.frames[i].exit_reached = true;
                        }
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

    fn end_frame(&mut self) {
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
        if let FrameKind::If {
            else_block: Some(else_block),
        } = frame.kind
        {
            // No `else`: the false branch passes the parameters through as results.
            if frame.reachable_at_start {
                self.builder.switch_to_block(else_block);
                let args = block_args(&frame.if_params);
                self.builder.ins().jump(frame.destination, &args);
                exit_reached = true;
            }
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

    /// Charges `op`'s fuel; before an operator that may leave the straight-line run,
    /// adds the run's cost to the counter.
    fn meter(&mut self, op: &Operator<'_>) {
        let Some(fuel) = &mut self.fuel else { return };
        FuncEnvironment::fuel_charge(fuel, operator_fuel_cost(op));
        let leaves_run = matches!(
            op,
            Operator::Loop { .. }
                | Operator::If { .. }
                | Operator::Else
                | Operator::End
                | Operator::Br { .. }
                | Operator::BrIf { .. }
                | Operator::BrTable { .. }
        );
        if leaves_run {
            self.env.fuel_flush(&mut self.builder, fuel);
        }
    }

    /// Writes the fuel counter to the store context (before calls and returns).
    fn fuel_save(&mut self) {
        if let Some(fuel) = &mut self.fuel {
            self.env.fuel_save(&mut self.builder, fuel);
        }
    }

    /// Reads back what a call may have changed: the fuel counter, and the epoch
    /// deadline (the callee may have moved it, or a host function set a new one).
    fn reload_after_call(&mut self) {
        if let Some(deadline) = self.epoch {
            self.env.epoch_reload(&mut self.builder, deadline);
        }
        if let Some(fuel) = &self.fuel {
            self.env.fuel_reload(&mut self.builder, fuel);
        }
    }

    /// The checks at the top of every loop iteration: fuel and epoch.
    fn loop_header_checks(&mut self) {
        if let Some(fuel) = &mut self.fuel {
            self.env.fuel_check(&mut self.builder, fuel);
        }
        if let Some(deadline) = self.epoch {
            self.env.epoch_check(&mut self.builder, deadline);
        }
    }

    fn operator(&mut self, op: &Operator<'_>) -> Result<()> {
        if self.reachable {
            self.meter(op);
        }
        if self.control(op)? || !self.reachable {
            return Ok(());
        }
        if self.variable_or_call(op)? || self.memory_op(op)? || self.simd(op)? {
            return Ok(());
        }
        self.numeric(op)
    }

    fn variable_or_call(&mut self, op: &Operator<'_>) -> Result<bool> {
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
            Operator::MemorySize { mem } => {
                let v = self
                    .env
                    .memory_size(&mut self.builder, MemoryIndex::from_u32(mem));
                self.push(v);
            }
            Operator::MemoryGrow { mem } => {
                let delta = self.pop();
                let v = self
                    .env
                    .memory_grow(&mut self.builder, MemoryIndex::from_u32(mem), delta);
                self.push(v);
            }
            _ => return self.reference_or_bulk(op),
        }
        Ok(true)
    }

    /// Reference instructions, table instructions and bulk memory.
    fn reference_or_bulk(&mut self, op: &Operator<'_>) -> Result<bool> {
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
            Operator::MemoryFill { mem } => {
                self.bulk(BulkOp::MemoryFill(MemoryIndex::from_u32(mem)))
            }
            Operator::MemoryCopy { dst_mem, src_mem } => self.bulk(BulkOp::MemoryCopy {
                dst: MemoryIndex::from_u32(dst_mem),
                src: MemoryIndex::from_u32(src_mem),
            }),
            Operator::MemoryInit { data_index, mem } => self.bulk(BulkOp::MemoryInit {
                memory: MemoryIndex::from_u32(mem),
                data: DataIndex::from_u32(data_index),
            }),
            Operator::DataDrop { data_index } => {
                self.env.data_drop(b, DataIndex::from_u32(data_index));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn memory_op(&mut self, op: &Operator<'_>) -> Result<bool> {
        use ir::Opcode as O;
        let (opcode, ty, size, memarg, store) = match *op {
            Operator::I32Load { memarg } => (O::Load, I32, 4, memarg, false),
            Operator::I64Load { memarg } => (O::Load, I64, 8, memarg, false),
            Operator::F32Load { memarg } => (O::Load, F32, 4, memarg, false),
            Operator::F64Load { memarg } => (O::Load, F64, 8, memarg, false),
            Operator::I32Load8S { memarg } => (O::Sload8, I32, 1, memarg, false),
            Operator::I32Load8U { memarg } => (O::Uload8, I32, 1, memarg, false),
            Operator::I32Load16S { memarg } => (O::Sload16, I32, 2, memarg, false),
            Operator::I32Load16U { memarg } => (O::Uload16, I32, 2, memarg, false),
            Operator::I64Load8S { memarg } => (O::Sload8, I64, 1, memarg, false),
            Operator::I64Load8U { memarg } => (O::Uload8, I64, 1, memarg, false),
            Operator::I64Load16S { memarg } => (O::Sload16, I64, 2, memarg, false),
            Operator::I64Load16U { memarg } => (O::Uload16, I64, 2, memarg, false),
            Operator::I64Load32S { memarg } => (O::Sload32, I64, 4, memarg, false),
            Operator::I64Load32U { memarg } => (O::Uload32, I64, 4, memarg, false),
            Operator::I32Store { memarg } | Operator::F32Store { memarg } => {
                (O::Store, I32, 4, memarg, true)
            }
            Operator::I64Store { memarg } | Operator::F64Store { memarg } => {
                (O::Store, I64, 8, memarg, true)
            }
            Operator::I32Store8 { memarg } | Operator::I64Store8 { memarg } => {
                (O::Istore8, I32, 1, memarg, true)
            }
            Operator::I32Store16 { memarg } | Operator::I64Store16 { memarg } => {
                (O::Istore16, I32, 2, memarg, true)
            }
            Operator::I64Store32 { memarg } => (O::Istore32, I64, 4, memarg, true),
            _ => return Ok(false),
        };
        let value = if store { Some(self.pop()) } else { None };
        let index = self.pop();
        let addr = self.heap_access(memarg, index, size);
        let flags = self.env.heap_flags();
        let ins = self.builder.ins();
        match value {
            Some(v) => {
                match opcode {
                    O::Store => ins.store(flags, v, addr.addr, addr.offset),
                    O::Istore8 => ins.istore8(flags, v, addr.addr, addr.offset),
                    O::Istore16 => ins.istore16(flags, v, addr.addr, addr.offset),
                    _ => ins.istore32(flags, v, addr.addr, addr.offset),
                };
            }
            None => {
                let v = match opcode {
                    O::Load => ins.load(ty, flags, addr.addr, addr.offset),
                    O::Sload8 => ins.sload8(ty, flags, addr.addr, addr.offset),
                    O::Uload8 => ins.uload8(ty, flags, addr.addr, addr.offset),
                    O::Sload16 => ins.sload16(ty, flags, addr.addr, addr.offset),
                    O::Uload16 => ins.uload16(ty, flags, addr.addr, addr.offset),
                    O::Sload32 => ins.sload32(flags, addr.addr, addr.offset),
                    _ => ins.uload32(flags, addr.addr, addr.offset),
                };
                self.push(v);
            }
        }
        Ok(true)
    }

    fn heap_access(
        &mut self,
        memarg: MemArg,
        index: Value,
        size: u8,
    ) -> crate::func_environ::HeapAddress {
        let wasmparser::MemArgTarget::Memory(memory) = memarg.target else {
            unreachable!("the validator accepts no GC arrays")
        };
        let memory = MemoryIndex::from_u32(memory);
        self.env
            .heap_address(&mut self.builder, memory, index, memarg.offset, size)
    }

    fn unop(&mut self, f: impl FnOnce(&mut FunctionBuilder<'_>, Value) -> Value) {
        let a = self.pop();
        let v = f(&mut self.builder, a);
        self.push(v);
    }

    fn binop(&mut self, f: impl FnOnce(&mut FunctionBuilder<'_>, Value, Value) -> Value) {
        let (a, b) = self.pop2();
        let v = f(&mut self.builder, a, b);
        self.push(v);
    }

    fn icmp(&mut self, cc: IntCC) {
        self.binop(|b, x, y| {
            let c = b.ins().icmp(cc, x, y);
            b.ins().uextend(I32, c)
        });
    }

    fn fcmp(&mut self, cc: FloatCC) {
        self.binop(|b, x, y| {
            let c = b.ins().fcmp(cc, x, y);
            b.ins().uextend(I32, c)
        });
    }

    fn eqz(&mut self) {
        self.unop(|b, x| {
            let c = b.ins().icmp_imm_s(IntCC::Equal, x, 0);
            b.ins().uextend(I32, c)
        });
    }

    /// Signed division and remainder: the divisor must not be zero, and for division
    /// `MIN / -1` overflows.
    fn signed_div(&mut self, ty: ir::Type, rem: bool) {
        self.binop(|b, x, y| {
            b.ins().trapz(y, trap_code(Trap::IntegerDivisionByZero));
            if rem {
                // `MIN % -1` is 0 in wasm; compute `x % 1` instead to avoid the overflow.
                let is_neg_one = b.ins().icmp_imm_s(IntCC::Equal, y, -1);
                let one = b.ins().iconst(ty, 1);
                let y = b.ins().select(is_neg_one, one, y);
                b.ins().srem(x, y)
            } else {
                let min = if ty == I32 {
                    i64::from(i32::MIN)
                } else {
                    i64::MIN
                };
                let is_neg_one = b.ins().icmp_imm_s(IntCC::Equal, y, -1);
                let is_min = b.ins().icmp_imm_s(IntCC::Equal, x, min);
                let overflow = b.ins().band(is_neg_one, is_min);
                b.ins().trapnz(overflow, trap_code(Trap::IntegerOverflow));
                b.ins().sdiv(x, y)
            }
        });
    }

    fn unsigned_div(&mut self, rem: bool) {
        self.binop(|b, x, y| {
            b.ins().trapz(y, trap_code(Trap::IntegerDivisionByZero));
            if rem {
                b.ins().urem(x, y)
            } else {
                b.ins().udiv(x, y)
            }
        });
    }

    fn sign_extend(&mut self, ty: ir::Type, from: ir::Type) {
        self.unop(|b, x| {
            let narrow = b.ins().ireduce(from, x);
            b.ins().sextend(ty, narrow)
        });
    }

    fn reinterpret(&mut self, ty: ir::Type) {
        self.unop(|b, x| b.ins().bitcast(ty, MemFlagsData::new(), x));
    }

    fn numeric(&mut self, op: &Operator<'_>) -> Result<()> {
        use Operator as O;
        match *op {
            O::I32Const { value } => {
                let v = self.builder.ins().iconst(I32, i64::from(value));
                self.push(v);
            }
            O::I64Const { value } => {
                let v = self.builder.ins().iconst(I64, value);
                self.push(v);
            }
            O::F32Const { value } => {
                let v = self
                    .builder
                    .ins()
                    .f32const(ir::immediates::Ieee32::with_bits(value.bits()));
                self.push(v);
            }
            O::F64Const { value } => {
                let v = self
                    .builder
                    .ins()
                    .f64const(ir::immediates::Ieee64::with_bits(value.bits()));
                self.push(v);
            }

            O::I32Eqz | O::I64Eqz => self.eqz(),
            O::I32Eq | O::I64Eq => self.icmp(IntCC::Equal),
            O::I32Ne | O::I64Ne => self.icmp(IntCC::NotEqual),
            O::I32LtS | O::I64LtS => self.icmp(IntCC::SignedLessThan),
            O::I32LtU | O::I64LtU => self.icmp(IntCC::UnsignedLessThan),
            O::I32GtS | O::I64GtS => self.icmp(IntCC::SignedGreaterThan),
            O::I32GtU | O::I64GtU => self.icmp(IntCC::UnsignedGreaterThan),
            O::I32LeS | O::I64LeS => self.icmp(IntCC::SignedLessThanOrEqual),
            O::I32LeU | O::I64LeU => self.icmp(IntCC::UnsignedLessThanOrEqual),
            O::I32GeS | O::I64GeS => self.icmp(IntCC::SignedGreaterThanOrEqual),
            O::I32GeU | O::I64GeU => self.icmp(IntCC::UnsignedGreaterThanOrEqual),

            O::F32Eq | O::F64Eq => self.fcmp(FloatCC::Equal),
            O::F32Ne | O::F64Ne => self.fcmp(FloatCC::NotEqual),
            O::F32Lt | O::F64Lt => self.fcmp(FloatCC::LessThan),
            O::F32Gt | O::F64Gt => self.fcmp(FloatCC::GreaterThan),
            O::F32Le | O::F64Le => self.fcmp(FloatCC::LessThanOrEqual),
            O::F32Ge | O::F64Ge => self.fcmp(FloatCC::GreaterThanOrEqual),

            O::I32Clz | O::I64Clz => self.unop(|b, x| b.ins().clz(x)),
            O::I32Ctz | O::I64Ctz => self.unop(|b, x| b.ins().ctz(x)),
            O::I32Popcnt | O::I64Popcnt => self.unop(|b, x| b.ins().popcnt(x)),
            O::I32Add | O::I64Add => self.binop(|b, x, y| b.ins().iadd(x, y)),
            O::I32Sub | O::I64Sub => self.binop(|b, x, y| b.ins().isub(x, y)),
            O::I32Mul | O::I64Mul => self.binop(|b, x, y| b.ins().imul(x, y)),
            O::I32DivS => self.signed_div(I32, false),
            O::I64DivS => self.signed_div(I64, false),
            O::I32RemS => self.signed_div(I32, true),
            O::I64RemS => self.signed_div(I64, true),
            O::I32DivU | O::I64DivU => self.unsigned_div(false),
            O::I32RemU | O::I64RemU => self.unsigned_div(true),
            O::I32And | O::I64And => self.binop(|b, x, y| b.ins().band(x, y)),
            O::I32Or | O::I64Or => self.binop(|b, x, y| b.ins().bor(x, y)),
            O::I32Xor | O::I64Xor => self.binop(|b, x, y| b.ins().bxor(x, y)),
            O::I32Shl | O::I64Shl => self.binop(|b, x, y| b.ins().ishl(x, y)),
            O::I32ShrS | O::I64ShrS => self.binop(|b, x, y| b.ins().sshr(x, y)),
            O::I32ShrU | O::I64ShrU => self.binop(|b, x, y| b.ins().ushr(x, y)),
            O::I32Rotl | O::I64Rotl => self.binop(|b, x, y| b.ins().rotl(x, y)),
            O::I32Rotr | O::I64Rotr => self.binop(|b, x, y| b.ins().rotr(x, y)),

            O::F32Abs | O::F64Abs => self.unop(|b, x| b.ins().fabs(x)),
            O::F32Neg | O::F64Neg => self.unop(|b, x| b.ins().fneg(x)),
            O::F32Ceil | O::F64Ceil => self.unop(|b, x| b.ins().ceil(x)),
            O::F32Floor | O::F64Floor => self.unop(|b, x| b.ins().floor(x)),
            O::F32Trunc | O::F64Trunc => self.unop(|b, x| b.ins().trunc(x)),
            O::F32Nearest | O::F64Nearest => self.unop(|b, x| b.ins().nearest(x)),
            O::F32Sqrt | O::F64Sqrt => self.unop(|b, x| b.ins().sqrt(x)),
            O::F32Add | O::F64Add => self.binop(|b, x, y| b.ins().fadd(x, y)),
            O::F32Sub | O::F64Sub => self.binop(|b, x, y| b.ins().fsub(x, y)),
            O::F32Mul | O::F64Mul => self.binop(|b, x, y| b.ins().fmul(x, y)),
            O::F32Div | O::F64Div => self.binop(|b, x, y| b.ins().fdiv(x, y)),
            O::F32Min | O::F64Min => self.binop(|b, x, y| b.ins().fmin(x, y)),
            O::F32Max | O::F64Max => self.binop(|b, x, y| b.ins().fmax(x, y)),
            O::F32Copysign | O::F64Copysign => self.binop(|b, x, y| b.ins().fcopysign(x, y)),

            O::I32WrapI64 => self.unop(|b, x| b.ins().ireduce(I32, x)),
            O::I64ExtendI32S => self.unop(|b, x| b.ins().sextend(I64, x)),
            O::I64ExtendI32U => self.unop(|b, x| b.ins().uextend(I64, x)),
            O::I32Extend8S => self.sign_extend(I32, I8),
            O::I32Extend16S => self.sign_extend(I32, I16),
            O::I64Extend8S => self.sign_extend(I64, I8),
            O::I64Extend16S => self.sign_extend(I64, I16),
            O::I64Extend32S => self.sign_extend(I64, I32),

            O::I32TruncF32S | O::I32TruncF64S => self.unop(|b, x| b.ins().fcvt_to_sint(I32, x)),
            O::I32TruncF32U | O::I32TruncF64U => self.unop(|b, x| b.ins().fcvt_to_uint(I32, x)),
            O::I64TruncF32S | O::I64TruncF64S => self.unop(|b, x| b.ins().fcvt_to_sint(I64, x)),
            O::I64TruncF32U | O::I64TruncF64U => self.unop(|b, x| b.ins().fcvt_to_uint(I64, x)),
            O::I32TruncSatF32S | O::I32TruncSatF64S => {
                self.unop(|b, x| b.ins().fcvt_to_sint_sat(I32, x));
            }
            O::I32TruncSatF32U | O::I32TruncSatF64U => {
                self.unop(|b, x| b.ins().fcvt_to_uint_sat(I32, x));
            }
            O::I64TruncSatF32S | O::I64TruncSatF64S => {
                self.unop(|b, x| b.ins().fcvt_to_sint_sat(I64, x));
            }
            O::I64TruncSatF32U | O::I64TruncSatF64U => {
                self.unop(|b, x| b.ins().fcvt_to_uint_sat(I64, x));
            }
            O::F32ConvertI32S | O::F32ConvertI64S => {
                self.unop(|b, x| b.ins().fcvt_from_sint(F32, x))
            }
            O::F32ConvertI32U | O::F32ConvertI64U => {
                self.unop(|b, x| b.ins().fcvt_from_uint(F32, x))
            }
            O::F64ConvertI32S | O::F64ConvertI64S => {
                self.unop(|b, x| b.ins().fcvt_from_sint(F64, x))
            }
            O::F64ConvertI32U | O::F64ConvertI64U => {
                self.unop(|b, x| b.ins().fcvt_from_uint(F64, x))
            }
            O::F32DemoteF64 => self.unop(|b, x| b.ins().fdemote(F32, x)),
            O::F64PromoteF32 => self.unop(|b, x| b.ins().fpromote(F64, x)),
            O::I32ReinterpretF32 => self.reinterpret(I32),
            O::I64ReinterpretF64 => self.reinterpret(I64),
            O::F32ReinterpretI32 => self.reinterpret(F32),
            O::F64ReinterpretI64 => self.reinterpret(F64),

            _ => return Err(unsupported(op)),
        }
        Ok(())
    }
}
