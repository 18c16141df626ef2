//! [`Func`], [`TypedFunc`] and [`Caller`]: calling wasm from the host and the host from
//! wasm. The [`Func`] handle itself is defined in `handles.rs`, below the store.

use crate::runtime::handles::{Extern, Func};
use crate::runtime::instance::Instance;
use crate::runtime::store::{StoreInner, StoreOpaque};
use crate::runtime::{AsContext, AsContextMut, StoreContext, StoreContextMut, Val};
use crate::{Engine, Error, FuncType, Result, ValType};
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use strata_vm::{
    SendSyncPtr, UnwindReason, VMArrayCallFunction, VMContext, VMFuncRef, VMHostFuncContext, ValRaw,
};

/// The body of a host function over raw array-call slots: reads its arguments from the
/// slots and writes its results back.
pub(crate) trait HostBody<T>:
    Fn(Caller<'_, T>, &mut [ValRaw]) -> Result<()> + Send + Sync + 'static
{
}

impl<T, F> HostBody<T> for F where
    F: Fn(Caller<'_, T>, &mut [ValRaw]) -> Result<()> + Send + Sync + 'static
{
}

/// The type-erased body of a host function, with an array-call entry compiled for its
/// concrete closure type: a call from wasm reaches the closure through one direct,
/// inlined call instead of a `dyn Fn` call, and the linker can still hold bodies of
/// different closure types side by side.
///
/// Public only because [`IntoFunc::into_func`] returns it; nothing outside the crate
/// can name or use it.
#[doc(hidden)]
pub struct HostFn<T> {
    /// `host_array_call::<T, F>`, for the `F` in `closure`.
    array_call: VMArrayCallFunction,
    /// The closure, an `F`.
    closure: Arc<dyn Any + Send + Sync>,
    _data: PhantomData<fn(T)>,
}

impl<T> Clone for HostFn<T> {
    fn clone(&self) -> Self {
        HostFn {
            array_call: self.array_call,
            closure: self.closure.clone(),
            _data: PhantomData,
        }
    }
}

impl<T: 'static> HostFn<T> {
    /// The body `f`.
    pub(crate) fn new<F: HostBody<T>>(f: F) -> HostFn<T> {
        HostFn {
            array_call: host_array_call::<T, F>,
            closure: Arc::new(f),
            _data: PhantomData,
        }
    }
}

/// What a host function's context holds.
struct HostFuncData<T> {
    store: SendSyncPtr<StoreInner<T>>,
    /// The closure in `_keep`, as a thin pointer to the concrete type the context's
    /// `host_array_call` was instantiated for.
    closure: SendSyncPtr<u8>,
    /// Keeps the closure alive as long as the context.
    _keep: Arc<dyn Any + Send + Sync>,
}

/// The array-call entry of host functions with store data `T` and body `F`.
///
/// # Safety
/// Called only through a `VMFuncRef` made by [`Func::from_host`] from a [`HostFn`]
/// made with this `F`, with `values` pointing to `len` slots, while the store that
/// owns the function is running wasm or calling it.
unsafe extern "C" fn host_array_call<T: 'static, F: HostBody<T>>(
    callee: *mut VMContext,
    caller: *mut VMContext,
    values: *mut ValRaw,
    len: usize,
) -> bool {
    // SAFETY: per the contract the context was made for `HostFuncData<T>` and is alive.
    let ctx = unsafe { VMHostFuncContext::<HostFuncData<T>>::from_vmctx(callee) };
    // SAFETY: the store outlives its host functions and nothing else uses it while it
    // calls one of them.
    let store = unsafe { &mut *ctx.data.store.0.as_ptr() };
    // SAFETY: `HostFn::new` paired this entry with a closure of type `F`, which lives
    // in the context's `Arc` until the store drops the context; a host function cannot
    // drop the store it runs in. Borrowing it (rather than cloning the `Arc`) spares an
    // atomic add and subtract per call.
    let func = unsafe { &*ctx.data.closure.0.as_ptr().cast::<F>() };
    // SAFETY: the trampoline passes `len` initialized slots.
    let values = unsafe { core::slice::from_raw_parts_mut(values, len) };
    let caller = NonNull::new(caller).map(SendSyncPtr);
    let result = catch_unwind(AssertUnwindSafe(|| {
        func(
            Caller {
                store: StoreContextMut(store),
                caller,
            },
            values,
        )
    }));
    let reason = match result {
        Ok(Ok(())) => return true,
        Ok(Err(e)) => match store.opaque.thrown_by(&e) {
            Some(exn) => UnwindReason::Exception(exn),
            None => UnwindReason::Host(Box::new(e)),
        },
        Err(panic) => UnwindReason::Panic(panic),
    };
    strata_vm::record_unwind_reason(reason);
    false
}

