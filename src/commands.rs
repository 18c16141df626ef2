//! The subcommands of `strata`, one module each.

mod cache_settings;
mod codegen_options;
mod compile;
mod objdump;
mod option_list;
mod run;
mod wasm_options;
mod wast;

pub use compile::CompileCommand;
pub use objdump::ObjdumpCommand;
pub use run::RunCommand;
pub use wast::WastCommand;
