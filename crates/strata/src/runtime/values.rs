//! [`Val`], [`Ref`] and [`ExternRef`]: values passed between the host and wasm.

use crate::runtime::handles::Func;
use crate::{AsContextMut, Result, StoreContext, ValType};
use core::any::Any;

/// A WebAssembly value. Floats are kept as raw bits so NaN payloads survive.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Val {
    /// A 32-bit integer.
    I32(i32),
    /// A 64-bit integer.
    I64(i64),
    /// A 32-bit float, as bits.
    F32(u32),
    /// A 64-bit float, as bits.
    F64(u64),
    /// A 128-bit vector, as bits.
    V128(u128),
    /// A function reference, or null.
    FuncRef(Option<Func>),
    /// An external reference, or null.
    ExternRef(Option<ExternRef>),
    /// An exception, or null.
    ExnRef(Option<crate::ExnRef>),
}

impl Val {
    /// The value's type.
    pub fn ty(&self) -> ValType {
        match self {
            Val::I32(_) => ValType::I32,
            Val::I64(_) => ValType::I64,
            Val::F32(_) => ValType::F32,
            Val::F64(_) => ValType::F64,
            Val::V128(_) => ValType::V128,
            Val::FuncRef(_) => ValType::FUNCREF,
            Val::ExternRef(_) => ValType::EXTERNREF,
            Val::ExnRef(_) => ValType::EXNREF,
        }
    }

    /// The `i32`, if it is one.
    pub fn i32(&self) -> Option<i32> {
        if let Val::I32(v) = self {
            Some(*v)
        } else {
            None
        }
    }
    /// The `i64`, if it is one.
    pub fn i64(&self) -> Option<i64> {
        if let Val::I64(v) = self {
            Some(*v)
        } else {
            None
        }
    }
    /// The `f32`, if it is one.
    pub fn f32(&self) -> Option<f32> {
        if let Val::F32(v) = self {
            Some(f32::from_bits(*v))
        } else {
            None
        }
    }
    /// The `f64`, if it is one.
    pub fn f64(&self) -> Option<f64> {
        if let Val::F64(v) = self {
            Some(f64::from_bits(*v))
        } else {
            None
        }
    }
}

impl From<i32> for Val {
    fn from(v: i32) -> Val {
        Val::I32(v)
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::I64(v)
    }
}
impl From<f32> for Val {
    fn from(v: f32) -> Val {
        Val::F32(v.to_bits())
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::F64(v.to_bits())
    }
}

/// A reference value, as stored in tables.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Ref {
    /// A function reference, or null.
    Func(Option<Func>),
    /// An external reference, or null.
    Extern(Option<ExternRef>),
    /// An exception, or null.
    Exn(Option<crate::ExnRef>),
}

impl Ref {
    /// The value this reference is.
    pub fn to_val(self) -> Val {
        match self {
            Ref::Func(f) => Val::FuncRef(f),
            Ref::Extern(e) => Val::ExternRef(e),
            Ref::Exn(e) => Val::ExnRef(e),
        }
    }
}

impl Val {
    /// Whether this value is of type `ty`: of the same type, or, for a reference, of a
    /// subtype (a function is a `(ref $t)` of its own type, a `(ref func)` and a
    /// `funcref`; null is a value of every nullable reference type of its hierarchy).
    ///
    /// # Panics
    /// If the value is a reference of another store.
    pub fn matches_ty(&self, store: impl crate::AsContext, ty: &ValType) -> bool {
        self.matches(&store.as_context().0.opaque, *ty)
    }

    pub(crate) fn matches(&self, store: &crate::runtime::store::StoreOpaque, ty: ValType) -> bool {
        use strata_environ::{EngineOrModuleTypeIndex, WasmHeapType, WasmRefType, WasmValType};
        // A reference's own type: its exact heap type, or the bottom of its hierarchy
        // (the type of null alone).
        let (nullable, heap_type) = match self {
            Val::FuncRef(Some(f)) => (
                false,
                WasmHeapType::ConcreteFunc(EngineOrModuleTypeIndex::Engine(f.type_id(store))),
            ),
            Val::FuncRef(None) => (true, WasmHeapType::NoFunc),
            Val::ExternRef(Some(_)) => (false, WasmHeapType::Extern),
            Val::ExternRef(None) => (true, WasmHeapType::NoExtern),
            Val::ExnRef(Some(_)) => (false, WasmHeapType::Exn),
            Val::ExnRef(None) => (true, WasmHeapType::NoExn),
            other => return other.ty() == ty,
        };
        let actual = WasmRefType {
            nullable,
            heap_type,
        };
        WasmValType::Ref(actual).is_subtype_of(ty.to_wasm())
    }
}

impl From<Func> for Val {
    fn from(f: Func) -> Val {
        Val::FuncRef(Some(f))
    }
}

impl From<ExternRef> for Val {
    fn from(e: ExternRef) -> Val {
        Val::ExternRef(Some(e))
    }
}

/// A reference to a host value that wasm can hold (`externref`) but not look into. A
/// small `Copy` handle; the value lives as long as its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExternRef {
    pub(crate) store: u64,
    pub(crate) index: usize,
}

impl ExternRef {
    /// Moves `value` into `store` and returns a reference to it.
    ///
    /// # Errors
    /// None at present; the `Result` leaves room for a store that limits its host values.
    pub fn new<T: Any + Send + Sync>(mut store: impl AsContextMut, value: T) -> Result<ExternRef> {
        let store = &mut store.as_context_mut().0.opaque;
        store.extern_refs.push(Box::new(value));
        Ok(ExternRef {
            store: store.id,
            index: store.extern_refs.len() - 1,
        })
    }

    /// The host value this refers to; downcast it to the type it was made with.
    ///
    /// # Panics
    /// If `store` is not the store the reference belongs to.
    pub fn data<'a, T: 'a>(
        &self,
        store: impl Into<StoreContext<'a, T>>,
    ) -> &'a (dyn Any + Send + Sync) {
        let store = &store.into().0.opaque;
        store.check(self.store);
        &*store.extern_refs[self.index]
    }

    /// The word wasm holds for this reference: never zero, which is `null`.
    pub(crate) fn to_raw(self) -> usize {
        self.index + 1
    }

    /// The reference for a word wasm holds, `None` for `null`.
    pub(crate) fn from_raw(store: u64, raw: usize) -> Option<ExternRef> {
        raw.checked_sub(1).map(|index| ExternRef { store, index })
    }
}
