//! Compiling a whole module: every function and trampoline, then linking them into one
//! text section with no relocations left.

use crate::func_environ::{AliasRegions, FuncEnvironment};
use crate::func_translator::translate_function;
use crate::{trampoline, trap_from_code, wasm_signature};
use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{self, UserFuncName};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{Context, FinalizedRelocTarget};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use strata_environ::{
    CompileError, CompiledModule, Compiler, DefinedFuncIndex, EntityRef, FuncIndex,
    FunctionBodyInput, FunctionLoc, Module, PrimaryMap, TrapSite, Tunables, TypeIndex, VMOffsets,
};
use wasmparser::FuncValidatorAllocations;

/// How hard Cranelift optimizes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum OptLevel {
    /// No optimization: fastest compilation.
    None,
    /// Optimize for speed (the default).
    #[default]
    Speed,
    /// Optimize for speed and size.
    SpeedAndSize,
}

/// Compiles modules for the host with Cranelift.
pub struct CraneliftCompiler {
    isa: OwnedTargetIsa,
    tunables: Tunables,
    /// Where to write the optimized CLIF of everything compiled, if anywhere.
    clif_dir: Option<PathBuf>,
}

/// What a piece of compiled code is, named as wasmtime names it in its symbols (and in
/// the files of `wasmtime compile --emit-clif`), so the two can be set side by side.
#[derive(Clone, Copy, Debug)]
enum Symbol {
    /// Wasm function `index`.
    Function(FuncIndex),
    /// The trampoline through which the host calls function `index`.
    ArrayToWasm(FuncIndex),
    /// The trampoline through which wasm calls a host function of type `index`.
    WasmToArray(TypeIndex),
}

impl std::fmt::Display for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Symbol::Function(i) => write!(f, "wasm[0]::function[{}]", i.as_u32()),
            Symbol::ArrayToWasm(i) => {
                write!(f, "wasm[0]::array_to_wasm_trampoline[{}]", i.as_u32())
            }
            Symbol::WasmToArray(i) => {
                write!(f, "signatures[{}]::wasm_to_array_trampoline", i.as_u32())
            }
        }
    }
}

/// The machine code of one function or trampoline, before linking.
struct CompiledFunction {
    code: Vec<u8>,
    alignment: u32,
    /// `(offset in function, kind, addend, callee)`.
    relocs: Vec<(u32, Reloc, i64, DefinedFuncIndex)>,
    /// `(offset in function, trap)`.
    traps: Vec<TrapSite>,
    /// `(offset in function, wasm offset)`.
    srclocs: Vec<(u32, u32)>,
}

fn codegen_error(e: impl std::fmt::Display) -> CompileError {
    CompileError::Codegen(e.to_string())
}

impl CraneliftCompiler {
    /// A compiler for the host CPU.
    ///
    /// # Errors
    /// Fails if the host is not a supported target or lacks a required CPU feature.
    pub fn new(
        tunables: Tunables,
        opt_level: OptLevel,
        nan_canonicalization: bool,
    ) -> Result<CraneliftCompiler, CompileError> {
        let mut flags = settings::builder();
        let opt = match opt_level {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
            OptLevel::SpeedAndSize => "speed_and_size",
        };
        let settings: [(&str, &str); 8] = [
            ("opt_level", opt),
            // Wasm functions may return more values than there are return registers
            // (wasmparser allows 1,000); the rest go through a return area that Cranelift
            // adds. Only Cranelift-made code calls them, so the ABI is ours to choose.
            ("enable_multi_ret_implicit_sret", "true"),
            // Backtraces and trap unwinding walk frame pointers.
            ("preserve_frame_pointers", "true"),
            // Big frames touch their pages in order so the stack guard is never skipped.
            ("enable_probestack", "true"),
            ("probestack_strategy", "inline"),
            (
                "enable_verifier",
                if cfg!(debug_assertions) {
                    "true"
                } else {
                    "false"
                },
            ),
            (
                "enable_nan_canonicalization",
                if nan_canonicalization {
                    "true"
                } else {
                    "false"
                },
            ),
            ("unwind_info", "false"),
        ];
        for (name, value) in settings {
            flags.set(name, value).map_err(codegen_error)?;
        }
        let isa = cranelift_native::builder()
            .map_err(codegen_error)?
            .finish(settings::Flags::new(flags))
            .map_err(codegen_error)?;
        Ok(CraneliftCompiler {
            isa,
            tunables,
            clif_dir: None,
        })
    }