impl Func {
    /// A host function of type `ty` taking and returning [`Val`]s.
    pub fn new<T: 'static>(
        mut store: impl AsContextMut<Data = T>,
        ty: FuncType,
        func: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<()> + Send + Sync + 'static,
    ) -> Func {
        let host = val_host_fn(&ty, func);
        Func::from_host(store.as_context_mut().0, ty, host)
    }

    /// A host function from a Rust closure whose parameter and result types give its
    /// wasm type. It may take a [`Caller`] first and may return a `Result`.
    pub fn wrap<T: 'static, Params, Results>(
        mut store: impl AsContextMut<Data = T>,
        func: impl IntoFunc<T, Params, Results>,
    ) -> Func {
        let (ty, host) = func.into_func();
        Func::from_host(store.as_context_mut().0, ty, host)
    }

    pub(crate) fn from_host<T: 'static>(
        store: &mut StoreInner<T>,
        ty: FuncType,
        func: HostFn<T>,
    ) -> Func {
        let type_index = store.opaque.engine.type_id(&ty.0);
        let closure = Arc::as_ptr(&func.closure).cast::<u8>().cast_mut();
        let data = HostFuncData {
            store: SendSyncPtr(NonNull::from(&mut *store)),
            closure: SendSyncPtr(NonNull::new(closure).expect("an `Arc` points somewhere")),
            _keep: func.closure,
        };
        let ctx = VMHostFuncContext::new(func.array_call, type_index, data);
        let func_ref = ctx.func_ref_ptr();
        let opaque = &mut store.opaque;
        match opaque.trampolines.get(&type_index) {
            // SAFETY: the context was just made and nothing else refers to it yet.
            Some(&t) => unsafe { (*func_ref.as_ptr()).wasm_call = t as *const u8 },
            None => opaque.pending_host_funcs.push(func_ref),
        }
        opaque.host_funcs.push(ctx);
        Func {
            store: opaque.id,
            index: opaque.push_func(func_ref),
        }
    }

    #[inline]
    pub(crate) fn func_ref(&self, store: &StoreOpaque) -> NonNull<VMFuncRef> {
        // Compared here so that the common case makes no call; `check` panics.
        if self.store != store.id {
            store.check(self.store);
        }
        store.funcs[self.index].func_ref
    }

    /// The function's type.
    pub fn ty(&self, store: impl AsContext) -> FuncType {
        self.ty_opaque(&store.as_context().0.opaque)
    }

    pub(crate) fn ty_opaque(&self, store: &StoreOpaque) -> FuncType {
        FuncType(store.engine.type_of(self.type_id(store)))
    }

    /// The engine-wide id of the function's type.
    pub(crate) fn type_id(&self, store: &StoreOpaque) -> u32 {
        // SAFETY: function references in the store stay alive as long as it does.
        unsafe { self.func_ref(store).as_ref() }.type_index
    }

    /// Calls the function with `params`, writing its results to `results`.
    ///
    /// # Errors
    /// Fails if the arguments do not match the function's type, if it traps, or if a
    /// host function it calls fails.
    ///
    /// On a store with async support, use [`Func::call_async`] instead.
    pub fn call(
        &self,
        mut store: impl AsContextMut,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<()> {
        let store = &mut store.as_context_mut().0.opaque;
        // The flag is tested here so that the common case makes no call.
        if store.async_support {
            store.check_sync("Func::call")?;
        }
        self.call_unchecked(store, params, results)
    }

    /// Calls the function on a fiber, as a future: the wasm may wait for async host
    /// functions (see [`Linker::func_wrap_async`](crate::Linker::func_wrap_async)),
    /// and fuel and epochs may make it yield. Dropping the future before it is ready
    /// stops the wasm as if it trapped.
    ///
    /// # Errors
    /// As [`Func::call`], and fails if the engine has no async support.
    #[cfg(feature = "async")]
    pub async fn call_async(
        &self,
        mut store: impl AsContextMut<Data: Send>,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<()> {
        let inner = store.as_context_mut().0;
        inner.opaque.check_async("Func::call_async")?;
        crate::runtime::fiber::on_fiber(inner, |inner| {
            self.call_unchecked(&mut inner.opaque, params, results)
        })
        .await
    }

    fn call_unchecked(
        &self,
        inner: &mut StoreOpaque,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<()> {
        let func_ref = self.func_ref(inner);
        // SAFETY: function references in the store stay alive as long as it does.
        let id = unsafe { func_ref.as_ref() }.type_index;
        let ty = inner.call_scratch.take_type(id, &inner.engine);
        let mut slots = core::mem::take(&mut inner.call_scratch.slots);
        let result = call_with_vals(inner, func_ref, &ty, params, results, &mut slots);
        inner.call_scratch.slots = slots;
        inner.call_scratch.put_type(id, ty);
        result
    }

    /// A statically typed view of this function.
    ///
    /// # Errors
    /// Fails if `Params` and `Results` do not match the function's type.
    pub fn typed<Params: WasmParams, Results: WasmResults>(
        &self,
        store: impl AsContext,
    ) -> Result<TypedFunc<Params, Results>> {
        let ty = self.ty(store);
        let (p, r) = (Params::valtypes(), Results::valtypes());
        if !ty.params().eq(p.iter().copied()) || !ty.results().eq(r.iter().copied()) {
            let want = FuncType::from_types(p, r);
            return Err(Error::msg(format!(
                "type mismatch: the function is {ty}, not {want}"
            )));
        }
        Ok(TypedFunc {
            func: *self,
            _marker: PhantomData,
        })
    }
}

/// A host closure over [`Val`]s, as [`Func::new`] takes it.
pub(crate) trait ValClosure<T>:
    Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<()> + Send + Sync + 'static
{
}

impl<T, F> ValClosure<T> for F where
    F: Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<()> + Send + Sync + 'static
{
}

/// The body of a host function of type `ty` over [`Val`]s (see [`Func::new`]).
pub(crate) fn val_host_fn<T: 'static>(ty: &FuncType, func: impl ValClosure<T>) -> HostFn<T> {
    let params: Box<[ValType]> = ty.params().collect();
    let results: Box<[ValType]> = ty.results().collect();
    HostFn::new(move |caller: Caller<'_, T>, slots: &mut [ValRaw]| {
        call_val_closure(&func, &params, &results, caller, slots)
    })
}

