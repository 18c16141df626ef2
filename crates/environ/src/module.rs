//! [`Module`]: everything strata knows about a validated module except its code.

use crate::{
    DataIndex, DefinedFuncIndex, DefinedGlobalIndex, DefinedMemoryIndex, DefinedTableIndex,
    DefinedTagIndex, ElemIndex, EntityRef, FuncIndex, FuncRefIndex, Global, GlobalIndex, Memory,
    MemoryIndex, PrimaryMap, Table, TableIndex, TagIndex, TypeIndex, WasmFuncType,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// An entity in one of the module's index spaces.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntityIndex {
    /// A function.
    Function(FuncIndex),
    /// A table.
    Table(TableIndex),
    /// A linear memory.
    Memory(MemoryIndex),
    /// A global.
    Global(GlobalIndex),
    /// An exception tag.
    Tag(TagIndex),
}

/// One import of the module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Import {
    /// The module name.
    pub module: String,
    /// The field name.
    pub name: String,
    /// What the import defines in the module's index spaces.
    pub index: EntityIndex,
}

/// One export of the module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// The export's name.
    pub name: String,
    /// The exported entity.
    pub index: EntityIndex,
}

/// A function in the module's function index space.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModuleFunction {
    /// Its type.
    pub signature: TypeIndex,
    /// Its slot in the vmctx `func_refs` region, if it escapes the instance (is exported,
    /// placed in a table or referenced by `ref.func`).
    pub func_ref: Option<FuncRefIndex>,
}

/// An exception tag: the function type whose parameters are its exception's fields
/// (its results are empty).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Its type.
    pub signature: TypeIndex,
}

/// One operation of a constant expression.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ConstOp {
    /// `i32.const`.
    I32Const(i32),
    /// `i64.const`.
    I64Const(i64),
    /// `f32.const`, as bits.
    F32Const(u32),
    /// `f64.const`, as bits.
    F64Const(u64),
    /// `v128.const`, as bits.
    V128Const(u128),
    /// `global.get` of an imported global (or, with extended constants, an earlier one).
    GlobalGet(GlobalIndex),
    /// `ref.null`.
    RefNull,
    /// `ref.func`.
    RefFunc(FuncIndex),
    /// `i32.add`.
    I32Add,
    /// `i32.sub`.
    I32Sub,
    /// `i32.mul`.
    I32Mul,
    /// `i64.add`.
    I64Add,
    /// `i64.sub`.
    I64Sub,
    /// `i64.mul`.
    I64Mul,
}

/// A constant expression, evaluated at instantiation on a small value stack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConstExpr {
    /// The operations in order.
    pub ops: Box<[ConstOp]>,
}

impl ConstExpr {
    /// The value of the expression if it is a single integer constant.
    pub fn as_constant_offset(&self) -> Option<u64> {
        match *self.ops {
            [ConstOp::I32Const(v)] => Some(u64::from(v as u32)),
            [ConstOp::I64Const(v)] => Some(v as u64),
            _ => None,
        }
    }
}

/// Where an element segment's items go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ElemSegmentMode {
    /// Copied into a table at instantiation.
    Active {
        /// The table.
        table: TableIndex,
        /// The first slot written.
        offset: ConstExpr,
    },
    /// Only used by `table.init`.
    Passive,
    /// Only declares functions for `ref.func`.
    Declared,
}

/// An element segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElemSegment {
    /// Its mode.
    pub mode: ElemSegmentMode,
    /// Its items, each a constant expression producing a reference.
    pub items: Box<[ConstExpr]>,
}

/// A data segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSegment {
    /// For an active segment, the memory and the offset expression.
    pub active: Option<(MemoryIndex, ConstExpr)>,
    /// Where its bytes are in the module's data (all segments' bytes one after another,
    /// kept beside the metadata: [`ModuleTranslation::data`](crate::ModuleTranslation),
    /// then the artifact's data section).
    pub range: core::ops::Range<u32>,
}

impl DataSegment {
    /// The segment's bytes in `data`, the module's data; empty if `data` is too short.
    pub fn bytes<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        data.get(self.range.start as usize..self.range.end as usize)
            .unwrap_or_default()
    }

    /// The segment's length in bytes.
    pub fn len(&self) -> usize {
        (self.range.end - self.range.start) as usize
    }

    /// Whether the segment has no bytes.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }
}

