//! Finding the pages of a pooled slot that need resetting.
//!
//! A freed slot must read as it did before its occupant ran, but most occupants touch a
//! few pages of a large slot, or none. Linux (6.7 and later) answers "which pages of this
//! range are private, written copies?" with the `PAGEMAP_SCAN` ioctl on
//! `/proc/self/pagemap`, which only walks page tables. The pooling allocator then
//! resets just those pages, and skips the `madvise` altogether when there are none:
//! an `madvise` that unmaps something costs a TLB flush on every core the process runs
//! on, which is what limits pooled instantiation on several threads.
//!
//! A page needs resetting if it is present or swapped out, and neither the shared zero
//! page (read, never written) nor a page of a file (an untouched page of the memory's
//! copy-on-write image). Where the scan is unavailable or fails, the whole range counts
//! as dirty, which is always correct.

use crate::{VmError, mmap};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

/// `struct page_region` of `<linux/fs.h>`.
#[repr(C)]
#[derive(Copy, Clone, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// `struct pm_scan_arg` of `<linux/fs.h>`.
#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `PAGEMAP_SCAN`: `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: libc::Ioctl =
    (3 << 30) | ((size_of::<PmScanArg>() as libc::Ioctl) << 16) | (0x66 << 8) | 16;
const PAGE_IS_FILE: u64 = 1 << 2;
const PAGE_IS_PRESENT: u64 = 1 << 3;
const PAGE_IS_SWAPPED: u64 = 1 << 4;
const PAGE_IS_PFNZERO: u64 = 1 << 5;

/// Regions reported per ioctl; a scan that finds more continues where it stopped.
const REGIONS_PER_SCAN: usize = 16;

/// Whether the kernel supports the scan, probed once.
fn supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| open().is_some())
}

/// Opens `/proc/self/pagemap` and checks the ioctl works, with an empty (page-aligned)
/// range: kernels without it fail the call.
fn open() -> Option<File> {
    let file = File::open("/proc/self/pagemap").ok()?;
    scan(&file, 0, 0, &mut [PageRegion::default(); 1]).map(|_| file)
}

/// Runs `f` with this thread's `/proc/self/pagemap`, or `None` without the scan.
///
/// Each thread has a descriptor of its own: the kernel takes a reference to the open
/// file for each call, and a file shared by threads that scan at the same time makes
/// that reference count bounce between their cores.
fn with_pagemap<R>(f: impl FnOnce(Option<&File>) -> R) -> R {
    thread_local! {
        static PAGEMAP: Option<File> = if supported() { open() } else { None };
    }
    // During thread exit the descriptor may be gone already: fall back to no scan.
    let mut f = Some(f);
    match PAGEMAP.try_with(|file| (f.take().expect("called once"))(file.as_ref())) {
        Ok(r) => r,
        Err(_) => (f.take().expect("not called yet"))(None),
    }
}

/// One `PAGEMAP_SCAN` of `[start, end)` into `regions`: how many regions it filled and
/// where the walk ended, or `None` if the ioctl failed.
fn scan(file: &File, start: u64, end: u64, regions: &mut [PageRegion]) -> Option<(usize, u64)> {
    let mut arg = PmScanArg {
        size: size_of::<PmScanArg>() as u64,
        flags: 0,
        start,
        end,
        walk_end: 0,
        vec: regions.as_mut_ptr() as u64,
        vec_len: regions.len() as u64,
        max_pages: 0,
        // Wanted: neither the zero page nor a file page...
        category_inverted: PAGE_IS_PFNZERO | PAGE_IS_FILE,
        category_mask: PAGE_IS_PFNZERO | PAGE_IS_FILE,
        // ...and present or swapped out.
        category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        // Report no categories, so neighbouring dirty pages merge into one region.
        return_mask: 0,
    };
    // SAFETY: the ioctl reads `arg` and writes at most `vec_len` regions to `vec`, both
    // valid for the call; it only inspects the page tables of `[start, end)`.
    let n = unsafe { libc::ioctl(file.as_raw_fd(), PAGEMAP_SCAN, &raw mut arg) };
    let n = usize::try_from(n).ok()?;
    Some((n.min(regions.len()), arg.walk_end))
}

