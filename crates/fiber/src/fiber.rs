//! [`Fiber`] and [`Suspend`]: running a closure on a [`FiberStack`] that can be
//! suspended and resumed.

use crate::{FiberStack, arch};
use std::any::Any;
use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};

/// A closure running on a stack of its own, which can suspend itself and be
/// resumed later.
///
/// The closure gets the value of the first [`resume`](Fiber::resume) and a
/// [`Suspend`] with which it can hand a `Yield` value back to the resumer and
/// wait for the next `Resume` value. When it returns, its `Return` value is
/// the result of the last `resume`. See the [crate docs](crate) for how the
/// switch works.
///
/// # Dropping
///
/// Dropping a fiber that has finished (or never started) drops its
/// [`FiberStack`], which unmaps it (or does nothing, for a stack from
/// [`FiberStack::from_raw_parts`]). Use [`into_stack`](Fiber::into_stack)
/// instead to reuse the stack or give it back to a pool.
///
/// Dropping a fiber that is *suspended* (started but not finished) leaks its
/// stack: the `FiberStack` is never dropped, so the memory stays mapped, and
/// the values living in the suspended frames are never dropped, as with
/// [`std::mem::forget`]. Nothing runs on the stack again. Freeing or reusing
/// it instead would be unsound: those frames may hold data that something
/// else still points to, such as a scoped thread borrowing a local of the
/// fiber. For a stack from [`FiberStack::from_raw_parts`], its owner never
/// gets it back and must keep the memory mapped for good. In debug builds
/// this is not reported: leaking is the defined behaviour, and tests rely on
/// it. Finish fibers (or never start them) to get their stacks back.
///
/// # Threads
///
/// `Fiber` is neither `Send` nor `Sync`. A suspended fiber's frames belong to
/// the thread that ran them: they may hold values that must stay on that
/// thread (a `MutexGuard`, a reference into a thread-local) and that moving
/// the fiber would carry to another thread. Create and run a fiber on one
/// thread; to move stacks between threads, move the [`FiberStack`] of a
/// finished fiber ([`into_stack`](Fiber::into_stack)).
///
/// ```compile_fail,E0277
/// fn assert_send<T: Send>() {}
/// assert_send::<strata_fiber::Fiber<'static, (), (), ()>>();
/// ```
pub struct Fiber<'a, Resume, Yield, Return> {
    /// The stack the closure runs on. Dropped only if no frame lives on it.
    stack: ManuallyDrop<FiberStack>,
    /// The switch slot at the top of `stack`.
    slot: *mut *mut u8,
    /// Where the fiber is in its life.
    state: Cell<State>,
    /// The boxed closure, owned by the fiber until it starts: then the entry
    /// function takes it over.
    closure: *mut u8,
    /// Drops the boxed closure at `closure`.
    drop_closure: unsafe fn(*mut u8),
    /// The closure may borrow for `'a`. The raw pointer makes the fiber
    /// invariant in the value types and neither `Send` nor `Sync`.
    _marker: PhantomData<(&'a (), *mut (Resume, Yield, Return))>,
}

/// The fiber's handle on itself, given to its closure: it suspends the fiber.
///
/// Like [`Fiber`], it is neither `Send` nor `Sync`.
pub struct Suspend<Resume, Yield, Return> {
    /// The switch slot of the fiber's stack.
    slot: *mut *mut u8,
    /// The raw pointer makes `Suspend` invariant in the value types and
    /// neither `Send` nor `Sync`.
    _marker: PhantomData<*mut (Resume, Yield, Return)>,
}

/// Where a fiber is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    /// Created, never resumed: the closure is still boxed.
    NotStarted,
    /// Suspended in [`Suspend::suspend`], waiting to be resumed.
    Suspended,
    /// Between the switch in [`Fiber::resume`] and the switch back.
    Running,
    /// The closure returned or panicked: no frame lives on the stack.
    Done,
}

/// What the fiber hands the resumer on each switch back: the resumer moves it
/// out of the fiber's stack.
enum Outcome<Yield, Return> {
    /// The closure called [`Suspend::suspend`].
    Yield(Yield),
    /// The closure returned.
    Return(Return),
    /// The closure panicked; this is the payload.
    Panic(Box<dyn Any + Send>),
}

