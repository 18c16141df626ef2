//! Compiling a whole module: every function and trampoline, then linking them into one
//! text section with no relocations left.

use crate::func_environ::{AliasRegions, FuncEnvironment};
use crate::func_translator::translate_function;
use crate::{inline, trampoline, trap_from_code, wasm_signature};
use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{self, UserFuncName};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{Context, FinalizedMachExceptionHandler, FinalizedRelocTarget};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use strata_environ::{
    CompileError, CompiledModule, Compiler, DefinedFuncIndex, EntityRef, FuncIndex,
    FunctionBodyInput, FunctionLoc, HandlerSite, InlineSite, Module, PrimaryMap, TrapSite,
    Tunables, TypeIndex, VMOffsets,
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
    /// Whether small leaf functions are inlined into their direct callers.
    inlining: bool,
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
    /// The alignment to place it at.
    alignment: u32,
    /// The alignment its code needs (that of its constants), at most `alignment`.
    required_alignment: u32,
    /// `(offset in function, kind, addend, callee)`.
    relocs: Vec<(u32, Reloc, i64, DefinedFuncIndex)>,
    /// `(offset in function, trap)`.
    traps: Vec<TrapSite>,
    /// `(offset in function, wasm offset)`.
    srclocs: Vec<(u32, u32)>,
    /// `(offset in function, inlined callee and the wasm offset of its call)`: from
    /// each offset to the next entry, the code is inlined there (`None`: it is not).
    inlined: Vec<(u32, Option<(DefinedFuncIndex, u32)>)>,
    /// The calls with an exception handler, offsets in the function.
    handlers: Vec<HandlerSite>,
    /// The offset of the header of the function's innermost loop (the target of its
    /// shortest backward branch), if it has a loop.
    loop_header: Option<u32>,
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
        let settings: [(&str, &str); 9] = [
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
            // Block offsets and edges, to find loop headers (see `loop_header`).
            ("machine_code_cfg_info", "true"),
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
            inlining: true,
        })
    }

    /// Whether small leaf functions (functions that call nothing) are inlined into
    /// their direct callers; on by default. Backtraces keep the frames of inlined
    /// functions (see [`CompiledModule::inline_map`]).
    pub fn set_inlining(&mut self, inlining: bool) {
        self.inlining = inlining;
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

    /// Validates and translates the body of defined function `index` into the CLIF of
    /// `cx`'s context, unoptimized.
    fn translate_body(
        &self,
        module: &Module,
        offsets: &VMOffsets,
        index: DefinedFuncIndex,
        input: FunctionBodyInput<'_>,
        cx: &mut Scratch,
    ) -> Result<(), CompileError> {
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
        Ok(())
    }

    /// Compiles defined function `index`, whose unoptimized CLIF is in `ctx`, inlining
    /// the calls of small leaves in `leaves` if inlining is on.
    fn compile_function(
        &self,
        module: &Module,
        index: DefinedFuncIndex,
        ctx: &mut Context,
        leaves: &PrimaryMap<DefinedFuncIndex, Option<inline::Leaf>>,
    ) -> Result<CompiledFunction, CompileError> {
        let mut sites = Vec::new();
        if self.inlining
            && let Some(mut inliner) = inline::Leaves::new(leaves, &ctx.func)
        {
            ctx.inline(&mut inliner)
                .map_err(|e| codegen_error(format!("inlining: {e:?}")))?;
            inline::locate_inlined(&mut ctx.func, &inliner.inlined, leaves, &mut sites);
        }
        let func_index = module.func_index(index);
        let name = module.func_name(func_index);
        let mut compiled = self.finish(ctx, Symbol::Function(func_index), name, &sites)?;
        // Wasm functions start at the target's preferred alignment (32 bytes on x86-64),
        // as wasmtime's do: with the minimum (1 byte), where a hot loop falls relative
        // to the processor's fetch and decode windows changes with every function
        // before it, and so does its speed. Trampolines keep the minimum. A function
        // with a loop is placed by its innermost loop instead (see `LOOP_ALIGN`).
        compiled.alignment = compiled
            .alignment
            .max(self.isa.function_alignment().preferred);
        Ok(compiled)
    }

    /// Compiles the function in `ctx`, which is `symbol` (with `name` from the name
    /// section, if any); `sites` are the inlined locations its source locations marked
    /// [`inline::INLINED`] refer to.
    fn finish(
        &self,
        ctx: &mut Context,
        symbol: Symbol,
        name: Option<&str>,
        sites: &[inline::Site],
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
        let mut handlers = Vec::new();
        for site in buffer.call_sites() {
            let handler = site.exception_handlers.iter().find_map(|h| match *h {
                FinalizedMachExceptionHandler::Default(offset) => Some(offset),
                _ => None,
            });
            let Some(handler) = handler else { continue };
            let frame_offset = site
                .frame_offset
                .ok_or_else(|| codegen_error("a call with a handler but no frame offset"))?;
            handlers.push(HandlerSite {
                return_address: site.ret_addr,
                handler,
                frame_offset,
            });
        }
        let mut srclocs = Vec::new();
        let mut inlined = Vec::new();
        let mut in_inlined = false;
        for s in buffer.get_srclocs_sorted() {
            if s.loc.is_default() {
                continue;
            }
            let bits = s.loc.bits();
            if bits & inline::INLINED == 0 {
                srclocs.push((s.start, bits));
                if in_inlined {
                    inlined.push((s.start, None));
                    in_inlined = false;
                }
                continue;
            }
            let site = usize::try_from(bits & !inline::INLINED)
                .ok()
                .and_then(|i| sites.get(i))
                .ok_or_else(|| codegen_error("an inlined location without its site"))?;
            srclocs.push((s.start, site.offset));
            inlined.push((s.start, Some((site.callee, site.call))));
            in_inlined = true;
        }
        Ok(CompiledFunction {
            code: buffer.data().to_vec(),
            alignment: buffer.alignment,
            required_alignment: buffer.alignment,
            loop_header: innermost_loop_header(&compiled.bb_edges),
            relocs,
            traps,
            srclocs,
            inlined,
            handlers,
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
        let mut end = 0u64;
        let mut place = |f: &CompiledFunction, labeled: bool, out: &mut CompiledModule| {
            let mut align = f.alignment.max(min_align);
            if let Some(header) = f.loop_header {
                // The function starts where its innermost loop's header falls on a
                // boundary of `LOOP_ALIGN` bytes, or as near after one as the alignment
                // its code needs (that of its constants) allows; padding comes before.
                let need = u64::from(f.required_alignment.max(min_align));
                let earliest = end.next_multiple_of(need);
                let miss = |start: u64| {
                    let header = start + u64::from(header);
                    header.next_multiple_of(u64::from(LOOP_ALIGN)) - header
                };
                let start = (0..u64::from(LOOP_ALIGN).div_ceil(need))
                    .map(|k| earliest + k * need)
                    .min_by_key(|&start| miss(start))
                    .unwrap_or(earliest);
                if start > end {
                    let filler = vec![0u8; usize::try_from(start - end).expect("small")];
                    text.append(false, &filler, 1, &mut ctrl);
                }
                align = u32::try_from(need).expect("small");
            }
            let start = text.append(labeled, &f.code, align, &mut ctrl);
            end = start + f.code.len() as u64;
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
            // Only wasm functions' handlers: the entry trampolines' catch what reaches
            // the host, and the unwinder stops at their frames.
            if labeled {
                out.handlers.extend(f.handlers.iter().map(|h| HandlerSite {
                    return_address: start + h.return_address,
                    handler: start + h.handler,
                    frame_offset: h.frame_offset,
                }));
            }
            let length =
                u32::try_from(f.code.len()).map_err(|_| codegen_error("function over 4 GiB"))?;
            out.inline_map
                .extend(f.inlined.iter().map(|&(o, site)| InlineSite {
                    offset: start + o,
                    callee: site.map(|(callee, _)| callee),
                    call: site.map_or(0, |(_, call)| call),
                }));
            if let Some((_, Some(_))) = f.inlined.last() {
                // The function ends inside inlined code: the region ends with it.
                out.inline_map.push(InlineSite {
                    offset: start + length,
                    callee: None,
                    call: 0,
                });
            }
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
        out.handlers.sort_by_key(|h| h.return_address);
        Ok(out)
    }
}

/// The boundary a function's innermost loop header is placed on (see `link`). Cranelift
/// aligns no block; where a hot loop falls relative to the processor's 32-byte fetch
/// and decode windows changes its speed by up to 1.8x (`shootout-sieve` on an AMD EPYC
/// took 170 to 305 ms as the code before its loop changed length by a few bytes).
/// Placing the function so that its innermost loop starts a window makes that the same
/// for every build; its entry then has only the minimum alignment.
const LOOP_ALIGN: u32 = 32;

/// The start of the innermost loop among the machine blocks' `edges`: the target of
/// the shortest backward edge.
fn innermost_loop_header(edges: &[(u32, u32)]) -> Option<u32> {
    edges
        .iter()
        .filter(|(from, to)| to <= from)
        .min_by_key(|(from, to)| from - to)
        .map(|&(_, to)| to)
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

/// A defined function's body, as wasm or already translated.
enum Body<'a> {
    /// Not translated yet.
    Wasm(FunctionBodyInput<'a>),
    /// Translated in the first phase (unoptimized CLIF).
    Clif(Box<ir::Function>),
    /// A small leaf, translated in the first phase and kept for inlining.
    Leaf,
}

/// One piece of code for [`Compiler::compile_module`] to compile.
enum Job<'a> {
    /// A defined function.
    Function(DefinedFuncIndex, Body<'a>),
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

/// `f` of every item, on the rayon thread pool with the `parallel-compilation`
/// feature, in the order of `items`.
fn run_in_parallel<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(&mut Scratch, T) -> Result<R, CompileError> + Sync + Send,
) -> Result<Vec<R>, CompileError> {
    #[cfg(feature = "parallel-compilation")]
    {
        use rayon::prelude::*;
        items.into_par_iter().map_init(scratch, f).collect()
    }
    #[cfg(not(feature = "parallel-compilation"))]
    {
        let mut cx = scratch();
        items.into_iter().map(|item| f(&mut cx, item)).collect()
    }
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
        // With inlining on, the small functions are translated first, in a parallel
        // phase of their own, so that the leaves among them can be inlined into the
        // functions of the second phase. The rest are translated in the second.
        let mut leaves: PrimaryMap<DefinedFuncIndex, Option<inline::Leaf>> = PrimaryMap::new();
        let mut bodies: PrimaryMap<DefinedFuncIndex, Body<'_>> = bodies
            .into_iter()
            .map(|(_, input)| Body::Wasm(input))
            .collect();
        // Inlined locations are marked in the top bit of a wasm offset (see
        // `inline::INLINED`), which only a module of 2 GiB or more uses itself.
        let small_enough = bodies.values().all(|body| {
            matches!(body, Body::Wasm(input) if input.body.range().end < u64::from(inline::INLINED))
        });
        if self.inlining && small_enough {
            let mut small = Vec::new();
            for (index, body) in bodies.iter_mut() {
                if matches!(body, Body::Wasm(input)
                    if input.body.range().end - input.body.range().start <= inline::CANDIDATE_BODY_BYTES)
                {
                    let Body::Wasm(input) = std::mem::replace(body, Body::Leaf) else {
                        unreachable!("matched just now")
                    };
                    small.push((index, input));
                }
            }
            let translated = run_in_parallel(small, |cx, (index, input)| {
                self.translate_body(module, &offsets, index, input, cx)?;
                let func = std::mem::replace(&mut cx.0.func, ir::Function::new());
                Ok((index, func))
            })?;
            leaves = bodies.values().map(|_| None).collect();
            for (index, func) in translated {
                if let Some(size) = inline::leaf_size(&func) {
                    leaves[index] = Some(inline::Leaf { func, size });
                } else {
                    bodies[index] = Body::Clif(Box::new(func));
                }
            }
        }
        let leaves = &leaves;

        // Functions, then entry trampolines of the escaping functions, then host-call
        // trampolines: all compiled in one parallel phase, so that a small module with
        // many exports does not compile its trampolines one after another at the end.
        let entries = module.functions.iter().filter_map(|(index, f)| {
            let def = module.defined_func_index(index)?;
            f.func_ref.map(|_| Job::ArrayToWasm(index, def))
        });
        let jobs: Vec<Job<'_>> = bodies
            .into_iter()
            .map(|(index, body)| Job::Function(index, body))
            .chain(entries)
            .chain(signatures.into_iter().map(Job::WasmToArray))
            .collect();
        let compile = |cx: &mut Scratch, job: Job<'_>| -> Result<Compiled, CompileError> {
            match job {
                Job::Function(index, body) => {
                    match body {
                        Body::Wasm(input) => {
                            self.translate_body(module, &offsets, index, input, cx)?
                        }
                        Body::Clif(func) => {
                            cx.0.clear();
                            cx.0.func = *func;
                        }
                        Body::Leaf => {
                            cx.0.clear();
                            cx.0.func =
                                leaves[index].as_ref().expect("a leaf is kept").func.clone();
                        }
                    }
                    let f = self.compile_function(module, index, &mut cx.0, leaves)?;
                    Ok(Compiled::Function(f))
                }
                Job::ArrayToWasm(index, def) => {
                    let (ctx, fctx, _) = cx;
                    ctx.clear();
                    let ty = module.func_type(index);
                    trampoline::array_to_wasm(&mut ctx.func, fctx, target, def, ty);
                    let name = module.func_name(index);
                    let f = self.finish(ctx, Symbol::ArrayToWasm(index), name, &[])?;
                    Ok(Compiled::ArrayToWasm(def, f))
                }
                Job::WasmToArray(type_index) => {
                    let (ctx, fctx, _) = cx;
                    ctx.clear();
                    let ty = &module.types[type_index];
                    trampoline::wasm_to_array(&mut ctx.func, fctx, target, ty);
                    let f = self.finish(ctx, Symbol::WasmToArray(type_index), None, &[])?;
                    Ok(Compiled::WasmToArray(f))
                }
            }
        };
        let compiled = run_in_parallel(jobs, compile)?;

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
        compile_inlining(wat, true)
    }

    fn compile_inlining(
        wat: &str,
        inlining: bool,
    ) -> Result<(Module, CompiledModule), CompileError> {
        let wasm = wat::parse_str(wat).expect("test module parses");
        let translation = translate_module(&wasm, WasmFeatures::default())?;
        let mut compiler =
            CraneliftCompiler::new(Tunables::default_host(), OptLevel::Speed, false)?;
        compiler.set_inlining(inlining);
        let compiled = compiler.compile_module(&translation.module, translation.function_bodies)?;
        Ok((translation.module, compiled))
    }

    /// The offset of the first occurrence of `bytes` in the binary of `wat`, plus `skip`.
    fn offset_of(wat: &str, bytes: &[u8], skip: u32) -> u32 {
        let wasm = wat::parse_str(wat).unwrap();
        let at = wasm.windows(bytes.len()).position(|w| w == bytes).unwrap();
        u32::try_from(at).unwrap() + skip
    }

    const LEAF_CALLER: &str = r#"(module
        (memory 1)
        (func $leaf (param i32) (result i32) (i32.load offset=4 (local.get 0)))
        (func (export "f") (param i32) (result i32)
          (i32.add (call $leaf (local.get 0)) (i32.const 1))))"#;

    #[test]
    fn a_small_leaf_is_inlined_and_its_code_keeps_its_wasm_offsets() {
        let (_, compiled) = compile(LEAF_CALLER).unwrap();
        let caller = compiled.functions[DefinedFuncIndex::new(1)];
        let in_caller = |o: u32| caller.start <= o && o < caller.start + caller.length;
        // The caller's load, inlined: its trap maps to the leaf's `i32.load` and lies in
        // a region inlined at the caller's `call 0`.
        let load = offset_of(LEAF_CALLER, &[0x28, 0x02, 0x04], 0);
        let call = offset_of(LEAF_CALLER, &[0x20, 0x00, 0x10, 0x00], 2);
        let trap = compiled
            .traps
            .iter()
            .find(|t| t.trap == Trap::MemoryOutOfBounds && in_caller(t.offset))
            .expect("the load is inlined into the caller");
        assert_eq!(
            address_of_wasm_offset(&compiled.address_map, trap.offset),
            Some(load)
        );
        let region = compiled
            .inline_map
            .iter()
            .rev()
            .find(|s| s.offset <= trap.offset)
            .unwrap();
        assert_eq!(region.callee, Some(DefinedFuncIndex::new(0)));
        assert_eq!(region.call, call);
        assert!(compiled.inline_map.is_sorted_by_key(|s| s.offset));
    }

    #[test]
    fn without_inlining_nothing_is_inlined() {
        let (_, compiled) = compile_inlining(LEAF_CALLER, false).unwrap();
        assert!(compiled.inline_map.is_empty());
        let caller = compiled.functions[DefinedFuncIndex::new(1)];
        assert!(
            !compiled
                .traps
                .iter()
                .any(|t| t.trap == Trap::MemoryOutOfBounds
                    && caller.start <= t.offset
                    && t.offset < caller.start + caller.length),
            "the load stays in the leaf"
        );
    }

    #[test]
    fn only_leaves_are_inlined() {
        let (_, compiled) = compile(
            r#"(module
                 (func $leaf (result i32) i32.const 7)
                 (func $middle (result i32) (i32.add (call $leaf) (i32.const 1)))
                 (func (export "f") (result i32) (call $middle))
                 (func $self (export "g") (param i32) (result i32)
                   (if (result i32) (local.get 0)
                     (then (call $self (i32.sub (local.get 0) (i32.const 1))))
                     (else (i32.const 0)))))"#,
        )
        .unwrap();
        // `$leaf` returns a constant, so its inlined code has no location of its own;
        // what shows that it was inlined is that `$middle` calls nothing any more, while
        // `f` still calls `$middle`, which is not a leaf, and `$self` still calls itself.
        let callees: Vec<u32> = compiled
            .inline_map
            .iter()
            .filter_map(|s| s.callee.map(|c| c.as_u32()))
            .collect();
        assert!(
            !callees.contains(&1) && !callees.contains(&3),
            "{callees:?}"
        );
    }

    #[test]
    fn a_larger_leaf_is_inlined_only_inside_loops() {
        // Over 20 instructions (above the size inlined everywhere), under 60 (the size
        // for loops), with loads, which the optimizer keeps where they are.
        let mix = "(i32.add (i32.load offset=8 (local.get 0)))".repeat(6);
        let wat = format!(
            r#"(module
                 (memory 1)
                 (func $mix (param i32) (result i32) (local.get 0) {mix})
                 (func (export "once") (param i32) (result i32) (call $mix (local.get 0)))
                 (func (export "looped") (param i32) (result i32)
                   (loop $l
                     (local.set 0 (call $mix (local.get 0)))
                     (br_if $l (i32.and (local.get 0) (i32.const 1))))
                   (local.get 0)))"#
        );
        let (_, compiled) = compile(&wat).unwrap();
        let inlined_into = |caller: usize| {
            let f = compiled.functions[DefinedFuncIndex::new(caller)];
            compiled.inline_map.iter().any(|s| {
                s.callee == Some(DefinedFuncIndex::new(0))
                    && f.start <= s.offset
                    && s.offset < f.start + f.length
            })
        };
        assert!(!inlined_into(1), "a call outside a loop stays");
        assert!(inlined_into(2), "a call inside a loop is inlined");
    }

    #[test]
    fn the_innermost_loop_is_the_shortest_backward_edge() {
        assert_eq!(innermost_loop_header(&[(0, 10), (10, 20)]), None);
        assert_eq!(
            innermost_loop_header(&[(40, 8), (30, 20), (50, 60), (20, 20)]),
            Some(20)
        );
    }

    #[test]
    fn a_function_with_a_loop_is_placed_so_that_its_innermost_loop_starts_a_window() {
        let compiler =
            CraneliftCompiler::new(Tunables::default_host(), OptLevel::Speed, false).unwrap();
        let function = |len: usize, required: u32, loop_header: Option<u32>| CompiledFunction {
            code: vec![0xc3; len],
            alignment: required.max(32),
            required_alignment: required,
            relocs: Vec::new(),
            traps: Vec::new(),
            srclocs: Vec::new(),
            inlined: Vec::new(),
            handlers: Vec::new(),
            loop_header,
        };
        let compiled = compiler
            .link(
                vec![
                    function(7, 1, None),
                    function(50, 1, Some(13)),
                    function(3, 1, None),
                    // Its constants need 16 bytes: the header can be 3 bytes off at best.
                    function(40, 16, Some(13)),
                ],
                Vec::new(),
                Vec::new(),
                &[],
            )
            .unwrap();
        let [first, looping, plain, constants] =
            [0, 1, 2, 3].map(|i| compiled.functions[DefinedFuncIndex::new(i)]);
        assert_eq!(first.start % 32, 0);
        assert_eq!((looping.start + 13) % LOOP_ALIGN, 0);
        assert!(looping.start >= first.start + first.length);
        assert_eq!(
            plain.start % 32,
            0,
            "functions without loops keep their alignment"
        );
        assert_eq!(constants.start % 16, 0);
        assert_eq!((constants.start + 13) % LOOP_ALIGN, 29);
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
