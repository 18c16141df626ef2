//! Stack switching for aarch64, AAPCS64 (Linux, the BSDs, macOS).
//!
//! **Untested in Rust**: there is no aarch64 machine or CI for strata, and no
//! aarch64 Rust standard library on the development machine, so this module
//! has never been compiled by rustc, and the crate's tests have never run on
//! aarch64. What was checked, by hand, once: the two assembly functions below
//! assemble with `llvm-mc` and GNU `as`, and a C program that prepares a stack
//! exactly like [`init`] and then switches a million times between it and the
//! main stack ran correctly under `qemu-aarch64`, with every callee-saved
//! register (`x19`–`x28`, `d8`–`d15`) holding live values on both sides, the
//! fiber's frame-pointer chain ending in zero at the trampoline, and glibc's
//! `backtrace` stopping there. It follows the same contract as the x86_64
//! module, which is tested (see the module docs of [`super`]). Run
//! `cargo test -p strata-fiber` on an aarch64 host before relying on it.
//!
//! Unlike x86_64, `switch` returns with `ret`, not with a jump: a `br` to a
//! return address would fault on systems that enforce branch target
//! identification, since a return address is not a landing pad.
//!
//! AAPCS64 makes `x19`–`x28`, the frame pointer `x29`, the stack pointer and
//! the low 64 bits of `v8`–`v15` (that is, `d8`–`d15`) callee-saved; the link
//! register `x30` holds the return address. `x18` is the platform register
//! (reserved on macOS), which this code never touches. The floating-point
//! control register `fpcr` is callee-saved too, but Rust code never changes
//! it, so it is not switched.
//!
//! A suspended stack holds a 160-byte frame at its saved stack pointer:
//!
//! ```text
//! sp + 0    x29 (frame pointer)     sp + 8    x30 (return address)
//! sp + 16   x19                     sp + 24   x20
//! sp + 32   x21                     sp + 40   x22
//! sp + 48   x23                     sp + 56   x24
//! sp + 64   x25                     sp + 72   x26
//! sp + 80   x27                     sp + 88   x28
//! sp + 96   d8                      sp + 104  d9
//! sp + 112  d10                     sp + 120  d11
//! sp + 128  d12                     sp + 136  d13
//! sp + 144  d14                     sp + 152  d15
//! ```
//!
//! `switch` (whose body is the naked function `naked_switch`; [`switch`]
//! itself only branches there) saves and restores that frame. The
//! `x29`/`x30` pair at the bottom is a regular frame record. On a fresh stack
//! [`init`] writes a frame of that shape whose `x19`, `x20` and `x21` carry
//! the entry function, its argument and the slot address to the start
//! trampoline, whose `x29` is zero and whose `x30` points into the
//! trampoline.
//!
//! With pointer authentication (`pac-ret`) each function signs and checks its
//! own return address against its own stack pointer, which `switch` restores
//! exactly, so switching is compatible with it; `switch` itself returns with a
//! plain `ret`. With branch target identification the trampoline is reached by
//! `ret`, which BTI does not check, and the entry function by `blr`, which
//! needs the `bti c` landing pad every function gets when BTI is enabled.

use super::Entry;
use core::arch::naked_asm;

/// How many bytes below the top of a stack [`init`] writes.
pub(crate) const INIT_BYTES: usize = size_of::<InitialFrame>();

/// The highest words of a fresh stack, lowest address first.
#[repr(C)]
struct InitialFrame {
    /// Restored into `x29`: zero, to terminate frame-pointer chains.
    x29: usize,
    /// Restored into `x30`, where `switch` returns: the start trampoline,
    /// past its first instruction.
    x30: usize,
    /// Restored into `x19`: the entry function.
    x19: usize,
    /// Restored into `x20`: the entry's first argument.
    x20: usize,
    /// Restored into `x21`: the slot address, the entry's second argument.
    x21: usize,
    /// `x22`–`x28` and `d8`–`d15`, all zero.
    rest: [usize; 15],
    /// The zero word at `top - 16`.
    zero: usize,
    /// The switch slot at `top - 8`.
    slot: usize,
}

const _: () = assert!(size_of::<InitialFrame>() == 160 + 16);

/// Prepares the stack whose top is `top` to start `entry(arg, slot, msg)` on
/// the first [`switch`] through its slot (see the module docs of
/// [`super`] for the layout).
///
/// # Safety
///
/// `top` must be 16-byte aligned and the [`INIT_BYTES`] bytes below it must
/// be writable and not in use by anyone else.
#[inline(never)]
pub(crate) unsafe fn init(top: *mut u8, entry: Entry, arg: *mut u8) {
    debug_assert!((top as usize).is_multiple_of(16));
    let frame = top.wrapping_sub(INIT_BYTES).cast::<InitialFrame>();
    let initial = InitialFrame {
        x29: 0,
        // Just past the trampoline's leading `nop` (see `start`).
        x30: start as *const () as usize + 4,
        x19: entry as usize,
        x20: arg as usize,
        x21: super::slot_of(top) as usize,
        rest: [0; 15],
        zero: 0,
        slot: frame as usize,
    };
    // SAFETY: `frame` is the `INIT_BYTES` bytes below `top`, which the caller
    // guarantees are writable and unused, and is 16-byte aligned because `top`
    // is and `INIT_BYTES` is a multiple of 16.
    unsafe { frame.write(initial) };
}

