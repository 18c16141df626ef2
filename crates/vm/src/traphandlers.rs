//! Catching traps: the thread's activation list, signal handlers, and resuming at the
//! host entry trampoline.
//!
//! Every entry into wasm ([`catch_traps`]) pushes a [`CallThreadState`] onto a
//! thread-local list and saves the `VMStoreContext` fields the entry trampoline
//! overwrites. A fault in wasm code is turned into a trap by the signal handler, which
//! records the reason and a backtrace, then edits the signal context so that the thread
//! resumes in the entry trampoline's exception handler. A host function's error or panic
//! takes the same path through the `raise` libcall. Either way the trampoline returns
//! `false`, and [`catch_traps`] returns the recorded reason.

use crate::backtrace::Backtrace;
use crate::code_memory::{TextFault, lookup_code, on_text_fault};
use crate::vmcontext::{VMContext, VMStoreContext};
use core::cell::{Cell, UnsafeCell};
use core::ptr;
use std::any::Any;
use std::sync::OnceLock;
use strata_environ::Trap;

/// An error returned by a host function.
pub type HostError = Box<dyn std::error::Error + Send + Sync>;

/// Why execution left wasm abnormally.
pub enum UnwindReason {
    /// Wasm code trapped.
    Trap(Trap),
    /// A host function returned an error.
    Host(HostError),
    /// A host function panicked; the payload is re-thrown once wasm frames are gone.
    Panic(Box<dyn Any + Send>),
    /// A wasm exception no handler caught. Recorded by a host function, it is thrown
    /// into the wasm that called it instead.
    Exception(crate::VMExnRef),
    /// Precompiled code could not be run or a fault in it not handled: the code about
    /// to run, or the trap table needed to tell a trap from a crash, did not match its
    /// checksum ([`VmError::CorruptedCode`](crate::VmError::CorruptedCode),
    /// [`VmError::CorruptedTables`](crate::VmError::CorruptedTables)), or the code could
    /// not be made executable.
    Vm(crate::VmError),
}

/// One entry into wasm on this thread.
struct CallThreadState {
    unwind: UnsafeCell<Option<(UnwindReason, Backtrace)>>,
    /// The store context's fields when this activation began, restored when it ends.
    /// While it runs they describe the store's previous activation, if any: where its
    /// wasm last left for the host (the call that led here) and where it was entered.
    saved: SavedContext,
    /// The activation below this one. It changes when a fiber running this activation
    /// is suspended and resumed on top of another list (see [`attach_activations`]).
    prev: Cell<*const CallThreadState>,
    store_context: *const VMStoreContext,
}

thread_local! {
    static ACTIVATION: Cell<*const CallThreadState> = const { Cell::new(ptr::null()) };
}

// The two accessors below are never inlined: code on a fiber may be suspended between
// two accesses and resumed on another thread, and a caller that inlined them could
// reuse the first thread's address of the thread-local.

/// The innermost activation of this thread.
#[inline(never)]
fn activation() -> *const CallThreadState {
    ACTIVATION.try_with(Cell::get).unwrap_or(ptr::null())
}

/// Makes `state` the innermost activation of this thread.
#[inline(never)]
fn set_activation(state: *const CallThreadState) {
    ACTIVATION.with(|a| a.set(state));
}

/// Links `state` to this thread's innermost activation and makes it the innermost,
/// setting the thread up for wasm first if this is its first entry: every thread-local
/// access of an entry in one call.
#[inline(never)]
fn push_activation(state: &CallThreadState) {
    if !THREAD_READY.with(Cell::get) {
        init_thread();
    }
    ACTIVATION.with(|a| {
        state.prev.set(a.get());
        a.set(state);
    });
}

/// A point in a thread's list of activations.
#[cfg(feature = "async")]
#[derive(Copy, Clone, PartialEq, Eq)]
pub(crate) struct ActivationMark(*const CallThreadState);

/// The current innermost activation.
#[cfg(feature = "async")]
pub(crate) fn current_activation() -> ActivationMark {
    ActivationMark(activation())
}

