//! Anonymous memory mappings: reserved inaccessible, then made accessible in parts.

use crate::VmError;
use core::ptr::NonNull;

/// An anonymous mapping, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; access goes through `&`/`&mut`
// or through raw pointers whose users uphold their own contracts.
unsafe impl Send for Mmap {}
// SAFETY: as above; `Mmap` itself has no interior mutability.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Reserves `len` bytes (a multiple of the page size) of inaccessible address space.
    pub(crate) fn reserve(len: usize) -> Result<Mmap, VmError> {
        if len == 0 {
            return Ok(Mmap {
                ptr: NonNull::dangling(),
                len: 0,
            });
        }
        // SAFETY: a fresh anonymous mapping at an address the kernel picks touches no
        // existing memory.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(VmError::Mmap(std::io::Error::last_os_error()));
        }
        let ptr = NonNull::new(ptr.cast())
            .ok_or_else(|| VmError::Mmap(std::io::Error::other("null mapping")))?;
        Ok(Mmap { ptr, len })
    }

    /// Makes `[start, start + len)` of the mapping readable and writable.
    pub(crate) fn make_accessible(&mut self, start: usize, len: usize) -> Result<(), VmError> {
        self.protect(start, len, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// Sets the protection of `[start, start + len)`; both must be page-aligned and in
    /// bounds.
    pub(crate) fn protect(
        &mut self,
        start: usize,
        len: usize,
        prot: libc::c_int,
    ) -> Result<(), VmError> {
        if len == 0 {
            return Ok(());
        }
        assert!(
            start.checked_add(len).is_some_and(|end| end <= self.len),
            "range inside the mapping"
        );
        // SAFETY: the range lies inside this mapping (checked above), which we own.
        let r = unsafe { libc::mprotect(self.ptr.as_ptr().add(start).cast(), len, prot) };
        if r != 0 {
            return Err(VmError::Mmap(std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// The first byte of the mapping.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapping's length.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: we own the mapping; nothing refers to it once its owner drops it.
        let r = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        debug_assert_eq!(r, 0, "munmap failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessible_parts_can_be_written() {
        let page = crate::host_page_size();
        let mut m = Mmap::reserve(4 * page).unwrap();
        m.make_accessible(page, page).unwrap();
        // SAFETY: the second page was just made writable.
        unsafe { m.as_ptr().add(page).write(7) };
        // SAFETY: as above.
        assert_eq!(unsafe { m.as_ptr().add(page).read() }, 7);
    }

    #[test]
    #[should_panic(expected = "range inside the mapping")]
    fn ranges_past_the_end_are_refused() {
        let page = crate::host_page_size();
        let mut m = Mmap::reserve(page).unwrap();
        let _ = m.make_accessible(0, 2 * page);
    }
}
