//! WebAssembly types as strata records them, independent of the parser's own types.

use crate::TypeIndex;
use core::fmt;
use serde::{Deserialize, Serialize};

/// The size of a WebAssembly page in bytes.
pub const WASM_PAGE_SIZE: u64 = 0x1_0000;

/// Which function type a concrete reference type names.
///
/// A module's metadata names its own types by their index in its type section. The
/// engine gives every distinct function type an engine-wide id, so types of different
/// modules compare as ids: the public API's types, and the types of tables and
/// globals at run time, name types that way.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EngineOrModuleTypeIndex {
    /// A type of the module's type section.
    Module(TypeIndex),
    /// A type registered with the engine, by its id.
    Engine(u32),
}

impl EngineOrModuleTypeIndex {
    /// The engine's id for a module's type, by `type_ids`, the engine ids of the
    /// module's types in order; an engine id is returned as is.
    pub fn to_engine(self, type_ids: &[u32]) -> EngineOrModuleTypeIndex {
        match self {
            EngineOrModuleTypeIndex::Module(i) => {
                EngineOrModuleTypeIndex::Engine(type_ids[i.as_u32() as usize])
            }
            engine => engine,
        }
    }
}

impl fmt::Display for EngineOrModuleTypeIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineOrModuleTypeIndex::Module(i) => write!(f, "{}", i.as_u32()),
            EngineOrModuleTypeIndex::Engine(id) => write!(f, "engine-type-{id}"),
        }
    }
}

/// The heap type of a reference.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WasmHeapType {
    /// Any function.
    Func,
    /// Functions of one type.
    ConcreteFunc(EngineOrModuleTypeIndex),
    /// No function: the bottom of the function types, with `null` as its only value.
    NoFunc,
    /// Any host value.
    Extern,
    /// No host value: the bottom of the extern types.
    NoExtern,
    /// Any exception (`exnref`'s heap type).
    Exn,
    /// No exception: the bottom of the exception types.
    NoExn,
}

impl WasmHeapType {
    /// Whether references of this type point to functions (or are null references of
    /// the function hierarchy).
    pub fn is_func(self) -> bool {
        matches!(
            self,
            WasmHeapType::Func | WasmHeapType::ConcreteFunc(_) | WasmHeapType::NoFunc
        )
    }

    /// Whether references of this type point to exceptions (or are null references of
    /// the exception hierarchy).
    pub fn is_exn(self) -> bool {
        matches!(self, WasmHeapType::Exn | WasmHeapType::NoExn)
    }

    /// Whether this heap type is a subtype of `other`. Both must name types the same
    /// way (both a module's indices, or both engine ids). Without the GC proposal a
    /// function type has no declared supertypes, so a concrete type is a subtype only
    /// of itself and `func`.
    pub fn is_subtype_of(self, other: WasmHeapType) -> bool {
        use WasmHeapType::*;
        match (self, other) {
            (a, b) if a == b => true,
            (ConcreteFunc(_) | NoFunc, Func) | (NoFunc, ConcreteFunc(_)) => true,
            (NoExtern, Extern) | (NoExn, Exn) => true,
            _ => false,
        }
    }

    /// This heap type with each concrete type index mapped by `f`.
    pub fn map_index(
        self,
        f: &mut impl FnMut(EngineOrModuleTypeIndex) -> EngineOrModuleTypeIndex,
    ) -> WasmHeapType {
        match self {
            WasmHeapType::ConcreteFunc(i) => WasmHeapType::ConcreteFunc(f(i)),
            other => other,
        }
    }
}

impl fmt::Display for WasmHeapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WasmHeapType::Func => f.write_str("func"),
            WasmHeapType::ConcreteFunc(i) => i.fmt(f),
            WasmHeapType::NoFunc => f.write_str("nofunc"),
            WasmHeapType::Extern => f.write_str("extern"),
            WasmHeapType::NoExtern => f.write_str("noextern"),
            WasmHeapType::Exn => f.write_str("exn"),
            WasmHeapType::NoExn => f.write_str("noexn"),
        }
    }
}

/// A reference type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WasmRefType {
    /// Whether `null` is a value of this type.
    pub nullable: bool,
    /// What the reference points to.
    pub heap_type: WasmHeapType,
}

