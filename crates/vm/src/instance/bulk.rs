//! The instance side of the reference-type and bulk-memory instructions: growing and
//! filling tables, copying between tables and memories, and initializing them from
//! passive segments. Each operation checks all of its bounds before touching anything,
//! so a trapping operation changes nothing.

use super::{ConstValue, Instance};
use crate::vmcontext::VMMemoryDefinition;
use core::ops::Range;
use strata_environ::{
    DataIndex, DefinedTableIndex, ElemIndex, EntityRef, HOST_PTR, MemoryIndex, TableIndex, Trap,
    VMOffsets,
};

/// The indices `start..start + len` if they fit in `size` elements.
fn span(start: u64, len: u64, size: u64) -> Option<Range<usize>> {
    let end = start.checked_add(len)?;
    if end > size {
        return None;
    }
    Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
}

impl Instance {
    /// What element `index` of this instance's table `table` starts as, by the module's
    /// table initialization plan: a function reference or null.
    fn planned_element(&mut self, table: DefinedTableIndex, index: u64) -> *mut u8 {
        let plan = &self.runtime.module.table_initialization;
        usize::try_from(index)
            .ok()
            .and_then(|i| plan.initial_func(table, i))
            .and_then(|f| self.func_ref(f))
            .map_or(core::ptr::null_mut(), |p| p.as_ptr().cast())
    }

    /// Element `index` of defined table `table`, initializing it from the plan if this
    /// is its first use; `None` if out of bounds.
    pub(crate) fn defined_table_get(
        &mut self,
        table: DefinedTableIndex,
        index: u64,
    ) -> Option<*mut u8> {
        let init = self.planned_element(table, index);
        self.tables[table].get_or_init(index, init)
    }

    /// Element `index` of table `table`; `None` if out of bounds.
    pub(crate) fn table_get(&mut self, table: TableIndex, index: u64) -> Option<*mut u8> {
        let (owner, def) = self.table_owner(table);
        owner.defined_table_get(def, index)
    }

    /// Initializes every element of `range` of defined table `table` that has not been
    /// yet, so its words can be copied elsewhere.
    fn materialize(&mut self, table: DefinedTableIndex, range: Range<usize>) {
        for i in range {
            if self.tables[table].raw()[i].is_null() {
                self.defined_table_get(table, i as u64);
            }
        }
    }

    /// `table.grow`: the old size, or `None` if the table may not grow that far.
    pub(crate) fn table_grow(
        &mut self,
        table: TableIndex,
        delta: u64,
        init: *mut u8,
    ) -> Option<u64> {
        let (owner, def) = self.table_owner(table);
        owner.tables[def].grow(delta, init)
    }

    /// `table.fill`.
    pub(crate) fn table_fill(
        &mut self,
        table: TableIndex,
        dst: u64,
        value: *mut u8,
        len: u64,
    ) -> Result<(), Trap> {
        let (owner, def) = self.table_owner(table);
        let table = &mut owner.tables[def];
        let range = span(dst, len, table.size()).ok_or(Trap::TableOutOfBounds)?;
        table.fill(range, value);
        Ok(())
    }

    /// `table.copy`; the tables may be the same one. Uninitialized source elements are
    /// initialized first: the words copied must mean the same in their new place.
    pub(crate) fn table_copy(
        &mut self,
        dst_table: TableIndex,
        src_table: TableIndex,
        dst: u64,
        src: u64,
        len: u64,
    ) -> Result<(), Trap> {
        let (src_owner, src_def) = self.table_owner(src_table);
        let src_owner: *mut Instance = src_owner;
        let (dst_owner, dst_def) = self.table_owner(dst_table);
        let dst_owner: *mut Instance = dst_owner;
        if core::ptr::eq(src_owner, dst_owner) && src_def == dst_def {
            // SAFETY: `dst_owner` is a live instance reached from this one; no other
            // reference to it is in use.
            let owner = unsafe { &mut *dst_owner };
            let size = owner.tables[dst_def].size();
            let from = span(src, len, size).ok_or(Trap::TableOutOfBounds)?;
            let to = span(dst, len, size).ok_or(Trap::TableOutOfBounds)?;
            owner.materialize(dst_def, from.clone());
            owner.tables[dst_def].raw_mut().copy_within(from, to.start);
            return Ok(());
        }
        // SAFETY: two distinct tables (possibly of one instance), each reached through a
        // live instance; the borrow of the source ends before the destination's. Resolving
        // source elements is not observable, so doing it before a trap is harmless.
        let values: Vec<*mut u8> = unsafe {
            let owner = &mut *src_owner;
            let from =
                span(src, len, owner.tables[src_def].size()).ok_or(Trap::TableOutOfBounds)?;
            owner.materialize(src_def, from.clone());
            owner.tables[src_def].raw()[from].to_vec()
        };
        // SAFETY: as above.
        let table = unsafe { &mut (&mut *dst_owner).tables[dst_def] };
        let to = span(dst, len, table.size()).ok_or(Trap::TableOutOfBounds)?;
        table.raw_mut()[to].copy_from_slice(&values);
        Ok(())
    }

