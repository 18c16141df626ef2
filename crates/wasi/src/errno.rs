//! [`Errno`]: the error codes of preview1, and how host errors become them.
//!
//! Host `io::Error`s carry a POSIX errno, which maps one to one onto the WASI code of the
//! same name. cap-std reports a path that would leave its directory (`..` above the root,
//! an absolute path, a symlink pointing out) as `PermissionDenied` without an OS errno;
//! that becomes [`Errno::Notcapable`], so a sandbox escape is never mistaken for a plain
//! permission problem of the host.

use std::fmt;
use std::io;

/// An error code of `wasi_snapshot_preview1`, as a host function returns it to the guest.
///
/// The discriminants are the values on the wire (`Errno::Fault as i32 == 21`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Errno {
    /// No error.
    Success = 0,
    /// Argument list too long.
    TooBig = 1,
    /// Permission denied.
    Acces = 2,
    /// Address in use.
    Addrinuse = 3,
    /// Address not available.
    Addrnotavail = 4,
    /// Address family not supported.
    Afnosupport = 5,
    /// Resource unavailable, or operation would block.
    Again = 6,
    /// Connection already in progress.
    Already = 7,
    /// Bad file descriptor.
    Badf = 8,
    /// Bad message.
    Badmsg = 9,
    /// Device or resource busy.
    Busy = 10,
    /// Operation canceled.
    Canceled = 11,
    /// No child processes.
    Child = 12,
    /// Connection aborted.
    Connaborted = 13,
    /// Connection refused.
    Connrefused = 14,
    /// Connection reset.
    Connreset = 15,
    /// Resource deadlock would occur.
    Deadlk = 16,
    /// Destination address required.
    Destaddrreq = 17,
    /// Mathematics argument out of domain of function.
    Dom = 18,
    /// Reserved.
    Dquot = 19,
    /// File exists.
    Exist = 20,
    /// Bad address: a pointer or length from the guest is outside its memory.
    Fault = 21,
    /// File too large.
    Fbig = 22,
    /// Host is unreachable.
    Hostunreach = 23,
    /// Identifier removed.
    Idrm = 24,
    /// Illegal byte sequence.
    Ilseq = 25,
    /// Operation in progress.
    Inprogress = 26,
    /// Interrupted function.
    Intr = 27,
    /// Invalid argument.
    Inval = 28,
    /// I/O error.
    Io = 29,
    /// Socket is connected.
    Isconn = 30,
    /// Is a directory.
    Isdir = 31,
    /// Too many levels of symbolic links.
    Loop = 32,
    /// File descriptor value too large.
    Mfile = 33,
    /// Too many links.
    Mlink = 34,
    /// Message too large.
    Msgsize = 35,
    /// Reserved.
    Multihop = 36,
    /// Filename too long.
    Nametoolong = 37,
    /// Network is down.
    Netdown = 38,
    /// Connection aborted by network.
    Netreset = 39,
    /// Network unreachable.
    Netunreach = 40,
    /// Too many files open in system.
    Nfile = 41,
    /// No buffer space available.
    Nobufs = 42,
    /// No such device.
    Nodev = 43,
    /// No such file or directory.
    Noent = 44,
    /// Executable file format error.
    Noexec = 45,
    /// No locks available.
    Nolck = 46,
    /// Reserved.
    Nolink = 47,
    /// Not enough space.
    Nomem = 48,
    /// No message of the desired type.
    Nomsg = 49,
    /// Protocol not available.
    Noprotoopt = 50,
    /// No space left on device.
    Nospc = 51,
    /// Function not supported.
    Nosys = 52,
    /// The socket is not connected.
    Notconn = 53,
    /// Not a directory or a symbolic link to a directory.
    Notdir = 54,
    /// Directory not empty.
    Notempty = 55,
    /// State not recoverable.
    Notrecoverable = 56,
    /// Not a socket.
    Notsock = 57,
    /// Not supported, or operation not supported on socket.
    Notsup = 58,
    /// Inappropriate I/O control operation.
    Notty = 59,
    /// No such device or address.
    Nxio = 60,
    /// Value too large to be stored in data type.
    Overflow = 61,
    /// Previous owner died.
    Ownerdead = 62,
    /// Operation not permitted.
    Perm = 63,
    /// Broken pipe.
    Pipe = 64,
    /// Protocol error.
    Proto = 65,
    /// Protocol not supported.
    Protonosupport = 66,
    /// Protocol wrong type for socket.
    Prototype = 67,
    /// Result too large.
    Range = 68,
    /// Read-only file system.
    Rofs = 69,
    /// Invalid seek.
    Spipe = 70,
    /// No such process.
    Srch = 71,
    /// Reserved.
    Stale = 72,
    /// Connection timed out.
    Timedout = 73,
    /// Text file busy.
    Txtbsy = 74,
    /// Cross-device link.
    Xdev = 75,
    /// The file descriptor lacks a right the operation needs, or a path would leave the
    /// sandbox.
    Notcapable = 76,
}

