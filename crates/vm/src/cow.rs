//! Copy-on-write memory images: the initial contents of a module's linear memory, laid
//! out at compile time (see [`strata_environ::MemoryImageLayout`]) and mapped privately
//! into each new instance's memory, from the precompiled module's file or from a memfd.
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
//! A memory has an image only when initialization can never trap and the image would
//! not be mostly zeros (the compiler decides, see [`strata_environ::MemoryImageLayout`]),
//! and on hosts whose page size divides [`IMAGE_ALIGN`]. Otherwise the segments are
//! copied at instantiation as usual.

use crate::VmError;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use strata_environ::{DefinedMemoryIndex, IMAGE_ALIGN, Module, PrimaryMap};

/// The initial contents of one linear memory, in a file.
#[derive(Debug)]
pub struct MemoryImage {
    fd: OwnedFd,
    /// Where the image starts in the file: a multiple of the host page size.
    file_offset: u64,
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

    /// The image of `bytes` at `offset` in linear memory (both page-aligned), in a new
    /// memfd.
    ///
    /// # Errors
    /// Fails if the memfd cannot be created or written.
    pub(crate) fn from_bytes(offset: usize, bytes: &[u8]) -> Result<MemoryImage, VmError> {
        let fd = memfd("strata-memory-image")?;
        let mut file = File::from(fd);
        file.write_all(bytes).map_err(VmError::Mmap)?;
        Ok(MemoryImage {
            fd: file.into(),
            file_offset: 0,
            offset,
            len: bytes.len(),
        })
    }

    /// The image of the `len` bytes at `file_offset` in `file`, at `offset` in linear
    /// memory (all page-aligned). The file must not change while the image lives.
    ///
    /// # Errors
    /// Fails if the file's descriptor cannot be duplicated.
    pub(crate) fn from_file(
        file: &File,
        file_offset: u64,
        offset: usize,
        len: usize,
    ) -> Result<MemoryImage, VmError> {
        let fd = file.try_clone().map_err(VmError::Mmap)?.into();
        Ok(MemoryImage {
            fd,
            file_offset,
            offset,
            len,
        })
    }

    /// Maps the image over `[base + offset, base + offset + len)`, replacing whatever
    /// was mapped there.
    ///
    /// # Safety
    /// The range must lie inside a reservation owned by the caller, in which nothing
    /// else refers to the pages being replaced.
    pub(crate) unsafe fn map_at(&self, base: *mut u8) -> Result<(), VmError> {
        let file_offset = libc::off_t::try_from(self.file_offset)
            .map_err(|_| VmError::Mmap(std::io::Error::other("image offset too large")))?;
        // SAFETY: the caller owns the range; MAP_FIXED replaces only its pages.
        let ptr = unsafe {
            libc::mmap(
                base.add(self.offset).cast(),
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                self.fd.as_raw_fd(),
                file_offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(VmError::Mmap(std::io::Error::last_os_error()));
        }
        Ok(())
    }
}

/// A memfd, the anonymous file images of modules without a file live in.
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

/// Where a module's data lies in a file, for images mapped straight from it.
#[derive(Copy, Clone, Debug)]
pub struct DataFile<'a> {
    /// The file.
    pub file: &'a File,
    /// The offset of the module's data in it.
    pub offset: u64,
}

/// The images of a module's defined memories, `None` where segments must be copied.
#[derive(Debug, Default)]
pub struct ModuleMemoryImages {
    images: PrimaryMap<DefinedMemoryIndex, Option<Arc<MemoryImage>>>,
}

impl ModuleMemoryImages {
    /// The images `module`'s layout gives, of its data `data`, mapped from `file` if
    /// the data lies there at a page-aligned offset, else copied into memfds.
    ///
    /// # Errors
    /// Fails if a memfd cannot be created or written, or the file's descriptor
    /// duplicated.
    pub fn new(
        module: &Module,
        data: &[u8],
        file: Option<DataFile<'_>>,
    ) -> Result<ModuleMemoryImages, VmError> {
        let page = crate::host_page_size() as u64;
        let file = file.filter(|f| f.offset.is_multiple_of(page));
        let mut images = PrimaryMap::new();
        for layout in module.memory_images.values() {
            let image = match layout {
                Some(l) if IMAGE_ALIGN.is_multiple_of(page) => {
                    let (offset, len) = (to_usize(l.memory_offset)?, to_usize(l.len)?);
                    let image = match file {
                        Some(f) => {
                            MemoryImage::from_file(f.file, f.offset + l.data_offset, offset, len)?
                        }
                        None => {
                            let start = to_usize(l.data_offset)?;
                            let bytes = data.get(start..start + len).ok_or_else(|| {
                                VmError::Limit("memory image outside the module's data".into())
                            })?;
                            MemoryImage::from_bytes(offset, bytes)?
                        }
                    };
                    Some(Arc::new(image))
                }
                _ => None,
            };
            images.push(image);
        }
        Ok(ModuleMemoryImages { images })
    }

    /// The image of defined memory `index`, if it has one.
    pub fn get(&self, index: DefinedMemoryIndex) -> Option<&Arc<MemoryImage>> {
        self.images.get(index).and_then(Option::as_ref)
    }
}

fn to_usize(n: u64) -> Result<usize, VmError> {
    usize::try_from(n).map_err(|_| VmError::Limit("memory image too large".into()))
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

    /// Maps `image` into a fresh accessible mapping of `pages` pages.
    fn mapped(image: &MemoryImage, pages: usize) -> (Mmap, &'static mut [u8]) {
        let len = pages * crate::host_page_size();
        let mut mmap = Mmap::reserve(len).unwrap();
        mmap.make_accessible(0, len).unwrap();
        // SAFETY: the mapping is ours and the image fits in it.
        unsafe { image.map_at(mmap.as_ptr()).unwrap() };
        // SAFETY: the whole mapping is accessible and lives as long as the test uses it
        // (the caller keeps `mmap`).
        let bytes = unsafe { core::slice::from_raw_parts_mut(mmap.as_ptr(), len) };
        (mmap, bytes)
    }

    #[test]
    fn images_are_private_copies_on_write() {
        let page = crate::host_page_size();
        let mut contents = vec![0u8; page];
        contents[10..13].copy_from_slice(b"abc");
        let image = MemoryImage::from_bytes(page, &contents).unwrap();
        assert_eq!((image.offset(), image.len()), (page, page));
        let (_first, bytes) = mapped(&image, 4);
        assert_eq!(&bytes[page + 10..page + 13], b"abc");
        assert!(bytes[..page + 10].iter().all(|&b| b == 0));
        // Writes are private: a second mapping still sees the image.
        bytes[page + 10] = b'!';
        let (_second, fresh) = mapped(&image, 4);
        assert_eq!(&fresh[page + 10..page + 13], b"abc");
    }

    #[test]
    fn images_map_from_an_offset_in_a_file() {
        let page = crate::host_page_size();
        let path = std::env::temp_dir().join(format!("strata-image-{}", std::process::id()));
        let mut contents = vec![0u8; 3 * page];
        contents[2 * page..2 * page + 5].copy_from_slice(b"image");
        std::fs::write(&path, &contents).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let image = MemoryImage::from_file(&file, 2 * page as u64, 0, page).unwrap();
        drop(file);
        let (_mmap, bytes) = mapped(&image, 2);
        assert_eq!(&bytes[..5], b"image");
        bytes[0] = b'I';
        assert_eq!(
            std::fs::read(format!("/proc/self/fd/{}", image.fd.as_raw_fd())).unwrap()[2 * page],
            b'i'
        );
    }
}
