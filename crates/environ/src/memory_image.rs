//! Copy-on-write memory images laid out at compile time.
//!
//! When a memory's initialization can never trap (every active data segment for it has
//! a constant offset, lies within its minimum size, and overlaps no other), its initial
//! contents are written into the module's data as an *image*: the bytes from the first
//! segment's page to the last one's, zeros between segments, at a page-aligned offset.
//! The segments' ranges then point into the image, and the runtime can map the image
//! straight from a precompiled module's file into each instance's memory, or copy it
//! into a memfd for modules compiled in the process. Other segments keep their bytes one
//! after another after the images.

use crate::{DefinedMemoryIndex, EntityRef, Module, PrimaryMap};
use serde::{Deserialize, Serialize};

/// Images start and end at multiples of this, in linear memory and in the data: the
/// page size of the hosts strata maps them on (on hosts with larger pages, segments are
/// copied at instantiation instead).
pub const IMAGE_ALIGN: u64 = 0x1000;

/// Images over this size are laid out only if their segments fill at least half of
/// them: a few bytes far apart are cheaper to copy than to keep (and map) as an image
/// of mostly zeros.
pub const SPARSE_IMAGE_MIN: u64 = 1 << 20;

/// Where a defined memory's image lies.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryImageLayout {
    /// Its offset in the module's data: a multiple of [`IMAGE_ALIGN`].
    pub data_offset: u64,
    /// Where it starts in linear memory: a multiple of [`IMAGE_ALIGN`].
    pub memory_offset: u64,
    /// Its length: a multiple of [`IMAGE_ALIGN`].
    pub len: u64,
}

/// The images of a module's defined memories, `None` for a memory whose segments are
/// copied at instantiation.
pub type MemoryImages = PrimaryMap<DefinedMemoryIndex, Option<MemoryImageLayout>>;

/// Lays out the images of `module`'s memories in a new copy of `data` (the module's
/// data segments' bytes, one after another), updating the segments' ranges and
/// recording the layouts in `module.memory_images`. Returns the new data.
///
/// # Errors
/// Fails if the images and segments together would exceed 4 GiB.
pub(crate) fn lay_out_images(module: &mut Module, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut images = MemoryImages::new();
    let mut placed = vec![false; module.data_segments.len()];
    for (index, ty) in module.memories.iter() {
        let Some(def) = module.defined_memory_index(index) else {
            continue;
        };
        let initial = ty.minimum.checked_mul(ty.page_size());
        let mut segments = Vec::new();
        let mut imageable = initial.is_some() && !ty.shared;
        for (i, segment) in module.data_segments.iter() {
            match &segment.active {
                Some((memory, offset)) if *memory == index && imageable => {
                    let at = offset.as_constant_offset();
                    let end = at.and_then(|at| at.checked_add(segment.len() as u64));
                    match (at, end) {
                        (Some(at), Some(end)) if Some(end) <= initial => {
                            segments.push((i, at, end));
                        }
                        _ => imageable = false,
                    }
                }
                _ => {}
            }
        }
        segments.retain(|&(_, at, end)| at < end);
        segments.sort_by_key(|&(_, at, _)| at);
        let overlapping = segments.windows(2).any(|w| w[1].1 < w[0].2);
        let layout = match (imageable && !overlapping, segments.first(), segments.last()) {
            (true, Some(&(_, first, _)), Some(_)) => {
                let start = first - first % IMAGE_ALIGN;
                let end = segments.iter().map(|s| s.2).max().unwrap_or(first);
                let len = (end - start).next_multiple_of(IMAGE_ALIGN);
                let filled: u64 = segments.iter().map(|s| s.2 - s.1).sum();
                let dense = len <= SPARSE_IMAGE_MIN || filled >= len / 2;
                // Whole pages of the image must lie in the memory (with small custom
                // page sizes they may not).
                let fits = Some(start + len) <= initial;
                (dense && fits).then_some((start, len))
            }
            _ => None,
        };
        let Some((memory_offset, len)) = layout else {
            images.push(None);
            continue;
        };
        out.resize(out.len().next_multiple_of(IMAGE_ALIGN as usize), 0);
        let data_offset = out.len() as u64;
        out.resize(out.len() + len as usize, 0);
        for &(i, at, end) in &segments {
            let segment = &mut module.data_segments[i];
            let from = data_offset + (at - memory_offset);
            out[from as usize..(from + end - at) as usize].copy_from_slice(segment.bytes(data));
            segment.range = range(from, end - at)?;
            placed[i.index()] = true;
        }
        images.push(Some(MemoryImageLayout {
            data_offset,
            memory_offset,
            len,
        }));
        debug_assert_eq!(images.len() - 1, def.index());
    }
    for (i, segment) in module.data_segments.iter_mut() {
        if !placed[i.index()] {
            let from = out.len() as u64;
            out.extend_from_slice(segment.bytes(data));
            segment.range = range(from, segment.len() as u64)?;
        }
    }
    module.memory_images = images;
    Ok(out)
}

