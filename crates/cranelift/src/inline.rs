//! Inlining of small leaf functions into their direct callers.
//!
//! A toolchain such as LLVM has already inlined what it could see, but a wasm module
//! still calls many tiny functions (`isalpha` through a table, getters, comparison
//! helpers) whose call costs more than their body: the arguments are moved into the
//! calling convention's registers, the caller's live values are spilled around the
//! call, and the callee sets up a frame. Only *leaves* are inlined (functions that call
//! nothing, not even a libcall), and only small ones, so that inlining is one level
//! deep, never recursive, and cheap to compile: a leaf inlined everywhere is about the
//! size of the call sequence it replaces, and larger ones only replace calls in loops.
//!
//! Backtraces stay whole: every inlined instruction keeps its wasm offset in the
//! callee, and the code records at which call it was inlined, so a trap inside an
//! inlined body shows the callee's frame above the caller's (see [`locate_inlined`]).

use cranelift_codegen::dominator_tree::DominatorTree;
use cranelift_codegen::flowgraph::ControlFlowGraph;
use cranelift_codegen::inline::{Inline, InlineCommand};
use cranelift_codegen::ir::{self, SourceLoc};
use cranelift_codegen::loop_analysis::LoopAnalysis;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use strata_environ::{DefinedFuncIndex, EntityRef, PrimaryMap};

/// Functions whose body is at most this many bytes of wasm are translated first and
/// considered for inlining; the rest are never inlined.
pub(crate) const CANDIDATE_BODY_BYTES: u64 = 400;

/// A leaf of at most this many CLIF instructions is inlined at every direct call: about
/// what the call itself costs (moving the arguments, spilling around the call, the
/// callee's frame), so the caller hardly grows.
const SMALL_LEAF_INSTS: usize = 20;

/// A leaf of at most this many instructions is inlined at direct calls inside loops,
/// where the call's cost is paid on every iteration.
const LOOP_LEAF_INSTS: usize = 60;

/// A caller grows by at most this many inlined instructions, or by an eighth of its
/// own size if that is more, so that inlining adds little compile time: with half,
/// `shootout-ed25519` took twice as long to compile, for no faster run.
const MIN_GROWTH_BUDGET: usize = 100;

/// The caller's size divided by this is its growth budget, if above the minimum.
const GROWTH_DIVISOR: usize = 8;

/// The instruction count of `func` if it may be inlined into callers: it calls
/// nothing and has at most [`LOOP_LEAF_INSTS`] instructions.
pub(crate) fn leaf_size(func: &ir::Function) -> Option<usize> {
    let mut insts = 0;
    for block in func.layout.blocks() {
        for inst in func.layout.block_insts(block) {
            insts += 1;
            if insts > LOOP_LEAF_INSTS || func.dfg.insts[inst].opcode().is_call() {
                return None;
            }
        }
    }
    Some(insts)
}

fn inst_count(func: &ir::Function) -> usize {
    func.layout
        .blocks()
        .map(|b| func.layout.block_insts(b).count())
        .sum()
}

/// A leaf kept for inlining: its unoptimized CLIF and its instruction count.
pub(crate) struct Leaf {
    pub(crate) func: ir::Function,
    pub(crate) size: usize,
}

/// Directs Cranelift to inline direct calls of the leaves in `leaves` (indexed by
/// defined function; `None` where a function is not a leaf to inline).
pub(crate) struct Leaves<'a> {
    leaves: &'a PrimaryMap<DefinedFuncIndex, Option<Leaf>>,
    /// The caller's calls that are inside a loop, computed before inlining (inlining
    /// splits blocks but keeps the instructions' numbers).
    in_loops: HashSet<ir::Inst>,
    budget: usize,
    /// The calls inlined so far, with their callees.
    pub(crate) inlined: Vec<(ir::Inst, DefinedFuncIndex)>,
}

impl<'a> Leaves<'a> {
    /// The inliner for `caller`, or `None` if it calls no leaf.
    pub(crate) fn new(
        leaves: &'a PrimaryMap<DefinedFuncIndex, Option<Leaf>>,
        caller: &ir::Function,
    ) -> Option<Leaves<'a>> {
        let mut calls = Vec::new();
        for block in caller.layout.blocks() {
            for inst in caller.layout.block_insts(block) {
                if let ir::InstructionData::Call { func_ref, .. } = caller.dfg.insts[inst]
                    && callee_leaf(leaves, caller, func_ref).is_some()
                {
                    calls.push((block, inst));
                }
            }
        }
        if calls.is_empty() {
            return None;
        }
        let cfg = ControlFlowGraph::with_function(caller);
        let domtree = DominatorTree::with_function(caller, &cfg);
        let mut loops = LoopAnalysis::new();
        loops.compute(caller, &cfg, &domtree);
        let in_loops = calls
            .into_iter()
            .filter(|&(block, _)| loops.innermost_loop(block).is_some())
            .map(|(_, inst)| inst)
            .collect();
        let size = inst_count(caller);
        Some(Leaves {
            leaves,
            in_loops,
            budget: (size / GROWTH_DIVISOR).max(MIN_GROWTH_BUDGET),
            inlined: Vec::new(),
        })
    }
}

