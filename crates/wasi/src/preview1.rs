//! [`add_to_linker`]: defines all 46 functions of `wasi_snapshot_preview1`.
//!
//! Each function is a thin closure that finds the caller's `memory` export once, splits
//! the store into guest memory and the [`WasiCtx`], and calls a plain function of one of
//! the submodules, which is compiled once whatever the store's data type is. That
//! function returns `Result<(), Errno>`; the closure turns it into the errno the guest
//! sees. Only two things become host errors: `proc_exit`, and a call needing memory
//! from a module that exports none.

mod args;
mod clock;
mod dir;
mod fd;
mod path;
mod poll;
mod proc;
mod random;
mod sock;
mod stat;

use crate::ctx::WasiCtx;
use crate::errno::Errno;
use crate::memory::GuestMemory;
use strata::{Caller, Extern, Linker};

/// The import module name of preview1.
const MODULE: &str = "wasi_snapshot_preview1";

/// The errno a host function returns.
fn errno(result: Result<(), Errno>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => i32::from(e.raw()),
    }
}

/// Runs `f` on the caller's memory and WASI context.
///
/// # Errors
/// Fails if the calling instance exports no memory named `memory`.
fn with_memory<T>(
    mut caller: Caller<'_, T>,
    get_cx: impl Fn(&mut T) -> &mut WasiCtx,
    name: &str,
    f: impl FnOnce(&mut WasiCtx, &mut GuestMemory<'_>) -> Result<(), Errno>,
) -> strata::Result<i32> {
    let Some(memory) = caller.get_export("memory").and_then(Extern::into_memory) else {
        return Err(strata::Error::msg(format!(
            "`{MODULE}::{name}` needs the calling module to export its memory as `memory`"
        )));
    };
    let (bytes, data) = memory.data_and_store_mut(&mut caller);
    Ok(errno(f(get_cx(data), &mut GuestMemory::new(bytes))))
}

/// Runs `f` on the caller's WASI context, for functions that take no pointers.
fn with_ctx<T>(
    mut caller: Caller<'_, T>,
    get_cx: impl Fn(&mut T) -> &mut WasiCtx,
    f: impl FnOnce(&mut WasiCtx) -> Result<(), Errno>,
) -> i32 {
    errno(f(get_cx(caller.data_mut())))
}

/// Defines a host function whose body needs guest memory.
macro_rules! with_memory {
    ($linker:ident, $get_cx:ident, $name:literal, $func:path, ($($arg:ident: $ty:ty),*)) => {
        $linker.func_wrap(MODULE, $name, move |caller: Caller<'_, T>, $($arg: $ty),*| {
            with_memory(caller, $get_cx, $name, |cx, mem| $func(cx, mem, $($arg),*))
        })?;
    };
}

/// Defines a host function that takes no pointers.
macro_rules! with_ctx {
    ($linker:ident, $get_cx:ident, $name:literal, $func:path, ($($arg:ident: $ty:ty),*)) => {
        $linker.func_wrap(MODULE, $name, move |caller: Caller<'_, T>, $($arg: $ty),*| {
            with_ctx(caller, $get_cx, |cx| $func(cx, $($arg),*))
        })?;
    };
}

