//! Files and directories under a pre-opened directory.

use crate::{Guest, TempDir, at, errno, guest_with_dir, oflags, rights};
use std::time::{Duration, SystemTime};
use strata_wasi::{DirPerms, FilePerms, WasiCtxBuilder};

const SET: i64 = 0;
const CUR: i64 = 1;
const END: i64 = 2;

fn seek(g: &mut Guest, fd: u32, offset: i64, whence: i64) -> Result<u64, i32> {
    match g.call("fd_seek", &[fd.into(), offset, whence, at::OUT.into()]) {
        0 => Ok(g.u64(at::OUT)),
        errno => Err(errno),
    }
}

fn tell(g: &mut Guest, fd: u32) -> u64 {
    assert_eq!(g.call("fd_tell", &[fd.into(), at::OUT.into()]), 0);
    g.u64(at::OUT)
}

#[test]
fn files_are_created_written_read_and_sought() {
    let dir = TempDir::new();
    let mut g = guest_with_dir(&dir);
    let fd = g
        .open(
            3,
            "a.txt",
            oflags::CREAT | oflags::TRUNC,
            rights::FILE_RW,
            0,
        )
        .unwrap();
    assert_eq!(fd, 4);
    assert_eq!(g.fd_write(fd, b"hello world"), Ok(11));
    assert_eq!(tell(&mut g, fd), 11);
    assert_eq!(seek(&mut g, fd, 0, SET), Ok(0));
    assert_eq!(g.fd_read(fd, 5).unwrap(), b"hello");
    assert_eq!(seek(&mut g, fd, -5, END), Ok(6));
    assert_eq!(g.fd_read(fd, 100).unwrap(), b"world");
    assert_eq!(g.fd_read(fd, 100).unwrap(), b"");
    assert_eq!(seek(&mut g, fd, -2, CUR), Ok(9));
    assert_eq!(seek(&mut g, fd, -1, SET), Err(errno::INVAL));
    assert_eq!(seek(&mut g, fd, 0, 3), Err(errno::INVAL));

    // Positioned reads and writes leave the position alone.
    g.write_u32(at::IOVS, at::DATA);
    g.write_u32(at::IOVS + 4, 5);
    assert_eq!(
        g.call(
            "fd_pread",
            &[fd.into(), at::IOVS.into(), 1, 6, at::OUT.into()]
        ),
        0
    );
    assert_eq!(g.u32(at::OUT), 5);
    assert_eq!(g.read(at::DATA, 5), b"world");
    g.write(at::DATA, b"HELLO");
    assert_eq!(
        g.call(
            "fd_pwrite",
            &[fd.into(), at::IOVS.into(), 1, 0, at::OUT.into()]
        ),
        0
    );
    assert_eq!(g.u32(at::OUT), 5);
    assert_eq!(tell(&mut g, fd), 9);
    assert_eq!(g.call("fd_close", &[fd.into()]), 0);
    assert_eq!(g.call("fd_close", &[fd.into()]), errno::BADF);
    assert_eq!(
        std::fs::read(dir.path().join("a.txt")).unwrap(),
        b"HELLO world"
    );
}

#[test]
fn iovecs_are_read_before_any_buffer_is_filled() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("f"), b"ABCDEFGHIJKLMNOPQRST").unwrap();
    let mut g = guest_with_dir(&dir);
    let fd = g.open(3, "f", 0, rights::FILE_RO, 0).unwrap();
    // The iovec array lies in its own first buffer, which the read overwrites before it
    // reaches the second buffer: [{0, 16}, {100, 4}].
    let nread = 200;
    for call in ["fd_read", "fd_pread"] {
        g.write(0, &[0; 104]);
        g.write_u32(0, 0);
        g.write_u32(4, 16);
        g.write_u32(8, 100);
        g.write_u32(12, 4);
        let args: &[i64] = if call == "fd_read" {
            &[fd.into(), 0, 2, nread]
        } else {
            &[fd.into(), 0, 2, 0, nread]
        };
        assert_eq!(g.call(call, args), 0, "{call}");
        assert_eq!(g.u32(nread as u32), 20, "{call}");
        assert_eq!(g.read(0, 16), b"ABCDEFGHIJKLMNOP", "{call}");
        assert_eq!(g.read(100, 4), b"QRST", "{call}");
    }
}

