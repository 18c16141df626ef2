//! The capability sandbox: a guest reaches nothing outside its preopens, and a
//! read-only preopen changes nothing.

use crate::{Guest, TempDir, at, errno, oflags, rights};
use strata_wasi::{DirPerms, FilePerms, WasiCtxBuilder};

/// A preopened `root` (fd 3) next to an `outside` directory holding `secret.txt`.
struct Sandbox {
    top: TempDir,
    guest: Guest,
}

impl Sandbox {
    fn new(dir_perms: DirPerms, file_perms: FilePerms) -> Sandbox {
        let top = TempDir::new();
        let root = top.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("inside.txt"), b"inside").unwrap();
        std::fs::create_dir(top.path().join("outside")).unwrap();
        std::fs::write(top.path().join("outside/secret.txt"), b"secret").unwrap();
        let guest = Guest::new(
            WasiCtxBuilder::new()
                .preopened_dir(&root, "/sandbox", dir_perms, file_perms)
                .unwrap()
                .build(),
        );
        Sandbox { top, guest }
    }

    fn host(&self, path: &str) -> std::path::PathBuf {
        self.top.path().join(path)
    }
}

#[track_caller]
fn assert_denied(result: Result<u32, i32>) {
    match result {
        Err(errno::NOTCAPABLE | errno::PERM) => {}
        other => panic!("expected ENOTCAPABLE or EPERM, got {other:?}"),
    }
}

#[track_caller]
fn assert_denied_errno(errno: i32) {
    assert_denied(Err(errno));
}

#[test]
fn paths_cannot_escape_the_preopen() {
    let mut s = Sandbox::new(DirPerms::all(), FilePerms::all());
    let g = &mut s.guest;
    // The way in works.
    let fd = g.open(3, "inside.txt", 0, rights::FILE_RO, 0).unwrap();
    assert_eq!(g.fd_read(fd, 64).unwrap(), b"inside");

    for path in [
        "../outside/secret.txt",
        "/etc/passwd",
        "/",
        "..",
        "sub/../../outside/secret.txt",
        "sub/../sub/../../outside/secret.txt",
        "./../root/inside.txt",
    ] {
        assert_denied(g.open(3, path, 0, rights::FILE_RO, 0));
    }
    assert_denied(g.open(3, "..", oflags::DIRECTORY, rights::FD_READ, 0));
    assert_denied(g.open(3, "../outside/new", oflags::CREAT, rights::FILE_RW, 0));
    assert!(!s.host("outside/new").exists());
    let g = &mut s.guest;
    assert_denied(g.stat(3, "../outside/secret.txt").map(|_| 0));
    assert_denied(g.stat(3, "/etc").map(|_| 0));
    assert_denied_errno(g.path_call("path_create_directory", 3, "../made"));
    assert_denied_errno(g.path_call("path_unlink_file", 3, "../outside/secret.txt"));
    assert_denied_errno(g.path_call("path_remove_directory", 3, "../outside"));
    let [old, old_len] = g.string(at::PATH, "inside.txt");
    let [new, new_len] = g.string(at::PATH2, "../outside/stolen.txt");
    assert_denied_errno(g.call("path_rename", &[3, old, old_len, 3, new, new_len]));
    assert_denied_errno(g.call("path_link", &[3, 0, old, old_len, 3, new, new_len]));
    assert!(!s.host("made").exists());
    assert!(s.host("outside/secret.txt").exists());
    assert!(s.host("root/inside.txt").exists());
    assert!(!s.host("outside/stolen.txt").exists());
}

