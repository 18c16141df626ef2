//! Fuel metering and epoch checks: how compiled code lets the embedder stop it.
//!
//! Fuel: the store context's `fuel_consumed` counts up from minus the fuel left. A
//! function keeps the counter in a variable, adds each straight-line run's cost before
//! the run's closing branch, writes it back before calls and returns (so callees and
//! the host see it) and reads it again after calls. At function entry and at every loop
//! header a counter at zero or above calls the cold `out_of_gas` libcall, which refills
//! the counter or makes the code trap.
//!
//! Epochs: at function entry and at every loop header, the engine's epoch is compared
//! with the store's deadline; once reached, the cold `new_epoch` libcall moves the
//! deadline or makes the code trap.

use super::bulk::Arg;
use super::{FuncEnvironment, constant_field, offset};
use crate::trap_code;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value, condcodes::IntCC, types};
use cranelift_frontend::{FunctionBuilder, Variable};
use strata_environ::{BuiltinFunctionIndex, Trap};

/// A function's fuel counter while it is being translated.
pub(crate) struct Fuel {
    /// The counter's current value (the store's `fuel_consumed`).
    var: Variable,
    /// The cost of the operators translated since the counter was last updated.
    pending: i64,
}

/// A function's copy of the store's epoch deadline, for its loop checks.
#[derive(Copy, Clone)]
pub(crate) struct EpochDeadline(Variable);

