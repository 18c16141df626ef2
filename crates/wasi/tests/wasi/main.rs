//! Integration tests of strata-wasi: one test binary, one module per area.
//!
//! Every test drives the real host functions through a guest module that imports all
//! of `wasi_snapshot_preview1` and exports a wrapper of the same name around each one,
//! so a test calls `fd_write` with plain numbers and inspects guest memory afterwards.

mod args_env;
mod fault;
mod fs;
mod misc;
mod sandbox;
mod sock;
mod stdio;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use strata::{Engine, Instance, Linker, Memory, Module, Store, Val};
use strata_wasi::{WasiCtx, WasiCtxBuilder};

/// Every function of `wasi_snapshot_preview1`: name, parameter types, result types.
pub const FUNCS: &[(&str, &str, &str)] = &[
    ("args_get", "i32 i32", "i32"),
    ("args_sizes_get", "i32 i32", "i32"),
    ("environ_get", "i32 i32", "i32"),
    ("environ_sizes_get", "i32 i32", "i32"),
    ("clock_res_get", "i32 i32", "i32"),
    ("clock_time_get", "i32 i64 i32", "i32"),
    ("fd_advise", "i32 i64 i64 i32", "i32"),
    ("fd_allocate", "i32 i64 i64", "i32"),
    ("fd_close", "i32", "i32"),
    ("fd_datasync", "i32", "i32"),
    ("fd_fdstat_get", "i32 i32", "i32"),
    ("fd_fdstat_set_flags", "i32 i32", "i32"),
    ("fd_fdstat_set_rights", "i32 i64 i64", "i32"),
    ("fd_filestat_get", "i32 i32", "i32"),
    ("fd_filestat_set_size", "i32 i64", "i32"),
    ("fd_filestat_set_times", "i32 i64 i64 i32", "i32"),
    ("fd_pread", "i32 i32 i32 i64 i32", "i32"),
    ("fd_prestat_get", "i32 i32", "i32"),
    ("fd_prestat_dir_name", "i32 i32 i32", "i32"),
    ("fd_pwrite", "i32 i32 i32 i64 i32", "i32"),
    ("fd_read", "i32 i32 i32 i32", "i32"),
    ("fd_readdir", "i32 i32 i32 i64 i32", "i32"),
    ("fd_renumber", "i32 i32", "i32"),
    ("fd_seek", "i32 i64 i32 i32", "i32"),
    ("fd_sync", "i32", "i32"),
    ("fd_tell", "i32 i32", "i32"),
    ("fd_write", "i32 i32 i32 i32", "i32"),
    ("path_create_directory", "i32 i32 i32", "i32"),
    ("path_filestat_get", "i32 i32 i32 i32 i32", "i32"),
    (
        "path_filestat_set_times",
        "i32 i32 i32 i32 i64 i64 i32",
        "i32",
    ),
    ("path_link", "i32 i32 i32 i32 i32 i32 i32", "i32"),
    ("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32", "i32"),
    ("path_readlink", "i32 i32 i32 i32 i32 i32", "i32"),
    ("path_remove_directory", "i32 i32 i32", "i32"),
    ("path_rename", "i32 i32 i32 i32 i32 i32", "i32"),
    ("path_symlink", "i32 i32 i32 i32 i32", "i32"),
    ("path_unlink_file", "i32 i32 i32", "i32"),
    ("poll_oneoff", "i32 i32 i32 i32", "i32"),
    ("proc_exit", "i32", ""),
    ("proc_raise", "i32", "i32"),
    ("sched_yield", "", "i32"),
    ("random_get", "i32 i32", "i32"),
    ("sock_accept", "i32 i32 i32", "i32"),
    ("sock_recv", "i32 i32 i32 i32 i32 i32", "i32"),
    ("sock_send", "i32 i32 i32 i32 i32", "i32"),
    ("sock_shutdown", "i32 i32", "i32"),
];

