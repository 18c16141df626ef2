//! `fd_*` calls on any open descriptor: read, write (plain and positioned), seek and
//! tell, fdstat flags and rights, advise, allocate, sync, close and renumber.
//!
//! The iovec array of a read or write is read once, before any buffer is touched (see
//! [`Iovecs`]). Reads fill the guest's buffers in order and stop at the first short
//! read; from a source that may block (inherited stdin, a socket) only the first
//! non-empty buffer is filled, so a read never waits for more than the host has. Writes
//! to files gather up to [`MAX_GATHER`] buffers into one `writev`; more come back as a
//! short write, which guests retry.

use crate::abi::{FDSTAT_SIZE, FdFlags, Filetype, Rights, flags_u16, whence};
use crate::ctx::WasiCtx;
use crate::errno::Errno;
use crate::memory::{GuestMemory, Iovecs};
use crate::table::Descriptor;
use rustix::fd::{AsFd, OwnedFd};
use std::io::{IoSlice, Read, Seek, SeekFrom, Write};
use system_interface::fs::{Advice, FileIoExt, GetSetFdFlags};

/// The most buffers one `fd_write` hands to the host at once.
const MAX_GATHER: usize = 16;

/// Retries `op` while it is interrupted by a signal.
pub(crate) fn retry<R>(mut op: impl FnMut() -> std::io::Result<R>) -> Result<R, Errno> {
    loop {
        match op() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other.map_err(Errno::from),
        }
    }
}

/// Reads into checked iovecs with `read`, returning the bytes read. With `once`, only
/// the first non-empty buffer is offered; otherwise buffers are filled until a short
/// read. An error after some bytes were read ends the read early instead.
pub(crate) fn read_into(
    mem: &mut GuestMemory<'_>,
    iovecs: &Iovecs,
    once: bool,
    mut read: impl FnMut(&mut [u8]) -> Result<usize, Errno>,
) -> Result<u32, Errno> {
    let mut total = 0u32;
    for iovec in iovecs.iter() {
        let buf = mem.buf_mut(iovec);
        let want = buf.len();
        let n = match read(buf) {
            Ok(n) => n.min(want),
            Err(_) if total > 0 => break,
            Err(e) => return Err(e),
        };
        // All buffers together hold at most `u32::MAX` bytes, so neither saturates.
        total = total.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        if once || n < want {
            break;
        }
    }
    Ok(total)
}

/// The first [`MAX_GATHER`] non-empty buffers of checked iovecs.
fn gather<'m>(
    mem: &'m GuestMemory<'_>,
    iovecs: &Iovecs,
    slices: &mut [IoSlice<'m>; MAX_GATHER],
) -> usize {
    let mut n = 0;
    for (slice, iovec) in slices.iter_mut().zip(iovecs.iter()) {
        *slice = IoSlice::new(mem.buf(iovec));
        n += 1;
    }
    n
}

