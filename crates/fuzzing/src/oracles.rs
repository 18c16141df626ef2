//! The oracles: each runs one kind of fuzz case and panics on a bug.

pub mod compare;
mod compile;
mod differential;
mod dummy;
mod instantiate;
mod pooling;

pub use compile::compile;
pub use differential::differential;
pub use instantiate::instantiate;
pub use pooling::pooling;