/// Errnos the tests expect.
pub mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const EXIST: i32 = 20;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const ISDIR: i32 = 31;
    pub const LOOP: i32 = 32;
    pub const NAMETOOLONG: i32 = 37;
    pub const NOENT: i32 = 44;
    pub const NOSPC: i32 = 51;
    pub const NOSYS: i32 = 52;
    pub const NOTCONN: i32 = 53;
    pub const NOTDIR: i32 = 54;
    pub const NOTEMPTY: i32 = 55;
    pub const NOTSUP: i32 = 58;
    pub const PERM: i32 = 63;
    pub const NOTCAPABLE: i32 = 76;
}

/// Rights bits the tests use.
pub mod rights {
    pub const FD_DATASYNC: i64 = 1 << 0;
    pub const FD_READ: i64 = 1 << 1;
    pub const FD_SEEK: i64 = 1 << 2;
    pub const FD_SYNC: i64 = 1 << 4;
    pub const FD_TELL: i64 = 1 << 5;
    pub const FD_WRITE: i64 = 1 << 6;
    pub const FD_ADVISE: i64 = 1 << 7;
    pub const FD_ALLOCATE: i64 = 1 << 8;
    pub const FD_READDIR: i64 = 1 << 14;
    pub const FD_FILESTAT_GET: i64 = 1 << 21;
    pub const FD_FILESTAT_SET_SIZE: i64 = 1 << 22;
    pub const FD_FILESTAT_SET_TIMES: i64 = 1 << 23;
    pub const FD_FDSTAT_SET_FLAGS: i64 = 1 << 3;
    /// What a guest asks for to read and write a file.
    pub const FILE_RW: i64 = FD_READ
        | FD_WRITE
        | FD_SEEK
        | FD_TELL
        | FD_SYNC
        | FD_DATASYNC
        | FD_ADVISE
        | FD_ALLOCATE
        | FD_FILESTAT_GET
        | FD_FILESTAT_SET_SIZE
        | FD_FILESTAT_SET_TIMES
        | FD_FDSTAT_SET_FLAGS;
    /// What a guest asks for to read a file.
    pub const FILE_RO: i64 = FD_READ | FD_SEEK | FD_TELL | FD_FILESTAT_GET;
}

/// `oflags`.
pub mod oflags {
    pub const CREAT: i64 = 1;
    pub const DIRECTORY: i64 = 2;
    pub const EXCL: i64 = 4;
    pub const TRUNC: i64 = 8;
}

/// Scratch addresses in guest memory.
pub mod at {
    /// Results (`nwritten`, `opened_fd`, ...).
    pub const OUT: u32 = 0;
    /// A second result.
    pub const OUT2: u32 = 8;
    /// Iovec arrays.
    pub const IOVS: u32 = 64;
    /// The first path argument.
    pub const PATH: u32 = 1024;
    /// The second path argument.
    pub const PATH2: u32 = 2048;
    /// Data buffers.
    pub const DATA: u32 = 4096;
}

/// The guest memory size: two pages.
pub const MEMORY_SIZE: u32 = 2 * 65536;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(Engine::default)
}

/// WAT for a module that imports `funcs` and exports a wrapper around each.
pub fn wrapper_wat(funcs: &[(&str, &str, &str)], memory: bool) -> String {
    let mut wat = String::from("(module\n");
    for (name, params, results) in funcs {
        wat += &format!(
            "  (import \"wasi_snapshot_preview1\" \"{name}\" (func ${name} (param {params}) (result {results})))\n"
        );
    }
    if memory {
        wat += &format!("  (memory (export \"memory\") {})\n", MEMORY_SIZE / 65536);
    }
    for (name, params, results) in funcs {
        let args: String = (0..params.split_whitespace().count())
            .map(|i| format!(" (local.get {i})"))
            .collect();
        wat += &format!(
            "  (func (export \"{name}\") (param {params}) (result {results}) (call ${name}{args}))\n"
        );
    }
    wat + ")\n"
}

fn module() -> &'static Module {
    static MODULE: OnceLock<Module> = OnceLock::new();
    MODULE.get_or_init(|| Module::new(engine(), wrapper_wat(FUNCS, true)).unwrap())
}

/// A linker with all of WASI.
pub fn linker() -> Linker<WasiCtx> {
    let mut linker = Linker::new(engine());
    strata_wasi::add_to_linker(&mut linker, |cx: &mut WasiCtx| cx).unwrap();
    linker
}

