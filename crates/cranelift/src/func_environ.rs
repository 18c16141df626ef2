//! How compiled code reaches instance state through the vmctx: memories with their
//! bounds checks, globals, tables, calls and libcalls.

mod bulk;
mod exceptions;
mod interrupt;

pub(crate) use bulk::BulkOp;
pub(crate) use interrupt::{EpochDeadline, Fuel};

use crate::{trap_code, wasm_signature};
use cranelift_codegen::ir::{self, InstBuilder, MemFlagsData, Value, condcodes::IntCC, types};
use cranelift_codegen::isa::{CallConv, TargetIsa};
use cranelift_frontend::FunctionBuilder;
use strata_environ::{
    BuiltinFunctionIndex, FuncIndex, GROW_TRAPPED, GlobalIndex, MemoryIndex, MemoryStyle, Module,
    TableIndex, Trap, Tunables, TypeIndex, VMOffsets,
};

/// Whether a wasm call returns to its caller or replaces the caller's frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CallKind {
    /// A `call`: the callee returns its results here.
    Normal,
    /// A `return_call`: the caller's frame is torn down and the callee returns to the
    /// caller's caller. The call ends the current block and yields no values.
    Tail,
    /// A `call` inside a `try_table`: a Cranelift `try_call` whose exceptions land in
    /// this block, which takes the exception as its one parameter. The results come
    /// back in a new block, current after the call.
    Try(ir::Block),
}

/// Per-function state for reaching the vmctx.
pub(crate) struct FuncEnvironment<'a> {
    pub(crate) module: &'a Module,
    pub(crate) offsets: &'a VMOffsets,
    pub(crate) tunables: &'a Tunables,
    pub(crate) pointer: ir::Type,
    /// The function's own vmctx (its first parameter).
    pub(crate) vmctx: Value,
    /// The calling convention of runtime functions (the host's C convention).
    pub(crate) host_call_conv: CallConv,
    /// The alias region of linear-memory accesses (see [`AliasRegions`]).
    pub(crate) heap_region: ir::AliasRegion,
    /// The target: operators whose allowed results vary by host (relaxed SIMD) ask it
    /// which instructions it has.
    pub(crate) isa: &'a dyn TargetIsa,
}

/// The disjoint kinds of memory that compiled code reads and writes, for Cranelift's
/// alias analysis: a store in one region cannot change what a load in another reads, so
/// a global's value survives heap stores in a register (the C stack pointer, read and
/// written around every call, stays in one), and a global written twice is stored once.
///
/// Every access to a location must use the same region. Linear memory is reached only
/// by loads and stores tagged [`AliasRegions::HEAP`] (bulk operations are libcalls,
/// which Cranelift treats as touching every region); a defined global only through its
/// own region; imported globals through one shared region, since two imports may name
/// the same global. Everything else in the vmctx or the store context is either
/// read-only or accessed untagged, which Cranelift orders against every region.
pub(crate) struct AliasRegions;

impl AliasRegions {
    /// Linear memories.
    pub(crate) const HEAP: u32 = 0;
    /// The values of imported globals.
    const IMPORTED_GLOBALS: u32 = 1;
    /// Defined global `i` has region `DEFINED_GLOBALS + i`.
    const DEFINED_GLOBALS: u32 = 2;

    /// Declares the heap's region in `func`.
    pub(crate) fn heap(func: &mut ir::Function) -> ir::AliasRegion {
        func.dfg.alias_regions.insert(ir::AliasRegionData {
            user_id: AliasRegions::HEAP,
            description: "linear memory".into(),
        })
    }
}

/// Flags for loads of vmctx fields that never change while an instance lives: such
/// loads may be merged and hoisted out of loops.
fn constant_field() -> MemFlagsData {
    MemFlagsData::trusted().with_readonly().with_can_move()
}

fn offset(o: u32) -> i32 {
    i32::try_from(o).expect("vmctx offsets fit in i32")
}

