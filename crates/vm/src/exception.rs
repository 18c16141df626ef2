//! Exceptions: the store's exception objects and the unwinder that carries a thrown
//! exception to its handler.
//!
//! An exception object is a header (its tag's identity, a `*const VMTagDefinition`, and
//! its index in the store's [`ExnHeap`]) followed by one 16-byte slot per field, the
//! layout of [`strata_environ::VMOffsets::exn_field`]. Compiled code holds an `exnref`
//! as the object's address, which stays put until the store is dropped.
//!
//! Throwing costs nothing where nothing is thrown: there is no per-call registration.
//! Every call inside a `try_table` is a Cranelift `try_call` whose one catch-all
//! handler is the `try_table`'s landing code, and the compiler lists each such call's
//! return address with its handler ([`strata_environ::HandlerSite`]). A throw walks the
//! chain of frame pointers from the throwing frame outwards, looking up each frame's
//! return address in that table. The first frame with a handler resumes there with
//! the exception in the first payload register; its landing code compares the tag with
//! its `catch` clauses and, if none matches, throws again from that frame. Reaching
//! the host entry of the activation ends the walk: the exception leaves `catch_traps`
//! as [`UnwindReason::Exception`], and a trap never takes this path at all.

use crate::code_memory::lookup_code;
use crate::traphandlers::{UnwindReason, unwind_to_entry};
use crate::vmcontext::{VMStoreContext, VMTagDefinition};
use core::ptr::NonNull;
use strata_environ::EXN_HEADER;

/// The exception objects of a store. They live as long as the store: without a
/// garbage collector (a later part of the GC work) nothing tells when wasm dropped
/// its last reference to one.
#[derive(Debug, Default)]
pub struct ExnHeap {
    /// Each object, allocated as a boxed slice of 16-byte words and owned through its
    /// raw pointer: compiled code holds addresses into them, so they are never moved or
    /// reborrowed as a `Box` while the heap lives.
    objects: Vec<NonNull<[u128]>>,
}

// SAFETY: the heap owns its objects, which hold plain bytes and tag addresses; it moves
// with its store, and only the store's thread touches them.
unsafe impl Send for ExnHeap {}

/// A pointer to an exception object in an [`ExnHeap`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct VMExnRef(NonNull<u8>);

// SAFETY: a plain address; reading through it is governed by the owning store.
unsafe impl Send for VMExnRef {}
// SAFETY: as above.
unsafe impl Sync for VMExnRef {}

impl ExnHeap {
    /// A new exception of tag `tag` with `fields` zeroed fields.
    pub fn alloc(&mut self, tag: NonNull<VMTagDefinition>, fields: usize) -> VMExnRef {
        let header_words = EXN_HEADER as usize / 16;
        let object = vec![0u128; header_words + fields].into_boxed_slice();
        let object = NonNull::from(Box::leak(object));
        let index = self.objects.len();
        self.objects.push(object);
        let base = object.cast::<u8>();
        // SAFETY: the header's first two words lie inside the fresh allocation, which
        // is 16-byte aligned (an array of `u128`) and owned by this heap alone.
        unsafe {
            base.cast::<*const VMTagDefinition>().write(tag.as_ptr());
            base.byte_add(size_of::<usize>())
                .cast::<usize>()
                .write(index);
        }
        VMExnRef(base)
    }

    /// The exception with index `index`, if this heap has one.
    pub fn get(&self, index: usize) -> Option<VMExnRef> {
        self.objects.get(index).map(|o| VMExnRef(o.cast()))
    }
}

impl Drop for ExnHeap {
    fn drop(&mut self) {
        for object in self.objects.drain(..) {
            // SAFETY: each object came from `Box::leak` in `alloc` and is freed once,
            // here; nothing uses the store's exceptions once it is dropped.
            drop(unsafe { Box::from_raw(object.as_ptr()) });
        }
    }
}

impl VMExnRef {
    /// The exception at `raw`, an `exnref` compiled code holds; `None` for null.
    ///
    /// # Safety
    /// A non-null `raw` must be an object of a live [`ExnHeap`].
    pub unsafe fn from_raw(raw: *mut u8) -> Option<VMExnRef> {
        NonNull::new(raw).map(VMExnRef)
    }

    /// The word compiled code holds for this exception.
    pub fn as_raw(self) -> *mut u8 {
        self.0.as_ptr()
    }

    /// Its index in its heap.
    ///
    /// # Safety
    /// The exception's heap must be alive.
    pub unsafe fn index(self) -> usize {
        // SAFETY: per the contract the header is readable.
        unsafe { self.0.byte_add(size_of::<usize>()).cast::<usize>().read() }
    }

