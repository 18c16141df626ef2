//! Stacks for suspendable execution in strata, and switching onto them.
//!
//! This crate is an internal part of the strata WebAssembly runtime. Its API
//! exists to serve the other strata crates and carries no semver promise: it
//! may change in any release without notice. Do not depend on it directly.
//!
//! # What this crate owns
//!
//! Suspendable execution (running WebAssembly on a separate stack so that it
//! can be paused and resumed later) needs memory for those stacks and a way
//! to move execution between them.
//!
//! - [`FiberStack`] maps a stack from the operating system, places an
//!   inaccessible guard page below it so that an overflow faults instead of
//!   silently corrupting adjacent memory, and returns the mapping when
//!   dropped.
//! - [`Fiber`] runs a closure on a `FiberStack`. The closure can suspend
//!   itself through its [`Suspend`] handle, handing a value back to whoever
//!   resumed it; [`Fiber::resume`] continues it, handing it a value in turn.
//!
//! ```
//! use strata_fiber::{Fiber, FiberStack};
//!
//! let stack = FiberStack::new(64 * 1024, false)?;
//! let fiber = Fiber::new(stack, |first: u32, suspend| {
//!     // Runs on the fiber's stack.
//!     let second = suspend.suspend(first + 1);
//!     format!("{first} then {second}")
//! })?;
//! assert_eq!(fiber.resume(1), Err(2)); // suspended, yielding 2
//! assert_eq!(fiber.resume(5), Ok("1 then 5".to_string())); // finished
//! assert!(fiber.done());
//! let stack = fiber.into_stack(); // ready for another fiber
//! # drop(stack);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # The switch
//!
//! One small assembly function, `switch(slot, msg)`, does all switching, in
//! both directions. It pushes the registers that the platform's C ABI makes
//! callee-saved onto the current stack, exchanges the stack pointer with the
//! word `*slot`, pops the same registers from the other stack and returns
//! there, handing `msg` over as the return value of the `switch` call that is
//! being resumed. Caller-saved registers need no saving: every switch is an
//! ordinary call as far as the compiler is concerned. (On x86_64 it returns
//! with an indirect jump rather than `ret`: a `ret` onto another stack is
//! mispredicted every time, and avoiding that halves the cost of a switch.)
//!
//! Each fiber stack has one slot, in its top word. It always holds the stack
//! pointer of whichever side is suspended: the fiber's while the fiber is not
//! running, the resumer's while it is. The values travel by pointer: `resume`
//! passes a pointer to the `Resume` value in its own frame, and the fiber
//! passes back a pointer to an outcome (yielded, returned, or panicked) in its
//! frame; each side moves the value out of the other's frame before either
//! runs on. So a round trip costs two `switch` calls and no allocation,
//! locking or thread-local access.
//!
//! # The top of a fiber stack
//!
//! [`Fiber::new`] writes the highest words of the stack (addresses grow
//! upwards, `top` is [`FiberStack::top`]):
//!
//! ```text
//! top - 8    the switch slot (see above)
//! top - 16   zero
//! below      the initial frame: the registers that `switch` pops the first
//!            time it enters the stack, and a return address into the start
//!            trampoline
//! ```
//!
//! The initial frame's registers carry the entry function and its arguments
//! to the start trampoline, a few instructions of assembly that call that
//! function with the stack pointer at `top - 16` (16-byte aligned, as calls
//! require) and a zero frame pointer. The entry function, the fiber's
//! outermost Rust frame, runs the closure and switches back to the resumer
//! for the last time; it never returns, and its frame is abandoned once it
//! holds nothing that needs dropping.
//!
//! Walks of the fiber's stack end at its base: the frame-pointer chain ends in
//! the zero saved by the entry function's frame record (it is *not* linked to
//! the resumer's frames, which change from one resume to the next), and the
//! trampoline's DWARF call-frame information says it has no caller.
//!
//! # Panics
//!
//! A panic in the closure unwinds to the base of the fiber, where the entry
//! function catches it with [`std::panic::catch_unwind`]; the fiber is then
//! done, and its [`Fiber::resume`] call resumes the panic on the resumer's
//! stack with [`std::panic::resume_unwind`]. Unwinding never crosses a switch.
//! Resuming a fiber that is done or already running panics.
//!
//! A stack overflow in a fiber is not a panic: it faults on the guard page
//! (`SIGSEGV`), which the standard library does not recognise as an overflow
//! (it knows only the guard pages of thread stacks), so unless the runtime
//! handles the signal itself the process dies of a segmentation fault.
//!
//! # Dropping and threads
//!
//! Dropping a fiber that is suspended leaks its stack and everything on it;
//! see [Dropping](Fiber#dropping). Fibers are neither `Send` nor `Sync`; see
//! [Threads](Fiber#threads). Stacks themselves can move between threads.
//!
//! # Platform support
//!
//! Stacks are mapped with `mmap`, so the crate supports Unix-like systems
//! only. Switching is implemented for x86_64 (System V ABI) and aarch64
//! (AAPCS64); other architectures fail to compile. The x86_64 code is tested.
//! The aarch64 code follows the same contract, but there is no aarch64 CI and
//! it has never been compiled by rustc: only its assembly was checked, once,
//! under `qemu-aarch64` with a C program that drives it the way this crate
//! does (the module `arch::aarch64` says what was checked). Intel CET (shadow
//! stacks and indirect branch tracking) must be off, as it is unless a binary
//! asks for it; shadow stacks forbid any stack switching that returns into
//! another stack.

