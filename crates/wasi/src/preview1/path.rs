//! `path_*` calls: paths resolved under a directory descriptor.
//!
//! Every path goes to a cap-std [`Dir`](cap_std::fs::Dir) method, which resolves it
//! inside that directory: absolute paths, `..` above it and symlinks that lead out fail
//! with `ENOTCAPABLE`. No path string is inspected here for sandboxing.
//!
//! `path_open` checks rights the preview1 way: the directory needs `PATH_OPEN` (and
//! `PATH_CREATE_FILE` to create, `PATH_FILESTAT_SET_SIZE` to truncate). The new fd gets
//! the rights asked for, limited to the directory's inheriting rights; but asking to
//! read or write where the directory cannot pass that right on fails with
//! `ENOTCAPABLE`, so a read-only preopen refuses to open files for writing.

use crate::abi::{FILESTAT_SIZE, FdFlags, LookupFlags, OFlags, Rights, flags_u16};
use crate::ctx::WasiCtx;
use crate::errno::Errno;
use crate::memory::GuestMemory;
use crate::preview1::stat::{filestat, time_specs};
use crate::table::{Descriptor, DirDesc, Entry};
use cap_fs_ext::{
    DirExt, FollowSymlinks, OpenOptionsFollowExt, OpenOptionsMaybeDirExt, OpenOptionsSyncExt,
    SystemTimeSpec,
};
use std::os::unix::ffi::OsStrExt;

/// Whether `dirflags` ask to follow a symlink in the last component.
fn follows(dirflags: u32) -> Result<bool, Errno> {
    let flags = LookupFlags::from_bits(dirflags).ok_or(Errno::Inval)?;
    Ok(flags.contains(LookupFlags::SYMLINK_FOLLOW))
}

/// `path_create_directory`.
pub(crate) fn path_create_directory(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    path: u32,
    path_len: u32,
) -> Result<(), Errno> {
    let path = mem.str(path, path_len)?;
    let dir = cx.table.get(fd)?.dir(Rights::PATH_CREATE_DIRECTORY)?;
    Ok(dir.dir.create_dir(path)?)
}

/// `path_filestat_get`.
pub(crate) fn path_filestat_get(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    dirflags: u32,
    path: u32,
    path_len: u32,
    stat_ptr: u32,
) -> Result<(), Errno> {
    let follow = follows(dirflags)?;
    mem.check(stat_ptr, u64::from(FILESTAT_SIZE))?;
    let path = mem.str(path, path_len)?;
    let dir = cx.table.get(fd)?.dir(Rights::PATH_FILESTAT_GET)?;
    let md = if follow {
        dir.dir.metadata(path)?
    } else {
        dir.dir.symlink_metadata(path)?
    };
    mem.write(stat_ptr, &filestat(&md))
}

/// `path_filestat_set_times`.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per parameter of the preview1 function"
)]
pub(crate) fn path_filestat_set_times(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    dirflags: u32,
    path: u32,
    path_len: u32,
    atim: u64,
    mtim: u64,
    fst_flags: u32,
) -> Result<(), Errno> {
    let follow = follows(dirflags)?;
    let (atime, mtime) = time_specs(atim, mtim, fst_flags)?;
    let (atime, mtime) = (
        atime.map(SystemTimeSpec::from_std),
        mtime.map(SystemTimeSpec::from_std),
    );
    let path = mem.str(path, path_len)?;
    let dir = cx.table.get(fd)?.dir(Rights::PATH_FILESTAT_SET_TIMES)?;
    if follow {
        Ok(dir.dir.set_times(path, atime, mtime)?)
    } else {
        Ok(dir.dir.set_symlink_times(path, atime, mtime)?)
    }
}

