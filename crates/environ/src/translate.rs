//! Parsing and validating a module into [`Module`] metadata.
//!
//! One pass over every section with wasmparser's [`Validator`]. Function bodies are not
//! validated here: each is handed on with its [`FuncToValidate`] so the compiler can
//! validate it while translating it, in parallel with the other bodies.

use crate::{
    CompileError, ConstExpr, ConstOp, DataSegment, DefinedFuncIndex, ElemSegment, ElemSegmentMode,
    EntityIndex, EntityRef, Export, FuncIndex, FuncRefIndex, Global, GlobalIndex, Import, Memory,
    MemoryIndex, Module, ModuleFunction, PrimaryMap, Table, TableIndex, Tag, TagIndex, TypeIndex,
    WasmFuncType, WasmRefType, WasmValType,
};
use wasmparser::{
    ElementItems, ElementKind, FuncToValidate, FunctionBody, KnownCustom, Name, Operator, Parser,
    Payload, TypeRef, Validator, ValidatorResources, WasmFeatures,
};

/// A function body waiting to be validated and compiled.
pub struct FunctionBodyInput<'data> {
    /// The body's bytes.
    pub body: FunctionBody<'data>,
    /// The validator for this body, primed with the module's types.
    pub validator: FuncToValidate<ValidatorResources>,
}

/// The result of [`translate_module`].
pub struct ModuleTranslation<'data> {
    /// The module's metadata.
    pub module: Module,
    /// The bodies of the defined functions.
    pub function_bodies: PrimaryMap<DefinedFuncIndex, FunctionBodyInput<'data>>,
    /// The bytes of every data segment, one after another ([`DataSegment::range`]
    /// says where each is).
    pub data: Vec<u8>,
}

/// Parses and validates `wasm` (all but function bodies) with the given features.
///
/// # Errors
/// Returns [`CompileError::Wasm`] with the decoder's message and byte offset if the
/// bytes are malformed or invalid, and [`CompileError::Unsupported`] for valid
/// constructs strata cannot run.
pub fn translate_module(
    wasm: &[u8],
    features: WasmFeatures,
) -> Result<ModuleTranslation<'_>, CompileError> {
    let mut validator = Validator::new_with_features(features);
    let mut t = Translator {
        module: Module::default(),
        function_bodies: PrimaryMap::new(),
        next_defined_func: 0,
        data: Vec::new(),
    };
    let mut parser = Parser::new(0);
    parser.set_features(features);
    for payload in parser.parse_all(wasm) {
        let payload = payload?;
        if let wasmparser::ValidPayload::Func(validator, body) = validator.payload(&payload)? {
            t.function_bodies
                .push(FunctionBodyInput { body, validator });
        }
        t.payload(payload)?;
    }
    t.module.rebuild_export_names();
    t.assign_func_refs();
    t.module.table_initialization = crate::TableInitialization::plan(&t.module);
    t.forget_dropped_elements();
    let data = crate::memory_image::lay_out_images(&mut t.module, &t.data).map_err(unsupported)?;
    Ok(ModuleTranslation {
        module: t.module,
        function_bodies: t.function_bodies,
        data,
    })
}

struct Translator<'data> {
    module: Module,
    function_bodies: PrimaryMap<DefinedFuncIndex, FunctionBodyInput<'data>>,
    next_defined_func: usize,
    data: Vec<u8>,
}

fn unsupported(what: impl Into<String>) -> CompileError {
    CompileError::Unsupported(what.into())
}

fn val_type(ty: wasmparser::ValType) -> Result<WasmValType, CompileError> {
    WasmValType::from_wasmparser(ty).ok_or_else(|| unsupported(format!("value type {ty:?}")))
}

fn ref_type(ty: wasmparser::RefType) -> Result<WasmRefType, CompileError> {
    WasmRefType::from_wasmparser(ty).ok_or_else(|| unsupported(format!("reference type {ty}")))
}

fn table_type(ty: wasmparser::TableType) -> Result<Table, CompileError> {
    Ok(Table {
        element: ref_type(ty.element_type)?,
        minimum: ty.initial,
        maximum: ty.maximum,
        table64: ty.table64,
    })
}

fn memory_type(ty: wasmparser::MemoryType) -> Result<Memory, CompileError> {
    if ty.shared {
        return Err(unsupported("shared memories"));
    }
    Ok(Memory::from_wasmparser(ty))
}

fn global_type(ty: wasmparser::GlobalType) -> Result<Global, CompileError> {
    if ty.shared {
        return Err(unsupported("shared globals"));
    }
    Ok(Global {
        ty: val_type(ty.content_type)?,
        mutable: ty.mutable,
    })
}

