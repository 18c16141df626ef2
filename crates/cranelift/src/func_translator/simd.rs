//! Translation of the 128-bit SIMD operators: the fixed-width SIMD of Wasm 2.0 and the
//! relaxed SIMD of Wasm 3.0.
//!
//! Outside an operator a `v128` is always an `i8x16`: on the operand stack, in locals, in
//! block parameters and across calls. Each operator bitcasts its operands to the lane
//! shape it works on and bitcasts its result back to `i8x16`. Such bitcasts cost no
//! machine code, and a cast back to the shape a value came from reuses the original
//! value (see [`cast`]). Most operators are one Cranelift instruction, found in the
//! tables below; the others are short sequences described where they are built.
//!
//! A relaxed operator has a set of allowed results where the hosts' instructions
//! differ (see [`FuncTranslator::simd_relaxed`]). With
//! [`Tunables::relaxed_simd_deterministic`](strata_environ::Tunables) each gives the
//! one result wasmtime's deterministic mode gives, on every host; otherwise the
//! host's cheapest instruction whose results are all allowed.

use super::{FuncTranslator, Result};
use cranelift_codegen::ir::{
    Endianness, InstBuilder, MemFlagsData, Opcode, Type, Value, ValueDef,
    condcodes::{FloatCC, IntCC},
    types::{F32X4, F64X2, I8, I8X16, I16, I16X8, I32, I32X4, I64X2},
};
use cranelift_frontend::{FuncInstBuilder, FunctionBuilder};
use wasmparser::{MemArg, Operator};

/// Reinterprets the vector `v` as `shape`, lanes in little-endian order as in memory.
///
/// When `v` is itself a bitcast of a `shape` value, that value is returned instead, so
/// an operator's result cast to `i8x16` and the next operator's cast back cancel out
/// and the backend sees the two operators next to each other.
fn cast(b: &mut FunctionBuilder<'_>, shape: Type, v: Value) -> Value {
    let dfg = &b.func.dfg;
    if dfg.value_type(v) == shape {
        return v;
    }
    if let ValueDef::Result(inst, _) = dfg.value_def(v)
        && dfg.insts[inst].opcode() == Opcode::Bitcast
        && let [source] = *dfg.inst_args(inst)
        && dfg.value_type(source) == shape
    {
        return source;
    }
    let flags = MemFlagsData::new().with_endianness(Endianness::Little);
    b.ins().bitcast(shape, flags, v)
}

/// A vector constant of type `shape` with the given little-endian bytes.
fn vconst(b: &mut FunctionBuilder<'_>, shape: Type, bytes: &[u8; 16]) -> Value {
    let constant = b.func.dfg.constants.insert(bytes.to_vec().into());
    b.ins().vconst(shape, constant)
}

/// Operators that are one Cranelift instruction with one operand of the given shape;
/// the instruction's controlling type is the operand's type.
fn unary(op: &Operator<'_>) -> Option<(Opcode, Type)> {
    use Operator as O;
    Some(match *op {
        O::I8x16Abs => (Opcode::Iabs, I8X16),
        O::I16x8Abs => (Opcode::Iabs, I16X8),
        O::I32x4Abs => (Opcode::Iabs, I32X4),
        O::I64x2Abs => (Opcode::Iabs, I64X2),
        O::I8x16Neg => (Opcode::Ineg, I8X16),
        O::I16x8Neg => (Opcode::Ineg, I16X8),
        O::I32x4Neg => (Opcode::Ineg, I32X4),
        O::I64x2Neg => (Opcode::Ineg, I64X2),
        O::I8x16Popcnt => (Opcode::Popcnt, I8X16),
        O::V128Not => (Opcode::Bnot, I8X16),

        O::I16x8ExtendLowI8x16S => (Opcode::SwidenLow, I8X16),
        O::I16x8ExtendHighI8x16S => (Opcode::SwidenHigh, I8X16),
        O::I16x8ExtendLowI8x16U => (Opcode::UwidenLow, I8X16),
        O::I16x8ExtendHighI8x16U => (Opcode::UwidenHigh, I8X16),
        O::I32x4ExtendLowI16x8S => (Opcode::SwidenLow, I16X8),
        O::I32x4ExtendHighI16x8S => (Opcode::SwidenHigh, I16X8),
        O::I32x4ExtendLowI16x8U => (Opcode::UwidenLow, I16X8),
        O::I32x4ExtendHighI16x8U => (Opcode::UwidenHigh, I16X8),
        O::I64x2ExtendLowI32x4S => (Opcode::SwidenLow, I32X4),
        O::I64x2ExtendHighI32x4S => (Opcode::SwidenHigh, I32X4),
        O::I64x2ExtendLowI32x4U => (Opcode::UwidenLow, I32X4),
        O::I64x2ExtendHighI32x4U => (Opcode::UwidenHigh, I32X4),

        O::F32x4Abs => (Opcode::Fabs, F32X4),
        O::F64x2Abs => (Opcode::Fabs, F64X2),
        O::F32x4Neg => (Opcode::Fneg, F32X4),
        O::F64x2Neg => (Opcode::Fneg, F64X2),
        O::F32x4Sqrt => (Opcode::Sqrt, F32X4),
        O::F64x2Sqrt => (Opcode::Sqrt, F64X2),
        O::F32x4Ceil => (Opcode::Ceil, F32X4),
        O::F64x2Ceil => (Opcode::Ceil, F64X2),
        O::F32x4Floor => (Opcode::Floor, F32X4),
        O::F64x2Floor => (Opcode::Floor, F64X2),
        O::F32x4Trunc => (Opcode::Trunc, F32X4),
        O::F64x2Trunc => (Opcode::Trunc, F64X2),
        O::F32x4Nearest => (Opcode::Nearest, F32X4),
        O::F64x2Nearest => (Opcode::Nearest, F64X2),
        _ => return None,
    })
}

