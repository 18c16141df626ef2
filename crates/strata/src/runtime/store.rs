//! [`Store`]: owns instances and everything they create; the unit of isolation.

use crate::runtime::handles::Extern;
use crate::runtime::limiter::ResourceLimiter;
#[cfg(feature = "async")]
use crate::runtime::limiter::ResourceLimiterAsync;
use crate::{Engine, Error, FrameInfo, Module, Result, WasmBacktrace};
use core::cell::Cell;
use core::ptr::NonNull;
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use strata_vm::{InstanceHandle, UnwindReason, VMFuncRef, VMStoreContext};

/// Owns instances, host functions and the embedder's data `T`.
///
/// Handles such as [`Func`](crate::Func) and [`Memory`](crate::Memory) refer into the
/// store that made them; using one with another store panics.
pub struct Store<T> {
    pub(crate) inner: Box<StoreInner<T>>,
}

pub(crate) struct StoreInner<T> {
    pub(crate) opaque: StoreOpaque,
    pub(crate) data: T,
    pub(crate) epoch_policy: EpochPolicy<T>,
    pub(crate) limiter: Option<Limiter<T>>,
}

/// What to do when the engine's epoch reaches a store's deadline, as decided by the
/// callback given to [`Store::epoch_deadline_callback`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateDeadline {
    /// Stop the running wasm with [`Trap::Interrupt`](crate::Trap::Interrupt).
    Interrupt,
    /// Keep running, with the deadline this many epochs past the current one.
    Continue(u64),
    /// Yield to the executor once, then keep running with the deadline this many
    /// epochs past the current one. Only wasm in an async call can yield; elsewhere
    /// this stops the wasm with an error.
    Yield(u64),
}

/// A store's answer to a reached epoch deadline.
pub(crate) enum EpochPolicy<T> {
    /// Trap with [`Trap::Interrupt`](crate::Trap::Interrupt) (the default).
    Trap,
    /// Yield, then move the deadline this many epochs past the current one.
    #[cfg(feature = "async")]
    Yield(u64),
    /// Ask the embedder. `None` while the callback runs (it cannot reach itself).
    Callback(Option<EpochCallback<T>>),
}

/// The embedder's decision on a reached epoch deadline
/// ([`Store::epoch_deadline_callback`]).
type EpochCallback<T> =
    Box<dyn FnMut(StoreContextMut<'_, T>) -> Result<UpdateDeadline> + Send + Sync>;

/// How a store finds its limiter in its data.
pub(crate) enum Limiter<T> {
    Sync(Box<dyn (FnMut(&mut T) -> &mut dyn ResourceLimiter) + Send + Sync>),
    #[cfg(feature = "async")]
    Async(Box<dyn (FnMut(&mut T) -> &mut dyn ResourceLimiterAsync) + Send + Sync>),
}

/// How many instances, memories and tables a store holds.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct Counts {
    pub(crate) instances: usize,
    pub(crate) memories: usize,
    pub(crate) tables: usize,
}

pub(crate) struct InstanceData {
    pub(crate) handle: Option<InstanceHandle>,
    pub(crate) exports: Vec<Option<Extern>>,
}

pub(crate) struct FuncData {
    pub(crate) func_ref: NonNull<VMFuncRef>,
}

