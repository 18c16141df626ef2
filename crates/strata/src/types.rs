//! Types of values and of the entities a module imports and exports.

use core::fmt;
use strata_environ::{WasmFuncType, WasmRefType, WasmValType};

/// A reference type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct RefType(pub(crate) WasmRefType);

impl RefType {
    /// `funcref`.
    pub const FUNCREF: RefType = RefType(WasmRefType::FUNCREF);
    /// `externref`.
    pub const EXTERNREF: RefType = RefType(WasmRefType::EXTERNREF);
    /// `exnref`.
    pub const EXNREF: RefType = RefType(WasmRefType::EXNREF);

    /// Whether `null` is a value of this type.
    pub fn is_nullable(&self) -> bool {
        self.0.nullable
    }

    /// Whether this references functions: `funcref`, `(ref func)`, a typed function
    /// reference or the `nofunc` bottom type.
    pub fn is_func(&self) -> bool {
        self.0.heap_type.is_func()
    }

    /// Whether this references exceptions: `exnref` and its bottom type `nullexnref`.
    pub fn is_exn(&self) -> bool {
        self.0.heap_type.is_exn()
    }

    /// Whether every value of this type is a value of `other`.
    pub fn matches(&self, other: &RefType) -> bool {
        self.0.is_subtype_of(other.0)
    }
}

impl fmt::Display for RefType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The type of a value.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ValType {
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
    Ref(RefType),
}

impl ValType {
    /// `funcref`.
    pub const FUNCREF: ValType = ValType::Ref(RefType::FUNCREF);
    /// `externref`.
    pub const EXTERNREF: ValType = ValType::Ref(RefType::EXTERNREF);
    /// `exnref`.
    pub const EXNREF: ValType = ValType::Ref(RefType::EXNREF);

    /// Whether every value of this type is a value of `other`: the same type or, for
    /// references, a subtype.
    pub fn matches(&self, other: &ValType) -> bool {
        self.to_wasm().is_subtype_of(other.to_wasm())
    }

    pub(crate) fn from_wasm(ty: WasmValType) -> ValType {
        match ty {
            WasmValType::I32 => ValType::I32,
            WasmValType::I64 => ValType::I64,
            WasmValType::F32 => ValType::F32,
            WasmValType::F64 => ValType::F64,
            WasmValType::V128 => ValType::V128,
            WasmValType::Ref(r) => ValType::Ref(RefType(r)),
        }
    }

    pub(crate) fn to_wasm(self) -> WasmValType {
        match self {
            ValType::I32 => WasmValType::I32,
            ValType::I64 => WasmValType::I64,
            ValType::F32 => WasmValType::F32,
            ValType::F64 => WasmValType::F64,
            ValType::V128 => WasmValType::V128,
            ValType::Ref(r) => WasmValType::Ref(r.0),
        }
    }
}

impl fmt::Display for ValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_wasm().fmt(f)
    }
}

/// The type of a function.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FuncType(pub(crate) WasmFuncType);

impl FuncType {
    /// A function type with these parameters and results. (The engine argument mirrors
    /// wasmtime's API; strata's function types are not tied to an engine.)
    #[cfg(feature = "runtime")]
    pub fn new(
        _engine: &crate::Engine,
        params: impl IntoIterator<Item = ValType>,
        results: impl IntoIterator<Item = ValType>,
    ) -> FuncType {
        FuncType::from_types(params, results)
    }

    #[cfg(feature = "runtime")]
    pub(crate) fn from_types(
        params: impl IntoIterator<Item = ValType>,
        results: impl IntoIterator<Item = ValType>,
    ) -> FuncType {
        let params: Vec<_> = params.into_iter().map(ValType::to_wasm).collect();
        let results: Vec<_> = results.into_iter().map(ValType::to_wasm).collect();
        FuncType(WasmFuncType::new(params, results))
    }

    /// The parameter types.
    pub fn params(&self) -> impl ExactSizeIterator<Item = ValType> + '_ {
        self.0.params().iter().map(|&t| ValType::from_wasm(t))
    }

    /// The result types.
    pub fn results(&self) -> impl ExactSizeIterator<Item = ValType> + '_ {
        self.0.results().iter().map(|&t| ValType::from_wasm(t))
    }
}

impl fmt::Display for FuncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether a global can be changed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mutability {
    /// It cannot.
    Const,
    /// It can.
    Var,
}

/// The type of a global.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct GlobalType(pub(crate) strata_environ::Global);

impl GlobalType {
    /// A global holding `content`.
    pub fn new(content: ValType, mutability: Mutability) -> GlobalType {
        GlobalType(strata_environ::Global {
            ty: content.to_wasm(),
            mutable: mutability == Mutability::Var,
        })
    }

    /// The type of the value.
    pub fn content(&self) -> ValType {
        ValType::from_wasm(self.0.ty)
    }

