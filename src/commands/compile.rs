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
    /// The options `strata run` will be given: `fuel`, `timeout` and the features
    /// (`tail-call`, `wide-arithmetic`, ..., as for `strata run`) change the code, so an
    /// artifact loads only with the same ones (the values of `fuel` and `timeout` do not
    /// matter).
    #[arg(short = 'W', long = "wasm", value_name = "KEY[=VALUE][,..]", value_parser = wasm_options::parse)]
    wasm: Vec<WasmOptionList>,
    /// Also writes the Cranelift IR of every function and trampoline, after
    /// optimization, into DIR (created if missing), one `.clif` file each, named as
    /// `wasmtime compile --emit-clif` names them.
    #[arg(long = "emit-clif", value_name = "DIR")]
    emit_clif: Option<PathBuf>,
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
        let mut config = WasmOptions::new(&self.wasm).config();
        if let Some(dir) = &self.emit_clif {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
            config.emit_clif(dir);
        }
        let engine = Engine::new(&config)?;
        let bytes = std::fs::read(&self.file)
            .with_context(|| format!("failed to read {}", self.file.display()))?;
        let artifact = engine
            .precompile_module(&bytes)
            .with_context(|| format!("failed to compile {}", self.file.display()))?;
        let output = self.output.unwrap_or_else(|| default_output(&self.file));
        write_replacing(&output, &artifact)
            .with_context(|| format!("failed to write {}", output.display()))?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Writes `bytes` to `path` through a temporary file renamed over it, so that a process
/// running an older `path` (whose pages `Module::deserialize_file` uses in place) keeps
/// its file, which rewriting in place would change under it.
fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(name);
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// `FILE` with its extension replaced by `.swasm`.
fn default_output(file: &Path) -> PathBuf {
    file.with_extension("swasm")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_replaced_not_rewritten() {
        let dir = std::env::temp_dir().join(format!("strata-compile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("app.swasm");
        std::fs::write(&out, b"old").unwrap();
        let old = std::fs::File::open(&out).unwrap();
        write_replacing(&out, b"new artifact").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"new artifact");
        // The old file is untouched: an open (or mapped) handle still reads it.
        let mut kept = String::new();
        std::io::Read::read_to_string(&mut &old, &mut kept).unwrap();
        assert_eq!(kept, "old");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_output_defaults_to_a_swasm_beside_the_input() {
        assert_eq!(
            default_output(Path::new("dir/app.wasm")),
            Path::new("dir/app.swasm")
        );
        assert_eq!(default_output(Path::new("app")), Path::new("app.swasm"));
    }
}