/// The part of a store that does not depend on `T`.
pub(crate) struct StoreOpaque {
    pub(crate) id: u64,
    pub(crate) engine: Engine,
    pub(crate) vm_store_context: Box<VMStoreContext>,
    pub(crate) instances: Vec<InstanceData>,
    pub(crate) funcs: Vec<FuncData>,
    pub(crate) host_funcs: Vec<Box<dyn Any + Send>>,
    /// The host values of the store's `externref`s; they live as long as the store.
    pub(crate) extern_refs: Vec<Box<dyn Any + Send + Sync>>,
    /// The tags the host made, at fixed addresses: their identities.
    #[expect(
        clippy::vec_box,
        reason = "a tag's address is its identity, so it must not move as the list grows"
    )]
    pub(crate) host_tags: Vec<Box<strata_vm::VMTagDefinition>>,
    /// The last exception thrown to the host or by it (see
    /// [`Store::take_pending_exception`]).
    pub(crate) pending_exception: Option<crate::ExnRef>,
    /// Wasm-to-host trampolines by engine type id, from the modules seen so far.
    pub(crate) trampolines: HashMap<u32, usize>,
    /// Host functions still waiting for a trampoline of their type.
    pub(crate) pending_host_funcs: Vec<NonNull<VMFuncRef>>,
    /// Modules whose trampolines were registered without an instance to keep them.
    pub(crate) kept_modules: Vec<Module>,
    /// Instances, memories and tables held, for the resource limiter.
    pub(crate) counts: Counts,
    /// Whether wasm runs only through async calls (`Config::async_support`).
    pub(crate) async_support: bool,
    /// Fuel not yet handed to the counter compiled code uses, with
    /// [`Store::fuel_async_yield_interval`].
    pub(crate) fuel_reserve: u64,
    /// At most this much fuel is handed over at a time, and the wasm yields each
    /// time it runs out.
    pub(crate) fuel_yield_interval: Option<core::num::NonZeroU64>,
    /// The fiber running this store's wasm, while one does.
    #[cfg(feature = "async")]
    pub(crate) async_cx: Option<NonNull<strata_vm::AsyncCx>>,
    /// The stack of the last async call, for the next one.
    #[cfg(feature = "async")]
    pub(crate) last_fiber_stack: Option<strata_vm::FiberStack>,
    /// Buffers reused by untyped calls.
    pub(crate) call_scratch: crate::runtime::func::CallScratch,
}

// SAFETY: the raw pointers all point into allocations owned by this store (instances,
// host function contexts), which move with it and are used by one thread at a time.
unsafe impl Send for StoreOpaque {}
// SAFETY: shared access to a store only reads plain data.
unsafe impl Sync for StoreOpaque {}

/// A process-unique store id. Threads take ids from the shared counter in blocks, so
/// threads creating stores at once do not contend for its cache line.
fn next_store_id() -> u64 {
    const BLOCK: u64 = 1024;
    static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        /// The next id of this thread's block, and the end of the block.
        static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    IDS.with(|ids| {
        let (mut next, mut end) = ids.get();
        if next == end {
            next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
        }
        ids.set((next + 1, end));
        next
    })
}

impl<T> Store<T> {
    /// A store for `engine` holding `data`.
    pub fn new(engine: &Engine, data: T) -> Store<T> {
        let mut store = Store {
            inner: Box::new(StoreInner {
                opaque: StoreOpaque {
                    id: next_store_id(),
                    engine: engine.clone(),
                    vm_store_context: Box::default(),
                    instances: Vec::new(),
                    funcs: Vec::new(),
                    host_funcs: Vec::new(),
                    extern_refs: Vec::new(),
                    host_tags: Vec::new(),
                    pending_exception: None,
                    trampolines: HashMap::new(),
                    pending_host_funcs: Vec::new(),
                    kept_modules: Vec::new(),
                    counts: Default::default(),
                    #[cfg(feature = "async")]
                    async_support: engine.config().async_support,
                    #[cfg(not(feature = "async"))]
                    async_support: false,
                    fuel_reserve: 0,
                    fuel_yield_interval: None,
                    #[cfg(feature = "async")]
                    async_cx: None,
                    #[cfg(feature = "async")]
                    last_fiber_stack: None,
                    call_scratch: Default::default(),
                },
                data,
                epoch_policy: EpochPolicy::Trap,
                limiter: None,
            }),
        };
        let inner = &mut *store.inner;
        let hooks = inner.hooks();
        let ctx = &mut *inner.opaque.vm_store_context;
        *ctx.hooks.get_mut() = Some(hooks);
        *ctx.epoch_ptr.get_mut() = engine.epoch_counter();
        *ctx.epoch_deadline.get_mut() = engine.current_epoch();
        store
    }

