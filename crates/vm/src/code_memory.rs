//! Executable code of a module and the process-wide registry of code ranges.
//!
//! A module's code arrives as an artifact (see [`strata_environ::ArtifactLayout`]),
//! freshly compiled or loaded from bytes or a file, and is published from an
//! [`ArtifactImage`]: a private mapping of the whole artifact whose text is made
//! read+execute and everything else read-only (never writable and executable at once).
//! A file's text is mapped straight from the file when its offset is page-aligned;
//! otherwise, as for bytes, the artifact is copied into fresh memory first. Each
//! published [`CodeObject`] registers its text range so that the signal handler and the
//! backtrace walker can tell wasm code from host code.
//!
//! Loaded text is checked against its checksums lazily, one [`TEXT_CHUNK`] at a time,
//! so that loading costs nothing per byte of code: the text starts readable but not
//! executable, and the first attempt to execute a chunk faults into the signal handler,
//! which checks the chunk ([`on_text_fault`]) and makes it executable if it matches. A
//! chunk that does not match is never made executable; the call that reached it fails
//! with [`UnwindReason::Vm`](crate::UnwindReason::Vm).

use crate::VmError;
use crate::mmap::Mmap;
use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock, Weak};
use strata_environ::{
    ArtifactLayout, CodeTables, DefinedFuncIndex, FuncIndex, FunctionLoc, Module, Section,
    TEXT_CHUNK, Trap, TypeIndex,
};

/// An artifact's bytes in a private mapping of their own, read-only until published.
pub struct ArtifactImage {
    mmap: Mmap,
    /// Where the artifact starts in the mapping: chosen so that its text section is
    /// page-aligned.
    start: usize,
    len: usize,
    /// The file the mapping is of; `None` for anonymous memory holding a copy.
    file: Option<File>,
}

impl ArtifactImage {
    /// Copies `bytes` into a fresh mapping, placed so that the text section at
    /// `text_offset` (or any offset, if the artifact has no text) is page-aligned.
    ///
    /// # Errors
    /// Fails if the memory cannot be mapped.
    pub fn copy_of(bytes: &[u8], text_offset: usize) -> Result<ArtifactImage, VmError> {
        let page = crate::host_page_size();
        let start = (page - text_offset % page) % page;
        let size = (start + bytes.len()).next_multiple_of(page).max(page);
        let mut mmap = Mmap::reserve(size)?;
        mmap.make_accessible(0, size)?;
        // SAFETY: the mapping has `size >= start + bytes.len()` writable bytes, and is
        // fresh, so it cannot overlap `bytes`.
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), mmap.as_ptr().add(start), bytes.len());
        }
        mmap.protect(0, size, libc::PROT_READ)?;
        Ok(ArtifactImage {
            mmap,
            start,
            len: bytes.len(),
            file: None,
        })
    }

    /// Maps `file` privately and read-only.
    ///
    /// # Safety
    /// The file must not be written or truncated while the image, or any code or memory
    /// image published from it, lives: a private mapping still shows other writers'
    /// changes to the pages this process has not copied, and a truncated file's pages
    /// fault with SIGBUS.
    ///
    /// # Errors
    /// Fails if the file's length cannot be read or the file cannot be mapped.
    pub unsafe fn map_file(file: &File) -> Result<ArtifactImage, VmError> {
        let len = file.metadata().map_err(VmError::Mmap)?.len();
        let len = usize::try_from(len)
            .map_err(|_| VmError::Mmap(std::io::Error::other("file too large to map")))?;
        let mmap = Mmap::map_file(file, len)?;
        Ok(ArtifactImage {
            mmap,
            start: 0,
            len,
            // Kept for the memory images, which map the data from it too.
            file: Some(file.try_clone().map_err(VmError::Mmap)?),
        })
    }

    /// The artifact's bytes.
    pub fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `[start, start + len)` lies in the mapping, which is readable and
        // never written while `self` lives: it is read-only or read+execute, its copy is
        // private, and a file under it does not change (the contract of `map_file`).
        unsafe { core::slice::from_raw_parts(self.mmap.as_ptr().add(self.start), self.len) }
    }

    /// Gives `text` (a range of [`bytes`](Self::bytes)) the protection `prot`, copying
    /// the artifact into fresh memory first if the text is not page-aligned in a file
    /// mapping, or the file system does not allow executing it.
    fn protect_text(
        self,
        text: &core::ops::Range<usize>,
        prot: libc::c_int,
    ) -> Result<ArtifactImage, VmError> {
        let page = crate::host_page_size();
        if text.is_empty() {
            return Ok(self);
        }
        let mut image = self;
        if !(image.start + text.start).is_multiple_of(page) {
            image = ArtifactImage::copy_of(image.bytes(), text.start)?;
        }
        // A `noexec` mount refuses executable file mappings, and would refuse them
        // later too; anonymous memory is always allowed.
        if image.file.is_some() && image.exec_refused(text) {
            image = ArtifactImage::copy_of(image.bytes(), text.start)?;
        }
        let at = image.start + text.start;
        let len = (image.start + text.end).next_multiple_of(page) - at;
        image.mmap.protect(at, len, prot)?;
        Ok(image)
    }

    /// Whether the system refuses to make the first page of `text` executable.
    fn exec_refused(&mut self, text: &core::ops::Range<usize>) -> bool {
        let page = crate::host_page_size();
        let at = self.start + text.start;
        let refused = self
            .mmap
            .protect(at, page, libc::PROT_READ | libc::PROT_EXEC)
            .is_err();
        refused || self.mmap.protect(at, page, libc::PROT_READ).is_err()
    }
}