/// Buffers a store keeps for untyped calls, so that a warm call allocates nothing and
/// takes no lock. Each call takes a buffer out and puts it back; a call made while an
/// outer one holds it (a host function calling back into wasm) makes its own.
#[derive(Default)]
pub(crate) struct CallScratch {
    /// Arguments then results of a [`Func::new`] host function.
    vals: Vec<Val>,
    /// The array-call slots of a [`Func::call`].
    slots: Vec<ValRaw>,
    /// Function types by engine type id, for [`Func::call`]: the engine's registry
    /// sits behind a lock and hands out copies.
    types: Vec<Option<FuncType>>,
}

/// Runs a host closure over [`Val`]s with its arguments and results in `slots`.
fn call_val_closure<T>(
    func: &impl ValClosure<T>,
    params: &[ValType],
    results: &[ValType],
    mut caller: Caller<'_, T>,
    slots: &mut [ValRaw],
) -> Result<()> {
    let opaque = &mut caller.store.0.opaque;
    let mut vals = core::mem::take(&mut opaque.call_scratch.vals);
    vals.clear();
    vals.extend(
        params
            .iter()
            .zip(slots.iter())
            .map(|(&t, &raw)| opaque.val_from_raw(t, raw)),
    );
    vals.extend(results.iter().map(|&t| default_val(t)));
    let (args, out) = vals.split_at_mut(params.len());
    let result = func(caller.reborrow(), args, out).and_then(|()| {
        for (i, (v, &t)) in out.iter().zip(results).enumerate() {
            if !v.matches(&caller.store.0.opaque, t) {
                return Err(Error::msg(format!(
                    "host function returned a {} for a {t} result",
                    v.ty()
                )));
            }
            slots[i] = caller.store.0.opaque.val_to_raw(*v)?;
        }
        Ok(())
    });
    caller.store.0.opaque.call_scratch.vals = vals;
    result
}

