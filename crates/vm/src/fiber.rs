//! Running wasm on a fiber, so that host code under it can wait for futures.
//!
//! A [`FiberFuture`] runs its body on a stack of its own. Code on that stack (an async
//! host function, a libcall that yields) waits for a future with
//! [`AsyncCx::block_on`]: it polls the future with the `Context` of the poll that
//! resumed the fiber, and while the future is pending it suspends the fiber, so that
//! the outer poll returns `Pending` with every wasm frame kept on the fiber's stack.
//! The executor's next poll resumes the fiber, possibly on another thread.
//!
//! The thread-local list of wasm activations follows the fiber: a suspension unlinks
//! the activations pushed on the fiber, and a resumption links them on top of the
//! resuming thread's list (see `traphandlers`). The store's stack limit is reset for
//! the fiber's stack while the body runs, so the first entry into wasm on the fiber
//! sets it from there.
//!
//! Dropping a future whose fiber is suspended resumes it one last time with the
//! request to give up: every pending and later [`AsyncCx::block_on`] returns
//! [`Cancelled`], which the host code turns into an error, so the wasm frames unwind as
//! from a trap and the stack can be reused.

use crate::traphandlers::{
    ActivationMark, attach_activations, current_activation, detach_activations,
};
use crate::{InstanceAllocator, VMStoreContext, VmError};
use core::cell::Cell;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use strata_fiber::{Fiber, FiberStack, Suspend};

/// Why a fiber is resumed.
enum Wake {
    /// To make progress, polling its futures with this context.
    Poll(*mut Context<'static>),
    /// To give up: its future was dropped.
    Cancel,
}

/// What a fiber is resumed with.
struct Resume {
    wake: Wake,
    /// The resuming thread's innermost activation.
    base: ActivationMark,
}

type WasmFiber<'a, R> = Fiber<'a, Resume, (), R>;

/// The smallest stack a fiber is started on: room for its first frames. (The store
/// makes sure there is room for the wasm and host code it runs.)
const MIN_STACK: usize = 4096;

/// A fiber's handle on itself, for code running on it.
pub struct AsyncCx {
    /// The fiber's `Suspend<Resume, (), R>`, for `suspend_fn`.
    suspend: *mut (),
    /// Suspends through `suspend` (with the result type `R` of the fiber erased).
    suspend_fn: unsafe fn(*mut ()) -> Resume,
    /// The context of the poll that last resumed the fiber.
    poll_cx: Cell<*mut Context<'static>>,
    /// The resuming thread's innermost activation when the fiber was last resumed.
    base: Cell<ActivationMark>,
    cancelled: Cell<bool>,
}

/// The future running on the fiber was dropped before it finished: give up.
#[derive(Debug)]
pub struct Cancelled;

impl core::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the future running this wasm was dropped before it finished")
    }
}

impl std::error::Error for Cancelled {}

/// Suspends the fiber whose `Suspend` is `suspend`.
///
/// # Safety
/// `suspend` must point to the `Suspend<Resume, (), R>` of the running fiber.
unsafe fn suspend_fiber<R>(suspend: *mut ()) -> Resume {
    // SAFETY: per the contract.
    unsafe { (*suspend.cast::<Suspend<Resume, (), R>>()).suspend(()) }
}

impl AsyncCx {
    fn new<R>(suspend: &mut Suspend<Resume, (), R>, first: Resume) -> AsyncCx {
        let cx = AsyncCx {
            suspend: core::ptr::from_mut(suspend).cast(),
            suspend_fn: suspend_fiber::<R>,
            poll_cx: Cell::new(core::ptr::null_mut()),
            base: Cell::new(first.base),
            cancelled: Cell::new(false),
        };
        cx.woken(first.wake);
        cx
    }

    fn woken(&self, wake: Wake) {
        match wake {
            Wake::Poll(cx) => self.poll_cx.set(cx),
            Wake::Cancel => self.cancelled.set(true),
        }
    }

    /// Runs `future` to completion, suspending the fiber whenever it is pending.
    ///
    /// # Errors
    /// [`Cancelled`] if the fiber's future was dropped; the caller must then unwind
    /// its wasm (return an error from the host function or libcall) without waiting
    /// again.
    ///
    /// # Safety
    /// Must be called on the fiber this context belongs to, while it runs.
    pub unsafe fn block_on<F: Future + ?Sized>(
        &self,
        mut future: Pin<&mut F>,
    ) -> Result<F::Output, Cancelled> {
        loop {
            if self.cancelled.get() {
                return Err(Cancelled);
            }
            // SAFETY: the fiber runs, so the poll that resumed it is blocked in
            // `FiberFuture::poll` below us, with its context alive.
            let cx = unsafe { &mut *self.poll_cx.get() };
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Ok(output);
            }
            // SAFETY: per the contract we run on this context's fiber.
            unsafe { self.suspend() };
        }
    }

    /// Suspends the fiber until its future is polled again (or dropped).
    ///
    /// # Safety
    /// As for [`AsyncCx::block_on`].
    unsafe fn suspend(&self) {
        let detached = detach_activations(self.base.get());
        // SAFETY: the `Suspend` lives in the fiber's entry frame, below us on this
        // fiber's stack, nothing else uses it while the fiber runs, and `suspend_fn`
        // was made for its type.
        let resume = unsafe { (self.suspend_fn)(self.suspend) };
        // SAFETY: the activations live in frames of this fiber, which were suspended
        // until now, and the resumer passed its thread's innermost activation.
        unsafe { attach_activations(detached, resume.base) };
        self.base.set(resume.base);
        self.woken(resume.wake);
    }
}