impl FuncEnvironment<'_> {
    /// The store context's address.
    fn store_context(&self, b: &mut FunctionBuilder) -> Value {
        let off = self.offsets.vmctx_store_context();
        self.load_ptr(b, constant_field(), self.vmctx, off)
    }

    /// Starts metering a function: reads the counter and checks it.
    pub(crate) fn fuel_function_entry(&self, b: &mut FunctionBuilder) -> Fuel {
        let var = b.declare_var(types::I64);
        let mut fuel = Fuel { var, pending: 0 };
        self.fuel_reload(b, &fuel);
        self.fuel_check(b, &mut fuel);
        fuel
    }

    /// Adds the cost of the operators translated since the last update to the counter.
    pub(crate) fn fuel_flush(&self, b: &mut FunctionBuilder, fuel: &mut Fuel) {
        if fuel.pending != 0 {
            let value = b.use_var(fuel.var);
            let value = b.ins().iadd_imm_s(value, fuel.pending);
            b.def_var(fuel.var, value);
            fuel.pending = 0;
        }
    }

    /// Counts `cost` more fuel for the straight-line run being translated.
    pub(crate) fn fuel_charge(fuel: &mut Fuel, cost: i64) {
        fuel.pending += cost;
    }

    /// Writes the counter (with everything charged so far) to the store context.
    pub(crate) fn fuel_save(&self, b: &mut FunctionBuilder, fuel: &mut Fuel) {
        self.fuel_flush(b, fuel);
        let ctx = self.store_context(b);
        let value = b.use_var(fuel.var);
        let off = offset(u32::from(self.offsets.vmstore_context_fuel_consumed()));
        b.ins().store(MemFlagsData::trusted(), value, ctx, off);
    }

    /// Reads the counter back from the store context, after code that may change it.
    pub(crate) fn fuel_reload(&self, b: &mut FunctionBuilder, fuel: &Fuel) {
        let ctx = self.store_context(b);
        let off = offset(u32::from(self.offsets.vmstore_context_fuel_consumed()));
        let value = b.ins().load(types::I64, MemFlagsData::trusted(), ctx, off);
        b.def_var(fuel.var, value);
    }

    /// Calls `out_of_gas` if the counter has reached zero.
    pub(crate) fn fuel_check(&self, b: &mut FunctionBuilder, fuel: &mut Fuel) {
        self.fuel_flush(b, fuel);
        let value = b.use_var(fuel.var);
        let exhausted = b
            .ins()
            .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, value, 0);
        self.cold_call_if(b, exhausted, |env, b| {
            env.fuel_save(b, fuel);
            env.stop_unless_resolved(b, BuiltinFunctionIndex::OutOfGas, Trap::OutOfFuel);
            env.fuel_reload(b, fuel);
        });
    }

    /// Checks the epoch at function entry, against the store's deadline; returns the
    /// function's copy of the deadline for its loops, which starts out as zero (so the
    /// first loop check reads the store's deadline).
    pub(crate) fn epoch_function_entry(&self, b: &mut FunctionBuilder) -> EpochDeadline {
        let ctx = self.store_context(b);
        let epoch = self.load_epoch(b);
        let deadline_off = offset(u32::from(self.offsets.vmstore_context_epoch_deadline()));
        let deadline = b
            .ins()
            .load(types::I64, MemFlagsData::trusted(), ctx, deadline_off);
        let reached = b
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, epoch, deadline);
        self.cold_call_if(b, reached, |env, b| {
            env.stop_unless_resolved(b, BuiltinFunctionIndex::NewEpoch, Trap::Interrupt);
        });
        let copy = EpochDeadline(b.declare_var(types::I64));
        let zero = b.ins().iconst(types::I64, 0);
        b.def_var(copy.0, zero);
        copy
    }

    /// The engine's current epoch.
    fn load_epoch(&self, b: &mut FunctionBuilder) -> Value {
        let ctx = self.store_context(b);
        let epoch_ptr = self.load_ptr(
            b,
            constant_field(),
            ctx,
            u32::from(self.offsets.vmstore_context_epoch_ptr()),
        );
        // The counter changes under us (another thread bumps it), so the load may not
        // be merged or hoisted; a plain load suffices, a late sighting only delays the
        // stop by one check.
        b.ins()
            .load(types::I64, MemFlagsData::trusted(), epoch_ptr, 0)
    }

    /// Reads the store's deadline into the function's copy.
    pub(crate) fn epoch_reload(&self, b: &mut FunctionBuilder, deadline: EpochDeadline) {
        let ctx = self.store_context(b);
        let off = offset(u32::from(self.offsets.vmstore_context_epoch_deadline()));
        let value = b.ins().load(types::I64, MemFlagsData::trusted(), ctx, off);
        b.def_var(deadline.0, value);
    }

    /// Calls `new_epoch` at a loop header if the engine's epoch has reached the store's
    /// deadline. The loop compares with the function's copy of the deadline (one load
    /// per iteration, like wasmtime's), and reads the store's again before calling out:
    /// the copy may be stale, as callees and the libcall move the deadline.
    pub(crate) fn epoch_check(&self, b: &mut FunctionBuilder, deadline: EpochDeadline) {
        let epoch = self.load_epoch(b);
        let copy = b.use_var(deadline.0);
        let reached = b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, epoch, copy);
        self.cold_call_if(b, reached, |env, b| {
            env.epoch_reload(b, deadline);
            let current = b.use_var(deadline.0);
            let reached = b
                .ins()
                .icmp(IntCC::UnsignedGreaterThanOrEqual, epoch, current);
            env.cold_call_if(b, reached, |env, b| {
                env.stop_unless_resolved(b, BuiltinFunctionIndex::NewEpoch, Trap::Interrupt);
                env.epoch_reload(b, deadline);
            });
        });
    }

    /// Calls a libcall that resolves a stop condition, trapping with `trap` if it
    /// reports `0`.
    fn stop_unless_resolved(
        &self,
        b: &mut FunctionBuilder,
        builtin: BuiltinFunctionIndex,
        trap: Trap,
    ) {
        let no_args: [Arg; 0] = [];
        let ok = self
            .libcall(b, builtin, &no_args, Some(types::I32))
            .expect("the libcall returns a status");
        b.ins().trapz(ok, trap_code(trap));
    }

    /// Emits `body` in a cold block entered when `condition` is nonzero, then continues
    /// after it.
    fn cold_call_if(
        &self,
        b: &mut FunctionBuilder,
        condition: Value,
        body: impl FnOnce(&Self, &mut FunctionBuilder),
    ) {
        let cold = b.create_block();
        let next = b.create_block();
        b.ins().brif(condition, cold, &[], next, &[]);
        b.switch_to_block(cold);
        b.seal_block(cold);
        b.set_cold_block(cold);
        body(self, b);
        b.ins().jump(next, &[]);
        b.switch_to_block(next);
        b.seal_block(next);
    }
}
