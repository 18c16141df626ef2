//! Regression scripts: every `tests/regressions/*.wast` (each one a bug found by fuzzing
//! or by hand, with the story in its opening comment) runs on the default engine and on
//! the pooling allocator, and every directive must pass.

use std::path::Path;
use strata::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

fn scripts() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut scripts: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("tests/regressions exists")
        .map(|entry| entry.expect("readable").path())
        .filter(|path| path.extension().is_some_and(|e| e == "wast"))
        .map(|path| {
            let contents = std::fs::read_to_string(&path).expect("readable");
            (path.display().to_string(), contents)
        })
        .collect();
    scripts.sort();
    scripts
}

fn run_all(config: &Config) {
    let scripts = scripts();
    assert!(!scripts.is_empty(), "no regression scripts found");
    for (name, contents) in scripts {
        let report = strata_wast::run_file_with(config, &name, &contents)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(
            report.failed.is_empty() && report.passed > 0,
            "{name}: {} passed, failures: {:#?}",
            report.passed,
            report.failed
        );
    }
}

#[test]
fn regression_scripts_pass_on_demand() {
    run_all(&Config::new());
}

#[test]
fn regression_scripts_pass_in_the_pool() {
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(
        PoolingAllocationConfig::default(),
    ));
    run_all(&config);
}