/// Operators that are one Cranelift instruction with two operands of the given shape;
/// the instruction's controlling type is the first operand's type. The wasm semantics
/// match Cranelift's exactly: `fmin`/`fmax` propagate NaN and order -0 below +0,
/// `swizzle` yields 0 for out-of-range indices, `unarrow` reads signed lanes.
fn binary(op: &Operator<'_>) -> Option<(Opcode, Type)> {
    use Operator as O;
    Some(match *op {
        O::V128And => (Opcode::Band, I8X16),
        O::V128Or => (Opcode::Bor, I8X16),
        O::V128Xor => (Opcode::Bxor, I8X16),
        O::I8x16Swizzle => (Opcode::Swizzle, I8X16),

        O::I8x16Add => (Opcode::Iadd, I8X16),
        O::I16x8Add => (Opcode::Iadd, I16X8),
        O::I32x4Add => (Opcode::Iadd, I32X4),
        O::I64x2Add => (Opcode::Iadd, I64X2),
        O::I8x16Sub => (Opcode::Isub, I8X16),
        O::I16x8Sub => (Opcode::Isub, I16X8),
        O::I32x4Sub => (Opcode::Isub, I32X4),
        O::I64x2Sub => (Opcode::Isub, I64X2),
        O::I16x8Mul => (Opcode::Imul, I16X8),
        O::I32x4Mul => (Opcode::Imul, I32X4),
        O::I64x2Mul => (Opcode::Imul, I64X2),
        O::I8x16AddSatS => (Opcode::SaddSat, I8X16),
        O::I16x8AddSatS => (Opcode::SaddSat, I16X8),
        O::I8x16AddSatU => (Opcode::UaddSat, I8X16),
        O::I16x8AddSatU => (Opcode::UaddSat, I16X8),
        O::I8x16SubSatS => (Opcode::SsubSat, I8X16),
        O::I16x8SubSatS => (Opcode::SsubSat, I16X8),
        O::I8x16SubSatU => (Opcode::UsubSat, I8X16),
        O::I16x8SubSatU => (Opcode::UsubSat, I16X8),
        O::I8x16MinS => (Opcode::Smin, I8X16),
        O::I16x8MinS => (Opcode::Smin, I16X8),
        O::I32x4MinS => (Opcode::Smin, I32X4),
        O::I8x16MinU => (Opcode::Umin, I8X16),
        O::I16x8MinU => (Opcode::Umin, I16X8),
        O::I32x4MinU => (Opcode::Umin, I32X4),
        O::I8x16MaxS => (Opcode::Smax, I8X16),
        O::I16x8MaxS => (Opcode::Smax, I16X8),
        O::I32x4MaxS => (Opcode::Smax, I32X4),
        O::I8x16MaxU => (Opcode::Umax, I8X16),
        O::I16x8MaxU => (Opcode::Umax, I16X8),
        O::I32x4MaxU => (Opcode::Umax, I32X4),
        O::I8x16AvgrU => (Opcode::AvgRound, I8X16),
        O::I16x8AvgrU => (Opcode::AvgRound, I16X8),
        O::I16x8Q15MulrSatS => (Opcode::SqmulRoundSat, I16X8),
        O::I8x16NarrowI16x8S => (Opcode::Snarrow, I16X8),
        O::I8x16NarrowI16x8U => (Opcode::Unarrow, I16X8),
        O::I16x8NarrowI32x4S => (Opcode::Snarrow, I32X4),
        O::I16x8NarrowI32x4U => (Opcode::Unarrow, I32X4),

        O::F32x4Add => (Opcode::Fadd, F32X4),
        O::F64x2Add => (Opcode::Fadd, F64X2),
        O::F32x4Sub => (Opcode::Fsub, F32X4),
        O::F64x2Sub => (Opcode::Fsub, F64X2),
        O::F32x4Mul => (Opcode::Fmul, F32X4),
        O::F64x2Mul => (Opcode::Fmul, F64X2),
        O::F32x4Div => (Opcode::Fdiv, F32X4),
        O::F64x2Div => (Opcode::Fdiv, F64X2),
        O::F32x4Min => (Opcode::Fmin, F32X4),
        O::F64x2Min => (Opcode::Fmin, F64X2),
        O::F32x4Max => (Opcode::Fmax, F32X4),
        O::F64x2Max => (Opcode::Fmax, F64X2),
        _ => return None,
    })
}

/// Shifts of a vector of the given shape by an `i32` amount. Cranelift takes the amount
/// modulo the lane width, as wasm does.
fn shift(op: &Operator<'_>) -> Option<(Opcode, Type)> {
    use Operator as O;
    Some(match *op {
        O::I8x16Shl => (Opcode::Ishl, I8X16),
        O::I16x8Shl => (Opcode::Ishl, I16X8),
        O::I32x4Shl => (Opcode::Ishl, I32X4),
        O::I64x2Shl => (Opcode::Ishl, I64X2),
        O::I8x16ShrS => (Opcode::Sshr, I8X16),
        O::I16x8ShrS => (Opcode::Sshr, I16X8),
        O::I32x4ShrS => (Opcode::Sshr, I32X4),
        O::I64x2ShrS => (Opcode::Sshr, I64X2),
        O::I8x16ShrU => (Opcode::Ushr, I8X16),
        O::I16x8ShrU => (Opcode::Ushr, I16X8),
        O::I32x4ShrU => (Opcode::Ushr, I32X4),
        O::I64x2ShrU => (Opcode::Ushr, I64X2),
        _ => return None,
    })
}

/// Lane-wise integer comparisons; each lane of the result is all ones or all zeros.
fn int_compare(op: &Operator<'_>) -> Option<(IntCC, Type)> {
    use IntCC as C;
    use Operator as O;
    Some(match *op {
        O::I8x16Eq => (C::Equal, I8X16),
        O::I16x8Eq => (C::Equal, I16X8),
        O::I32x4Eq => (C::Equal, I32X4),
        O::I64x2Eq => (C::Equal, I64X2),
        O::I8x16Ne => (C::NotEqual, I8X16),
        O::I16x8Ne => (C::NotEqual, I16X8),
        O::I32x4Ne => (C::NotEqual, I32X4),
        O::I64x2Ne => (C::NotEqual, I64X2),
        O::I8x16LtS => (C::SignedLessThan, I8X16),
        O::I16x8LtS => (C::SignedLessThan, I16X8),
        O::I32x4LtS => (C::SignedLessThan, I32X4),
        O::I64x2LtS => (C::SignedLessThan, I64X2),
        O::I8x16LtU => (C::UnsignedLessThan, I8X16),
        O::I16x8LtU => (C::UnsignedLessThan, I16X8),
        O::I32x4LtU => (C::UnsignedLessThan, I32X4),
        O::I8x16GtS => (C::SignedGreaterThan, I8X16),
        O::I16x8GtS => (C::SignedGreaterThan, I16X8),
        O::I32x4GtS => (C::SignedGreaterThan, I32X4),
        O::I64x2GtS => (C::SignedGreaterThan, I64X2),
        O::I8x16GtU => (C::UnsignedGreaterThan, I8X16),
        O::I16x8GtU => (C::UnsignedGreaterThan, I16X8),
        O::I32x4GtU => (C::UnsignedGreaterThan, I32X4),
        O::I8x16LeS => (C::SignedLessThanOrEqual, I8X16),
        O::I16x8LeS => (C::SignedLessThanOrEqual, I16X8),
        O::I32x4LeS => (C::SignedLessThanOrEqual, I32X4),
        O::I64x2LeS => (C::SignedLessThanOrEqual, I64X2),
        O::I8x16LeU => (C::UnsignedLessThanOrEqual, I8X16),
        O::I16x8LeU => (C::UnsignedLessThanOrEqual, I16X8),
        O::I32x4LeU => (C::UnsignedLessThanOrEqual, I32X4),
        O::I8x16GeS => (C::SignedGreaterThanOrEqual, I8X16),
        O::I16x8GeS => (C::SignedGreaterThanOrEqual, I16X8),
        O::I32x4GeS => (C::SignedGreaterThanOrEqual, I32X4),
        O::I64x2GeS => (C::SignedGreaterThanOrEqual, I64X2),
        O::I8x16GeU => (C::UnsignedGreaterThanOrEqual, I8X16),
        O::I16x8GeU => (C::UnsignedGreaterThanOrEqual, I16X8),
        O::I32x4GeU => (C::UnsignedGreaterThanOrEqual, I32X4),
        _ => return None,
    })
}

