//! Exception handling from the host: [`Tag`], [`ExnRef`] and [`ThrownException`].
//!
//! A wasm exception that no wasm handler catches leaves [`Func::call`](crate::Func::call)
//! as an [`Error`] holding a [`ThrownException`]; its [`ExnRef`] gives the tag and the
//! fields. A host function throws into its wasm caller by returning such an error
//! (one it caught from a call, or one made with [`ThrownException::new`]).

use crate::runtime::func::Caller;
use crate::runtime::handles::Tag;
use crate::runtime::store::StoreOpaque;
use crate::runtime::{AsContext, AsContextMut, Val};
use crate::{Error, FuncType, Result, Store, TagType};
use core::fmt;
use core::ptr::NonNull;
use strata_vm::{SendSyncPtr, VMExnRef, VMTagDefinition};

impl Tag {
    /// A new tag of type `ty` in `store`, distinct from every other tag.
    ///
    /// # Errors
    /// Fails if the type has results: a tag's type only has parameters.
    pub fn new(mut store: impl AsContextMut, ty: &TagType) -> Result<Tag> {
        let store = &mut store.as_context_mut().0.opaque;
        if !ty.0.0.results().is_empty() {
            return Err(Error::msg(format!(
                "a tag's type has no results, but {} has",
                ty.0
            )));
        }
        let type_index = store.engine.type_id(&ty.0.0);
        let mut definition = Box::new(VMTagDefinition { type_index });
        let ptr = SendSyncPtr(NonNull::from(&mut *definition));
        store.host_tags.push(definition);
        Ok(Tag {
            store: store.id,
            ptr,
        })
    }

    /// The tag's type.
    ///
    /// # Panics
    /// If `store` is not the tag's store.
    pub fn ty(&self, store: impl AsContext) -> TagType {
        self.ty_opaque(&store.as_context().0.opaque)
    }

    pub(crate) fn ty_opaque(&self, store: &StoreOpaque) -> TagType {
        store.check(self.store);
        // SAFETY: the definition lives in an instance or the host tags of its store,
        // which is alive as `store`.
        let type_index = unsafe { self.ptr.0.as_ref().type_index };
        TagType(FuncType(store.engine.type_of(type_index)))
    }

    /// Whether `a` and `b` are the same tag: one defined (or made) once, however many
    /// instances export or import it.
    pub fn eq(a: &Tag, b: &Tag, _store: impl AsContext) -> bool {
        a.store == b.store && a.ptr.0 == b.ptr.0
    }
}

/// An exception: a tag and its fields. A small `Copy` handle; the exception lives as
/// long as its store.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ExnRef {
    pub(crate) store: u64,
    pub(crate) index: usize,
}

impl ExnRef {
    /// A new exception of `tag` with `fields`, which must match its type.
    ///
    /// # Errors
    /// Fails if the fields do not match the tag's parameters, in number or type, or
    /// belong to another store.
    pub fn new(mut store: impl AsContextMut, tag: &Tag, fields: &[Val]) -> Result<ExnRef> {
        let store = &mut store.as_context_mut().0.opaque;
        store.check(tag.store);
        // SAFETY: the tag's definition lives as long as its store.
        let type_index = unsafe { tag.ptr.0.as_ref().type_index };
        let ty = store.engine.type_of(type_index);
        let params = ty.params();
        if fields.len() != params.len() {
            return Err(Error::msg(format!(
                "the tag has {} fields but {} were given",
                params.len(),
                fields.len()
            )));
        }
        let mut raws = Vec::with_capacity(fields.len());
        let types = params.iter().map(|&t| crate::ValType::from_wasm(t));
        store.vals_to_raw(fields, types, &mut raws, |i, field, want| {
            format!(
                "field {i} of the exception is a {} where a {want} is expected",
                field.ty()
            )
        })?;
        let heap = store.vm_store_context.exceptions.get_mut();
        let exn = heap.alloc(tag.ptr.0, fields.len());
        for (i, raw) in raws.into_iter().enumerate() {
            // SAFETY: the exception was just made with this many fields.
            unsafe { exn.field(i).write(raw.get_u128()) };
        }
        // SAFETY: the exception is an object of this store's heap, alive with it.
        Ok(unsafe { store.exn_from_vm(exn) })
    }

    fn vm(&self, store: &mut StoreOpaque) -> VMExnRef {
        store.check(self.store);
        store
            .vm_store_context
            .exceptions
            .get_mut()
            .get(self.index)
            .expect("an exception of this store")
    }

    /// The exception's tag.
    ///
    /// # Panics
    /// If `store` is not the exception's store.
    pub fn tag(&self, mut store: impl AsContextMut) -> Tag {
        let store = &mut store.as_context_mut().0.opaque;
        let exn = self.vm(store);
        Tag {
            store: store.id,
            // SAFETY: the exception lives in this store's heap.
            ptr: SendSyncPtr(unsafe { exn.tag() }),
        }
    }

    /// The exception's type: its tag's fields.
    ///
    /// # Panics
    /// If `store` is not the exception's store.
    pub fn ty(&self, mut store: impl AsContextMut) -> crate::ExnType {
        let mut store = store.as_context_mut();
        let tag = self.tag(&mut store);
        crate::ExnType::from_tag_type(&tag.ty(&store))
    }

