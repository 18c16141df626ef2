//! Linear memories: a reservation of address space whose first bytes are accessible.
//!
//! ```text
//!  base                 base + length        base + reservation     + guard
//!  |  read/write bytes  |  inaccessible, may become accessible  |  never accessible  |
//! ```
//!
//! A static memory's reservation covers its maximum size, so it never moves and compiled
//! code may rely on the guard region instead of bounds checks. A dynamic memory is
//! checked explicitly and is moved to a bigger reservation when it outgrows its own.

use crate::VmError;
use crate::cow::MemoryImage;
use crate::mmap::Mmap;
use crate::vmcontext::VMMemoryDefinition;
use core::cell::UnsafeCell;
use std::sync::Arc;
use strata_environ::{MemoryStyle, Tunables};

/// Where a memory's address space comes from.
enum Backing {
    /// A reservation of its own, unmapped on drop unless the on-demand allocator keeps
    /// it for the next memory of the same shape.
    Owned(Reservation),
    /// Slot `index` of a pooling allocator, which owns the mapping; `capacity` bytes
    /// from the base may become accessible, and a guard follows them.
    #[cfg(feature = "pooling-allocator")]
    Slot {
        capacity: usize,
        index: crate::pooling::MemoryAllocationIndex,
    },
}

/// A memory's own address space: the reservation plus guard, and the copy-on-write
/// image mapped at its start (the mapping keeps the image's file alive; the reference
/// says which image it is, for reuse).
pub(crate) struct Reservation {
    pub(crate) mmap: Mmap,
    pub(crate) image: Option<Arc<MemoryImage>>,
}

/// A freed memory's reservation: its first `accessible` bytes are readable and
/// writable, everything after them is not.
pub(crate) struct FreedReservation {
    pub(crate) reservation: Reservation,
    pub(crate) accessible: usize,
}

/// How a memory of some type is laid out in a reservation of its own.
pub(crate) struct OwnedLayout {
    /// Bytes to reserve: the reservation plus the guard.
    pub(crate) total: usize,
    initial: usize,
    guard: usize,
    style: MemoryStyle,
}

impl OwnedLayout {
    /// The layout of a memory of type `ty` under `tunables`.
    ///
    /// # Errors
    /// Fails if the sizes overflow the address space.
    pub(crate) fn new(ty: &strata_environ::Memory, tunables: &Tunables) -> Result<Self, VmError> {
        let style = tunables.memory_style(ty);
        let page = crate::host_page_size();
        let initial = bytes(ty.minimum, ty).ok_or_else(|| too_big("the minimum memory size"))?;
        let guard =
            usize::try_from(tunables.memory_guard_size).map_err(|_| too_big("the guard"))?;
        let reservation = match style {
            MemoryStyle::Static { reservation } => {
                usize::try_from(reservation).map_err(|_| too_big("the reservation"))?
            }
            MemoryStyle::Dynamic {
                reservation_for_growth,
            } => {
                let growth = usize::try_from(reservation_for_growth).unwrap_or(usize::MAX);
                initial.saturating_add(growth).next_multiple_of(page)
            }
        };
        let total = reservation
            .checked_add(guard)
            .and_then(|t| t.checked_next_multiple_of(page))
            .ok_or_else(|| too_big("the memory"))?;
        Ok(OwnedLayout {
            total,
            initial,
            guard,
            style,
        })
    }
}

/// A linear memory owned by an instance.
pub struct Memory {
    backing: Backing,
    definition: Box<UnsafeCell<VMMemoryDefinition>>,
    ty: strata_environ::Memory,
    style: MemoryStyle,
    guard: usize,
    /// Whether a copy-on-write image mapped at creation holds the data segments. The
    /// mapping keeps the image's file alive; a pool slot's state keeps the image itself.
    has_image: bool,
}

// SAFETY: the definition cell is only written through `&mut self`; compiled code reads it
// only while the owning store runs on one thread.
unsafe impl Send for Memory {}
// SAFETY: as above.
unsafe impl Sync for Memory {}

fn bytes(pages: u64, ty: &strata_environ::Memory) -> Option<usize> {
    usize::try_from(pages.checked_mul(ty.page_size())?).ok()
}

fn too_big(what: &str) -> VmError {
    VmError::Limit(format!(
        "{what} exceeds the address space strata can reserve"
    ))
}

