//! The handles into a store: [`Func`], [`Global`], [`Memory`], [`Table`] and
//! [`Extern`], which holds any one of them.
//!
//! Only their data lives here, so that the store (which caches the handles of its
//! instances' exports) sits below the modules that implement them: the methods of
//! [`Func`] are in `func.rs`, those of the other entities in `externals.rs`.

use crate::GlobalType;
use strata_environ::{DefinedMemoryIndex, DefinedTableIndex};
use strata_vm::VMGlobalDefinition;

/// A function: exported by an instance or defined by the host. A small `Copy` handle
/// into its store.
#[derive(Copy, Clone, Debug)]
pub struct Func {
    pub(crate) store: u64,
    pub(crate) index: usize,
}

/// A global. A small `Copy` handle into its store.
#[derive(Copy, Clone, Debug)]
pub struct Global {
    pub(crate) store: u64,
    pub(crate) ptr: strata_vm::SendSyncPtr<VMGlobalDefinition>,
    pub(crate) ty: GlobalType,
}

/// A linear memory. A small `Copy` handle into its store.
#[derive(Copy, Clone, Debug)]
pub struct Memory {
    pub(crate) store: u64,
    pub(crate) instance: usize,
    pub(crate) index: DefinedMemoryIndex,
}

/// A table. A small `Copy` handle into its store.
#[derive(Copy, Clone, Debug)]
pub struct Table {
    pub(crate) store: u64,
    pub(crate) instance: usize,
    pub(crate) index: DefinedTableIndex,
}

/// An exception tag: exported by an instance or made by the host. A small `Copy`
/// handle into its store; two handles are the same tag when their identities are.
#[derive(Copy, Clone, Debug)]
pub struct Tag {
    pub(crate) store: u64,
    pub(crate) ptr: strata_vm::SendSyncPtr<strata_vm::VMTagDefinition>,
}

/// Something a module can import or an instance export.
#[derive(Copy, Clone, Debug)]
pub enum Extern {
    /// A function.
    Func(Func),
    /// A global.
    Global(Global),
    /// A table.
    Table(Table),
    /// A linear memory.
    Memory(Memory),
    /// An exception tag.
    Tag(Tag),
}

impl Extern {
    /// The function, if this is one.
    pub fn into_func(self) -> Option<Func> {
        if let Extern::Func(f) = self {
            Some(f)
        } else {
            None
        }
    }
    /// The global, if this is one.
    pub fn into_global(self) -> Option<Global> {
        if let Extern::Global(g) = self {
            Some(g)
        } else {
            None
        }
    }
    /// The table, if this is one.
    pub fn into_table(self) -> Option<Table> {
        if let Extern::Table(t) = self {
            Some(t)
        } else {
            None
        }
    }
    /// The memory, if this is one.
    pub fn into_memory(self) -> Option<Memory> {
        if let Extern::Memory(m) = self {
            Some(m)
        } else {
            None
        }
    }
    /// The tag, if this is one.
    pub fn into_tag(self) -> Option<Tag> {
        if let Extern::Tag(t) = self {
            Some(t)
        } else {
            None
        }
    }
}

impl From<Tag> for Extern {
    fn from(t: Tag) -> Extern {
        Extern::Tag(t)
    }
}

impl From<Func> for Extern {
    fn from(f: Func) -> Extern {
        Extern::Func(f)
    }
}
impl From<Global> for Extern {
    fn from(g: Global) -> Extern {
        Extern::Global(g)
    }
}
impl From<Table> for Extern {
    fn from(t: Table) -> Extern {
        Extern::Table(t)
    }
}
impl From<Memory> for Extern {
    fn from(m: Memory) -> Extern {
        Extern::Memory(m)
    }
}