/// How far a chunk of text has been checked.
const UNCHECKED: u8 = 0;
/// A thread is checking the chunk.
const CHECKING: u8 = 1;
/// The chunk matched its checksum and is executable.
const CHECKED: u8 = 2;
/// The chunk does not match its checksum; it stays non-executable.
const CORRUPTED: u8 = 3;

/// A module's published machine code with the tables that describe it.
pub struct CodeObject {
    image: ArtifactImage,
    layout: ArtifactLayout,
    module: Arc<Module>,
    text_start: usize,
    text_len: usize,
    /// The state of each [`TEXT_CHUNK`] of the text: `UNCHECKED`, `CHECKING`, `CHECKED`
    /// or `CORRUPTED`.
    chunks: Box<[AtomicU8]>,
    /// The state of the data section: `UNCHECKED`, `CHECKED` or `CORRUPTED`.
    data: AtomicU8,
    /// The state of the trap table and the address map, checked together.
    trap_tables: AtomicU8,
}

/// What the signal handler should do about a fault at an address (see
/// [`on_text_fault`]).
#[derive(Debug)]
pub(crate) enum TextFault {
    /// The address is not in unchecked text: handle the fault as usual.
    NotText,
    /// The chunk is now checked and executable: retry the instruction.
    Retry,
    /// The chunk `[start, end)` of the text does not match its checksum.
    Corrupted {
        /// Text offset of the chunk.
        start: u32,
        /// Text offset of its end.
        end: u32,
    },
    /// The chunk matches, but could not be made executable.
    Failed(VmError),
}

/// `text end -> (text start, code)`, for every live [`CodeObject`].
type Registry = BTreeMap<usize, (usize, Weak<CodeObject>)>;

static GLOBAL_CODE: RwLock<Registry> = RwLock::new(BTreeMap::new());

