//! The preview1 ABI: flag sets, enumerations and the byte layout of the structs that
//! host functions read from and write to guest memory (all little-endian, wasm32).
//!
//! ```text
//! iovec/ciovec  8 B  buf u32 @0, buf_len u32 @4
//! prestat       8 B  tag u8 @0 (0 = dir), pr_name_len u32 @4
//! fdstat       24 B  filetype u8 @0, flags u16 @2, rights_base u64 @8, rights_inheriting u64 @16
//! filestat     64 B  dev @0, ino @8, filetype u8 @16, nlink @24, size @32, atim @40, mtim @48, ctim @56
//! dirent       24 B  d_next u64 @0, d_ino u64 @8, d_namlen u32 @16, d_type u8 @20; name follows
//! subscription 48 B  userdata u64 @0, tag u8 @8, then
//!                    clock: id u32 @16, timeout u64 @24, precision u64 @32, flags u16 @40
//!                    fd_read / fd_write: fd u32 @16
//! event        32 B  userdata u64 @0, error u16 @8, type u8 @10, nbytes u64 @16, flags u16 @24
//! ```

use bitflags::bitflags;

/// Size of an iovec or ciovec.
pub(crate) const IOVEC_SIZE: u32 = 8;
/// Size of a `prestat`.
pub(crate) const PRESTAT_SIZE: u32 = 8;
/// Size of an `fdstat`.
pub(crate) const FDSTAT_SIZE: u32 = 24;
/// Size of a `filestat`.
pub(crate) const FILESTAT_SIZE: u32 = 64;
/// Size of a `dirent` header (the name follows it).
pub(crate) const DIRENT_SIZE: usize = 24;
/// Size of a `subscription`.
pub(crate) const SUBSCRIPTION_SIZE: u32 = 48;
/// Size of an `event`.
pub(crate) const EVENT_SIZE: u32 = 32;

/// The `preopentype` of a directory.
pub(crate) const PREOPENTYPE_DIR: u8 = 0;

/// The kind of a file, as `fdstat`, `filestat` and `dirent` report it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Filetype {
    Unknown = 0,
    BlockDevice = 1,
    CharacterDevice = 2,
    Directory = 3,
    RegularFile = 4,
    SocketStream = 6,
    SymbolicLink = 7,
}

impl Filetype {
    /// The WASI file type of a host file type.
    pub(crate) fn from_host(ty: cap_std::fs::FileType) -> Filetype {
        use cap_std::fs::FileTypeExt;
        if ty.is_dir() {
            Filetype::Directory
        } else if ty.is_file() {
            Filetype::RegularFile
        } else if ty.is_symlink() {
            Filetype::SymbolicLink
        } else if ty.is_block_device() {
            Filetype::BlockDevice
        } else if ty.is_char_device() {
            Filetype::CharacterDevice
        } else if ty.is_socket() {
            Filetype::SocketStream
        } else {
            Filetype::Unknown
        }
    }
}

/// Clock ids of `clock_time_get`, `clock_res_get` and clock subscriptions.
pub(crate) mod clockid {
    pub(crate) const REALTIME: u32 = 0;
    pub(crate) const MONOTONIC: u32 = 1;
    pub(crate) const PROCESS_CPUTIME: u32 = 2;
    pub(crate) const THREAD_CPUTIME: u32 = 3;
}

/// `whence` of `fd_seek`.
pub(crate) mod whence {
    pub(crate) const SET: u32 = 0;
    pub(crate) const CUR: u32 = 1;
    pub(crate) const END: u32 = 2;
}

/// Subscription and event types of `poll_oneoff`.
pub(crate) mod eventtype {
    pub(crate) const CLOCK: u8 = 0;
    pub(crate) const FD_READ: u8 = 1;
    pub(crate) const FD_WRITE: u8 = 2;
}