fn default_val(ty: ValType) -> Val {
    match ty {
        ValType::I32 => Val::I32(0),
        ValType::I64 => Val::I64(0),
        ValType::F32 => Val::F32(0),
        ValType::F64 => Val::F64(0),
        ValType::V128 => Val::V128(0),
        ValType::Ref(_) => Val::FuncRef(None),
    }
}

/// Checks `params` and `results` against `ty`, the type of `func_ref`, and calls it
/// with `slots` as its array-call slots.
fn call_with_vals(
    inner: &mut StoreOpaque,
    func_ref: NonNull<VMFuncRef>,
    ty: &FuncType,
    params: &[Val],
    results: &mut [Val],
    slots: &mut Vec<ValRaw>,
) -> Result<()> {
    if params.len() != ty.params().len() {
        return Err(Error::msg(format!(
            "expected {} arguments, got {}",
            ty.params().len(),
            params.len()
        )));
    }
    if results.len() != ty.results().len() {
        return Err(Error::msg(format!(
            "expected {} results, got room for {}",
            ty.results().len(),
            results.len()
        )));
    }
    slots.clear();
    inner.vals_to_raw(params, ty.params(), slots, |i, arg, expected| {
        format!(
            "argument {i} is a {} but the function takes a {expected}",
            arg.ty()
        )
    })?;
    slots.resize(ty.0.array_len(), ValRaw::default());
    // SAFETY: `func_ref` is the store's and of type `ty`, whose parameters `params` were
    // just checked to match and written to the first of the `array_len` slots.
    unsafe { invoke(inner, func_ref, slots.as_mut_ptr(), slots.len()) }?;
    for ((out, t), &raw) in results.iter_mut().zip(ty.results()).zip(slots.iter()) {
        *out = inner.val_from_raw(t, raw);
    }
    Ok(())
}

impl CallScratch {
    /// The type with engine id `id`, from the cache or else from `engine`. Give it
    /// back with [`CallScratch::put_type`].
    fn take_type(&mut self, id: u32, engine: &Engine) -> FuncType {
        self.types
            .get_mut(id as usize)
            .and_then(Option::take)
            .unwrap_or_else(|| FuncType(engine.type_of(id)))
    }

    /// Caches `ty`, the type with engine id `id`.
    fn put_type(&mut self, id: u32, ty: FuncType) {
        let i = id as usize;
        if self.types.len() <= i {
            self.types.resize_with(i + 1, || None);
        }
        self.types[i] = Some(ty);
    }
}

/// Calls `func_ref` through its array-call entry with traps caught, with the `len`
/// array-call slots at `slots`; the function overwrites the first slots with its
/// results.
///
/// # Safety
/// `func_ref` must belong to `store`, and `slots` must point to `len` initialized
/// slots, at least as many as the function's type has parameters and results, the
/// parameters first, of its parameter types.
#[inline]
pub(crate) unsafe fn invoke(
    store: &mut StoreOpaque,
    func_ref: NonNull<VMFuncRef>,
    slots: *mut ValRaw,
    len: usize,
) -> Result<()> {
    let ctx: *const strata_vm::VMStoreContext = &*store.vm_store_context;
    let max_stack = store.engine.config().max_wasm_stack;
    // SAFETY: the function reference belongs to this store, whose context we pass, and
    // `slots` has room for the parameters and results of its type (the contract).
    let result = unsafe {
        let f = func_ref.as_ref();
        let (array_call, vmctx) = (f.array_call, f.vmctx);
        strata_vm::catch_traps(ctx, max_stack, || array_call(vmctx, vmctx, slots, len))
    };
    result.map_err(|(reason, backtrace)| store.unwind_to_error(reason, backtrace))
}