/// The activations a suspended fiber pushed, unlinked from any thread.
#[cfg(feature = "async")]
pub(crate) struct DetachedActivations {
    /// The innermost of them, or `base` if there are none.
    top: *const CallThreadState,
    /// What the outermost of them currently links to.
    base: *const CallThreadState,
}

/// Unlinks the activations pushed above `base` (the innermost one when the fiber was
/// last resumed), leaving `base` the innermost activation of this thread, as the
/// fiber's resumer expects.
#[cfg(feature = "async")]
pub(crate) fn detach_activations(base: ActivationMark) -> DetachedActivations {
    let top = activation();
    set_activation(base.0);
    DetachedActivations { top, base: base.0 }
}

/// Links activations detached by [`detach_activations`] on top of this thread's
/// innermost activation `base`, which may belong to another thread than before.
///
/// # Safety
/// The activations must still be alive (their fiber suspended, not dropped), and
/// `base` must be this thread's innermost activation.
#[cfg(feature = "async")]
pub(crate) unsafe fn attach_activations(detached: DetachedActivations, base: ActivationMark) {
    if detached.top == detached.base {
        return;
    }
    let mut outermost = detached.top;
    // SAFETY: the activations live in frames of the suspended fiber, per the contract;
    // the chain from `top` reaches `detached.base` after a few links.
    unsafe {
        while (*outermost).prev.get() != detached.base {
            outermost = (*outermost).prev.get();
        }
        (*outermost).prev.set(base.0);
    }
    set_activation(detached.top);
}

/// Saved `VMStoreContext` fields, restored when an entry returns.
struct SavedContext([usize; 6]);

impl SavedContext {
    #[inline]
    fn fields(ctx: &VMStoreContext) -> [&UnsafeCell<usize>; 6] {
        [
            &ctx.stack_limit,
            &ctx.last_wasm_exit_trampoline_fp,
            &ctx.last_wasm_exit_pc,
            &ctx.last_wasm_entry_sp,
            &ctx.last_wasm_entry_fp,
            &ctx.last_wasm_entry_trap_handler,
        ]
    }

    /// # Safety
    /// No other thread may access `ctx`.
    #[inline]
    unsafe fn save(ctx: &VMStoreContext) -> SavedContext {
        // SAFETY: the caller guarantees exclusive access.
        SavedContext(Self::fields(ctx).map(|f| unsafe { *f.get() }))
    }

    /// # Safety
    /// No other thread may access `ctx`.
    #[inline]
    unsafe fn restore(&self, ctx: &VMStoreContext) {
        for (field, value) in Self::fields(ctx).into_iter().zip(self.0) {
            // SAFETY: the caller guarantees exclusive access.
            unsafe { *field.get() = value };
        }
    }
}

/// Runs `call` (which enters wasm through an array-to-wasm trampoline and returns its
/// result) with traps caught.
///
/// The outermost entry for a store sets the stack limit `max_wasm_stack` bytes below the
/// current stack pointer.
///
/// # Errors
/// Returns why execution unwound, with the wasm backtrace at that point.
///
/// # Safety
/// `store_context` must be the live store context of the instances `call` enters, used
/// by this thread only; `call` must return `false` only after a trap or a `raise`
/// recorded a reason.
pub unsafe fn catch_traps(
    store_context: *const VMStoreContext,
    max_wasm_stack: usize,
    call: impl FnOnce() -> bool,
) -> Result<(), (UnwindReason, Backtrace)> {
    // SAFETY: the caller guarantees the context is live and ours.
    let ctx = unsafe { &*store_context };
    // SAFETY: as above.
    let saved = unsafe { SavedContext::save(ctx) };
    if saved.0[0] == usize::MAX {
        let here = &saved as *const SavedContext as usize;
        // SAFETY: as above.
        unsafe { *ctx.stack_limit.get() = here.saturating_sub(max_wasm_stack) };
    }
    let mut state = CallThreadState {
        unwind: UnsafeCell::new(None),
        saved,
        prev: Cell::new(ptr::null()),
        store_context,
    };
    push_activation(&state);
    let ok = call();
    // On a fiber, `call` may have been suspended and resumed on another thread, whose
    // activation list `prev` now continues.
    set_activation(state.prev.get());
    // SAFETY: as above.
    unsafe { state.saved.restore(ctx) };
    if ok {
        // A reason is recorded only right before unwinding, so none was: there is
        // nothing to drop, and forgetting the state spares an out-of-line drop call on
        // every call.
        debug_assert!(
            state.unwind.get_mut().is_none(),
            "a reason without an unwind"
        );
        core::mem::forget(state);
        return Ok(());
    }
    Err(state.unwind.into_inner().unwrap_or_else(|| {
        (
            UnwindReason::Host("wasm exited abnormally without a recorded reason".into()),
            Backtrace::default(),
        )
    }))
}

