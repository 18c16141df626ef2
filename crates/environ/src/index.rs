//! Typed index spaces of a module.
//!
//! Each kind of entity has two index spaces: one that counts imports first (`FuncIndex`)
//! and one over the module's own definitions only (`DefinedFuncIndex`). Only [`Module`]
//! converts between them.
//!
//! [`Module`]: crate::Module

use cranelift_entity::entity_impl;

macro_rules! indices {
    ($($(#[$doc:meta])* $name:ident, $prefix:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(u32);
        entity_impl!($name, $prefix);
    )*};
}

indices! {
    /// A type in the module's type section.
    TypeIndex, "type";
    /// A function, imports first.
    FuncIndex, "func";
    /// A function defined (not imported) by the module.
    DefinedFuncIndex, "defined_func";
    /// A table, imports first.
    TableIndex, "table";
    /// A table defined by the module.
    DefinedTableIndex, "defined_table";
    /// A linear memory, imports first.
    MemoryIndex, "memory";
    /// A linear memory defined by the module.
    DefinedMemoryIndex, "defined_memory";
    /// A global, imports first.
    GlobalIndex, "global";
    /// A global defined by the module.
    DefinedGlobalIndex, "defined_global";
    /// An element segment.
    ElemIndex, "elem";
    /// A data segment.
    DataIndex, "data";
    /// A slot in the instance's table of `VMFuncRef`s for functions that escape.
    FuncRefIndex, "func_ref";
}