/// A function whose parameter and result types are known statically: calls skip the
/// type checks and allocate nothing.
pub struct TypedFunc<Params, Results> {
    func: Func,
    _marker: PhantomData<fn(Params) -> Results>,
}

impl<P, R> Clone for TypedFunc<P, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<P, R> Copy for TypedFunc<P, R> {}

/// The most values a [`WasmParams`] list holds (the longest tuple).
const MAX_TYPED_SLOTS: usize = 16;

impl<Params: WasmParams, Results: WasmResults> TypedFunc<Params, Results> {
    /// Calls the function.
    ///
    /// # Errors
    /// Fails if it traps or a host function it calls fails.
    ///
    /// On a store with async support, use [`TypedFunc::call_async`] instead.
    pub fn call(&self, mut store: impl AsContextMut, params: Params) -> Result<Results> {
        let store = &mut store.as_context_mut().0.opaque;
        // The flag is tested here so that the common case makes no call.
        if store.async_support {
            store.check_sync("TypedFunc::call")?;
        }
        self.call_unchecked(store, params)
    }

    /// Calls the function on a fiber, as a future; see [`Func::call_async`].
    ///
    /// # Errors
    /// As [`TypedFunc::call`], and fails if the engine has no async support.
    #[cfg(feature = "async")]
    pub async fn call_async(
        &self,
        mut store: impl AsContextMut<Data: Send>,
        params: Params,
    ) -> Result<Results> {
        let inner = store.as_context_mut().0;
        inner.opaque.check_async("TypedFunc::call_async")?;
        crate::runtime::fiber::on_fiber(inner, |inner| {
            self.call_unchecked(&mut inner.opaque, params)
        })
        .await
    }

    fn call_unchecked(&self, store: &mut StoreOpaque, params: Params) -> Result<Results> {
        let func_ref = self.func.func_ref(store);
        const {
            assert!(Params::COUNT <= MAX_TYPED_SLOTS && Results::COUNT <= MAX_TYPED_SLOTS);
        }
        let len = Params::COUNT.max(Results::COUNT);
        // Uninitialized: the parameters are written below and the results by the call,
        // which spares zeroing all of it on every call.
        let mut storage = MaybeUninit::<[ValRaw; MAX_TYPED_SLOTS]>::uninit();
        let slots: *mut ValRaw = storage.as_mut_ptr().cast();
        // SAFETY: `slots` has room for `len` slots: the parameters go first, and any
        // slot past them is zeroed, so that all `len` are initialized.
        unsafe {
            params.store_raw(slots);
            for i in Params::COUNT..len {
                slots.add(i).write(ValRaw::default());
            }
        }
        // SAFETY: the function is the store's and of type `Params -> Results` (checked
        // by `Func::typed`), and the slots were just filled for it.
        unsafe { invoke(store, func_ref, slots, len) }?;
        // SAFETY: the call returned normally, so the function, of type
        // `Params -> Results` (checked by `Func::typed`), wrote its results to the first
        // `Results::COUNT` slots.
        Ok(unsafe { Results::load_raw(slots) })
    }

    /// The untyped function.
    pub fn func(&self) -> &Func {
        &self.func
    }
}

/// A value type that host functions can take and return directly.
pub trait WasmTy: Copy + Send + Sync + 'static {
    /// Its wasm type.
    fn valtype() -> ValType;
    /// Writes it to an array-call slot.
    fn to_raw(self) -> ValRaw;
    /// Reads it from an array-call slot.
    fn from_raw(raw: ValRaw) -> Self;
}

macro_rules! wasm_ty {
    ($($t:ty => $vt:ident, $to:expr, $from:expr;)*) => {$(
        impl WasmTy for $t {
            fn valtype() -> ValType {
                ValType::$vt
            }
            fn to_raw(self) -> ValRaw {
                $to(self)
            }
            fn from_raw(raw: ValRaw) -> Self {
                $from(raw)
            }
        }
    )*};
}