/// Appends to `backtrace` the frames of the activations of the same store below `state`:
/// wasm that called the host that called into the store again (a host function calling
/// an export, say), outermost last.
///
/// # Safety
/// `state` must be a live activation of this thread, and so must the activations below
/// it; each one's wasm is suspended in the host call that led to the next.
unsafe fn add_outer_activations(mut state: *const CallThreadState, backtrace: &mut Backtrace) {
    // SAFETY: per the contract, every activation in the list is live, and each saved
    // exit record is that of a wasm-to-host trampoline frame still on a live stack.
    unsafe {
        while backtrace.0.len() < crate::backtrace::MAX_FRAMES {
            let [_, exit_fp, exit_pc, _, entry_fp, _] = (*state).saved.0;
            if exit_fp == 0 {
                // The store was not in wasm when this activation began.
                break;
            }
            let caller_fp = *(exit_fp as *const usize);
            let outer = Backtrace::capture(exit_pc, caller_fp, entry_fp, true);
            let room = crate::backtrace::MAX_FRAMES - backtrace.0.len();
            backtrace.0.extend(outer.0.into_iter().take(room));
            // The store's previous activation, whose own saved record goes further out.
            let store = (*state).store_context;
            state = (*state).prev.get();
            while !state.is_null() && (*state).store_context != store {
                state = (*state).prev.get();
            }
            if state.is_null() {
                break;
            }
        }
    }
}

/// Records why the innermost wasm activation of this thread must unwind. A host
/// function calls this before returning `false` to its wasm-to-host trampoline.
///
/// # Panics
/// Panics if no wasm is running on this thread (a strata bug).
pub fn record_unwind_reason(reason: UnwindReason) {
    let state = activation();
    assert!(!state.is_null(), "no wasm activation to unwind");
    // SAFETY: the activation lives on this thread's stack below us, and only this thread
    // touches it.
    unsafe { *(*state).unwind.get() = Some((reason, Backtrace::default())) };
}

/// The `raise` libcall: after a host function recorded a reason, throws the
/// exception it recorded into its wasm caller, or unwinds to the innermost entry
/// trampoline with any other reason, capturing the backtrace from the wasm-to-host
/// trampoline's exit record.
///
/// # Safety
/// Called only by compiled wasm-to-host trampolines with their caller's vmctx; only
/// compiled frames may lie between here and the entry trampoline.
pub(crate) unsafe extern "C" fn raise(vmctx: *mut VMContext) -> ! {
    // SAFETY: every vmctx stores its store context pointer right after the magic word.
    let ctx = unsafe {
        &**vmctx
            .byte_add(size_of::<usize>())
            .cast::<*const VMStoreContext>()
    };
    let state = activation();
    // SAFETY: only this thread touches its store context and activation, and the exit
    // fields were just written by the trampoline that called us: the return address
    // into its wasm caller, and its own frame, which saved the caller's.
    unsafe {
        let exit_fp = *ctx.last_wasm_exit_trampoline_fp.get();
        let exit_pc = *ctx.last_wasm_exit_pc.get();
        let caller_fp = *(exit_fp as *const usize);
        let reason = if state.is_null() {
            None
        } else {
            (*(*state).unwind.get()).take().map(|(reason, _)| reason)
        };
        match reason {
            Some(UnwindReason::Exception(exn)) => {
                crate::exception::throw(ctx, exn, exit_pc, caller_fp)
            }
            Some(reason) => unwind_to_entry(ctx, reason, exit_pc, caller_fp),
            None => unwind_to_entry(
                ctx,
                UnwindReason::Host("wasm exited abnormally without a recorded reason".into()),
                exit_pc,
                caller_fp,
            ),
        }
    }
}

