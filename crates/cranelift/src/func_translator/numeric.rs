//! Numeric instructions: constants, comparisons, integer and float arithmetic and the
//! conversions between value types, and the wide arithmetic of Wasm 3.0 (`i64.add128`,
//! `i64.sub128`, `i64.mul_wide_{s,u}`), whose two `i64` results are one `i128`.

use super::{FuncTranslator, Result, unsupported};
use cranelift_codegen::ir::{
    self, InstBuilder, MemFlagsData, Value,
    condcodes::{FloatCC, IntCC},
    types::{F32, F64, I8, I16, I32, I64, I128},
};
use cranelift_frontend::FunctionBuilder;
use wasmparser::Operator;

impl FuncTranslator<'_, '_> {
    pub(super) fn unop(&mut self, f: impl FnOnce(&mut FunctionBuilder<'_>, Value) -> Value) {
        let a = self.pop();
        let v = f(&mut self.builder, a);
        self.push(v);
    }

    pub(super) fn binop(
        &mut self,
        f: impl FnOnce(&mut FunctionBuilder<'_>, Value, Value) -> Value,
    ) {
        let (a, b) = self.pop2();
        let v = f(&mut self.builder, a, b);
        self.push(v);
    }

    pub(super) fn icmp(&mut self, cc: IntCC) {
        self.binop(|b, x, y| {
            let c = b.ins().icmp(cc, x, y);
            b.ins().uextend(I32, c)
        });
    }

    pub(super) fn fcmp(&mut self, cc: FloatCC) {
        self.binop(|b, x, y| {
            let c = b.ins().fcmp(cc, x, y);
            b.ins().uextend(I32, c)
        });
    }

    pub(super) fn eqz(&mut self) {
        self.unop(|b, x| {
            let c = b.ins().icmp_imm_s(IntCC::Equal, x, 0);
            b.ins().uextend(I32, c)
        });
    }

    /// Signed division and remainder. Cranelift's `sdiv` and `srem` already have wasm's
    /// semantics: both trap on a zero divisor with `INTEGER_DIVISION_BY_ZERO`, `sdiv`
    /// traps on `MIN / -1` with `INTEGER_OVERFLOW`, and `srem` gives `MIN % -1 = 0`.
    /// Each backend emits the checks its hardware needs: on x86-64 the division
    /// instruction itself faults and the signal handler finds the trap code at its
    /// address, so explicit checks here would only be done twice.
    pub(super) fn signed_div(&mut self, rem: bool) {
        self.binop(|b, x, y| {
            if rem {
                b.ins().srem(x, y)
            } else {
                b.ins().sdiv(x, y)
            }
        });
    }

    /// Unsigned division and remainder, which trap on a zero divisor as `signed_div`'s do.
    pub(super) fn unsigned_div(&mut self, rem: bool) {
        self.binop(|b, x, y| {
            if rem {
                b.ins().urem(x, y)
            } else {
                b.ins().udiv(x, y)
            }
        });
    }

    pub(super) fn sign_extend(&mut self, ty: ir::Type, from: ir::Type) {
        self.unop(|b, x| {
            let narrow = b.ins().ireduce(from, x);
            b.ins().sextend(ty, narrow)
        });
    }

    pub(super) fn reinterpret(&mut self, ty: ir::Type) {
        self.unop(|b, x| b.ins().bitcast(ty, MemFlagsData::new(), x));
    }

    /// `i64.add128` or `i64.sub128`: operands `lhs_lo lhs_hi rhs_lo rhs_hi`, results
    /// the low then the high half. On an `i128` Cranelift emits `add`/`adc`
    /// (`sub`/`sbb`) on x86-64 and `adds`/`adc` (`subs`/`sbc`) on aarch64.
    fn wide_add_sub(&mut self, add: bool) {
        let (rhs_lo, rhs_hi) = self.pop2();
        let (lhs_lo, lhs_hi) = self.pop2();
        let b = &mut self.builder;
        let lhs = b.ins().iconcat(lhs_lo, lhs_hi);
        let rhs = b.ins().iconcat(rhs_lo, rhs_hi);
        let v = if add {
            b.ins().iadd(lhs, rhs)
        } else {
            b.ins().isub(lhs, rhs)
        };
        self.push_i128(v);
    }

    /// `i64.mul_wide_s` or `i64.mul_wide_u`: the full 128-bit product of two `i64`s,
    /// low half then high half. Cranelift turns the product of two extended `i64`s
    /// into one widening multiply (x86-64's one-operand `imul`/`mul`, aarch64's
    /// `mul` with `smulh`/`umulh`).
    fn mul_wide(&mut self, signed: bool) {
        let (x, y) = self.pop2();
        let b = &mut self.builder;
        let (x, y) = if signed {
            (b.ins().sextend(I128, x), b.ins().sextend(I128, y))
        } else {
            (b.ins().uextend(I128, x), b.ins().uextend(I128, y))
        };
        let v = b.ins().imul(x, y);
        self.push_i128(v);
    }

    /// Pushes the halves of an `i128`, the low one first.
    fn push_i128(&mut self, v: Value) {
        let (lo, hi) = self.builder.ins().isplit(v);
        self.push(lo);
        self.push(hi);
    }

    pub(super) fn numeric(&mut self, op: &Operator<'_>) -> Result<()> {
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
            O::I32DivS => self.signed_div(false),
            O::I64DivS => self.signed_div(false),
            O::I32RemS => self.signed_div(true),
            O::I64RemS => self.signed_div(true),
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

            O::I64Add128 => self.wide_add_sub(true),
            O::I64Sub128 => self.wide_add_sub(false),
            O::I64MulWideS => self.mul_wide(true),
            O::I64MulWideU => self.mul_wide(false),

            _ => return Err(unsupported(op)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{insts, translate};
    use cranelift_codegen::ir::{Opcode, types::I128};

    #[test]
    fn wide_arithmetic_is_one_i128_operation() {
        for (op, params, opcode) in [
            ("i64.add128", 4, Opcode::Iadd),
            ("i64.sub128", 4, Opcode::Isub),
            ("i64.mul_wide_s", 2, Opcode::Imul),
            ("i64.mul_wide_u", 2, Opcode::Imul),
        ] {
            let operands: String = (0..params).map(|i| format!(" (local.get {i})")).collect();
            let func = translate(&format!(
                "(module (func (param{}) (result i64 i64) ({op}{operands})))",
                " i64".repeat(params)
            ));
            let [inst] = insts(&func, opcode)[..] else {
                panic!("one {opcode} expected for {op} in {}", func.display());
            };
            assert_eq!(func.dfg.ctrl_typevar(inst), I128, "{op}");
            assert_eq!(insts(&func, Opcode::Isplit).len(), 1, "{op}");
        }
    }

    #[test]
    fn division_is_cranelifts_own_with_no_checks_of_ours() {
        for (op, opcode) in [
            ("i32.div_s", Opcode::Sdiv),
            ("i64.rem_s", Opcode::Srem),
            ("i32.div_u", Opcode::Udiv),
            ("i64.rem_u", Opcode::Urem),
        ] {
            let ty = &op[..3];
            let func = translate(&format!(
                "(module (func (param {ty} {ty}) (result {ty}) ({op} (local.get 0) (local.get 1))))"
            ));
            assert_eq!(insts(&func, opcode).len(), 1, "{op}: {}", func.display());
            for check in [Opcode::Trapz, Opcode::Trapnz, Opcode::Select] {
                assert!(insts(&func, check).is_empty(), "{op}: {}", func.display());
            }
        }
    }
}
