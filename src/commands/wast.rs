//! `strata wast`: runs WebAssembly spec test scripts and reports failing directives.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::codegen_options::{self, CodegenOptionList, CodegenOptions};
use super::wasm_options::{self, WasmOptionList, WasmOptions};

/// Arguments of `strata wast`.
#[derive(clap::Args)]
pub struct WastCommand {
    /// The engine's options, as for `strata run`: mostly proposals on or off
    /// (`KEY[=y|n]`, e.g. `-W wide-arithmetic,custom-page-sizes`). `fuel` and `timeout`
    /// compile their checks in, but scripts run with unlimited fuel and no deadline;
    /// `max-memory-size` is refused. Repeatable and comma-separated.
    #[arg(short = 'W', long = "wasm", value_name = "KEY[=VALUE][,..]", value_parser = wasm_options::parse)]
    wasm: Vec<WasmOptionList>,
    // Its help, shared with `strata run`, is `codegen_options::HELP`.
    #[arg(short = 'C', long = "codegen", value_name = "KEY[=VALUE][,..]", value_parser = codegen_options::parse, help = codegen_options::HELP)]
    codegen: Vec<CodegenOptionList>,
    /// The scripts to run.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

impl WastCommand {
    /// Runs every script, prints each failure and the totals; fails if any directive
    /// failed.
    ///
    /// # Errors
    /// Fails if `-W max-memory-size` is given (scripts run without limits), the
    /// `-C cache-config` file is not a valid one, or the engine cannot be configured;
    /// unreadable or unparsable scripts count as failures instead.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let options = WasmOptions::new(&self.wasm);
        if options.max_memory_size.is_some() {
            anyhow::bail!(
                "`strata wast` does not take -W max-memory-size: scripts run without limits"
            );
        }
        let mut config = options.config();
        CodegenOptions::new(&self.codegen).configure(&mut config)?;
        // Check the configuration once, rather than failing every script with it.
        strata::Engine::new(&config)?;
        let mut passed = 0;
        let mut failed = 0;
        for path in &self.files {
            let (p, f) = wast_file(&config, path);
            passed += p;
            failed += f;
        }
        println!("{passed} passed, {failed} failed");
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

/// Runs one script on an engine configured by `config`, printing its failures;
/// returns (passed, failed) counts.
/// A script that cannot be read or parsed counts as a single failure.
fn wast_file(config: &strata::Config, path: &Path) -> (usize, usize) {
    let name = path.display().to_string();
    let contents = match std::fs::read_to_string(path) {
        Ok(contents) => contents,
        Err(err) => {
            println!("{name}: failed to read file: {err}");
            return (0, 1);
        }
    };
    match strata_wast::run_file_with(config, &name, &contents) {
        Ok(report) => {
            for failure in &report.failed {
                println!("{name}:{failure}");
            }
            (report.passed, report.failed_count())
        }
        Err(err) => {
            println!("{name}: {err:#}");
            (0, 1)
        }
    }
}