/// Defines every function of `wasi_snapshot_preview1` in `linker`. `get_cx` finds the
/// [`WasiCtx`] in the store's data.
///
/// Guest mistakes (bad fds, missing rights, pointers outside memory) come back to the
/// guest as errnos. The run ends with an error only when the guest calls `proc_exit`
/// (read the status with [`strata::Error::i32_exit_status`]; a status outside `0..126`
/// gives an error without one, as a host process keeps only a status's low 8 bits and
/// shells reserve 126 and up), or calls a function that needs memory without exporting
/// one named `memory`.
///
/// # Errors
/// Fails if `linker` already defines one of these names and does not allow shadowing.
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get_cx: impl Fn(&mut T) -> &mut WasiCtx + Copy + Send + Sync + 'static,
) -> strata::Result<()> {
    with_memory!(linker, get_cx, "args_get", args::args_get, (argv: u32, buf: u32));
    with_memory!(linker, get_cx, "args_sizes_get", args::args_sizes_get, (count: u32, size: u32));
    with_memory!(linker, get_cx, "environ_get", args::environ_get, (environ: u32, buf: u32));
    with_memory!(linker, get_cx, "environ_sizes_get", args::environ_sizes_get, (count: u32, size: u32));
    with_memory!(linker, get_cx, "clock_res_get", clock::clock_res_get, (id: u32, res: u32));
    with_memory!(linker, get_cx, "clock_time_get", clock::clock_time_get, (id: u32, precision: u64, time: u32));
    with_ctx!(linker, get_cx, "fd_advise", fd::fd_advise, (fd: u32, offset: u64, len: u64, advice: u32));
    with_ctx!(linker, get_cx, "fd_allocate", fd::fd_allocate, (fd: u32, offset: u64, len: u64));
    with_ctx!(linker, get_cx, "fd_close", fd::fd_close, (fd: u32));
    with_ctx!(linker, get_cx, "fd_datasync", fd::fd_datasync, (fd: u32));
    with_memory!(linker, get_cx, "fd_fdstat_get", fd::fd_fdstat_get, (fd: u32, stat: u32));
    with_ctx!(linker, get_cx, "fd_fdstat_set_flags", fd::fd_fdstat_set_flags, (fd: u32, flags: u32));
    with_ctx!(linker, get_cx, "fd_fdstat_set_rights", fd::fd_fdstat_set_rights, (fd: u32, base: u64, inheriting: u64));
    with_memory!(linker, get_cx, "fd_filestat_get", stat::fd_filestat_get, (fd: u32, stat: u32));
    with_ctx!(linker, get_cx, "fd_filestat_set_size", stat::fd_filestat_set_size, (fd: u32, size: u64));
    with_ctx!(linker, get_cx, "fd_filestat_set_times", stat::fd_filestat_set_times, (fd: u32, atim: u64, mtim: u64, flags: u32));
    with_memory!(linker, get_cx, "fd_pread", fd::fd_pread, (fd: u32, iovs: u32, iovs_len: u32, offset: u64, nread: u32));
    with_memory!(linker, get_cx, "fd_prestat_get", dir::fd_prestat_get, (fd: u32, prestat: u32));
    with_memory!(linker, get_cx, "fd_prestat_dir_name", dir::fd_prestat_dir_name, (fd: u32, path: u32, path_len: u32));
    with_memory!(linker, get_cx, "fd_pwrite", fd::fd_pwrite, (fd: u32, iovs: u32, iovs_len: u32, offset: u64, nwritten: u32));
    with_memory!(linker, get_cx, "fd_read", fd::fd_read, (fd: u32, iovs: u32, iovs_len: u32, nread: u32));
    with_memory!(linker, get_cx, "fd_readdir", dir::fd_readdir, (fd: u32, buf: u32, buf_len: u32, cookie: u64, bufused: u32));
    with_ctx!(linker, get_cx, "fd_renumber", fd::fd_renumber, (fd: u32, to: u32));
    with_memory!(linker, get_cx, "fd_seek", fd::fd_seek, (fd: u32, offset: i64, whence: u32, newoffset: u32));
    with_ctx!(linker, get_cx, "fd_sync", fd::fd_sync, (fd: u32));
    with_memory!(linker, get_cx, "fd_tell", fd::fd_tell, (fd: u32, offset: u32));
    with_memory!(linker, get_cx, "fd_write", fd::fd_write, (fd: u32, iovs: u32, iovs_len: u32, nwritten: u32));
    with_memory!(linker, get_cx, "path_create_directory", path::path_create_directory, (fd: u32, path: u32, path_len: u32));
    with_memory!(linker, get_cx, "path_filestat_get", path::path_filestat_get, (fd: u32, flags: u32, path: u32, path_len: u32, stat: u32));
    with_memory!(linker, get_cx, "path_filestat_set_times", path::path_filestat_set_times, (fd: u32, flags: u32, path: u32, path_len: u32, atim: u64, mtim: u64, fst_flags: u32));
    with_memory!(linker, get_cx, "path_link", path::path_link, (old_fd: u32, old_flags: u32, old_path: u32, old_path_len: u32, new_fd: u32, new_path: u32, new_path_len: u32));
    with_memory!(linker, get_cx, "path_open", path::path_open, (fd: u32, dirflags: u32, path: u32, path_len: u32, oflags: u32, base: u64, inheriting: u64, fdflags: u32, opened: u32));
    with_memory!(linker, get_cx, "path_readlink", path::path_readlink, (fd: u32, path: u32, path_len: u32, buf: u32, buf_len: u32, bufused: u32));
    with_memory!(linker, get_cx, "path_remove_directory", path::path_remove_directory, (fd: u32, path: u32, path_len: u32));
    with_memory!(linker, get_cx, "path_rename", path::path_rename, (fd: u32, old_path: u32, old_path_len: u32, new_fd: u32, new_path: u32, new_path_len: u32));
    with_memory!(linker, get_cx, "path_symlink", path::path_symlink, (old_path: u32, old_path_len: u32, fd: u32, new_path: u32, new_path_len: u32));
    with_memory!(linker, get_cx, "path_unlink_file", path::path_unlink_file, (fd: u32, path: u32, path_len: u32));
    with_memory!(linker, get_cx, "poll_oneoff", poll::poll_oneoff, (subs: u32, events: u32, nsubs: u32, nevents: u32));
    linker.func_wrap(MODULE, "proc_exit", |status: u32| -> strata::Result<()> {
        Err(proc::proc_exit(status))
    })?;
    with_ctx!(linker, get_cx, "proc_raise", proc::proc_raise, (signal: u32));
    with_ctx!(linker, get_cx, "sched_yield", proc::sched_yield, ());
    with_memory!(linker, get_cx, "random_get", random::random_get, (buf: u32, len: u32));
    with_memory!(linker, get_cx, "sock_accept", sock::sock_accept, (fd: u32, flags: u32, new_fd: u32));
    with_memory!(linker, get_cx, "sock_recv", sock::sock_recv, (fd: u32, data: u32, data_len: u32, flags: u32, datalen: u32, oflags: u32));
    with_memory!(linker, get_cx, "sock_send", sock::sock_send, (fd: u32, data: u32, data_len: u32, flags: u32, datalen: u32));
    with_ctx!(linker, get_cx, "sock_shutdown", sock::sock_shutdown, (fd: u32, how: u32));
    Ok(())
}