/// Records `reason` with the backtrace from `pc`, a return address in the wasm frame
/// whose frame pointer is `fp`, and resumes at the innermost entry trampoline's
/// handler.
///
/// # Safety
/// `ctx` is the store context of this thread's innermost activation, and `(pc, fp)` a
/// live wasm frame of it; only compiled frames lie between here and the entry
/// trampoline, none of which needs unwinding.
pub(crate) unsafe fn unwind_to_entry(
    ctx: &VMStoreContext,
    reason: UnwindReason,
    pc: usize,
    fp: usize,
) -> ! {
    let state = activation();
    // SAFETY: per the contract; only this thread touches its activation.
    unsafe {
        let entry_fp = *ctx.last_wasm_entry_fp.get();
        if !state.is_null() {
            let mut backtrace = Backtrace::capture(pc, fp, entry_fp, true);
            add_outer_activations(state, &mut backtrace);
            *(*state).unwind.get() = Some((reason, backtrace));
        }
        resume_to_handler(
            *ctx.last_wasm_entry_trap_handler.get(),
            *ctx.last_wasm_entry_sp.get(),
            entry_fp,
            0,
        )
    }
}

/// Jumps to an exception handler (a wasm function's landing code, or an entry
/// trampoline's) with its stack and frame pointers and `payload` in the first payload
/// register.
///
/// # Safety
/// The three values must come from a live frame below the current one, and no frame in
/// between may need unwinding.
pub(crate) unsafe fn resume_to_handler(pc: usize, sp: usize, fp: usize, payload: usize) -> ! {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: per the contract the target frame is live; the handler expects exactly
    // this stack and frame pointer, and the payload registers set.
    unsafe {
        core::arch::asm!(
            "mov rsp, {sp}",
            "mov rbp, {fp}",
            "jmp {pc}",
            sp = in(reg) sp,
            fp = in(reg) fp,
            pc = in(reg) pc,
            in("rax") payload,
            in("rdx") 0,
            options(noreturn, nostack),
        )
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above.
    unsafe {
        core::arch::asm!(
            "mov sp, {sp}",
            "mov x29, {fp}",
            "br {pc}",
            sp = in(reg) sp,
            fp = in(reg) fp,
            pc = in(reg) pc,
            in("x0") payload,
            in("x1") 0,
            options(noreturn, nostack),
        )
    }
}

const SIGNALS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGILL, libc::SIGFPE, libc::SIGBUS];

struct PreviousHandlers([libc::sigaction; 4]);
// SAFETY: plain data describing signal dispositions, written once before publication.
unsafe impl Sync for PreviousHandlers {}
// SAFETY: as above.
unsafe impl Send for PreviousHandlers {}

static PREVIOUS: OnceLock<PreviousHandlers> = OnceLock::new();

/// Installs the process's signal handlers for wasm traps (once).
pub fn init_traps() {
    PREVIOUS.get_or_init(|| {
        // SAFETY: an all-zero sigaction is a valid value to be overwritten.
        let mut previous: [libc::sigaction; 4] = unsafe { core::mem::zeroed() };
        for (signal, prev) in SIGNALS.into_iter().zip(previous.iter_mut()) {
            // SAFETY: installing a handler with a valid, fully initialized sigaction.
            unsafe {
                let mut action: libc::sigaction = core::mem::zeroed();
                action.sa_sigaction = trap_handler as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let r = libc::sigaction(signal, &action, prev);
                assert_eq!(r, 0, "installing the trap handler failed");
            }
        }
        PreviousHandlers(previous)
    });
}