impl Errno {
    /// The value a host function returns to the guest.
    pub fn raw(self) -> u16 {
        self as u16
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WASI errno {} ({self:?})", self.raw())
    }
}

impl std::error::Error for Errno {}

impl From<io::Error> for Errno {
    fn from(error: io::Error) -> Errno {
        if let Some(raw) = error.raw_os_error() {
            return Errno::from(rustix::io::Errno::from_raw_os_error(raw));
        }
        match error.kind() {
            io::ErrorKind::NotFound => Errno::Noent,
            // cap-std's sandbox escapes; real host EACCES errors carry an OS errno.
            io::ErrorKind::PermissionDenied => Errno::Notcapable,
            io::ErrorKind::AlreadyExists => Errno::Exist,
            io::ErrorKind::WouldBlock => Errno::Again,
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidFilename => Errno::Inval,
            io::ErrorKind::Interrupted => Errno::Intr,
            io::ErrorKind::BrokenPipe => Errno::Pipe,
            io::ErrorKind::Unsupported => Errno::Notsup,
            io::ErrorKind::OutOfMemory => Errno::Nomem,
            io::ErrorKind::ConnectionRefused => Errno::Connrefused,
            io::ErrorKind::ConnectionReset => Errno::Connreset,
            io::ErrorKind::ConnectionAborted => Errno::Connaborted,
            io::ErrorKind::NotConnected => Errno::Notconn,
            io::ErrorKind::TimedOut => Errno::Timedout,
            io::ErrorKind::StorageFull => Errno::Nospc,
            io::ErrorKind::NotADirectory => Errno::Notdir,
            io::ErrorKind::IsADirectory => Errno::Isdir,
            io::ErrorKind::DirectoryNotEmpty => Errno::Notempty,
            io::ErrorKind::ReadOnlyFilesystem => Errno::Rofs,
            _ => Errno::Io,
        }
    }
}