impl WasmRefType {
    /// `funcref`.
    pub const FUNCREF: WasmRefType = WasmRefType {
        nullable: true,
        heap_type: WasmHeapType::Func,
    };
    /// `externref`.
    pub const EXTERNREF: WasmRefType = WasmRefType {
        nullable: true,
        heap_type: WasmHeapType::Extern,
    };
    /// `exnref`.
    pub const EXNREF: WasmRefType = WasmRefType {
        nullable: true,
        heap_type: WasmHeapType::Exn,
    };

    /// Whether every value of this type is a value of `other` (with types named the
    /// same way on both sides).
    pub fn is_subtype_of(self, other: WasmRefType) -> bool {
        (other.nullable || !self.nullable) && self.heap_type.is_subtype_of(other.heap_type)
    }

    /// This type with each concrete type index mapped by `f`.
    pub fn map_index(
        self,
        f: &mut impl FnMut(EngineOrModuleTypeIndex) -> EngineOrModuleTypeIndex,
    ) -> WasmRefType {
        WasmRefType {
            nullable: self.nullable,
            heap_type: self.heap_type.map_index(f),
        }
    }
}

impl fmt::Display for WasmRefType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.nullable, self.heap_type) {
            (true, WasmHeapType::Func) => f.write_str("funcref"),
            (true, WasmHeapType::Extern) => f.write_str("externref"),
            (true, WasmHeapType::NoFunc) => f.write_str("nullfuncref"),
            (true, WasmHeapType::NoExtern) => f.write_str("nullexternref"),
            (true, WasmHeapType::Exn) => f.write_str("exnref"),
            (true, WasmHeapType::NoExn) => f.write_str("nullexnref"),
            (true, h) => write!(f, "(ref null {h})"),
            (false, h) => write!(f, "(ref {h})"),
        }
    }
}

/// A value type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WasmValType {
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 128-bit vector.
    V128,
    /// A reference.
    Ref(WasmRefType),
}

impl fmt::Display for WasmValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WasmValType::I32 => f.write_str("i32"),
            WasmValType::I64 => f.write_str("i64"),
            WasmValType::F32 => f.write_str("f32"),
            WasmValType::F64 => f.write_str("f64"),
            WasmValType::V128 => f.write_str("v128"),
            WasmValType::Ref(r) => r.fmt(f),
        }
    }
}

impl WasmValType {
    /// Converts wasmparser's value type; `None` for types strata does not support.
    pub fn from_wasmparser(ty: wasmparser::ValType) -> Option<WasmValType> {
        Some(match ty {
            wasmparser::ValType::I32 => WasmValType::I32,
            wasmparser::ValType::I64 => WasmValType::I64,
            wasmparser::ValType::F32 => WasmValType::F32,
            wasmparser::ValType::F64 => WasmValType::F64,
            wasmparser::ValType::V128 => WasmValType::V128,
            wasmparser::ValType::Ref(r) => WasmValType::Ref(WasmRefType::from_wasmparser(r)?),
        })
    }

    /// Whether every value of this type is a value of `other`.
    pub fn is_subtype_of(self, other: WasmValType) -> bool {
        match (self, other) {
            (WasmValType::Ref(a), WasmValType::Ref(b)) => a.is_subtype_of(b),
            (a, b) => a == b,
        }
    }

    /// This type with each concrete type index mapped by `f`.
    pub fn map_index(
        self,
        f: &mut impl FnMut(EngineOrModuleTypeIndex) -> EngineOrModuleTypeIndex,
    ) -> WasmValType {
        match self {
            WasmValType::Ref(r) => WasmValType::Ref(r.map_index(f)),
            other => other,
        }
    }
}

