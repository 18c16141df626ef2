//! File metadata: `fd_filestat_get`, `fd_filestat_set_size` and `fd_filestat_set_times`,
//! and the `filestat` record and timestamp flags shared with the `path_filestat_*` calls.

use crate::abi::{FILESTAT_SIZE, Filetype, FstFlags, Rights, flags_u16};
use crate::ctx::WasiCtx;
use crate::errno::Errno;
use crate::memory::GuestMemory;
use crate::preview1::fd::retry;
use crate::table::Descriptor;
use cap_fs_ext::DirExt;
use cap_std::fs::{Metadata, MetadataExt};
use fs_set_times::{SetTimes, SystemTimeSpec};
use std::time::{Duration, SystemTime};

/// Nanoseconds since the epoch; times before it read as 0.
fn timestamp(secs: i64, nsecs: i64) -> u64 {
    let (Ok(secs), Ok(nsecs)) = (u64::try_from(secs), u64::try_from(nsecs)) else {
        return 0;
    };
    secs.saturating_mul(1_000_000_000).saturating_add(nsecs)
}

/// The `filestat` record of a file or directory.
pub(crate) fn filestat(md: &Metadata) -> [u8; FILESTAT_SIZE as usize] {
    let mut stat = [0u8; FILESTAT_SIZE as usize];
    stat[0..8].copy_from_slice(&md.dev().to_le_bytes());
    stat[8..16].copy_from_slice(&md.ino().to_le_bytes());
    stat[16] = Filetype::from_host(md.file_type()) as u8;
    stat[24..32].copy_from_slice(&md.nlink().to_le_bytes());
    stat[32..40].copy_from_slice(&md.len().to_le_bytes());
    stat[40..48].copy_from_slice(&timestamp(md.atime(), md.atime_nsec()).to_le_bytes());
    stat[48..56].copy_from_slice(&timestamp(md.mtime(), md.mtime_nsec()).to_le_bytes());
    stat[56..64].copy_from_slice(&timestamp(md.ctime(), md.ctime_nsec()).to_le_bytes());
    stat
}

/// A `filestat` with only a file type, for descriptors that are not files.
fn filestat_of_type(filetype: Filetype) -> [u8; FILESTAT_SIZE as usize] {
    let mut stat = [0u8; FILESTAT_SIZE as usize];
    stat[16] = filetype as u8;
    stat
}

/// The access and modification times `fstflags` ask for.
///
/// Fails with `EINVAL` for unknown flags, or a time given both as a value and as "now".
pub(crate) fn time_specs(
    atim: u64,
    mtim: u64,
    fst_flags: u32,
) -> Result<(Option<SystemTimeSpec>, Option<SystemTimeSpec>), Errno> {
    let flags = flags_u16::<FstFlags>(fst_flags).ok_or(Errno::Inval)?;
    let spec = |value: FstFlags, now: FstFlags, nanos: u64| match (
        flags.contains(value),
        flags.contains(now),
    ) {
        (true, true) => Err(Errno::Inval),
        (true, false) => SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_nanos(nanos))
            .map(|t| Some(SystemTimeSpec::Absolute(t)))
            .ok_or(Errno::Inval),
        (false, true) => Ok(Some(SystemTimeSpec::SymbolicNow)),
        (false, false) => Ok(None),
    };
    Ok((
        spec(FstFlags::ATIM, FstFlags::ATIM_NOW, atim)?,
        spec(FstFlags::MTIM, FstFlags::MTIM_NOW, mtim)?,
    ))
}

/// `fd_filestat_get`.
pub(crate) fn fd_filestat_get(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    fd: u32,
    stat_ptr: u32,
) -> Result<(), Errno> {
    mem.check(stat_ptr, u64::from(FILESTAT_SIZE))?;
    let entry = cx.table.get(fd)?;
    entry.require(Rights::FD_FILESTAT_GET)?;
    let stat = match &entry.desc {
        Descriptor::File(file) => filestat(&file.metadata()?),
        Descriptor::Dir(dir) => filestat(&dir.dir.dir_metadata()?),
        Descriptor::Input(input) if input.is_terminal() => {
            filestat_of_type(Filetype::CharacterDevice)
        }
        Descriptor::Output(output) if output.is_terminal() => {
            filestat_of_type(Filetype::CharacterDevice)
        }
        Descriptor::Input(_) | Descriptor::Output(_) => filestat_of_type(Filetype::Unknown),
        Descriptor::Listener(_) | Descriptor::Stream(_) => filestat_of_type(Filetype::SocketStream),
    };
    mem.write(stat_ptr, &stat)
}

/// `fd_filestat_set_size`: truncates or extends a file.
pub(crate) fn fd_filestat_set_size(cx: &mut WasiCtx, fd: u32, size: u64) -> Result<(), Errno> {
    let entry = cx.table.get(fd)?;
    entry.require(Rights::FD_FILESTAT_SET_SIZE)?;
    let Descriptor::File(file) = &entry.desc else {
        return Err(Errno::Badf);
    };
    retry(|| file.set_len(size))
}

/// `fd_filestat_set_times`.
pub(crate) fn fd_filestat_set_times(
    cx: &mut WasiCtx,
    fd: u32,
    atim: u64,
    mtim: u64,
    fst_flags: u32,
) -> Result<(), Errno> {
    let (atime, mtime) = time_specs(atim, mtim, fst_flags)?;
    let entry = cx.table.get(fd)?;
    entry.require(Rights::FD_FILESTAT_SET_TIMES)?;
    match &entry.desc {
        Descriptor::File(file) => Ok(SetTimes::set_times(file, atime, mtime)?),
        // By path, since cap-std may hold directories by handles that cannot set times.
        Descriptor::Dir(dir) => Ok(DirExt::set_times(
            &dir.dir,
            ".",
            atime.map(cap_fs_ext::SystemTimeSpec::from_std),
            mtime.map(cap_fs_ext::SystemTimeSpec::from_std),
        )?),
        _ => Err(Errno::Badf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_flags_are_checked() {
        assert!(matches!(time_specs(0, 0, 0), Ok((None, None))));
        assert!(matches!(
            time_specs(5, 0, 1 | 8),
            Ok((
                Some(SystemTimeSpec::Absolute(_)),
                Some(SystemTimeSpec::SymbolicNow)
            ))
        ));
        assert_eq!(time_specs(0, 0, 1 | 2).err(), Some(Errno::Inval));
        assert_eq!(time_specs(0, 0, 4 | 8).err(), Some(Errno::Inval));
        assert_eq!(time_specs(0, 0, 16).err(), Some(Errno::Inval));
    }

    #[test]
    fn timestamps_before_the_epoch_are_zero() {
        assert_eq!(timestamp(-1, 0), 0);
        assert_eq!(timestamp(2, 5), 2_000_000_005);
    }
}
