//! Typed index spaces of a module.
//!
//! Each kind of entity has two index spaces: one that counts imports first (`FuncIndex`)
//! and one over the module's own definitions only (`DefinedFuncIndex`). Only [`Module`]
//! converts between them.
//!
//! [`Module`]: crate::Module

use serde::{Deserialize, Serialize};

/// Defines each index type: a `u32` newtype made an [`EntityRef`] by
/// [`entity_impl!`](crate::entity_impl) (with `from_u32`/`as_u32`, and printed, with
/// `Debug` and `Display`, as its prefix then its number, such as `func3`), serialized as
/// its `u32`.
///
/// [`EntityRef`]: crate::EntityRef
macro_rules! indices {
    ($($(#[$doc:meta])* $name:ident, $prefix:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[derive(Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(u32);

        cranelift_entity::entity_impl!($name, $prefix);
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
    /// An exception tag, imports first.
    TagIndex, "tag";
    /// An exception tag defined by the module.
    DefinedTagIndex, "defined_tag";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EntityRef, PrimaryMap};

    #[test]
    fn indices_print_with_their_prefix() {
        assert_eq!(FuncIndex::from_u32(3).to_string(), "func3");
        assert_eq!(format!("{:?}", DefinedTableIndex::new(7)), "defined_table7");
        assert_eq!(DataIndex::new(7).as_u32(), 7);
        assert_eq!(ElemIndex::from_u32(9).index(), 9);
    }

    #[test]
    #[cfg(all(debug_assertions, target_pointer_width = "64"))]
    #[should_panic(expected = "u32::MAX")]
    fn new_rejects_indices_past_u32() {
        TypeIndex::new(u32::MAX as usize + 1);
    }

    /// Precompiled artifacts hold maps and indices: a map is its values in order, an
    /// index its number, as with the hand-written map this crate had before.
    #[test]
    fn maps_and_indices_serialize_as_plain_values() {
        let mut map: PrimaryMap<FuncIndex, TypeIndex> = PrimaryMap::new();
        map.push(TypeIndex::from_u32(300));
        map.push(TypeIndex::from_u32(1));
        let bytes = postcard::to_allocvec(&map).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&vec![300_u32, 1]).unwrap());
        let back: PrimaryMap<FuncIndex, TypeIndex> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, map);
    }
}
