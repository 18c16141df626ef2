//! Tables of references. Each element is a pointer (`*mut VMFuncRef` for `funcref`), null
//! for a null reference.

use crate::VmError;
use crate::vmcontext::VMTableDefinition;
use core::cell::UnsafeCell;

/// The most elements a table may have; larger tables are refused rather than risking the
/// host's memory.
pub const MAX_TABLE_ELEMENTS: u64 = 10_000_000;

/// Where a table's elements live.
enum Elements {
    /// A vector of its own.
    Vec(Vec<*mut u8>),
    /// A slot of a pooling allocator, which owns the memory: room for `capacity`
    /// elements at `base`, of which the first `len` are the table.
    #[cfg(feature = "pooling-allocator")]
    Slot {
        base: core::ptr::NonNull<*mut u8>,
        len: usize,
        capacity: usize,
        index: usize,
    },
}

/// A table owned by an instance.
pub struct Table {
    elements: Elements,
    definition: Box<UnsafeCell<VMTableDefinition>>,
    ty: strata_environ::Table,
}

// SAFETY: the elements are plain pointers whose targets the store keeps alive; they are
// only written through `&mut self` or by compiled code of the store's running thread.
unsafe impl Send for Table {}
// SAFETY: as above.
unsafe impl Sync for Table {}

impl Table {
    /// Creates a table of type `ty` at its minimum size, every element `init`.
    ///
    /// # Errors
    /// Fails if the minimum size exceeds [`MAX_TABLE_ELEMENTS`].
    pub fn new(ty: &strata_environ::Table, init: *mut u8) -> Result<Table, VmError> {
        if ty.minimum > MAX_TABLE_ELEMENTS {
            return Err(VmError::Limit(format!(
                "table of {} elements exceeds the limit of {MAX_TABLE_ELEMENTS}",
                ty.minimum
            )));
        }
        let minimum = usize::try_from(ty.minimum).expect("bounded by MAX_TABLE_ELEMENTS");
        let elements = Elements::Vec(vec![init; minimum]);
        let mut table = Table {
            elements,
            definition: Box::new(UnsafeCell::new(VMTableDefinition {
                base: core::ptr::null_mut(),
                current_elements: 0,
            })),
            ty: *ty,
        };
        table.sync_definition();
        Ok(table)
    }

    /// A table of type `ty` in slot `index` of a pool, with room for `capacity`
    /// elements at `base`, every element `init`.
    ///
    /// # Safety
    /// The slot must be readable and writable, all null (zero), and the caller's to lend
    /// until it gets the table back from [`Table::into_slot`].
    #[cfg(feature = "pooling-allocator")]
    pub(crate) unsafe fn in_slot(
        ty: &strata_environ::Table,
        base: core::ptr::NonNull<*mut u8>,
        capacity: usize,
        index: usize,
        init: *mut u8,
    ) -> Result<Table, VmError> {
        let len = usize::try_from(ty.minimum)
            .ok()
            .filter(|&n| n <= capacity)
            .ok_or_else(|| {
                VmError::Limit(format!(
                    "table of {} elements exceeds the pool's limit of {capacity}",
                    ty.minimum
                ))
            })?;
        let mut table = Table {
            elements: Elements::Slot {
                base,
                len,
                capacity,
                index,
            },
            definition: Box::new(UnsafeCell::new(VMTableDefinition {
                base: core::ptr::null_mut(),
                current_elements: 0,
            })),
            ty: *ty,
        };
        // A slot comes back from the pool all null: filling it with null again would
        // only touch (and fault in) its pages.
        if !init.is_null() {
            table.elements_mut().fill(init);
        }
        table.sync_definition();
        Ok(table)
    }

    /// For a table of a pool: its slot index and how many elements it used. `Err` gives
    /// back a table with elements of its own.
    #[cfg(feature = "pooling-allocator")]
    pub(crate) fn into_slot(self) -> Result<(usize, usize), Table> {
        match self.elements {
            Elements::Slot { index, len, .. } => Ok((index, len)),
            Elements::Vec(_) => Err(self),
        }
    }