/// Lane-wise float comparisons; `ne` is unordered (true for NaN), the rest are ordered.
fn float_compare(op: &Operator<'_>) -> Option<(FloatCC, Type)> {
    use FloatCC as C;
    use Operator as O;
    Some(match *op {
        O::F32x4Eq => (C::Equal, F32X4),
        O::F64x2Eq => (C::Equal, F64X2),
        O::F32x4Ne => (C::NotEqual, F32X4),
        O::F64x2Ne => (C::NotEqual, F64X2),
        O::F32x4Lt => (C::LessThan, F32X4),
        O::F64x2Lt => (C::LessThan, F64X2),
        O::F32x4Gt => (C::GreaterThan, F32X4),
        O::F64x2Gt => (C::GreaterThan, F64X2),
        O::F32x4Le => (C::LessThanOrEqual, F32X4),
        O::F64x2Le => (C::LessThanOrEqual, F64X2),
        O::F32x4Ge => (C::GreaterThanOrEqual, F32X4),
        O::F64x2Ge => (C::GreaterThanOrEqual, F64X2),
        _ => return None,
    })
}

/// Emits a load of 8 bytes whose lanes widen to fill a vector.
type ExtendingLoad = for<'a, 'b> fn(FuncInstBuilder<'a, 'b>, MemFlagsData, Value, i32) -> Value;

/// How a SIMD memory operator moves data between memory and a vector.
#[derive(Clone, Copy)]
enum Access {
    /// `v128.load`: all 16 bytes.
    Load,
    /// `v128.store`: all 16 bytes.
    Store,
    /// `v128.loadNxM_{s,u}`: 8 bytes, each lane widened by this load.
    Extend(ExtendingLoad),
    /// `v128.loadN_splat`: one lane of this shape, copied into every lane.
    Splat(Type),
    /// `v128.loadN_zero`: one lane of this shape into lane 0, the other lanes zero.
    Zero(Type),
    /// `v128.loadN_lane`: one lane of this shape replaces the given lane.
    LoadLane(Type, u8),
    /// `v128.storeN_lane`: the given lane of this shape is stored.
    StoreLane(Type, u8),
}

/// The access a SIMD memory operator makes, and its immediate.
fn memory_access(op: &Operator<'_>) -> Option<(Access, MemArg)> {
    use Access as A;
    use Operator as O;
    Some(match *op {
        O::V128Load { memarg } => (A::Load, memarg),
        O::V128Store { memarg } => (A::Store, memarg),
        O::V128Load8x8S { memarg } => (A::Extend(|i, f, p, o| i.sload8x8(f, p, o)), memarg),
        O::V128Load8x8U { memarg } => (A::Extend(|i, f, p, o| i.uload8x8(f, p, o)), memarg),
        O::V128Load16x4S { memarg } => (A::Extend(|i, f, p, o| i.sload16x4(f, p, o)), memarg),
        O::V128Load16x4U { memarg } => (A::Extend(|i, f, p, o| i.uload16x4(f, p, o)), memarg),
        O::V128Load32x2S { memarg } => (A::Extend(|i, f, p, o| i.sload32x2(f, p, o)), memarg),
        O::V128Load32x2U { memarg } => (A::Extend(|i, f, p, o| i.uload32x2(f, p, o)), memarg),
        O::V128Load8Splat { memarg } => (A::Splat(I8X16), memarg),
        O::V128Load16Splat { memarg } => (A::Splat(I16X8), memarg),
        O::V128Load32Splat { memarg } => (A::Splat(I32X4), memarg),
        O::V128Load64Splat { memarg } => (A::Splat(I64X2), memarg),
        O::V128Load32Zero { memarg } => (A::Zero(I32X4), memarg),
        O::V128Load64Zero { memarg } => (A::Zero(I64X2), memarg),
        O::V128Load8Lane { memarg, lane } => (A::LoadLane(I8X16, lane), memarg),
        O::V128Load16Lane { memarg, lane } => (A::LoadLane(I16X8, lane), memarg),
        O::V128Load32Lane { memarg, lane } => (A::LoadLane(I32X4, lane), memarg),
        O::V128Load64Lane { memarg, lane } => (A::LoadLane(I64X2, lane), memarg),
        O::V128Store8Lane { memarg, lane } => (A::StoreLane(I8X16, lane), memarg),
        O::V128Store16Lane { memarg, lane } => (A::StoreLane(I16X8, lane), memarg),
        O::V128Store32Lane { memarg, lane } => (A::StoreLane(I32X4, lane), memarg),
        O::V128Store64Lane { memarg, lane } => (A::StoreLane(I64X2, lane), memarg),
        _ => return None,
    })
}

/// The number of bytes a lane of `shape` takes in memory.
fn lane_bytes(shape: Type) -> u8 {
    u8::try_from(shape.lane_bits() / 8).expect("lanes are at most 8 bytes")
}

impl FuncTranslator<'_, '_> {
    /// Translates `op` if it is a SIMD operator; returns whether it was one.
    pub(super) fn simd(&mut self, op: &Operator<'_>) -> Result<bool> {
        if let Some((access, memarg)) = memory_access(op) {
            self.simd_memory(access, memarg);
        } else if let Some((opcode, shape)) = unary(op) {
            let x = self.pop_as(shape);
            let (inst, dfg) = self.builder.ins().Unary(opcode, shape, x);
            let v = dfg.first_result(inst);
            self.push_v128(v);
        } else if let Some((opcode, shape)) = binary(op) {
            let (x, y) = self.pop2_as(shape);
            let (inst, dfg) = self.builder.ins().Binary(opcode, shape, x, y);
            let v = dfg.first_result(inst);
            self.push_v128(v);
        } else if let Some((opcode, shape)) = shift(op) {
            let amount = self.pop();
            let x = self.pop_as(shape);
            let (inst, dfg) = self.builder.ins().Binary(opcode, shape, x, amount);
            let v = dfg.first_result(inst);
            self.push_v128(v);
        } else if let Some((cc, shape)) = int_compare(op) {
            let (x, y) = self.pop2_as(shape);
            let v = self.builder.ins().icmp(cc, x, y);
            self.push_v128(v);
        } else if let Some((cc, shape)) = float_compare(op) {
            let (x, y) = self.pop2_as(shape);
            let v = self.builder.ins().fcmp(cc, x, y);
            self.push_v128(v);
        } else {
            return Ok(self.simd_lanes(op)
                || self.simd_reduce(op)
                || self.simd_compound(op)
                || self.simd_relaxed(op));
        }
        Ok(true)
    }