impl CodeObject {
    /// Publishes the code of the artifact in `image`, described by `layout` and
    /// `module`, and registers it. With `checked`, the text is made executable at once;
    /// otherwise each chunk of it is checked against its checksum before it first runs.
    ///
    /// # Safety
    /// The artifact's code is executed when the module's functions are called: it must
    /// be code strata compiled for `module` with the settings of the engine that will
    /// run it (which [`ArtifactLayout::check_compatible`] checks for accidents), and
    /// `layout` must have been parsed from `image`'s bytes, with its tables verified
    /// ([`ArtifactLayout::verify_tables`]) or known to be intact (freshly written). With
    /// `checked`, the text must be known to be intact. A file under `image` must not
    /// change while the code lives.
    ///
    /// # Errors
    /// Fails if the memory cannot be mapped or protected.
    pub unsafe fn publish(
        image: ArtifactImage,
        layout: ArtifactLayout,
        module: Arc<Module>,
        checked: bool,
    ) -> Result<Arc<CodeObject>, VmError> {
        let text = layout.range(Section::Text);
        let (prot, state) = if checked {
            (libc::PROT_READ | libc::PROT_EXEC, CHECKED)
        } else {
            (libc::PROT_READ, UNCHECKED)
        };
        let image = image.protect_text(&text, prot)?;
        let text_start = image.bytes().as_ptr() as usize + text.start;
        let chunks = (0..text.len().div_ceil(TEXT_CHUNK))
            .map(|_| AtomicU8::new(state))
            .collect();
        let code = Arc::new(CodeObject {
            image,
            layout,
            module,
            text_start,
            text_len: text.len(),
            chunks,
            data: AtomicU8::new(state),
            trap_tables: AtomicU8::new(state),
        });
        let end = text_start + code.text_len.max(1);
        GLOBAL_CODE
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(end, (text_start, Arc::downgrade(&code)));
        if !checked {
            code.check_trampolines()?;
        }
        Ok(code)
    }

    /// Checks the chunks holding the trampolines, which follow the functions in the
    /// text. The host calls into wasm through entry trampolines, and only once one has
    /// run can a fault be unwound; so they are checked now, not when they first run.
    fn check_trampolines(&self) -> Result<(), VmError> {
        let tables = self.tables();
        let last = tables
            .num_functions()
            .checked_sub(1)
            .map(<DefinedFuncIndex as strata_environ::EntityRef>::new);
        let after_functions = last
            .and_then(|f| tables.function(f))
            .map_or(0, |loc| loc.start as usize + loc.length as usize);
        // Where readable memory is executable anyway (the READ_IMPLIES_EXEC
        // personality), a fault would never come: everything is checked now.
        let first = if read_implies_exec() {
            0
        } else {
            after_functions / TEXT_CHUNK
        };
        self.check_chunks(first..self.chunks.len())
    }

    /// Checks the chunks `indices` of the text not yet checked, as the signal handler
    /// would when they first run.
    fn check_chunks(&self, indices: core::ops::Range<usize>) -> Result<(), VmError> {
        for index in indices {
            match self.check_chunk(index) {
                TextFault::Corrupted { start, end } => {
                    return Err(VmError::CorruptedCode { start, end });
                }
                TextFault::Failed(error) => return Err(error),
                TextFault::NotText | TextFault::Retry => {}
            }
        }
        Ok(())
    }

    /// Checks chunk `index` of the text against its checksum, unless that was done,
    /// and makes it executable if it matches. Safe to call from a signal handler: it
    /// neither allocates nor takes locks, and threads racing on one chunk wait for the
    /// one that checks it.
    fn check_chunk(&self, index: usize) -> TextFault {
        let Some(state) = self.chunks.get(index) else {
            return TextFault::NotText;
        };
        let start = index * TEXT_CHUNK;
        let end = (start + TEXT_CHUNK).min(self.text_len);
        let corrupted = || TextFault::Corrupted {
            // Text offsets fit in `u32` (see `FunctionLoc`).
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        };
        loop {
            match state.compare_exchange(UNCHECKED, CHECKING, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(CHECKED) => return TextFault::Retry,
                Err(CORRUPTED) => return corrupted(),
                // Another thread is checking the chunk; `sched_yield` is
                // async-signal-safe.
                Err(_) => std::thread::yield_now(),
            }
        }
        if !self.layout.text_chunk_intact(self.image.bytes(), index) {
            state.store(CORRUPTED, Ordering::Release);
            return corrupted();
        }
        let page = crate::host_page_size();
        let len = end.next_multiple_of(page) - start;
        // SAFETY: the chunk's pages (up to the page holding the text's last byte) lie in
        // this object's mapping; making intact code executable is what publishing does.
        let protected = unsafe {
            crate::mmap::protect(
                (self.text_start + start) as *mut u8,
                len,
                libc::PROT_READ | libc::PROT_EXEC,
            )
        };
        match protected {
            Ok(()) => {
                state.store(CHECKED, Ordering::Release);
                TextFault::Retry
            }
            // Not the code's fault (too many mappings, a security policy): a later
            // fault tries again.
            Err(error) => {
                state.store(UNCHECKED, Ordering::Release);
                TextFault::Failed(error)
            }
        }
    }

