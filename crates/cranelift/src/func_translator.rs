//! Translation of one function body from wasm operators to Cranelift IR.
//!
//! The operand stack holds SSA values. Control frames remember where their branches go
//! and how deep the stack was when they began. Code after an unconditional branch is
//! unreachable: its operators are skipped until the enclosing frame ends, keeping only
//! the nesting of control frames.

mod calls;
mod control;
mod exceptions;
mod memory;
mod numeric;
mod reference;
mod simd;
#[cfg(test)]
pub(crate) mod testing;
mod variables;

use crate::func_environ::{BulkOp, EpochDeadline, Fuel, FuncEnvironment};
use crate::value_type;
use cranelift_codegen::ir::{
    self, BlockArg, InstBuilder, Value,
    types::{self, F32, F64},
};
use cranelift_frontend::{FunctionBuilder, Variable};
use strata_environ::{CompileError, TypeIndex, WasmValType, operator_fuel_cost};
use wasmparser::{BlockType, FuncValidator, FunctionBody, Operator, ValidatorResources};

#[derive(Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    Block,
    Loop,
    /// An `if`, with where its false branch goes.
    If(Else),
    /// A `try_table`: a block whose calls and throws land in the innermost
    /// [`TryScope`]'s landing block.
    TryTable,
}

/// The handlers of a `try_table` being translated.
struct TryScope {
    /// Where its calls' exceptions and its throws go, with the exception as the one
    /// parameter; filled in at the `try_table`'s end, if anything goes there.
    landing: ir::Block,
    /// Whether any call or throw goes to `landing`.
    used: bool,
    /// Its `catch` clauses in order.
    catches: Vec<wasmparser::Catch>,
}

/// Where the false branch of an `if` goes, until its `else` (if any) is reached.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Else {
    /// The `if`'s results are its parameters, so an `if` without `else` may pass them
    /// straight through: the false edge of this branch goes to the frame's
    /// destination, and an `else` redirects it to a block of its own. (An empty else
    /// block in between would be one more block and edge for the register allocator.)
    Direct(ir::Inst),
    /// The false edge goes to this block (without parameters), where the `else` arm
    /// starts or, with no `else`, the parameters are passed on as results.
    Pending(ir::Block),
    /// The `if` itself was unreachable, or its `else` has been reached.
    Done,
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
    /// The `try_table`s around the current position, innermost last.
    tries: Vec<TryScope>,
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
        tries: Vec::new(),
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
                | Operator::BrOnNull { .. }
                | Operator::BrOnNonNull { .. }
                | Operator::BrTable { .. }
                | Operator::Throw { .. }
                | Operator::ThrowRef
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
        if self.variable(op)?
            || self.call(op)?
            || self.memory(op)?
            || self.reference(op)?
            || self.simd(op)?
        {
            return Ok(());
        }
        self.numeric(op)
    }
}