/// Calls `dirty(ptr, len)` for runs of pages in the page-aligned range `[ptr, ptr +
/// len)` that may differ from what the slot held when it was last reset, in address
/// order; every page outside these runs is unwritten. Without the scan, the whole range
/// is one run.
pub(crate) fn for_each_dirty(ptr: *mut u8, len: usize, mut dirty: impl FnMut(*mut u8, usize)) {
    if len == 0 {
        return;
    }
    with_pagemap(|file| {
        let Some(file) = file else {
            return dirty(ptr, len);
        };
        let (start, end) = (ptr.addr() as u64, (ptr.addr() + len) as u64);
        let mut regions = [PageRegion::default(); REGIONS_PER_SCAN];
        let mut from = start;
        while from < end {
            let offset = usize::try_from(from - start).expect("inside the range");
            let Some((found, walk_end)) = scan(file, from, end, &mut regions) else {
                // The rest of the range is unknown: all of it is dirty.
                return dirty(ptr.wrapping_add(offset), len - offset);
            };
            for region in &regions[..found] {
                let at = usize::try_from(region.start - start).expect("inside the range");
                let run = usize::try_from(region.end - region.start).expect("inside the range");
                dirty(ptr.wrapping_add(at), run);
            }
            if walk_end <= from {
                // No progress would loop forever; be safe instead.
                return dirty(ptr.wrapping_add(offset), len - offset);
            }
            from = walk_end;
        }
    });
}

/// Resets the pages of `[base, base + len)` written since the last reset: the first
/// `keep_resident` bytes of them are zeroed in place and stay resident, the rest are
/// decommitted, so they read as zero (or as the slot's copy-on-write image) again.
///
/// # Safety
/// The page-aligned range must be readable, writable and unused by anyone else.
pub(crate) unsafe fn reset_dirty_pages(
    base: *mut u8,
    len: usize,
    keep_resident: usize,
) -> Result<(), VmError> {
    let mut budget = keep_resident / crate::host_page_size() * crate::host_page_size();
    let mut result = Ok(());
    for_each_dirty(base, len, |run, run_len| {
        let zeroed = run_len.min(budget);
        budget -= zeroed;
        // SAFETY: the run lies inside the range, which the caller lends us.
        unsafe {
            run.write_bytes(0, zeroed);
            if let Err(e) = mmap::decommit(run.add(zeroed), run_len - zeroed) {
                result = Err(e);
            }
        }
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Mmap;

    fn runs(base: *mut u8, len: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for_each_dirty(base, len, |p, n| out.push((p.addr() - base.addr(), n)));
        out
    }

    #[test]
    fn only_written_pages_are_dirty() {
        let page = crate::host_page_size();
        let mut map = Mmap::reserve(8 * page).unwrap();
        map.make_accessible(0, 8 * page).unwrap();
        let base = map.as_ptr();
        if !supported() {
            // Old kernel: everything counts as dirty, which is what callers rely on.
            assert_eq!(runs(base, 8 * page), [(0, 8 * page)]);
            return;
        }
        assert_eq!(runs(base, 8 * page), [], "fresh memory is clean");
        // SAFETY: all eight pages are readable and writable.
        unsafe {
            // A read maps the zero page, which needs no reset.
            assert_eq!(base.add(3 * page).read_volatile(), 0);
            base.add(page).write(1);
            base.add(2 * page).write(1);
            base.add(6 * page + 5).write(1);
        }
        assert_eq!(runs(base, 8 * page), [(page, 2 * page), (6 * page, page)]);
        assert_eq!(runs(base, 2 * page), [(page, page)], "clipped to the range");
    }
}