    /// The embedder's data.
    pub fn data(&self) -> &T {
        &self.inner.data
    }

    /// The embedder's data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.inner.data
    }

    /// Consumes the store and returns the embedder's data.
    pub fn into_data(self) -> T {
        let StoreInner { opaque, data, .. } = *self.inner;
        drop(opaque);
        data
    }

    /// The engine this store belongs to.
    pub fn engine(&self) -> &Engine {
        &self.inner.opaque.engine
    }
}

impl StoreOpaque {
    /// Panics unless a handle made by store `id` is used with this store.
    pub(crate) fn check(&self, id: u64) {
        assert_eq!(self.id, id, "object used with the wrong store");
    }

    /// Fails if the store runs wasm only asynchronously; `api` is the synchronous
    /// entry point used, whose `_async` twin is the one to use.
    pub(crate) fn check_sync(&self, api: &str) -> crate::Result<()> {
        if self.async_support {
            return Err(Error::msg(format!(
                "`{api}` cannot be used on a store whose engine has async support \
                 (`Config::async_support`): use `{api}_async`"
            )));
        }
        Ok(())
    }

    pub(crate) fn instance_mut(&mut self, index: usize) -> &mut InstanceHandle {
        self.instances[index]
            .handle
            .as_mut()
            .expect("instances live as long as their store")
    }

    /// The metadata of the module instance `index` instantiates.
    pub(crate) fn instance_module(&self, index: usize) -> Option<&Arc<strata_environ::Module>> {
        let handle = self.instances[index].handle.as_ref()?;
        Some(&handle.runtime().module)
    }

    pub(crate) fn push_func(&mut self, func_ref: NonNull<VMFuncRef>) -> usize {
        self.funcs.push(FuncData { func_ref });
        self.funcs.len() - 1
    }

    /// Makes the wasm-to-host trampolines of `module` available to host functions. The
    /// store must then keep `module` alive: through an instance of it, or
    /// [`StoreOpaque::keep_module`].
    pub(crate) fn register_trampolines(&mut self, module: &Module) {
        let runtime = module.runtime();
        let Some(code) = &runtime.code else { return };
        for (index, _) in runtime.module.types.iter() {
            let id = runtime.type_ids[index.as_u32() as usize];
            self.trampolines
                .entry(id)
                .or_insert(code.wasm_to_array_trampoline(index) as usize);
        }
        let trampolines = &self.trampolines;
        self.pending_host_funcs.retain(|f| {
            // SAFETY: pending host functions are owned by this store and alive.
            let f = unsafe { &mut *f.as_ptr() };
            match trampolines.get(&f.type_index) {
                Some(&t) => {
                    f.wasm_call = t as *const u8;
                    false
                }
                None => true,
            }
        });
    }

    /// Keeps `module`'s code alive as long as the store: its trampolines are registered
    /// and its funcrefs may sit in tables.
    pub(crate) fn keep_module(&mut self, module: &Module) {
        self.kept_modules.push(module.clone());
    }

    /// Turns a vm unwind into an [`Error`], or resumes a host panic.
    pub(crate) fn unwind_to_error(
        &mut self,
        reason: UnwindReason,
        backtrace: strata_vm::Backtrace,
    ) -> Error {
        let backtrace = WasmBacktrace {
            frames: backtrace
                .0
                .iter()
                .map(|f| {
                    let module = f.code.module();
                    FrameInfo {
                        module_name: module.name.clone(),
                        func_index: f.func_index.as_u32(),
                        func_name: module.func_name(f.func_index).map(str::to_owned),
                        module_offset: f.wasm_offset,
                    }
                })
                .collect(),
        };
        let error = match reason {
            UnwindReason::Trap(trap) => Error::from(trap),
            UnwindReason::Host(e) => Error::from_boxed(e),
            UnwindReason::Panic(payload) => std::panic::resume_unwind(payload),
            UnwindReason::Vm(error) => crate::error::vm_error(error),
            UnwindReason::Exception(exn) => {
                // SAFETY: only this store's wasm throws into its activations, with
                // exceptions of its heap.
                let thrown = unsafe { self.uncaught(exn) };
                self.pending_exception = Some(thrown.exception());
                Error::new(thrown)
            }
        };
        error.with_backtrace(backtrace)
    }
}