    /// Writes the CLIF of every function and trampoline it compiles from now on into
    /// `dir` (which must exist), after Cranelift's optimizations, one file each, named
    /// as `wasmtime compile --emit-clif` names them (`wasm[0]--function[3].clif`).
    pub fn emit_clif(&mut self, dir: impl Into<PathBuf>) {
        self.clif_dir = Some(dir.into());
    }

    /// The CPU features the generated code may use: the code generator's boolean ISA
    /// flags that are on (such as `has_avx2`), detected from the host.
    pub fn cpu_features(&self) -> Vec<String> {
        self.isa
            .isa_flags()
            .iter()
            .filter(|flag| flag.as_bool() == Some(true))
            .map(|flag| flag.name.to_string())
            .collect()
    }

    fn pointer(&self) -> ir::Type {
        self.isa.pointer_type()
    }

    fn compile_body(
        &self,
        module: &Module,
        offsets: &VMOffsets,
        index: DefinedFuncIndex,
        input: FunctionBodyInput<'_>,
        cx: &mut (
            Context,
            FunctionBuilderContext,
            Option<FuncValidatorAllocations>,
        ),
    ) -> Result<CompiledFunction, CompileError> {
        let (ctx, fctx, allocs) = cx;
        let func_index = module.func_index(index);
        let ty = module.func_type(func_index);
        ctx.clear();
        ctx.func.signature = wasm_signature(ty, self.pointer());
        ctx.func.name = UserFuncName::user(0, index.as_u32());

        // The stack limit lives in the store context; every non-leaf prologue checks it.
        let vmctx = ctx.func.create_global_value(ir::GlobalValueData::VMContext);
        let readonly = ctx
            .func
            .dfg
            .mem_flags
            .insert_unchecked(ir::MemFlagsData::trusted().with_readonly());
        let store_ctx = ctx.func.create_global_value(ir::GlobalValueData::Load {
            base: vmctx,
            offset: i32::try_from(offsets.vmctx_store_context())
                .expect("small")
                .into(),
            global_type: self.pointer(),
            flags: readonly,
        });
        let limit = ctx.func.create_global_value(ir::GlobalValueData::Load {
            base: store_ctx,
            offset: i32::from(offsets.vmstore_context_stack_limit()).into(),
            global_type: self.pointer(),
            flags: readonly,
        });
        ctx.func.stack_limit = Some(limit);

        let mut validator = input
            .validator
            .into_validator(allocs.take().unwrap_or_default());
        let heap_region = AliasRegions::heap(&mut ctx.func);
        let builder = FunctionBuilder::new(&mut ctx.func, fctx);
        let env = FuncEnvironment {
            module,
            offsets,
            tunables: &self.tunables,
            pointer: self.pointer(),
            vmctx: ir::Value::from_u32(0),
            host_call_conv: self.isa.default_call_conv(),
            heap_region,
            isa: &*self.isa,
        };
        translate_function(
            env,
            builder,
            self.isa.frontend_config(),
            &input.body,
            &mut validator,
            ty.params(),
            ty.results(),
        )?;
        *allocs = Some(validator.into_allocations());
        let name = module.func_name(func_index);
        let mut compiled = self.finish(ctx, Symbol::Function(func_index), name)?;
        // Wasm functions start at the target's preferred alignment (32 bytes on x86-64),
        // as wasmtime's do: with the minimum (1 byte), where a hot loop falls relative
        // to the processor's fetch and decode windows changes with every function
        // before it, and so does its speed. Trampolines keep the minimum.
        compiled.alignment = compiled
            .alignment
            .max(self.isa.function_alignment().preferred);
        Ok(compiled)
    }

