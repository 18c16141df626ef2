//! `strata compile`: compiles a WebAssembly module ahead of time into a precompiled
//! artifact (`.swasm`), which `strata run` and `Module::deserialize_file` load without
//! compiling. Like `wasmtime compile`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use strata::Engine;

use super::wasm_options::{self, WasmOptionList, WasmOptions};

/// Arguments of `strata compile`.
#[derive(clap::Args)]
pub struct CompileCommand {
    /// Where to write the artifact (default: FILE with the extension `.swasm`).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<PathBuf>,
    /// The options `strata run` will be given: `fuel` and `timeout` change the code, so
    /// an artifact loads only with the same ones (their values do not matter).
    #[arg(short = 'W', long = "wasm", value_name = "KEY=VALUE[,..]", value_parser = wasm_options::parse)]
    wasm: Vec<WasmOptionList>,
    /// The module to compile (binary `.wasm` or text `.wat`).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

impl CompileCommand {
    /// Compiles the module and writes the artifact.
    ///
    /// # Errors
    /// Fails if the module cannot be read or compiled, or the artifact written.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let engine = Engine::new(&WasmOptions::new(&self.wasm).config())?;
        let bytes = std::fs::read(&self.file)
            .with_context(|| format!("failed to read {}", self.file.display()))?;
        let artifact = engine
            .precompile_module(&bytes)
            .with_context(|| format!("failed to compile {}", self.file.display()))?;
        let output = self.output.unwrap_or_else(|| default_output(&self.file));
        std::fs::write(&output, artifact)
            .with_context(|| format!("failed to write {}", output.display()))?;
        Ok(ExitCode::SUCCESS)
    }
}

/// `FILE` with its extension replaced by `.swasm`.
fn default_output(file: &Path) -> PathBuf {
    file.with_extension("swasm")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_defaults_to_a_swasm_beside_the_input() {
        assert_eq!(
            default_output(Path::new("dir/app.wasm")),
            Path::new("dir/app.swasm")
        );
        assert_eq!(default_output(Path::new("app")), Path::new("app.swasm"));
    }
}
