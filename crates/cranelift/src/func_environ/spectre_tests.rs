//! Spectre guards on the addresses of explicitly checked heap and table accesses: each
//! such address is `select_spectre_guard(oob, 0, addr)` on the condition the explicit
//! trap tests, and the access goes through it.

use crate::func_translator::testing::{insts, translate, translate_with};
use crate::trap_code;
use cranelift_codegen::ir::{self, InstructionData, Opcode, Value, ValueDef};
use strata_environ::{Trap, Tunables};

/// The instruction defining `v`.
fn def(func: &ir::Function, v: Value) -> ir::Inst {
    match func.dfg.value_def(v) {
        ValueDef::Result(inst, _) => inst,
        other => panic!("{v} is not an instruction result: {other:?}"),
    }
}

fn is_zero(func: &ir::Function, v: Value) -> bool {
    matches!(
        func.dfg.insts[def(func, v)],
        InstructionData::UnaryImm { opcode: Opcode::Iconst, imm } if imm.bits() == 0
    )
}

/// Checks that `func` has exactly one Spectre guard, masking to null on the condition of
/// the explicit trap with `trap`; returns the guarded address and the address it masks.
fn the_guard(func: &ir::Function, trap: Trap) -> (Value, Value) {
    let [guard] = insts(func, Opcode::SelectSpectreGuard)[..] else {
        panic!("one select_spectre_guard expected in {}", func.display());
    };
    let [cond, null, addr] = *func.dfg.inst_args(guard) else {
        unreachable!("select_spectre_guard has three operands")
    };
    assert!(is_zero(func, null), "{}", func.display());
    let check = insts(func, Opcode::Trapnz)
        .into_iter()
        .find(|&t| func.dfg.inst_args(t)[0] == cond)
        .unwrap_or_else(|| panic!("no trapnz on the guard's condition in {}", func.display()));
    assert_eq!(
        func.dfg.insts[check].trap_code(),
        Some(trap_code(trap)),
        "{}",
        func.display()
    );
    (func.dfg.first_result(guard), addr)
}

/// The loads and stores of `func` whose address is `addr`.
fn accesses_through(func: &ir::Function, addr: Value) -> Vec<ir::Inst> {
    let address = |inst: ir::Inst| match func.dfg.insts[inst].opcode() {
        o if o.can_store() => Some(func.dfg.inst_args(inst)[1]),
        o if o.can_load() => Some(func.dfg.inst_args(inst)[0]),
        _ => None,
    };
    func.layout
        .blocks()
        .flat_map(|block| func.layout.block_insts(block))
        .filter(|&inst| func.dfg.insts[inst].load_store_offset().is_some())
        .filter(|&inst| address(inst) == Some(addr))
        .collect()
}

/// Checks that the element access of the table instruction in `func` goes through the
/// guarded slot address, and returns that access.
fn table_access(func: &ir::Function) -> ir::Inst {
    let (guarded, slot) = the_guard(func, Trap::TableOutOfBounds);
    assert_eq!(func.dfg.insts[def(func, slot)].opcode(), Opcode::Iadd);
    let [access] = accesses_through(func, guarded)[..] else {
        panic!(
            "one access through {guarded} expected in {}",
            func.display()
        );
    };
    assert!(
        accesses_through(func, slot).is_empty(),
        "unguarded slot used in {}",
        func.display()
    );
    access
}

#[test]
fn call_indirect_reads_the_table_through_a_spectre_guard() {
    let func = translate(
        r#"(module (type $t (func (result i32))) (table 1 funcref)
             (func (param i32) (result i32) (call_indirect (type $t) (local.get 0))))"#,
    );
    let access = table_access(&func);
    assert!(func.dfg.insts[access].opcode().can_load());
    assert_eq!(
        insts(&func, Opcode::CallIndirect).len(),
        2,
        "lazy init + call"
    );
}

#[test]
fn table_get_reads_through_a_spectre_guard() {
    for ty in ["funcref", "externref"] {
        let func = translate(&format!(
            "(module (table 1 {ty})
               (func (param i32) (result {ty}) (table.get 0 (local.get 0))))"
        ));
        let access = table_access(&func);
        assert!(func.dfg.insts[access].opcode().can_load(), "{ty}");
    }
}

#[test]
fn table_set_writes_through_a_spectre_guard() {
    for ty in ["funcref", "externref"] {
        let func = translate(&format!(
            "(module (table 1 {ty})
               (func (param i32 {ty}) (table.set 0 (local.get 0) (local.get 1))))"
        ));
        let access = table_access(&func);
        assert!(func.dfg.insts[access].opcode().can_store(), "{ty}");
    }
}