impl<'a, Resume, Yield, Return> Fiber<'a, Resume, Yield, Return> {
    /// Creates a fiber that will run `func` on `stack` when first resumed.
    ///
    /// Nothing runs yet: the first [`resume`](Fiber::resume) starts `func`
    /// with the value it is given.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if `stack` is too small to hold the
    /// initial frame (which is less than a page, so this does not happen with
    /// stacks from [`FiberStack::new`]). The stack is dropped in that case.
    pub fn new<F>(stack: FiberStack, func: F) -> io::Result<Self>
    where
        F: FnOnce(Resume, &mut Suspend<Resume, Yield, Return>) -> Return + 'a,
    {
        if stack.range().len() < arch::INIT_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "fiber stack too small for the initial frame",
            ));
        }
        let top = stack.top();
        let closure = Box::into_raw(Box::new(func)).cast::<u8>();
        // SAFETY: `top` is the top of `stack`, aligned to a page (so to 16
        // bytes), and the `INIT_BYTES` bytes below it are usable stack bytes,
        // checked above. The fiber owns the stack and nothing runs on it yet.
        unsafe { arch::init(top, fiber_main::<F, Resume, Yield, Return>, closure) };
        Ok(Fiber {
            stack: ManuallyDrop::new(stack),
            slot: arch::slot_of(top),
            state: Cell::new(State::NotStarted),
            closure,
            drop_closure: drop_boxed::<F>,
            _marker: PhantomData,
        })
    }

    /// Switches onto the fiber, handing it `val`, and runs it until it
    /// suspends or finishes.
    ///
    /// The first call starts the closure with `val`; later calls make the
    /// pending [`Suspend::suspend`] return `val`. Returns `Err(y)` if the
    /// fiber suspended with `y`, and `Ok(r)` if the closure returned `r`, after
    /// which the fiber is [`done`](Fiber::done).
    ///
    /// # Panics
    ///
    /// Panics if the fiber is done, or already running (resumed from inside
    /// itself). If the closure panics, the fiber is done and the panic is
    /// carried over to this call's stack and resumed from here with
    /// [`std::panic::resume_unwind`].
    pub fn resume(&self, val: Resume) -> Result<Return, Yield> {
        match self.state.get() {
            State::NotStarted | State::Suspended => {}
            State::Running => panic!("Fiber::resume: the fiber is already running"),
            State::Done => panic!("Fiber::resume: the fiber has finished and cannot be resumed"),
        }
        self.state.set(State::Running);
        let val = ManuallyDrop::new(val);
        // SAFETY: the slot holds the fiber's stack pointer, saved by its last
        // `switch` or prepared by `init` (the state is `NotStarted` or
        // `Suspended`), and nothing runs on the fiber's stack. The fiber moves
        // `val` out of our frame with a read before it switches back: the
        // entry function does so for the first value and `Suspend::suspend`
        // for the others. `val` is never dropped here, so it is moved once.
        let reply = unsafe { arch::switch(self.slot, (&raw const val).cast::<u8>().cast_mut()) };
        // SAFETY: the fiber switches back only from `Suspend::suspend` or from
        // the end of the entry function, and both pass a pointer to an
        // `Outcome<Yield, Return>` in their frame on the fiber's stack, which
        // is still mapped (we own it) and which neither reads or drops again.
        let outcome = unsafe { reply.cast::<Outcome<Yield, Return>>().read() };
        match outcome {
            Outcome::Yield(y) => {
                self.state.set(State::Suspended);
                Err(y)
            }
            Outcome::Return(r) => {
                self.state.set(State::Done);
                Ok(r)
            }
            Outcome::Panic(payload) => {
                self.state.set(State::Done);
                panic::resume_unwind(payload)
            }
        }
    }

    /// Whether the closure has returned or panicked. A done fiber cannot be
    /// resumed, and no frame lives on its stack any more.
    pub fn done(&self) -> bool {
        self.state.get() == State::Done
    }

    /// The stack the fiber runs on.
    pub fn stack(&self) -> &FiberStack {
        &self.stack
    }

    /// Takes the stack back from a fiber that is done or was never resumed
    /// (its closure is dropped), for another fiber to use.
    ///
    /// # Panics
    ///
    /// Panics if the fiber is suspended: frames still live on its stack, so
    /// it must not be reused. The fiber is then dropped, which leaks the
    /// stack (see [Dropping](Fiber#dropping)).
    pub fn into_stack(self) -> FiberStack {
        assert!(
            self.state.get() != State::Suspended,
            "Fiber::into_stack: the fiber is suspended and frames still live on its stack"
        );
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again after the stack and
        // the closure are taken out of it below.
        let stack = unsafe { ManuallyDrop::take(&mut this.stack) };
        if this.state.get() == State::NotStarted {
            // SAFETY: the fiber never started, so it still owns the closure,
            // and `drop_closure` belongs to it.
            unsafe { (this.drop_closure)(this.closure) };
        }
        stack
    }
}