    /// Pops a `v128` and views it as `shape`.
    fn pop_as(&mut self, shape: Type) -> Value {
        let v = self.pop();
        cast(&mut self.builder, shape, v)
    }

    /// Pops two `v128`s (the second on top) and views both as `shape`.
    fn pop2_as(&mut self, shape: Type) -> (Value, Value) {
        let y = self.pop_as(shape);
        let x = self.pop_as(shape);
        (x, y)
    }

    /// Pops three `v128`s (the third on top) and views them as `shape`.
    fn pop3_as(&mut self, shape: Type) -> [Value; 3] {
        let z = self.pop_as(shape);
        let (x, y) = self.pop2_as(shape);
        [x, y, z]
    }

    /// Pushes the vector `v` as a `v128`.
    fn push_v128(&mut self, v: Value) {
        let v = cast(&mut self.builder, I8X16, v);
        self.push(v);
    }

    /// Pops the index operand of an access of `bytes` bytes and bounds-checks it;
    /// returns the address and the offset for the memory instruction.
    fn vector_address(&mut self, memarg: MemArg, bytes: u8) -> (Value, i32) {
        let index = self.pop();
        let addr = self.heap_access(memarg, index, bytes);
        (addr.addr, addr.offset)
    }

    /// Loads and stores: the operands are the address index, then for stores and lane
    /// loads the vector.
    fn simd_memory(&mut self, access: Access, memarg: MemArg) {
        let flags = self.env.heap_flags();
        let v = match access {
            Access::Store => {
                let v = self.pop();
                let (base, offset) = self.vector_address(memarg, 16);
                self.builder.ins().store(flags, v, base, offset);
                return;
            }
            Access::StoreLane(shape, lane) => {
                let vector = self.pop_as(shape);
                let (base, offset) = self.vector_address(memarg, lane_bytes(shape));
                let x = self.builder.ins().extractlane(vector, lane);
                self.builder.ins().store(flags, x, base, offset);
                return;
            }
            Access::LoadLane(shape, lane) => {
                let vector = self.pop_as(shape);
                let (base, offset) = self.vector_address(memarg, lane_bytes(shape));
                let x = self
                    .builder
                    .ins()
                    .load(shape.lane_type(), flags, base, offset);
                self.builder.ins().insertlane(vector, x, lane)
            }
            Access::Load => {
                let (base, offset) = self.vector_address(memarg, 16);
                self.builder.ins().load(I8X16, flags, base, offset)
            }
            Access::Extend(load) => {
                let (base, offset) = self.vector_address(memarg, 8);
                load(self.builder.ins(), flags, base, offset)
            }
            Access::Splat(shape) => {
                let (base, offset) = self.vector_address(memarg, lane_bytes(shape));
                let b = &mut self.builder;
                let x = b.ins().load(shape.lane_type(), flags, base, offset);
                b.ins().splat(shape, x)
            }
            Access::Zero(shape) => {
                let (base, offset) = self.vector_address(memarg, lane_bytes(shape));
                let b = &mut self.builder;
                let x = b.ins().load(shape.lane_type(), flags, base, offset);
                b.ins().scalar_to_vector(shape, x)
            }
        };
        self.push_v128(v);
    }

    /// Constants, splats, lane accesses and byte permutations.
    fn simd_lanes(&mut self, op: &Operator<'_>) -> bool {
        use Operator as O;
        match *op {
            O::V128Const { value } => {
                let v = vconst(&mut self.builder, I8X16, value.bytes());
                self.push(v);
            }
            O::I8x16Splat => self.splat(I8X16),
            O::I16x8Splat => self.splat(I16X8),
            O::I32x4Splat => self.splat(I32X4),
            O::I64x2Splat => self.splat(I64X2),
            O::F32x4Splat => self.splat(F32X4),
            O::F64x2Splat => self.splat(F64X2),
            O::I8x16ExtractLaneS { lane } => self.extract_lane(I8X16, lane, Some(true)),
            O::I8x16ExtractLaneU { lane } => self.extract_lane(I8X16, lane, Some(false)),
            O::I16x8ExtractLaneS { lane } => self.extract_lane(I16X8, lane, Some(true)),
            O::I16x8ExtractLaneU { lane } => self.extract_lane(I16X8, lane, Some(false)),
            O::I32x4ExtractLane { lane } => self.extract_lane(I32X4, lane, None),
            O::I64x2ExtractLane { lane } => self.extract_lane(I64X2, lane, None),
            O::F32x4ExtractLane { lane } => self.extract_lane(F32X4, lane, None),
            O::F64x2ExtractLane { lane } => self.extract_lane(F64X2, lane, None),
            O::I8x16ReplaceLane { lane } => self.replace_lane(I8X16, lane),
            O::I16x8ReplaceLane { lane } => self.replace_lane(I16X8, lane),
            O::I32x4ReplaceLane { lane } => self.replace_lane(I32X4, lane),
            O::I64x2ReplaceLane { lane } => self.replace_lane(I64X2, lane),
            O::F32x4ReplaceLane { lane } => self.replace_lane(F32X4, lane),
            O::F64x2ReplaceLane { lane } => self.replace_lane(F64X2, lane),
            O::I8x16Shuffle { lanes } => {
                let (x, y) = self.pop2_as(I8X16);
                let mask = self.builder.func.dfg.immediates.push(lanes.to_vec().into());
                let v = self.builder.ins().shuffle(x, y, mask);
                self.push(v);
            }
            _ => return false,
        }
        true
    }

    /// The scalar on top of the stack narrowed to a lane of `shape`: `i8` and `i16`
    /// lanes take the low bits of an `i32`.
    fn pop_lane(&mut self, shape: Type) -> Value {
        let x = self.pop();
        match shape.lane_type() {
            lane @ (I8 | I16) => self.builder.ins().ireduce(lane, x),
            _ => x,
        }
    }

    fn splat(&mut self, shape: Type) {
        let x = self.pop_lane(shape);
        let v = self.builder.ins().splat(shape, x);
        self.push_v128(v);
    }

    /// `extract_lane`; `signed` says how an `i8` or `i16` lane extends to `i32`.
    fn extract_lane(&mut self, shape: Type, lane: u8, signed: Option<bool>) {
        let vector = self.pop_as(shape);
        let x = self.builder.ins().extractlane(vector, lane);
        let x = match signed {
            Some(true) => self.builder.ins().sextend(I32, x),
            Some(false) => self.builder.ins().uextend(I32, x),
            None => x,
        };
        self.push(x);
    }

    fn replace_lane(&mut self, shape: Type, lane: u8) {
        let x = self.pop_lane(shape);
        let vector = self.pop_as(shape);
        let v = self.builder.ins().insertlane(vector, x, lane);
        self.push_v128(v);
    }