/// Serializes bytes as one byte string rather than a sequence of numbers, so that they
/// load with one copy.
pub(crate) mod byte_string {
    use core::fmt;
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use serde::ser::Serializer;

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(bytes: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes.as_ref())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: From<Vec<u8>>>(d: D) -> Result<T, D::Error> {
        d.deserialize_byte_buf(Bytes).map(T::from)
    }

    struct Bytes;

    impl<'de> Visitor<'de> for Bytes {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Self::Value, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(byte) = seq.next_element()? {
                out.push(byte);
            }
            Ok(out)
        }
    }
}

/// The names of functions from the name section: one string and an index sorted by
/// function, so that however many names a module has, they load with two copies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FuncNames {
    /// The names, one after another.
    text: String,
    /// `(function, end of its name in text)` as little-endian `u32` pairs, sorted by
    /// function; a name starts where the previous one ends.
    #[serde(with = "byte_string")]
    index: Vec<u8>,
}

impl FuncNames {
    fn entry(&self, i: usize) -> (u32, usize) {
        let at = i * 8;
        let word =
            |at: usize| u32::from_le_bytes(self.index[at..at + 4].try_into().expect("4 bytes"));
        (word(at), word(at + 4) as usize)
    }

    fn len(&self) -> usize {
        self.index.len() / 8
    }

    /// The name of function `index`.
    pub fn get(&self, index: FuncIndex) -> Option<&str> {
        let key = index.as_u32();
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.entry(mid).0.cmp(&key) {
                core::cmp::Ordering::Less => lo = mid + 1,
                core::cmp::Ordering::Greater => hi = mid,
                core::cmp::Ordering::Equal => {
                    let start = mid.checked_sub(1).map_or(0, |p| self.entry(p).1);
                    return self.text.get(start..self.entry(mid).1);
                }
            }
        }
        None
    }

    /// Every name with its function, in function order.
    pub fn iter(&self) -> impl Iterator<Item = (FuncIndex, &str)> + '_ {
        (0..self.len()).map(|i| {
            let start = i.checked_sub(1).map_or(0, |p| self.entry(p).1);
            let (func, end) = self.entry(i);
            (FuncIndex::from_u32(func), &self.text[start..end])
        })
    }

    /// Names function `index`, replacing an earlier name.
    ///
    /// # Panics
    /// Panics if the names grow beyond 4 GiB.
    pub fn insert(&mut self, index: FuncIndex, name: &str) {
        let last = self.len().checked_sub(1).map(|i| self.entry(i).0);
        if last.is_some_and(|last| last >= index.as_u32()) {
            // Out of order (name sections list functions in order, so this is rare).
            let mut all: BTreeMap<FuncIndex, String> =
                self.iter().map(|(f, n)| (f, n.to_owned())).collect();
            all.insert(index, name.to_owned());
            *self = FuncNames::default();
            for (f, n) in &all {
                self.insert(*f, n);
            }
            return;
        }
        self.text.push_str(name);
        let end = u32::try_from(self.text.len()).expect("names shorter than 4 GiB");
        self.index.extend_from_slice(&index.as_u32().to_le_bytes());
        self.index.extend_from_slice(&end.to_le_bytes());
    }
}