wasm_ty! {
    i32 => I32, ValRaw::i32, |r: ValRaw| r.get_i32();
    u32 => I32, |v: u32| ValRaw::i32(v.cast_signed()), |r: ValRaw| r.get_i32().cast_unsigned();
    i64 => I64, ValRaw::i64, |r: ValRaw| r.get_i64();
    u64 => I64, |v: u64| ValRaw::i64(v.cast_signed()), |r: ValRaw| r.get_i64().cast_unsigned();
    f32 => F32, |v: f32| ValRaw::i32(v.to_bits().cast_signed()), |r: ValRaw| f32::from_bits(r.get_i32().cast_unsigned());
    f64 => F64, |v: f64| ValRaw::i64(v.to_bits().cast_signed()), |r: ValRaw| f64::from_bits(r.get_i64().cast_unsigned());
}

/// A list of values passed in array-call slots: `()`, one [`WasmTy`], or a tuple of up
/// to 16 of them.
///
/// Sealed: typed calls trust `COUNT` and the raw accessors to fill exactly the slots
/// they hand to compiled code, so only the implementations here exist.
pub trait WasmParams: sealed::Params + Send + Sync + 'static {
    /// How many values.
    const COUNT: usize;
    /// Their types.
    fn valtypes() -> Vec<ValType>;
    /// Writes them to the first slots.
    fn store(self, slots: &mut [ValRaw]);
    /// Reads them from the first slots.
    fn load(slots: &[ValRaw]) -> Self;
    /// Writes them to the first `COUNT` slots at `slots`.
    ///
    /// # Safety
    /// `slots` must be valid for writing `COUNT` slots.
    #[doc(hidden)]
    unsafe fn store_raw(self, slots: *mut ValRaw);
    /// Reads them from the first `COUNT` slots at `slots`.
    ///
    /// # Safety
    /// `slots` must point to `COUNT` initialized slots.
    #[doc(hidden)]
    unsafe fn load_raw(slots: *const ValRaw) -> Self;
}

/// Seals [`WasmParams`].
mod sealed {
    /// Implemented by the lists [`super::WasmParams`] is implemented for.
    pub trait Params {}
}

impl<T: WasmTy> sealed::Params for T {}

/// A list of results; the same lists as [`WasmParams`].
pub trait WasmResults: WasmParams {}
impl<T: WasmParams> WasmResults for T {}

impl<T: WasmTy> WasmParams for T {
    const COUNT: usize = 1;
    fn valtypes() -> Vec<ValType> {
        vec![T::valtype()]
    }
    fn store(self, slots: &mut [ValRaw]) {
        slots[0] = self.to_raw();
    }
    fn load(slots: &[ValRaw]) -> Self {
        T::from_raw(slots[0])
    }
    unsafe fn store_raw(self, slots: *mut ValRaw) {
        // SAFETY: the caller guarantees room for one slot.
        unsafe { slots.write(self.to_raw()) }
    }
    unsafe fn load_raw(slots: *const ValRaw) -> Self {
        // SAFETY: the caller guarantees one initialized slot.
        T::from_raw(unsafe { slots.read() })
    }
}

macro_rules! tuples {
    ($($n:literal: ($($t:ident $i:tt),*);)*) => {$(
        impl<$($t: WasmTy),*> sealed::Params for ($($t,)*) {}

        impl<$($t: WasmTy),*> WasmParams for ($($t,)*) {
            const COUNT: usize = $n;
            fn valtypes() -> Vec<ValType> {
                vec![$($t::valtype()),*]
            }
            #[allow(unused_variables, reason = "the empty tuple stores nothing")]
            fn store(self, slots: &mut [ValRaw]) {
                $(slots[$i] = self.$i.to_raw();)*
            }
            #[allow(
                unused_variables,
                clippy::unused_unit,
                reason = "the empty tuple loads nothing"
            )]
            fn load(slots: &[ValRaw]) -> Self {
                ($($t::from_raw(slots[$i]),)*)
            }
            #[allow(unused_variables, reason = "the empty tuple stores nothing")]
            unsafe fn store_raw(self, slots: *mut ValRaw) {
                $(
                    // SAFETY: the caller guarantees room for `COUNT` slots.
                    unsafe { slots.add($i).write(self.$i.to_raw()) };
                )*
            }
            #[allow(
                unused_variables,
                clippy::unused_unit,
                reason = "the empty tuple loads nothing"
            )]
            unsafe fn load_raw(slots: *const ValRaw) -> Self {
                ($(
                    // SAFETY: the caller guarantees `COUNT` initialized slots.
                    $t::from_raw(unsafe { slots.add($i).read() }),
                )*)
            }
        }
    )*};
}