#[test]
fn filestat_size_and_times() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
    let mut g = guest_with_dir(&dir);
    let fd = g.open(3, "f", 0, rights::FILE_RW, 0).unwrap();
    assert_eq!(g.call("fd_filestat_get", &[fd.into(), at::DATA.into()]), 0);
    let stat = g.filestat(at::DATA);
    assert_eq!((stat.filetype, stat.size, stat.nlink), (4, 10, 1));
    assert_eq!(stat.ino, {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir.path().join("f")).unwrap().ino()
    });

    assert_eq!(g.call("fd_filestat_set_size", &[fd.into(), 4]), 0);
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"0123");

    const ATIM: i64 = 1;
    const ATIM_NOW: i64 = 2;
    const MTIM: i64 = 4;
    const MTIM_NOW: i64 = 8;
    let (atim, mtim) = (1_000_000_000_123i64, 2_000_000_000_456i64);
    assert_eq!(
        g.call(
            "fd_filestat_set_times",
            &[fd.into(), atim, mtim, ATIM | MTIM]
        ),
        0
    );
    let md = std::fs::metadata(dir.path().join("f")).unwrap();
    assert_eq!(
        md.modified().unwrap(),
        SystemTime::UNIX_EPOCH + Duration::from_nanos(mtim as u64)
    );
    let stat = g.stat(3, "f").unwrap();
    assert_eq!((stat.atim, stat.mtim), (atim as u64, mtim as u64));
    assert_eq!(
        g.call("fd_filestat_set_times", &[fd.into(), 0, 0, ATIM | ATIM_NOW]),
        errno::INVAL
    );

    let [p, len] = g.string(at::PATH, "f");
    assert_eq!(
        g.call("path_filestat_set_times", &[3, 1, p, len, 0, 0, MTIM_NOW]),
        0
    );
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let stat = g.stat(3, "f").unwrap();
    assert_eq!(stat.atim, atim as u64, "atime was left alone");
    assert!(now.abs_diff(stat.mtim) < 10_000_000_000, "mtime is now");
    assert_eq!(g.stat(3, "missing").err(), Some(errno::NOENT));
}

/// The entries of a `fd_readdir` buffer: (d_next, d_ino, name, d_type).
fn dirents(bytes: &[u8]) -> Vec<(u64, u64, String, u8)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 24 <= bytes.len() {
        let next = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let ino = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        let namlen = u32::from_le_bytes(bytes[at + 16..at + 20].try_into().unwrap()) as usize;
        let ty = bytes[at + 20];
        let end = (at + 24 + namlen).min(bytes.len());
        out.push((
            next,
            ino,
            String::from_utf8_lossy(&bytes[at + 24..end]).into_owned(),
            ty,
        ));
        at += 24 + namlen;
    }
    out
}

fn readdir(g: &mut Guest, fd: u32, len: u32, cookie: u64) -> Result<Vec<u8>, i32> {
    match g.call(
        "fd_readdir",
        &[
            fd.into(),
            at::DATA.into(),
            len.into(),
            cookie as i64,
            at::OUT.into(),
        ],
    ) {
        0 => {
            let used = g.u32(at::OUT);
            assert!(used <= len);
            Ok(g.read(at::DATA, used as usize))
        }
        errno => Err(errno),
    }
}