/// An instance of the wrapper module.
pub struct Guest {
    store: Store<WasiCtx>,
    instance: Instance,
    memory: Memory,
}

impl Guest {
    pub fn new(cx: WasiCtx) -> Guest {
        let mut store = Store::new(engine(), cx);
        let instance = linker().instantiate(&mut store, module()).unwrap();
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        Guest {
            store,
            instance,
            memory,
        }
    }

    /// A guest with nothing but default stdio.
    pub fn plain() -> Guest {
        Guest::new(WasiCtxBuilder::new().build())
    }

    /// Calls WASI function `name`; each argument is cut to the parameter's type.
    pub fn try_call(&mut self, name: &str, args: &[i64]) -> strata::Result<Option<i32>> {
        let (_, params, results) = FUNCS.iter().find(|(n, ..)| *n == name).unwrap();
        let params: Vec<Val> = params
            .split_whitespace()
            .zip(args)
            .map(|(ty, &arg)| match ty {
                "i32" => Val::I32(arg as i32),
                _ => Val::I64(arg),
            })
            .collect();
        assert_eq!(params.len(), args.len(), "wrong argument count for {name}");
        let func = self.instance.get_func(&mut self.store, name).unwrap();
        let mut out = vec![Val::I32(0); results.split_whitespace().count()];
        func.call(&mut self.store, &params, &mut out)?;
        Ok(out.first().and_then(Val::i32))
    }

    /// Calls WASI function `name` and returns its errno.
    pub fn call(&mut self, name: &str, args: &[i64]) -> i32 {
        self.try_call(name, args).unwrap().unwrap()
    }

    pub fn write(&mut self, ptr: u32, bytes: &[u8]) {
        self.memory
            .write(&mut self.store, ptr as usize, bytes)
            .unwrap();
    }

    pub fn write_u32(&mut self, ptr: u32, value: u32) {
        self.write(ptr, &value.to_le_bytes());
    }

    pub fn write_u64(&mut self, ptr: u32, value: u64) {
        self.write(ptr, &value.to_le_bytes());
    }

    pub fn read(&mut self, ptr: u32, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.memory
            .read(&self.store, ptr as usize, &mut buf)
            .unwrap();
        buf
    }

    pub fn u16(&mut self, ptr: u32) -> u16 {
        u16::from_le_bytes(self.read(ptr, 2).try_into().unwrap())
    }

    pub fn u32(&mut self, ptr: u32) -> u32 {
        u32::from_le_bytes(self.read(ptr, 4).try_into().unwrap())
    }

    pub fn u64(&mut self, ptr: u32) -> u64 {
        u64::from_le_bytes(self.read(ptr, 8).try_into().unwrap())
    }

    /// Writes `s` at `ptr`; returns the `(ptr, len)` arguments naming it.
    pub fn string(&mut self, ptr: u32, s: &str) -> [i64; 2] {
        self.write(ptr, s.as_bytes());
        [i64::from(ptr), s.len() as i64]
    }

    /// Opens `path` under `dir`; the new fd, or the errno.
    pub fn open(
        &mut self,
        dir: u32,
        path: &str,
        oflags: i64,
        rights: i64,
        fdflags: i64,
    ) -> Result<u32, i32> {
        self.open_with(dir, 1, path, oflags, rights, fdflags)
    }

    /// Opens `path` under `dir` with `dirflags`.
    pub fn open_with(
        &mut self,
        dir: u32,
        dirflags: i64,
        path: &str,
        oflags: i64,
        rights: i64,
        fdflags: i64,
    ) -> Result<u32, i32> {
        let [p, len] = self.string(at::PATH, path);
        let errno = self.call(
            "path_open",
            &[
                dir.into(),
                dirflags,
                p,
                len,
                oflags,
                rights,
                rights,
                fdflags,
                at::OUT.into(),
            ],
        );
        if errno == 0 {
            Ok(self.u32(at::OUT))
        } else {
            Err(errno)
        }
    }