    /// Compiles the function in `ctx`, which is `symbol` (with `name` from the name
    /// section, if any).
    fn finish(
        &self,
        ctx: &mut Context,
        symbol: Symbol,
        name: Option<&str>,
    ) -> Result<CompiledFunction, CompileError> {
        let mut ctrl = ControlPlane::default();
        let names = ctx.func.params.user_named_funcs().clone();
        let result = ctx
            .compile(&*self.isa, &mut ctrl)
            .map(drop)
            .map_err(|e| codegen_error(format!("{:?}", e.inner)));
        // Written even when compilation failed: the IR shows where.
        if let Some(dir) = &self.clif_dir {
            write_clif(dir, symbol, name, &ctx.func)?;
        }
        result?;
        let compiled = ctx.compiled_code().expect("compiled just now");
        let buffer = &compiled.buffer;
        let mut relocs = Vec::new();
        for r in buffer.relocs() {
            let FinalizedRelocTarget::ExternalName(ir::ExternalName::User(name)) = r.target else {
                return Err(codegen_error(format!(
                    "unexpected relocation target {:?}",
                    r.target
                )));
            };
            let callee = names[name].index;
            relocs.push((
                r.offset,
                r.kind,
                r.addend,
                DefinedFuncIndex::from_u32(callee),
            ));
        }
        let mut traps = Vec::new();
        for t in buffer.traps() {
            let trap = trap_from_code(t.code)
                .ok_or_else(|| codegen_error(format!("unknown trap code {}", t.code)))?;
            traps.push(TrapSite {
                offset: t.offset,
                trap,
            });
        }
        let srclocs = buffer
            .get_srclocs_sorted()
            .iter()
            .filter(|s| !s.loc.is_default())
            .map(|s| (s.start, s.loc.bits()))
            .collect();
        Ok(CompiledFunction {
            code: buffer.data().to_vec(),
            alignment: buffer.alignment,
            relocs,
            traps,
            srclocs,
        })
    }

    fn link(
        &self,
        functions: Vec<CompiledFunction>,
        array_to_wasm: Vec<(DefinedFuncIndex, CompiledFunction)>,
        wasm_to_array: Vec<CompiledFunction>,
        trampoline_of_type: &[usize],
    ) -> Result<CompiledModule, CompileError> {
        let mut text = self.isa.text_section_builder(functions.len());
        let mut ctrl = ControlPlane::default();
        let mut out = CompiledModule::default();
        let min_align = self.isa.function_alignment().minimum;
        let mut place = |f: &CompiledFunction, labeled: bool, out: &mut CompiledModule| {
            let align = f.alignment.max(min_align);
            let start = text.append(labeled, &f.code, align, &mut ctrl);
            for &(offset, kind, addend, callee) in &f.relocs {
                if !text.resolve_reloc(start + u64::from(offset), kind, addend, callee.index()) {
                    return Err(codegen_error(format!("unsupported relocation {kind:?}")));
                }
            }
            let start =
                u32::try_from(start).map_err(|_| codegen_error("text section over 4 GiB"))?;
            out.traps.extend(f.traps.iter().map(|t| TrapSite {
                offset: start + t.offset,
                trap: t.trap,
            }));
            out.address_map
                .extend(f.srclocs.iter().map(|&(o, w)| (start + o, w)));
            let length =
                u32::try_from(f.code.len()).map_err(|_| codegen_error("function over 4 GiB"))?;
            Ok(FunctionLoc { start, length })
        };
        for f in &functions {
            let loc = place(f, true, &mut out)?;
            out.functions.push(loc);
        }
        for (index, f) in &array_to_wasm {
            let loc = place(f, false, &mut out)?;
            out.array_to_wasm_trampolines.push((*index, loc));
        }
        let placed = wasm_to_array
            .iter()
            .map(|f| place(f, false, &mut out))
            .collect::<Result<Vec<_>, _>>()?;
        for &index in trampoline_of_type {
            out.wasm_to_array_trampolines.push(placed[index]);
        }
        out.text = text.finish(&mut ctrl);
        out.traps.sort_by_key(|t| t.offset);
        out.address_map.sort_by_key(|&(o, _)| o);
        Ok(out)
    }
}

