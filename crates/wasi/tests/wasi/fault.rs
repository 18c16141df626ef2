//! Bad pointers and lengths from the guest give `EFAULT`, before any side effect, and
//! never a host error or panic.

use crate::{
    Guest, MEMORY_SIZE, TempDir, at, engine, errno, guest_with_dir, linker, oflags, rights,
    wrapper_wat,
};
use strata::{Module, Store};
use strata_wasi::{MemoryInputPipe, MemoryOutputPipe, WasiCtxBuilder};

const END: i64 = MEMORY_SIZE as i64;
/// A pointer whose sum with a small length wraps around 2^32.
const WRAPS: i64 = 0xFFFF_FFF0;

#[test]
fn fd_write_checks_iovecs_and_result_pointer() {
    let stdout = MemoryOutputPipe::new(1024);
    let mut g = Guest::new(WasiCtxBuilder::new().stdout(stdout.clone()).build());
    g.write(at::DATA, b"data");
    // The iovec array itself runs past the end.
    assert_eq!(
        g.call("fd_write", &[1, END - 4, 1, at::OUT.into()]),
        errno::FAULT
    );
    assert_eq!(
        g.call("fd_write", &[1, 0, u32::MAX.into(), at::OUT.into()]),
        errno::FAULT
    );
    // A buffer runs past the end.
    g.write_u32(at::IOVS, (END - 2) as u32);
    g.write_u32(at::IOVS + 4, 4);
    assert_eq!(
        g.call("fd_write", &[1, at::IOVS.into(), 1, at::OUT.into()]),
        errno::FAULT
    );
    // A buffer whose end wraps around.
    g.write_u32(at::IOVS, WRAPS as u32);
    g.write_u32(at::IOVS + 4, 0x20);
    assert_eq!(
        g.call("fd_write", &[1, at::IOVS.into(), 1, at::OUT.into()]),
        errno::FAULT
    );
    // A good buffer after a bad one: nothing is written.
    g.write_u32(at::IOVS + 8, at::DATA);
    g.write_u32(at::IOVS + 12, 4);
    assert_eq!(
        g.call("fd_write", &[1, at::IOVS.into(), 2, at::OUT.into()]),
        errno::FAULT
    );
    // A good buffer but a bad result pointer: nothing is written either.
    g.write_u32(at::IOVS, at::DATA);
    g.write_u32(at::IOVS + 4, 4);
    assert_eq!(
        g.call("fd_write", &[1, at::IOVS.into(), 1, END - 3]),
        errno::FAULT
    );
    assert_eq!(
        g.call("fd_write", &[1, at::IOVS.into(), 1, WRAPS + 14]),
        errno::FAULT
    );
    assert_eq!(stdout.contents(), b"");
    // The very end of memory is fine.
    g.write_u32(at::IOVS, MEMORY_SIZE);
    g.write_u32(at::IOVS + 4, 0);
    assert_eq!(g.call("fd_write", &[1, at::IOVS.into(), 1, END - 4]), 0);
    assert_eq!(g.u32(MEMORY_SIZE - 4), 0);
}

#[test]
fn fd_read_faults_without_consuming_input() {
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new("abc"))
            .build(),
    );
    g.write_u32(at::IOVS, (END - 1) as u32);
    g.write_u32(at::IOVS + 4, 2);
    assert_eq!(
        g.call("fd_read", &[0, at::IOVS.into(), 1, at::OUT.into()]),
        errno::FAULT
    );
    assert_eq!(g.fd_read(0, 10).unwrap(), b"abc");
}

#[test]
fn args_and_environ_check_both_pointers() {
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .args(&["a", "bc"])
            .env("K", "V")
            .build(),
    );
    assert_eq!(
        g.call("args_get", &[END - 4, at::DATA.into()]),
        errno::FAULT
    );
    assert_eq!(
        g.call("args_get", &[at::IOVS.into(), END - 4]),
        errno::FAULT
    );
    assert_eq!(
        g.call("args_get", &[at::IOVS.into(), WRAPS + 12]),
        errno::FAULT
    );
    assert_eq!(g.call("args_get", &[at::IOVS.into(), END - 5]), 0);
    assert_eq!(
        g.call("args_sizes_get", &[END, at::OUT.into()]),
        errno::FAULT
    );
    assert_eq!(
        g.call("args_sizes_get", &[at::OUT.into(), END - 2]),
        errno::FAULT
    );
    assert_eq!(
        g.call("environ_get", &[END - 3, at::DATA.into()]),
        errno::FAULT
    );
    assert_eq!(
        g.call("environ_get", &[at::IOVS.into(), END - 3]),
        errno::FAULT
    );
    assert_eq!(
        g.call("environ_sizes_get", &[-1, at::OUT.into()]),
        errno::FAULT
    );
}