impl Memory {
    /// Creates a memory of type `ty` at its minimum size, laid out as `tunables` say.
    ///
    /// # Errors
    /// Fails if the address space cannot be reserved.
    pub fn new(ty: &strata_environ::Memory, tunables: &Tunables) -> Result<Memory, VmError> {
        Memory::with_image(ty, tunables, None)
    }

    /// Creates a memory like [`Memory::new`], with `image` mapped as its initial contents.
    ///
    /// # Errors
    /// Fails if the address space cannot be reserved or the image cannot be mapped.
    pub fn with_image(
        ty: &strata_environ::Memory,
        tunables: &Tunables,
        image: Option<&Arc<MemoryImage>>,
    ) -> Result<Memory, VmError> {
        Memory::owned(ty, &OwnedLayout::new(ty, tunables)?, image, None)
    }

    /// A memory laid out as `layout` says, in a fresh reservation with `image` mapped, or
    /// in `reuse`: a freed reservation of `layout.total` bytes with the same image
    /// mapped, whose written pages have been reset since.
    pub(crate) fn owned(
        ty: &strata_environ::Memory,
        layout: &OwnedLayout,
        image: Option<&Arc<MemoryImage>>,
        reuse: Option<FreedReservation>,
    ) -> Result<Memory, VmError> {
        let want = layout.initial.next_multiple_of(crate::host_page_size());
        let reservation = match reuse {
            Some(FreedReservation {
                reservation,
                accessible,
            }) => {
                debug_assert_eq!(reservation.mmap.len(), layout.total);
                // SAFETY: the reservation is ours and `want` fits in it (same layout).
                unsafe { set_accessible(reservation.mmap.as_ptr(), accessible, want)? };
                reservation
            }
            None => {
                let mut mmap = Mmap::reserve(layout.total)?;
                mmap.make_accessible(0, want)?;
                if let Some(image) = image {
                    assert!(
                        image.offset() + image.len() <= want,
                        "images lie within the initial size"
                    );
                    // SAFETY: the image's range lies inside the fresh reservation we own.
                    unsafe { image.map_at(mmap.as_ptr())? };
                }
                Reservation {
                    mmap,
                    image: image.cloned(),
                }
            }
        };
        let definition = Box::new(UnsafeCell::new(VMMemoryDefinition {
            base: reservation.mmap.as_ptr(),
            current_length: layout.initial,
        }));
        Ok(Memory {
            has_image: reservation.image.is_some(),
            backing: Backing::Owned(reservation),
            definition,
            ty: *ty,
            style: layout.style,
            guard: layout.guard,
        })
    }

    /// The reservation of a memory that has one of its own, for reuse; `Err` gives back
    /// a memory of a pool.
    pub(crate) fn into_reservation(self) -> Result<FreedReservation, Memory> {
        let accessible = self.byte_size().next_multiple_of(crate::host_page_size());
        match self.backing {
            Backing::Owned(reservation) => Ok(FreedReservation {
                reservation,
                accessible,
            }),
            #[cfg(feature = "pooling-allocator")]
            Backing::Slot { .. } => Err(self),
        }
    }

    /// The memory's type.
    pub fn ty(&self) -> &strata_environ::Memory {
        &self.ty
    }

    /// A memory in slot `index` of a pool: `capacity` bytes at `base` may become
    /// accessible, of which the first `accessible` already are, and `image_mapped` says
    /// whether `image` is already mapped there.
    ///
    /// # Safety
    /// The slot must be the caller's to lend until it gets the memory back from
    /// [`Memory::into_slot`], with a guard of `tunables.memory_guard_size` after
    /// `capacity`, and everything past `accessible` inaccessible.
    #[cfg(feature = "pooling-allocator")]
    #[expect(clippy::too_many_arguments, reason = "the slot's whole state")]
    pub(crate) unsafe fn in_slot(
        ty: &strata_environ::Memory,
        tunables: &Tunables,
        base: core::ptr::NonNull<u8>,
        capacity: usize,
        index: crate::pooling::MemoryAllocationIndex,
        accessible: usize,
        image: Option<&Arc<MemoryImage>>,
        image_mapped: bool,
    ) -> Result<Memory, VmError> {
        let page = crate::host_page_size();
        let initial = bytes(ty.minimum, ty)
            .filter(|&b| b <= capacity)
            .ok_or_else(|| too_big("the minimum memory size of a pool slot"))?;
        let want = initial.next_multiple_of(page);
        let ptr = base.as_ptr();
        // SAFETY: both ranges lie inside the slot, which the caller lends us.
        unsafe {
            set_accessible(ptr, accessible, want)?;
            if let Some(image) = image.filter(|_| !image_mapped) {
                image.map_at(ptr)?;
            }
        }
        Ok(Memory {
            backing: Backing::Slot { capacity, index },
            definition: Box::new(UnsafeCell::new(VMMemoryDefinition {
                base: ptr,
                current_length: initial,
            })),
            ty: *ty,
            style: tunables.memory_style(ty),
            guard: usize::try_from(tunables.memory_guard_size).unwrap_or(usize::MAX),
            has_image: image.is_some(),
        })
    }

