//! `strata objdump`: the disassembly of a module's compiled code, function by function,
//! labeled as wasmtime labels its code (`wasm[0]::function[3]`, with the name from the
//! name section), so that strata's code for a function can be set beside
//! `wasmtime objdump`'s.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use capstone::Capstone;
use capstone::arch::{BuildsCapstone as _, BuildsCapstoneSyntax as _};
use strata::{Engine, Module, ModuleFunction};

use super::run::load_module;
use super::wasm_options::{self, WasmOptionList, WasmOptions};

/// Arguments of `strata objdump`.
#[derive(clap::Args)]
pub struct ObjdumpCommand {
    /// Show the bytes of each instruction.
    #[arg(long)]
    bytes: bool,
    /// Show only the functions whose label (`wasm[0]::function[N]` and the name)
    /// contains this text.
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// The options the module was (or is to be) compiled with, as for `strata compile`:
    /// a precompiled module loads only with the ones it was compiled with.
    #[arg(short = 'W', long = "wasm", value_name = "KEY[=VALUE][,..]", value_parser = wasm_options::parse)]
    wasm: Vec<WasmOptionList>,
    /// A precompiled module (`.swasm`, from `strata compile`), or a `.wasm` or `.wat`
    /// module, which is compiled first.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

impl ObjdumpCommand {
    /// Prints the disassembly of every function of the module.
    ///
    /// # Errors
    /// Fails if the module cannot be loaded or compiled, or the host's instruction set
    /// has no disassembler.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let engine = Engine::new(&WasmOptions::new(&self.wasm).config())?;
        let module = load_module(&engine, &self.file)
            .with_context(|| format!("failed to load {}", self.file.display()))?;
        let disassembler = host_disassembler()?;
        let mut out = std::io::stdout().lock();
        for function in module.functions() {
            let label = label(&function);
            if self.filter.as_ref().is_some_and(|f| !label.contains(f)) {
                continue;
            }
            writeln!(out, "\n{label}:")?;
            dump(&mut out, &disassembler, &module, &function, self.bytes)?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `wasm[0]::function[N]`, then the function's name in parentheses if it has one.
fn label(function: &ModuleFunction<'_>) -> String {
    let symbol = format!("wasm[0]::function[{}]", function.index);
    match function.name {
        Some(name) => format!("{symbol} ({})", name.escape_debug()),
        None => symbol,
    }
}

/// A disassembler for the instruction set strata compiles for on this host, in the
/// syntax of Cranelift's own disassembly (AT&T on x86-64).
fn host_disassembler() -> anyhow::Result<Capstone> {
    let built = if cfg!(target_arch = "x86_64") {
        Capstone::new()
            .x86()
            .mode(capstone::arch::x86::ArchMode::Mode64)
            .syntax(capstone::arch::x86::ArchSyntax::Att)
            .build()
    } else if cfg!(target_arch = "aarch64") {
        Capstone::new()
            .arm64()
            .mode(capstone::arch::arm64::ArchMode::Arm)
            .build()
    } else {
        return Err(anyhow!("no disassembler for this host's instruction set"));
    };
    built.map_err(|e| anyhow!("failed to set up the disassembler: {e}"))
}

/// Writes the instructions of `function`, one a line: its offset from the start of the
/// text section, optionally its bytes, then the instruction.
fn dump(
    out: &mut impl std::io::Write,
    disassembler: &Capstone,
    module: &Module,
    function: &ModuleFunction<'_>,
    bytes: bool,
) -> anyhow::Result<()> {
    let code = module
        .text()
        .get(function.offset..function.offset + function.len)
        .ok_or_else(|| anyhow!("function {} lies outside the text", function.index))?;
    let instructions = disassembler
        .disasm_all(code, function.offset as u64)
        .map_err(|e| anyhow!("failed to disassemble function {}: {e}", function.index))?;
    let mut decoded = 0;
    for insn in instructions.iter() {
        write!(out, "{:>8x}:  ", insn.address())?;
        if bytes {
            let hex: Vec<String> = insn.bytes().iter().map(|b| format!("{b:02x}")).collect();
            write!(out, "{:<32}", hex.join(" "))?;
        }
        let mnemonic = insn.mnemonic().unwrap_or("?");
        match insn.op_str().filter(|ops| !ops.is_empty()) {
            Some(ops) => writeln!(out, "{mnemonic} {ops}")?,
            None => writeln!(out, "{mnemonic}")?,
        }
        decoded += insn.len();
    }
    // Capstone stops at the first byte sequence it cannot decode.
    if decoded < code.len() {
        writeln!(
            out,
            "{:>8x}:  ({} bytes not decoded)",
            function.offset + decoded,
            code.len() - decoded
        )?;
    }
    Ok(())
}
