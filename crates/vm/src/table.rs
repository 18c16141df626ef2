//! Tables of references. Each element is a pointer (`*mut VMFuncRef` for `funcref`), null
//! for a null reference.

use crate::VmError;
use crate::vmcontext::VMTableDefinition;
use core::cell::UnsafeCell;

/// The most elements a table may have; larger tables are refused rather than risking the
/// host's memory.
pub const MAX_TABLE_ELEMENTS: u64 = 10_000_000;

/// A table owned by an instance.
pub struct Table {
    elements: Vec<*mut u8>,
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
        let elements = vec![init; minimum];
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

    fn sync_definition(&mut self) {
        let def = self.definition.get_mut();
        def.base = self.elements.as_mut_ptr();
        def.current_elements = self.elements.len();
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
        self.elements.len() as u64
    }

    /// Element `index`, or `None` if out of bounds.
    pub fn get(&self, index: u64) -> Option<*mut u8> {
        self.elements.get(usize::try_from(index).ok()?).copied()
    }

    /// Sets element `index`; `false` if out of bounds.
    pub fn set(&mut self, index: u64, value: *mut u8) -> bool {
        match usize::try_from(index)
            .ok()
            .and_then(|i| self.elements.get_mut(i))
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
        &self.elements
    }

    /// The elements, mutably. Their number cannot change through this.
    pub fn elements_mut(&mut self) -> &mut [*mut u8] {
        &mut self.elements
    }

    /// Grows by `delta` elements set to `init`; the old size, or `None` if it may not.
    pub fn grow(&mut self, delta: u64, init: *mut u8) -> Option<u64> {
        let old = self.size();
        let new = old.checked_add(delta)?;
        if new > self.ty.maximum.unwrap_or(u64::MAX) || new > MAX_TABLE_ELEMENTS {
            return None;
        }
        let new = usize::try_from(new).ok()?;
        self.elements.try_reserve(new - self.elements.len()).ok()?;
        self.elements.resize(new, init);
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
