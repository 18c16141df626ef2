//! Tables of references.
//!
//! An `externref` table holds one word per element, zero for null. A `funcref` table is
//! initialized lazily (see [`strata_environ::TableInitialization`]): its elements start
//! as zero, meaning *not yet initialized*, and every initialized element is the
//! `*mut VMFuncRef` with its low bit set ([`FUNCREF_INIT_BIT`]), so a null function
//! reference is stored as `1`. Function references are aligned, so the bit is free.
//! Compiled code reads the word, takes the slow path through the owning instance when it
//! is zero, and clears the bit otherwise.

use crate::VmError;
use crate::vmcontext::VMTableDefinition;
use core::cell::UnsafeCell;
use strata_environ::FUNCREF_INIT_BIT;

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
        index: crate::pooling::TableAllocationIndex,
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
        let elements = Elements::Vec(vec![core::ptr::null_mut(); minimum]);
        Ok(Table::from_zeroed(elements, ty, init))
    }

    /// A table of type `ty` over `elements`, all zero, with every element set to `init`.
    /// Zero already means null for `externref` and "not yet initialized" for `funcref`,
    /// which resolves to null unless the module's plan says otherwise: a null `init`
    /// writes nothing, so a fresh table's pages stay untouched.
    fn from_zeroed(elements: Elements, ty: &strata_environ::Table, init: *mut u8) -> Table {
        let mut table = Table {
            elements,
            definition: Box::new(UnsafeCell::new(VMTableDefinition {
                base: core::ptr::null_mut(),
                current_elements: 0,
            })),
            ty: *ty,
        };
        if !init.is_null() {
            let value = table.encode(init);
            table.raw_mut().fill(value);
        }
        table.sync_definition();
        table
    }

    /// Whether elements are initialized lazily and tagged with [`FUNCREF_INIT_BIT`].
    fn is_lazy(&self) -> bool {
        self.ty.element.heap_type.is_func()
    }

    /// The word stored for reference `value`.
    fn encode(&self, value: *mut u8) -> *mut u8 {
        if self.is_lazy() {
            value.map_addr(|a| a | FUNCREF_INIT_BIT)
        } else {
            value
        }
    }

    /// The reference a stored word holds, or `None` if it is not initialized yet.
    fn decode(&self, raw: *mut u8) -> Option<*mut u8> {
        if !self.is_lazy() {
            Some(raw)
        } else if raw.is_null() {
            None
        } else {
            Some(raw.map_addr(|a| a & !FUNCREF_INIT_BIT))
        }
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
        index: crate::pooling::TableAllocationIndex,
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
        let elements = Elements::Slot {
            base,
            len,
            capacity,
            index,
        };
        Ok(Table::from_zeroed(elements, ty, init))
    }

    /// For a table of a pool: its slot index and how many elements it used. `Err` gives
    /// back a table with elements of its own.
    #[cfg(feature = "pooling-allocator")]
    pub(crate) fn into_slot(self) -> Result<(crate::pooling::TableAllocationIndex, usize), Table> {
        match self.elements {
            Elements::Slot { index, len, .. } => Ok((index, len)),
            Elements::Vec(_) => Err(self),
        }
    }

    fn sync_definition(&mut self) {
        let elements = self.raw_mut();
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
        self.raw().len() as u64
    }

    /// Element `index`: `None` if out of bounds, `Some(None)` if it is a `funcref`
    /// element not initialized yet (see [`Table::get_or_init`]).
    pub fn get(&self, index: u64) -> Option<Option<*mut u8>> {
        let raw = *self.raw().get(usize::try_from(index).ok()?)?;
        Some(self.decode(raw))
    }

    /// Element `index`, first setting it to `init` if it is not initialized yet; `None`
    /// if out of bounds.
    pub fn get_or_init(&mut self, index: u64, init: *mut u8) -> Option<*mut u8> {
        let i = usize::try_from(index).ok()?;
        let raw = *self.raw().get(i)?;
        Some(self.decode(raw).unwrap_or_else(|| {
            self.raw_mut()[i] = self.encode(init);
            init
        }))
    }

    /// Sets element `index`; `false` if out of bounds.
    pub fn set(&mut self, index: u64, value: *mut u8) -> bool {
        let value = self.encode(value);
        match usize::try_from(index)
            .ok()
            .and_then(|i| self.raw_mut().get_mut(i))
        {
            Some(slot) => {
                *slot = value;
                true
            }
            None => false,
        }
    }

    /// Sets the elements in `range`, which must be in bounds, to `value`.
    pub(crate) fn fill(&mut self, range: core::ops::Range<usize>, value: *mut u8) {
        let value = self.encode(value);
        self.raw_mut()[range].fill(value);
    }

    /// The stored words, tagged as the module documentation describes.
    pub(crate) fn raw(&self) -> &[*mut u8] {
        match &self.elements {
            Elements::Vec(v) => v,
            #[cfg(feature = "pooling-allocator")]
            // SAFETY: the slot holds `len` initialized elements, lent to this table.
            Elements::Slot { base, len, .. } => unsafe {
                core::slice::from_raw_parts(base.as_ptr(), *len)
            },
        }
    }

    /// The stored words, mutably. Their number cannot change through this.
    pub(crate) fn raw_mut(&mut self) -> &mut [*mut u8] {
        match &mut self.elements {
            Elements::Vec(v) => v,
            #[cfg(feature = "pooling-allocator")]
            // SAFETY: as in `raw`, and `&mut self` makes the borrow unique.
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
        let init = self.encode(init);
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
        assert_eq!(t.get(4), Some(Some(marker)));
        assert_eq!(t.get(5), None);
        // SAFETY: reading the definition this table owns.
        let def = unsafe { &*t.definition_ptr() };
        assert_eq!(def.current_elements, 5);
        assert!(t.set(0, marker));
        assert!(!t.set(5, marker));
    }

    #[test]
    fn funcref_elements_start_uninitialized_and_are_set_once() {
        let mut t = Table::new(&ty(3, None), core::ptr::null_mut()).unwrap();
        let (first, second) = (16usize as *mut u8, 32usize as *mut u8);
        assert_eq!(t.get(0), Some(None));
        assert_eq!(t.get_or_init(0, first), Some(first));
        assert_eq!(
            t.get_or_init(0, second),
            Some(first),
            "initialized only once"
        );
        assert!(t.set(1, core::ptr::null_mut()));
        assert_eq!(t.get(1), Some(Some(core::ptr::null_mut())));
        assert_eq!(t.get_or_init(1, second), Some(core::ptr::null_mut()));
        assert_eq!(t.raw()[1].addr(), FUNCREF_INIT_BIT, "null is the bit alone");
        assert_eq!(t.get_or_init(3, first), None);
    }

    #[test]
    fn externref_elements_are_plain_words() {
        let externref = strata_environ::Table {
            element: WasmRefType::EXTERNREF,
            ..ty(2, None)
        };
        let mut t = Table::new(&externref, core::ptr::null_mut()).unwrap();
        assert_eq!(t.get(0), Some(Some(core::ptr::null_mut())));
        let value = 5usize as *mut u8;
        assert!(t.set(1, value));
        assert_eq!(t.raw()[1], value);
    }

    #[test]
    fn huge_tables_are_refused() {
        assert!(Table::new(&ty(u64::from(u32::MAX), None), core::ptr::null_mut()).is_err());
    }
}
