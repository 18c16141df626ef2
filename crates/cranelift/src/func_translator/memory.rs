//! Linear-memory instructions: loads, stores, `memory.size`, `memory.grow` and the
//! bulk memory operations.

use super::{FuncTranslator, Result};
use crate::func_environ::{BulkOp, HeapAddress};
use cranelift_codegen::ir::{
    self, InstBuilder, Value,
    types::{F32, F64, I32, I64},
};
use strata_environ::{DataIndex, MemoryIndex};
use wasmparser::{MemArg, Operator};

impl FuncTranslator<'_, '_> {
    /// Loads, stores, `memory.size`, `memory.grow` and the bulk memory operations.
    pub(super) fn memory(&mut self, op: &Operator<'_>) -> Result<bool> {
        if self.memory_management(op) {
            return Ok(true);
        }
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

    pub(super) fn heap_access(&mut self, memarg: MemArg, index: Value, size: u8) -> HeapAddress {
        let wasmparser::MemArgTarget::Memory(memory) = memarg.target else {
            unreachable!("the validator accepts no GC arrays")
        };
        let memory = MemoryIndex::from_u32(memory);
        self.env
            .heap_address(&mut self.builder, memory, index, memarg.offset, size)
    }

    /// `memory.size`, `memory.grow` and the bulk memory operations; whether `op` was
    /// one of them.
    pub(super) fn memory_management(&mut self, op: &Operator<'_>) -> bool {
        match *op {
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
                self.env
                    .data_drop(&mut self.builder, DataIndex::from_u32(data_index));
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{insts, translate, translate_with};
    use cranelift_codegen::ir::{self, Opcode};
    use strata_environ::{MemoryIndex, Tunables, VMOffsets};

    /// The loads of `func` straight from its vmctx (value 0), with their offsets.
    fn vmctx_loads(func: &ir::Function) -> Vec<(ir::Inst, i32)> {
        insts(func, Opcode::Load)
            .into_iter()
            .filter(|&i| func.dfg.inst_args(i)[0] == ir::Value::from_u32(0))
            .map(|i| {
                let offset = func.dfg.insts[i].load_store_offset().expect("a load");
                (i, offset)
            })
            .collect()
    }

    const LOAD: &str = r#"(module (memory 1)
        (func (param i32) (result i32) (i32.load (local.get 0))))"#;

    #[test]
    fn a_static_memory_base_is_one_constant_load_from_the_vmctx() {
        let func = translate(LOAD);
        let wasm = wat::parse_str(LOAD).unwrap();
        let module = strata_environ::translate_module(&wasm, Default::default())
            .unwrap()
            .module;
        let base_offset = VMOffsets::new(8, &module).vmctx_memory_base(MemoryIndex::from_u32(0));
        let [(base, offset)] = vmctx_loads(&func)[..] else {
            panic!("one load from the vmctx expected in {}", func.display());
        };
        assert_eq!(offset, i32::try_from(base_offset).unwrap());
        let flags = func.dfg.insts[base].memflags_data(&func.dfg).unwrap();
        assert!(flags.readonly() && flags.can_move(), "{}", func.display());
    }

    #[test]
    fn a_dynamic_memory_base_is_read_from_its_definition_each_time() {
        let tunables = Tunables {
            memory_reservation: 1 << 20,
            memory_reservation_for_growth: 1 << 20,
            ..Tunables::default_host()
        };
        let func = translate_with(LOAD, &tunables);
        // The definition pointer comes from the vmctx (unoptimized, once for the base and
        // once for the length); the base and length from the definition, with flags that
        // keep them after a call that may grow the memory.
        let defs: Vec<_> = vmctx_loads(&func)
            .into_iter()
            .map(|(load, _)| func.dfg.first_result(load))
            .collect();
        assert!(!defs.is_empty(), "{}", func.display());
        let from_def: Vec<_> = insts(&func, Opcode::Load)
            .into_iter()
            .filter(|&i| defs.contains(&func.dfg.inst_args(i)[0]))
            .collect();
        assert_eq!(from_def.len(), 2, "{}", func.display());
        for load in from_def {
            let flags = func.dfg.insts[load].memflags_data(&func.dfg).unwrap();
            assert!(!flags.readonly() && !flags.can_move(), "{}", func.display());
        }
    }
}