/// Writes `func`, the IR of `symbol`, to its file in `dir`.
fn write_clif(
    dir: &Path,
    symbol: Symbol,
    name: Option<&str>,
    func: &ir::Function,
) -> Result<(), CompileError> {
    let path = dir.join(format!("{}.clif", symbol.to_string().replace("::", "--")));
    let named = name
        .map(|n| format!(" ({})", n.escape_debug()))
        .unwrap_or_default();
    let text = format!(";; Intermediate Representation of function <{symbol}>{named}:\n{func}");
    std::fs::write(&path, text).map_err(|e| CompileError::Output {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// One piece of code for [`Compiler::compile_module`] to compile.
enum Job<'a> {
    /// A defined function's body.
    Function(DefinedFuncIndex, FunctionBodyInput<'a>),
    /// The entry trampoline of a function that escapes.
    ArrayToWasm(FuncIndex, DefinedFuncIndex),
    /// The host-call trampoline of a signature (the first type index that has it).
    WasmToArray(TypeIndex),
}

/// What a [`Job`] compiled to.
enum Compiled {
    Function(CompiledFunction),
    ArrayToWasm(DefinedFuncIndex, CompiledFunction),
    WasmToArray(CompiledFunction),
}

type Scratch = (
    Context,
    FunctionBuilderContext,
    Option<FuncValidatorAllocations>,
);

fn scratch() -> Scratch {
    (Context::new(), FunctionBuilderContext::new(), None)
}

impl Compiler for CraneliftCompiler {
    fn compile_module(
        &self,
        module: &Module,
        bodies: PrimaryMap<DefinedFuncIndex, FunctionBodyInput<'_>>,
    ) -> Result<CompiledModule, CompileError> {
        let offsets = VMOffsets::new(self.isa.pointer_bytes(), module);
        let target = trampoline::TrampolineTarget {
            offsets: &offsets,
            pointer: self.pointer(),
            host_call_conv: self.isa.default_call_conv(),
            frontend: self.isa.frontend_config(),
        };
        // One wasm-to-host trampoline per distinct signature: a type section may repeat
        // one signature any number of times (100,000 `(func)` types are 300 KB).
        let mut signatures = Vec::new();
        let mut by_signature = HashMap::new();
        let mut trampoline_of_type = Vec::with_capacity(module.types.len());
        for (type_index, ty) in module.types.iter() {
            let next = signatures.len();
            let index = *by_signature.entry(ty).or_insert(next);
            if index == next {
                signatures.push(type_index);
            }
            trampoline_of_type.push(index);
        }
        // Functions, then entry trampolines of the escaping functions, then host-call
        // trampolines: all compiled in one parallel phase, so that a small module with
        // many exports does not compile its trampolines one after another at the end.
        let entries = module.functions.iter().filter_map(|(index, f)| {
            let def = module.defined_func_index(index)?;
            f.func_ref.map(|_| Job::ArrayToWasm(index, def))
        });
        let jobs: Vec<Job<'_>> = bodies
            .into_iter()
            .map(|(index, input)| Job::Function(index, input))
            .chain(entries)
            .chain(signatures.into_iter().map(Job::WasmToArray))
            .collect();
        let compile = |cx: &mut Scratch, job: Job<'_>| -> Result<Compiled, CompileError> {
            match job {
                Job::Function(index, input) => {
                    let f = self.compile_body(module, &offsets, index, input, cx)?;
                    Ok(Compiled::Function(f))
                }
                Job::ArrayToWasm(index, def) => {
                    let (ctx, fctx, _) = cx;
                    ctx.clear();
                    let ty = module.func_type(index);
                    trampoline::array_to_wasm(&mut ctx.func, fctx, target, def, ty);
                    let name = module.func_name(index);
                    let f = self.finish(ctx, Symbol::ArrayToWasm(index), name)?;
                    Ok(Compiled::ArrayToWasm(def, f))
                }
                Job::WasmToArray(type_index) => {
                    let (ctx, fctx, _) = cx;
                    ctx.clear();
                    let ty = &module.types[type_index];
                    trampoline::wasm_to_array(&mut ctx.func, fctx, target, ty);
                    let f = self.finish(ctx, Symbol::WasmToArray(type_index), None)?;
                    Ok(Compiled::WasmToArray(f))
                }
            }
        };
        #[cfg(feature = "parallel-compilation")]
        let compiled: Vec<Compiled> = {
            use rayon::prelude::*;
            jobs.into_par_iter()
                .map_init(scratch, compile)
                .collect::<Result<_, _>>()?
        };
        #[cfg(not(feature = "parallel-compilation"))]
        let compiled: Vec<Compiled> = {
            let mut cx = scratch();
            jobs.into_iter()
                .map(|job| compile(&mut cx, job))
                .collect::<Result<_, _>>()?
        };

        // The results come back in the order of the jobs.
        let (mut functions, mut array_to_wasm, mut wasm_to_array) =
            (Vec::new(), Vec::new(), Vec::new());
        for c in compiled {
            match c {
                Compiled::Function(f) => functions.push(f),
                Compiled::ArrayToWasm(def, f) => array_to_wasm.push((def, f)),
                Compiled::WasmToArray(f) => wasm_to_array.push(f),
            }
        }
        self.link(functions, array_to_wasm, wasm_to_array, &trampoline_of_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_environ::{Trap, WasmFeatures, address_of_wasm_offset, translate_module};

    fn compile(wat: &str) -> Result<(Module, CompiledModule), CompileError> {
        let wasm = wat::parse_str(wat).expect("test module parses");
        let translation = translate_module(&wasm, WasmFeatures::default())?;
        let compiler = CraneliftCompiler::new(Tunables::default_host(), OptLevel::Speed, false)?;
        let compiled = compiler.compile_module(&translation.module, translation.function_bodies)?;
        Ok((translation.module, compiled))
    }

    fn traps_of(compiled: &CompiledModule) -> Vec<Trap> {
        compiled.traps.iter().map(|t| t.trap).collect()
    }

    #[test]
    fn functions_and_trampolines_are_laid_out_in_one_text_section() {
        let (module, compiled) = compile(
            r#"(module
                 (import "host" "f" (func (param i32)))
                 (func (export "add") (param i32 i32) (result i32)
                   (i32.add (local.get 0) (local.get 1)))
                 (func $internal (result i64) i64.const 7))"#,
        )
        .unwrap();
        assert_eq!(compiled.functions.len(), 2);
        // Only the export escapes, so only it gets an entry trampoline.
        assert_eq!(compiled.array_to_wasm_trampolines.len(), 1);
        assert_eq!(compiled.wasm_to_array_trampolines.len(), module.types.len());
        let text_len = u32::try_from(compiled.text.len()).unwrap();
        for loc in compiled.functions.values() {
            assert!(loc.length > 0 && loc.start + loc.length <= text_len);
        }
    }

    #[test]
    fn trapping_instructions_are_recorded_with_their_trap() {
        let (_, compiled) = compile(
            r#"(module
                 (func (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
                 (func (param f64) (result i64) (i64.trunc_f64_u (local.get 0)))
                 (func unreachable))"#,
        )
        .unwrap();
        let traps = traps_of(&compiled);
        for expected in [
            Trap::IntegerDivisionByZero,
            Trap::IntegerOverflow,
            Trap::BadConversionToInteger,
            Trap::UnreachableCodeReached,
        ] {
            assert!(
                traps.contains(&expected),
                "{expected:?} missing from {traps:?}"
            );
        }
        assert!(compiled.traps.is_sorted_by_key(|t| t.offset));
    }

    #[test]
    fn unsigned_division_by_a_constant_cannot_trap() {
        let (_, compiled) = compile(
            r#"(module (func (param i32) (result i32) (i32.div_u (local.get 0) (i32.const 3))))"#,
        )
        .unwrap();
        assert!(
            !traps_of(&compiled).contains(&Trap::IntegerDivisionByZero),
            "the optimizer removes the zero check of a non-zero constant"
        );
    }

    #[test]
    fn machine_code_maps_back_to_wasm_offsets() {
        let wat = r#"(module (func (export "f") (result i32) i32.const 1 i32.const 2 i32.add))"#;
        let (_, compiled) = compile(wat).unwrap();
        let f = compiled.functions[DefinedFuncIndex::new(0)];
        let wasm_len = u32::try_from(wat::parse_str(wat).unwrap().len()).unwrap();
        let mapped: Vec<u32> = (f.start..f.start + f.length)
            .filter_map(|pc| address_of_wasm_offset(&compiled.address_map, pc))
            .collect();
        assert!(!mapped.is_empty());
        assert!(mapped.iter().all(|&o| o < wasm_len), "{mapped:?}");
    }

    #[test]
    fn invalid_bodies_fail_with_the_offset() {
        let Err(err) = compile(r#"(module (func (result i32) (f32.const 1)))"#) else {
            panic!("an f32 result for an i32 function is invalid");
        };
        let message = err.to_string();
        assert!(message.contains("type mismatch"), "{message}");
        assert!(message.contains("offset"), "{message}");
    }
}
