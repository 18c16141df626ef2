//! The compiler interface: what a compiler is given and what it returns.

use crate::{DefinedFuncIndex, FunctionBodyInput, Module, PrimaryMap, Trap, TypeIndex};
use core::fmt;

/// Why a module could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileError {
    /// The bytes are malformed or the module is invalid.
    Wasm {
        /// The decoder's or validator's message.
        message: String,
        /// The byte offset of the problem in the module.
        offset: u64,
    },
    /// The module is valid but uses something strata does not implement.
    Unsupported(String),
    /// The code generator failed.
    Codegen(String),
    /// A file the compiler was asked to write (such as the CLIF of
    /// `Config::emit_clif`) could not be written.
    Output {
        /// The file.
        path: String,
        /// What the operating system said.
        message: String,
    },
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompileError::Wasm { message, offset } => {
                write!(f, "{message} (at offset {offset:#x})")
            }
            CompileError::Unsupported(what) => write!(f, "unsupported WebAssembly feature: {what}"),
            CompileError::Codegen(msg) => write!(f, "code generation failed: {msg}"),
            CompileError::Output { path, message } => {
                write!(f, "failed to write {path}: {message}")
            }
        }
    }
}

impl core::error::Error for CompileError {}

/// Where a compiled function sits in the text section.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct FunctionLoc {
    /// Offset of its first byte.
    pub start: u32,
    /// Its length in bytes.
    pub length: u32,
}

/// An instruction that may trap, and with which code.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TrapSite {
    /// Offset of the instruction in the text section.
    pub offset: u32,
    /// The trap it raises.
    pub trap: Trap,
}

/// A call inside a `try_table`: an exception thrown below it lands at `handler`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct HandlerSite {
    /// Text offset of the call's return address.
    pub return_address: u32,
    /// Text offset of the landing code, which takes the exception in the first payload
    /// register.
    pub handler: u32,
    /// How far below the frame pointer the stack pointer is at the call: the handler
    /// runs with the frame's stack pointer restored to that.
    pub frame_offset: u32,
}

/// The machine code of a module and the tables the runtime needs to run it.
///
/// The text has no relocations left: calls between its functions are resolved, and
/// everything else is reached through the vmctx.
#[derive(Clone, Debug, Default)]
pub struct CompiledModule {
    /// The text section.
    pub text: Vec<u8>,
    /// Each defined function's body.
    pub functions: PrimaryMap<DefinedFuncIndex, FunctionLoc>,
    /// The array-to-wasm entry trampoline of each defined function that escapes.
    pub array_to_wasm_trampolines: Vec<(DefinedFuncIndex, FunctionLoc)>,
    /// A wasm-to-host trampoline for each function type of the module.
    pub wasm_to_array_trampolines: PrimaryMap<TypeIndex, FunctionLoc>,
    /// Every trapping instruction, sorted by offset.
    pub traps: Vec<TrapSite>,
    /// `(text offset, wasm byte offset)` pairs sorted by text offset: the instructions
    /// from a text offset up to the next entry came from that wasm offset.
    pub address_map: Vec<(u32, u32)>,
    /// Where code of one function was inlined into another, sorted by text offset.
    pub inline_map: Vec<InlineSite>,
    /// The calls with an exception handler, sorted by return address.
    pub handlers: Vec<HandlerSite>,
}

/// From `offset` in the text up to the next entry of [`CompiledModule::inline_map`],
/// the code is defined function `callee`'s, inlined at the call at wasm offset `call`
/// of the function whose text it is in; the address map gives offsets in `callee`.
/// `callee: None` ends such a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InlineSite {
    /// The text offset the region starts at.
    pub offset: u32,
    /// The function whose code it is, or `None` for the caller's own code.
    pub callee: Option<DefinedFuncIndex>,
    /// The wasm offset of the call that was inlined (0 with `callee: None`).
    pub call: u32,
}

/// Finds the wasm byte offset of the instruction at text `offset`.
pub fn address_of_wasm_offset(map: &[(u32, u32)], offset: u32) -> Option<u32> {
    let i = map.partition_point(|&(text, _)| text <= offset);
    i.checked_sub(1).map(|i| map[i].1)
}

/// A code generator for whole modules.
pub trait Compiler: Send + Sync {
    /// Validates and compiles every function body of `module`.
    ///
    /// # Errors
    /// Fails if a body is invalid or cannot be compiled.
    fn compile_module(
        &self,
        module: &Module,
        bodies: PrimaryMap<DefinedFuncIndex, FunctionBodyInput<'_>>,
    ) -> Result<CompiledModule, CompileError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_map_finds_the_enclosing_entry() {
        let map = [(0, 10), (8, 12), (20, 15)];
        assert_eq!(address_of_wasm_offset(&map, 0), Some(10));
        assert_eq!(address_of_wasm_offset(&map, 19), Some(12));
        assert_eq!(address_of_wasm_offset(&map, 400), Some(15));
        assert_eq!(address_of_wasm_offset(&[(4, 1)], 2), None);
    }

    #[test]
    fn wasm_errors_name_the_offset() {
        let e = CompileError::Wasm {
            message: "unknown section".into(),
            offset: 0x1c,
        };
        assert_eq!(e.to_string(), "unknown section (at offset 0x1c)");
    }
}
