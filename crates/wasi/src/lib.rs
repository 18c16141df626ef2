//! WASI preview1 for strata.
#![forbid(unsafe_code)]
