//! The smallest strata embedder: loads a module precompiled by `strata compile` and
//! calls one of its exports, in a build of `strata` with only the `runtime` feature, so
//! no compiler is linked in.
//!
//! ```sh
//! cargo run -p strata-cli -- compile examples/hello.wat -o hello.swasm
//! cargo run -p strata-example-minimal -- hello.swasm fib 20
//! ```
//!
//! The program itself is in `embed.rs`, written against names strata shares with
//! wasmtime, so that the size benchmark builds the very same program on wasmtime
//! (`benches/minimal-wasmtime`).

use strata as runtime;

include!("embed.rs");