    /// The bytes of the module's data segments (see
    /// [`DataSegment::range`](strata_environ::DataSegment)), checked against their
    /// checksum the first time they are asked for.
    ///
    /// # Errors
    /// [`VmError::CorruptedData`] if they do not match.
    pub fn wasm_data(&self) -> Result<&[u8], VmError> {
        if self.checked(&self.data, &[Section::Data]) {
            Ok(&self.image.bytes()[self.layout.range(Section::Data)])
        } else {
            Err(VmError::CorruptedData)
        }
    }

    /// Whether `sections` match their checksums, which are compared on the first call
    /// only, `state` keeping the answer. Allocates nothing, so that the signal handler
    /// may call it; racing threads compute the same answer.
    fn checked(&self, state: &AtomicU8, sections: &[Section]) -> bool {
        if state.load(Ordering::Acquire) == UNCHECKED {
            let bytes = self.image.bytes();
            let intact = sections
                .iter()
                .all(|&s| self.layout.section_intact(bytes, s));
            state.store(if intact { CHECKED } else { CORRUPTED }, Ordering::Release);
        }
        state.load(Ordering::Acquire) == CHECKED
    }

    /// The trap table and address map, checked on first use.
    fn trap_tables(&self) -> Option<CodeTables<'_>> {
        let sections = [Section::Traps, Section::AddressMap, Section::InlineMap];
        self.checked(&self.trap_tables, &sections)
            .then(|| self.tables())
    }

    /// The file the module's data lies in, for memory images mapped from it; `None` if
    /// the artifact was not mapped from a file.
    pub fn data_file(&self) -> Option<crate::DataFile<'_>> {
        let file = self.image.file.as_ref()?;
        let offset = (self.image.start + self.layout.range(Section::Data).start) as u64;
        Some(crate::DataFile { file, offset })
    }

    /// Checks every part of the artifact that loading left to be checked on first use:
    /// each chunk of the text not yet checked (as the signal handler would when it
    /// first runs) and the data.
    ///
    /// # Errors
    /// Names the first part that does not match its checksum.
    pub fn check_all(&self) -> Result<(), VmError> {
        self.check_chunks(0..self.chunks.len())?;
        if self.trap_tables().is_none() {
            return Err(VmError::CorruptedTables);
        }
        self.wasm_data().map(drop)
    }

    fn tables(&self) -> CodeTables<'_> {
        self.layout.tables(self.image.bytes())
    }

    /// The whole artifact the code was published from.
    pub fn artifact(&self) -> &[u8] {
        self.image.bytes()
    }

    /// The text section: the machine code of every function and trampoline. In an
    /// artifact loaded without checking, chunks that have not run yet are unchecked.
    pub fn text(&self) -> &[u8] {
        &self.image.bytes()[self.layout.range(Section::Text)]
    }

    /// Where defined function `index` sits in [`CodeObject::text`].
    pub fn function_loc(&self, index: DefinedFuncIndex) -> Option<FunctionLoc> {
        self.tables().function(index)
    }

    /// The module this code was compiled from.
    pub fn module(&self) -> &Arc<Module> {
        &self.module
    }

    /// The wasm-convention entry of defined function `index`.
    pub fn function(&self, index: DefinedFuncIndex) -> *const u8 {
        let loc = self.tables().function(index).unwrap_or_default();
        self.text_start.wrapping_add(loc.start as usize) as *const u8
    }

    /// The array-call entry trampoline of defined function `index`, if it escapes.
    pub fn array_to_wasm_trampoline(&self, index: DefinedFuncIndex) -> Option<*const u8> {
        let offset = self.tables().array_to_wasm(index)?;
        Some(self.text_start.wrapping_add(offset as usize) as *const u8)
    }

    /// The wasm-to-host trampoline for functions of type `ty`.
    pub fn wasm_to_array_trampoline(&self, ty: TypeIndex) -> *const u8 {
        let loc = self.tables().wasm_to_array(ty).unwrap_or_default();
        self.text_start.wrapping_add(loc.start as usize) as *const u8
    }

    /// The trap raised by the instruction at text offset `offset`, if any. Safe to call
    /// from a signal handler.
    ///
    /// # Errors
    /// [`VmError::CorruptedTables`] if the trap table does not match its checksum (on
    /// its first use), so that which instructions trap is unknown.
    pub fn lookup_trap(&self, offset: u32) -> Result<Option<Trap>, VmError> {
        let tables = self.trap_tables().ok_or(VmError::CorruptedTables)?;
        Ok(tables.lookup_trap(offset))
    }

    /// The exception handler of the call whose return address is at text offset
    /// `offset`: the handler's text offset and the call's frame offset (see
    /// [`strata_environ::HandlerSite`]). The handler table was checked when the code
    /// was loaded.
    pub fn lookup_handler(&self, offset: u32) -> Option<(u32, u32)> {
        self.tables().handler_at(offset)
    }

    /// The address of the first byte of the text.
    pub fn text_start(&self) -> usize {
        self.text_start
    }

    /// The wasm function containing text offset `offset`, and the instruction's wasm byte
    /// offset. `None` for trampolines.
    pub fn lookup_function(&self, offset: u32) -> Option<(FuncIndex, Option<u32>)> {
        let def = self.tables().function_at(offset)?;
        // A damaged address map only costs the backtrace its wasm offsets.
        let wasm_offset = self.trap_tables().and_then(|t| t.wasm_offset(offset));
        Some((self.module.func_index(def), wasm_offset))
    }

    /// If the instruction at text offset `offset` was inlined from another function:
    /// that function and the wasm offset of the call it was inlined at. (The
    /// instruction's own wasm offset, from [`lookup_function`](Self::lookup_function),
    /// is then in the inlined function.)
    pub fn lookup_inlined(&self, offset: u32) -> Option<(FuncIndex, u32)> {
        let (callee, call) = self.trap_tables()?.inlined_at(offset)?;
        Some((self.module.func_index(callee), call))
    }
}

