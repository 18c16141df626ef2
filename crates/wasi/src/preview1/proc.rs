//! `proc_exit`, `proc_raise` and `sched_yield`.
//!
//! `proc_exit` is the one call that ends the run: it returns `Error::i32_exit`, which
//! unwinds the wasm stack and reaches the embedder as an error carrying the status.

use crate::ctx::WasiCtx;
use crate::errno::Errno;

/// `proc_exit`: the error that ends the run with `status`.
pub(crate) fn proc_exit(status: u32) -> strata::Error {
    strata::Error::i32_exit(status.cast_signed())
}

/// `proc_raise`: signals are not supported (`ENOSYS`).
pub(crate) fn proc_raise(_cx: &mut WasiCtx, _signal: u32) -> Result<(), Errno> {
    Err(Errno::Nosys)
}

/// `sched_yield`.
pub(crate) fn sched_yield(_cx: &mut WasiCtx) -> Result<(), Errno> {
    std::thread::yield_now();
    Ok(())
}
