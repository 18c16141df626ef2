//! Typed index spaces of a module.
//!
//! Each kind of entity has two index spaces: one that counts imports first (`FuncIndex`)
//! and one over the module's own definitions only (`DefinedFuncIndex`). Only [`Module`]
//! converts between them.
//!
//! [`Module`]: crate::Module

use crate::EntityRef;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Defines each index type: a `u32` newtype implementing [`EntityRef`], with
/// `from_u32`/`as_u32`, serialized as its `u32`, and printed (`Debug` and `Display`) as
/// its prefix then its number, such as `func3`.
macro_rules! indices {
    ($($(#[$doc:meta])* $name:ident, $prefix:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[derive(Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(u32);

        impl EntityRef for $name {
            fn new(index: usize) -> Self {
                match u32::try_from(index) {
                    Ok(index) => $name(index),
                    Err(_) => panic!("{} {index} does not fit in 32 bits", $prefix),
                }
            }

            fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl $name {
            /// The index numbered `index`.
            pub const fn from_u32(index: u32) -> Self {
                $name(index)
            }

            /// The index as a `u32`.
            pub const fn as_u32(self) -> u32 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_print_with_their_prefix() {
        assert_eq!(FuncIndex::from_u32(3).to_string(), "func3");
        assert_eq!(format!("{:?}", DefinedTableIndex::new(7)), "defined_table7");
        assert_eq!(DataIndex::new(7).as_u32(), 7);
        assert_eq!(ElemIndex::from_u32(9).index(), 9);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    #[should_panic(expected = "does not fit in 32 bits")]
    fn new_rejects_indices_past_u32() {
        TypeIndex::new(u32::MAX as usize + 1);
    }
}