tuples! {
    0: ();
    1: (A 0);
    2: (A 0, B 1);
    3: (A 0, B 1, C 2);
    4: (A 0, B 1, C 2, D 3);
    5: (A 0, B 1, C 2, D 3, E 4);
    6: (A 0, B 1, C 2, D 3, E 4, F 5);
    7: (A 0, B 1, C 2, D 3, E 4, F 5, G 6);
    8: (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
    9: (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
    10: (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
    11: (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
    12: (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
    13: (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12);
    14: (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13);
    15: (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14);
    16: (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15);
}

/// What a host closure may return: results, or a `Result` of them.
pub trait WasmRet: Send + Sync + 'static {
    /// The result types.
    fn valtypes() -> Vec<ValType>;
    /// Writes the results, or passes on the error.
    fn store(self, slots: &mut [ValRaw]) -> Result<()>;
}

impl<R: WasmResults> WasmRet for R {
    fn valtypes() -> Vec<ValType> {
        R::valtypes()
    }
    fn store(self, slots: &mut [ValRaw]) -> Result<()> {
        WasmParams::store(self, slots);
        Ok(())
    }
}

impl<R: WasmResults> WasmRet for Result<R> {
    fn valtypes() -> Vec<ValType> {
        R::valtypes()
    }
    fn store(self, slots: &mut [ValRaw]) -> Result<()> {
        WasmParams::store(self?, slots);
        Ok(())
    }
}

/// The type and body of a host function whose closure returns a future, which the
/// wasm calling it waits for on its fiber (see
/// [`Linker::func_wrap_async`](crate::Linker::func_wrap_async)).
#[cfg(feature = "async")]
pub(crate) fn async_host_fn<T, Params, Results, F>(func: F) -> (FuncType, HostFn<T>)
where
    T: 'static,
    Params: WasmParams,
    Results: WasmRet,
    F: for<'a> Fn(
            Caller<'a, T>,
            Params,
        ) -> Box<dyn std::future::Future<Output = Results> + Send + 'a>
        + Send
        + Sync
        + 'static,
{
    let ty = FuncType::from_types(Params::valtypes(), Results::valtypes());
    let body = HostFn::new(move |caller: Caller<'_, T>, slots: &mut [ValRaw]| {
        let cx = caller.store.0.opaque.async_cx()?;
        let future = func(caller, Params::load(slots));
        crate::runtime::fiber::block_on(cx, Box::into_pin(future))?.store(slots)
    });
    (ty, body)
}

/// Rust closures that can become host functions (see [`Func::wrap`]).
pub trait IntoFunc<T, Params, Results>: Send + Sync + 'static {
    /// The function's type and its type-erased body.
    #[doc(hidden)]
    fn into_func(self) -> (FuncType, HostFn<T>);
}

macro_rules! into_func {
    ($(($($a:ident),*);)*) => {$(
        impl<T: 'static, Fun, $($a: WasmTy,)* R: WasmRet> IntoFunc<T, ($($a,)*), R> for Fun
        where
            Fun: Fn($($a),*) -> R + Send + Sync + 'static,
        {
            fn into_func(self) -> (FuncType, HostFn<T>) {
                let ty = FuncType::from_types(vec![$($a::valtype()),*], R::valtypes());
                let body = HostFn::new(move |_caller: Caller<'_, T>, slots: &mut [ValRaw]| {
                    let ($($a,)*) = <($($a,)*) as WasmParams>::load(slots);
                    self($($a),*).store(slots)
                });
                (ty, body)
            }
        }

        impl<T: 'static, Fun, $($a: WasmTy,)* R: WasmRet> IntoFunc<T, (Caller<'static, T>, $($a,)*), R> for Fun
        where
            Fun: Fn(Caller<'_, T>, $($a),*) -> R + Send + Sync + 'static,
        {
            fn into_func(self) -> (FuncType, HostFn<T>) {
                let ty = FuncType::from_types(vec![$($a::valtype()),*], R::valtypes());
                let body = HostFn::new(move |caller: Caller<'_, T>, slots: &mut [ValRaw]| {
                    let ($($a,)*) = <($($a,)*) as WasmParams>::load(slots);
                    self(caller, $($a),*).store(slots)
                });
                (ty, body)
            }
        }
    )*};
}