    /// Its tag's identity.
    ///
    /// # Safety
    /// The exception's heap must be alive.
    pub unsafe fn tag(self) -> NonNull<VMTagDefinition> {
        // SAFETY: per the contract the header is readable; `alloc` wrote a non-null
        // tag pointer.
        unsafe { NonNull::new_unchecked(self.0.cast::<*mut VMTagDefinition>().read()) }
    }

    /// The 16-byte slot of field `index`.
    ///
    /// # Safety
    /// The exception's heap must be alive and `index` less than its number of fields.
    pub unsafe fn field(self, index: usize) -> *mut u128 {
        // SAFETY: per the contract the slot lies inside the object.
        unsafe {
            self.0
                .byte_add(EXN_HEADER as usize + index * 16)
                .cast::<u128>()
                .as_ptr()
        }
    }
}

/// Where a handler resumes: its code and the stack and frame pointers of its frame.
struct Resume {
    pc: usize,
    sp: usize,
    fp: usize,
}

/// The first handler among the wasm frames from `(pc, fp)` (a return address into the
/// frame whose frame pointer is `fp`) out to the activation's entry frame `entry_fp`.
///
/// # Safety
/// `fp` must be the frame pointer of a live wasm frame of this thread whose chain of
/// saved frame pointers reaches `entry_fp`, and `pc` a return address in that frame.
unsafe fn find_handler(mut pc: usize, mut fp: usize, entry_fp: usize) -> Option<Resume> {
    while fp != 0 && fp != entry_fp {
        if let Some((code, offset)) = lookup_code(pc)
            && let Some((handler, frame_offset)) = code.lookup_handler(offset)
        {
            return Some(Resume {
                pc: code.text_start() + handler as usize,
                sp: fp - frame_offset as usize,
                fp,
            });
        }
        // SAFETY: per the contract every frame up to `entry_fp` saved its caller's frame
        // pointer at `fp` and its return address right above it.
        unsafe {
            pc = *((fp + size_of::<usize>()) as *const usize);
            fp = *(fp as *const usize);
        }
    }
    None
}

/// Throws `exn` from the wasm frame whose frame pointer is `fp`, at return address
/// `pc` in it: resumes at the first handler outwards, or unwinds to the innermost
/// host entry with [`UnwindReason::Exception`] if there is none.
///
/// # Safety
/// As [`find_handler`], with `ctx` the store context of the running activation, and no
/// frame between here and the handler (or the entry) may need unwinding: everything of
/// the caller that owns resources must be dropped before.
pub(crate) unsafe fn throw(ctx: &VMStoreContext, exn: VMExnRef, pc: usize, fp: usize) -> ! {
    // SAFETY: only this thread touches its store context.
    let entry_fp = unsafe { *ctx.last_wasm_entry_fp.get() };
    // SAFETY: per the contract. The lookup's temporaries (a lock guard, a reference to
    // the code) are gone when it returns, before the jump below.
    let handler = unsafe { find_handler(pc, fp, entry_fp) };
    match handler {
        // SAFETY: the handler's frame is live below us, and its landing code expects
        // the exception in the first payload register.
        Some(Resume { pc, sp, fp: frame }) => unsafe {
            crate::traphandlers::resume_to_handler(pc, sp, frame, exn.as_raw() as usize)
        },
        // SAFETY: per the contract.
        None => unsafe { unwind_to_entry(ctx, UnwindReason::Exception(exn), pc, fp) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exception_keeps_its_tag_index_and_fields_where_compiled_code_reads_them() {
        let tags = [
            VMTagDefinition { type_index: 3 },
            VMTagDefinition { type_index: 4 },
        ];
        let mut heap = ExnHeap::default();
        let a = heap.alloc(NonNull::from(&tags[0]), 2);
        let b = heap.alloc(NonNull::from(&tags[1]), 0);
        // SAFETY: both live in `heap`; `a` has two fields.
        unsafe {
            a.field(1).write(0x1234_5678_9abc_def0_1122_3344_5566_7788);
            assert_eq!(a.tag().as_ref().type_index, 3);
            assert_eq!(b.tag().as_ref().type_index, 4);
            assert_eq!((a.index(), b.index()), (0, 1));
            assert_eq!(a.field(0).read(), 0, "fields start zeroed");
            // The layout compiled code uses: fields 16 bytes apart after the header.
            let second = a.as_raw().add(EXN_HEADER as usize + 16).cast::<u128>();
            assert_eq!(second.read(), 0x1234_5678_9abc_def0_1122_3344_5566_7788);
        }
        assert_eq!(heap.get(1), Some(b));
        assert_eq!(heap.get(2), None);
        // More objects do not move the earlier ones.
        for _ in 0..1000 {
            heap.alloc(NonNull::from(&tags[1]), 1);
        }
        assert_eq!(heap.get(0), Some(a));
    }
}
