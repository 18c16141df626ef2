//! Internal crate of the strata WebAssembly runtime: everything the compiler and the
//! runtime must agree on.
//!
//! This crate has no stability promise; embedders use the `strata` crate. It owns:
//!
//! * parsing and validating a module with wasmparser into [`Module`] metadata
//!   ([`translate_module`]), leaving function bodies to be validated while compiled;
//! * the layout of an instance's `VMContext` ([`VMOffsets`]);
//! * the trap codes compiled code raises ([`Trap`]) and the libcalls it may make
//!   ([`BuiltinFunctionIndex`]);
//! * the [`Compiler`] interface and the shape of its output ([`CompiledModule`]).
//!
//! It knows nothing about the Cranelift compiler or the operating system; its typed
//! index maps ([`PrimaryMap`], [`EntityRef`]) are Cranelift's small `cranelift-entity`
//! data-structure crate.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod artifact;
mod builtin;
mod compile;
mod fuel;
mod index;
mod memory_image;
mod module;
mod table_init;
mod translate;
mod trap;
mod tunables;
mod types;
mod vmoffsets;

pub use artifact::{
    ARTIFACT_MAGIC, ArtifactError, ArtifactLayout, ArtifactTarget, CodeTables, FORMAT_VERSION,
    Section, TEXT_ALIGN, TEXT_CHUNK, host_target, is_artifact, settings_hash, write_artifact,
};
pub use builtin::{BuiltinFunctionIndex, GROW_TRAPPED};
pub use compile::{
    CompileError, CompiledModule, Compiler, FunctionLoc, HandlerSite, InlineSite, TrapSite,
    address_of_wasm_offset,
};
pub use cranelift_entity::{EntityRef, PrimaryMap, entity_impl};
pub use fuel::operator_fuel_cost;
pub use index::*;
pub use memory_image::{IMAGE_ALIGN, MemoryImageLayout, MemoryImages, SPARSE_IMAGE_MIN};
pub use module::{
    ConstExpr, ConstOp, DataSegment, ElemSegment, ElemSegmentMode, EntityIndex, Export, FuncNames,
    Import, Module, ModuleFunction, Tag,
};
pub use table_init::{FUNCREF_INIT_BIT, TableInitialization};
pub use translate::{FunctionBodyInput, ModuleTranslation, translate_module};
pub use trap::Trap;
pub use tunables::{MemoryStyle, Tunables};
pub use types::{
    EngineOrModuleTypeIndex, Global, Memory, Table, WASM_PAGE_SIZE, WasmFuncType, WasmHeapType,
    WasmRefType, WasmValType,
};
pub use vmoffsets::{EXN_HEADER, HOST_PTR, VM_CONTEXT_MAGIC, VMOffsets};
pub use wasmparser::WasmFeatures;
