//! Wasm backtraces, walked along the frame-pointer chain.
//!
//! All compiled code keeps frame pointers, so from a wasm pc and its frame pointer the
//! walk reads `return address = *(fp + ptr)` and `caller fp = *fp` until it reaches the
//! frame of the host-to-wasm trampoline that entered wasm.

use crate::code_memory::{CodeObject, lookup_code};
use std::sync::Arc;
use strata_environ::FuncIndex;

/// How many frames a backtrace keeps at most.
pub const MAX_FRAMES: usize = 20;

/// One wasm frame of a backtrace.
#[derive(Clone)]
pub struct BacktraceFrame {
    /// The code the frame runs in.
    pub code: Arc<CodeObject>,
    /// The function.
    pub func_index: FuncIndex,
    /// The wasm byte offset of the instruction, if known.
    pub wasm_offset: Option<u32>,
}

/// The wasm frames of a stack, innermost first.
#[derive(Clone, Default)]
pub struct Backtrace(pub Vec<BacktraceFrame>);

impl Backtrace {
    /// Walks from `pc` in the frame of `fp` up to (not including) the entry frame
    /// `entry_fp`. `pc_is_return_address` says whether `pc` is a return address rather
    /// than the faulting instruction itself.
    ///
    /// # Safety
    /// `fp` must be the frame pointer of a wasm frame (or of a trampoline called by wasm)
    /// whose chain of saved frame pointers reaches `entry_fp`, all on the current stack.
    pub(crate) unsafe fn capture(
        mut pc: usize,
        mut fp: usize,
        entry_fp: usize,
        pc_is_return_address: bool,
    ) -> Backtrace {
        let mut frames = Vec::new();
        let mut is_return = pc_is_return_address;
        while frames.len() < MAX_FRAMES {
            let lookup_pc = if is_return { pc.wrapping_sub(1) } else { pc };
            if let Some((code, offset)) = lookup_code(lookup_pc)
                && let Some((func_index, wasm_offset)) = code.lookup_function(offset)
            {
                // Inlined code stands for the callee's frame on top of the caller's.
                match code.lookup_inlined(offset) {
                    Some((callee, call)) => {
                        frames.push(BacktraceFrame {
                            code: code.clone(),
                            func_index: callee,
                            wasm_offset,
                        });
                        frames.push(BacktraceFrame {
                            code,
                            func_index,
                            wasm_offset: Some(call),
                        });
                    }
                    None => frames.push(BacktraceFrame {
                        code,
                        func_index,
                        wasm_offset,
                    }),
                }
            }
            if fp == 0 || fp == entry_fp {
                break;
            }
            // SAFETY: by the contract every frame up to `entry_fp` stores the caller's fp
            // and the return address just above it.
            unsafe {
                pc = *((fp + size_of::<usize>()) as *const usize);
                fp = *(fp as *const usize);
            }
            is_return = true;
            if fp == entry_fp {
                // The caller is the entry trampoline: `pc` is in it, not in wasm.
                break;
            }
        }
        Backtrace(frames)
    }
}