/// Sets up this thread for running wasm now rather than at its first call.
pub fn tls_eager_initialize() {
    init_thread();
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "x86_64 registers are 64-bit words holding addresses"
)]
unsafe fn context_registers(ctx: *mut libc::c_void) -> (usize, usize) {
    // SAFETY: the kernel passes a valid ucontext to SA_SIGINFO handlers.
    let uc = unsafe { &*ctx.cast::<libc::ucontext_t>() };
    let g = &uc.uc_mcontext.gregs;
    (
        g[libc::REG_RIP as usize] as usize,
        g[libc::REG_RBP as usize] as usize,
    )
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
unsafe fn resume_in_context(ctx: *mut libc::c_void, pc: usize, sp: usize, fp: usize) {
    // SAFETY: as in `context_registers`; the kernel restores these registers on return.
    let uc = unsafe { &mut *ctx.cast::<libc::ucontext_t>() };
    let g = &mut uc.uc_mcontext.gregs;
    g[libc::REG_RIP as usize] = pc as i64;
    g[libc::REG_RSP as usize] = sp as i64;
    g[libc::REG_RBP as usize] = fp as i64;
    g[libc::REG_RAX as usize] = 0;
    g[libc::REG_RDX as usize] = 0;
}

#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
unsafe fn context_registers(ctx: *mut libc::c_void) -> (usize, usize) {
    // SAFETY: the kernel passes a valid ucontext to SA_SIGINFO handlers.
    let uc = unsafe { &*ctx.cast::<libc::ucontext_t>() };
    (uc.uc_mcontext.pc as usize, uc.uc_mcontext.regs[29] as usize)
}

#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
unsafe fn resume_in_context(ctx: *mut libc::c_void, pc: usize, sp: usize, fp: usize) {
    // SAFETY: as in `context_registers`; the kernel restores these registers on return.
    let uc = unsafe { &mut *ctx.cast::<libc::ucontext_t>() };
    uc.uc_mcontext.pc = pc as u64;
    uc.uc_mcontext.sp = sp as u64;
    uc.uc_mcontext.regs[29] = fp as u64;
    uc.uc_mcontext.regs[0] = 0;
    uc.uc_mcontext.regs[1] = 0;
}

unsafe extern "C" fn trap_handler(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
) {
    // SAFETY: `ctx` is the kernel's ucontext for this signal.
    let (pc, fp) = unsafe { context_registers(ctx) };
    let mut corrupted = None;
    if signal == libc::SIGSEGV {
        // SAFETY: the kernel fills in `si_addr` for SIGSEGV.
        let addr = unsafe { (*info).si_addr() } as usize;
        match on_text_fault(addr, pc) {
            TextFault::NotText => {}
            TextFault::Retry => return,
            TextFault::Corrupted { start, end } => {
                corrupted = Some(crate::VmError::CorruptedCode { start, end });
            }
            TextFault::Failed(error) => corrupted = Some(error),
        }
    }
    let state = activation();
    if !state.is_null() {
        let ours = match corrupted {
            Some(error) => Some(UnwindReason::Vm(error)),
            None => lookup_code(pc).and_then(|(code, offset)| match code.lookup_trap(offset) {
                Ok(trap) => trap.map(UnwindReason::Trap),
                Err(error) => Some(UnwindReason::Vm(error)),
            }),
        };
        if let Some(ours) = ours {
            // SAFETY: the activation and its store context live on this thread, which
            // was running wasm when it faulted.
            unsafe {
                let store = &*(*state).store_context;
                let entry_fp = *store.last_wasm_entry_fp.get();
                let mut backtrace = crate::backtrace::Backtrace::capture(pc, fp, entry_fp, false);
                add_outer_activations(state, &mut backtrace);
                // A libcall that made its caller trap may have recorded a more precise
                // reason (an embedder's error, a panic); the trap only carries it out.
                let reason = match (*(*state).unwind.get()).take() {
                    Some((recorded, _)) => recorded,
                    None => ours,
                };
                *(*state).unwind.get() = Some((reason, backtrace));
                resume_in_context(
                    ctx,
                    *store.last_wasm_entry_trap_handler.get(),
                    *store.last_wasm_entry_sp.get(),
                    entry_fp,
                );
            }
            return;
        }
    }
    // Not a wasm trap: hand the signal to whoever handled it before us.
    // SAFETY: forwarding the kernel's arguments to the previous disposition.
    unsafe { chain(signal, info, ctx) };
}

unsafe fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let Some(previous) = PREVIOUS.get() else {
        return;
    };
    let Some(i) = SIGNALS.iter().position(|&s| s == signal) else {
        return;
    };
    let prev = &previous.0[i];
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler asked for the three-argument form.
        unsafe {
            let f: unsafe extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                core::mem::transmute(prev.sa_sigaction);
            f(signal, info, ctx);
        }
    } else if prev.sa_sigaction == libc::SIG_DFL || prev.sa_sigaction == libc::SIG_IGN {
        // Restore the default and return: the instruction faults again and the default
        // action (usually termination with a core dump) happens.
        // SAFETY: reinstalling a disposition that was installed before.
        unsafe { libc::sigaction(signal, prev, ptr::null_mut()) };
    } else {
        // SAFETY: the previous handler takes the one-argument form.
        unsafe {
            let f: unsafe extern "C" fn(libc::c_int) = core::mem::transmute(prev.sa_sigaction);
            f(signal);
        }
    }
}