/// The metadata of a validated module.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Module {
    /// The module's name from the name section.
    pub name: Option<String>,
    /// The type section.
    pub types: PrimaryMap<TypeIndex, WasmFuncType>,
    /// All functions, imported ones first.
    pub functions: PrimaryMap<FuncIndex, ModuleFunction>,
    /// All tables, imported ones first.
    pub tables: PrimaryMap<TableIndex, Table>,
    /// All memories, imported ones first.
    pub memories: PrimaryMap<MemoryIndex, Memory>,
    /// All globals, imported ones first.
    pub globals: PrimaryMap<GlobalIndex, Global>,
    /// All exception tags, imported ones first.
    pub tags: PrimaryMap<TagIndex, Tag>,
    /// Initializers of the defined globals.
    pub global_initializers: PrimaryMap<DefinedGlobalIndex, ConstExpr>,
    /// The initializer expression of each defined table that has one (function
    /// references); a table without one starts with null elements.
    pub table_initializers: PrimaryMap<DefinedTableIndex, Option<ConstExpr>>,
    /// Imports in declaration order.
    pub imports: Vec<Import>,
    /// Exports in declaration order.
    pub exports: Vec<Export>,
    /// Export positions by name. Not serialized: see [`Module::rebuild_export_names`].
    #[serde(skip)]
    pub export_names: HashMap<String, usize>,
    /// The start function.
    pub start_func: Option<FuncIndex>,
    /// Element segments.
    pub elem_segments: PrimaryMap<ElemIndex, ElemSegment>,
    /// Data segments.
    pub data_segments: PrimaryMap<DataIndex, DataSegment>,
    /// Function names from the name section. Ordered so that serializing a module always
    /// writes the same bytes.
    pub func_names: FuncNames,
    /// Number of imported functions.
    pub num_imported_funcs: usize,
    /// Number of imported tables.
    pub num_imported_tables: usize,
    /// Number of imported memories.
    pub num_imported_memories: usize,
    /// Number of imported globals.
    pub num_imported_globals: usize,
    /// Number of imported tags.
    pub num_imported_tags: usize,
    /// Number of functions with a `func_refs` slot.
    pub num_escaped_funcs: usize,
    /// What the defined funcref tables start with, resolved lazily at run time.
    pub table_initialization: crate::TableInitialization,
    /// Where each defined memory's copy-on-write image lies in the module's data, if it
    /// has one (see [`MemoryImageLayout`](crate::MemoryImageLayout)).
    pub memory_images: crate::MemoryImages,
}

macro_rules! index_space {
    ($defined:ident, $is_imported:ident, $to_all:ident, $all:ident, $def:ident, $imported:ident) => {
        /// The defined index of `index`, or `None` if it is imported.
        pub fn $defined(&self, index: $all) -> Option<$def> {
            index.index().checked_sub(self.$imported).map($def::new)
        }

        /// Whether `index` is imported.
        pub fn $is_imported(&self, index: $all) -> bool {
            index.index() < self.$imported
        }

        /// The index in the whole index space of a defined entity.
        pub fn $to_all(&self, index: $def) -> $all {
            $all::new(self.$imported + index.index())
        }
    };
}

impl Module {
    /// The initializer expression of defined table `table`, if it has one.
    pub fn table_initializer(&self, table: DefinedTableIndex) -> Option<&ConstExpr> {
        self.table_initializers.get(table)?.as_ref()
    }

    index_space!(
        defined_func_index,
        is_imported_function,
        func_index,
        FuncIndex,
        DefinedFuncIndex,
        num_imported_funcs
    );
    index_space!(
        defined_table_index,
        is_imported_table,
        table_index,
        TableIndex,
        DefinedTableIndex,
        num_imported_tables
    );
    index_space!(
        defined_memory_index,
        is_imported_memory,
        memory_index,
        MemoryIndex,
        DefinedMemoryIndex,
        num_imported_memories
    );
    index_space!(
        defined_global_index,
        is_imported_global,
        global_index,
        GlobalIndex,
        DefinedGlobalIndex,
        num_imported_globals
    );
    index_space!(
        defined_tag_index,
        is_imported_tag,
        tag_index,
        TagIndex,
        DefinedTagIndex,
        num_imported_tags
    );

    /// The number of functions defined by the module.
    pub fn num_defined_funcs(&self) -> usize {
        self.functions.len() - self.num_imported_funcs
    }

    /// The number of globals defined by the module.
    pub fn num_defined_globals(&self) -> usize {
        self.globals.len() - self.num_imported_globals
    }

    /// The number of tags defined by the module.
    pub fn num_defined_tags(&self) -> usize {
        self.tags.len() - self.num_imported_tags
    }

    /// The type of tag `index`: its parameters are the exception's fields.
    pub fn tag_type(&self, index: TagIndex) -> &WasmFuncType {
        &self.types[self.tags[index].signature]
    }

    /// The number of tables defined by the module.
    pub fn num_defined_tables(&self) -> usize {
        self.tables.len() - self.num_imported_tables
    }

    /// The number of memories defined by the module.
    pub fn num_defined_memories(&self) -> usize {
        self.memories.len() - self.num_imported_memories
    }