fn const_expr(expr: &wasmparser::ConstExpr<'_>) -> Result<ConstExpr, CompileError> {
    let mut ops = Vec::new();
    let mut reader = expr.get_operators_reader();
    while !reader.eof() {
        let op = match reader.read()? {
            Operator::I32Const { value } => ConstOp::I32Const(value),
            Operator::I64Const { value } => ConstOp::I64Const(value),
            Operator::F32Const { value } => ConstOp::F32Const(value.bits()),
            Operator::F64Const { value } => ConstOp::F64Const(value.bits()),
            Operator::V128Const { value } => {
                ConstOp::V128Const(u128::from_le_bytes(*value.bytes()))
            }
            Operator::GlobalGet { global_index } => {
                ConstOp::GlobalGet(GlobalIndex::from_u32(global_index))
            }
            Operator::RefNull { .. } => ConstOp::RefNull,
            Operator::RefFunc { function_index } => {
                ConstOp::RefFunc(FuncIndex::from_u32(function_index))
            }
            Operator::I32Add => ConstOp::I32Add,
            Operator::I32Sub => ConstOp::I32Sub,
            Operator::I32Mul => ConstOp::I32Mul,
            Operator::I64Add => ConstOp::I64Add,
            Operator::I64Sub => ConstOp::I64Sub,
            Operator::I64Mul => ConstOp::I64Mul,
            Operator::End => continue,
            other => {
                return Err(unsupported(format!(
                    "constant expression operator {other:?}"
                )));
            }
        };
        ops.push(op);
    }
    Ok(ConstExpr {
        ops: ops.into_boxed_slice(),
    })
}