    /// The exception's fields, in order.
    ///
    /// # Panics
    /// If `store` is not the exception's store.
    pub fn fields(&self, mut store: impl AsContextMut) -> Vec<Val> {
        let store = &mut store.as_context_mut().0.opaque;
        let exn = self.vm(store);
        // SAFETY: the exception and its tag live in this store.
        let type_index = unsafe { exn.tag().as_ref().type_index };
        let ty = store.engine.type_of(type_index);
        ty.params()
            .iter()
            .enumerate()
            .map(|(i, &param)| {
                // SAFETY: the exception has one field per parameter of its tag.
                let raw = unsafe { exn.field(i).read() };
                store.val_from_raw(
                    crate::ValType::from_wasm(param),
                    strata_vm::ValRaw::u128(raw),
                )
            })
            .collect()
    }
}

/// The error of a wasm exception that reached the host uncaught. Returned from a
/// host function, it throws the exception into the wasm that called it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrownException {
    exn: ExnRef,
    /// The tag's parameters, when known, for the message.
    tag: Option<FuncType>,
}

impl ThrownException {
    /// The error that throws `exn`.
    pub fn new(exn: ExnRef) -> ThrownException {
        ThrownException { exn, tag: None }
    }

    /// The exception.
    pub fn exception(&self) -> ExnRef {
        self.exn
    }
}

impl fmt::Display for ThrownException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("uncaught wasm exception")?;
        match &self.tag {
            Some(ty) => write!(f, " of a tag of type {ty}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ThrownException {}

impl From<ThrownException> for Error {
    fn from(thrown: ThrownException) -> Error {
        Error::new(thrown)
    }
}

impl<T> Store<T> {
    /// Throws `exn`: makes it the pending exception and returns the error that, from a
    /// host function, throws it into the wasm that called it.
    pub fn throw<R>(&mut self, exn: ExnRef) -> Result<R, ThrownException> {
        self.inner.opaque.throw(exn)
    }

    /// Takes the pending exception: the last one that reached the host uncaught, or
    /// that the host threw with [`Store::throw`].
    pub fn take_pending_exception(&mut self) -> Option<ExnRef> {
        self.inner.opaque.pending_exception.take()
    }

    /// Whether there is a pending exception.
    pub fn has_pending_exception(&self) -> bool {
        self.inner.opaque.pending_exception.is_some()
    }
}

impl<T> Caller<'_, T> {
    /// Throws `exn` into the calling wasm: return the error from the host function
    /// (see [`Store::throw`]).
    pub fn throw<R>(&mut self, exn: ExnRef) -> Result<R, ThrownException> {
        self.store.0.opaque.throw(exn)
    }

    /// Takes the pending exception (see [`Store::take_pending_exception`]).
    pub fn take_pending_exception(&mut self) -> Option<ExnRef> {
        self.store.0.opaque.pending_exception.take()
    }
}

impl StoreOpaque {
    fn throw<R>(&mut self, exn: ExnRef) -> Result<R, ThrownException> {
        self.check(exn.store);
        self.pending_exception = Some(exn);
        Err(ThrownException::new(exn))
    }

    /// The error for `exn`, which no wasm handler caught.
    ///
    /// # Safety
    /// `exn` must be an object of this store's exception heap.
    pub(crate) unsafe fn uncaught(&self, exn: VMExnRef) -> ThrownException {
        // SAFETY: per the contract the exception and its tag are alive.
        let type_index = unsafe { exn.tag().as_ref().type_index };
        ThrownException {
            // SAFETY: as above.
            exn: unsafe { self.exn_from_vm(exn) },
            tag: Some(FuncType(self.engine.type_of(type_index))),
        }
    }

    /// The handle of `exn`, an exception of this store.
    ///
    /// # Safety
    /// `exn` must be an object of this store's exception heap.
    pub(crate) unsafe fn exn_from_vm(&self, exn: VMExnRef) -> ExnRef {
        ExnRef {
            store: self.id,
            // SAFETY: per the contract the object is alive.
            index: unsafe { exn.index() },
        }
    }

    /// The word wasm holds for `e`.
    pub(crate) fn exn_ref_ptr(&self, e: Option<ExnRef>) -> Result<*mut u8> {
        let Some(e) = e else {
            return Ok(core::ptr::null_mut());
        };
        if e.store != self.id {
            return Err(Error::msg("exnref used with a store it does not belong to"));
        }
        // SAFETY: only this store's thread touches its exception heap, and nothing
        // changes it while this shared reference lives.
        let heap = unsafe { &*self.vm_store_context.exceptions.get() };
        let exn = heap.get(e.index).expect("an exception of this store");
        Ok(exn.as_raw())
    }

    /// The handle of the exception wasm holds as `ptr` (null gives `None`).
    pub(crate) fn exn_from_ptr(&self, ptr: *mut u8) -> Option<ExnRef> {
        // SAFETY: wasm of this store only holds exceptions of this store's heap.
        let exn = unsafe { VMExnRef::from_raw(ptr) }?;
        // SAFETY: as above.
        Some(unsafe { self.exn_from_vm(exn) })
    }

    /// The exception a host function's error throws, if it is a [`ThrownException`]
    /// of this store. Thrown into wasm, it is no longer pending.
    pub(crate) fn thrown_by(&mut self, error: &Error) -> Option<VMExnRef> {
        let thrown = error.downcast_ref::<ThrownException>()?;
        if thrown.exn.store != self.id {
            return None;
        }
        if self.pending_exception == Some(thrown.exn) {
            self.pending_exception = None;
        }
        self.vm_store_context
            .exceptions
            .get_mut()
            .get(thrown.exn.index)
    }
}
