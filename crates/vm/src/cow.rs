//! Copy-on-write memory images: the initial contents of a module's linear memory, built
//! once per module in a memfd and mapped privately into each new instance's memory.
//!
//! ```text
//!  linear memory:  [ zero pages | image pages (file-backed, MAP_PRIVATE) | zero pages ...]
//!                  0            offset                        offset + len
//! ```
//!
//! Mapping an image costs one `mmap` however large the data is; pages are copied only
//! when an instance writes them. Resetting a memory to its image again (for reuse of a
//! pooled slot) is one `madvise(MADV_DONTNEED)`, which drops the private copies.
//!
//! A memory gets an image only when initialization can never trap (every active data
//! segment for it has a constant offset and lies within its minimum size) and the image
//! would not be mostly zeros (see [`SPARSE_IMAGE_MIN`]). Otherwise the segments are
//! copied at instantiation as usual.

use crate::VmError;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use strata_environ::{DefinedMemoryIndex, Module, PrimaryMap};

/// Images up to this size are built however sparse their segments are; larger ones only
/// if the segments fill at least half of them.
pub(crate) const SPARSE_IMAGE_MIN: usize = 1 << 20;

/// The initial contents of one linear memory, in a memfd.
#[derive(Debug)]
pub struct MemoryImage {
    fd: OwnedFd,
    /// Where the image starts in linear memory: a multiple of the host page size.
    offset: usize,
    /// The image's length: a multiple of the host page size.
    len: usize,
}

impl MemoryImage {
    /// Where the image starts in linear memory.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The image's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the image is empty (never true of a built image).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Builds the image of `segments` (offset and bytes, applied in order) for a memory
    /// whose initial size is `initial` bytes; `None` if there is nothing to map, or if
    /// the image would be larger than [`SPARSE_IMAGE_MIN`] and mostly zeros.
    ///
    /// # Errors
    /// Fails if the memfd cannot be created or written.
    pub(crate) fn build(
        initial: usize,
        segments: &[(usize, &[u8])],
    ) -> Result<Option<MemoryImage>, VmError> {
        let page = crate::host_page_size();
        let non_empty = segments.iter().filter(|(_, data)| !data.is_empty());
        let Some(start) = non_empty.clone().map(|(o, _)| *o).min() else {
            return Ok(None);
        };
        let end = non_empty
            .clone()
            .map(|(o, d)| o + d.len())
            .max()
            .unwrap_or(start);
        let offset = start - start % page;
        let len = (end - offset).next_multiple_of(page);
        // An image holds the zeros between segments too. When those would be most of a
        // large image (two bytes 4 GiB apart), copying the segments at instantiation is
        // cheaper than writing, and keeping, the image.
        let data: usize = non_empty.map(|(_, d)| d.len()).sum();
        if len > SPARSE_IMAGE_MIN && len / 2 > data {
            return Ok(None);
        }
        debug_assert!(offset + len <= initial.next_multiple_of(page));
        let mut contents = vec![0u8; len];
        // Empty segments may lie anywhere, below `offset` too: they write nothing.
        for (o, data) in segments.iter().filter(|(_, data)| !data.is_empty()) {
            contents[o - offset..o - offset + data.len()].copy_from_slice(data);
        }
        let fd = memfd("strata-memory-image")?;
        let mut file = File::from(fd);
        file.write_all(&contents).map_err(VmError::Mmap)?;
        Ok(Some(MemoryImage {
            fd: file.into(),
            offset,
            len,
        }))
    }

