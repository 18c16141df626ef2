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

    /// Maps the first `len` bytes of `file` privately and read-only; the mapping's
    /// length is `len` rounded up to whole pages, the bytes past the file reading as 0.
    pub(crate) fn map_file(file: &std::fs::File, len: usize) -> Result<Mmap, VmError> {
        use std::os::fd::AsRawFd;
        if len == 0 {
            return Mmap::reserve(0);
        }
        let size = len.next_multiple_of(crate::host_page_size());
        // SAFETY: a fresh private mapping at an address the kernel picks touches no
        // existing memory; writes to it (after a `protect`) never reach the file.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                size,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(VmError::Mmap(std::io::Error::last_os_error()));
        }
        let ptr = NonNull::new(ptr.cast())
            .ok_or_else(|| VmError::Mmap(std::io::Error::other("null mapping")))?;
        Ok(Mmap { ptr, len: size })
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
        assert!(
            start.checked_add(len).is_some_and(|end| end <= self.len),
            "range inside the mapping"
        );
        // SAFETY: the range lies inside this mapping (checked above), which we own.
        unsafe { protect(self.ptr.as_ptr().add(start), len, prot) }
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

/// Sets the protection of the page-aligned range `[ptr, ptr + len)`.
///
/// # Safety
/// The range must lie inside a mapping the caller owns, with no live references into
/// the pages it makes inaccessible.
pub(crate) unsafe fn protect(ptr: *mut u8, len: usize, prot: libc::c_int) -> Result<(), VmError> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: forwarded contract.
    let r = unsafe { libc::mprotect(ptr.cast(), len, prot) };
    if r != 0 {
        return Err(VmError::Mmap(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Throws away the contents of the page-aligned range `[ptr, ptr + len)`: anonymous
/// pages read as zero afterwards and private file pages as the file, and the memory is
/// given back to the system.
///
/// # Safety
/// As for [`protect`]; the old contents must not be needed.
pub(crate) unsafe fn decommit(ptr: *mut u8, len: usize) -> Result<(), VmError> {
    if len == 0 {
        return Ok(());
    }
    static DECOMMIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = DECOMMIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // SAFETY: forwarded contract.
    let r = unsafe { libc::madvise(ptr.cast(), len, libc::MADV_DONTNEED) };
    if r != 0 {
        return Err(VmError::Mmap(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Replaces `[ptr, ptr + len)` with fresh inaccessible address space, dropping whatever
/// was mapped there (an image, private copies, resident pages).
///
/// # Safety
/// As for [`protect`].
#[cfg(feature = "pooling-allocator")]
pub(crate) unsafe fn reset_to_reserved(ptr: *mut u8, len: usize) -> Result<(), VmError> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: forwarded contract; MAP_FIXED replaces only the caller's range.
    let p = unsafe {
        libc::mmap(
            ptr.cast(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(VmError::Mmap(std::io::Error::last_os_error()));
    }
    Ok(())
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