#[test]
fn readdir_lists_every_entry_and_resumes_from_a_cookie() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("one"), b"1").unwrap();
    std::fs::write(dir.path().join("two"), b"22").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let mut g = guest_with_dir(&dir);

    let all = dirents(&readdir(&mut g, 3, 4096, 0).unwrap());
    let mut names: Vec<(String, u8)> = all.iter().map(|(_, _, n, t)| (n.clone(), *t)).collect();
    names.sort();
    assert_eq!(
        names,
        [
            (".".into(), 3),
            ("..".into(), 3),
            ("one".into(), 4),
            ("sub".into(), 3),
            ("two".into(), 4)
        ]
    );
    for (i, (next, ..)) in all.iter().enumerate() {
        assert_eq!(*next, i as u64 + 1);
    }
    let one = all.iter().find(|e| e.2 == "one").unwrap();
    assert_eq!(one.1, {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir.path().join("one")).unwrap().ino()
    });

    // Resuming after entry 2 gives the rest.
    let rest = dirents(&readdir(&mut g, 3, 4096, 2).unwrap());
    assert_eq!(rest, all[2..]);
    assert_eq!(readdir(&mut g, 3, 4096, 5).unwrap(), b"");
    assert_eq!(readdir(&mut g, 3, 4096, 1000).unwrap(), b"");

    // A small buffer is filled exactly: "." (25 bytes) and the start of "..".
    let part = readdir(&mut g, 3, 30, 0).unwrap();
    assert_eq!(part.len(), 30);
    assert_eq!(dirents(&part)[0].2, ".");
    // A buffer smaller than one header holds a cut-off header.
    assert_eq!(readdir(&mut g, 3, 10, 0).unwrap().len(), 10);

    // Entries made after the listing started show up once it starts over.
    std::fs::write(dir.path().join("three"), b"").unwrap();
    assert_eq!(dirents(&readdir(&mut g, 3, 4096, 0).unwrap()).len(), 6);

    let file = g.open(3, "one", 0, rights::FILE_RO, 0).unwrap();
    assert_eq!(readdir(&mut g, file, 4096, 0), Err(errno::NOTDIR));
    assert_eq!(readdir(&mut g, 99, 4096, 0), Err(errno::BADF));
}

#[test]
fn directories_are_made_renamed_and_removed() {
    let dir = TempDir::new();
    let mut g = guest_with_dir(&dir);
    assert_eq!(g.path_call("path_create_directory", 3, "d"), 0);
    assert!(dir.path().join("d").is_dir());
    assert_eq!(g.path_call("path_create_directory", 3, "d"), errno::EXIST);
    let f = g.open(3, "d/f", oflags::CREAT, rights::FILE_RW, 0).unwrap();
    assert_eq!(g.call("fd_close", &[f.into()]), 0);
    assert_eq!(
        g.path_call("path_remove_directory", 3, "d"),
        errno::NOTEMPTY
    );
    assert_eq!(
        g.path_call("path_remove_directory", 3, "d/f"),
        errno::NOTDIR
    );
    let unlink_dir = g.path_call("path_unlink_file", 3, "d");
    assert!(
        [errno::ISDIR, errno::PERM].contains(&unlink_dir),
        "{unlink_dir}"
    );

    let [old, old_len] = g.string(at::PATH, "d/f");
    let [new, new_len] = g.string(at::PATH2, "g");
    assert_eq!(
        g.call("path_rename", &[3, old, old_len, 3, new, new_len]),
        0
    );
    assert!(dir.path().join("g").is_file());
    assert!(!dir.path().join("d/f").exists());

    assert_eq!(g.path_call("path_remove_directory", 3, "d"), 0);
    assert!(!dir.path().join("d").exists());
    assert_eq!(g.path_call("path_unlink_file", 3, "g"), 0);
    assert!(!dir.path().join("g").exists());
    assert_eq!(g.path_call("path_unlink_file", 3, "g"), errno::NOENT);
    // Path calls need a directory fd.
    assert_eq!(g.path_call("path_create_directory", 1, "x"), errno::NOTDIR);
    assert_eq!(g.path_call("path_create_directory", 42, "x"), errno::BADF);
}