impl WasmRefType {
    /// Converts wasmparser's reference type; `None` for types strata does not support.
    pub fn from_wasmparser(ty: wasmparser::RefType) -> Option<WasmRefType> {
        use wasmparser::{AbstractHeapType, HeapType, UnpackedIndex};
        let heap_type = match ty.heap_type() {
            HeapType::Abstract { shared: false, ty } => match ty {
                AbstractHeapType::Func => WasmHeapType::Func,
                AbstractHeapType::NoFunc => WasmHeapType::NoFunc,
                AbstractHeapType::Extern => WasmHeapType::Extern,
                AbstractHeapType::NoExtern => WasmHeapType::NoExtern,
                AbstractHeapType::Exn => WasmHeapType::Exn,
                AbstractHeapType::NoExn => WasmHeapType::NoExn,
                _ => return None,
            },
            HeapType::Concrete(UnpackedIndex::Module(i)) => {
                WasmHeapType::ConcreteFunc(EngineOrModuleTypeIndex::Module(TypeIndex::from_u32(i)))
            }
            _ => return None,
        };
        Some(WasmRefType {
            nullable: ty.is_nullable(),
            heap_type,
        })
    }
}

/// A function type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WasmFuncType {
    params: Box<[WasmValType]>,
    results: Box<[WasmValType]>,
}

impl WasmFuncType {
    /// A function type with these parameters and results.
    pub fn new(
        params: impl Into<Box<[WasmValType]>>,
        results: impl Into<Box<[WasmValType]>>,
    ) -> Self {
        WasmFuncType {
            params: params.into(),
            results: results.into(),
        }
    }

    /// The parameter types.
    #[inline]
    pub fn params(&self) -> &[WasmValType] {
        &self.params
    }

    /// The result types.
    #[inline]
    pub fn results(&self) -> &[WasmValType] {
        &self.results
    }

    /// This type with each concrete type index in its parameters and results mapped
    /// by `f`.
    pub fn map_index(
        &self,
        mut f: impl FnMut(EngineOrModuleTypeIndex) -> EngineOrModuleTypeIndex,
    ) -> WasmFuncType {
        WasmFuncType {
            params: self.params.iter().map(|t| t.map_index(&mut f)).collect(),
            results: self.results.iter().map(|t| t.map_index(&mut f)).collect(),
        }
    }

    /// The number of `ValRaw` slots an array call of this type needs: enough for the
    /// parameters on entry and the results on return.
    #[inline]
    pub fn array_len(&self) -> usize {
        self.params.len().max(self.results.len())
    }
}

impl fmt::Display for WasmFuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(func")?;
        if !self.params.is_empty() {
            f.write_str(" (param")?;
            for p in self.params.iter() {
                write!(f, " {p}")?;
            }
            f.write_str(")")?;
        }
        if !self.results.is_empty() {
            f.write_str(" (result")?;
            for r in self.results.iter() {
                write!(f, " {r}")?;
            }
            f.write_str(")")?;
        }
        f.write_str(")")
    }
}

/// A linear memory's type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Memory {
    /// Minimum size in pages.
    pub minimum: u64,
    /// Maximum size in pages, if bounded.
    pub maximum: Option<u64>,
    /// Whether addresses are 64-bit.
    pub memory64: bool,
    /// Whether the memory is shared between threads.
    pub shared: bool,
    /// log2 of the page size (16 for 64 KiB pages).
    pub page_size_log2: u8,
}

impl Memory {
    /// The page size in bytes.
    pub fn page_size(&self) -> u64 {
        1 << self.page_size_log2
    }

    /// The most pages the memory's index type can address, as validation has it: 2^64
    /// bytes for a 64-bit memory (2^64 - 1 pages of 1 byte, the most a `u64` holds),
    /// and for a 32-bit one 4 GiB, but at most 2^32 - 1 pages, since `memory.size`
    /// returns the count as an `i32` read as unsigned.
    pub fn addressable_pages(&self) -> u64 {
        if self.memory64 {
            1u64.checked_shl(64 - u32::from(self.page_size_log2))
                .unwrap_or(u64::MAX)
        } else {
            ((1u64 << 32) >> self.page_size_log2).min(u64::from(u32::MAX))
        }
    }

    /// The largest number of pages this memory may ever have: its declared maximum,
    /// capped by what its index type can address.
    pub fn maximum_pages(&self) -> u64 {
        let addressable = self.addressable_pages();
        self.maximum.map_or(addressable, |m| m.min(addressable))
    }