bitflags! {
    /// What a file descriptor may be used for (`rights`).
    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub(crate) struct Rights: u64 {
        const FD_DATASYNC = 1 << 0;
        const FD_READ = 1 << 1;
        const FD_SEEK = 1 << 2;
        const FD_FDSTAT_SET_FLAGS = 1 << 3;
        const FD_SYNC = 1 << 4;
        const FD_TELL = 1 << 5;
        const FD_WRITE = 1 << 6;
        const FD_ADVISE = 1 << 7;
        const FD_ALLOCATE = 1 << 8;
        const PATH_CREATE_DIRECTORY = 1 << 9;
        const PATH_CREATE_FILE = 1 << 10;
        const PATH_LINK_SOURCE = 1 << 11;
        const PATH_LINK_TARGET = 1 << 12;
        const PATH_OPEN = 1 << 13;
        const FD_READDIR = 1 << 14;
        const PATH_READLINK = 1 << 15;
        const PATH_RENAME_SOURCE = 1 << 16;
        const PATH_RENAME_TARGET = 1 << 17;
        const PATH_FILESTAT_GET = 1 << 18;
        const PATH_FILESTAT_SET_SIZE = 1 << 19;
        const PATH_FILESTAT_SET_TIMES = 1 << 20;
        const FD_FILESTAT_GET = 1 << 21;
        const FD_FILESTAT_SET_SIZE = 1 << 22;
        const FD_FILESTAT_SET_TIMES = 1 << 23;
        const PATH_SYMLINK = 1 << 24;
        const PATH_REMOVE_DIRECTORY = 1 << 25;
        const PATH_UNLINK_FILE = 1 << 26;
        const POLL_FD_READWRITE = 1 << 27;
        const SOCK_SHUTDOWN = 1 << 28;
        const SOCK_ACCEPT = 1 << 29;
    }
}

impl Rights {
    /// Every right that means something for a regular file.
    pub(crate) const FILE: Rights = Rights::FD_DATASYNC
        .union(Rights::FD_READ)
        .union(Rights::FD_SEEK)
        .union(Rights::FD_FDSTAT_SET_FLAGS)
        .union(Rights::FD_SYNC)
        .union(Rights::FD_TELL)
        .union(Rights::FD_WRITE)
        .union(Rights::FD_ADVISE)
        .union(Rights::FD_ALLOCATE)
        .union(Rights::FD_FILESTAT_GET)
        .union(Rights::FD_FILESTAT_SET_SIZE)
        .union(Rights::FD_FILESTAT_SET_TIMES)
        .union(Rights::POLL_FD_READWRITE);

    /// Every right that means something for a directory.
    pub(crate) const DIRECTORY: Rights = Rights::FD_DATASYNC
        .union(Rights::FD_FDSTAT_SET_FLAGS)
        .union(Rights::FD_SYNC)
        .union(Rights::PATH_CREATE_DIRECTORY)
        .union(Rights::PATH_CREATE_FILE)
        .union(Rights::PATH_LINK_SOURCE)
        .union(Rights::PATH_LINK_TARGET)
        .union(Rights::PATH_OPEN)
        .union(Rights::FD_READDIR)
        .union(Rights::PATH_READLINK)
        .union(Rights::PATH_RENAME_SOURCE)
        .union(Rights::PATH_RENAME_TARGET)
        .union(Rights::PATH_FILESTAT_GET)
        .union(Rights::PATH_FILESTAT_SET_SIZE)
        .union(Rights::PATH_FILESTAT_SET_TIMES)
        .union(Rights::FD_FILESTAT_GET)
        .union(Rights::FD_FILESTAT_SET_TIMES)
        .union(Rights::PATH_SYMLINK)
        .union(Rights::PATH_REMOVE_DIRECTORY)
        .union(Rights::PATH_UNLINK_FILE);

    /// The rights of stdin. Without `FD_SEEK` and `FD_TELL`, so that wasi-libc's
    /// `isatty` can tell a terminal by its file type.
    pub(crate) const STDIN: Rights = Rights::FD_READ
        .union(Rights::FD_FDSTAT_SET_FLAGS)
        .union(Rights::FD_FILESTAT_GET)
        .union(Rights::POLL_FD_READWRITE);