#[test]
fn symlinks_and_hard_links() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("target"), b"contents").unwrap();
    let mut g = guest_with_dir(&dir);

    let [old, old_len] = g.string(at::PATH2, "target");
    let [new, new_len] = g.string(at::PATH, "link");
    assert_eq!(g.call("path_symlink", &[old, old_len, 3, new, new_len]), 0);
    assert_eq!(
        std::fs::read_link(dir.path().join("link")).unwrap(),
        std::path::Path::new("target")
    );

    let readlink = |g: &mut Guest, len: u32| {
        let [p, plen] = g.string(at::PATH, "link");
        let errno = g.call(
            "path_readlink",
            &[3, p, plen, at::DATA.into(), len.into(), at::OUT.into()],
        );
        assert_eq!(errno, 0);
        let used = g.u32(at::OUT);
        g.read(at::DATA, used as usize)
    };
    assert_eq!(readlink(&mut g, 64), b"target");
    assert_eq!(readlink(&mut g, 3), b"tar");

    // Following the link reads the target; not following it refuses to open a link.
    let fd = g.open(3, "link", 0, rights::FILE_RO, 0).unwrap();
    assert_eq!(g.fd_read(fd, 100).unwrap(), b"contents");
    let nofollow = g.open_with(3, 0, "link", 0, rights::FILE_RO, 0);
    assert_eq!(nofollow, Err(errno::LOOP));
    let [p, plen] = g.string(at::PATH, "link");
    assert_eq!(
        g.call("path_filestat_get", &[3, 0, p, plen, at::DATA.into()]),
        0
    );
    assert_eq!(g.filestat(at::DATA).filetype, 7);
    assert_eq!(g.stat(3, "link").unwrap().filetype, 4);

    let [old, old_len] = g.string(at::PATH2, "target");
    let [new, new_len] = g.string(at::PATH, "hard");
    assert_eq!(
        g.call("path_link", &[3, 0, old, old_len, 3, new, new_len]),
        0
    );
    assert_eq!(std::fs::read(dir.path().join("hard")).unwrap(), b"contents");
    assert_eq!(g.stat(3, "target").unwrap().nlink, 2);
    let [new, new_len] = g.string(at::PATH, "hard2");
    assert_eq!(
        g.call("path_link", &[3, 1, old, old_len, 3, new, new_len]),
        errno::INVAL
    );
    assert_eq!(
        g.call("path_link", &[3, 0, old, old_len, 3, old, old_len]),
        errno::EXIST
    );
}

#[test]
fn prestat_names_the_preopens() {
    let dir = TempDir::new();
    let other = TempDir::new();
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .preopened_dir(dir.path(), ".", DirPerms::all(), FilePerms::all())
            .unwrap()
            .preopened_dir(other.path(), "/data", DirPerms::READ, FilePerms::READ)
            .unwrap()
            .build(),
    );
    assert_eq!(g.call("fd_prestat_get", &[3, at::OUT.into()]), 0);
    assert_eq!((g.read(at::OUT, 1)[0], g.u32(at::OUT + 4)), (0, 1));
    assert_eq!(g.call("fd_prestat_dir_name", &[3, at::DATA.into(), 1]), 0);
    assert_eq!(g.read(at::DATA, 1), b".");
    assert_eq!(g.call("fd_prestat_get", &[4, at::OUT.into()]), 0);
    assert_eq!(g.u32(at::OUT + 4), 5);
    assert_eq!(g.call("fd_prestat_dir_name", &[4, at::DATA.into(), 5]), 0);
    assert_eq!(g.read(at::DATA, 5), b"/data");
    assert_eq!(
        g.call("fd_prestat_dir_name", &[4, at::DATA.into(), 4]),
        errno::NAMETOOLONG
    );
    // The list ends with EBADF, which is how guests find the last preopen.
    assert_eq!(g.call("fd_prestat_get", &[5, at::OUT.into()]), errno::BADF);
    assert_eq!(g.call("fd_prestat_get", &[1, at::OUT.into()]), errno::BADF);
    let (filetype, ..) = g.fdstat(4).unwrap();
    assert_eq!(filetype, 3);

    // Directories opened under a preopen are no preopens; closed preopens are gone.
    let sub = g
        .open(3, ".", oflags::DIRECTORY, rights::FD_READDIR, 0)
        .unwrap();
    assert_eq!(
        g.call("fd_prestat_get", &[sub.into(), at::OUT.into()]),
        errno::BADF
    );
    assert_eq!(g.call("fd_close", &[3]), 0);
    assert_eq!(g.call("fd_prestat_get", &[3, at::OUT.into()]), errno::BADF);
    assert_eq!(
        g.open(3, "x", oflags::CREAT, rights::FILE_RW, 0),
        Err(errno::BADF)
    );
}