/// The leaf that `callee`, a function imported into `caller`, names, if any.
fn callee_leaf<'a>(
    leaves: &'a PrimaryMap<DefinedFuncIndex, Option<Leaf>>,
    caller: &ir::Function,
    callee: ir::FuncRef,
) -> Option<(DefinedFuncIndex, &'a Leaf)> {
    let ir::ExternalName::User(name) = caller.dfg.ext_funcs[callee].name else {
        return None;
    };
    // Namespace 0 names the module's defined functions (see `import_defined_function`).
    let name = &caller.params.user_named_funcs()[name];
    if name.namespace != 0 {
        return None;
    }
    let index = DefinedFuncIndex::new(name.index as usize);
    Some((index, leaves.get(index)?.as_ref()?))
}

impl Inline for Leaves<'_> {
    fn inline(
        &mut self,
        caller: &ir::Function,
        call: ir::Inst,
        opcode: ir::Opcode,
        callee: ir::FuncRef,
        _args: &[ir::Value],
    ) -> InlineCommand<'_> {
        // A tail call's frame replaces the caller's; leave those as they are.
        if opcode != ir::Opcode::Call {
            return InlineCommand::KeepCall;
        }
        let Some((index, leaf)) = callee_leaf(self.leaves, caller, callee) else {
            return InlineCommand::KeepCall;
        };
        let small = leaf.size <= SMALL_LEAF_INSTS;
        if leaf.size > self.budget || !(small || self.in_loops.contains(&call)) {
            return InlineCommand::KeepCall;
        }
        self.budget -= leaf.size;
        self.inlined.push((call, index));
        InlineCommand::Inline {
            callee: Cow::Borrowed(&leaf.func),
            visit_callee: false,
        }
    }
}

/// A wasm location inside an inlined body: `offset` in the body of `callee`, inlined at
/// the call at wasm offset `call`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Site {
    pub(crate) callee: DefinedFuncIndex,
    pub(crate) offset: u32,
    pub(crate) call: u32,
}

/// The bit that marks a source location as an index into a function's [`Site`]s rather
/// than a wasm offset. Wasm offsets below 2 GiB never have it; `compile_module` inlines
/// nothing in a module that large.
pub(crate) const INLINED: u32 = 1 << 31;

/// Gives the instructions that inlining created their place in the wasm: each one's
/// location in its callee, at the call it replaced. Their source locations become
/// indices (marked with [`INLINED`]) into `sites`.
///
/// Cranelift's inliner leaves the new instructions without a location. It creates one
/// block per callee block, numbered in the callee's order from the target of the jump
/// that replaced the call, with the callee's instructions in the callee's order; a
/// block whose instructions do not match (which would mean the inliner works
/// differently) is given the call's own location instead.
pub(crate) fn locate_inlined(
    func: &mut ir::Function,
    calls: &[(ir::Inst, DefinedFuncIndex)],
    leaves: &PrimaryMap<DefinedFuncIndex, Option<Leaf>>,
    sites: &mut Vec<Site>,
) {
    let mut index_of: HashMap<Site, u32> = HashMap::new();
    for &(call, callee) in calls {
        let Some(leaf) = leaves.get(callee).and_then(Option::as_ref) else {
            continue;
        };
        let callee_func = &leaf.func;
        let call_loc = func.srcloc(call);
        let ir::InstructionData::Jump { destination, .. } = func.dfg.insts[call] else {
            continue;
        };
        let Some(entry) = callee_func.layout.entry_block() else {
            continue;
        };
        let first = destination.block(&func.dfg.value_lists);
        let Some(shift) = first.as_u32().checked_sub(entry.as_u32()) else {
            continue;
        };
        for callee_block in callee_func.layout.blocks() {
            let block = ir::Block::from_u32(callee_block.as_u32() + shift);
            if !func.layout.is_block_inserted(block) {
                continue;
            }
            let ours: Vec<ir::Inst> = func.layout.block_insts(block).collect();
            let theirs: Vec<ir::Inst> = callee_func.layout.block_insts(callee_block).collect();
            let same = ours.len() == theirs.len()
                && ours.iter().zip(&theirs).all(|(&o, &t)| {
                    let (o, t) = (
                        func.dfg.insts[o].opcode(),
                        callee_func.dfg.insts[t].opcode(),
                    );
                    o == t || (t.is_return() && o == ir::Opcode::Jump)
                });
            for (at, &inst) in ours.iter().enumerate() {
                let loc = match theirs.get(at) {
                    Some(&t) if same && !callee_func.srcloc(t).is_default() => {
                        let site = Site {
                            callee,
                            offset: callee_func.srcloc(t).bits(),
                            call: call_loc.bits(),
                        };
                        let next = u32::try_from(sites.len()).expect("fewer sites than insts");
                        let index = *index_of.entry(site).or_insert_with(|| {
                            sites.push(site);
                            next
                        });
                        SourceLoc::new(INLINED | index)
                    }
                    _ => call_loc,
                };
                func.set_srcloc(inst, loc);
            }
        }
    }
}