/// An access to linear memory, after its bounds check: the address to use and the static
/// offset to put in the instruction.
pub(crate) struct HeapAddress {
    pub(crate) addr: Value,
    pub(crate) offset: i32,
}

impl FuncEnvironment<'_> {
    /// Flags for linear-memory accesses: little-endian, in the heap's alias region, and
    /// a fault means the access was out of bounds.
    pub(crate) fn heap_flags(&self) -> MemFlagsData {
        MemFlagsData::new()
            .with_endianness(ir::Endianness::Little)
            .with_alias_region(Some(self.heap_region))
    }

    /// Flags for reading and writing the value of global `index`: in the global's own
    /// alias region if it is defined here, else in the region of all imported globals.
    pub(crate) fn global_flags(&self, b: &mut FunctionBuilder, index: GlobalIndex) -> MemFlagsData {
        let defined = self.module.defined_global_index(index);
        let user_id = match defined {
            Some(def) => AliasRegions::DEFINED_GLOBALS
                .checked_add(def.as_u32())
                .expect("global counts are validated far below u32::MAX"),
            None => AliasRegions::IMPORTED_GLOBALS,
        };
        let regions = &mut b.func.dfg.alias_regions;
        let region = regions.get(user_id).unwrap_or_else(|| {
            let description = match defined {
                Some(_) => format!("global {}", index.as_u32()).into(),
                None => "imported globals".into(),
            };
            regions.insert(ir::AliasRegionData {
                user_id,
                description,
            })
        });
        MemFlagsData::trusted().with_alias_region(Some(region))
    }

    fn load_ptr(
        &self,
        b: &mut FunctionBuilder,
        flags: MemFlagsData,
        base: Value,
        off: u32,
    ) -> Value {
        b.ins().load(self.pointer, flags, base, offset(off))
    }

    fn memory_definition(&self, b: &mut FunctionBuilder, memory: MemoryIndex) -> Value {
        let off = self.offsets.vmctx_memory_definition_ptr(memory);
        self.load_ptr(b, constant_field(), self.vmctx, off)
    }

    fn memory_style(&self, memory: MemoryIndex) -> MemoryStyle {
        self.tunables.memory_style(&self.module.memories[memory])
    }

    /// The current byte length of `memory`.
    fn memory_length(&self, b: &mut FunctionBuilder, memory: MemoryIndex) -> Value {
        let def = self.memory_definition(b, memory);
        let off = u32::from(self.offsets.vmmemory_definition_current_length());
        self.load_ptr(b, MemFlagsData::trusted(), def, off)
    }

    /// The base address of `memory`: one load from the vmctx, and free to move out of
    /// loops, for a static memory, whose base never changes; for a dynamic one, which
    /// moves when it outgrows its reservation, a load from its definition after every
    /// call that may have grown it.
    fn heap_base(&self, b: &mut FunctionBuilder, memory: MemoryIndex, style: MemoryStyle) -> Value {
        match style {
            MemoryStyle::Static { .. } => {
                let off = self.offsets.vmctx_memory_base(memory);
                self.load_ptr(b, constant_field(), self.vmctx, off)
            }
            MemoryStyle::Dynamic { .. } => {
                let def = self.memory_definition(b, memory);
                let off = u32::from(self.offsets.vmmemory_definition_base());
                self.load_ptr(b, MemFlagsData::trusted(), def, off)
            }
        }
    }

    /// Checks an access of `size` bytes at `index + static_offset` and returns where it is.
    ///
    /// An explicit check traps on an out-of-bounds access and also guards the address
    /// against speculation past the trap (see [`FuncEnvironment::spectre_guard`]); an
    /// access the guard region covers needs neither.
    pub(crate) fn heap_address(
        &self,
        b: &mut FunctionBuilder,
        memory: MemoryIndex,
        index: Value,
        static_offset: u64,
        size: u8,
    ) -> HeapAddress {
        let style = self.memory_style(memory);
        let base = self.heap_base(b, memory, style);
        let memory64 = self.module.memories[memory].memory64;
        let index = if memory64 {
            index
        } else {
            b.ins().uextend(types::I64, index)
        };
        let end = static_offset.saturating_add(u64::from(size));

        // A 32-bit index plus the access's end stays inside reservation + guard: any
        // out-of-bounds access faults on the guard, and the trap handler reports it.
        let elide = match style {
            MemoryStyle::Static { reservation } => {
                !memory64
                    && u64::from(u32::MAX).saturating_add(end)
                        <= reservation.saturating_add(self.tunables.memory_guard_size)
            }
            MemoryStyle::Dynamic { .. } => false,
        };
        if elide {
            let addr = b.ins().iadd(base, index);
            return match i32::try_from(static_offset) {
                Ok(offset) => HeapAddress { addr, offset },
                Err(_) => {
                    let addr = b.ins().iadd_imm_s(addr, static_offset.cast_signed());
                    HeapAddress { addr, offset: 0 }
                }
            };
        }

        let length = self.memory_length(b, memory);
        let oob = match i64::try_from(end) {
            Ok(end) if !memory64 => {
                // index < 2^32 and end < 2^33: the sum cannot overflow.
                let last = b.ins().iadd_imm_s(index, end);
                b.ins().icmp(IntCC::UnsignedGreaterThan, last, length)
            }
            _ => {
                let end = b.ins().iconst(types::I64, end.cast_signed());
                let (last, overflow) = b.ins().uadd_overflow(index, end);
                let past = b.ins().icmp(IntCC::UnsignedGreaterThan, last, length);
                b.ins().bor(past, overflow)
            }
        };
        b.ins().trapnz(oob, trap_code(Trap::MemoryOutOfBounds));
        // The static offset goes into the address before the guard: were it left in the
        // instruction, a mispredicted check would access `null + offset`, which may be
        // any host address below 2 GiB.
        let addr = b.ins().iadd(base, index);
        let addr = if static_offset == 0 {
            addr
        } else {
            b.ins().iadd_imm_s(addr, static_offset.cast_signed())
        };
        let addr = self.spectre_guard(b, oob, addr);
        HeapAddress { addr, offset: 0 }
    }

    /// Masks `addr` to null when `oob` is set, without a branch, so that code running
    /// past a mispredicted bounds check on `oob` cannot reach outside the memory or
    /// table it checked. The explicit trap on `oob` stays in front of it: architecturally
    /// the guard always yields `addr`, and a trap is reported by the check, never by an
    /// access through null.
    ///
    /// This is always on, as wasmtime's `enable_heap_access_spectre_mitigation` and
    /// `enable_table_access_spectre_mitigation` are by default. A switch would be a
    /// `Tunables` flag, set from `Config` like `consume_fuel`, tested here.
    pub(crate) fn spectre_guard(&self, b: &mut FunctionBuilder, oob: Value, addr: Value) -> Value {
        let null = b.ins().iconst(self.pointer, 0);
        b.ins().select_spectre_guard(oob, null, addr)
    }

    /// `memory.size`, in pages.
    pub(crate) fn memory_size(&self, b: &mut FunctionBuilder, memory: MemoryIndex) -> Value {
        let length = self.memory_length(b, memory);
        let log2 = i64::from(self.module.memories[memory].page_size_log2);
        let pages = b.ins().ushr_imm_u(length, log2);
        if self.module.memories[memory].memory64 {
            pages
        } else {
            b.ins().ireduce(types::I32, pages)
        }
    }

    /// `memory.grow`: the old size in pages, or -1.
    pub(crate) fn memory_grow(
        &self,
        b: &mut FunctionBuilder,
        memory: MemoryIndex,
        delta: Value,
    ) -> Value {
        let memory64 = self.module.memories[memory].memory64;
        let delta = if memory64 {
            delta
        } else {
            b.ins().uextend(types::I64, delta)
        };
        let index = b.ins().iconst(types::I32, i64::from(memory.as_u32()));
        let mut sig = ir::Signature::new(self.host_call_conv);
        sig.params.extend([
            ir::AbiParam::new(self.pointer),
            ir::AbiParam::new(types::I64),
            ir::AbiParam::new(types::I32),
        ]);
        sig.returns.push(ir::AbiParam::new(types::I64));
        let vmctx = self.vmctx;
        let result = self.call_builtin(
            b,
            BuiltinFunctionIndex::MemoryGrow,
            sig,
            &[vmctx, delta, index],
        );
        let old = result[0];
        self.trap_if_grow_trapped(b, old);
        if memory64 {
            old
        } else {
            b.ins().ireduce(types::I32, old)
        }
    }

    /// Traps if a grow libcall reports that the store's limiter stopped execution; the
    /// runtime has recorded the reason, so the trap code is not what the embedder sees.
    pub(crate) fn trap_if_grow_trapped(&self, b: &mut FunctionBuilder, result: Value) {
        let stopped = b
            .ins()
            .icmp_imm_s(IntCC::Equal, result, GROW_TRAPPED as i64);
        b.ins().trapnz(stopped, crate::trap_code(Trap::Interrupt));
    }

    pub(crate) fn call_builtin(
        &self,
        b: &mut FunctionBuilder,
        builtin: BuiltinFunctionIndex,
        sig: ir::Signature,
        args: &[Value],
    ) -> Vec<Value> {
        // Both loads are plain, though what they read never changes: constant loads
        // would be merged and hoisted out of loops, and a large function with a few
        // libcalls in its loops would keep their addresses in registers (or spill
        // slots) across the whole loop, for calls that cost far more than two loads.
        // A call orders memory, so these stay next to their call.
        let table = self.load_ptr(
            b,
            MemFlagsData::trusted(),
            self.vmctx,
            self.offsets.vmctx_builtin_functions(),
        );
        let func = self.load_ptr(
            b,
            MemFlagsData::trusted(),
            table,
            self.offsets.builtin_function(builtin),
        );
        let sig = b.import_signature(sig);
        let call = b.ins().call_indirect(sig, func, args);
        b.inst_results(call).to_vec()
    }

    /// The lane-wise fused multiply-add `x * y + z` of float vectors, one `fma_f32` or
    /// `fma_f64` libcall per lane: the deterministic relaxed multiply-add on an x86 CPU
    /// without FMA, where Cranelift's own `fma` would need a relocation to the C
    /// library, which compiled code here cannot have.
    pub(crate) fn fma_by_libcall(
        &self,
        b: &mut FunctionBuilder,
        x: Value,
        y: Value,
        z: Value,
    ) -> Value {
        let shape = b.func.dfg.value_type(x);
        let (lane, builtin) = if shape.lane_type() == types::F32 {
            (types::F32, BuiltinFunctionIndex::FmaF32)
        } else {
            (types::F64, BuiltinFunctionIndex::FmaF64)
        };
        let mut result = x;
        for i in 0..u8::try_from(shape.lane_count()).expect("at most 16 lanes") {
            let args = [x, y, z].map(|v| bulk::Arg::Value(b.ins().extractlane(v, i)));
            let r = self
                .libcall(b, builtin, &args, Some(lane))
                .expect("fma returns a value");
            result = b.ins().insertlane(result, r, i);
        }
        result
    }

    /// Where global `index` is stored: a base pointer and an offset from it.
    pub(crate) fn global_address(
        &self,
        b: &mut FunctionBuilder,
        index: GlobalIndex,
    ) -> (Value, i32) {
        match self.module.defined_global_index(index) {
            Some(def) => (
                self.vmctx,
                offset(self.offsets.vmctx_global_definition(def)),
            ),
            None => {
                let off = self.offsets.vmctx_global_import_ptr(index);
                (self.load_ptr(b, constant_field(), self.vmctx, off), 0)
            }
        }
    }

    /// The table's element base and current length (as a pointer-sized integer).
    ///
    /// A table whose type fixes its size (minimum = maximum, as LLVM declares the
    /// function tables of C and Rust programs) has that size forever, and its elements
    /// never move, since only growing moves them: its length is a constant and its base
    /// a load that may be hoisted out of loops. An imported table of such a type has
    /// that same size, because the type it is imported with bounds its own. Any other
    /// table may grow, and move, in every call.
    fn table_base_and_length(&self, b: &mut FunctionBuilder, table: TableIndex) -> (Value, Value) {
        let def_off = self.offsets.vmctx_table_definition_ptr(table);
        let def = self.load_ptr(b, constant_field(), self.vmctx, def_off);
        let ty = &self.module.tables[table];
        let fixed_size = ty.maximum == Some(ty.minimum);
        let flags = if fixed_size {
            constant_field()
        } else {
            MemFlagsData::trusted()
        };
        let base = self.load_ptr(
            b,
            flags,
            def,
            u32::from(self.offsets.vmtable_definition_base()),
        );
        let length = match i64::try_from(ty.minimum) {
            Ok(size) if fixed_size => b.ins().iconst(self.pointer, size),
            _ => {
                let len_off = u32::from(self.offsets.vmtable_definition_current_elements());
                self.load_ptr(b, MemFlagsData::trusted(), def, len_off)
            }
        };
        (base, length)
    }

    /// Calls function `callee` directly; a tail call returns no values.
    ///
    /// A defined function is called by its symbol. An imported one, whether wasm of
    /// another instance or a host function behind its wasm-to-host trampoline, is called
    /// through the import's `wasm_call` pointer with the import's own vmctx: every such
    /// target is compiled in the `tail` convention with the wasm signature, so a tail
    /// call to it is a real one in both cases.
    pub(crate) fn call(
        &self,
        b: &mut FunctionBuilder,
        callee: FuncIndex,
        args: &[Value],
        kind: CallKind,
    ) -> Vec<Value> {
        let ty = self.module.func_type(callee);
        let sig = b.import_signature(wasm_signature(ty, self.pointer));
        let mut full = Vec::with_capacity(args.len() + 2);
        match self.module.defined_func_index(callee) {
            Some(def) => {
                let func = crate::import_defined_function(b, def, sig);
                full.extend([self.vmctx, self.vmctx]);
                full.extend_from_slice(args);
                match kind {
                    CallKind::Normal => {
                        let call = b.ins().call(func, &full);
                        b.inst_results(call).to_vec()
                    }
                    CallKind::Tail => {
                        b.ins().return_call(func, &full);
                        Vec::new()
                    }
                    CallKind::Try(landing) => {
                        let (table, normal) = Self::exception_table(b, sig, landing);
                        b.ins().try_call(func, &full, table);
                        Self::continue_after_try_call(b, normal)
                    }
                }
            }
            None => {
                let import = self.offsets.vmctx_function_import(callee);
                let wasm_call_off = import + u32::from(self.offsets.vmfunction_import_wasm_call());
                let vmctx_off = import + u32::from(self.offsets.vmfunction_import_vmctx());
                let code = self.load_ptr(b, constant_field(), self.vmctx, wasm_call_off);
                let callee_vmctx = self.load_ptr(b, constant_field(), self.vmctx, vmctx_off);
                full.extend([callee_vmctx, self.vmctx]);
                full.extend_from_slice(args);
                Self::call_code(b, sig, code, &full, kind)
            }
        }
    }

    /// Calls the wasm-convention code at `code` with the full argument list (both vmctx
    /// pointers first).
    fn call_code(
        b: &mut FunctionBuilder,
        sig: ir::SigRef,
        code: Value,
        full: &[Value],
        kind: CallKind,
    ) -> Vec<Value> {
        match kind {
            CallKind::Normal => {
                let call = b.ins().call_indirect(sig, code, full);
                b.inst_results(call).to_vec()
            }
            CallKind::Tail => {
                b.ins().return_call_indirect(sig, code, full);
                Vec::new()
            }
            CallKind::Try(landing) => {
                let (table, normal) = Self::exception_table(b, sig, landing);
                b.ins().try_call_indirect(code, full, table);
                Self::continue_after_try_call(b, normal)
            }
        }
    }

    /// `call_indirect` (or, as a tail call, `return_call_indirect`) of type `ty`
    /// through `table` at `index`: both trap alike, on an index out of bounds, a null
    /// entry or a signature mismatch, before anything of the caller's frame is gone.
    pub(crate) fn call_indirect(
        &self,
        b: &mut FunctionBuilder,
        table: TableIndex,
        ty: TypeIndex,
        index: Value,
        args: &[Value],
        kind: CallKind,
    ) -> Vec<Value> {
        let (slot, index) = self.table_slot(b, table, index);
        let func_ref = self.load_table_element(b, table, slot, index);

        // A null entry faults on this load: the trap table names the cause.
        let null_flags =
            MemFlagsData::trusted().with_trap_code(Some(trap_code(Trap::IndirectCallToNull)));
        let actual = b.ins().load(
            types::I32,
            null_flags,
            func_ref,
            i32::from(self.offsets.vm_func_ref_type_index()),
        );
        let type_ids = self.load_ptr(
            b,
            constant_field(),
            self.vmctx,
            self.offsets.vmctx_type_ids(),
        );
        let expected = b.ins().load(
            types::I32,
            constant_field(),
            type_ids,
            offset(ty.as_u32() * 4),
        );
        let mismatch = b.ins().icmp(IntCC::NotEqual, actual, expected);
        b.ins().trapnz(mismatch, trap_code(Trap::BadSignature));

        let code = self.load_ptr(
            b,
            MemFlagsData::trusted(),
            func_ref,
            u32::from(self.offsets.vm_func_ref_wasm_call()),
        );
        self.call_func_ref_code(b, ty, func_ref, code, args, kind)
    }

    /// `call_ref` (or `return_call_ref`) of type `ty` on `func_ref`. Validation proved
    /// that a non-null reference has type `ty`, so there is no signature check; a null
    /// one faults on the load of its code pointer, which the trap table names.
    pub(crate) fn call_ref(
        &self,
        b: &mut FunctionBuilder,
        ty: TypeIndex,
        func_ref: Value,
        args: &[Value],
        kind: CallKind,
    ) -> Vec<Value> {
        let null_flags =
            MemFlagsData::trusted().with_trap_code(Some(trap_code(Trap::NullFunctionReference)));
        let code = b.ins().load(
            self.pointer,
            null_flags,
            func_ref,
            i32::from(self.offsets.vm_func_ref_wasm_call()),
        );
        self.call_func_ref_code(b, ty, func_ref, code, args, kind)
    }

    /// Calls `code`, the loaded code pointer of `func_ref`, with the reference's own
    /// vmctx as the callee's and ours as the caller's.
    fn call_func_ref_code(
        &self,
        b: &mut FunctionBuilder,
        ty: TypeIndex,
        func_ref: Value,
        code: Value,
        args: &[Value],
        kind: CallKind,
    ) -> Vec<Value> {
        let callee_vmctx = self.load_ptr(
            b,
            MemFlagsData::trusted(),
            func_ref,
            u32::from(self.offsets.vm_func_ref_vmctx()),
        );
        let mut full = Vec::with_capacity(args.len() + 2);
        full.extend([callee_vmctx, self.vmctx]);
        full.extend_from_slice(args);
        let sig = b.import_signature(wasm_signature(&self.module.types[ty], self.pointer));
        Self::call_code(b, sig, code, &full, kind)
    }
}

#[cfg(test)]
mod spectre_tests;