#[test]
fn open_flags_behave() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("f"), b"old contents").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let mut g = guest_with_dir(&dir);

    assert_eq!(
        g.open(3, "f", oflags::CREAT | oflags::EXCL, rights::FILE_RW, 0),
        Err(errno::EXIST)
    );
    assert_eq!(
        g.open(3, "missing", 0, rights::FILE_RO, 0),
        Err(errno::NOENT)
    );
    assert_eq!(
        g.open(3, "f", oflags::DIRECTORY, rights::FD_READDIR, 0),
        Err(errno::NOTDIR)
    );
    assert_eq!(
        g.open(3, "sub", oflags::DIRECTORY | oflags::CREAT, 0, 0),
        Err(errno::INVAL)
    );
    // A directory opened without DIRECTORY is still a directory.
    let sub = g.open(3, "sub", 0, rights::FD_READDIR, 0).unwrap();
    assert_eq!(g.fdstat(sub).unwrap().0, 3);
    assert!(readdir(&mut g, sub, 256, 0).is_ok());
    assert_eq!(g.open(3, "sub", 0, rights::FILE_RW, 0), Err(errno::ISDIR));

    let fd = g.open(3, "f", oflags::TRUNC, rights::FILE_RW, 0).unwrap();
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"");
    assert_eq!(g.fd_write(fd, b"abc"), Ok(3));
    g.call("fd_close", &[fd.into()]);

    // APPEND writes at the end whatever the position, until it is cleared.
    const APPEND: i64 = 1;
    let fd = g.open(3, "f", 0, rights::FILE_RW, APPEND).unwrap();
    assert_eq!(g.fdstat(fd).unwrap().1, 1);
    assert_eq!(seek(&mut g, fd, 0, SET), Ok(0));
    assert_eq!(g.fd_write(fd, b"def"), Ok(3));
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"abcdef");
    assert_eq!(g.call("fd_fdstat_set_flags", &[fd.into(), 0]), 0);
    assert_eq!(g.fdstat(fd).unwrap().1, 0);
    assert_eq!(seek(&mut g, fd, 0, SET), Ok(0));
    assert_eq!(g.fd_write(fd, b"X"), Ok(1));
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"Xbcdef");
    assert_eq!(g.call("fd_fdstat_set_flags", &[fd.into(), APPEND]), 0);
    assert_eq!(g.fdstat(fd).unwrap().1, 1);
    // The sync flags cannot change after opening; unknown flags are invalid.
    const SYNC: i64 = 16;
    assert_eq!(
        g.call("fd_fdstat_set_flags", &[fd.into(), SYNC]),
        errno::NOTSUP
    );
    assert_eq!(
        g.call("fd_fdstat_set_flags", &[fd.into(), 64]),
        errno::INVAL
    );
    // Opened with DSYNC, the flag shows.
    const DSYNC: i64 = 2;
    let synced = g.open(3, "f", 0, rights::FILE_RW, DSYNC).unwrap();
    assert_ne!(g.fdstat(synced).unwrap().1 & 2, 0);
    assert_eq!(g.open(3, "f", 16, rights::FILE_RW, 0), Err(errno::INVAL));
}

#[test]
fn sync_advise_and_allocate() {
    let dir = TempDir::new();
    let mut g = guest_with_dir(&dir);
    let fd = g.open(3, "f", oflags::CREAT, rights::FILE_RW, 0).unwrap();
    assert_eq!(g.fd_write(fd, b"data"), Ok(4));
    assert_eq!(g.call("fd_sync", &[fd.into()]), 0);
    assert_eq!(g.call("fd_datasync", &[fd.into()]), 0);
    assert_eq!(g.call("fd_sync", &[3]), 0);
    assert_eq!(g.call("fd_datasync", &[3]), 0);
    // A directory's times can be set through its fd.
    let mtim = 3_000_000_000_000i64;
    assert_eq!(g.call("fd_filestat_set_times", &[3, 0, mtim, 4]), 0);
    assert_eq!(
        std::fs::metadata(dir.path()).unwrap().modified().unwrap(),
        SystemTime::UNIX_EPOCH + Duration::from_nanos(mtim as u64)
    );
    assert_eq!(g.call("fd_advise", &[fd.into(), 0, 4, 1]), 0);
    assert_eq!(g.call("fd_advise", &[fd.into(), 0, 4, 6]), errno::INVAL);
    assert_eq!(g.call("fd_allocate", &[fd.into(), 0, 100]), 0);
    assert!(std::fs::metadata(dir.path().join("f")).unwrap().len() >= 100);
    assert_eq!(g.call("fd_allocate", &[fd.into(), 0, 0]), errno::INVAL);
    // A directory can be neither read nor written.
    assert_eq!(g.fd_read(3, 4), Err(errno::NOTCAPABLE));
    assert_eq!(g.fd_write(3, b"x"), Err(errno::NOTCAPABLE));
    assert_eq!(g.call("fd_allocate", &[3, 0, 1]), errno::NOTCAPABLE);
}