    /// Operators that reduce a vector to an `i32`.
    fn simd_reduce(&mut self, op: &Operator<'_>) -> bool {
        use Operator as O;
        let v = match *op {
            O::V128AnyTrue => {
                let x = self.pop_as(I8X16);
                let any = self.builder.ins().vany_true(x);
                self.builder.ins().uextend(I32, any)
            }
            O::I8x16AllTrue | O::I16x8AllTrue | O::I32x4AllTrue | O::I64x2AllTrue => {
                let x = self.pop_as(integer_shape(op));
                let all = self.builder.ins().vall_true(x);
                self.builder.ins().uextend(I32, all)
            }
            O::I8x16Bitmask | O::I16x8Bitmask | O::I32x4Bitmask | O::I64x2Bitmask => {
                let x = self.pop_as(integer_shape(op));
                self.builder.ins().vhigh_bits(I32, x)
            }
            _ => return false,
        };
        self.push(v);
        true
    }

    /// The remaining operators: `bitselect` and `andnot`, whose operands Cranelift takes
    /// in another order or form, and those built from several Cranelift instructions.
    fn simd_compound(&mut self, op: &Operator<'_>) -> bool {
        use Operator as O;
        match *op {
            O::V128Bitselect => {
                let mask = self.pop_as(I8X16);
                let (x, y) = self.pop2_as(I8X16);
                let v = self.builder.ins().bitselect(mask, x, y);
                self.push(v);
            }
            O::V128AndNot => {
                let (x, y) = self.pop2_as(I8X16);
                let v = self.builder.ins().band_not(x, y);
                self.push(v);
            }
            O::I16x8ExtAddPairwiseI8x16S => self.extadd_pairwise(I8X16, true),
            O::I16x8ExtAddPairwiseI8x16U => self.extadd_pairwise(I8X16, false),
            O::I32x4ExtAddPairwiseI16x8S => self.extadd_pairwise(I16X8, true),
            O::I32x4ExtAddPairwiseI16x8U => self.extadd_pairwise(I16X8, false),
            O::I16x8ExtMulLowI8x16S => self.extmul(I8X16, Opcode::SwidenLow),
            O::I16x8ExtMulHighI8x16S => self.extmul(I8X16, Opcode::SwidenHigh),
            O::I16x8ExtMulLowI8x16U => self.extmul(I8X16, Opcode::UwidenLow),
            O::I16x8ExtMulHighI8x16U => self.extmul(I8X16, Opcode::UwidenHigh),
            O::I32x4ExtMulLowI16x8S => self.extmul(I16X8, Opcode::SwidenLow),
            O::I32x4ExtMulHighI16x8S => self.extmul(I16X8, Opcode::SwidenHigh),
            O::I32x4ExtMulLowI16x8U => self.extmul(I16X8, Opcode::UwidenLow),
            O::I32x4ExtMulHighI16x8U => self.extmul(I16X8, Opcode::UwidenHigh),
            O::I64x2ExtMulLowI32x4S => self.extmul(I32X4, Opcode::SwidenLow),
            O::I64x2ExtMulHighI32x4S => self.extmul(I32X4, Opcode::SwidenHigh),
            O::I64x2ExtMulLowI32x4U => self.extmul(I32X4, Opcode::UwidenLow),
            O::I64x2ExtMulHighI32x4U => self.extmul(I32X4, Opcode::UwidenHigh),
            O::I32x4DotI16x8S => {
                // Products of the low and of the high halves, then sums of adjacent
                // products: lane i is a[2i]*b[2i] + a[2i+1]*b[2i+1].
                let (x, y) = self.pop2_as(I16X8);
                let b = &mut self.builder;
                let (x_lo, y_lo) = (b.ins().swiden_low(x), b.ins().swiden_low(y));
                let (x_hi, y_hi) = (b.ins().swiden_high(x), b.ins().swiden_high(y));
                let lo = b.ins().imul(x_lo, y_lo);
                let hi = b.ins().imul(x_hi, y_hi);
                let v = b.ins().iadd_pairwise(lo, hi);
                self.push_v128(v);
            }
            O::F32x4PMin => self.pseudo_min_max(F32X4, true),
            O::F64x2PMin => self.pseudo_min_max(F64X2, true),
            O::F32x4PMax => self.pseudo_min_max(F32X4, false),
            O::F64x2PMax => self.pseudo_min_max(F64X2, false),
            _ => return self.simd_conversion(op),
        }
        true
    }

    /// `extadd_pairwise`: widen both halves of `shape`, then add adjacent lanes.
    fn extadd_pairwise(&mut self, shape: Type, signed: bool) {
        let x = self.pop_as(shape);
        let b = &mut self.builder;
        let (lo, hi) = if signed {
            (b.ins().swiden_low(x), b.ins().swiden_high(x))
        } else {
            (b.ins().uwiden_low(x), b.ins().uwiden_high(x))
        };
        let v = b.ins().iadd_pairwise(lo, hi);
        self.push_v128(v);
    }