#[test]
fn symlinks_cannot_escape_the_preopen() {
    let mut s = Sandbox::new(DirPerms::all(), FilePerms::all());
    let root = s.host("root");
    std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
    std::os::unix::fs::symlink("../outside", root.join("up")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", root.join("secret")).unwrap();
    std::os::unix::fs::symlink("../../outside", root.join("sub/deep")).unwrap();
    std::os::unix::fs::symlink("inside.txt", root.join("fine")).unwrap();
    let g = &mut s.guest;

    for path in [
        "etc/passwd",
        "up/secret.txt",
        "secret",
        "sub/deep/secret.txt",
    ] {
        assert_denied(g.open(3, path, 0, rights::FILE_RO, 0));
        assert_denied(g.stat(3, path).map(|_| 0));
    }
    assert_denied(g.open(3, "up", oflags::DIRECTORY, rights::FD_READDIR, 0));
    assert_denied(g.open(3, "up/new.txt", oflags::CREAT, rights::FILE_RW, 0));
    // A link that stays inside works.
    let fd = g.open(3, "fine", 0, rights::FILE_RO, 0).unwrap();
    assert_eq!(g.fd_read(fd, 64).unwrap(), b"inside");

    // A symlink the guest makes itself is no way out either.
    let [old, old_len] = g.string(at::PATH2, "../outside");
    let [new, new_len] = g.string(at::PATH, "mine");
    assert_eq!(g.call("path_symlink", &[old, old_len, 3, new, new_len]), 0);
    assert_denied(g.open(3, "mine/secret.txt", 0, rights::FILE_RO, 0));
    // A symlink to an absolute path is refused outright.
    let [old, old_len] = g.string(at::PATH2, "/etc/passwd");
    let [new, new_len] = g.string(at::PATH, "abs");
    assert_denied_errno(g.call("path_symlink", &[old, old_len, 3, new, new_len]));
    assert_eq!(g.open(3, "abs", 0, rights::FILE_RO, 0), Err(errno::NOENT));
    assert!(!s.host("outside/new.txt").exists());
}

#[test]
fn a_subdirectory_fd_is_its_own_sandbox() {
    let mut s = Sandbox::new(DirPerms::all(), FilePerms::all());
    let g = &mut s.guest;
    let sub = g
        .open(3, "sub", oflags::DIRECTORY, rights::FD_READDIR | 1 << 13, 0)
        .unwrap();
    assert_denied(g.open(sub, "../inside.txt", 0, rights::FILE_RO, 0));
    assert_denied(g.open(sub, "../../outside/secret.txt", 0, rights::FILE_RO, 0));
}

#[test]
fn a_read_only_preopen_refuses_every_change() {
    let mut s = Sandbox::new(DirPerms::READ, FilePerms::READ);
    let g = &mut s.guest;
    let fd = g.open(3, "inside.txt", 0, rights::FILE_RO, 0).unwrap();
    assert_eq!(g.fd_read(fd, 64).unwrap(), b"inside");
    assert_denied_errno(g.fd_write(fd, b"x").unwrap_err());
    assert_denied_errno(g.call("fd_filestat_set_size", &[fd.into(), 0]));
    assert_denied_errno(g.call("fd_allocate", &[fd.into(), 0, 10]));

    assert_denied(g.open(3, "inside.txt", 0, rights::FILE_RW, 0));
    assert_denied(g.open(3, "inside.txt", 0, rights::FD_WRITE, 0));
    assert_denied(g.open(3, "inside.txt", oflags::TRUNC, rights::FILE_RO, 0));
    assert_denied(g.open(3, "new.txt", oflags::CREAT, rights::FILE_RO, 0));
    // Appending needs a write right too.
    assert_denied(g.open(3, "inside.txt", 0, rights::FD_WRITE, 1));
    assert_denied_errno(g.path_call("path_create_directory", 3, "newdir"));
    assert_denied_errno(g.path_call("path_unlink_file", 3, "inside.txt"));
    assert_denied_errno(g.path_call("path_remove_directory", 3, "sub"));
    let [old, old_len] = g.string(at::PATH, "inside.txt");
    let [new, new_len] = g.string(at::PATH2, "renamed.txt");
    assert_denied_errno(g.call("path_rename", &[3, old, old_len, 3, new, new_len]));
    assert_denied_errno(g.call("path_link", &[3, 0, old, old_len, 3, new, new_len]));
    assert_denied_errno(g.call("path_symlink", &[old, old_len, 3, new, new_len]));
    assert_denied_errno(g.call("path_filestat_set_times", &[3, 1, old, old_len, 0, 0, 8]));

    // A directory opened under it is just as read-only.
    let sub = g
        .open(3, "sub", oflags::DIRECTORY, !rights::FD_WRITE, 0)
        .unwrap();
    assert_denied(g.open(sub, "x", oflags::CREAT, rights::FILE_RW, 0));
    let (_, _, base, inheriting) = g.fdstat(sub).unwrap();
    assert_eq!(base as i64 & (1 << 10), 0, "no PATH_CREATE_FILE");
    assert_eq!(inheriting as i64 & rights::FD_WRITE, 0);

    assert_eq!(std::fs::read(s.host("root/inside.txt")).unwrap(), b"inside");
    let mut names: Vec<_> = std::fs::read_dir(s.host("root"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["inside.txt", "sub"]);
}

#[test]
fn a_preopen_must_be_a_directory() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let mut builder = WasiCtxBuilder::new();
    let missing = builder.preopened_dir(
        dir.path().join("missing"),
        "/m",
        DirPerms::all(),
        FilePerms::all(),
    );
    assert!(missing.is_err());
    let file = builder.preopened_dir(
        dir.path().join("file"),
        "/f",
        DirPerms::all(),
        FilePerms::all(),
    );
    let message = file.err().unwrap().to_string();
    assert!(message.contains("file"), "{message}");
}