    fn sync_definition(&mut self) {
        let elements = self.elements_mut();
        let (base, len) = (elements.as_mut_ptr(), elements.len());
        let def = self.definition.get_mut();
        def.base = base;
        def.current_elements = len;
    }

    /// The table's type.
    pub fn ty(&self) -> &strata_environ::Table {
        &self.ty
    }

    /// The definition compiled code reads.
    pub fn definition_ptr(&self) -> *mut VMTableDefinition {
        self.definition.get()
    }

    /// The number of elements.
    pub fn size(&self) -> u64 {
        self.elements().len() as u64
    }

    /// Element `index`, or `None` if out of bounds.
    pub fn get(&self, index: u64) -> Option<*mut u8> {
        self.elements().get(usize::try_from(index).ok()?).copied()
    }

    /// Sets element `index`; `false` if out of bounds.
    pub fn set(&mut self, index: u64, value: *mut u8) -> bool {
        match usize::try_from(index)
            .ok()
            .and_then(|i| self.elements_mut().get_mut(i))
        {
            Some(slot) => {
                *slot = value;
                true
            }
            None => false,
        }
    }

    /// The elements.
    pub fn elements(&self) -> &[*mut u8] {
        match &self.elements {
            Elements::Vec(v) => v,
            #[cfg(feature = "pooling-allocator")]
            // SAFETY: the slot holds `len` initialized elements, lent to this table.
            Elements::Slot { base, len, .. } => unsafe {
                core::slice::from_raw_parts(base.as_ptr(), *len)
            },
        }
    }

    /// The elements, mutably. Their number cannot change through this.
    pub fn elements_mut(&mut self) -> &mut [*mut u8] {
        match &mut self.elements {
            Elements::Vec(v) => v,
            #[cfg(feature = "pooling-allocator")]
            // SAFETY: as in `elements`, and `&mut self` makes the borrow unique.
            Elements::Slot { base, len, .. } => unsafe {
                core::slice::from_raw_parts_mut(base.as_ptr(), *len)
            },
        }
    }

    /// Grows by `delta` elements set to `init`; the old size, or `None` if it may not.
    pub fn grow(&mut self, delta: u64, init: *mut u8) -> Option<u64> {
        let old = self.size();
        let new = old.checked_add(delta)?;
        if new > self.ty.maximum.unwrap_or(u64::MAX) || new > MAX_TABLE_ELEMENTS {
            return None;
        }
        let new = usize::try_from(new).ok()?;
        match &mut self.elements {
            Elements::Vec(v) => {
                v.try_reserve(new - v.len()).ok()?;
                v.resize(new, init);
            }
            #[cfg(feature = "pooling-allocator")]
            Elements::Slot {
                base,
                len,
                capacity,
                ..
            } => {
                if new > *capacity {
                    return None;
                }
                // SAFETY: `len..new` lies inside the slot lent to this table.
                unsafe { core::slice::from_raw_parts_mut(base.as_ptr().add(*len), new - *len) }
                    .fill(init);
                *len = new;
            }
        }
        self.sync_definition();
        Some(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_environ::WasmRefType;

    fn ty(min: u64, max: Option<u64>) -> strata_environ::Table {
        strata_environ::Table {
            element: WasmRefType::FUNCREF,
            minimum: min,
            maximum: max,
            table64: false,
        }
    }

    #[test]
    fn grow_respects_the_maximum_and_updates_the_definition() {
        let mut t = Table::new(&ty(2, Some(5)), core::ptr::null_mut()).unwrap();
        let marker = 8usize as *mut u8;
        assert_eq!(t.grow(3, marker), Some(2));
        assert_eq!(t.grow(1, marker), None);
        assert_eq!(t.get(4), Some(marker));
        assert_eq!(t.get(5), None);
        // SAFETY: reading the definition this table owns.
        let def = unsafe { &*t.definition_ptr() };
        assert_eq!(def.current_elements, 5);
        assert!(t.set(0, marker));
        assert!(!t.set(5, marker));
    }

    #[test]
    fn huge_tables_are_refused() {
        assert!(Table::new(&ty(u64::from(u32::MAX), None), core::ptr::null_mut()).is_err());
    }
}