    /// Maps the image over `[base + offset, base + offset + len)`, replacing whatever
    /// was mapped there.
    ///
    /// # Safety
    /// The range must lie inside a reservation owned by the caller, in which nothing
    /// else refers to the pages being replaced.
    pub(crate) unsafe fn map_at(&self, base: *mut u8) -> Result<(), VmError> {
        // SAFETY: the caller owns the range; MAP_FIXED replaces only its pages.
        let ptr = unsafe {
            libc::mmap(
                base.add(self.offset).cast(),
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                self.fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(VmError::Mmap(std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

/// A memfd, the anonymous file images live in.
fn memfd(name: &str) -> Result<OwnedFd, VmError> {
    let name = std::ffi::CString::new(name).expect("no NUL in the name");
    // SAFETY: `name` is a valid C string; the flags ask for a plain close-on-exec memfd.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(VmError::Mmap(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The images of a module's defined memories, `None` where segments must be copied.
#[derive(Debug, Default)]
pub struct ModuleMemoryImages {
    images: PrimaryMap<DefinedMemoryIndex, Option<Arc<MemoryImage>>>,
}

impl ModuleMemoryImages {
    /// Builds the images `module`'s data segments, whose bytes are in `data`, allow.
    ///
    /// # Errors
    /// Fails if a memfd cannot be created or written.
    pub fn new(module: &Module, data: &[u8]) -> Result<ModuleMemoryImages, VmError> {
        let mut images = PrimaryMap::new();
        for (index, ty) in module.memories.iter() {
            let Some(def) = module.defined_memory_index(index) else {
                continue;
            };
            let initial = ty
                .minimum
                .checked_mul(ty.page_size())
                .and_then(|b| usize::try_from(b).ok());
            let mut segments = Vec::new();
            let mut imageable = initial.is_some() && !ty.shared;
            for segment in module.data_segments.values() {
                let Some((memory, offset)) = &segment.active else {
                    continue;
                };
                if *memory != index || !imageable {
                    continue;
                }
                let fits = offset
                    .as_constant_offset()
                    .and_then(|o| usize::try_from(o).ok())
                    .filter(|&o| {
                        o.checked_add(segment.len())
                            .is_some_and(|end| Some(end) <= initial)
                    });
                match fits {
                    Some(o) => segments.push((o, segment.bytes(data))),
                    None => imageable = false,
                }
            }
            let image = match (imageable, initial) {
                (true, Some(initial)) => MemoryImage::build(initial, &segments)?.map(Arc::new),
                _ => None,
            };
            let pushed = images.push(image);
            debug_assert_eq!(pushed, def);
        }
        Ok(ModuleMemoryImages { images })
    }

    /// The image of defined memory `index`, if it has one.
    pub fn get(&self, index: DefinedMemoryIndex) -> Option<&Arc<MemoryImage>> {
        self.images.get(index).and_then(Option::as_ref)
    }
}

/// Whether two memories' images are the same one (or both absent), so that a memory
/// holding `a` needs no remapping to hold `b`.
pub(crate) fn same_image(a: Option<&Arc<MemoryImage>>, b: Option<&Arc<MemoryImage>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Mmap;

    #[test]
    fn images_cover_whole_pages_around_the_segments() {
        let page = crate::host_page_size();
        let segments: [(usize, &[u8]); 2] = [(page + 10, b"abc"), (page + 11, b"XY")];
        let image = MemoryImage::build(4 * page, &segments).unwrap().unwrap();
        assert_eq!(image.offset(), page);
        assert_eq!(image.len(), page);

        let mut mmap = Mmap::reserve(4 * page).unwrap();
        mmap.make_accessible(0, 4 * page).unwrap();
        // SAFETY: the mapping is ours and the image fits in it.
        unsafe { image.map_at(mmap.as_ptr()).unwrap() };
        // SAFETY: the whole mapping is accessible.
        let bytes = unsafe { core::slice::from_raw_parts_mut(mmap.as_ptr(), 4 * page) };
        assert_eq!(&bytes[page + 10..page + 13], b"aXY", "later segments win");
        assert!(bytes[..page + 10].iter().all(|&b| b == 0));
        // Writes are private: a second mapping still sees the image.
        bytes[page + 10] = b'!';
        let mut other = Mmap::reserve(4 * page).unwrap();
        other.make_accessible(0, 4 * page).unwrap();
        // SAFETY: as above.
        unsafe { image.map_at(other.as_ptr()).unwrap() };
        // SAFETY: as above.
        let fresh = unsafe { core::slice::from_raw_parts(other.as_ptr(), 4 * page) };
        assert_eq!(&fresh[page + 10..page + 13], b"aXY");
    }

    #[test]
    fn sparse_images_are_left_to_copying_and_dense_ones_are_built() {
        let far = 64 * SPARSE_IMAGE_MIN;
        assert!(
            MemoryImage::build(far + 1, &[(0, b"a"), (far, b"b")])
                .unwrap()
                .is_none()
        );
        let half = vec![7u8; SPARSE_IMAGE_MIN];
        let dense = [(0, &half[..]), (2 * SPARSE_IMAGE_MIN - 1, &b"x"[..])];
        let image = MemoryImage::build(2 * SPARSE_IMAGE_MIN, &dense)
            .unwrap()
            .unwrap();
        assert_eq!(image.len(), 2 * SPARSE_IMAGE_MIN);
        let small = [(0, &b"a"[..]), (SPARSE_IMAGE_MIN - 1, &b"b"[..])];
        assert!(
            MemoryImage::build(SPARSE_IMAGE_MIN, &small)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn empty_segments_need_no_image() {
        assert!(MemoryImage::build(65536, &[(0, b"")]).unwrap().is_none());
        assert!(MemoryImage::build(65536, &[]).unwrap().is_none());
    }
}