#[test]
fn path_functions_check_paths_and_results() {
    let dir = TempDir::new();
    let mut g = guest_with_dir(&dir);
    let open = |g: &mut Guest, path: i64, len: i64, out: i64| {
        g.call(
            "path_open",
            &[
                3,
                1,
                path,
                len,
                oflags::CREAT,
                rights::FILE_RW,
                rights::FILE_RW,
                0,
                out,
            ],
        )
    };
    assert_eq!(open(&mut g, END - 2, 5, at::OUT.into()), errno::FAULT);
    assert_eq!(open(&mut g, WRAPS, 0x20, at::OUT.into()), errno::FAULT);
    // A good path with a bad result pointer creates nothing.
    let [p, len] = g.string(at::PATH, "created");
    assert_eq!(open(&mut g, p, len, END - 1), errno::FAULT);
    assert!(!dir.path().join("created").exists());
    assert_eq!(open(&mut g, p, len, at::OUT.into()), 0);
    assert!(dir.path().join("created").exists());
    // Paths must be UTF-8.
    g.write(at::PATH, &[0xff, 0xfe]);
    assert_eq!(open(&mut g, at::PATH.into(), 2, at::OUT.into()), 25);

    assert_eq!(
        g.call("path_create_directory", &[3, END - 1, 2]),
        errno::FAULT
    );
    assert_eq!(
        g.call("path_filestat_get", &[3, 1, p, len, END - 63]),
        errno::FAULT
    );
    assert_eq!(
        g.call("path_readlink", &[3, p, len, END - 1, 2, at::OUT.into()]),
        errno::FAULT
    );
    assert_eq!(g.call("fd_prestat_dir_name", &[3, END, 1]), errno::FAULT);
    assert_eq!(g.call("fd_prestat_get", &[3, END - 7]), errno::FAULT);
    assert_eq!(g.call("fd_fdstat_get", &[3, END - 23]), errno::FAULT);
    assert_eq!(g.call("fd_filestat_get", &[3, END - 63]), errno::FAULT);
}

#[test]
fn fd_readdir_checks_its_buffer() {
    let dir = TempDir::new();
    let mut g = guest_with_dir(&dir);
    assert_eq!(
        g.call("fd_readdir", &[3, END - 10, 11, 0, at::OUT.into()]),
        errno::FAULT
    );
    assert_eq!(
        g.call("fd_readdir", &[3, WRAPS, 0x20, 0, at::OUT.into()]),
        errno::FAULT
    );
    assert_eq!(
        g.call("fd_readdir", &[3, at::DATA.into(), 64, 0, END - 3]),
        errno::FAULT
    );
    assert_eq!(
        g.call("fd_readdir", &[3, END - 10, 10, 0, at::OUT.into()]),
        0
    );
}

#[test]
fn poll_oneoff_checks_its_arrays() {
    let mut g = Guest::plain();
    // One clock subscription with timeout 0.
    g.write(at::DATA, &[0; 48]);
    assert_eq!(
        g.call(
            "poll_oneoff",
            &[END - 47, at::IOVS.into(), 1, at::OUT.into()]
        ),
        errno::FAULT
    );
    assert_eq!(
        g.call(
            "poll_oneoff",
            &[at::DATA.into(), END - 31, 1, at::OUT.into()]
        ),
        errno::FAULT
    );
    assert_eq!(
        g.call(
            "poll_oneoff",
            &[at::DATA.into(), at::IOVS.into(), 1, END - 3]
        ),
        errno::FAULT
    );
    assert_eq!(
        g.call(
            "poll_oneoff",
            &[
                at::DATA.into(),
                at::IOVS.into(),
                0x1000_0000,
                at::OUT.into()
            ]
        ),
        errno::FAULT
    );
    assert_eq!(
        g.call(
            "poll_oneoff",
            &[at::DATA.into(), at::IOVS.into(), 1, at::OUT.into()]
        ),
        0
    );
    assert_eq!(g.u32(at::OUT), 1);
}

#[test]
fn random_and_clocks_check_their_buffers() {
    let mut g = Guest::plain();
    assert_eq!(g.call("random_get", &[END - 10, 11]), errno::FAULT);
    assert_eq!(g.call("random_get", &[WRAPS, 0x20]), errno::FAULT);
    assert_eq!(g.call("random_get", &[END, 0]), 0);
    assert_eq!(g.call("random_get", &[END - 10, 10]), 0);
    assert_eq!(g.call("clock_time_get", &[1, 0, END - 7]), errno::FAULT);
    assert_eq!(g.call("clock_res_get", &[1, END - 4]), errno::FAULT);
}

#[test]
fn a_module_without_memory_gets_a_host_error_not_a_panic() {
    let wat = wrapper_wat(
        &[
            ("fd_write", "i32 i32 i32 i32", "i32"),
            ("fd_close", "i32", "i32"),
        ],
        false,
    );
    let module = Module::new(engine(), wat).unwrap();
    let mut store = Store::new(engine(), WasiCtxBuilder::new().build());
    let instance = linker().instantiate(&mut store, &module).unwrap();
    let write = instance
        .get_typed_func::<(i32, i32, i32, i32), i32>(&mut store, "fd_write")
        .unwrap();
    let err = write.call(&mut store, (1, 0, 0, 0)).unwrap_err();
    assert!(err.to_string().contains("memory"), "{err}");
    assert_eq!(err.i32_exit_status(), None);
    // Functions without pointers work without memory.
    let close = instance
        .get_typed_func::<i32, i32>(&mut store, "fd_close")
        .unwrap();
    assert_eq!(close.call(&mut store, 2).unwrap(), 0);
    assert_eq!(close.call(&mut store, 2).unwrap(), errno::BADF);
}