/// Writes checked iovecs with one vectored write.
pub(crate) fn write_gathered(
    mem: &GuestMemory<'_>,
    iovecs: &Iovecs,
    mut write: impl FnMut(&[IoSlice<'_>]) -> std::io::Result<usize>,
) -> Result<u32, Errno> {
    let mut slices = [IoSlice::new(&[]); MAX_GATHER];
    let n = gather(mem, iovecs, &mut slices);
    if n == 0 {
        return Ok(0);
    }
    let written = retry(|| write(&slices[..n]))?;
    u32::try_from(written).map_err(|_| Errno::Overflow)
}

/// `fd_read`.
pub(crate) fn fd_read(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    iovs: u32,
    iovs_len: u32,
    nread_ptr: u32,
) -> Result<(), Errno> {
    let iovecs = mem.iovecs(iovs, iovs_len)?;
    mem.check(nread_ptr, 4)?;
    let entry = cx.table.get_mut(fd)?;
    entry.require(Rights::FD_READ)?;
    let n = match &mut entry.desc {
        Descriptor::File(file) => read_into(mem, &iovecs, false, |buf| retry(|| file.read(buf)))?,
        Descriptor::Input(input) => {
            read_into(mem, &iovecs, input.may_block(), |buf| input.read(buf))?
        }
        Descriptor::Stream(stream) => {
            read_into(mem, &iovecs, true, |buf| retry(|| stream.read(buf)))?
        }
        _ => return Err(Errno::Badf),
    };
    mem.write_u32(nread_ptr, n)
}

/// `fd_pread`: reads at `offset` without moving the file position.
pub(crate) fn fd_pread(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    iovs: u32,
    iovs_len: u32,
    offset: u64,
    nread_ptr: u32,
) -> Result<(), Errno> {
    let iovecs = mem.iovecs(iovs, iovs_len)?;
    mem.check(nread_ptr, 4)?;
    let entry = cx.table.get(fd)?;
    entry.require(Rights::FD_READ | Rights::FD_SEEK)?;
    let Descriptor::File(file) = &entry.desc else {
        return Err(Errno::Spipe);
    };
    let mut at = offset;
    let n = read_into(mem, &iovecs, false, |buf| {
        let n = retry(|| file.read_at(buf, at))?;
        at = at.saturating_add(n as u64);
        Ok(n)
    })?;
    mem.write_u32(nread_ptr, n)
}

/// `fd_write`.
pub(crate) fn fd_write(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    iovs: u32,
    iovs_len: u32,
    nwritten_ptr: u32,
) -> Result<(), Errno> {
    let iovecs = mem.iovecs(iovs, iovs_len)?;
    mem.check(nwritten_ptr, 4)?;
    let entry = cx.table.get_mut(fd)?;
    entry.require(Rights::FD_WRITE)?;
    let n = match &mut entry.desc {
        Descriptor::Output(output) => {
            let bufs = iovecs.iter().map(|iovec| mem.buf(iovec));
            let n = output.write_all(bufs)?;
            u32::try_from(n).map_err(|_| Errno::Overflow)?
        }
        Descriptor::File(file) => write_gathered(mem, &iovecs, |bufs| file.write_vectored(bufs))?,
        Descriptor::Stream(stream) => {
            write_gathered(mem, &iovecs, |bufs| stream.write_vectored(bufs))?
        }
        _ => return Err(Errno::Badf),
    };
    mem.write_u32(nwritten_ptr, n)
}

/// `fd_pwrite`: writes at `offset` without moving the file position.
pub(crate) fn fd_pwrite(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    iovs: u32,
    iovs_len: u32,
    offset: u64,
    nwritten_ptr: u32,
) -> Result<(), Errno> {
    let iovecs = mem.iovecs(iovs, iovs_len)?;
    mem.check(nwritten_ptr, 4)?;
    let entry = cx.table.get(fd)?;
    entry.require(Rights::FD_WRITE | Rights::FD_SEEK)?;
    let Descriptor::File(file) = &entry.desc else {
        return Err(Errno::Spipe);
    };
    let n = write_gathered(mem, &iovecs, |bufs| file.write_vectored_at(bufs, offset))?;
    mem.write_u32(nwritten_ptr, n)
}

/// `fd_seek`.
pub(crate) fn fd_seek(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    offset: i64,
    whence: u32,
    newoffset_ptr: u32,
) -> Result<(), Errno> {
    let pos = match whence {
        whence::SET => SeekFrom::Start(u64::try_from(offset).map_err(|_| Errno::Inval)?),
        whence::CUR => SeekFrom::Current(offset),
        whence::END => SeekFrom::End(offset),
        _ => return Err(Errno::Inval),
    };
    mem.check(newoffset_ptr, 8)?;
    let entry = cx.table.get_mut(fd)?;
    // Asking where the position is without moving it needs only `FD_TELL`.
    let right = if pos == SeekFrom::Current(0) {
        Rights::FD_TELL
    } else {
        Rights::FD_SEEK
    };
    entry.require(right)?;
    let Descriptor::File(file) = &mut entry.desc else {
        return Err(Errno::Spipe);
    };
    let new = retry(|| file.seek(pos))?;
    mem.write_u64(newoffset_ptr, new)
}

/// `fd_tell`.
pub(crate) fn fd_tell(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    offset_ptr: u32,
) -> Result<(), Errno> {
    mem.check(offset_ptr, 8)?;
    let entry = cx.table.get_mut(fd)?;
    entry.require(Rights::FD_TELL)?;
    let Descriptor::File(file) = &mut entry.desc else {
        return Err(Errno::Spipe);
    };
    let pos = retry(|| file.stream_position())?;
    mem.write_u64(offset_ptr, pos)
}

/// `fd_close`. Preopens and stdio may be closed too.
pub(crate) fn fd_close(cx: &mut WasiCtx, fd: u32) -> Result<(), Errno> {
    cx.table.remove(fd).map(drop)
}

/// `fd_renumber`: moves `from` onto `to`, closing what `to` was.
pub(crate) fn fd_renumber(cx: &mut WasiCtx, from: u32, to: u32) -> Result<(), Errno> {
    cx.table.renumber(from, to)
}

/// A directory opened for reading, as a file: cap-std may hold directories by handles
/// (`O_PATH` on Linux) that cannot be synced.
fn dir_as_file(dir: &cap_std::fs::Dir) -> std::io::Result<cap_std::fs::File> {
    use cap_fs_ext::OpenOptionsMaybeDirExt;
    dir.open_with(
        ".",
        cap_std::fs::OpenOptions::new().read(true).maybe_dir(true),
    )
}

/// `fd_sync`.
pub(crate) fn fd_sync(cx: &mut WasiCtx, fd: u32) -> Result<(), Errno> {
    let entry = cx.table.get(fd)?;
    entry.require(Rights::FD_SYNC)?;
    match &entry.desc {
        Descriptor::File(file) => retry(|| file.sync_all()),
        Descriptor::Dir(dir) => retry(|| dir_as_file(&dir.dir)?.sync_all()),
        Descriptor::Output(output) => output.flush(),
        _ => Err(Errno::Inval),
    }
}

/// `fd_datasync`.
pub(crate) fn fd_datasync(cx: &mut WasiCtx, fd: u32) -> Result<(), Errno> {
    let entry = cx.table.get(fd)?;
    entry.require(Rights::FD_DATASYNC)?;
    match &entry.desc {
        Descriptor::File(file) => retry(|| file.sync_data()),
        Descriptor::Dir(dir) => retry(|| dir_as_file(&dir.dir)?.sync_data()),
        Descriptor::Output(output) => output.flush(),
        _ => Err(Errno::Inval),
    }
}

/// `fd_advise`.
pub(crate) fn fd_advise(
    cx: &mut WasiCtx,
    fd: u32,
    offset: u64,
    len: u64,
    advice: u32,
) -> Result<(), Errno> {
    let advice = match advice {
        0 => Advice::Normal,
        1 => Advice::Sequential,
        2 => Advice::Random,
        3 => Advice::WillNeed,
        4 => Advice::DontNeed,
        5 => Advice::NoReuse,
        _ => return Err(Errno::Inval),
    };
    let entry = cx.table.get(fd)?;
    entry.require(Rights::FD_ADVISE)?;
    let Descriptor::File(file) = &entry.desc else {
        return Err(Errno::Badf);
    };
    Ok(file.advise(offset, len, advice)?)
}

/// `fd_allocate`.
pub(crate) fn fd_allocate(cx: &mut WasiCtx, fd: u32, offset: u64, len: u64) -> Result<(), Errno> {
    let entry = cx.table.get(fd)?;
    entry.require(Rights::FD_ALLOCATE)?;
    let Descriptor::File(file) = &entry.desc else {
        return Err(Errno::Badf);
    };
    if len == 0
        || offset
            .checked_add(len)
            .is_none_or(|end| end > i64::MAX as u64)
    {
        return Err(Errno::Inval);
    }
    retry(|| file.allocate(offset, len))
}

/// The preview1 form of host fd flags.
fn wasi_flags(host: system_interface::fs::FdFlags) -> FdFlags {
    use system_interface::fs::FdFlags as Host;
    let mut flags = FdFlags::empty();
    flags.set(FdFlags::APPEND, host.contains(Host::APPEND));
    flags.set(FdFlags::DSYNC, host.contains(Host::DSYNC));
    flags.set(FdFlags::NONBLOCK, host.contains(Host::NONBLOCK));
    flags.set(FdFlags::RSYNC, host.contains(Host::RSYNC));
    flags.set(FdFlags::SYNC, host.contains(Host::SYNC));
    flags
}

/// The flags of a host file descriptor.
fn host_flags(fd: &impl AsFd) -> Result<FdFlags, Errno> {
    Ok(wasi_flags(fd.get_fd_flags()?))
}

/// Sets `APPEND` and `NONBLOCK` of a host file descriptor. The sync flags cannot change
/// after opening (`ENOTSUP` if asked to).
fn set_host_flags<F: AsFd + From<OwnedFd>>(fd: &mut F, flags: FdFlags) -> Result<(), Errno> {
    let syncs = FdFlags::DSYNC | FdFlags::RSYNC | FdFlags::SYNC;
    if (host_flags(fd)? & syncs) != (flags & syncs) {
        return Err(Errno::Notsup);
    }
    let mut host = system_interface::fs::FdFlags::empty();
    host.set(
        system_interface::fs::FdFlags::APPEND,
        flags.contains(FdFlags::APPEND),
    );
    host.set(
        system_interface::fs::FdFlags::NONBLOCK,
        flags.contains(FdFlags::NONBLOCK),
    );
    let set = (*fd).new_set_fd_flags(host)?;
    Ok(fd.set_fd_flags(set)?)
}

/// `fd_fdstat_get`.
pub(crate) fn fd_fdstat_get(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    stat_ptr: u32,
) -> Result<(), Errno> {
    mem.check(stat_ptr, u64::from(FDSTAT_SIZE))?;
    let entry = cx.table.get(fd)?;
    let terminal = |yes: bool| {
        if yes {
            Filetype::CharacterDevice
        } else {
            Filetype::Unknown
        }
    };
    let (filetype, flags) = match &entry.desc {
        Descriptor::Input(input) => (terminal(input.is_terminal()), FdFlags::empty()),
        Descriptor::Output(output) => (terminal(output.is_terminal()), FdFlags::empty()),
        Descriptor::File(file) => (
            Filetype::from_host(file.metadata()?.file_type()),
            host_flags(file)?,
        ),
        Descriptor::Dir(dir) => (Filetype::Directory, host_flags(&dir.dir)?),
        Descriptor::Listener(listener) => (Filetype::SocketStream, host_flags(listener)?),
        Descriptor::Stream(stream) => (Filetype::SocketStream, host_flags(stream)?),
    };
    let mut stat = [0u8; FDSTAT_SIZE as usize];
    stat[0] = filetype as u8;
    stat[2..4].copy_from_slice(&flags.bits().to_le_bytes());
    stat[8..16].copy_from_slice(&entry.base.bits().to_le_bytes());
    stat[16..24].copy_from_slice(&entry.inheriting.bits().to_le_bytes());
    mem.write(stat_ptr, &stat)
}

/// `fd_fdstat_set_flags`.
pub(crate) fn fd_fdstat_set_flags(cx: &mut WasiCtx, fd: u32, flags: u32) -> Result<(), Errno> {
    let flags = flags_u16::<FdFlags>(flags).ok_or(Errno::Inval)?;
    let entry = cx.table.get_mut(fd)?;
    entry.require(Rights::FD_FDSTAT_SET_FLAGS)?;
    match &mut entry.desc {
        // The guest's stdio never blocks the guest differently by flags; stdout and
        // stderr always append.
        Descriptor::Input(_) if flags.is_empty() => Ok(()),
        Descriptor::Output(_) if FdFlags::APPEND.contains(flags) => Ok(()),
        Descriptor::Input(_) | Descriptor::Output(_) => Err(Errno::Notsup),
        Descriptor::File(file) => set_host_flags(file, flags),
        // cap-std may hold directories by handles whose flags cannot change, and no
        // flag means anything for a directory anyway.
        Descriptor::Dir(_) if flags.is_empty() => Ok(()),
        Descriptor::Dir(_) => Err(Errno::Notsup),
        Descriptor::Listener(listener) => {
            if !FdFlags::NONBLOCK.contains(flags) {
                return Err(Errno::Inval);
            }
            Ok(listener.set_nonblocking(!flags.is_empty())?)
        }
        Descriptor::Stream(stream) => {
            if !FdFlags::NONBLOCK.contains(flags) {
                return Err(Errno::Inval);
            }
            Ok(stream.set_nonblocking(!flags.is_empty())?)
        }
    }
}

/// `fd_fdstat_set_rights`: rights can only be dropped, never added (`ENOTCAPABLE`).
pub(crate) fn fd_fdstat_set_rights(
    cx: &mut WasiCtx,
    fd: u32,
    base: u64,
    inheriting: u64,
) -> Result<(), Errno> {
    let entry = cx.table.get_mut(fd)?;
    let base = Rights::from_bits(base).ok_or(Errno::Notcapable)?;
    let inheriting = Rights::from_bits(inheriting).ok_or(Errno::Notcapable)?;
    if !entry.base.contains(base) || !entry.inheriting.contains(inheriting) {
        return Err(Errno::Notcapable);
    }
    entry.base = base;
    entry.inheriting = inheriting;
    Ok(())
}
