//! `strata wast`: runs WebAssembly spec test scripts and reports failing directives.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `strata wast`.
#[derive(clap::Args)]
pub struct WastCommand {
    /// The scripts to run.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

impl WastCommand {
    /// Runs every script, prints each failure and the totals; fails if any directive
    /// failed.
    ///
    /// # Errors
    /// Never: unreadable or unparsable scripts count as failures instead.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let mut passed = 0;
        let mut failed = 0;
        for path in &self.files {
            let (p, f) = wast_file(path);
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

/// Runs one script, printing its failures; returns (passed, failed) counts.
/// A script that cannot be read or parsed counts as a single failure.
fn wast_file(path: &Path) -> (usize, usize) {
    let name = path.display().to_string();
    let contents = match std::fs::read_to_string(path) {
        Ok(contents) => contents,
        Err(err) => {
            println!("{name}: failed to read file: {err}");
            return (0, 1);
        }
    };
    match strata_wast::run_file(&name, &contents) {
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