    /// Writes `bytes` to `fd` with one iovec; the count, or the errno.
    pub fn fd_write(&mut self, fd: u32, bytes: &[u8]) -> Result<u32, i32> {
        self.write(at::DATA, bytes);
        self.write_u32(at::IOVS, at::DATA);
        self.write_u32(at::IOVS + 4, bytes.len() as u32);
        match self.call("fd_write", &[fd.into(), at::IOVS.into(), 1, at::OUT.into()]) {
            0 => Ok(self.u32(at::OUT)),
            errno => Err(errno),
        }
    }

    /// Reads up to `len` bytes from `fd` with one iovec.
    pub fn fd_read(&mut self, fd: u32, len: u32) -> Result<Vec<u8>, i32> {
        self.write_u32(at::IOVS, at::DATA);
        self.write_u32(at::IOVS + 4, len);
        match self.call("fd_read", &[fd.into(), at::IOVS.into(), 1, at::OUT.into()]) {
            0 => {
                let n = self.u32(at::OUT);
                Ok(self.read(at::DATA, n as usize))
            }
            errno => Err(errno),
        }
    }

    /// Calls a `(fd, path, path_len)` function.
    pub fn path_call(&mut self, name: &str, dir: u32, path: &str) -> i32 {
        let [p, len] = self.string(at::PATH, path);
        self.call(name, &[dir.into(), p, len])
    }

    /// The filestat of `path` under `dir` (following symlinks), or the errno.
    pub fn stat(&mut self, dir: u32, path: &str) -> Result<Filestat, i32> {
        let [p, len] = self.string(at::PATH, path);
        match self.call(
            "path_filestat_get",
            &[dir.into(), 1, p, len, at::DATA.into()],
        ) {
            0 => Ok(self.filestat(at::DATA)),
            errno => Err(errno),
        }
    }

    /// The filestat record at `ptr`.
    pub fn filestat(&mut self, ptr: u32) -> Filestat {
        Filestat {
            ino: self.u64(ptr + 8),
            filetype: self.read(ptr + 16, 1)[0],
            nlink: self.u64(ptr + 24),
            size: self.u64(ptr + 32),
            atim: self.u64(ptr + 40),
            mtim: self.u64(ptr + 48),
        }
    }

    /// The (filetype, flags, base, inheriting) of `fd`.
    pub fn fdstat(&mut self, fd: u32) -> Result<(u8, u16, u64, u64), i32> {
        match self.call("fd_fdstat_get", &[fd.into(), at::DATA.into()]) {
            0 => Ok((
                self.read(at::DATA, 1)[0],
                self.u16(at::DATA + 2),
                self.u64(at::DATA + 8),
                self.u64(at::DATA + 16),
            )),
            errno => Err(errno),
        }
    }
}

/// The fields of a `filestat` the tests look at.
#[derive(Debug)]
pub struct Filestat {
    pub ino: u64,
    pub filetype: u8,
    pub nlink: u64,
    pub size: u64,
    pub atim: u64,
    pub mtim: u64,
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    #[expect(
        clippy::new_without_default,
        reason = "each call makes a directory on disk"
    )]
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "strata-wasi-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A guest with `dir` pre-opened as "." (fd 3) with all permissions.
pub fn guest_with_dir(dir: &TempDir) -> Guest {
    let cx = WasiCtxBuilder::new()
        .preopened_dir(
            dir.path(),
            ".",
            strata_wasi::DirPerms::all(),
            strata_wasi::FilePerms::all(),
        )
        .unwrap()
        .build();
    Guest::new(cx)
}

#[test]
fn all_46_functions_are_defined() {
    assert_eq!(FUNCS.len(), 46);
    let mut store = Store::new(engine(), WasiCtxBuilder::new().build());
    let linker = linker();
    for (name, ..) in FUNCS {
        assert!(
            linker
                .get(&mut store, "wasi_snapshot_preview1", name)
                .is_some(),
            "{name} is not defined"
        );
    }
    // Instantiating the wrapper module checks every function's type.
    Guest::plain();
}

#[test]
fn adding_twice_fails_without_shadowing() {
    let mut linker = linker();
    assert!(strata_wasi::add_to_linker(&mut linker, |cx: &mut WasiCtx| cx).is_err());
    linker.allow_shadowing(true);
    strata_wasi::add_to_linker(&mut linker, |cx: &mut WasiCtx| cx).unwrap();
}