#![deny(missing_docs)]

#[cfg(not(unix))]
compile_error!("strata-fiber maps stacks with mmap and supports only Unix-like systems");

mod arch;
mod fiber;

pub use fiber::{Fiber, Suspend};

use std::io;
use std::ops::Range;
use std::ptr;

/// Alignment that [`FiberStack::top`] is guaranteed to have.
///
/// Every mainstream ABI requires at most 16-byte stack alignment at a call
/// boundary.
pub const STACK_ALIGN: usize = 16;

/// Size in bytes of a page of virtual memory on this system.
fn page_size() -> usize {
    // SAFETY: `sysconf` has no preconditions; it only reads a system
    // configuration value.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).expect("sysconf(_SC_PAGESIZE) failed")
}

/// A stack for suspendable execution, with a guard page below it.
///
/// The memory is one anonymous private mapping laid out as follows (addresses
/// grow to the right; the stack grows down, towards the guard page):
///
/// ```text
/// +------------+------------------------------------+
/// | guard page |           usable stack             |
/// | PROT_NONE  |        PROT_READ | PROT_WRITE      |
/// +------------+------------------------------------+
/// ^            ^                                    ^
/// mapping      range().start                        top() == range().end
/// ```
///
/// Dropping a `FiberStack` unmaps all of it, guard page included.
#[derive(Debug)]
pub struct FiberStack {
    /// Lowest address of the mapping, which is the start of the guard page.
    mapping: *mut u8,
    /// Length of the whole mapping in bytes: guard page plus usable stack.
    mapping_len: usize,
    /// Length of the guard page in bytes (one page).
    guard_len: usize,
    /// Whether the stack unmaps its memory on drop (false for stacks lent by a pool).
    owned: bool,
}

// SAFETY: a `FiberStack` exclusively owns its mapping; the raw pointer is
// never shared with another `FiberStack` and is only unmapped once, in `Drop`,
// which requires ownership. Moving that ownership to another thread is
// therefore sound.
unsafe impl Send for FiberStack {}

// SAFETY: no method taking `&self` reads or writes the mapped memory or
// mutates the struct; they only compute addresses from immutable fields.
// Accessing memory through those addresses requires the caller's own `unsafe`
// code, which carries its own obligations. Sharing `&FiberStack` between
// threads is therefore sound.
unsafe impl Sync for FiberStack {}