    /// `extmul`: widen the same half of both operands with `widen`, then multiply.
    fn extmul(&mut self, shape: Type, widen: Opcode) {
        let (x, y) = self.pop2_as(shape);
        let widen = |b: &mut FunctionBuilder<'_>, v| {
            let (inst, dfg) = b.ins().Unary(widen, shape, v);
            dfg.first_result(inst)
        };
        let x = widen(&mut self.builder, x);
        let y = widen(&mut self.builder, y);
        let v = self.builder.ins().imul(x, y);
        self.push_v128(v);
    }

    /// `pmin` is `y < x ? y : x` and `pmax` is `x < y ? y : x`, lane by lane: unlike
    /// `min`/`max` they return the first operand when either is NaN or both are zeros.
    fn pseudo_min_max(&mut self, shape: Type, min: bool) {
        let (x, y) = self.pop2_as(shape);
        let b = &mut self.builder;
        let less = if min {
            b.ins().fcmp(FloatCC::LessThan, y, x)
        } else {
            b.ins().fcmp(FloatCC::LessThan, x, y)
        };
        let mask = cast(b, shape, less);
        let v = b.ins().bitselect(mask, y, x);
        self.push_v128(v);
    }

    /// Conversions between integer and float vectors and between float widths.
    fn simd_conversion(&mut self, op: &Operator<'_>) -> bool {
        use Operator as O;
        let v = match *op {
            O::F32x4ConvertI32x4S => {
                let x = self.pop_as(I32X4);
                self.builder.ins().fcvt_from_sint(F32X4, x)
            }
            O::F32x4ConvertI32x4U => {
                let x = self.pop_as(I32X4);
                self.builder.ins().fcvt_from_uint(F32X4, x)
            }
            O::F64x2ConvertLowI32x4S => {
                let x = self.pop_as(I32X4);
                let wide = self.builder.ins().swiden_low(x);
                self.builder.ins().fcvt_from_sint(F64X2, wide)
            }
            O::F64x2ConvertLowI32x4U => {
                let x = self.pop_as(I32X4);
                let wide = self.builder.ins().uwiden_low(x);
                self.builder.ins().fcvt_from_uint(F64X2, wide)
            }
            O::I32x4TruncSatF32x4S => {
                let x = self.pop_as(F32X4);
                self.builder.ins().fcvt_to_sint_sat(I32X4, x)
            }
            O::I32x4TruncSatF32x4U => {
                let x = self.pop_as(F32X4);
                self.builder.ins().fcvt_to_uint_sat(I32X4, x)
            }
            O::I32x4TruncSatF64x2SZero => {
                let x = self.pop_as(F64X2);
                self.trunc_sat_f64x2_zero(x, true)
            }
            O::I32x4TruncSatF64x2UZero => {
                let x = self.pop_as(F64X2);
                self.trunc_sat_f64x2_zero(x, false)
            }
            O::F32x4DemoteF64x2Zero => {
                let x = self.pop_as(F64X2);
                self.builder.ins().fvdemote(x)
            }
            O::F64x2PromoteLowF32x4 => {
                let x = self.pop_as(F32X4);
                self.builder.ins().fvpromote_low(x)
            }
            _ => return false,
        };
        self.push_v128(v);
        true
    }

    /// `i32x4.trunc_sat_f64x2_{s,u}_zero` of `x`. Saturating to i64 and then narrowing
    /// with saturation gives the same lanes as saturating straight to i32 (u32); the
    /// zero vector supplies the two upper lanes.
    fn trunc_sat_f64x2_zero(&mut self, x: Value, signed: bool) -> Value {
        let zero = vconst(&mut self.builder, I64X2, &[0; 16]);
        let b = &mut self.builder;
        if signed {
            let wide = b.ins().fcvt_to_sint_sat(I64X2, x);
            b.ins().snarrow(wide, zero)
        } else {
            let wide = b.ins().fcvt_to_uint_sat(I64X2, x);
            b.ins().uunarrow(wide, zero)
        }
    }

    /// Whether a relaxed operator may use an x86 instruction whose results are allowed
    /// but not the deterministic ones: not in deterministic mode, only on x86, and only
    /// if Cranelift lowers the instruction for this CPU (`lowered`).
    fn relaxed_x86(&self, lowered: bool) -> bool {
        !self.env.tunables.relaxed_simd_deterministic && self.env.isa.name() == "x64" && lowered
    }

    /// The relaxed SIMD operators. Each is lowered as follows (the first form is the
    /// deterministic one, also used wherever the second is not available):
    ///
    /// | operator | deterministic | x86 otherwise |
    /// |---|---|---|
    /// | `relaxed_swizzle` | `swizzle` (index ≥ 16 gives 0) | `pshufb` (SSSE3): index 16..127 reads lane `index % 16` |
    /// | `relaxed_trunc_f32x4_s`, `_f64x2_s_zero` | `trunc_sat` | `cvttps2dq` / `cvttpd2dq`: NaN and out of range give `i32::MIN` |
    /// | `relaxed_trunc_f32x4_u`, `_f64x2_u_zero` | `trunc_sat` | the same (x86 has no cheaper allowed form before AVX-512, which Cranelift does not expose) |
    /// | `relaxed_madd`, `relaxed_nmadd` | fused (`fma`; without FMA, a libcall per lane) | fused with FMA, else `fmul` then `fadd` |
    /// | `relaxed_laneselect` | `bitselect` | `blendv` (SSE4.1; not for `i16x8`): only each lane's top mask bit counts |
    /// | `relaxed_min`, `relaxed_max` | `fmin`, `fmax` | `minps`/`maxps` and the `pd` forms, as `pmin`/`pmax`: the second operand when either is NaN or both are zeros |
    /// | `relaxed_q15mulr_s` | `q15mulr_sat_s` | `pmulhrsw` (SSSE3): `0x8000 * 0x8000` gives `0x8000` |
    /// | `relaxed_dot_i8x16_i7x16_s` | signed × signed products, pairs added wrapping | `pmaddubsw` (SSSE3): second operand unsigned, pairs added saturating |
    /// | `relaxed_dot_i8x16_i7x16_add_s` | exact sum of four signed × signed products, plus the accumulator | `pmaddubsw`, then the pairs of its lanes summed, plus the accumulator |
    ///
    /// On aarch64 every deterministic form is already one or two instructions (`tbl`,
    /// `fcvtzs`, `fmla`, `bsl`, `fmin`, `sqrdmulh`, `smull` + `addp`), so it is used in
    /// both modes. The deterministic choices are wasmtime 48's, so that differential
    /// runs against its deterministic mode agree.
    fn simd_relaxed(&mut self, op: &Operator<'_>) -> bool {
        use Operator as O;
        let v = match *op {
            O::I8x16RelaxedSwizzle => {
                let (x, y) = self.pop2_as(I8X16);
                if self.relaxed_x86(self.env.isa.has_x86_pshufb_lowering()) {
                    self.builder.ins().x86_pshufb(x, y)
                } else {
                    self.builder.ins().swizzle(x, y)
                }
            }
            O::I32x4RelaxedTruncF32x4S => {
                let x = self.pop_as(F32X4);
                if self.relaxed_x86(true) {
                    self.builder.ins().x86_cvtt2dq(I32X4, x)
                } else {
                    self.builder.ins().fcvt_to_sint_sat(I32X4, x)
                }
            }
            O::I32x4RelaxedTruncF32x4U => {
                let x = self.pop_as(F32X4);
                self.builder.ins().fcvt_to_uint_sat(I32X4, x)
            }
            O::I32x4RelaxedTruncF64x2SZero => {
                let x = self.pop_as(F64X2);
                if self.relaxed_x86(true) {
                    // The x86 backend turns this narrowing of a conversion with zeros
                    // into one `cvttpd2dq`, which zeroes the upper lanes itself.
                    let wide = self.builder.ins().x86_cvtt2dq(I64X2, x);
                    let zero = vconst(&mut self.builder, I64X2, &[0; 16]);
                    self.builder.ins().snarrow(wide, zero)
                } else {
                    self.trunc_sat_f64x2_zero(x, true)
                }
            }
            O::I32x4RelaxedTruncF64x2UZero => {
                let x = self.pop_as(F64X2);
                self.trunc_sat_f64x2_zero(x, false)
            }
            O::F32x4RelaxedMadd | O::F32x4RelaxedNmadd => self.relaxed_madd(op, F32X4),
            O::F64x2RelaxedMadd | O::F64x2RelaxedNmadd => self.relaxed_madd(op, F64X2),
            O::I8x16RelaxedLaneselect => self.relaxed_laneselect(I8X16),
            O::I16x8RelaxedLaneselect => self.relaxed_laneselect(I16X8),
            O::I32x4RelaxedLaneselect => self.relaxed_laneselect(I32X4),
            O::I64x2RelaxedLaneselect => self.relaxed_laneselect(I64X2),
            O::F32x4RelaxedMin => self.relaxed_min_max(F32X4, true),
            O::F64x2RelaxedMin => self.relaxed_min_max(F64X2, true),
            O::F32x4RelaxedMax => self.relaxed_min_max(F32X4, false),
            O::F64x2RelaxedMax => self.relaxed_min_max(F64X2, false),
            O::I16x8RelaxedQ15mulrS => {
                let (x, y) = self.pop2_as(I16X8);
                if self.relaxed_x86(self.env.isa.has_x86_pmulhrsw_lowering()) {
                    self.builder.ins().x86_pmulhrsw(x, y)
                } else {
                    self.builder.ins().sqmul_round_sat(x, y)
                }
            }
            O::I16x8RelaxedDotI8x16I7x16S => {
                let (x, y) = self.pop2_as(I8X16);
                if self.relaxed_x86(self.env.isa.has_x86_pmaddubsw_lowering()) {
                    // Cranelift's `x86_pmaddubsw` takes the signed bytes first.
                    self.builder.ins().x86_pmaddubsw(x, y)
                } else {
                    self.signed_dot_i8x16(x, y)
                }
            }
            O::I32x4RelaxedDotI8x16I7x16AddS => {
                let acc = self.pop_as(I32X4);
                let (x, y) = self.pop2_as(I8X16);
                let dot = if self.relaxed_x86(self.env.isa.has_x86_pmaddubsw_lowering()) {
                    let b = &mut self.builder;
                    let pairs = b.ins().x86_pmaddubsw(x, y);
                    let (lo, hi) = (b.ins().swiden_low(pairs), b.ins().swiden_high(pairs));
                    b.ins().iadd_pairwise(lo, hi)
                } else {
                    // The 16-bit products widened before any sum, so no sum wraps.
                    let products = self.signed_products_i8x16(x, y);
                    let b = &mut self.builder;
                    let [lo, hi] = products.map(|p| {
                        let (p_lo, p_hi) = (b.ins().swiden_low(p), b.ins().swiden_high(p));
                        b.ins().iadd_pairwise(p_lo, p_hi)
                    });
                    b.ins().iadd_pairwise(lo, hi)
                };
                self.builder.ins().iadd(dot, acc)
            }
            _ => return false,
        };
        self.push_v128(v);
        true
    }

    /// `relaxed_madd` (`x * y + z`) or `relaxed_nmadd` (`-(x * y) + z`) of `shape`.
    fn relaxed_madd(&mut self, op: &Operator<'_>, shape: Type) -> Value {
        use Operator as O;
        let [x, y, z] = self.pop3_as(shape);
        let negated = matches!(op, O::F32x4RelaxedNmadd | O::F64x2RelaxedNmadd);
        let x = if negated {
            self.builder.ins().fneg(x)
        } else {
            x
        };
        if self.env.isa.has_native_fma() {
            self.builder.ins().fma(x, y, z)
        } else if self.env.tunables.relaxed_simd_deterministic {
            self.env.fma_by_libcall(&mut self.builder, x, y, z)
        } else {
            let product = self.builder.ins().fmul(x, y);
            self.builder.ins().fadd(product, z)
        }
    }

    /// `relaxed_laneselect`: `bitselect` or, where allowed, x86's `blendv`, which reads
    /// only the top bit of each mask lane.
    fn relaxed_laneselect(&mut self, shape: Type) -> Value {
        let [x, y, mask] = self.pop3_as(shape);
        if self.relaxed_x86(self.env.isa.has_blendv_lowering(shape)) {
            self.builder.ins().blendv(mask, x, y)
        } else {
            self.builder.ins().bitselect(mask, x, y)
        }
    }

    /// `relaxed_min` or `relaxed_max`: wasm's `min`/`max`, or on x86 the single
    /// instruction that `pmin`/`pmax` lower to (see [`Self::pseudo_min_max`]).
    fn relaxed_min_max(&mut self, shape: Type, min: bool) -> Value {
        let (x, y) = self.pop2_as(shape);
        let native = self.relaxed_x86(true);
        let b = &mut self.builder;
        if !native {
            return if min {
                b.ins().fmin(x, y)
            } else {
                b.ins().fmax(x, y)
            };
        }
        let less = if min {
            b.ins().fcmp(FloatCC::LessThan, y, x)
        } else {
            b.ins().fcmp(FloatCC::LessThan, x, y)
        };
        let mask = cast(b, shape, less);
        b.ins().bitselect(mask, y, x)
    }

    /// The signed 16-bit products of the low and of the high eight byte lanes of `x`
    /// and `y`; each fits, as `-128 * -128` is `16384`.
    fn signed_products_i8x16(&mut self, x: Value, y: Value) -> [Value; 2] {
        let b = &mut self.builder;
        let (x_lo, y_lo) = (b.ins().swiden_low(x), b.ins().swiden_low(y));
        let (x_hi, y_hi) = (b.ins().swiden_high(x), b.ins().swiden_high(y));
        [b.ins().imul(x_lo, y_lo), b.ins().imul(x_hi, y_hi)]
    }

    /// The signed dot product of byte lanes into 16-bit lanes: lane i is
    /// `x[2i]*y[2i] + x[2i+1]*y[2i+1]`, wrapping (only `-128*-128` twice overflows).
    fn signed_dot_i8x16(&mut self, x: Value, y: Value) -> Value {
        let [lo, hi] = self.signed_products_i8x16(x, y);
        self.builder.ins().iadd_pairwise(lo, hi)
    }
}