    /// For a memory of a pool: its slot index, how many bytes from its base are
    /// accessible. `Err` gives back a memory with a reservation of its own.
    #[cfg(feature = "pooling-allocator")]
    pub(crate) fn into_slot(
        self,
    ) -> Result<(crate::pooling::MemoryAllocationIndex, usize), Memory> {
        match self.backing {
            Backing::Slot { index, .. } => {
                let accessible = self.byte_size().next_multiple_of(crate::host_page_size());
                Ok((index, accessible))
            }
            Backing::Owned { .. } => Err(self),
        }
    }

    /// Whether the memory was created with a copy-on-write image of its data segments.
    pub fn has_image(&self) -> bool {
        self.has_image
    }

    /// The definition compiled code reads.
    pub fn definition_ptr(&self) -> *mut VMMemoryDefinition {
        self.definition.get()
    }

    /// The base address if it stays where it is for the memory's whole life: in a
    /// static reservation or a pool slot, growing only makes more of it accessible. Only
    /// a dynamic memory that outgrows its reservation moves (see [`Memory::grow`]).
    pub fn fixed_base(&self) -> Option<*mut u8> {
        let fixed = match (&self.style, &self.backing) {
            (MemoryStyle::Static { .. }, _) => true,
            #[cfg(feature = "pooling-allocator")]
            (_, Backing::Slot { .. }) => true,
            (MemoryStyle::Dynamic { .. }, Backing::Owned(_)) => false,
        };
        fixed.then(|| self.base())
    }

    /// The current size in bytes.
    pub fn byte_size(&self) -> usize {
        // SAFETY: the definition is only written through `&mut self`.
        unsafe { (*self.definition.get()).current_length }
    }

    /// The current size in pages.
    pub fn pages(&self) -> u64 {
        self.byte_size() as u64 >> self.ty.page_size_log2
    }

    /// The first byte of the memory.
    pub fn base(&self) -> *mut u8 {
        // SAFETY: as in `byte_size`.
        unsafe { (*self.definition.get()).base }
    }

    /// Grows the memory by `delta` pages and returns the old size in pages, or `None` if
    /// it may not grow that far.
    ///
    /// # Errors
    /// Fails if the operating system refuses the memory.
    pub fn grow(&mut self, delta: u64) -> Result<Option<u64>, VmError> {
        let old_pages = self.pages();
        let Some(new_pages) = old_pages.checked_add(delta) else {
            return Ok(None);
        };
        if new_pages > self.ty.maximum_pages() {
            return Ok(None);
        }
        let Some(new_len) = bytes(new_pages, &self.ty) else {
            return Ok(None);
        };
        let old_len = self.byte_size();
        let page = crate::host_page_size();
        let reservation = match &self.backing {
            Backing::Owned(r) => r.mmap.len() - self.guard,
            #[cfg(feature = "pooling-allocator")]
            Backing::Slot { capacity, .. } => *capacity,
        };
        if new_len <= reservation {
            let start = old_len.next_multiple_of(page);
            let end = new_len.next_multiple_of(page);
            // SAFETY: `[start, end)` lies inside this memory's reservation and was not
            // accessible yet.
            unsafe {
                crate::mmap::protect(
                    self.base().add(start),
                    end.saturating_sub(start),
                    libc::PROT_READ | libc::PROT_WRITE,
                )?;
            }
        } else {
            let (
                MemoryStyle::Dynamic {
                    reservation_for_growth,
                },
                Backing::Owned(Reservation { mmap: old, .. }),
            ) = (self.style, &self.backing)
            else {
                return Ok(None);
            };
            let growth = usize::try_from(reservation_for_growth).unwrap_or(usize::MAX);
            let Some(total) = new_len
                .checked_add(growth)
                .and_then(|r| r.checked_add(self.guard))
            else {
                return Ok(None);
            };
            let mut mmap = match Mmap::reserve(total.next_multiple_of(page)) {
                Ok(m) => m,
                Err(_) => return Ok(None),
            };
            mmap.make_accessible(0, new_len.next_multiple_of(page))?;
            // SAFETY: both mappings are ours, distinct, and at least `old_len` long and
            // accessible.
            unsafe { core::ptr::copy_nonoverlapping(old.as_ptr(), mmap.as_ptr(), old_len) };
            self.definition.get_mut().base = mmap.as_ptr();
            // The copy holds no image: its pages are all private.
            self.backing = Backing::Owned(Reservation { mmap, image: None });
        }
        self.definition.get_mut().current_length = new_len;
        Ok(Some(old_pages))
    }

