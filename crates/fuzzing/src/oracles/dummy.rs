//! Dummy imports: for each import of a module, an extern of the matching type whose
//! functions return zeros.

use strata::{
    Extern, ExternType, Func, Global, Memory, Module, Ref, Result, Store, Table, Val, ValType,
};

/// The zero (or null) value of `ty`.
pub(crate) fn zero(ty: &ValType) -> Val {
    match ty {
        ValType::I32 => Val::I32(0),
        ValType::I64 => Val::I64(0),
        ValType::F32 => Val::F32(0),
        ValType::F64 => Val::F64(0),
        ValType::V128 => Val::V128(0),
        ValType::Ref(r) if r.is_func() => Val::FuncRef(None),
        ValType::Ref(r) if r.is_exn() => Val::ExnRef(None),
        ValType::Ref(_) => Val::ExternRef(None),
    }
}

/// One extern per import of `module`, in order.
///
/// # Errors
/// Fails if the store cannot hold them (a memory or table too large for its limits).
pub(crate) fn imports<T: 'static>(store: &mut Store<T>, module: &Module) -> Result<Vec<Extern>> {
    module
        .imports()
        .map(|import| {
            Ok(match import.ty() {
                ExternType::Func(ty) => {
                    let results: Vec<Val> = ty.results().map(|t| zero(&t)).collect();
                    Func::new(&mut *store, ty, move |_, _, out| {
                        out.copy_from_slice(&results);
                        Ok(())
                    })
                    .into()
                }
                ExternType::Global(ty) => {
                    let value = zero(&ty.content());
                    Global::new(&mut *store, ty, value)?.into()
                }
                ExternType::Memory(ty) => Memory::new(&mut *store, ty)?.into(),
                ExternType::Table(ty) => {
                    let init = if ty.element().is_func() {
                        Ref::Func(None)
                    } else if ty.element().is_exn() {
                        Ref::Exn(None)
                    } else {
                        Ref::Extern(None)
                    };
                    Table::new(&mut *store, ty, init)?.into()
                }
                ExternType::Tag(ty) => strata::Tag::new(&mut *store, &ty)?.into(),
            })
        })
        .collect()
}