impl FiberStack {
    /// Maps a new stack with at least `size` usable bytes.
    ///
    /// `size` is rounded up to a whole number of pages. One extra page is
    /// mapped below the usable part as a guard page that cannot be read,
    /// written or executed.
    ///
    /// `zeroed` asks for a stack whose usable bytes are all zero. Every stack
    /// returned by this function is a fresh anonymous mapping, which the
    /// operating system always fills with zeros, so the stack is zeroed
    /// whatever `zeroed` is and the flag currently has no effect. It exists
    /// for when stacks are reused instead of freshly mapped: reused memory
    /// would then be cleared only if `zeroed` is `true`.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::InvalidInput`] if `size` is zero (a stack with no
    ///   usable bytes is never useful, so this is treated as a caller bug
    ///   rather than silently replaced with some minimum size), or if
    ///   rounding `size` up and adding the guard page overflows `usize`.
    /// - The operating system's error if `mmap` or `mprotect` fails, for
    ///   example when address space is exhausted.
    pub fn new(size: usize, zeroed: bool) -> io::Result<FiberStack> {
        // Fresh anonymous mappings are zero-filled by the kernel, so there is
        // nothing to do for `zeroed` yet; see the documentation above.
        let _ = zeroed;

        if size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "fiber stack size must not be zero",
            ));
        }
        let page = page_size();
        let too_large =
            || io::Error::new(io::ErrorKind::InvalidInput, "fiber stack size is too large");
        let usable_len = size.checked_next_multiple_of(page).ok_or_else(too_large)?;
        let mapping_len = usable_len.checked_add(page).ok_or_else(too_large)?;

        // SAFETY: we ask for a new anonymous mapping at an address chosen by
        // the kernel (null hint, no MAP_FIXED), so no existing memory is
        // affected. No file descriptor is involved.
        let mapping = unsafe {
            libc::mmap(
                ptr::null_mut(),
                mapping_len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANON,
                -1,
                0,
            )
        };
        if mapping == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mapping = mapping.cast::<u8>();

        // From here on `stack` owns the mapping, so it is unmapped on every
        // early return below.
        let stack = FiberStack {
            mapping,
            mapping_len,
            guard_len: page,
            owned: true,
        };

        // SAFETY: `mapping + page .. mapping + mapping_len` lies inside the
        // mapping created above (`mapping_len == usable_len + page`), starts
        // on a page boundary, and nothing else references that memory yet.
        let rc = unsafe {
            libc::mprotect(
                mapping.add(page).cast(),
                usable_len,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }

        debug_assert_eq!(stack.top() as usize % STACK_ALIGN, 0);
        Ok(stack)
    }

    /// A stack in memory someone else owns, such as a slot of a pool: `len` bytes at
    /// `base`, of which the first `guard_len` are the guard.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] if the pieces are not page-aligned or leave no
    /// usable bytes.
    ///
    /// # Safety
    /// `[base, base + guard_len)` must be inaccessible and the rest readable and
    /// writable, and the memory must stay so, untouched by others, until the stack is
    /// dropped; dropping it does not unmap anything.
    pub unsafe fn from_raw_parts(
        base: *mut u8,
        len: usize,
        guard_len: usize,
    ) -> io::Result<FiberStack> {
        let page = page_size();
        let aligned = (base as usize).is_multiple_of(page)
            && len.is_multiple_of(page)
            && guard_len.is_multiple_of(page);
        if !aligned || guard_len == 0 || len <= guard_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a borrowed fiber stack needs page-aligned parts and usable bytes",
            ));
        }
        Ok(FiberStack {
            mapping: base,
            mapping_len: len,
            guard_len,
            owned: false,
        })
    }

    /// Whether the stack was made by [`FiberStack::from_raw_parts`].
    pub fn is_from_raw_parts(&self) -> bool {
        !self.owned
    }

    /// Returns the top of the stack: one past the highest usable byte.
    ///
    /// This is where a stack pointer starts, since stacks grow down. It is
    /// aligned to at least [`STACK_ALIGN`] bytes (in fact to a page) and
    /// equals `range().end`.
    pub fn top(&self) -> *mut u8 {
        self.mapping.wrapping_add(self.mapping_len)
    }

    /// Returns the addresses of the usable (readable and writable) bytes of
    /// the stack.
    ///
    /// Its length is the size requested from [`FiberStack::new`] rounded up
    /// to whole pages. It does not include the guard page.
    pub fn range(&self) -> Range<usize> {
        let base = self.mapping as usize;
        base + self.guard_len..base + self.mapping_len
    }

    /// Returns the addresses of the guard page, which sits directly below
    /// [`FiberStack::range`] and cannot be read, written or executed.
    pub fn guard_range(&self) -> Range<*mut u8> {
        self.mapping..self.mapping.wrapping_add(self.guard_len)
    }
}

