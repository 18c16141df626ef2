//! `proc_exit`, `proc_raise` and `sched_yield`.
//!
//! `proc_exit` is the one call that ends the run: it returns `Error::i32_exit`, which
//! unwinds the wasm stack and reaches the embedder as an error carrying the status.
//! Statuses from 126 on are refused with a plain error instead, as wasmtime does: a
//! host keeps only the low 8 bits of a status (256 would read as success), and shells
//! give 126 and up their own meanings.

use crate::ctx::WasiCtx;
use crate::errno::Errno;

/// The first exit status `proc_exit` refuses.
const MAX_EXIT_STATUS: u32 = 126;

/// `proc_exit`: the error that ends the run with `status`, or, for a status outside
/// `0..126`, an error that says so and carries no exit status.
pub(crate) fn proc_exit(status: u32) -> strata::Error {
    if status < MAX_EXIT_STATUS {
        // Below 126, so the same number as an `i32`.
        strata::Error::i32_exit(status.cast_signed())
    } else {
        strata::Error::msg(format!(
            "proc_exit with exit status {status}, which is outside 0..{MAX_EXIT_STATUS}"
        ))
    }
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