impl<A, B, C> std::fmt::Debug for Fiber<'_, A, B, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fiber")
            .field("state", &self.state.get())
            .field("stack", &*self.stack)
            .finish_non_exhaustive()
    }
}

impl<A, B, C> std::fmt::Debug for Suspend<A, B, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suspend").finish_non_exhaustive()
    }
}

impl<A, B, C> Drop for Fiber<'_, A, B, C> {
    fn drop(&mut self) {
        match self.state.get() {
            State::NotStarted => {
                // SAFETY: nothing lives on a stack that was never switched
                // to, and `self.stack` is not used again.
                unsafe { ManuallyDrop::drop(&mut self.stack) };
                // SAFETY: the fiber never started, so it still owns the
                // closure, and `drop_closure` belongs to it.
                unsafe { (self.drop_closure)(self.closure) };
            }
            // SAFETY: the closure has finished, so nothing lives on the stack,
            // and `self.stack` is not used again.
            State::Done => unsafe { ManuallyDrop::drop(&mut self.stack) },
            // Frames live on the stack: leak it. (`Running` cannot happen, as
            // `resume` borrows the fiber.)
            State::Suspended | State::Running => {}
        }
    }
}

impl<Resume, Yield, Return> Suspend<Resume, Yield, Return> {
    /// Suspends the fiber, handing `val` to the resumer as `Err(val)` from
    /// [`Fiber::resume`], and returns the value of the next `resume`.
    ///
    /// If the fiber is never resumed again, this call never returns (see
    /// [Dropping](Fiber#dropping)).
    pub fn suspend(&mut self, val: Yield) -> Resume {
        let outcome = ManuallyDrop::new(Outcome::<Yield, Return>::Yield(val));
        // SAFETY: a `Suspend` exists only inside a running fiber's closure,
        // so the slot holds the stack pointer of the resumer, suspended in the
        // `switch` of `Fiber::resume`. The resumer moves `outcome` out of our
        // frame with a read, and we never drop it here.
        let msg = unsafe { arch::switch(self.slot, (&raw const outcome).cast::<u8>().cast_mut()) };
        // SAFETY: we were switched back to by `Fiber::resume`, which passes a
        // pointer to a `Resume` in its frame that it never drops.
        unsafe { msg.cast::<Resume>().read() }
    }
}

/// Drops a `Box<F>` given as a raw pointer.
///
/// # Safety
///
/// `ptr` must come from `Box::<F>::into_raw` and not be used afterwards.
unsafe fn drop_boxed<F>(ptr: *mut u8) {
    // SAFETY: guaranteed by the caller.
    drop(unsafe { Box::from_raw(ptr.cast::<F>()) });
}