fn range(start: u64, len: u64) -> Result<core::ops::Range<u32>, String> {
    let fits = |n: u64| u32::try_from(n).map_err(|_| "data over 4 GiB in all".to_string());
    Ok(fits(start)?..fits(start + len)?)
}

#[cfg(test)]
mod tests {
    use crate::{DefinedMemoryIndex, EntityRef, translate_module};

    fn translate(wat: &str) -> crate::ModuleTranslation<'static> {
        let wasm: &'static [u8] = Box::leak(wat::parse_str(wat).unwrap().into_boxed_slice());
        translate_module(wasm, wasmparser::WasmFeatures::default()).unwrap()
    }

    #[test]
    fn segments_that_cannot_trap_become_a_page_aligned_image() {
        let t = translate(
            r#"(module (memory 2)
                 (data (i32.const 5000) "abc")
                 (data (i32.const 70000) "xyz")
                 (data "passive"))"#,
        );
        let layout = t.module.memory_images[DefinedMemoryIndex::new(0)].unwrap();
        assert_eq!(layout.memory_offset, 4096);
        assert_eq!(layout.len, 70003u64.next_multiple_of(4096) - 4096);
        assert_eq!(layout.data_offset % 4096, 0);
        let image = &t.data[layout.data_offset as usize..][..layout.len as usize];
        assert_eq!(&image[5000 - 4096..][..3], b"abc");
        assert_eq!(&image[70000 - 4096..][..3], b"xyz");
        let segments = &t.module.data_segments;
        let bytes: Vec<_> = segments.values().map(|s| s.bytes(&t.data)).collect();
        assert_eq!(bytes, [&b"abc"[..], b"xyz", b"passive"]);
    }

    #[test]
    fn segments_that_may_trap_or_overlap_are_kept_as_they_are() {
        for wat in [
            r#"(module (memory 1) (data (i32.const 65535) "ab"))"#,
            r#"(module (global i32 (i32.const 0)) (memory 1) (data (global.get 0) "ab"))"#,
            r#"(module (memory 1) (data (i32.const 0) "abc") (data (i32.const 1) "z"))"#,
            r#"(module (memory 1) (data (i32.const 0) ""))"#,
        ] {
            let t = translate(wat);
            assert_eq!(
                t.module.memory_images[DefinedMemoryIndex::new(0)],
                None,
                "{wat}"
            );
            assert!(t.data.len() <= 4, "{wat}");
        }
    }

    #[test]
    fn sparse_images_are_not_laid_out() {
        let t = translate(
            r#"(module (memory 100)
                 (data (i32.const 0) "a")
                 (data (i32.const 6000000) "b"))"#,
        );
        assert_eq!(t.module.memory_images[DefinedMemoryIndex::new(0)], None);
        assert_eq!(t.data, b"ab");
    }
}