/// `path_link`: a hard link. Following a symlink in the source is not supported
/// (`EINVAL`), as in other preview1 hosts.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per parameter of the preview1 function"
)]
pub(crate) fn path_link(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    old_fd: u32,
    old_flags: u32,
    old_path: u32,
    old_path_len: u32,
    new_fd: u32,
    new_path: u32,
    new_path_len: u32,
) -> Result<(), Errno> {
    if follows(old_flags)? {
        return Err(Errno::Inval);
    }
    let old_path = mem.str(old_path, old_path_len)?;
    let new_path = mem.str(new_path, new_path_len)?;
    let old = cx.table.get(old_fd)?.dir(Rights::PATH_LINK_SOURCE)?;
    let new = cx.table.get(new_fd)?.dir(Rights::PATH_LINK_TARGET)?;
    Ok(old.dir.hard_link(old_path, &new.dir, new_path)?)
}

/// `path_open`.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per parameter of the preview1 function"
)]
pub(crate) fn path_open(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    dirflags: u32,
    path: u32,
    path_len: u32,
    oflags: u32,
    rights_base: u64,
    rights_inheriting: u64,
    fdflags: u32,
    opened_fd_ptr: u32,
) -> Result<(), Errno> {
    let follow = follows(dirflags)?;
    let oflags = flags_u16::<OFlags>(oflags).ok_or(Errno::Inval)?;
    let fdflags = flags_u16::<FdFlags>(fdflags).ok_or(Errno::Inval)?;
    let wanted_base = Rights::from_bits_truncate(rights_base);
    let wanted_inheriting = Rights::from_bits_truncate(rights_inheriting);
    mem.check(opened_fd_ptr, 4)?;
    let path = mem.str(path, path_len)?;

    let parent = cx.table.get(fd)?;
    let mut needed = Rights::PATH_OPEN;
    if oflags.contains(OFlags::CREAT) {
        needed |= Rights::PATH_CREATE_FILE;
    }
    if oflags.contains(OFlags::TRUNC) {
        needed |= Rights::PATH_FILESTAT_SET_SIZE;
    }
    let dir = parent.dir(needed)?;
    // The access mode and sync flags must be rights the directory can pass on.
    let mut passed = wanted_base & (Rights::FD_READ | Rights::FD_WRITE);
    if fdflags.contains(FdFlags::DSYNC) {
        passed |= Rights::FD_DATASYNC;
    }
    if fdflags.intersects(FdFlags::RSYNC | FdFlags::SYNC) {
        passed |= Rights::FD_SYNC;
    }
    if !parent.inheriting.contains(passed) {
        return Err(Errno::Notcapable);
    }
    let base = wanted_base & parent.inheriting;
    let inheriting = wanted_inheriting & parent.inheriting;

    let entry = if oflags.contains(OFlags::DIRECTORY) {
        if oflags.intersects(OFlags::CREAT | OFlags::TRUNC) {
            return Err(Errno::Inval);
        }
        if base.contains(Rights::FD_WRITE) {
            return Err(Errno::Isdir);
        }
        let opened = if follow {
            dir.dir.open_dir(path)?
        } else {
            dir.dir.open_dir_nofollow(path)?
        };
        dir_entry(opened, base, inheriting)
    } else {
        let file = open_file(dir, path, follow, oflags, fdflags, base)?;
        if file.metadata()?.is_dir() {
            let opened = cap_std::fs::Dir::from_std_file(file.into_std());
            dir_entry(opened, base, inheriting)
        } else {
            Entry::new(
                Descriptor::File(file),
                base & Rights::FILE,
                inheriting & Rights::FILE,
            )
        }
    };
    let new_fd = cx.table.push(entry)?;
    mem.write_u32(opened_fd_ptr, new_fd)
}

fn dir_entry(dir: cap_std::fs::Dir, base: Rights, inheriting: Rights) -> Entry {
    Entry::new(
        Descriptor::Dir(DirDesc {
            dir,
            preopen: None,
            listing: None,
        }),
        base & Rights::DIRECTORY,
        inheriting,
    )
}