impl Drop for CodeObject {
    fn drop(&mut self) {
        let end = self.text_start + self.text_len.max(1);
        GLOBAL_CODE
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&end);
    }
}

/// Whether this process's personality makes readable memory executable.
fn read_implies_exec() -> bool {
    // SAFETY: `personality(0xffffffff)` only reads the current personality.
    let personality = unsafe { libc::personality(0xffff_ffff) };
    personality != -1 && personality & libc::READ_IMPLIES_EXEC != 0
}

/// Handles a SIGSEGV at `addr` by the instruction at `pc` if it is the first attempt
/// to execute a chunk of text not yet checked (see the module documentation). Only for
/// SIGSEGV: other signals at a `pc` in checked text are traps.
pub(crate) fn on_text_fault(addr: usize, pc: usize) -> TextFault {
    // An instruction fetch faults at an address within the instruction (which may
    // begin in the chunk before); anything else is a data access, which checking
    // would not cure.
    const MAX_INSTRUCTION: usize = 16;
    if addr.wrapping_sub(pc) >= MAX_INSTRUCTION {
        return TextFault::NotText;
    }
    let Some((code, offset)) = lookup_code(addr) else {
        return TextFault::NotText;
    };
    // A chunk checked since the fault (by another thread) is executable now: the
    // retry runs.
    code.check_chunk(offset as usize / TEXT_CHUNK)
}