// A store moves between threads with its data, for example inside the future of an
// async call.
const _: () = {
    const fn send<T: Send>() {}
    send::<Store<Box<dyn Any + Send>>>();
};

impl Drop for StoreOpaque {
    fn drop(&mut self) {
        let allocator = self.engine.allocator();
        #[cfg(feature = "async")]
        if let Some(stack) = self.last_fiber_stack.take() {
            allocator.deallocate_fiber_stack(stack);
        }
        for data in self.instances.drain(..).rev() {
            if let Some(handle) = data.handle {
                // SAFETY: the store is going away: nothing can use its instances anymore.
                unsafe { handle.deallocate(allocator) };
            }
        }
    }
}

/// A shared borrow of a store.
pub struct StoreContext<'a, T>(pub(crate) &'a StoreInner<T>);

/// An exclusive borrow of a store.
pub struct StoreContextMut<'a, T>(pub(crate) &'a mut StoreInner<T>);

impl<T> StoreContext<'_, T> {
    /// The embedder's data.
    pub fn data(&self) -> &T {
        &self.0.data
    }
}

impl<T> StoreContextMut<'_, T> {
    /// The embedder's data.
    pub fn data(&self) -> &T {
        &self.0.data
    }
    /// The embedder's data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.0.data
    }
}

/// Anything that gives shared access to a store.
pub trait AsContext {
    /// The embedder's data type.
    type Data;
    /// Borrows the store.
    fn as_context(&self) -> StoreContext<'_, Self::Data>;
}

/// Anything that gives exclusive access to a store.
pub trait AsContextMut: AsContext {
    /// Borrows the store mutably.
    fn as_context_mut(&mut self) -> StoreContextMut<'_, Self::Data>;
}

impl<T> AsContext for Store<T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(&self.inner)
    }
}
impl<T> AsContextMut for Store<T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(&mut self.inner)
    }
}
impl<T> AsContext for StoreContext<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(self.0)
    }
}
impl<T> AsContext for StoreContextMut<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(self.0)
    }
}
impl<T> AsContextMut for StoreContextMut<'_, T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(self.0)
    }
}
impl<C: AsContext + ?Sized> AsContext for &C {
    type Data = C::Data;
    fn as_context(&self) -> StoreContext<'_, C::Data> {
        (**self).as_context()
    }
}
impl<C: AsContext + ?Sized> AsContext for &mut C {
    type Data = C::Data;
    fn as_context(&self) -> StoreContext<'_, C::Data> {
        (**self).as_context()
    }
}
impl<C: AsContextMut + ?Sized> AsContextMut for &mut C {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, C::Data> {
        (**self).as_context_mut()
    }
}

// Conversions for the APIs that hand out borrows tied to the store, such as
// `Memory::data`: anything that can lend the store can be passed, as in wasmtime.
impl<'a, C: AsContext + ?Sized> From<&'a C> for StoreContext<'a, C::Data> {
    fn from(c: &'a C) -> Self {
        c.as_context()
    }
}

impl<'a, C: AsContext + ?Sized> From<&'a mut C> for StoreContext<'a, C::Data> {
    fn from(c: &'a mut C) -> Self {
        (*c).as_context()
    }
}

impl<'a, C: AsContextMut + ?Sized> From<&'a mut C> for StoreContextMut<'a, C::Data> {
    fn from(c: &'a mut C) -> Self {
        c.as_context_mut()
    }
}

impl<'a, T> From<StoreContextMut<'a, T>> for StoreContext<'a, T> {
    fn from(c: StoreContextMut<'a, T>) -> Self {
        StoreContext(c.0)
    }
}
