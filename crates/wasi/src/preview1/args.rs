//! `args_*` and `environ_*`: the guest's argument and environment strings.
//!
//! Both hand over a list of NUL-terminated strings the same way: the `*_sizes_get` call
//! reports how many there are and how many bytes they take, and the `*_get` call writes
//! a pointer to each into one array and the strings themselves, back to back, into one
//! buffer.
//!
//! A list the embedder gave a string the guest cannot receive intact (see
//! [`WasiCtxBuilder`](crate::WasiCtxBuilder)) fails both calls with `EINVAL`.

use crate::ctx::WasiCtx;
use crate::errno::Errno;
use crate::memory::GuestMemory;

/// `args_sizes_get`.
pub(crate) fn args_sizes_get(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    count_ptr: u32,
    size_ptr: u32,
) -> Result<(), Errno> {
    sizes_get(strings(cx.args.as_deref())?, mem, count_ptr, size_ptr)
}

/// `args_get`.
pub(crate) fn args_get(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    argv: u32,
    argv_buf: u32,
) -> Result<(), Errno> {
    strings_get(strings(cx.args.as_deref())?, mem, argv, argv_buf)
}

/// `environ_sizes_get`.
pub(crate) fn environ_sizes_get(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    count_ptr: u32,
    size_ptr: u32,
) -> Result<(), Errno> {
    sizes_get(strings(cx.env.as_deref())?, mem, count_ptr, size_ptr)
}

/// `environ_get`.
pub(crate) fn environ_get(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    environ: u32,
    environ_buf: u32,
) -> Result<(), Errno> {
    strings_get(strings(cx.env.as_deref())?, mem, environ, environ_buf)
}

/// The strings of a list, or `EINVAL` if one cannot reach the guest intact.
fn strings(list: Option<&[String]>) -> Result<&[String], Errno> {
    list.ok_or(Errno::Inval)
}

/// How many strings, and their total size with a NUL after each.
fn sizes(strings: &[String]) -> Result<(u32, u32), Errno> {
    let count = u32::try_from(strings.len()).map_err(|_| Errno::Overflow)?;
    let size = strings
        .iter()
        .try_fold(0u32, |total, s| {
            let len = u32::try_from(s.len()).ok()?;
            total.checked_add(len)?.checked_add(1)
        })
        .ok_or(Errno::Overflow)?;
    Ok((count, size))
}

fn sizes_get(
    strings: &[String],
    mem: &mut GuestMemory<'_>,
    count_ptr: u32,
    size_ptr: u32,
) -> Result<(), Errno> {
    let (count, size) = sizes(strings)?;
    mem.check(count_ptr, 4)?;
    mem.check(size_ptr, 4)?;
    mem.write_u32(count_ptr, count)?;
    mem.write_u32(size_ptr, size)
}

fn strings_get(
    strings: &[String],
    mem: &mut GuestMemory<'_>,
    ptrs: u32,
    buf: u32,
) -> Result<(), Errno> {
    let (count, size) = sizes(strings)?;
    mem.check(ptrs, u64::from(count) * 4)?;
    mem.check(buf, u64::from(size))?;
    // Both ranges lie in memory, so only the position after the last NUL can reach
    // 2^32, and it is never used.
    let mut at = buf;
    for (i, s) in (0u32..).zip(strings) {
        mem.write_u32(ptrs + i * 4, at)?;
        mem.write(at, s.as_bytes())?;
        at += s.len() as u32;
        mem.write_u8(at, 0)?;
        at = at.wrapping_add(1);
    }
    Ok(())
}
