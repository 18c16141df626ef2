//! The subcommands of `strata`, one module each.

mod run;
mod wast;

pub use run::RunCommand;
pub use wast::WastCommand;