#[test]
fn table64_access_is_guarded() {
    let func = translate(
        r#"(module (table i64 1 externref)
             (func (param i64) (result externref) (table.get 0 (local.get 0))))"#,
    );
    table_access(&func);
}

/// Checks that the one memory access of `func` is explicitly checked and goes through
/// the guarded address with the static offset `offset` already added, so that a
/// mispredicted check reaches address 0 and nothing else.
fn assert_guarded_heap_access(func: &ir::Function, offset: i64) {
    let (guarded, addr) = the_guard(func, Trap::MemoryOutOfBounds);
    let [access] = accesses_through(func, guarded)[..] else {
        panic!(
            "one access through {guarded} expected in {}",
            func.display()
        );
    };
    assert_eq!(
        func.dfg.insts[access].load_store_offset(),
        Some(0),
        "{}",
        func.display()
    );
    let add = def(func, addr);
    assert_eq!(func.dfg.insts[add].opcode(), Opcode::Iadd);
    if offset != 0 {
        let [_, off] = *func.dfg.inst_args(add) else {
            unreachable!("iadd has two operands")
        };
        let InstructionData::UnaryImm { imm, .. } = func.dfg.insts[def(func, off)] else {
            panic!(
                "the offset is not folded in before the guard: {}",
                func.display()
            );
        };
        assert_eq!(imm.bits(), offset, "{}", func.display());
    }
}

#[test]
fn memory64_accesses_are_guarded_with_the_offset_folded_in() {
    let func = translate(
        r#"(module (memory i64 1)
             (func (param i64) (result i32) (i32.load offset=16 (local.get 0))))"#,
    );
    assert_guarded_heap_access(&func, 16);
    let func = translate(
        r#"(module (memory i64 1)
             (func (param i64 i64) (i64.store (local.get 0) (local.get 1))))"#,
    );
    assert_guarded_heap_access(&func, 0);
    let func = translate(
        r#"(module (memory i64 1)
             (func (param i64) (result v128) (v128.load offset=0x100000000 (local.get 0))))"#,
    );
    assert_guarded_heap_access(&func, 0x1_0000_0000);
}

#[test]
fn dynamic_memory_accesses_are_guarded() {
    let tunables = Tunables {
        memory_reservation: 1 << 20,
        ..Tunables::default_host()
    };
    let func = translate_with(
        r#"(module (memory 1)
             (func (param i32) (result i32) (i32.load8_u offset=7 (local.get 0))))"#,
        &tunables,
    );
    assert_guarded_heap_access(&func, 7);
}

#[test]
fn a_static_memory_access_past_the_guard_is_guarded() {
    let tunables = Tunables {
        memory_guard_size: 0,
        ..Tunables::default_host()
    };
    let func = translate_with(
        r#"(module (memory 1)
             (func (param i32) (result i64) (i64.load offset=8 (local.get 0))))"#,
        &tunables,
    );
    assert_guarded_heap_access(&func, 8);
}

#[test]
fn an_access_the_guard_region_covers_has_no_check_and_no_guard() {
    let func = translate(
        r#"(module (memory 1)
             (func (param i32) (result i32) (i32.load offset=16 (local.get 0))))"#,
    );
    assert!(insts(&func, Opcode::SelectSpectreGuard).is_empty());
    assert!(insts(&func, Opcode::Trapnz).is_empty());
    let [load] = insts(&func, Opcode::Load)
        .into_iter()
        .filter(|&i| {
            func.dfg.insts[i]
                .memflags_data(&func.dfg)
                .unwrap()
                .alias_region()
                .is_some()
        })
        .collect::<Vec<_>>()[..]
    else {
        panic!("one heap load expected in {}", func.display());
    };
    assert_eq!(func.dfg.insts[load].load_store_offset(), Some(16));
}

#[test]
fn the_optimizer_keeps_the_guards() {
    use cranelift_codegen::settings::{self, Configurable};
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").expect("a known setting");
    let isa = cranelift_native::builder()
        .expect("host is supported")
        .finish(settings::Flags::new(flags))
        .expect("valid flags");
    for wat in [
        r#"(module (type $t (func (result i32))) (table 1 funcref)
             (func (param i32) (result i32) (call_indirect (type $t) (local.get 0))))"#,
        r#"(module (memory i64 1)
             (func (param i64) (result i32) (i32.load offset=16 (local.get 0))))"#,
    ] {
        let mut ctx = cranelift_codegen::Context::for_function(translate(wat));
        ctx.optimize(&*isa, &mut Default::default())
            .expect("the function optimizes");
        assert_eq!(
            insts(&ctx.func, Opcode::SelectSpectreGuard).len(),
            1,
            "{}",
            ctx.func.display()
        );
    }
}