    /// Whether a global of this type can be imported as one of type `want`: a
    /// mutable global only with its own type (both sides may write it), an immutable
    /// one with a subtype.
    #[cfg(feature = "runtime")]
    pub(crate) fn matches(&self, want: &GlobalType) -> bool {
        match (self.0.mutable, want.0.mutable) {
            (true, true) => self.0.ty == want.0.ty,
            (false, false) => self.0.ty.is_subtype_of(want.0.ty),
            _ => false,
        }
    }

    /// Whether it can be changed.
    pub fn mutability(&self) -> Mutability {
        if self.0.mutable {
            Mutability::Var
        } else {
            Mutability::Const
        }
    }
}

/// The type of a linear memory: its index type, page size and limits (in pages).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct MemoryType(pub(crate) strata_environ::Memory);

impl MemoryType {
    /// A 32-bit memory of at least `minimum` and at most `maximum` 64 KiB pages.
    ///
    /// # Panics
    /// If `minimum` exceeds `maximum` or either is more than 65,536 pages (4 GiB); use
    /// [`MemoryTypeBuilder`] to get an error instead.
    pub fn new(minimum: u32, maximum: Option<u32>) -> MemoryType {
        MemoryTypeBuilder::new()
            .min(u64::from(minimum))
            .max(maximum.map(u64::from))
            .build()
            .unwrap_or_else(|err| panic!("invalid memory type: {err}"))
    }

    /// A 64-bit memory (memory64) of at least `minimum` and at most `maximum` 64 KiB
    /// pages.
    ///
    /// # Panics
    /// If `minimum` exceeds `maximum` or either is more than 2^48 pages (the 64-bit
    /// address space); use [`MemoryTypeBuilder`] to get an error instead.
    pub fn new64(minimum: u64, maximum: Option<u64>) -> MemoryType {
        MemoryTypeBuilder::new()
            .memory64(true)
            .min(minimum)
            .max(maximum)
            .build()
            .unwrap_or_else(|err| panic!("invalid memory type: {err}"))
    }

    /// A builder for memory types with other page sizes or index types.
    pub fn builder() -> MemoryTypeBuilder {
        MemoryTypeBuilder::new()
    }

    /// The minimum size in pages.
    pub fn minimum(&self) -> u64 {
        self.0.minimum
    }

    /// The maximum size in pages.
    pub fn maximum(&self) -> Option<u64> {
        self.0.maximum
    }

    /// Whether addresses are 64-bit.
    pub fn is_64(&self) -> bool {
        self.0.memory64
    }

    /// The size of a page in bytes: 65,536 unless the memory uses the
    /// custom-page-sizes proposal.
    pub fn page_size(&self) -> u64 {
        self.0.page_size()
    }

    /// The base-2 logarithm of [`MemoryType::page_size`].
    pub fn page_size_log2(&self) -> u8 {
        self.0.page_size_log2
    }
}

/// Builds a [`MemoryType`], checking its limits: by default a 32-bit memory of 64 KiB
/// pages with a minimum of 0 pages and no maximum.
#[derive(Copy, Clone, Debug)]
pub struct MemoryTypeBuilder {
    ty: strata_environ::Memory,
}

impl Default for MemoryTypeBuilder {
    fn default() -> Self {
        MemoryTypeBuilder::new()
    }
}

impl MemoryTypeBuilder {
    /// The default type: 32-bit, 64 KiB pages, at least 0 pages, no maximum.
    pub fn new() -> MemoryTypeBuilder {
        MemoryTypeBuilder {
            ty: strata_environ::Memory {
                minimum: 0,
                maximum: None,
                memory64: false,
                shared: false,
                page_size_log2: 16,
            },
        }
    }

    /// The minimum size in pages.
    pub fn min(&mut self, minimum: u64) -> &mut Self {
        self.ty.minimum = minimum;
        self
    }

    /// The maximum size in pages, if any.
    pub fn max(&mut self, maximum: Option<u64>) -> &mut Self {
        self.ty.maximum = maximum;
        self
    }

    /// Whether the memory is indexed with 64-bit addresses (memory64).
    pub fn memory64(&mut self, memory64: bool) -> &mut Self {
        self.ty.memory64 = memory64;
        self
    }

    /// The base-2 logarithm of the page size: 16 (64 KiB, the default) or, with the
    /// custom-page-sizes proposal, 0 (1-byte pages).
    pub fn page_size_log2(&mut self, page_size_log2: u8) -> &mut Self {
        self.ty.page_size_log2 = page_size_log2;
        self
    }

    /// The memory type, or an error saying which rule it breaks: the page size must be
    /// 1 byte or 64 KiB, the minimum at most the maximum, and both limits must fit the
    /// address space of the index type.
    pub fn build(&self) -> crate::Result<MemoryType> {
        let ty = self.ty;
        if ty.page_size_log2 != 0 && ty.page_size_log2 != 16 {
            return Err(crate::Error::msg(format!(
                "invalid memory type: a page size of 2^{} bytes (only 1 byte and 64 KiB \
                 pages exist)",
                ty.page_size_log2
            )));
        }
        if let Some(maximum) = ty.maximum
            && ty.minimum > maximum
        {
            return Err(crate::Error::msg(format!(
                "invalid memory type: minimum {} pages exceeds maximum {maximum} pages",
                ty.minimum
            )));
        }
        let bits = if ty.memory64 { 64 } else { 32 };
        let addressable = ty.addressable_pages();
        let largest = ty.maximum.unwrap_or(ty.minimum).max(ty.minimum);
        if largest > addressable {
            return Err(crate::Error::msg(format!(
                "invalid memory type: {largest} pages of {} bytes do not fit a {bits}-bit \
                 address space (at most {addressable} pages)",
                ty.page_size()
            )));
        }
        Ok(MemoryType(ty))
    }
}

