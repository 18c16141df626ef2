//! Executable code of a module and the process-wide registry of code ranges.
//!
//! Code is copied into a fresh mapping that is writable only while it is filled, then
//! made read+execute (never writable and executable at once). Each published
//! [`CodeObject`] registers its text range so that the signal handler and the backtrace
//! walker can tell wasm code from host code.

use crate::VmError;
use crate::mmap::Mmap;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, Weak};
use strata_environ::{
    CompiledModule, DefinedFuncIndex, FuncIndex, Module, Trap, TypeIndex, address_of_wasm_offset,
    lookup_trap,
};

/// A module's published machine code with the tables that describe it.
pub struct CodeObject {
    mmap: Mmap,
    compiled: CompiledModule,
    module: Arc<Module>,
    /// Entry trampolines by defined function.
    array_to_wasm: Vec<Option<usize>>,
}

/// `text end -> (text start, code)`, for every live [`CodeObject`].
type Registry = BTreeMap<usize, (usize, Weak<CodeObject>)>;

static GLOBAL_CODE: RwLock<Registry> = RwLock::new(BTreeMap::new());

impl CodeObject {
    /// Publishes `compiled.text` as executable code and registers it.
    ///
    /// # Errors
    /// Fails if the memory cannot be mapped or protected.
    pub fn new(compiled: CompiledModule, module: Arc<Module>) -> Result<Arc<CodeObject>, VmError> {
        let page = crate::host_page_size();
        let len = compiled.text.len().next_multiple_of(page).max(page);
        let mut mmap = Mmap::reserve(len)?;
        mmap.make_accessible(0, len)?;
        // SAFETY: the mapping is `len >= text.len()` writable bytes we own.
        unsafe {
            core::ptr::copy_nonoverlapping(
                compiled.text.as_ptr(),
                mmap.as_ptr(),
                compiled.text.len(),
            );
        }
        mmap.protect(0, len, libc::PROT_READ | libc::PROT_EXEC)?;
        let mut array_to_wasm = vec![None; compiled.functions.len()];
        for (index, loc) in &compiled.array_to_wasm_trampolines {
            array_to_wasm[index.as_u32() as usize] = Some(loc.start as usize);
        }
        let code = Arc::new(CodeObject {
            mmap,
            compiled,
            module,
            array_to_wasm,
        });
        let start = code.text_start();
        let end = start + code.compiled.text.len().max(1);
        GLOBAL_CODE
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(end, (start, Arc::downgrade(&code)));
        Ok(code)
    }

    fn text_start(&self) -> usize {
        self.mmap.as_ptr() as usize
    }

    /// The module this code was compiled from.
    pub fn module(&self) -> &Arc<Module> {
        &self.module
    }

    /// The wasm-convention entry of defined function `index`.
    pub fn function(&self, index: DefinedFuncIndex) -> *const u8 {
        let loc = self.compiled.functions[index];
        self.text_start().wrapping_add(loc.start as usize) as *const u8
    }

    /// The array-call entry trampoline of defined function `index`, if it escapes.
    pub fn array_to_wasm_trampoline(&self, index: DefinedFuncIndex) -> Option<*const u8> {
        let offset = self
            .array_to_wasm
            .get(index.as_u32() as usize)
            .copied()
            .flatten()?;
        Some(self.text_start().wrapping_add(offset) as *const u8)
    }

    /// The wasm-to-host trampoline for functions of type `ty`.
    pub fn wasm_to_array_trampoline(&self, ty: TypeIndex) -> *const u8 {
        let loc = self.compiled.wasm_to_array_trampolines[ty];
        self.text_start().wrapping_add(loc.start as usize) as *const u8
    }

    /// The trap raised by the instruction at text offset `offset`.
    pub fn lookup_trap(&self, offset: u32) -> Option<Trap> {
        lookup_trap(&self.compiled.traps, offset)
    }

    /// The wasm function containing text offset `offset`, and the instruction's wasm byte
    /// offset. `None` for trampolines.
    pub fn lookup_function(&self, offset: u32) -> Option<(FuncIndex, Option<u32>)> {
        let funcs = &self.compiled.functions;
        let i = funcs
            .values()
            .as_slice()
            .partition_point(|loc| loc.start <= offset);
        let def = DefinedFuncIndex::from_u32(u32::try_from(i.checked_sub(1)?).ok()?);
        let loc = funcs[def];
        if offset >= loc.start + loc.length {
            return None;
        }
        let wasm_offset = address_of_wasm_offset(&self.compiled.address_map, offset);
        Some((self.module.func_index(def), wasm_offset))
    }
}

impl Drop for CodeObject {
    fn drop(&mut self) {
        let end = self.text_start() + self.compiled.text.len().max(1);
        GLOBAL_CODE
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&end);
    }
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
    use strata_environ::{FunctionLoc, PrimaryMap, TrapSite};

    /// Serializes these tests: a dropped object's address may be reused by another.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn sample() -> Arc<CodeObject> {
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
        let module = Module {
            num_imported_funcs: 1,
            ..Module::default()
        };
        CodeObject::new(compiled, Arc::new(module)).unwrap()
    }

    #[test]
    fn registered_code_is_found_by_pc() {
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let code = sample();
        let start = code.function(DefinedFuncIndex::from_u32(0)) as usize;
        let (found, offset) = lookup_code(start + 18).unwrap();
        assert!(Arc::ptr_eq(&found, &code));
        assert_eq!(
            found.lookup_trap(offset),
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
}
