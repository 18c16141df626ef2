//! [`DirPerms`] and [`FilePerms`]: what a guest may do under a pre-opened directory, and
//! the preview1 rights they grant.
//!
//! A preopen's base rights come from its `DirPerms`; its inheriting rights (what
//! `path_open` may hand to files and directories opened under it) add the rights of its
//! `FilePerms`. Without [`DirPerms::MUTATE`] no right creates, removes, renames, links or
//! changes anything by path; without [`FilePerms::WRITE`] no opened file can be written,
//! resized or have its times set.

use crate::abi::Rights;
use bitflags::bitflags;

bitflags! {
    /// What a guest may do to the directories of a preopen.
    #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
    pub struct DirPerms: u8 {
        /// Open, list, stat and read links by path.
        const READ = 1 << 0;
        /// Create, remove, rename and link entries, and set times or sizes by path.
        const MUTATE = 1 << 1;
    }
}

bitflags! {
    /// What a guest may do to the files it opens under a preopen.
    #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
    pub struct FilePerms: u8 {
        /// Read.
        const READ = 1 << 0;
        /// Write, resize, allocate and set times.
        const WRITE = 1 << 1;
    }
}

impl DirPerms {
    /// The rights a directory under these permissions has.
    pub(crate) fn rights(self) -> Rights {
        let mut rights = Rights::empty();
        if !self.is_empty() {
            rights |= Rights::PATH_OPEN
                | Rights::FD_FDSTAT_SET_FLAGS
                | Rights::FD_SYNC
                | Rights::FD_DATASYNC;
        }
        if self.contains(DirPerms::READ) {
            rights |= Rights::FD_READDIR
                | Rights::PATH_READLINK
                | Rights::PATH_FILESTAT_GET
                | Rights::FD_FILESTAT_GET;
        }
        if self.contains(DirPerms::MUTATE) {
            rights |= Rights::PATH_CREATE_DIRECTORY
                | Rights::PATH_CREATE_FILE
                | Rights::PATH_LINK_SOURCE
                | Rights::PATH_LINK_TARGET
                | Rights::PATH_RENAME_SOURCE
                | Rights::PATH_RENAME_TARGET
                | Rights::PATH_FILESTAT_SET_SIZE
                | Rights::PATH_FILESTAT_SET_TIMES
                | Rights::FD_FILESTAT_SET_TIMES
                | Rights::PATH_SYMLINK
                | Rights::PATH_REMOVE_DIRECTORY
                | Rights::PATH_UNLINK_FILE;
        }
        rights
    }
}

impl FilePerms {
    /// The rights a file under these permissions has.
    pub(crate) fn rights(self) -> Rights {
        let mut rights = Rights::empty();
        if !self.is_empty() {
            rights |= Rights::FD_SEEK
                | Rights::FD_TELL
                | Rights::FD_FDSTAT_SET_FLAGS
                | Rights::FD_SYNC
                | Rights::FD_DATASYNC
                | Rights::FD_ADVISE
                | Rights::FD_FILESTAT_GET
                | Rights::POLL_FD_READWRITE;
        }
        if self.contains(FilePerms::READ) {
            rights |= Rights::FD_READ;
        }
        if self.contains(FilePerms::WRITE) {
            rights |= Rights::FD_WRITE
                | Rights::FD_ALLOCATE
                | Rights::FD_FILESTAT_SET_SIZE
                | Rights::FD_FILESTAT_SET_TIMES;
        }
        rights
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_grants_nothing_that_mutates() {
        let dir = DirPerms::READ.rights();
        let file = FilePerms::READ.rights();
        for right in [
            Rights::PATH_CREATE_FILE,
            Rights::PATH_CREATE_DIRECTORY,
            Rights::PATH_UNLINK_FILE,
            Rights::PATH_RENAME_TARGET,
            Rights::PATH_SYMLINK,
            Rights::PATH_FILESTAT_SET_SIZE,
        ] {
            assert!(!dir.contains(right), "{right:?}");
        }
        assert!(!file.contains(Rights::FD_WRITE));
        assert!(!file.contains(Rights::FD_FILESTAT_SET_SIZE));
        assert!(dir.contains(Rights::PATH_OPEN | Rights::FD_READDIR));
        assert!(file.contains(Rights::FD_READ | Rights::FD_SEEK));
    }

    #[test]
    fn all_grants_the_mutating_rights() {
        assert!((DirPerms::READ | DirPerms::MUTATE) == DirPerms::all());
        assert!(DirPerms::all().rights().contains(Rights::PATH_CREATE_FILE));
        assert!(FilePerms::all().rights().contains(Rights::FD_WRITE));
        assert_eq!(
            DirPerms::all().rights() & !Rights::DIRECTORY,
            Rights::empty()
        );
        assert_eq!(FilePerms::all().rights() & !Rights::FILE, Rights::empty());
    }
}