/// Exchanges stacks with the one whose stack pointer `*slot` holds.
///
/// Saves `x19`–`x30` and `d8`–`d15` on the current stack, stores the current
/// stack pointer into `*slot`, continues on the stack pointer `*slot` held
/// before, and returns `msg` from the `switch` call that suspended that stack
/// (or enters the trampoline, on a fresh stack).
///
/// # Safety
///
/// `*slot` must hold the stack pointer of a stack suspended by `switch` or
/// prepared by [`init`], and nothing else may run on that stack meanwhile.
/// The call returns only when some later `switch` through the same slot
/// comes back to this stack.
#[inline(never)]
pub(crate) unsafe extern "C" fn switch(slot: *mut *mut u8, msg: *mut u8) -> *mut u8 {
    // SAFETY: the caller upholds the contract of `naked_switch`, which is
    // this function's own.
    unsafe { naked_switch(slot, msg) }
}

/// The body of [`switch`].
///
/// It is called only from there, and `start` only from [`init`]: both
/// callers are `#[inline(never)]` functions of this module, so that code
/// outside this module (generic code, inlined into other crates or merged by
/// LTO) never refers to a naked function's symbol, which rustc has been seen
/// to mishandle in such cases.
///
/// # Safety
///
/// As for [`switch`].
#[unsafe(naked)]
unsafe extern "C" fn naked_switch(slot: *mut *mut u8, msg: *mut u8) -> *mut u8 {
    // x0 = slot, x1 = msg.
    naked_asm!(
        ".cfi_startproc",
        "stp x29, x30, [sp, #-160]!",
        ".cfi_def_cfa_offset 160",
        ".cfi_offset x29, -160",
        ".cfi_offset x30, -152",
        "stp x19, x20, [sp, #16]",
        ".cfi_offset x19, -144",
        ".cfi_offset x20, -136",
        "stp x21, x22, [sp, #32]",
        ".cfi_offset x21, -128",
        ".cfi_offset x22, -120",
        "stp x23, x24, [sp, #48]",
        ".cfi_offset x23, -112",
        ".cfi_offset x24, -104",
        "stp x25, x26, [sp, #64]",
        ".cfi_offset x25, -96",
        ".cfi_offset x26, -88",
        "stp x27, x28, [sp, #80]",
        ".cfi_offset x27, -80",
        ".cfi_offset x28, -72",
        "stp d8, d9, [sp, #96]",
        ".cfi_offset d8, -64",
        ".cfi_offset d9, -56",
        "stp d10, d11, [sp, #112]",
        ".cfi_offset d10, -48",
        ".cfi_offset d11, -40",
        "stp d12, d13, [sp, #128]",
        ".cfi_offset d12, -32",
        ".cfi_offset d13, -24",
        "stp d14, d15, [sp, #144]",
        ".cfi_offset d14, -16",
        ".cfi_offset d15, -8",
        // The exchange, through the scratch registers x8 and x9 (`sp` cannot
        // be loaded or stored directly). Both stacks have the frame above at
        // their stack pointer, so the call-frame information stays valid.
        "mov x8, sp",
        "ldr x9, [x0]",
        "str x8, [x0]",
        "mov sp, x9",
        "ldp d14, d15, [sp, #144]",
        "ldp d12, d13, [sp, #128]",
        "ldp d10, d11, [sp, #112]",
        "ldp d8, d9, [sp, #96]",
        "ldp x27, x28, [sp, #80]",
        "ldp x25, x26, [sp, #64]",
        "ldp x23, x24, [sp, #48]",
        "ldp x21, x22, [sp, #32]",
        "ldp x19, x20, [sp, #16]",
        "ldp x29, x30, [sp], #160",
        ".cfi_def_cfa_offset 0",
        ".cfi_restore x29",
        ".cfi_restore x30",
        ".cfi_restore x19",
        ".cfi_restore x20",
        ".cfi_restore x21",
        ".cfi_restore x22",
        ".cfi_restore x23",
        ".cfi_restore x24",
        ".cfi_restore x25",
        ".cfi_restore x26",
        ".cfi_restore x27",
        ".cfi_restore x28",
        ".cfi_restore d8",
        ".cfi_restore d9",
        ".cfi_restore d10",
        ".cfi_restore d11",
        ".cfi_restore d12",
        ".cfi_restore d13",
        ".cfi_restore d14",
        ".cfi_restore d15",
        "mov x0, x1",
        "ret",
        ".cfi_endproc",
    )
}

/// The base of every fiber stack: entered by the first [`switch`] onto a
/// stack prepared by [`init`], never called.
///
/// On entry `sp` is `top - 16` (16-byte aligned), `x29` is zero, `x19`, `x20`
/// and `x21` hold the entry function, its argument and the slot address, and
/// `x0` holds the `msg` of that first switch. The call to the entry function
/// sets `x30` to a return address in this trampoline, whose call-frame
/// information says there is no caller; the entry's own frame record saves
/// the zero `x29`.
#[unsafe(naked)]
unsafe extern "C" fn start() -> ! {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_undefined x30",
        // Never executed: the initial frame's return address points past
        // it, so that unwinders, which look up the return address minus
        // one, find this function's call-frame information even during the
        // first switch onto the stack.
        "nop",
        "mov x2, x0",
        "mov x0, x20",
        "mov x1, x21",
        "blr x19",
        // The entry function never returns.
        "brk #0x1",
        ".cfi_endproc",
    )
}