    /// The type of function `index`.
    pub fn func_type(&self, index: FuncIndex) -> &WasmFuncType {
        &self.types[self.functions[index].signature]
    }

    /// Fills [`Module::export_names`] from [`Module::exports`]. Serialization skips the
    /// name index, so call this after deserializing a module.
    pub fn rebuild_export_names(&mut self) {
        self.export_names = self
            .exports
            .iter()
            .enumerate()
            .map(|(i, export)| (export.name.clone(), i))
            .collect();
    }

    /// The export called `name`.
    pub fn export(&self, name: &str) -> Option<&Export> {
        self.export_names.get(name).map(|&i| &self.exports[i])
    }

    /// The name of function `index` from the name section, if any.
    pub fn func_name(&self, index: FuncIndex) -> Option<&str> {
        self.func_names.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_come_first_in_index_spaces() {
        let module = Module {
            num_imported_funcs: 2,
            ..Module::default()
        };
        assert_eq!(module.defined_func_index(FuncIndex::new(1)), None);
        assert_eq!(
            module.defined_func_index(FuncIndex::new(3)),
            Some(DefinedFuncIndex::new(1))
        );
        assert_eq!(
            module.func_index(DefinedFuncIndex::new(0)),
            FuncIndex::new(2)
        );
        assert!(module.is_imported_function(FuncIndex::new(0)));
    }

    #[test]
    fn constant_offsets_are_zero_extended() {
        let e = ConstExpr {
            ops: Box::new([ConstOp::I32Const(-1)]),
        };
        assert_eq!(e.as_constant_offset(), Some(0xffff_ffff));
        let e = ConstExpr {
            ops: Box::new([ConstOp::GlobalGet(GlobalIndex::new(0))]),
        };
        assert_eq!(e.as_constant_offset(), None);
    }

    #[test]
    fn modules_round_trip_through_serde() {
        let wasm = wat::parse_str(
            r#"(module $m
                (import "env" "f" (func $f (param i32)))
                (import "env" "g" (global $g i32))
                (table 4 funcref)
                (memory (export "mem") 1 2)
                (global (mut i64) (i64.const -5))
                (func $h (export "h") (result i32) i32.const 1)
                (elem (i32.const 1) $h $f)
                (elem declare func $h)
                (data (global.get $g) "hi")
                (start $h2)
                (func $h2))"#,
        )
        .unwrap();
        let module = crate::translate_module(&wasm, wasmparser::WasmFeatures::default())
            .unwrap()
            .module;
        let bytes = postcard::to_allocvec(&module).unwrap();
        let mut back: Module = postcard::from_bytes(&bytes).unwrap();
        assert!(back.export_names.is_empty());
        back.rebuild_export_names();
        assert_eq!(back, module);
        // Serializing is deterministic: the copy writes the same bytes.
        assert_eq!(postcard::to_allocvec(&back).unwrap(), bytes);
        assert_eq!(
            back.export("h").unwrap().index,
            module.export("h").unwrap().index
        );
        assert_eq!(back.func_name(FuncIndex::new(1)), Some("h"));
        assert_eq!(back.name.as_deref(), Some("m"));
    }

    #[test]
    fn func_names_are_found_in_any_insertion_order() {
        let mut names = FuncNames::default();
        names.insert(FuncIndex::from_u32(2), "two");
        names.insert(FuncIndex::from_u32(5), "five");
        names.insert(FuncIndex::from_u32(0), "zero");
        names.insert(FuncIndex::from_u32(5), "FIVE");
        assert_eq!(names.get(FuncIndex::from_u32(0)), Some("zero"));
        assert_eq!(names.get(FuncIndex::from_u32(2)), Some("two"));
        assert_eq!(names.get(FuncIndex::from_u32(5)), Some("FIVE"));
        assert_eq!(names.get(FuncIndex::from_u32(1)), None);
        assert_eq!(names.get(FuncIndex::from_u32(9)), None);
        let all: Vec<_> = names.iter().map(|(f, n)| (f.as_u32(), n)).collect();
        assert_eq!(all, [(0, "zero"), (2, "two"), (5, "FIVE")]);
        let bytes = postcard::to_allocvec(&names).unwrap();
        assert_eq!(postcard::from_bytes::<FuncNames>(&bytes).unwrap(), names);
    }
}
