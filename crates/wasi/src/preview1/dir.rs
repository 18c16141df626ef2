//! Directory descriptors: `fd_readdir`, `fd_prestat_get` and `fd_prestat_dir_name`.
//!
//! `fd_readdir` lists `.`, `..` and then the host's entries. The listing is read from
//! the host when a guest starts over at cookie 0 and kept with the descriptor, so later
//! calls resume from their cookie (the index of the next entry) without rereading the
//! directory. Each record is a 24-byte `dirent` followed by the name; the last record is
//! cut off where the buffer ends, as the spec asks, so a full buffer tells the guest
//! there may be more.

use crate::abi::{DIRENT_SIZE, Filetype, PREOPENTYPE_DIR, PRESTAT_SIZE, Rights};
use crate::ctx::WasiCtx;
use crate::errno::Errno;
use crate::memory::GuestMemory;
use crate::table::{Descriptor, DirDesc, ListedEntry};
use cap_std::fs::MetadataExt;
use rustix::fs::DirEntryExt;
use std::os::unix::ffi::OsStrExt;

/// Reads the entries of `dir`, `.` and `..` first.
fn list(dir: &DirDesc) -> Result<Vec<ListedEntry>, Errno> {
    let mut entries = vec![
        ListedEntry {
            name: b".".to_vec(),
            ino: dir.dir.dir_metadata()?.ino(),
            filetype: Filetype::Directory,
        },
        // The parent may lie outside the sandbox, so its inode is not looked up.
        ListedEntry {
            name: b"..".to_vec(),
            ino: 0,
            filetype: Filetype::Directory,
        },
    ];
    for entry in dir.dir.entries()? {
        let entry = entry?;
        let filetype = entry
            .file_type()
            .map_or(Filetype::Unknown, Filetype::from_host);
        entries.push(ListedEntry {
            name: entry.file_name().as_bytes().to_vec(),
            ino: entry.ino(),
            filetype,
        });
    }
    Ok(entries)
}

/// The `dirent` header of entry `index`.
fn dirent(index: usize, entry: &ListedEntry) -> Result<[u8; DIRENT_SIZE], Errno> {
    let next = u64::try_from(index + 1).map_err(|_| Errno::Overflow)?;
    let namlen = u32::try_from(entry.name.len()).map_err(|_| Errno::Nametoolong)?;
    let mut header = [0u8; DIRENT_SIZE];
    header[0..8].copy_from_slice(&next.to_le_bytes());
    header[8..16].copy_from_slice(&entry.ino.to_le_bytes());
    header[16..20].copy_from_slice(&namlen.to_le_bytes());
    header[20] = entry.filetype as u8;
    Ok(header)
}

/// `fd_readdir`.
pub(crate) fn fd_readdir(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    buf: u32,
    buf_len: u32,
    cookie: u64,
    bufused_ptr: u32,
) -> Result<(), Errno> {
    mem.check(buf, u64::from(buf_len))?;
    mem.check(bufused_ptr, 4)?;
    let entry = cx.table.get_mut(fd)?;
    let Descriptor::Dir(dir) = &mut entry.desc else {
        return Err(Errno::Notdir);
    };
    if !entry.base.contains(Rights::FD_READDIR) {
        return Err(Errno::Notcapable);
    }
    if cookie == 0 || dir.listing.is_none() {
        dir.listing = Some(list(dir)?);
    }
    let listing = dir.listing.as_deref().unwrap_or_default();
    let out = mem.slice_mut(buf, buf_len)?;
    let mut used = 0;
    let skip = usize::try_from(cookie).unwrap_or(usize::MAX);
    for (index, listed) in listing.iter().enumerate().skip(skip) {
        let header = dirent(index, listed)?;
        for part in [&header[..], &listed.name[..]] {
            let n = part.len().min(out.len() - used);
            out[used..used + n].copy_from_slice(&part[..n]);
            used += n;
        }
        if used == out.len() {
            break;
        }
    }
    // `used` is at most `buf_len`.
    mem.write_u32(bufused_ptr, used as u32)
}

/// `fd_prestat_get`: the kind and name length of a preopen (`EBADF` for other fds).
pub(crate) fn fd_prestat_get(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    prestat_ptr: u32,
) -> Result<(), Errno> {
    let name = preopen_name(cx, fd)?;
    let len = u32::try_from(name.len()).map_err(|_| Errno::Nametoolong)?;
    let mut prestat = [0u8; PRESTAT_SIZE as usize];
    prestat[0] = PREOPENTYPE_DIR;
    prestat[4..8].copy_from_slice(&len.to_le_bytes());
    mem.write(prestat_ptr, &prestat)
}

/// `fd_prestat_dir_name`: the name of a preopen, without a NUL.
///
/// Fails with `ENAMETOOLONG` if `path_len` is shorter than the name.
pub(crate) fn fd_prestat_dir_name(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    path: u32,
    path_len: u32,
) -> Result<(), Errno> {
    mem.check(path, u64::from(path_len))?;
    let name = preopen_name(cx, fd)?;
    if name.len() > path_len as usize {
        return Err(Errno::Nametoolong);
    }
    mem.write(path, name.as_bytes())
}

fn preopen_name(cx: &WasiCtx, fd: u32) -> Result<&str, Errno> {
    match &cx.table.get(fd)?.desc {
        Descriptor::Dir(DirDesc {
            preopen: Some(name),
            ..
        }) => Ok(name),
        _ => Err(Errno::Badf),
    }
}
