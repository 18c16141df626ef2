//! `sock_accept`, `sock_recv`, `sock_send` and `sock_shutdown` on pre-opened TCP
//! listeners and the connections accepted from them.
//!
//! Any fd that is no socket gives `ENOTSUP`; an fd that is not open gives `EBADF`.
//! Receiving, sending or shutting down on a listener gives `ENOTCONN`.

use crate::abi::{FdFlags, RiFlags, Rights, SdFlags, flags_u16};
use crate::ctx::WasiCtx;
use crate::errno::Errno;
use crate::memory::GuestMemory;
use crate::preview1::fd::{read_into, retry, write_gathered};
use crate::table::{Descriptor, Entry};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

/// The connection behind `fd`, with `rights` checked.
fn stream(cx: &WasiCtx, fd: u32, rights: Rights) -> Result<&TcpStream, Errno> {
    let entry = cx.table.get(fd)?;
    match &entry.desc {
        Descriptor::Stream(stream) => {
            entry.require(rights)?;
            Ok(stream)
        }
        Descriptor::Listener(_) => Err(Errno::Notconn),
        _ => Err(Errno::Notsup),
    }
}

/// `sock_accept`: a new fd for the next connection on a listener.
pub(crate) fn sock_accept(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    flags: u32,
    fd_ptr: u32,
) -> Result<(), Errno> {
    let flags = flags_u16::<FdFlags>(flags).ok_or(Errno::Inval)?;
    if !FdFlags::NONBLOCK.contains(flags) {
        return Err(Errno::Inval);
    }
    mem.check(fd_ptr, 4)?;
    let entry = cx.table.get(fd)?;
    let listener = match &entry.desc {
        Descriptor::Listener(listener) => listener,
        Descriptor::Stream(_) => return Err(Errno::Inval),
        _ => return Err(Errno::Notsup),
    };
    entry.require(Rights::SOCK_ACCEPT)?;
    let (stream, _peer) = retry(|| listener.accept())?;
    stream.set_nonblocking(flags.contains(FdFlags::NONBLOCK))?;
    let rights = entry.inheriting & Rights::SOCKET_STREAM;
    let new_fd = cx.table.push(Entry::new(
        Descriptor::Stream(stream),
        rights,
        Rights::empty(),
    ))?;
    mem.write_u32(fd_ptr, new_fd)
}

/// `sock_recv`. `RECV_PEEK` leaves the data queued; `RECV_WAITALL` fills every buffer
/// unless the peer closes first or a read fails (`EAGAIN` on a non-blocking socket
/// with nothing more queued), which returns what was read so far, if anything.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per parameter of the preview1 function"
)]
pub(crate) fn sock_recv(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    ri_data: u32,
    ri_data_len: u32,
    ri_flags: u32,
    ro_datalen_ptr: u32,
    ro_flags_ptr: u32,
) -> Result<(), Errno> {
    let flags = flags_u16::<RiFlags>(ri_flags).ok_or(Errno::Inval)?;
    let iovecs = mem.iovecs(ri_data, ri_data_len)?;
    mem.check(ro_datalen_ptr, 4)?;
    mem.check(ro_flags_ptr, 2)?;
    let mut stream = stream(cx, fd, Rights::FD_READ)?;
    let n = if flags.contains(RiFlags::RECV_PEEK) {
        read_into(mem, &iovecs, true, |buf| retry(|| stream.peek(buf)))?
    } else if flags.contains(RiFlags::RECV_WAITALL) {
        read_into(mem, &iovecs, false, |buf| {
            let mut filled = 0;
            while filled < buf.len() {
                match retry(|| stream.read(&mut buf[filled..])) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    // What was read is the guest's: `read_into` stops at this short read.
                    Err(_) if filled > 0 => break,
                    Err(e) => return Err(e),
                }
            }
            Ok(filled)
        })?
    } else {
        read_into(mem, &iovecs, true, |buf| retry(|| stream.read(buf)))?
    };
    mem.write_u32(ro_datalen_ptr, n)?;
    // TCP never truncates a message, so no `roflags` are set.
    mem.write_u16(ro_flags_ptr, 0)
}

/// `sock_send`. There are no `siflags`, so any flag is `EINVAL`.
pub(crate) fn sock_send(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    si_data: u32,
    si_data_len: u32,
    si_flags: u32,
    so_datalen_ptr: u32,
) -> Result<(), Errno> {
    if si_flags != 0 {
        return Err(Errno::Inval);
    }
    let iovecs = mem.iovecs(si_data, si_data_len)?;
    mem.check(so_datalen_ptr, 4)?;
    let mut stream = stream(cx, fd, Rights::FD_WRITE)?;
    let n = write_gathered(mem, &iovecs, |bufs| stream.write_vectored(bufs))?;
    mem.write_u32(so_datalen_ptr, n)
}

/// `sock_shutdown`.
pub(crate) fn sock_shutdown(cx: &mut WasiCtx, fd: u32, how: u32) -> Result<(), Errno> {
    let how = u8::try_from(how)
        .ok()
        .and_then(SdFlags::from_bits)
        .ok_or(Errno::Inval)?;
    let how = if how == SdFlags::all() {
        Shutdown::Both
    } else if how == SdFlags::RD {
        Shutdown::Read
    } else if how == SdFlags::WR {
        Shutdown::Write
    } else {
        return Err(Errno::Inval);
    };
    let stream = stream(cx, fd, Rights::SOCK_SHUTDOWN)?;
    Ok(stream.shutdown(how)?)
}