impl From<rustix::io::Errno> for Errno {
    fn from(errno: rustix::io::Errno) -> Errno {
        use rustix::io::Errno as E;
        match errno {
            E::TOOBIG => Errno::TooBig,
            E::ACCESS => Errno::Acces,
            E::ADDRINUSE => Errno::Addrinuse,
            E::ADDRNOTAVAIL => Errno::Addrnotavail,
            E::AFNOSUPPORT => Errno::Afnosupport,
            E::AGAIN => Errno::Again,
            E::ALREADY => Errno::Already,
            E::BADF => Errno::Badf,
            E::BADMSG => Errno::Badmsg,
            E::BUSY => Errno::Busy,
            E::CANCELED => Errno::Canceled,
            E::CHILD => Errno::Child,
            E::CONNABORTED => Errno::Connaborted,
            E::CONNREFUSED => Errno::Connrefused,
            E::CONNRESET => Errno::Connreset,
            E::DEADLK => Errno::Deadlk,
            E::DESTADDRREQ => Errno::Destaddrreq,
            E::DOM => Errno::Dom,
            E::DQUOT => Errno::Dquot,
            E::EXIST => Errno::Exist,
            E::FAULT => Errno::Fault,
            E::FBIG => Errno::Fbig,
            E::HOSTUNREACH => Errno::Hostunreach,
            E::IDRM => Errno::Idrm,
            E::ILSEQ => Errno::Ilseq,
            E::INPROGRESS => Errno::Inprogress,
            E::INTR => Errno::Intr,
            E::INVAL => Errno::Inval,
            E::IO => Errno::Io,
            E::ISCONN => Errno::Isconn,
            E::ISDIR => Errno::Isdir,
            E::LOOP => Errno::Loop,
            E::MFILE => Errno::Mfile,
            E::MLINK => Errno::Mlink,
            E::MSGSIZE => Errno::Msgsize,
            E::MULTIHOP => Errno::Multihop,
            E::NAMETOOLONG => Errno::Nametoolong,
            E::NETDOWN => Errno::Netdown,
            E::NETRESET => Errno::Netreset,
            E::NETUNREACH => Errno::Netunreach,
            E::NFILE => Errno::Nfile,
            E::NOBUFS => Errno::Nobufs,
            E::NODEV => Errno::Nodev,
            E::NOENT => Errno::Noent,
            E::NOEXEC => Errno::Noexec,
            E::NOLCK => Errno::Nolck,
            E::NOLINK => Errno::Nolink,
            E::NOMEM => Errno::Nomem,
            E::NOMSG => Errno::Nomsg,
            E::NOPROTOOPT => Errno::Noprotoopt,
            E::NOSPC => Errno::Nospc,
            E::NOSYS => Errno::Nosys,
            E::NOTCONN => Errno::Notconn,
            E::NOTDIR => Errno::Notdir,
            E::NOTEMPTY => Errno::Notempty,
            E::NOTRECOVERABLE => Errno::Notrecoverable,
            E::NOTSOCK => Errno::Notsock,
            E::NOTSUP => Errno::Notsup,
            E::NOTTY => Errno::Notty,
            E::NXIO => Errno::Nxio,
            E::OVERFLOW => Errno::Overflow,
            E::OWNERDEAD => Errno::Ownerdead,
            E::PERM => Errno::Perm,
            E::PIPE => Errno::Pipe,
            E::PROTO => Errno::Proto,
            E::PROTONOSUPPORT => Errno::Protonosupport,
            E::PROTOTYPE => Errno::Prototype,
            E::RANGE => Errno::Range,
            E::ROFS => Errno::Rofs,
            E::SPIPE => Errno::Spipe,
            E::SRCH => Errno::Srch,
            E::STALE => Errno::Stale,
            E::TIMEDOUT => Errno::Timedout,
            E::TXTBSY => Errno::Txtbsy,
            E::XDEV => Errno::Xdev,
            _ => Errno::Io,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_match_the_spec() {
        assert_eq!(Errno::Success.raw(), 0);
        assert_eq!(Errno::Badf.raw(), 8);
        assert_eq!(Errno::Fault.raw(), 21);
        assert_eq!(Errno::Inval.raw(), 28);
        assert_eq!(Errno::Nospc.raw(), 51);
        assert_eq!(Errno::Notsup.raw(), 58);
        assert_eq!(Errno::Perm.raw(), 63);
        assert_eq!(Errno::Notcapable.raw(), 76);
    }

    #[test]
    fn host_errnos_map_by_name() {
        let e = io::Error::from_raw_os_error(rustix::io::Errno::NOENT.raw_os_error());
        assert_eq!(Errno::from(e), Errno::Noent);
        let e = io::Error::from_raw_os_error(rustix::io::Errno::ACCESS.raw_os_error());
        assert_eq!(Errno::from(e), Errno::Acces);
        assert_eq!(Errno::from(rustix::io::Errno::NOTEMPTY), Errno::Notempty);
    }

    #[test]
    fn sandbox_escapes_are_not_capable() {
        let escape = io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a path led outside of the filesystem",
        );
        assert_eq!(Errno::from(escape), Errno::Notcapable);
    }
}