/// The outermost Rust frame of every fiber, called by the start trampoline
/// on the first switch onto the stack.
///
/// Runs the closure, catching any panic, then switches back to the resumer
/// for the last time with the outcome. It never returns: its frame is simply
/// abandoned, holding nothing that needs dropping.
///
/// # Safety
///
/// `closure` must be a `Box<F>` from `Box::into_raw` that this function may
/// take over, `slot` the switch slot of the stack it runs on, and `first` a
/// pointer to a `Resume` that it may move out.
unsafe extern "C" fn fiber_main<F, Resume, Yield, Return>(
    closure: *mut u8,
    slot: *mut *mut u8,
    first: *mut u8,
) -> !
where
    F: FnOnce(Resume, &mut Suspend<Resume, Yield, Return>) -> Return,
{
    let mut suspend = Suspend {
        slot,
        _marker: PhantomData,
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: guaranteed by the caller: the closure is ours, and `first`
        // points to a `Resume` that `Fiber::resume` never drops.
        let (func, first) = unsafe {
            (
                Box::from_raw(closure.cast::<F>()),
                first.cast::<Resume>().read(),
            )
        };
        func(first, &mut suspend)
    }));
    let outcome = ManuallyDrop::new(match result {
        Ok(ret) => Outcome::<Yield, Return>::Return(ret),
        Err(payload) => Outcome::Panic(payload),
    });
    // SAFETY: the slot holds the stack pointer of the resumer, suspended in
    // the `switch` of `Fiber::resume`, which moves `outcome` out of this
    // frame, marks the fiber done and never switches back here.
    unsafe { arch::switch(slot, (&raw const outcome).cast::<u8>().cast_mut()) };
    // Unreachable: a done fiber is never resumed.
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::serial;
    use std::cell::{OnceCell, RefCell};
    use std::hint::black_box;
    use std::rc::Rc;

    fn stack(size: usize) -> FiberStack {
        FiberStack::new(size, false).unwrap()
    }

    /// The message of a panic payload, whether it was a `&str` or a `String`.
    fn panic_message(payload: &(dyn Any + Send)) -> String {
        if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "<not a string>".to_string()
        }
    }

    /// Runs `f`, which must panic, and returns the panic's message.
    fn panic_of<R>(f: impl FnOnce() -> R) -> String {
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(_) => panic!("no panic"),
            Err(payload) => panic_message(&*payload),
        }
    }

    #[test]
    fn ping_pong_passes_values_both_ways() {
        let _serial = serial();
        const ROUNDS: u64 = 10_000;
        let fiber = Fiber::new(stack(64 * 1024), |mut got: u64, suspend| {
            let mut sum = 0;
            for i in 0..ROUNDS {
                assert_eq!(got, i * 3, "resume value {i}");
                sum += got;
                got = suspend.suspend(i * 2 + 1);
            }
            assert_eq!(got, u64::MAX);
            format!("sum {sum}")
        })
        .unwrap();
        for i in 0..ROUNDS {
            assert!(!fiber.done());
            assert_eq!(fiber.resume(i * 3), Err(i * 2 + 1));
        }
        let expected = (0..ROUNDS).map(|i| i * 3).sum::<u64>();
        assert_eq!(fiber.resume(u64::MAX), Ok(format!("sum {expected}")));
        assert!(fiber.done());
    }

    #[test]
    fn values_with_destructors_are_moved_not_copied() {
        // Each `Rc` clone that crosses a switch must arrive exactly once: a
        // value read twice or dropped on both sides shows in the count.
        let _serial = serial();
        let token = Rc::new(());
        let fiber = Fiber::new(stack(64 * 1024), |first: Rc<()>, suspend| {
            let mut held = vec![first];
            for _ in 0..100 {
                let back = held.pop().unwrap();
                held.push(suspend.suspend(back));
            }
            held
        })
        .unwrap();
        let mut current = Rc::clone(&token);
        for _ in 0..100 {
            current = fiber.resume(current).unwrap_err();
            assert_eq!(Rc::strong_count(&token), 2);
        }
        let held = fiber.resume(current).unwrap();
        assert_eq!(Rc::strong_count(&token), 2);
        drop(held);
        assert_eq!(Rc::strong_count(&token), 1);
    }

    #[test]
    fn fiber_that_returns_immediately() {
        let _serial = serial();
        let fiber = Fiber::<(), (), _>::new(stack(16 * 1024), |(), _| 42u8).unwrap();
        assert!(!fiber.done());
        assert_eq!(fiber.resume(()), Ok(42));
        assert!(fiber.done());
    }

    #[test]
    fn deep_recursion_uses_the_fiber_stack() {
        fn recurse(depth: usize, deepest: &mut usize) -> u64 {
            // 1 KiB per frame, kept alive so the compiler cannot shrink it.
            let mut buf = [0u8; 1024];
            buf[depth % 1024] = depth as u8;
            let buf = black_box(buf);
            *deepest = (*deepest).min(buf.as_ptr() as usize);
            let below = if depth == 0 {
                0
            } else {
                recurse(depth - 1, deepest)
            };
            below + u64::from(buf[depth % 1024])
        }

        let _serial = serial();
        let fiber_stack = stack(1024 * 1024);
        let range = fiber_stack.range();
        let fiber = Fiber::new(fiber_stack, |depth: usize, _: &mut Suspend<_, (), _>| {
            let mut deepest = usize::MAX;
            let sum = recurse(depth, &mut deepest);
            (sum, deepest)
        })
        .unwrap();
        let (sum, deepest) = fiber.resume(100).unwrap();
        let expected: u64 = (0..=100u64).map(|d| d % 256).sum();
        assert_eq!(sum, expected);
        assert!(range.contains(&deepest), "{deepest:x} not in {range:x?}");
        assert!(
            range.end - deepest >= 100 * 1024,
            "only {} bytes of stack used",
            range.end - deepest
        );
    }

    #[test]
    fn panic_in_fiber_comes_out_of_resume() {
        let _serial = serial();
        let fiber = Fiber::new(stack(64 * 1024), |n: u32, suspend| {
            let n = suspend.suspend(n + 1);
            if n == 7 {
                panic!("fiber panicked with {n}");
            }
            n
        })
        .unwrap();
        assert_eq!(fiber.resume(1), Err(2));
        let message = panic_of(|| fiber.resume(7));
        assert_eq!(message, "fiber panicked with 7");
        assert!(fiber.done());
        // The stack is free for reuse after a panic.
        let fiber = Fiber::new(fiber.into_stack(), |n: u32, _: &mut Suspend<_, (), _>| {
            n * 2
        })
        .unwrap();
        assert_eq!(fiber.resume(21), Ok(42));
    }

    #[test]
    fn panic_payload_is_carried_unchanged() {
        #[derive(Debug, PartialEq)]
        struct Custom(u64);
        let _serial = serial();
        let fiber = Fiber::<(), (), ()>::new(stack(64 * 1024), |(), _| {
            panic::resume_unwind(Box::new(Custom(0xfeed)))
        })
        .unwrap();
        let payload = panic::catch_unwind(AssertUnwindSafe(|| fiber.resume(()))).unwrap_err();
        assert_eq!(payload.downcast_ref::<Custom>(), Some(&Custom(0xfeed)));
    }

    #[test]
    fn two_fibers_interleaved() {
        let _serial = serial();
        let log = RefCell::new(Vec::new());
        let make = |name: char| {
            let log = &log;
            Fiber::new(stack(64 * 1024), move |mut n: u32, suspend| {
                for _ in 0..3 {
                    log.borrow_mut().push(format!("{name}{n}"));
                    n = suspend.suspend(n * 10);
                }
                name
            })
            .unwrap()
        };
        let a = make('a');
        let b = make('b');
        assert_eq!(a.resume(1), Err(10));
        assert_eq!(b.resume(2), Err(20));
        assert_eq!(b.resume(3), Err(30));
        assert_eq!(a.resume(4), Err(40));
        assert_eq!(a.resume(5), Err(50));
        assert_eq!(b.resume(6), Err(60));
        assert_eq!(b.resume(0), Ok('b'));
        assert_eq!(a.resume(0), Ok('a'));
        assert_eq!(*log.borrow(), ["a1", "b2", "b3", "a4", "a5", "b6"]);
    }

    #[test]
    fn fibers_nest() {
        // A fiber that resumes another fiber from its own stack.
        let _serial = serial();
        let outer = Fiber::new(stack(256 * 1024), |n: u32, outer_suspend| {
            let inner = Fiber::new(stack(64 * 1024), |m: u32, suspend| {
                let m = suspend.suspend(m + 1);
                m * 2
            })
            .unwrap();
            assert_eq!(inner.resume(n), Err(n + 1));
            let k = outer_suspend.suspend(n + 100);
            let r = inner.resume(k).unwrap();
            assert!(inner.done());
            r
        })
        .unwrap();
        assert_eq!(outer.resume(1), Err(101));
        assert_eq!(outer.resume(5), Ok(10));
    }

    #[test]
    fn fibers_run_on_other_threads() {
        let _serial = serial();
        let threads: Vec<_> = (0..2u64)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut total = 0;
                    for round in 0..50u64 {
                        let fiber = Fiber::new(stack(64 * 1024), |x: u64, suspend| {
                            let y = suspend.suspend(x + 1);
                            let z = suspend.suspend(y + 1);
                            x + y + z
                        })
                        .unwrap();
                        let base = t * 1000 + round;
                        assert_eq!(fiber.resume(base), Err(base + 1));
                        assert_eq!(fiber.resume(base + 10), Err(base + 11));
                        total += fiber.resume(base + 20).unwrap();
                    }
                    total
                })
            })
            .collect();
        for (t, thread) in (0..2u64).zip(threads) {
            let expected: u64 = (0..50).map(|r| 3 * (t * 1000 + r) + 30).sum();
            assert_eq!(thread.join().unwrap(), expected);
        }
    }

    #[test]
    fn resuming_a_finished_fiber_panics() {
        let _serial = serial();
        let fiber = Fiber::<(), (), ()>::new(stack(16 * 1024), |(), _| ()).unwrap();
        assert_eq!(fiber.resume(()), Ok(()));
        let message = panic_of(|| fiber.resume(()));
        assert!(message.contains("finished"), "{message}");
    }

    #[test]
    fn resuming_a_running_fiber_panics() {
        let _serial = serial();
        type Cycle = Rc<OnceCell<Fiber<'static, (), (), ()>>>;
        let cell: Cycle = Rc::new(OnceCell::new());
        let inside = Rc::clone(&cell);
        let fiber = Fiber::new(stack(64 * 1024), move |(), _| {
            inside.get().unwrap().resume(()).unwrap();
        })
        .unwrap();
        assert!(cell.set(fiber).is_ok());
        let message = panic_of(|| cell.get().unwrap().resume(()));
        assert!(message.contains("already running"), "{message}");
        assert!(cell.get().unwrap().done());
    }

    /// The doubles both sides of `floating_point_values_survive_switches` keep.
    fn fp_values(x: f64) -> [f64; 10] {
        [
            x,
            x * 0.5,
            x + 0.25,
            x - 1.5,
            x * 3.0,
            x / 7.0,
            1.0 / x,
            x * x,
            -x,
            x + 9.0,
        ]
    }

    /// One step of the computation on those doubles.
    fn fp_step(acc: &mut [f64; 10], got: f64) {
        for (j, a) in acc.iter_mut().enumerate() {
            *a = black_box(*a * 1.0000001 + got * (j as f64));
        }
    }

    #[test]
    fn floating_point_values_survive_switches() {
        let _serial = serial();
        let fiber = Fiber::new(stack(64 * 1024), |x: f64, suspend| {
            // More live doubles than there are callee-saved FP registers on
            // any supported architecture.
            let mut acc = fp_values(x);
            for i in 0..100 {
                let got = suspend.suspend(acc[i % acc.len()]);
                fp_step(&mut acc, got);
            }
            acc.iter().sum::<f64>()
        })
        .unwrap();

        // The same computation on this stack, interleaved with the fiber's,
        // with the resumer's own floating-point work in between.
        let x = 1.75f64;
        let mut acc = fp_values(x);
        assert_eq!(fiber.resume(x), Err(acc[0]));
        let mut noise = 0.0f64;
        for i in 0..100 {
            let got = (i as f64).sqrt();
            noise = black_box(noise.mul_add(0.5, got.sin()));
            let result = fiber.resume(got);
            fp_step(&mut acc, got);
            if i + 1 < 100 {
                assert_eq!(result, Err(acc[(i + 1) % acc.len()]));
            } else {
                assert_eq!(result, Ok(acc.iter().sum::<f64>()));
            }
        }
        assert!(noise.is_finite());
    }

    #[test]
    fn integer_locals_survive_switches() {
        // Many values live across each switch on both sides, so that with
        // optimizations they sit in callee-saved registers.
        let _serial = serial();
        let fiber = Fiber::new(stack(64 * 1024), |seed: u64, suspend| {
            let mut v = [0u64; 8];
            for (i, x) in v.iter_mut().enumerate() {
                *x = black_box(seed.wrapping_mul(i as u64 + 3));
            }
            for _ in 0..50 {
                let [a, b, c, d, e, f, g, h] = v;
                let r = suspend.suspend(a ^ b ^ c ^ d ^ e ^ f ^ g ^ h);
                v = [a + r, b + r, c + r, d + r, e + r, f + r, g + r, h + r];
            }
            v
        })
        .unwrap();
        let seed = 0x1234_5678u64;
        let mut v: [u64; 8] = std::array::from_fn(|i| seed.wrapping_mul(i as u64 + 3));
        let [mut a, mut b, mut c, mut d] = [black_box(1u64), 2, 3, 4];
        assert_eq!(fiber.resume(seed), Err(v.iter().fold(0, |x, y| x ^ y)));
        for r in 0..50u64 {
            let result = fiber.resume(r);
            (a, b, c, d) = (a + r, b.wrapping_mul(3), c ^ r, d.wrapping_mul(a));
            for x in &mut v {
                *x += r;
            }
            if r < 49 {
                assert_eq!(result, Err(v.iter().fold(0, |x, y| x ^ y)));
            } else {
                assert_eq!(result, Ok(v));
            }
        }
        assert_eq!(
            (a, b),
            (
                1 + (0..50).sum::<u64>(),
                2u64.wrapping_mul(3u64.wrapping_pow(50))
            )
        );
        assert_eq!(c, (0..50u64).fold(3, |x, y| x ^ y));
        black_box(d);
    }

    #[test]
    fn unstarted_fiber_drops_its_closure() {
        let _serial = serial();
        let token = Rc::new(());
        let held = Rc::clone(&token);
        let fiber = Fiber::<(), (), ()>::new(stack(16 * 1024), move |(), _| drop(held)).unwrap();
        assert_eq!(Rc::strong_count(&token), 2);
        drop(fiber);
        assert_eq!(Rc::strong_count(&token), 1);

        let held = Rc::clone(&token);
        let fiber = Fiber::<(), (), ()>::new(stack(16 * 1024), move |(), _| drop(held)).unwrap();
        let top = fiber.stack().top();
        let stack = fiber.into_stack();
        assert_eq!(stack.top(), top);
        assert_eq!(Rc::strong_count(&token), 1);
    }

    #[test]
    fn into_stack_of_a_suspended_fiber_panics() {
        let _serial = serial();
        let fiber = Fiber::<(), (), ()>::new(stack(16 * 1024), |(), s| s.suspend(())).unwrap();
        assert_eq!(fiber.resume(()), Err(()));
        let message = panic_of(|| fiber.into_stack());
        assert!(message.contains("suspended"), "{message}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn dropping_a_suspended_fiber_leaks_its_frames_and_stack() {
        struct SetOnDrop<'a>(&'a Cell<bool>);
        impl Drop for SetOnDrop<'_> {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }

        let _serial = serial();
        let dropped = Cell::new(false);
        let fiber = Fiber::<(), (), ()>::new(stack(16 * 1024), |(), suspend| {
            let _guard = SetOnDrop(&dropped);
            suspend.suspend(());
        })
        .unwrap();
        let range = fiber.stack().range();
        assert_eq!(fiber.resume(()), Err(()));
        drop(fiber);
        // The frame holding the guard never ran its destructor...
        assert!(!dropped.get());
        // ...and the memory under it is still mapped.
        let maps = crate::tests::mappings();
        assert!(
            maps.iter().any(|(start, end, perms)| *start <= range.start
                && range.end <= *end
                && perms == "rw-p"),
            "leaked stack {range:x?} is no longer mapped"
        );
    }

    #[test]
    fn backtrace_inside_a_fiber_stops_at_its_base() {
        #[inline(never)]
        fn capture_in_fiber() -> String {
            std::backtrace::Backtrace::force_capture().to_string()
        }

        let _serial = serial();
        let fiber =
            Fiber::<(), (), String>::new(stack(256 * 1024), |(), _| capture_in_fiber()).unwrap();
        let trace = fiber.resume(()).unwrap();
        // Frame lines look like `  3: path::to::function`.
        let frames: Vec<&str> = trace
            .lines()
            .filter_map(|line| line.trim().split_once(": "))
            .filter(|(index, _)| index.parse::<usize>().is_ok())
            .map(|(_, name)| name)
            .collect();
        // With optimizations, inlined frames are named without their path.
        assert!(
            frames.iter().any(|f| f.contains("capture_in_fiber")),
            "{trace}"
        );
        assert!(frames.iter().any(|f| f.contains("fiber_main")), "{trace}");
        // The walk ends at the trampoline at the fiber's base: nothing from
        // the resumer's stack (`Fiber::resume`, this test function, the test
        // harness) follows.
        let last = frames.last().copied().unwrap_or_default();
        assert!(
            last.starts_with("strata_fiber::arch::") && last.ends_with("::start"),
            "{trace}"
        );
        let this_test = "backtrace_inside_a_fiber_stops_at_its_base";
        for frame in &frames {
            assert!(!frame.contains("resume"), "{trace}");
            assert!(!frame.contains("run_test"), "{trace}");
            assert!(!frame.ends_with(this_test), "{trace}");
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn many_fibers_neither_leak_nor_lose_stacks() {
        // Leaking the stack of each fiber would add two mappings per cycle:
        // 20,000 here, against an allowance for the test harness's own
        // threads far below that.
        const NOISE: usize = 32;
        const CYCLES: u32 = 10_000;
        let _serial = serial();
        let cycle = |stack: FiberStack, i: u32| {
            let fiber = Fiber::new(stack, |x: u32, suspend| {
                let y = suspend.suspend(x + 1);
                x + y
            })
            .unwrap();
            assert_eq!(fiber.resume(i), Err(i + 1));
            assert_eq!(fiber.resume(5), Ok(i + 5));
            fiber
        };
        drop(cycle(stack(64 * 1024), 0));

        let before = crate::tests::mappings().len();
        // Fresh stacks, dropped with their fibers.
        for i in 0..CYCLES {
            drop(cycle(stack(64 * 1024), i));
        }
        let after_fresh = crate::tests::mappings().len();
        // One stack, taken back and reused by every fiber.
        let mut reused = stack(64 * 1024);
        let top = reused.top();
        for i in 0..CYCLES {
            reused = cycle(reused, i).into_stack();
        }
        assert_eq!(reused.top(), top);
        drop(reused);
        let after_reused = crate::tests::mappings().len();

        assert!(
            after_fresh <= before + NOISE && after_reused <= before + NOISE,
            "mappings: {before} before, {after_fresh} after fresh stacks, \
             {after_reused} after reusing one"
        );
    }

    #[test]
    fn fiber_may_borrow_from_its_creator() {
        let _serial = serial();
        let mut total = 0u64;
        let data = vec![1u64, 2, 3, 4];
        {
            let fiber = Fiber::new(
                stack(64 * 1024),
                |(), suspend: &mut Suspend<(), u64, ()>| {
                    for x in &data {
                        total += x;
                        suspend.suspend(*x);
                    }
                },
            )
            .unwrap();
            let mut yielded = Vec::new();
            while let Err(x) = fiber.resume(()) {
                yielded.push(x);
            }
            assert_eq!(yielded, data);
        }
        assert_eq!(total, 10);
    }
}
