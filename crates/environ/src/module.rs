//! [`Module`]: everything strata knows about a validated module except its code.

use crate::{
    DataIndex, DefinedFuncIndex, DefinedGlobalIndex, DefinedMemoryIndex, DefinedTableIndex,
    ElemIndex, FuncIndex, FuncRefIndex, Global, GlobalIndex, Memory, MemoryIndex, Table,
    TableIndex, TypeIndex, WasmFuncType,
};
use cranelift_entity::{EntityRef, PrimaryMap};
use std::collections::HashMap;

/// An entity in one of the module's index spaces.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum EntityIndex {
    /// A function.
    Function(FuncIndex),
    /// A table.
    Table(TableIndex),
    /// A linear memory.
    Memory(MemoryIndex),
    /// A global.
    Global(GlobalIndex),
}

/// One import of the module.
#[derive(Clone, Debug)]
pub struct Import {
    /// The module name.
    pub module: String,
    /// The field name.
    pub name: String,
    /// What the import defines in the module's index spaces.
    pub index: EntityIndex,
}

/// One export of the module.
#[derive(Clone, Debug)]
pub struct Export {
    /// The export's name.
    pub name: String,
    /// The exported entity.
    pub index: EntityIndex,
}

/// A function in the module's function index space.
#[derive(Copy, Clone, Debug)]
pub struct ModuleFunction {
    /// Its type.
    pub signature: TypeIndex,
    /// Its slot in the vmctx `func_refs` region, if it escapes the instance (is exported,
    /// placed in a table or referenced by `ref.func`).
    pub func_ref: Option<FuncRefIndex>,
}

/// One operation of a constant expression.
#[derive(Copy, Clone, Debug, PartialEq)]
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
#[derive(Clone, Debug, PartialEq)]
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
#[derive(Clone, Debug)]
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
#[derive(Clone, Debug)]
pub struct ElemSegment {
    /// Its mode.
    pub mode: ElemSegmentMode,
    /// Its items, each a constant expression producing a reference.
    pub items: Box<[ConstExpr]>,
}

/// A data segment.
#[derive(Clone, Debug)]
pub struct DataSegment {
    /// For an active segment, the memory and the offset expression.
    pub active: Option<(MemoryIndex, ConstExpr)>,
    /// The bytes.
    pub data: Box<[u8]>,
}

/// The metadata of a validated module.
#[derive(Clone, Debug, Default)]
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
    /// Initializers of the defined globals.
    pub global_initializers: PrimaryMap<DefinedGlobalIndex, ConstExpr>,
    /// Imports in declaration order.
    pub imports: Vec<Import>,
    /// Exports in declaration order.
    pub exports: Vec<Export>,
    /// Export positions by name.
    pub export_names: HashMap<String, usize>,
    /// The start function.
    pub start_func: Option<FuncIndex>,
    /// Element segments.
    pub elem_segments: PrimaryMap<ElemIndex, ElemSegment>,
    /// Data segments.
    pub data_segments: PrimaryMap<DataIndex, DataSegment>,
    /// Function names from the name section.
    pub func_names: HashMap<FuncIndex, String>,
    /// Number of imported functions.
    pub num_imported_funcs: usize,
    /// Number of imported tables.
    pub num_imported_tables: usize,
    /// Number of imported memories.
    pub num_imported_memories: usize,
    /// Number of imported globals.
    pub num_imported_globals: usize,
    /// Number of functions with a `func_refs` slot.
    pub num_escaped_funcs: usize,
    /// What the defined funcref tables start with, resolved lazily at run time.
    pub table_initialization: crate::TableInitialization,
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

    /// The number of functions defined by the module.
    pub fn num_defined_funcs(&self) -> usize {
        self.functions.len() - self.num_imported_funcs
    }

    /// The number of globals defined by the module.
    pub fn num_defined_globals(&self) -> usize {
        self.globals.len() - self.num_imported_globals
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

    /// The export called `name`.
    pub fn export(&self, name: &str) -> Option<&Export> {
        self.export_names.get(name).map(|&i| &self.exports[i])
    }

    /// The name of function `index` from the name section, if any.
    pub fn func_name(&self, index: FuncIndex) -> Option<&str> {
        self.func_names.get(&index).map(String::as_str)
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
}