    /// `table.init` from element segment `elem`, which is empty once dropped.
    pub(crate) fn table_init(
        &mut self,
        table: TableIndex,
        elem: ElemIndex,
        dst: u64,
        src: u64,
        len: u64,
    ) -> Result<(), Trap> {
        let module = self.runtime.module.clone();
        let items: &[_] = if self.dropped_elems[elem.index()] {
            &[]
        } else {
            &module.elem_segments[elem].items
        };
        let from = span(src, len, items.len() as u64).ok_or(Trap::TableOutOfBounds)?;
        let size = {
            let (owner, def) = self.table_owner(table);
            owner.tables[def].size()
        };
        let to = span(dst, len, size).ok_or(Trap::TableOutOfBounds)?;
        let values: Vec<*mut u8> = items[from]
            .iter()
            .map(|item| match self.eval(item) {
                ConstValue::Ref(p) => p,
                ConstValue::Bits(_) => core::ptr::null_mut(),
            })
            .collect();
        let (owner, def) = self.table_owner(table);
        let table = &mut owner.tables[def];
        for (i, value) in to.zip(values) {
            table.set(i as u64, value);
        }
        Ok(())
    }

    /// `elem.drop`.
    pub(crate) fn elem_drop(&mut self, elem: ElemIndex) {
        self.dropped_elems[elem.index()] = true;
    }

    /// The base and byte length of memory `index`, read where compiled code reads them:
    /// through the vmctx's pointer to the memory's definition. Those cache lines are the
    /// ones the calling code just used, so a `memory.copy` between large copies (which
    /// evict everything else) does not wait on the instance's bookkeeping.
    fn memory_span(&mut self, index: MemoryIndex) -> (*mut u8, u64) {
        debug_assert!(index.index() < self.runtime.module.memories.len());
        let ptr = u32::from(HOST_PTR);
        let off = VMOffsets::vmctx_memories_begin(HOST_PTR) + index.as_u32() * ptr;
        // SAFETY: every memory of the module, imported or defined, has its definition
        // pointer in this slot, written at instantiation, and compiled code passes only
        // validated memory indices. The definition lives as long as the instance.
        unsafe {
            let definition = *self.vmctx_field::<*const VMMemoryDefinition>(off);
            ((*definition).base, (*definition).current_length as u64)
        }
    }

    /// `memory.copy`; the memories may be the same one and the ranges may overlap.
    pub(crate) fn memory_copy(
        &mut self,
        dst_memory: MemoryIndex,
        dst: u64,
        src_memory: MemoryIndex,
        src: u64,
        len: u64,
    ) -> Result<(), Trap> {
        let (dst_base, dst_size) = self.memory_span(dst_memory);
        let (src_base, src_size) = self.memory_span(src_memory);
        let to = span(dst, len, dst_size).ok_or(Trap::MemoryOutOfBounds)?;
        let from = span(src, len, src_size).ok_or(Trap::MemoryOutOfBounds)?;
        // SAFETY: both ranges lie inside accessible memory owned by live instances, and
        // `copy` allows them to overlap.
        unsafe { core::ptr::copy(src_base.add(from.start), dst_base.add(to.start), to.len()) };
        Ok(())
    }

    /// `memory.fill` with the low byte of `value`.
    pub(crate) fn memory_fill(
        &mut self,
        memory: MemoryIndex,
        dst: u64,
        value: u8,
        len: u64,
    ) -> Result<(), Trap> {
        let (base, size) = self.memory_span(memory);
        let to = span(dst, len, size).ok_or(Trap::MemoryOutOfBounds)?;
        // SAFETY: the range lies inside accessible memory owned by a live instance.
        unsafe { core::ptr::write_bytes(base.add(to.start), value, to.len()) };
        Ok(())
    }

    /// `memory.init` from data segment `data`, which is empty once dropped.
    pub(crate) fn memory_init(
        &mut self,
        memory: MemoryIndex,
        data: DataIndex,
        dst: u64,
        src: u64,
        len: u64,
    ) -> Result<(), Trap> {
        let runtime = self.runtime.clone();
        // Instantiation checked the data; a module whose data failed the check has no
        // instances.
        let bytes: &[u8] = match runtime.wasm_data() {
            Ok(all) if !self.dropped_data[data.index()] => {
                runtime.module.data_segments[data].bytes(all)
            }
            _ => &[],
        };
        let from = span(src, len, bytes.len() as u64).ok_or(Trap::MemoryOutOfBounds)?;
        let (owner, def) = self.memory_owner(memory);
        let memory = owner.memories[def].data_mut();
        let to = span(dst, len, memory.len() as u64).ok_or(Trap::MemoryOutOfBounds)?;
        memory[to].copy_from_slice(&bytes[from]);
        Ok(())
    }

    /// `data.drop`.
    pub(crate) fn data_drop(&mut self, data: DataIndex) {
        self.dropped_data[data.index()] = true;
    }
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans_check_the_end_without_overflow() {
        assert_eq!(span(2, 3, 5), Some(2..5));
        assert_eq!(span(5, 0, 5), Some(5..5));
        assert_eq!(span(6, 0, 5), None);
        assert_eq!(span(2, 4, 5), None);
        assert_eq!(span(u64::MAX, 2, u64::MAX), None);
    }
}