/// The type of a table.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableType(pub(crate) strata_environ::Table);

impl TableType {
    /// A table of `element` references with at least `minimum` and at most `maximum`
    /// slots, indexed with `i32`.
    pub fn new(element: RefType, minimum: u32, maximum: Option<u32>) -> TableType {
        TableType(strata_environ::Table {
            element: element.0,
            minimum: u64::from(minimum),
            maximum: maximum.map(u64::from),
            table64: false,
        })
    }

    /// A 64-bit table (table64, part of memory64): indexed with `i64`, with at least
    /// `minimum` and at most `maximum` slots.
    pub fn new64(element: RefType, minimum: u64, maximum: Option<u64>) -> TableType {
        TableType(strata_environ::Table {
            element: element.0,
            minimum,
            maximum,
            table64: true,
        })
    }

    /// Whether the table is indexed with `i64`.
    pub fn is_64(&self) -> bool {
        self.0.table64
    }

    /// The element type.
    pub fn element(&self) -> RefType {
        RefType(self.0.element)
    }

    /// The minimum number of elements.
    pub fn minimum(&self) -> u64 {
        self.0.minimum
    }

    /// The maximum number of elements.
    pub fn maximum(&self) -> Option<u64> {
        self.0.maximum
    }
}

/// The type of an import or export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternType {
    /// A function.
    Func(FuncType),
    /// A global.
    Global(GlobalType),
    /// A table.
    Table(TableType),
    /// A linear memory.
    Memory(MemoryType),
    /// An exception tag.
    Tag(TagType),
}

/// The type of an exception tag: a function type whose parameters are the fields of
/// its exceptions (and whose results are empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagType(pub(crate) FuncType);

impl TagType {
    /// The tag type of exceptions with `ty`'s parameters as fields.
    pub fn new(ty: FuncType) -> TagType {
        TagType(ty)
    }

    /// Its function type.
    pub fn ty(&self) -> &FuncType {
        &self.0
    }
}

/// The type of an exception object: the fields its tag's type gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExnType(pub(crate) TagType);

impl ExnType {
    /// The type of the exceptions of tags of type `ty`.
    pub fn from_tag_type(ty: &TagType) -> ExnType {
        ExnType(ty.clone())
    }

    /// The tag type its exceptions have.
    pub fn tag_type(&self) -> &TagType {
        &self.0
    }

    /// The types of its fields, in order.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = ValType> + '_ {
        self.0.0.params()
    }
}

impl fmt::Display for ExternType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExternType::Func(t) => t.fmt(f),
            ExternType::Global(t) => t.0.fmt(f),
            ExternType::Table(t) => t.0.fmt(f),
            ExternType::Memory(t) => t.0.fmt(f),
            ExternType::Tag(t) => write!(f, "tag {}", t.0),
        }
    }
}

/// One import of a module.
#[derive(Clone, Debug)]
pub struct ImportType<'a> {
    pub(crate) module: &'a str,
    pub(crate) name: &'a str,
    pub(crate) ty: ExternType,
}

impl<'a> ImportType<'a> {
    /// The module name.
    pub fn module(&self) -> &'a str {
        self.module
    }
    /// The field name.
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// The expected type.
    pub fn ty(&self) -> ExternType {
        self.ty.clone()
    }
}

/// One export of a module.
#[derive(Clone, Debug)]
pub struct ExportType<'a> {
    pub(crate) name: &'a str,
    pub(crate) ty: ExternType,
}

impl<'a> ExportType<'a> {
    /// The export's name.
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// Its type.
    pub fn ty(&self) -> ExternType {
        self.ty.clone()
    }
}

/// Whether `actual` (what is supplied) may be used where `expected` is imported.
#[cfg(feature = "runtime")]
pub(crate) fn limits_match(
    actual_min: u64,
    actual_max: Option<u64>,
    expected_min: u64,
    expected_max: Option<u64>,
) -> bool {
    actual_min >= expected_min
        && match (actual_max, expected_max) {
            (_, None) => true,
            (Some(a), Some(e)) => a <= e,
            (None, Some(_)) => false,
        }
}

#[cfg(all(test, feature = "runtime"))]
mod tests {
    use super::*;

    #[test]
    fn import_limits_follow_the_spec_subtyping() {
        assert!(limits_match(2, Some(5), 1, Some(6)));
        assert!(!limits_match(1, None, 1, Some(6)));
        assert!(!limits_match(0, Some(5), 1, None));
        assert!(limits_match(1, None, 1, None));
    }
}