/// Size of the alternate signal stack this crate installs per thread.
const ALT_STACK_SIZE: usize = 256 * 1024;

struct AltStack {
    mmap: *mut libc::c_void,
    len: usize,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: disable our alternate stack before unmapping it; the mapping is ours.
        unsafe {
            let disable = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: ALT_STACK_SIZE,
            };
            libc::sigaltstack(&disable, ptr::null_mut());
            libc::munmap(self.mmap, self.len);
        }
    }
}

thread_local! {
    static ALT_STACK: Cell<Option<AltStack>> = const { Cell::new(None) };
    static THREAD_READY: Cell<bool> = const { Cell::new(false) };
}

/// Per-thread setup before the first entry into wasm: a large enough alternate signal
/// stack, so the handler can capture a backtrace even when the fault was a stack overflow.
fn init_thread() {
    if THREAD_READY.with(Cell::get) {
        return;
    }
    THREAD_READY.with(|r| r.set(true));
    // SAFETY: querying and installing this thread's alternate stack with valid structs;
    // the new stack is a fresh mapping with a guard page below it that we own.
    unsafe {
        let mut old: libc::stack_t = core::mem::zeroed();
        if libc::sigaltstack(ptr::null(), &mut old) != 0 {
            return;
        }
        if old.ss_flags & libc::SS_DISABLE == 0 && old.ss_size >= ALT_STACK_SIZE {
            return;
        }
        let page = crate::host_page_size();
        let len = ALT_STACK_SIZE + page;
        let mmap = libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mmap == libc::MAP_FAILED {
            return;
        }
        let stack = mmap.byte_add(page);
        if libc::mprotect(stack, ALT_STACK_SIZE, libc::PROT_READ | libc::PROT_WRITE) != 0 {
            libc::munmap(mmap, len);
            return;
        }
        let new = libc::stack_t {
            ss_sp: stack,
            ss_flags: 0,
            ss_size: ALT_STACK_SIZE,
        };
        if libc::sigaltstack(&new, ptr::null_mut()) != 0 {
            libc::munmap(mmap, len);
            return;
        }
        ALT_STACK.with(|s| s.set(Some(AltStack { mmap, len })));
    }
}