impl<'data> Translator<'data> {
    fn payload(&mut self, payload: Payload<'data>) -> Result<(), CompileError> {
        let m = &mut self.module;
        match payload {
            Payload::TypeSection(types) => {
                for group in types.into_iter_err_on_gc_types() {
                    let func = group?;
                    let params = func
                        .params()
                        .iter()
                        .map(|&t| val_type(t))
                        .collect::<Result<Vec<_>, _>>()?;
                    let results = func
                        .results()
                        .iter()
                        .map(|&t| val_type(t))
                        .collect::<Result<Vec<_>, _>>()?;
                    m.types.push(WasmFuncType::new(params, results));
                }
            }
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import?;
                    let index = match import.ty {
                        TypeRef::Func(ty) | TypeRef::FuncExact(ty) => {
                            m.num_imported_funcs += 1;
                            EntityIndex::Function(m.functions.push(ModuleFunction {
                                signature: TypeIndex::from_u32(ty),
                                func_ref: None,
                            }))
                        }
                        TypeRef::Table(ty) => {
                            m.num_imported_tables += 1;
                            EntityIndex::Table(m.tables.push(table_type(ty)?))
                        }
                        TypeRef::Memory(ty) => {
                            m.num_imported_memories += 1;
                            EntityIndex::Memory(m.memories.push(memory_type(ty)?))
                        }
                        TypeRef::Global(ty) => {
                            m.num_imported_globals += 1;
                            EntityIndex::Global(m.globals.push(global_type(ty)?))
                        }
                        TypeRef::Tag(tag) => {
                            m.num_imported_tags += 1;
                            EntityIndex::Tag(m.tags.push(Tag {
                                signature: TypeIndex::from_u32(tag.func_type_idx),
                            }))
                        }
                    };
                    m.imports.push(Import {
                        module: import.module.to_owned(),
                        name: import.name.to_owned(),
                        index,
                    });
                }
            }
            Payload::FunctionSection(funcs) => {
                for ty in funcs {
                    m.functions.push(ModuleFunction {
                        signature: TypeIndex::from_u32(ty?),
                        func_ref: None,
                    });
                }
            }
            Payload::TableSection(tables) => {
                for table in tables {
                    let table = table?;
                    m.tables.push(table_type(table.ty)?);
                    m.table_initializers.push(match &table.init {
                        wasmparser::TableInit::RefNull => None,
                        wasmparser::TableInit::Expr(expr) => Some(const_expr(expr)?),
                    });
                }
            }
            Payload::MemorySection(memories) => {
                for memory in memories {
                    m.memories.push(memory_type(memory?)?);
                }
            }
            Payload::GlobalSection(globals) => {
                for global in globals {
                    let global = global?;
                    m.globals.push(global_type(global.ty)?);
                    m.global_initializers.push(const_expr(&global.init_expr)?);
                }
            }
            Payload::ExportSection(exports) => {
                for export in exports {
                    let export = export?;
                    let index = match export.kind {
                        wasmparser::ExternalKind::Func | wasmparser::ExternalKind::FuncExact => {
                            EntityIndex::Function(FuncIndex::from_u32(export.index))
                        }
                        wasmparser::ExternalKind::Table => {
                            EntityIndex::Table(TableIndex::from_u32(export.index))
                        }
                        wasmparser::ExternalKind::Memory => {
                            EntityIndex::Memory(MemoryIndex::from_u32(export.index))
                        }
                        wasmparser::ExternalKind::Global => {
                            EntityIndex::Global(GlobalIndex::from_u32(export.index))
                        }
                        wasmparser::ExternalKind::Tag => {
                            EntityIndex::Tag(TagIndex::from_u32(export.index))
                        }
                    };
                    m.exports.push(Export {
                        name: export.name.to_owned(),
                        index,
                    });
                }
            }
            Payload::StartSection { func, .. } => m.start_func = Some(FuncIndex::from_u32(func)),
            Payload::ElementSection(elems) => {
                for elem in elems {
                    let elem = elem?;
                    let mode = match elem.kind {
                        ElementKind::Passive => ElemSegmentMode::Passive,
                        ElementKind::Declared => ElemSegmentMode::Declared,
                        ElementKind::Active {
                            table_index,
                            offset_expr,
                        } => ElemSegmentMode::Active {
                            table: TableIndex::from_u32(table_index.unwrap_or(0)),
                            offset: const_expr(&offset_expr)?,
                        },
                    };
                    let items = match elem.items {
                        ElementItems::Functions(funcs) => funcs
                            .into_iter()
                            .map(|f| {
                                Ok(ConstExpr {
                                    ops: Box::new([ConstOp::RefFunc(FuncIndex::from_u32(f?))]),
                                })
                            })
                            .collect::<Result<Vec<_>, CompileError>>()?,
                        ElementItems::Expressions(_, exprs) => exprs
                            .into_iter()
                            .map(|e| const_expr(&e?))
                            .collect::<Result<Vec<_>, CompileError>>()?,
                    };
                    m.elem_segments.push(ElemSegment {
                        mode,
                        items: items.into_boxed_slice(),
                    });
                }
            }
            Payload::DataSection(data) => {
                for segment in data {
                    let segment = segment?;
                    let active = match segment.kind {
                        wasmparser::DataKind::Passive => None,
                        wasmparser::DataKind::Active {
                            memory_index,
                            offset_expr,
                        } => Some((
                            MemoryIndex::from_u32(memory_index),
                            const_expr(&offset_expr)?,
                        )),
                    };
                    let start = self.data.len();
                    self.data.extend_from_slice(segment.data);
                    let range = u32::try_from(start)
                        .ok()
                        .zip(u32::try_from(self.data.len()).ok())
                        .ok_or_else(|| unsupported("data segments over 4 GiB in all"))?;
                    m.data_segments.push(DataSegment {
                        active,
                        range: range.0..range.1,
                    });
                }
            }
            Payload::CodeSectionEntry(_) => self.next_defined_func += 1,
            Payload::CustomSection(section) => {
                if let KnownCustom::Name(names) = section.as_known() {
                    // A malformed name section is not an error (custom sections never
                    // are): keep whatever was read before the problem.
                    for name in names {
                        let Ok(name) = name else { break };
                        self.name(name);
                    }
                }
            }
            Payload::TagSection(tags) => {
                for tag in tags {
                    m.tags.push(Tag {
                        signature: TypeIndex::from_u32(tag?.func_type_idx),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn name(&mut self, name: Name<'_>) {
        match name {
            Name::Module { name, .. } => self.module.name = Some(name.to_owned()),
            Name::Function(names) => {
                // Custom sections are not validated: a name may be for a function that does
                // not exist (even index `u32::MAX`, which no `FuncIndex` can hold). Only names
                // of functions declared before the name section are kept.
                let declared = self.module.functions.len();
                for naming in names.into_iter().flatten() {
                    if (naming.index as usize) < declared {
                        self.module
                            .func_names
                            .insert(FuncIndex::from_u32(naming.index), naming.name);
                    }
                }
            }
            _ => {}
        }
    }

    /// Empties the element segments that instantiation drops before anything can read
    /// them: declared ones, and active ones the table initialization plan covers. Their
    /// items would only make the module bigger to keep and to load.
    fn forget_dropped_elements(&mut self) {
        let eager_from = self.module.table_initialization.eager_from;
        for (index, segment) in self.module.elem_segments.iter_mut() {
            let dropped = match segment.mode {
                crate::ElemSegmentMode::Active { .. } => index < eager_from,
                crate::ElemSegmentMode::Declared => true,
                crate::ElemSegmentMode::Passive => false,
            };
            if dropped {
                segment.items = Box::new([]);
            }
        }
    }

    /// Gives a `func_refs` slot to every function that can escape the instance.
    fn assign_func_refs(&mut self) {
        let m = &mut self.module;
        // The start function is entered from the host like an export.
        let mut escaping: Vec<FuncIndex> = m.start_func.into_iter().collect();
        escaping.extend(m.exports.iter().filter_map(|e| match e.index {
            EntityIndex::Function(f) => Some(f),
            _ => None,
        }));
        let exprs = m
            .elem_segments
            .values()
            .flat_map(|s| s.items.iter())
            .chain(m.global_initializers.values())
            .chain(m.table_initializers.values().flatten());
        for expr in exprs {
            escaping.extend(expr.ops.iter().filter_map(|op| match op {
                ConstOp::RefFunc(f) => Some(*f),
                _ => None,
            }));
        }
        for func in escaping {
            let Some(f) = m.functions.get_mut(func) else {
                continue;
            };
            if f.func_ref.is_none() {
                f.func_ref = Some(FuncRefIndex::new(m.num_escaped_funcs));
                m.num_escaped_funcs += 1;
            }
        }
    }
}

impl From<wasmparser::BinaryReaderError> for CompileError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        CompileError::Wasm {
            message: e.message().to_owned(),
            offset: e.offset(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // (module
    //   (import "env" "f" (func (param i32)))
    //   (memory 1 2)
    //   (global i32 (i32.const 7))
    //   (func $g (export "g") (result i32) i32.const 1)
    //   (data (i32.const 8) "hi"))
    const MODULE: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // header
        0x01, 0x09, 0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x01, 0x7f, // types
        0x02, 0x09, 0x01, 0x03, b'e', b'n', b'v', 0x01, b'f', 0x00, 0x00, // import
        0x03, 0x02, 0x01, 0x01, // functions
        0x05, 0x04, 0x01, 0x01, 0x01, 0x02, // memory 1 2
        0x06, 0x06, 0x01, 0x7f, 0x00, 0x41, 0x07, 0x0b, // global
        0x07, 0x05, 0x01, 0x01, b'g', 0x00, 0x01, // export "g" func 1
        0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x01, 0x0b, // code
        0x0b, 0x08, 0x01, 0x00, 0x41, 0x08, 0x0b, 0x02, b'h', b'i', // data
    ];

    #[test]
    fn records_every_section() {
        let t = translate_module(MODULE, WasmFeatures::default()).unwrap();
        let m = &t.module;
        assert_eq!(m.types.len(), 2);
        assert_eq!(m.num_imported_funcs, 1);
        assert_eq!(m.functions.len(), 2);
        assert_eq!(m.imports[0].module, "env");
        assert_eq!(m.memories[MemoryIndex::new(0)].maximum, Some(2));
        assert_eq!(
            m.global_initializers[crate::DefinedGlobalIndex::new(0)].ops[..],
            [ConstOp::I32Const(7)]
        );
        assert_eq!(
            m.export("g").unwrap().index,
            EntityIndex::Function(FuncIndex::new(1))
        );
        assert_eq!(
            m.functions[FuncIndex::new(1)].func_ref,
            Some(FuncRefIndex::new(0))
        );
        assert_eq!(m.functions[FuncIndex::new(0)].func_ref, None);
        assert_eq!(
            m.data_segments[crate::DataIndex::new(0)].bytes(&t.data),
            b"hi"
        );
        assert_eq!(t.function_bodies.len(), 1);
    }

    #[test]
    fn malformed_bytes_report_their_offset() {
        let mut bytes = MODULE.to_vec();
        bytes[8] = 0x55; // an unknown section id
        let err = translate_module(&bytes, WasmFeatures::default())
            .err()
            .unwrap();
        let CompileError::Wasm { offset, .. } = err else {
            panic!("{err}")
        };
        assert!(
            (8..=10).contains(&offset),
            "offset {offset} is not at the bad section"
        );
    }

    #[test]
    fn invalid_modules_are_rejected() {
        let mut bytes = MODULE.to_vec();
        // The "g" export's function index follows its name and kind byte.
        let export_index = bytes
            .windows(3)
            .position(|w| w == [b'g', 0x00, 0x01])
            .unwrap()
            + 2;
        bytes[export_index] = 0x05;
        assert!(translate_module(&bytes, WasmFeatures::default()).is_err());
    }
}