/// A computation on a fiber, as a future of its result and its stack, to be reused.
pub struct FiberFuture<'a, R> {
    fiber: Option<WasmFiber<'a, R>>,
    started: bool,
    allocator: Arc<dyn InstanceAllocator>,
}

// SAFETY: while the future is not being polled its fiber is suspended (or not started,
// or done), and what lives on its stack is this crate's and the strata crate's frames,
// compiled wasm, and the body and the futures it waits for, which the constructor
// requires to be `Send` (the strata crate requires the same of the futures host code
// awaits). The thread-local state a fiber uses is relinked on every resume (see the
// module documentation), so it may continue on another thread.
unsafe impl<R: Send> Send for FiberFuture<'_, R> {}

impl<'a, R: 'a> FiberFuture<'a, R> {
    /// A future that runs `body` on `stack` when first polled, and is ready with its
    /// result and the stack when it finishes. If it is dropped before, the stack goes
    /// back to `allocator`, which it must come from.
    ///
    /// # Errors
    /// Fails if the stack is too small to start a fiber on (it then goes back to
    /// `allocator`).
    ///
    /// # Safety
    /// `store_context` must be the context of the store whose wasm `body` runs, alive
    /// and used by no other thread until the future is done or dropped. Everything
    /// `body` waits for with [`AsyncCx::block_on`] must be `Send`.
    pub unsafe fn new(
        allocator: Arc<dyn InstanceAllocator>,
        stack: FiberStack,
        store_context: *const VMStoreContext,
        body: impl FnOnce(&AsyncCx) -> R + Send + 'a,
    ) -> Result<FiberFuture<'a, R>, VmError> {
        if stack.range().len() < MIN_STACK {
            allocator.deallocate_fiber_stack(stack);
            return Err(VmError::Limit(format!(
                "a fiber stack needs at least {MIN_STACK} bytes"
            )));
        }
        let fiber = Fiber::new(
            stack,
            move |first: Resume, suspend: &mut Suspend<_, _, R>| {
                let cx = AsyncCx::new(suspend, first);
                // SAFETY: the store context is alive and ours, per the contract.
                let _limit = unsafe { StackLimitReset::new(store_context) };
                body(&cx)
            },
        )
        .map_err(VmError::Mmap)?;
        Ok(FiberFuture {
            fiber: Some(fiber),
            started: false,
            allocator,
        })
    }
}

impl<R> Future for FiberFuture<'_, R> {
    type Output = (R, FiberStack);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(R, FiberStack)> {
        let this = self.get_mut();
        let fiber = this
            .fiber
            .as_ref()
            .expect("a FiberFuture was polled after it finished");
        crate::tls_eager_initialize();
        this.started = true;
        let resume = Resume {
            wake: Wake::Poll(core::ptr::from_mut(cx).cast()),
            base: current_activation(),
        };
        match fiber.resume(resume) {
            Err(()) => Poll::Pending,
            Ok(output) => {
                let stack = this.fiber.take().expect("checked above").into_stack();
                Poll::Ready((output, stack))
            }
        }
    }
}

impl<R> Drop for FiberFuture<'_, R> {
    fn drop(&mut self) {
        let Some(fiber) = self.fiber.take() else {
            return;
        };
        if self.started && !fiber.done() {
            let resume = Resume {
                wake: Wake::Cancel,
                base: current_activation(),
            };
            // The body unwinds; whatever it returns or panics with is of no interest
            // to anyone any more.
            let outcome = catch_unwind(AssertUnwindSafe(|| fiber.resume(resume)));
            if let Ok(Err(())) = outcome {
                // It waited again despite the cancellation: its frames must stay, and
                // so the stack is leaked with the fiber.
                tracing::error!("a cancelled fiber suspended again; its stack is leaked");
                return;
            }
        }
        self.allocator.deallocate_fiber_stack(fiber.into_stack());
    }
}

/// Resets a store's stack limit while a fiber runs wasm of it, so the first entry into
/// wasm on the fiber sets a limit within the fiber's stack; restores it afterwards,
/// also when unwinding.
struct StackLimitReset {
    store_context: *const VMStoreContext,
    saved: usize,
}

impl StackLimitReset {
    /// # Safety
    /// `store_context` must be alive, and used by this thread only, until the value
    /// is dropped.
    unsafe fn new(store_context: *const VMStoreContext) -> StackLimitReset {
        // SAFETY: per the contract.
        let saved = unsafe { (*store_context).stack_limit.get().replace(usize::MAX) };
        StackLimitReset {
            store_context,
            saved,
        }
    }
}

impl Drop for StackLimitReset {
    fn drop(&mut self) {
        // SAFETY: per the constructor's contract.
        unsafe { *(*self.store_context).stack_limit.get() = self.saved };
    }
}