    /// Converts wasmparser's memory type.
    pub fn from_wasmparser(ty: wasmparser::MemoryType) -> Memory {
        Memory {
            minimum: ty.initial,
            maximum: ty.maximum,
            memory64: ty.memory64,
            shared: ty.shared,
            page_size_log2: ty.page_size_log2.map_or(16, |l| l as u8),
        }
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(memory ")?;
        if self.memory64 {
            f.write_str("i64 ")?;
        }
        write!(f, "{}", self.minimum)?;
        if let Some(max) = self.maximum {
            write!(f, " {max}")?;
        }
        if self.shared {
            f.write_str(" shared")?;
        }
        if self.page_size_log2 != 16 {
            write!(f, " (pagesize {})", self.page_size())?;
        }
        f.write_str(")")
    }
}

/// A table's type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Table {
    /// The element type.
    pub element: WasmRefType,
    /// Minimum number of elements.
    pub minimum: u64,
    /// Maximum number of elements, if bounded.
    pub maximum: Option<u64>,
    /// Whether indices are 64-bit.
    pub table64: bool,
}

impl Table {
    /// This type with the module's type indices replaced by engine ids (see
    /// [`EngineOrModuleTypeIndex::to_engine`]).
    pub fn to_engine(self, type_ids: &[u32]) -> Table {
        Table {
            element: self.element.map_index(&mut |i| i.to_engine(type_ids)),
            ..self
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(table {}", self.minimum)?;
        if let Some(max) = self.maximum {
            write!(f, " {max}")?;
        }
        write!(f, " {})", self.element)
    }
}

/// A global's type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Global {
    /// The type of the value.
    pub ty: WasmValType,
    /// Whether `global.set` may change it.
    pub mutable: bool,
}

impl Global {
    /// This type with the module's type indices replaced by engine ids (see
    /// [`EngineOrModuleTypeIndex::to_engine`]).
    pub fn to_engine(self, type_ids: &[u32]) -> Global {
        Global {
            ty: self.ty.map_index(&mut |i| i.to_engine(type_ids)),
            mutable: self.mutable,
        }
    }
}

impl fmt::Display for Global {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mutable {
            write!(f, "(global (mut {}))", self.ty)
        } else {
            write!(f, "(global {})", self.ty)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_maximum_is_capped_by_the_index_type() {
        let m = Memory {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: 16,
        };
        assert_eq!(m.maximum_pages(), 65536);
        let m = Memory {
            maximum: Some(3),
            ..m
        };
        assert_eq!(m.maximum_pages(), 3);
    }

    #[test]
    fn func_types_print_like_the_text_format() {
        let ty = WasmFuncType::new([WasmValType::I32, WasmValType::F64], [WasmValType::I64]);
        assert_eq!(ty.to_string(), "(func (param i32 f64) (result i64))");
        assert_eq!(ty.array_len(), 2);
    }

    #[test]
    fn reference_subtyping_follows_nullability_and_the_function_hierarchy() {
        let concrete = |i, nullable| WasmRefType {
            nullable,
            heap_type: WasmHeapType::ConcreteFunc(EngineOrModuleTypeIndex::Engine(i)),
        };
        let non_null = |heap_type| WasmRefType {
            nullable: false,
            heap_type,
        };
        let null_func = WasmRefType {
            nullable: true,
            heap_type: WasmHeapType::NoFunc,
        };
        let t = concrete(3, false);
        assert!(t.is_subtype_of(concrete(3, true)));
        assert!(!concrete(3, true).is_subtype_of(t));
        assert!(t.is_subtype_of(non_null(WasmHeapType::Func)));
        assert!(t.is_subtype_of(WasmRefType::FUNCREF));
        assert!(!WasmRefType::FUNCREF.is_subtype_of(concrete(3, true)));
        assert!(!t.is_subtype_of(concrete(4, false)), "distinct types");
        assert!(null_func.is_subtype_of(concrete(3, true)));
        assert!(!null_func.is_subtype_of(t));
        assert!(!t.is_subtype_of(WasmRefType::EXTERNREF));
        assert!(non_null(WasmHeapType::NoExtern).is_subtype_of(WasmRefType::EXTERNREF));
        assert_eq!(t.to_string(), "(ref engine-type-3)");
        assert_eq!(null_func.to_string(), "nullfuncref");
    }
}
