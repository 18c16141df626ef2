//! `clock_res_get` and `clock_time_get`, and the host clocks behind them (also used by
//! `poll_oneoff`).
//!
//! All four preview1 clocks map onto the host's `clock_gettime` clocks: realtime,
//! monotonic, and the CPU time of the process and of the calling thread.

use crate::abi::clockid;
use crate::ctx::WasiCtx;
use crate::errno::Errno;
use crate::memory::GuestMemory;
use rustix::time::{ClockId, Timespec};

/// The host clock of a preview1 clock id.
pub(crate) fn host_clock(id: u32) -> Result<ClockId, Errno> {
    match id {
        clockid::REALTIME => Ok(ClockId::Realtime),
        clockid::MONOTONIC => Ok(ClockId::Monotonic),
        clockid::PROCESS_CPUTIME => Ok(ClockId::ProcessCPUTime),
        clockid::THREAD_CPUTIME => Ok(ClockId::ThreadCPUTime),
        _ => Err(Errno::Inval),
    }
}

/// A time in nanoseconds.
fn nanos(ts: Timespec) -> Result<u64, Errno> {
    let secs = u64::try_from(ts.tv_sec).map_err(|_| Errno::Overflow)?;
    let nsecs = u64::try_from(ts.tv_nsec).map_err(|_| Errno::Overflow)?;
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(nsecs))
        .ok_or(Errno::Overflow)
}

/// The current time of `clock` in nanoseconds.
pub(crate) fn now(clock: ClockId) -> Result<u64, Errno> {
    nanos(rustix::time::clock_gettime(clock))
}

/// `clock_res_get`.
pub(crate) fn clock_res_get(
    _cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    id: u32,
    resolution_ptr: u32,
) -> Result<(), Errno> {
    let resolution = nanos(rustix::time::clock_getres(host_clock(id)?))?;
    // A clock that claims a resolution of 0 would make guests divide by zero.
    mem.write_u64(resolution_ptr, resolution.max(1))
}

/// `clock_time_get`. The precision hint is ignored: the host clock is read directly.
pub(crate) fn clock_time_get(
    _cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    id: u32,
    _precision: u64,
    time_ptr: u32,
) -> Result<(), Errno> {
    let time = now(host_clock(id)?)?;
    mem.write_u64(time_ptr, time)
}
