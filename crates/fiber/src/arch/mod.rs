//! The architecture-specific half of stack switching.
//!
//! Each supported architecture has a module of its own that provides the same
//! three items, to the contract written down here once:
//!
//! - `switch(slot, msg) -> msg'`, a naked function with the C calling
//!   convention. It saves every register that the C ABI makes callee-saved on
//!   the current stack, stores the resulting stack pointer into `*slot` after
//!   loading the stack pointer that `*slot` held before, moves onto that
//!   stack, restores the registers saved there and returns into whatever code
//!   saved them. `msg` is handed over unchanged: it becomes the return value of
//!   the `switch` call that is being resumed (or, the first time a stack is
//!   entered, the `msg` argument of its [`Entry`]).
//! - `init(top, entry, arg)`, which prepares a fresh stack (see below).
//! - `INIT_BYTES`, how many bytes below the top of the stack `init` writes.
//!
//! # The top of a stack
//!
//! `init` lays out the highest bytes of a stack like this (addresses grow
//! upwards; `top` is 16-byte aligned):
//!
//! ```text
//! top       +----------------------------------------------+
//!           | switch slot: the saved stack pointer of the   |  top - 8
//!           | side that is not running (see below)          |
//!           +----------------------------------------------+
//!           | zero                                          |  top - 16
//! top - 16  +----------------------------------------------+  <- 16-byte aligned
//!           | the initial frame: what `switch` pops the     |
//!           | first time, returning into the start          |
//!           | trampoline                                    |
//!           +----------------------------------------------+  <- first saved SP
//! ```
//!
//! The slot always holds the stack pointer of whichever side is suspended:
//! the fiber's own (pointing at the initial frame before the first switch)
//! while the fiber is not running, and the resumer's while the fiber runs.
//! Since `switch` exchanges the current stack pointer with the slot, one
//! function serves both directions.
//!
//! The start trampoline is entered with the stack pointer at `top - 16`, so
//! 16-byte aligned, and calls `entry(arg, slot, msg)` with a terminating
//! frame pointer (zero), so that frame-pointer walks and DWARF unwinds stop at
//! the fiber's base instead of wandering into the zero word and beyond.
//! `entry` must never return; the trampoline traps if it does.

/// What the start trampoline calls on a fresh stack.
///
/// `arg` is the value given to `init`, `slot` the stack's switch slot and
/// `msg` the `msg` of the `switch` call that entered the stack for the first
/// time. The function must not return: it leaves the stack for the last time
/// with `switch`.
pub(crate) type Entry = unsafe extern "C" fn(arg: *mut u8, slot: *mut *mut u8, msg: *mut u8) -> !;

/// Returns the address of the switch slot of the stack whose top is `top`.
pub(crate) fn slot_of(top: *mut u8) -> *mut *mut u8 {
    top.wrapping_sub(size_of::<usize>()).cast()
}

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::{INIT_BYTES, init, switch};

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub(crate) use aarch64::{INIT_BYTES, init, switch};

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("strata-fiber can switch stacks only on x86_64 and aarch64");