#[expect(
    non_snake_case,
    reason = "the macro names values after their type parameters"
)]
mod into_func_impls {
    use super::*;
    into_func! {
        ();
        (A1);
        (A1, A2);
        (A1, A2, A3);
        (A1, A2, A3, A4);
        (A1, A2, A3, A4, A5);
        (A1, A2, A3, A4, A5, A6);
        (A1, A2, A3, A4, A5, A6, A7);
        (A1, A2, A3, A4, A5, A6, A7, A8);
        (A1, A2, A3, A4, A5, A6, A7, A8, A9);
        (A1, A2, A3, A4, A5, A6, A7, A8, A9, A10);
        (A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11);
        (A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12);
        (A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13);
        (A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14);
        (A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15);
        (A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16);
    }
}

/// The context a host function runs in: its store, and the instance that called it.
pub struct Caller<'a, T> {
    pub(crate) store: StoreContextMut<'a, T>,
    /// The caller's vmctx: an instance's, or a host function context's when the host
    /// called the function. Which instance it is is worked out only when asked.
    pub(crate) caller: Option<SendSyncPtr<VMContext>>,
}

impl<T> Caller<'_, T> {
    fn reborrow(&mut self) -> Caller<'_, T> {
        Caller {
            store: StoreContextMut(self.store.0),
            caller: self.caller,
        }
    }

    /// The store's data.
    pub fn data(&self) -> &T {
        &self.store.0.data
    }

    /// The store's data, mutably.
    pub fn data_mut(&mut self) -> &mut T {
        &mut self.store.0.data
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.store.0.opaque.engine
    }

    /// An export of the calling instance.
    pub fn get_export(&mut self, name: &str) -> Option<Extern> {
        let vmctx = self.caller?;
        // SAFETY: the caller's vmctx stays alive while the host function it called
        // runs, and a `Caller` does not outlive that call; while a host function runs,
        // its caller's instance is reached through raw pointers only (no `&mut
        // Instance` is in use).
        let index = unsafe { strata_vm::instance_id_of_vmctx(vmctx.0.as_ptr()) }?;
        let instance = Instance {
            store: self.store.0.opaque.id,
            index,
        };
        instance.get_export(&mut *self, name)
    }

    /// The fuel the store has left (see [`Store::get_fuel`](crate::Store::get_fuel)).
    ///
    /// # Errors
    /// Fails if the engine does not consume fuel.
    pub fn get_fuel(&self) -> Result<u64> {
        self.store.0.opaque.get_fuel()
    }

    /// Replaces the store's fuel (see [`Store::set_fuel`](crate::Store::set_fuel)).
    ///
    /// # Errors
    /// Fails if the engine does not consume fuel.
    pub fn set_fuel(&mut self, fuel: u64) -> Result<()> {
        self.store.0.opaque.set_fuel(fuel)
    }
}

impl<T> AsContext for Caller<'_, T> {
    type Data = T;
    fn as_context(&self) -> StoreContext<'_, T> {
        StoreContext(self.store.0)
    }
}

impl<T> AsContextMut for Caller<'_, T> {
    fn as_context_mut(&mut self) -> StoreContextMut<'_, T> {
        StoreContextMut(self.store.0)
    }
}
