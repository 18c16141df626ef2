//! Async execution: running wasm on fibers, waiting for futures under it, yielding.
//!
//! Every async entry point ([`Func::call_async`](crate::Func::call_async),
//! [`Instance::new_async`](crate::Instance::new_async), ...) runs its synchronous twin
//! on a fiber with [`on_fiber`]. While the fiber runs, the store knows it
//! (`StoreOpaque::async_cx`), so that code under the wasm (async host functions, an
//! async resource limiter, fuel and epoch yields) can wait for a future with
//! [`block_on`]: the fiber suspends while the future is pending and the async call's
//! future returns `Pending` to the executor.

use crate::runtime::store::{StoreInner, StoreOpaque};
use crate::{Error, Result};
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use strata_vm::{AsyncCx, FiberFuture, VMStoreContext};

impl StoreOpaque {
    /// Fails if wasm of this store may run only synchronously; `api` is the async
    /// entry point used.
    pub(crate) fn check_async(&self, api: &str) -> Result<()> {
        if self.async_support {
            Ok(())
        } else {
            Err(Error::msg(format!(
                "`{api}` needs an engine with async support (`Config::async_support`)"
            )))
        }
    }

    /// The fiber this store's wasm runs on.
    ///
    /// # Errors
    /// Fails if no wasm of the store runs on a fiber right now.
    pub(crate) fn async_cx(&self) -> Result<NonNull<AsyncCx>> {
        self.async_cx.ok_or_else(|| {
            Error::msg(
                "waiting for a future needs wasm running in an async call \
                 (`Config::async_support` and the `_async` entry points)",
            )
        })
    }
}

/// Waits for `future` on the fiber `cx`, which must be the store's current one (from
/// [`StoreOpaque::async_cx`]), from code running under that store's wasm.
///
/// # Errors
/// Fails if the async call's future was dropped meanwhile; the caller must then stop
/// its wasm with that error.
pub(crate) fn block_on<F: Future + Send>(cx: NonNull<AsyncCx>, future: F) -> Result<F::Output> {
    let future = core::pin::pin!(future);
    // SAFETY: a store knows a fiber only while the fiber runs its wasm, and all code
    // that can reach the store meanwhile (the borrow of the async call holds it) runs
    // on that fiber, or on one nested in it that replaced it in the store.
    unsafe { cx.as_ref().block_on(future) }.map_err(Error::new)
}

/// Runs `body` on a fiber of the store's engine, as a future. The store keeps the
/// fiber's stack for its next async call (as wasmtime's stores do); a stack goes back
/// to the allocator, which may zero it ([`Config::async_stack_zeroing`]), when the
/// store is dropped or a call on it is cancelled.
///
/// [`Config::async_stack_zeroing`]: crate::Config::async_stack_zeroing
///
/// # Errors
/// Fails if no fiber stack can be had, or as `body`.
pub(crate) async fn on_fiber<T: Send, R: Send>(
    store: &mut StoreInner<T>,
    body: impl FnOnce(&mut StoreInner<T>) -> Result<R> + Send,
) -> Result<R> {
    let future = {
        let engine = &store.opaque.engine;
        let allocator = engine.allocator_arc();
        let stack = match store.opaque.last_fiber_stack.take() {
            Some(stack) => stack,
            None => allocator
                .allocate_fiber_stack(engine.config().async_stack_size)
                .map_err(crate::error::vm_error)?,
        };
        let context: *const VMStoreContext = &*store.opaque.vm_store_context;
        let inner = &mut *store;
        let run = move |cx: &AsyncCx| {
            let previous = inner.opaque.async_cx.replace(NonNull::from(cx));
            let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut *inner)));
            inner.opaque.async_cx = previous;
            outcome.unwrap_or_else(|panic| resume_unwind(panic))
        };
        // SAFETY: the context is the store's, which `run` borrows for as long as the
        // future lives; what the wasm waits for is required to be `Send` by
        // `block_on`'s callers (async host functions and limiters return `Send`
        // futures; yields are `Send`).
        unsafe { FiberFuture::new(allocator, stack, context, run) }
            .map_err(crate::error::vm_error)?
    };
    let (result, stack) = future.await;
    if let Some(previous) = store.opaque.last_fiber_stack.replace(stack) {
        // A nested call finished first and left its stack.
        store
            .opaque
            .engine
            .allocator()
            .deallocate_fiber_stack(previous);
    }
    result
}

/// A future that is pending once, after asking to be polled again: lets the executor
/// run other tasks.
#[derive(Default)]
pub(crate) struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}