    /// The memory's bytes.
    pub fn data(&self) -> &[u8] {
        // SAFETY: `base..base + byte_size` is accessible memory owned by `self`.
        unsafe { core::slice::from_raw_parts(self.base(), self.byte_size()) }
    }

    /// The memory's bytes, mutably.
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and `&mut self` makes the borrow unique.
        unsafe { core::slice::from_raw_parts_mut(self.base(), self.byte_size()) }
    }
}

/// Makes the first `want` bytes at `base` accessible and the rest up to `accessible`
/// (the previous accessible size) inaccessible again.
///
/// # Safety
/// Both sizes are page multiples within a reservation at `base` the caller owns, with
/// no references into the bytes that become inaccessible.
unsafe fn set_accessible(base: *mut u8, accessible: usize, want: usize) -> Result<(), VmError> {
    // SAFETY: forwarded contract.
    unsafe {
        if accessible > want {
            crate::mmap::protect(base.add(want), accessible - want, libc::PROT_NONE)
        } else {
            let prot = libc::PROT_READ | libc::PROT_WRITE;
            crate::mmap::protect(base.add(accessible), want - accessible, prot)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(min: u64, max: Option<u64>) -> strata_environ::Memory {
        strata_environ::Memory {
            minimum: min,
            maximum: max,
            memory64: false,
            shared: false,
            page_size_log2: 16,
        }
    }

    #[test]
    fn static_memories_grow_in_place() {
        let mut m = Memory::new(&ty(1, Some(4)), &Tunables::default_host()).unwrap();
        let base = m.base();
        m.data_mut()[65535] = 9;
        assert_eq!(m.grow(2).unwrap(), Some(1));
        assert_eq!(m.pages(), 3);
        assert_eq!(m.base(), base);
        assert_eq!(
            m.fixed_base(),
            Some(base),
            "compiled code may keep this base"
        );
        assert_eq!(m.data()[65535], 9);
        m.data_mut()[3 * 65536 - 1] = 1;
        assert_eq!(m.grow(2).unwrap(), None, "past the maximum");
        assert_eq!(m.grow(0).unwrap(), Some(3));
    }

    #[test]
    fn dynamic_memories_move_and_keep_their_contents() {
        let tunables = Tunables {
            memory_reservation: 1 << 16,
            memory_guard_size: 1 << 16,
            memory_reservation_for_growth: 1 << 16,
            ..Tunables::default_host()
        };
        let mut m = Memory::new(&ty(1, None), &tunables).unwrap();
        assert!(matches!(m.style, MemoryStyle::Dynamic { .. }));
        assert_eq!(m.fixed_base(), None, "the base moves below");
        m.data_mut()[100] = 42;
        assert_eq!(m.grow(4).unwrap(), Some(1));
        assert_eq!(m.byte_size(), 5 << 16);
        assert_eq!(m.data()[100], 42);
        // SAFETY: reading the definition this memory owns.
        let def = unsafe { &*m.definition_ptr() };
        assert_eq!(def.base, m.base());
        assert_eq!(def.current_length, 5 << 16);
    }

    #[test]
    fn wasm32_memories_stop_at_four_gib() {
        let mut m = Memory::new(&ty(0, None), &Tunables::default_host()).unwrap();
        assert_eq!(m.grow(65537).unwrap(), None);
        assert_eq!(m.grow(u64::MAX).unwrap(), None);
    }
}
