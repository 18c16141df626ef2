//! The wasmtime twin of strata's minimal embedder: the very same program
//! (`examples/minimal/src/embed.rs`), built on wasmtime 48 with only the runtime, so that
//! `benches/size.sh` compares the binary sizes of two equivalent embedders.

use wasmtime as runtime;

include!("../../../examples/minimal/src/embed.rs");