/// The integer shape an `all_true` or `bitmask` operator reduces.
fn integer_shape(op: &Operator<'_>) -> Type {
    use Operator as O;
    match *op {
        O::I16x8AllTrue | O::I16x8Bitmask => I16X8,
        O::I32x4AllTrue | O::I32x4Bitmask => I32X4,
        O::I64x2AllTrue | O::I64x2Bitmask => I64X2,
        _ => I8X16,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{host_isa, insts, translate, translate_for};
    use crate::{CraneliftCompiler, OptLevel};
    use cranelift_codegen::ir::{self, InstructionData, Opcode};
    use strata_environ::{
        Compiler, DefinedFuncIndex, EntityRef, Trap, Tunables, WasmFeatures, translate_module,
    };

    #[test]
    fn an_operator_uses_the_previous_result_without_a_round_trip_through_i8x16() {
        let func = translate(
            r#"(module (func (param v128 v128 v128) (result v128)
                 (i32x4.add (i32x4.add (local.get 0) (local.get 1)) (local.get 2))))"#,
        );
        let adds = insts(&func, Opcode::Iadd);
        assert_eq!(adds.len(), 2, "{}", func.display());
        let inner = func.dfg.first_result(adds[0]);
        assert_eq!(func.dfg.value_type(inner), ir::types::I32X4);
        assert_eq!(func.dfg.inst_args(adds[1])[0], inner, "{}", func.display());
    }

    #[test]
    fn shuffle_keeps_its_lanes_and_swizzle_is_one_instruction() {
        let lanes = [0u8, 17, 2, 19, 4, 21, 6, 23, 8, 25, 10, 27, 12, 29, 14, 31];
        let text: Vec<String> = lanes.iter().map(u8::to_string).collect();
        let func = translate(&format!(
            "(module (func (param v128 v128) (result v128)
               (i8x16.swizzle (i8x16.shuffle {} (local.get 0) (local.get 1)) (local.get 1))))",
            text.join(" ")
        ));
        let [shuffle] = insts(&func, Opcode::Shuffle)[..] else {
            panic!("one shuffle expected in {}", func.display());
        };
        let InstructionData::Shuffle { imm, .. } = func.dfg.insts[shuffle] else {
            unreachable!("shuffle has the Shuffle format")
        };
        assert_eq!(func.dfg.immediates[imm].as_slice(), lanes);
        let [swizzle] = insts(&func, Opcode::Swizzle)[..] else {
            panic!("one swizzle expected in {}", func.display());
        };
        assert_eq!(
            func.dfg.inst_args(swizzle)[0],
            func.dfg.first_result(shuffle)
        );
    }

    #[test]
    fn every_kind_of_vector_memory_access_is_a_recorded_trap_site() {
        let accesses = [
            "(v128.load (local.get 0))",
            "(v128.store offset=3 (local.get 0) (local.get 1)) (local.get 1)",
            "(v128.load8x8_s (local.get 0))",
            "(v128.load16_splat (local.get 0))",
            "(v128.load32_zero (local.get 0))",
            "(v128.load64_lane 1 (local.get 0) (local.get 1))",
            "(v128.store8_lane 15 (local.get 0) (local.get 1)) (local.get 1)",
        ];
        let funcs: String = accesses
            .iter()
            .map(|body| format!("(func (param i32 v128) (result v128) {body})"))
            .collect();
        let wasm = wat::parse_str(format!("(module (memory 1) {funcs})")).unwrap();
        let translation = translate_module(&wasm, WasmFeatures::default()).unwrap();
        let compiler =
            CraneliftCompiler::new(Tunables::default_host(), OptLevel::Speed, false).unwrap();
        let compiled = compiler
            .compile_module(&translation.module, translation.function_bodies)
            .unwrap();
        for (i, access) in accesses.iter().enumerate() {
            let f = compiled.functions[DefinedFuncIndex::new(i)];
            let traps = compiled.traps.iter().filter(|t| {
                t.trap == Trap::MemoryOutOfBounds
                    && (f.start..f.start + f.length).contains(&t.offset)
            });
            assert!(traps.count() > 0, "no out-of-bounds trap site for {access}");
        }
    }
    /// One function applying every relaxed SIMD instruction to its parameters.
    const RELAXED: &str = r#"(module (func (param v128 v128 v128)
        (drop (i8x16.relaxed_swizzle (local.get 0) (local.get 1)))
        (drop (i32x4.relaxed_trunc_f32x4_s (local.get 0)))
        (drop (i32x4.relaxed_trunc_f32x4_u (local.get 0)))
        (drop (i32x4.relaxed_trunc_f64x2_s_zero (local.get 0)))
        (drop (i32x4.relaxed_trunc_f64x2_u_zero (local.get 0)))
        (drop (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2)))
        (drop (f64x2.relaxed_nmadd (local.get 0) (local.get 1) (local.get 2)))
        (drop (i8x16.relaxed_laneselect (local.get 0) (local.get 1) (local.get 2)))
        (drop (i16x8.relaxed_laneselect (local.get 0) (local.get 1) (local.get 2)))
        (drop (i32x4.relaxed_laneselect (local.get 0) (local.get 1) (local.get 2)))
        (drop (i64x2.relaxed_laneselect (local.get 0) (local.get 1) (local.get 2)))
        (drop (f32x4.relaxed_min (local.get 0) (local.get 1)))
        (drop (f64x2.relaxed_max (local.get 0) (local.get 1)))
        (drop (i16x8.relaxed_q15mulr_s (local.get 0) (local.get 1)))
        (drop (i16x8.relaxed_dot_i8x16_i7x16_s (local.get 0) (local.get 1)))
        (drop (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get 0) (local.get 1) (local.get 2)))))"#;

    /// The instructions relaxed operators may take on x86 outside deterministic mode,
    /// whose results are allowed but not the deterministic ones.
    const X86_ONLY: [Opcode; 5] = [
        Opcode::X86Pshufb,
        Opcode::X86Cvtt2dq,
        Opcode::Blendv,
        Opcode::X86Pmulhrsw,
        Opcode::X86Pmaddubsw,
    ];

    fn tunables(deterministic: bool) -> Tunables {
        let mut t = Tunables::default_host();
        t.relaxed_simd_deterministic = deterministic;
        t
    }

    #[test]
    fn deterministic_mode_uses_the_deterministic_instructions_only() {
        let func = translate_for(RELAXED, &tunables(true), &*host_isa(&[]));
        for opcode in X86_ONLY {
            assert!(
                insts(&func, opcode).is_empty(),
                "{opcode} in {}",
                func.display()
            );
        }
        for (opcode, count) in [
            (Opcode::Swizzle, 1),
            (Opcode::FcvtToSintSat, 2),
            (Opcode::FcvtToUintSat, 2),
            (Opcode::Bitselect, 4),
            (Opcode::Fmin, 1),
            (Opcode::Fmax, 1),
            (Opcode::SqmulRoundSat, 1),
        ] {
            assert_eq!(insts(&func, opcode).len(), count, "{opcode}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn otherwise_x86_uses_its_own_instructions() {
        if !std::arch::is_x86_feature_detected!("sse4.1") {
            return;
        }
        let func = translate_for(RELAXED, &tunables(false), &*host_isa(&[]));
        for (opcode, count) in [
            (Opcode::X86Pshufb, 1),
            (Opcode::X86Cvtt2dq, 2),
            // Not for i16x8, which keeps `bitselect`.
            (Opcode::Blendv, 3),
            (Opcode::Bitselect, 1 + 2),
            (Opcode::X86Pmulhrsw, 1),
            (Opcode::X86Pmaddubsw, 2),
            (Opcode::Fmin, 0),
            (Opcode::Fmax, 0),
        ] {
            assert_eq!(
                insts(&func, opcode).len(),
                count,
                "{opcode}: {}",
                func.display()
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn madd_is_fused_in_deterministic_mode_even_without_fma() {
        let madd = r#"(module (func (param v128 v128 v128) (result v128)
            (f32x4.relaxed_madd (local.get 0) (local.get 1) (local.get 2))))"#;
        let no_fma = host_isa(&[("has_fma", "false")]);
        let func = translate_for(madd, &tunables(true), &*no_fma);
        assert!(insts(&func, Opcode::Fma).is_empty());
        assert_eq!(
            insts(&func, Opcode::CallIndirect).len(),
            4,
            "{}",
            func.display()
        );
        let func = translate_for(madd, &tunables(false), &*no_fma);
        assert!(insts(&func, Opcode::CallIndirect).is_empty());
        assert_eq!(insts(&func, Opcode::Fmul).len(), 1);
        assert_eq!(insts(&func, Opcode::Fadd).len(), 1);
        if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx")
        {
            for deterministic in [true, false] {
                let func = translate_for(madd, &tunables(deterministic), &*host_isa(&[]));
                assert_eq!(insts(&func, Opcode::Fma).len(), 1);
            }
        }
    }
}