/// The code object containing `pc` and the offset of `pc` in its text, if `pc` is in
/// published wasm code.
pub fn lookup_code(pc: usize) -> Option<(Arc<CodeObject>, u32)> {
    let registry = GLOBAL_CODE.read().unwrap_or_else(|e| e.into_inner());
    let (&end, (start, code)) = registry.range(pc..).next()?;
    if pc < *start || pc >= end {
        return None;
    }
    let code = code.upgrade()?;
    Some((code, u32::try_from(pc - start).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_environ::{
        ArtifactTarget, CompiledModule, FunctionLoc, PrimaryMap, TrapSite, write_artifact,
    };

    /// Serializes these tests: a dropped object's address may be reused by another.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn artifact() -> (Vec<u8>, ArtifactLayout) {
        let mut functions = PrimaryMap::new();
        functions.push(FunctionLoc {
            start: 0,
            length: 4,
        });
        functions.push(FunctionLoc {
            start: 16,
            length: 8,
        });
        let compiled = CompiledModule {
            text: vec![0xc3; 32],
            functions,
            traps: vec![TrapSite {
                offset: 18,
                trap: Trap::UnreachableCodeReached,
            }],
            address_map: vec![(16, 40), (20, 44)],
            ..CompiledModule::default()
        };
        let target = ArtifactTarget {
            strata_version: "test".into(),
            target: strata_environ::host_target(),
            cpu_features: Vec::new(),
            settings: Vec::new(),
        };
        let bytes = write_artifact(&target, &sample_module(), &compiled, b"data");
        let layout = ArtifactLayout::parse(&bytes).unwrap();
        (bytes, layout)
    }

    fn sample_module() -> Arc<Module> {
        Arc::new(Module {
            num_imported_funcs: 1,
            ..Module::default()
        })
    }

    fn sample() -> Arc<CodeObject> {
        let (bytes, layout) = artifact();
        let image = ArtifactImage::copy_of(&bytes, layout.range(Section::Text).start).unwrap();
        // SAFETY: the text is `ret` instructions and nothing calls them.
        unsafe { CodeObject::publish(image, layout, sample_module(), true) }.unwrap()
    }

    #[test]
    fn registered_code_is_found_by_pc() {
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let code = sample();
        let start = code.function(DefinedFuncIndex::from_u32(0)) as usize;
        let (found, offset) = lookup_code(start + 18).unwrap();
        assert!(Arc::ptr_eq(&found, &code));
        assert_eq!(
            found.lookup_trap(offset).unwrap(),
            Some(Trap::UnreachableCodeReached)
        );
        assert_eq!(
            found.lookup_function(21),
            Some((FuncIndex::from_u32(2), Some(44)))
        );
        assert_eq!(found.lookup_function(8), None, "between functions");
        assert!(lookup_code(start + 32).is_none());
    }

    #[test]
    fn dropped_code_is_unregistered() {
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let code = sample();
        let start = code.function(DefinedFuncIndex::from_u32(0)) as usize;
        drop(code);
        assert!(lookup_code(start).is_none());
    }

    #[test]
    fn file_artifacts_run_from_the_file_mapping() {
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let (bytes, layout) = artifact();
        let path = std::env::temp_dir().join(format!("strata-code-{}.swasm", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        // SAFETY: the file is this test's own and is removed, not changed.
        let image = unsafe { ArtifactImage::map_file(&file) }.unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(image.bytes(), &bytes[..]);
        // SAFETY: as in `sample`.
        let code = unsafe { CodeObject::publish(image, layout, sample_module(), true) }.unwrap();
        let start = code.function(DefinedFuncIndex::from_u32(1)) as usize;
        let (found, offset) = lookup_code(start + 2).unwrap();
        assert!(Arc::ptr_eq(&found, &code));
        assert_eq!(
            found.lookup_trap(offset).unwrap(),
            Some(Trap::UnreachableCodeReached)
        );
        // SAFETY: the text is mapped readable and executable.
        assert_eq!(unsafe { (start as *const u8).read() }, 0xc3);
        assert_eq!(code.artifact(), &bytes[..]);
    }
}
