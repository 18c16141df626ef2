//! Stack switching for x86_64, System V ABI (Linux, the BSDs, macOS).
//!
//! The System V ABI makes `rbx`, `rbp`, `r12`–`r15` and `rsp` callee-saved;
//! every vector register is caller-saved, so a call to [`switch`] already
//! makes the compiler spill any floating-point value that is live across it.
//! The control bits of `mxcsr` and of the x87 control word are callee-saved
//! too, but Rust code never changes them, so they are not switched: code that
//! changes them inside a fiber must restore them before suspending.
//!
//! A suspended stack holds, from its saved stack pointer upwards:
//!
//! ```text
//! sp + 0   r15
//! sp + 8   r14
//! sp + 16  r13
//! sp + 24  r12
//! sp + 32  rbx
//! sp + 40  rbp
//! sp + 48  return address
//! ```
//!
//! `switch` (whose body is the naked function `naked_switch`; [`switch`]
//! itself only jumps there) pushes in the opposite order, so it can pop the
//! other stack's registers with the same code. On a fresh stack, [`init`]
//! writes a frame of that shape whose `rbx`, `r12` and `r13` carry the entry
//! function, its argument and the slot address to the start trampoline, whose
//! `rbp` is zero and whose return address points into the trampoline.
//!
//! Both assembly functions carry DWARF call-frame information: `switch`
//! describes where it saved each register (the layout is the same on both
//! stacks, so the description stays right across the exchange of stack
//! pointers), and the trampoline marks the return address as undefined,
//! which unwinders take as the end of the stack.
//!
//! # Why `switch` ends in `jmp`, not `ret`
//!
//! `switch` pops the return address of the other stack into `rcx` and jumps
//! there instead of executing `ret`. The processor predicts a `ret` from its
//! return stack buffer, which holds the return address of the call into
//! `switch` *on this stack*, so a `ret` onto the other stack mispredicts on
//! every switch. An indirect `jmp` is predicted from the branch history
//! instead, which learns the alternation between the two stacks. This halves
//! the cost of a resume/suspend round trip (measured with `benches`' `fiber`
//! binary: about 14 ns instead of 26 ns on the development machine).
//!
//! Intel CET must be off for binaries that use this crate: shadow stacks
//! (`SHSTK`) reject any stack switching that returns into another stack, and
//! indirect branch tracking (`IBT`) would reject the `jmp` to a return
//! address. Linux does not enable either for a process unless its binary asks
//! for them, which Rust binaries do not.

use super::Entry;
use core::arch::naked_asm;

/// How many bytes below the top of a stack [`init`] writes.
pub(crate) const INIT_BYTES: usize = size_of::<InitialFrame>();

/// The highest words of a fresh stack, lowest address first.
#[repr(C)]
struct InitialFrame {
    r15: usize,
    r14: usize,
    /// Restored into `r13`: the slot address, the entry's second argument.
    r13: usize,
    /// Restored into `r12`: the entry's first argument.
    r12: usize,
    /// Restored into `rbx`: the entry function.
    rbx: usize,
    /// Restored into `rbp`: zero, to terminate frame-pointer chains.
    rbp: usize,
    /// Where the first `switch` onto the stack returns: the start trampoline,
    /// past its first instruction.
    return_address: usize,
    /// The zero word at `top - 16`.
    zero: usize,
    /// The switch slot at `top - 8`.
    slot: usize,
}

const _: () = assert!(size_of::<InitialFrame>() == 9 * 8);

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
        r15: 0,
        r14: 0,
        r13: super::slot_of(top) as usize,
        r12: arg as usize,
        rbx: entry as usize,
        rbp: 0,
        // Just past the trampoline's leading `nop` (see `start`).
        return_address: start as *const () as usize + 1,
        zero: 0,
        slot: frame as usize,
    };
    // SAFETY: `frame` is the `INIT_BYTES` bytes below `top`, which the caller
    // guarantees are writable and unused, and is 8-byte aligned because `top`
    // is 16-byte aligned and `INIT_BYTES` is a multiple of 8.
    unsafe { frame.write(initial) };
}

/// Exchanges stacks with the one whose stack pointer `*slot` holds.
///
/// Saves `rbp`, `rbx`, `r12`–`r15` and the return address on the current
/// stack, stores the current stack pointer into `*slot`, continues on the
/// stack pointer `*slot` held before, and returns `msg` from the `switch` call
/// that suspended that stack (or enters the trampoline, on a fresh stack).
/// It returns with a `jmp` to the popped return address, not with `ret` (see
/// the module docs).
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
    // rdi = slot, rsi = msg.
    naked_asm!(
        ".cfi_startproc",
        "push rbp",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset rbp, 0",
        "push rbx",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset rbx, 0",
        "push r12",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset r12, 0",
        "push r13",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset r13, 0",
        "push r14",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset r14, 0",
        "push r15",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_rel_offset r15, 0",
        // The exchange. Both stacks have the frame above at their stack
        // pointer, so the call-frame information stays valid.
        "mov rax, [rdi]",
        "mov [rdi], rsp",
        "mov rsp, rax",
        "pop r15",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r15",
        "pop r14",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r14",
        "pop r13",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r13",
        "pop r12",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r12",
        "pop rbx",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbx",
        "pop rbp",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbp",
        "mov rax, rsi",
        // Return by jumping, which predicts better (see the module docs).
        "pop rcx",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_register rip, rcx",
        "jmp rcx",
        ".cfi_endproc",
    )
}

/// The base of every fiber stack: entered by the first [`switch`] onto a
/// stack prepared by [`init`], never called.
///
/// On entry `rsp` is `top - 16` (16-byte aligned), `rbp` is zero, `rbx`, `r12`
/// and `r13` hold the entry function, its argument and the slot address, and
/// `rax` holds the `msg` of that first switch. The call to the entry function
/// pushes a return address into this trampoline, whose call-frame information
/// says there is no caller; the entry's own frame record saves the zero `rbp`.
#[unsafe(naked)]
unsafe extern "C" fn start() -> ! {
    naked_asm!(
        ".cfi_startproc",
        ".cfi_undefined rip",
        // Never executed: the initial frame's return address points past
        // it, so that unwinders, which look up the return address minus
        // one, find this function's call-frame information even during the
        // first switch onto the stack.
        "nop",
        "mov rdi, r12",
        "mov rsi, r13",
        "mov rdx, rax",
        "call rbx",
        // The entry function never returns.
        "ud2",
        ".cfi_endproc",
    )
}