impl Drop for FiberStack {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        // SAFETY: `mapping .. mapping + mapping_len` is exactly the mapping
        // created in `FiberStack::new`, which this value owns exclusively.
        // Anyone holding pointers into it obtained them from `top`, `range`
        // or `guard_range` and must not use them after the stack is dropped.
        let rc = unsafe { libc::munmap(self.mapping.cast(), self.mapping_len) };
        debug_assert_eq!(rc, 0, "munmap failed: {}", io::Error::last_os_error());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Mutex, MutexGuard};

    /// Serialises the tests of this module, so that one test creating or
    /// dropping stacks does not disturb another one reading
    /// `/proc/self/maps`.
    pub(crate) fn serial() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Parses `/proc/self/maps` into `(start, end, permissions)` triples.
    #[cfg(target_os = "linux")]
    pub(crate) fn mappings() -> Vec<(usize, usize, String)> {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines()
            .map(|line| {
                let mut fields = line.split_whitespace();
                let range = fields.next().unwrap();
                let perms = fields.next().unwrap().to_owned();
                let (start, end) = range.split_once('-').unwrap();
                let start = usize::from_str_radix(start, 16).unwrap();
                let end = usize::from_str_radix(end, 16).unwrap();
                (start, end, perms)
            })
            .collect()
    }

    /// Returns the permissions of the mapping that covers all of `range`.
    #[cfg(target_os = "linux")]
    fn perms_covering(range: Range<usize>) -> String {
        mappings()
            .into_iter()
            .find(|(start, end, _)| *start <= range.start && range.end <= *end)
            .map(|(_, _, perms)| perms)
            .unwrap_or_else(|| panic!("no single mapping covers {range:x?}"))
    }

    #[test]
    fn usable_range_is_readable_and_writable() {
        let _serial = serial();
        let stack = FiberStack::new(64 * 1024, false).unwrap();
        let range = stack.range();
        let first = range.start as *mut u8;
        let last = (range.end - 1) as *mut u8;
        // SAFETY: `first` and `last` are the lowest and highest usable bytes
        // of `stack`, which is mapped read-write and alive until the end of
        // this test.
        unsafe {
            // Fresh stacks read as zero.
            assert_eq!(first.read_volatile(), 0);
            assert_eq!(last.read_volatile(), 0);
            first.write_volatile(0xa5);
            last.write_volatile(0x5a);
            assert_eq!(first.read_volatile(), 0xa5);
            assert_eq!(last.read_volatile(), 0x5a);
        }
    }

    #[test]
    fn zeroed_stack_reads_as_zero() {
        let _serial = serial();
        let stack = FiberStack::new(3 * page_size(), true).unwrap();
        let range = stack.range();
        // SAFETY: `range` is exactly the usable, read-write part of `stack`,
        // which is alive for the whole borrow.
        let bytes = unsafe { std::slice::from_raw_parts(range.start as *const u8, range.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn top_is_aligned_and_ends_the_range() {
        let _serial = serial();
        for size in [1, 100, 4096, 10_000, 1 << 20] {
            let stack = FiberStack::new(size, false).unwrap();
            assert_eq!(stack.top() as usize, stack.range().end);
            assert_eq!(stack.top() as usize % STACK_ALIGN, 0);
            assert_eq!(stack.top() as usize % page_size(), 0);
        }
    }

    #[test]
    fn sizes_are_rounded_up_to_pages() {
        let _serial = serial();
        let page = page_size();
        let cases = [
            (1, page),
            (page - 1, page),
            (page, page),
            (page + 1, 2 * page),
            (5 * page, 5 * page),
        ];
        for (requested, expected) in cases {
            let stack = FiberStack::new(requested, false).unwrap();
            assert_eq!(stack.range().len(), expected, "requested {requested}");
            assert_eq!(stack.range().start % page, 0);
        }
    }

    #[test]
    fn guard_page_is_one_page_directly_below_the_stack() {
        let _serial = serial();
        let stack = FiberStack::new(8 * page_size(), false).unwrap();
        let guard = stack.guard_range();
        assert_eq!(guard.end as usize - guard.start as usize, page_size());
        assert_eq!(guard.end as usize, stack.range().start);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn guard_page_is_inaccessible() {
        let _serial = serial();
        let stack = FiberStack::new(8 * page_size(), false).unwrap();
        let guard = stack.guard_range();
        let guard = guard.start as usize..guard.end as usize;
        assert_eq!(perms_covering(guard), "---p");
        assert_eq!(perms_covering(stack.range()), "rw-p");
    }

    #[test]
    fn zero_size_is_an_error() {
        let _serial = serial();
        let err = FiberStack::new(0, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = FiberStack::new(0, true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn overflowing_size_is_an_error() {
        let _serial = serial();
        for size in [usize::MAX, usize::MAX - page_size() + 1] {
            let err = FiberStack::new(size, false).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn stacks_can_move_between_threads() {
        let _serial = serial();
        let stack = FiberStack::new(page_size(), false).unwrap();
        let top = stack.top() as usize;
        let moved = std::thread::spawn(move || stack.top() as usize)
            .join()
            .unwrap();
        assert_eq!(moved, top);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn dropping_stacks_unmaps_them() {
        // The test harness starts threads of its own while this test runs,
        // and each new thread adds a few mappings (its stack, its guard page,
        // sometimes a malloc arena). Leaking the stacks would add two
        // mappings per stack (guard page and usable part, which differ in
        // permissions and so never merge): 200 here. An allowance for the
        // harness' noise that is far below that cannot hide a leak.
        const NOISE: usize = 32;
        const STACKS: usize = 100;
        // An unusual size, so that no mapping made by anyone else is likely
        // to have exactly the same bounds as one of these stacks.
        let usable_len = 7 * page_size();

        let _serial = serial();
        // Warm up, so that anything initialised lazily on first use is not
        // counted as a leak.
        drop(FiberStack::new(page_size(), false).unwrap());

        let before = mappings().len();
        let stacks: Vec<FiberStack> = (0..STACKS)
            .map(|_| FiberStack::new(usable_len, false).unwrap())
            .collect();
        let alive = mappings();
        let bounds: Vec<(Range<usize>, Range<usize>)> = stacks
            .iter()
            .map(|stack| {
                let guard = stack.guard_range();
                (guard.start as usize..guard.end as usize, stack.range())
            })
            .collect();
        drop(stacks);
        let after = mappings();

        // A stack's usable part merges with an anonymous read-write mapping
        // that happens to sit directly above it (as one left by another
        // test's large allocation may), so a few stacks may add one mapping
        // instead of two.
        assert!(
            alive.len() + NOISE >= before + 2 * STACKS,
            "creating {STACKS} stacks added only {} mappings",
            alive.len().saturating_sub(before),
        );
        let covered = |range: &Range<usize>, want: &str| {
            alive.iter().any(|(start, end, perms)| {
                *start <= range.start && range.end <= *end && perms == want
            })
        };
        for (guard, usable) in &bounds {
            assert!(covered(guard, "---p"), "guard page {guard:x?} not mapped");
            assert!(covered(usable, "rw-p"), "stack {usable:x?} not mapped");
        }
        assert!(
            after.len() <= before + NOISE,
            "mappings before: {before}, after dropping all stacks: {}",
            after.len(),
        );
        // Precise check: no mapping with exactly the bounds of a dropped
        // stack's guard page or usable part is left.
        for (guard, usable) in &bounds {
            for (start, end, perms) in &after {
                let range = *start..*end;
                assert!(
                    range != *guard && range != *usable,
                    "dropped stack still mapped: {range:x?} {perms}",
                );
            }
        }
    }

    #[test]
    fn borrowed_stacks_leave_their_memory_to_its_owner() {
        let page = page_size();
        let owner = FiberStack::new(4 * page, true).unwrap();
        let base = owner.guard_range().start;
        // SAFETY: `owner`'s mapping has a guard page, then usable pages, and outlives
        // the borrowed stack.
        let borrowed = unsafe { FiberStack::from_raw_parts(base, 5 * page, page) }.unwrap();
        assert!(borrowed.is_from_raw_parts() && !owner.is_from_raw_parts());
        assert_eq!(borrowed.range(), owner.range());
        drop(borrowed);
        // SAFETY: the owner's usable memory is still mapped after the borrow ended.
        unsafe { owner.top().sub(1).write(1) };
        // SAFETY: as above.
        let misaligned = unsafe { FiberStack::from_raw_parts(base.add(1), 5 * page, page) };
        assert_eq!(misaligned.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        // SAFETY: as above.
        let no_room = unsafe { FiberStack::from_raw_parts(base, page, page) };
        assert_eq!(no_room.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
