//! The file descriptor table: what each guest fd refers to, and the rights it carries.
//!
//! New descriptors take the lowest free number. Every lookup checks that the fd exists
//! (`EBADF`) and, through [`Entry::require`], that it holds the rights the operation
//! needs (`ENOTCAPABLE`).

use crate::abi::{Filetype, Rights};
use crate::errno::Errno;
use crate::stdio::{Input, Output};
use std::net::{TcpListener, TcpStream};

/// What an fd refers to.
#[derive(Debug)]
pub(crate) enum Descriptor {
    /// Stdin.
    Input(Input),
    /// Stdout or stderr.
    Output(Output),
    /// A file (or other non-directory) opened under a preopen.
    File(cap_std::fs::File),
    /// A directory: a preopen, or one opened under a preopen.
    Dir(DirDesc),
    /// A pre-opened listening socket.
    Listener(TcpListener),
    /// A connection accepted from a listener.
    Stream(TcpStream),
}

/// A directory descriptor.
#[derive(Debug)]
pub(crate) struct DirDesc {
    /// The capability: every path is resolved inside it.
    pub(crate) dir: cap_std::fs::Dir,
    /// The name `fd_prestat_dir_name` reports, for preopens.
    pub(crate) preopen: Option<String>,
    /// The entries `fd_readdir` lists, read when it starts over at cookie 0.
    pub(crate) listing: Option<Vec<ListedEntry>>,
}

/// One entry of a directory listing.
#[derive(Debug)]
pub(crate) struct ListedEntry {
    /// The file name, as the host spells it.
    pub(crate) name: Vec<u8>,
    /// The inode number (0 where unknown).
    pub(crate) ino: u64,
    /// The file type.
    pub(crate) filetype: Filetype,
}

/// An open fd.
#[derive(Debug)]
pub(crate) struct Entry {
    /// What it refers to.
    pub(crate) desc: Descriptor,
    /// The rights of operations on this fd.
    pub(crate) base: Rights,
    /// The most rights an fd opened through this one may have.
    pub(crate) inheriting: Rights,
}

impl Entry {
    /// An entry with the given rights.
    pub(crate) fn new(desc: Descriptor, base: Rights, inheriting: Rights) -> Entry {
        Entry {
            desc,
            base,
            inheriting,
        }
    }

    /// Fails with `ENOTCAPABLE` unless the fd holds every right in `rights`.
    pub(crate) fn require(&self, rights: Rights) -> Result<(), Errno> {
        if self.base.contains(rights) {
            Ok(())
        } else {
            Err(Errno::Notcapable)
        }
    }

    /// The directory this fd refers to, with `rights` checked.
    ///
    /// Fails with `ENOTDIR` for any other descriptor.
    pub(crate) fn dir(&self, rights: Rights) -> Result<&DirDesc, Errno> {
        let Descriptor::Dir(dir) = &self.desc else {
            return Err(Errno::Notdir);
        };
        self.require(rights)?;
        Ok(dir)
    }
}

/// All open fds of a guest.
#[derive(Debug, Default)]
pub(crate) struct FdTable {
    slots: Vec<Option<Entry>>,
}

impl FdTable {
    /// Adds `entry` under the lowest free fd.
    ///
    /// Fails with `EMFILE` if no fd number is left.
    pub(crate) fn push(&mut self, entry: Entry) -> Result<u32, Errno> {
        let index = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let fd = u32::try_from(index).map_err(|_| Errno::Mfile)?;
        self.slots[index] = Some(entry);
        Ok(fd)
    }

    fn slot(&mut self, fd: u32) -> Result<&mut Option<Entry>, Errno> {
        let index = usize::try_from(fd).map_err(|_| Errno::Badf)?;
        self.slots.get_mut(index).ok_or(Errno::Badf)
    }

    /// The entry of `fd`.
    pub(crate) fn get(&self, fd: u32) -> Result<&Entry, Errno> {
        let index = usize::try_from(fd).map_err(|_| Errno::Badf)?;
        self.slots
            .get(index)
            .and_then(Option::as_ref)
            .ok_or(Errno::Badf)
    }

    /// The entry of `fd`, mutably.
    pub(crate) fn get_mut(&mut self, fd: u32) -> Result<&mut Entry, Errno> {
        self.slot(fd)?.as_mut().ok_or(Errno::Badf)
    }

    /// Closes `fd`, handing back its entry.
    pub(crate) fn remove(&mut self, fd: u32) -> Result<Entry, Errno> {
        let entry = self.slot(fd)?.take().ok_or(Errno::Badf)?;
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        Ok(entry)
    }

    /// Moves `from` to `to`, closing what `to` referred to. Both must be open.
    pub(crate) fn renumber(&mut self, from: u32, to: u32) -> Result<(), Errno> {
        self.get(to)?;
        if from == to {
            return self.get(from).map(drop);
        }
        let entry = self.remove(from)?;
        // `to` is still open, so removing `from` kept its slot.
        *self.slot(to)? = Some(entry);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdin() -> Entry {
        Entry::new(
            Descriptor::Input(Input::Empty),
            Rights::FD_READ,
            Rights::empty(),
        )
    }

    #[test]
    fn fds_reuse_the_lowest_free_number() {
        let mut table = FdTable::default();
        assert_eq!(table.push(stdin()), Ok(0));
        assert_eq!(table.push(stdin()), Ok(1));
        assert_eq!(table.push(stdin()), Ok(2));
        table.remove(1).unwrap();
        assert_eq!(table.get(1).err(), Some(Errno::Badf));
        assert_eq!(table.push(stdin()), Ok(1));
        assert_eq!(table.remove(7).err(), Some(Errno::Badf));
        assert_eq!(table.get(u32::MAX).err(), Some(Errno::Badf));
    }

    #[test]
    fn renumber_needs_both_fds_open() {
        let mut table = FdTable::default();
        table.push(stdin()).unwrap();
        table
            .push(Entry::new(
                Descriptor::Output(Output::Discard),
                Rights::FD_WRITE,
                Rights::empty(),
            ))
            .unwrap();
        assert_eq!(table.renumber(0, 5), Err(Errno::Badf));
        assert_eq!(table.renumber(5, 0), Err(Errno::Badf));
        assert_eq!(table.renumber(1, 1), Ok(()));
        table.renumber(1, 0).unwrap();
        assert_eq!(table.get(0).unwrap().base, Rights::FD_WRITE);
        assert_eq!(table.get(1).err(), Some(Errno::Badf));
    }

    #[test]
    fn rights_are_checked() {
        let entry = stdin();
        assert_eq!(entry.require(Rights::FD_READ), Ok(()));
        assert_eq!(entry.require(Rights::FD_WRITE), Err(Errno::Notcapable));
        assert_eq!(entry.dir(Rights::empty()).err(), Some(Errno::Notdir));
    }
}