    /// The rights of stdout and stderr.
    pub(crate) const STDOUT: Rights = Rights::FD_WRITE
        .union(Rights::FD_DATASYNC)
        .union(Rights::FD_SYNC)
        .union(Rights::FD_FDSTAT_SET_FLAGS)
        .union(Rights::FD_FILESTAT_GET)
        .union(Rights::POLL_FD_READWRITE);

    /// The rights of a connected socket.
    pub(crate) const SOCKET_STREAM: Rights = Rights::FD_READ
        .union(Rights::FD_WRITE)
        .union(Rights::FD_FDSTAT_SET_FLAGS)
        .union(Rights::FD_FILESTAT_GET)
        .union(Rights::POLL_FD_READWRITE)
        .union(Rights::SOCK_SHUTDOWN);

    /// The rights of a listening socket.
    pub(crate) const SOCKET_LISTENER: Rights = Rights::SOCK_ACCEPT
        .union(Rights::FD_FDSTAT_SET_FLAGS)
        .union(Rights::FD_FILESTAT_GET)
        .union(Rights::POLL_FD_READWRITE);
}

bitflags! {
    /// File descriptor flags (`fdflags`).
    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub(crate) struct FdFlags: u16 {
        const APPEND = 1 << 0;
        const DSYNC = 1 << 1;
        const NONBLOCK = 1 << 2;
        const RSYNC = 1 << 3;
        const SYNC = 1 << 4;
    }
}

bitflags! {
    /// How `path_open` opens or creates (`oflags`).
    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub(crate) struct OFlags: u16 {
        const CREAT = 1 << 0;
        const DIRECTORY = 1 << 1;
        const EXCL = 1 << 2;
        const TRUNC = 1 << 3;
    }
}

bitflags! {
    /// How a path is resolved (`lookupflags`).
    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub(crate) struct LookupFlags: u32 {
        const SYMLINK_FOLLOW = 1 << 0;
    }
}

bitflags! {
    /// Which timestamps `*_filestat_set_times` changes (`fstflags`).
    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub(crate) struct FstFlags: u16 {
        const ATIM = 1 << 0;
        const ATIM_NOW = 1 << 1;
        const MTIM = 1 << 2;
        const MTIM_NOW = 1 << 3;
    }
}

bitflags! {
    /// Flags of `sock_recv` (`riflags`).
    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub(crate) struct RiFlags: u16 {
        const RECV_PEEK = 1 << 0;
        const RECV_WAITALL = 1 << 1;
    }
}

bitflags! {
    /// Which halves of a connection `sock_shutdown` closes (`sdflags`).
    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub(crate) struct SdFlags: u8 {
        const RD = 1 << 0;
        const WR = 1 << 1;
    }
}

/// `subclockflags`: the timeout is an absolute time of the clock.
pub(crate) const SUBSCRIPTION_CLOCK_ABSTIME: u16 = 1 << 0;
/// `eventrwflags`: the peer closed its end.
pub(crate) const EVENT_FD_READWRITE_HANGUP: u16 = 1 << 0;

/// A flag word from the guest, which must fit in `bits` of type `F` and name only known
/// flags.
pub(crate) fn flags_u16<F: bitflags::Flags<Bits = u16>>(raw: u32) -> Option<F> {
    F::from_bits(u16::try_from(raw).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_have_their_spec_bits() {
        assert_eq!(Rights::FD_READ.bits(), 2);
        assert_eq!(Rights::FD_WRITE.bits(), 64);
        assert_eq!(Rights::PATH_OPEN.bits(), 1 << 13);
        assert_eq!(Rights::SOCK_ACCEPT.bits(), 1 << 29);
        assert!(!Rights::DIRECTORY.contains(Rights::FD_READ));
        assert!(!Rights::FILE.contains(Rights::PATH_OPEN));
    }

    #[test]
    fn guest_flag_words_reject_unknown_bits() {
        assert_eq!(flags_u16::<OFlags>(1), Some(OFlags::CREAT));
        assert_eq!(flags_u16::<OFlags>(16), None);
        assert_eq!(flags_u16::<FdFlags>(0x1_0000), None);
    }
}