/// Opens a file (or, since it may turn out to be one, a directory) for `path_open`.
fn open_file(
    dir: &DirDesc,
    path: &str,
    follow: bool,
    oflags: OFlags,
    fdflags: FdFlags,
    rights: Rights,
) -> Result<cap_std::fs::File, Errno> {
    // The host needs write access to create or truncate, whatever the guest may do.
    let write =
        rights.contains(Rights::FD_WRITE) || oflags.intersects(OFlags::CREAT | OFlags::TRUNC);
    let read = rights.intersects(Rights::FD_READ | Rights::FD_READDIR) || !write;
    let mut options = cap_std::fs::OpenOptions::new();
    options
        .read(read)
        .write(write)
        .append(write && fdflags.contains(FdFlags::APPEND))
        .truncate(oflags.contains(OFlags::TRUNC));
    if oflags.contains(OFlags::CREAT) {
        if oflags.contains(OFlags::EXCL) {
            options.create_new(true);
        } else {
            options.create(true);
        }
    }
    options
        .follow(if follow {
            FollowSymlinks::Yes
        } else {
            FollowSymlinks::No
        })
        .maybe_dir(!write)
        .dsync(fdflags.contains(FdFlags::DSYNC))
        .rsync(fdflags.contains(FdFlags::RSYNC))
        .sync(fdflags.contains(FdFlags::SYNC))
        .nonblock(fdflags.contains(FdFlags::NONBLOCK));
    Ok(dir.dir.open_with(path, &options)?)
}

/// `path_readlink`: the target of a symlink, cut to fit `buf_len` bytes.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per parameter of the preview1 function"
)]
pub(crate) fn path_readlink(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    path: u32,
    path_len: u32,
    buf: u32,
    buf_len: u32,
    bufused_ptr: u32,
) -> Result<(), Errno> {
    mem.check(buf, u64::from(buf_len))?;
    mem.check(bufused_ptr, 4)?;
    let path = mem.str(path, path_len)?;
    let dir = cx.table.get(fd)?.dir(Rights::PATH_READLINK)?;
    let target = dir.dir.read_link(path)?;
    let target = target.as_os_str().as_bytes();
    let n = target.len().min(buf_len as usize);
    mem.write(buf, &target[..n])?;
    // `n` is at most `buf_len`.
    mem.write_u32(bufused_ptr, n as u32)
}

/// `path_remove_directory`.
pub(crate) fn path_remove_directory(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    path: u32,
    path_len: u32,
) -> Result<(), Errno> {
    let path = mem.str(path, path_len)?;
    let dir = cx.table.get(fd)?.dir(Rights::PATH_REMOVE_DIRECTORY)?;
    Ok(dir.dir.remove_dir(path)?)
}

/// `path_rename`.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per parameter of the preview1 function"
)]
pub(crate) fn path_rename(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    old_path: u32,
    old_path_len: u32,
    new_fd: u32,
    new_path: u32,
    new_path_len: u32,
) -> Result<(), Errno> {
    let old_path = mem.str(old_path, old_path_len)?;
    let new_path = mem.str(new_path, new_path_len)?;
    let old = cx.table.get(fd)?.dir(Rights::PATH_RENAME_SOURCE)?;
    let new = cx.table.get(new_fd)?.dir(Rights::PATH_RENAME_TARGET)?;
    Ok(old.dir.rename(old_path, &new.dir, new_path)?)
}

/// `path_symlink`: makes `new_path` a symlink whose target is `old_path`. The target
/// is stored as given; following it later is sandboxed like any other path.
pub(crate) fn path_symlink(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    old_path: u32,
    old_path_len: u32,
    fd: u32,
    new_path: u32,
    new_path_len: u32,
) -> Result<(), Errno> {
    let old_path = mem.str(old_path, old_path_len)?;
    let new_path = mem.str(new_path, new_path_len)?;
    let dir = cx.table.get(fd)?.dir(Rights::PATH_SYMLINK)?;
    Ok(dir.dir.symlink(old_path, new_path)?)
}

/// `path_unlink_file`.
pub(crate) fn path_unlink_file(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    path: u32,
    path_len: u32,
) -> Result<(), Errno> {
    let path = mem.str(path, path_len)?;
    let dir = cx.table.get(fd)?.dir(Rights::PATH_UNLINK_FILE)?;
    Ok(dir.dir.remove_file(path)?)
}
