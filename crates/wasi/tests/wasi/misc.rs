//! Process, clocks, randomness, `poll_oneoff`, rights and renumbering.

use crate::{Guest, TempDir, at, errno, guest_with_dir, oflags, rights};
use std::time::{Duration, Instant, SystemTime};
use strata_wasi::{MemoryInputPipe, MemoryOutputPipe, WasiCtx, WasiCtxBuilder};

#[test]
fn proc_exit_ends_the_run_with_its_status() {
    for status in [0, 3, 125] {
        let mut g = Guest::plain();
        let err = g.try_call("proc_exit", &[status]).unwrap_err();
        assert_eq!(err.i32_exit_status(), Some(status as i32));
        assert!(err.trap().is_none());
    }
}

#[test]
fn proc_exit_rejects_statuses_from_126_on() {
    // A host keeps only the low 8 bits of a status, so 256 would look like success.
    for (status, shown) in [(126, "126"), (256, "256"), (-1, "4294967295")] {
        let mut g = Guest::plain();
        let err = g.try_call("proc_exit", &[status]).unwrap_err();
        assert_eq!(err.i32_exit_status(), None, "{err}");
        assert!(err.trap().is_none());
        let message = err.to_string();
        assert!(message.contains(shown), "{message}");
        assert!(message.contains("0..126"), "{message}");
    }
}

#[test]
fn proc_raise_is_not_supported_and_sched_yield_is() {
    let mut g = Guest::plain();
    assert_eq!(g.call("proc_raise", &[6]), errno::NOSYS);
    assert_eq!(g.call("sched_yield", &[]), 0);
}

fn clock(g: &mut Guest, id: i64) -> Result<u64, i32> {
    match g.call("clock_time_get", &[id, 1, at::OUT.into()]) {
        0 => Ok(g.u64(at::OUT)),
        errno => Err(errno),
    }
}

#[test]
fn clocks_tell_the_time() {
    let mut g = Guest::plain();
    let host = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let realtime = clock(&mut g, 0).unwrap();
    assert!(
        realtime.abs_diff(host) < 5_000_000_000,
        "{realtime} vs {host}"
    );

    let first = clock(&mut g, 1).unwrap();
    std::thread::sleep(Duration::from_millis(2));
    let second = clock(&mut g, 1).unwrap();
    assert!(second >= first + 2_000_000, "{first} then {second}");

    // Burn a little CPU so the CPU-time clocks move.
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < Duration::from_millis(5) {
        x = std::hint::black_box(x.wrapping_add(1));
    }
    assert!(clock(&mut g, 2).unwrap() > 0);
    assert!(clock(&mut g, 3).unwrap() > 0);
    assert_eq!(clock(&mut g, 4), Err(errno::INVAL));

    for id in 0..4 {
        assert_eq!(g.call("clock_res_get", &[id, at::OUT.into()]), 0);
        let res = g.u64(at::OUT);
        assert!(res > 0 && res <= 1_000_000_000, "clock {id}: {res}");
    }
    assert_eq!(g.call("clock_res_get", &[7, at::OUT.into()]), errno::INVAL);
}

#[test]
fn random_get_fills_the_buffer() {
    let mut g = Guest::plain();
    assert_eq!(g.call("random_get", &[at::DATA.into(), 64]), 0);
    let first = g.read(at::DATA, 64);
    assert!(first.iter().any(|&b| b != 0));
    assert_eq!(g.call("random_get", &[at::DATA.into(), 64]), 0);
    assert_ne!(g.read(at::DATA, 64), first);
}

/// Writes a clock subscription.
fn clock_sub(g: &mut Guest, at: u32, userdata: u64, id: u32, timeout: u64, abstime: bool) {
    g.write(at, &[0; 48]);
    g.write_u64(at, userdata);
    g.write(at + 8, &[0]);
    g.write_u32(at + 16, id);
    g.write_u64(at + 24, timeout);
    g.write(at + 40, &[u8::from(abstime), 0]);
}

/// Writes an fd subscription (`ty` 1 = read, 2 = write).
fn fd_sub(g: &mut Guest, at: u32, userdata: u64, ty: u8, fd: u32) {
    g.write(at, &[0; 48]);
    g.write_u64(at, userdata);
    g.write(at + 8, &[ty]);
    g.write_u32(at + 16, fd);
}

/// An event as (userdata, error, type, nbytes, flags).
type Event = (u64, u16, u8, u64, u16);

/// Polls `n` subscriptions at `DATA`.
fn poll(g: &mut Guest, n: u32) -> Result<Vec<Event>, i32> {
    let events = at::DATA + 1024;
    match g.call(
        "poll_oneoff",
        &[at::DATA.into(), events.into(), n.into(), at::OUT.into()],
    ) {
        0 => {
            let count = g.u32(at::OUT);
            assert!(count >= 1 && count <= n);
            Ok((0..count)
                .map(|i| {
                    let e = events + 32 * i;
                    (
                        g.u64(e),
                        g.u16(e + 8),
                        g.read(e + 10, 1)[0],
                        g.u64(e + 16),
                        g.u16(e + 24),
                    )
                })
                .collect())
        }
        errno => Err(errno),
    }
}

#[test]
fn poll_oneoff_sleeps_for_a_relative_clock() {
    let mut g = Guest::plain();
    clock_sub(&mut g, at::DATA, 42, 1, 10_000_000, false);
    let start = Instant::now();
    let events = poll(&mut g, 1).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(events, [(42, 0, 0, 0, 0)]);
}

#[test]
fn poll_oneoff_wakes_for_the_earliest_clock() {
    let mut g = Guest::plain();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    clock_sub(&mut g, at::DATA, 1, 0, now + 30_000_000, true);
    clock_sub(&mut g, at::DATA + 48, 2, 1, 10_000_000_000, false);
    let start = Instant::now();
    let events = poll(&mut g, 2).unwrap();
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(20), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(events, [(1, 0, 0, 0, 0)]);
    // An absolute time in the past is due at once.
    clock_sub(&mut g, at::DATA, 3, 1, 1, true);
    assert_eq!(poll(&mut g, 1).unwrap(), [(3, 0, 0, 0, 0)]);
}

#[test]
fn poll_oneoff_reports_ready_fds_at_once() {
    let stdout = MemoryOutputPipe::new(100);
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new("12345"))
            .stdout(stdout)
            .build(),
    );
    fd_sub(&mut g, at::DATA, 7, 1, 0);
    fd_sub(&mut g, at::DATA + 48, 8, 2, 1);
    clock_sub(&mut g, at::DATA + 96, 9, 1, 10_000_000_000, false);
    let start = Instant::now();
    let events = poll(&mut g, 3).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(events, [(7, 0, 1, 5, 0), (8, 0, 2, 100, 0)]);

    // Drained stdin reports end of file; a bad fd or a missing right is an event error.
    assert_eq!(g.fd_read(0, 10).unwrap(), b"12345");
    fd_sub(&mut g, at::DATA, 7, 1, 0);
    fd_sub(&mut g, at::DATA + 48, 10, 1, 99);
    fd_sub(&mut g, at::DATA + 96, 11, 2, 0);
    let events = poll(&mut g, 3).unwrap();
    assert_eq!(
        events,
        [
            (7, 0, 1, 0, 1),
            (10, errno::BADF as u16, 1, 0, 0),
            (11, errno::BADF as u16, 2, 0, 0)
        ]
    );
}

#[test]
fn poll_oneoff_reports_expired_clocks_with_ready_fds() {
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new("12345"))
            .build(),
    );
    // A clock already due, an fd that is ready, a clock due much later and an absolute
    // time in the past: both due clocks come with the fd, in subscription order.
    clock_sub(&mut g, at::DATA, 1, 1, 0, false);
    fd_sub(&mut g, at::DATA + 48, 2, 1, 0);
    clock_sub(&mut g, at::DATA + 96, 3, 1, 10_000_000_000, false);
    clock_sub(&mut g, at::DATA + 144, 4, 1, 1, true);
    let start = Instant::now();
    let events = poll(&mut g, 4).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(events, [(1, 0, 0, 0, 0), (2, 0, 1, 5, 0), (4, 0, 0, 0, 0)]);
}

#[test]
fn poll_oneoff_on_files() {
    let dir = TempDir::new();
    std::fs::write(dir.path().join("f"), b"0123456789").unwrap();
    let mut g = guest_with_dir(&dir);
    let fd = g.open(3, "f", 0, rights::FILE_RO | 1 << 27, 0).unwrap();
    assert_eq!(g.fd_read(fd, 4).unwrap(), b"0123");
    fd_sub(&mut g, at::DATA, 1, 1, fd);
    assert_eq!(poll(&mut g, 1).unwrap(), [(1, 0, 1, 6, 0)]);
    // Without POLL_FD_READWRITE the subscription fails.
    let fd = g.open(3, "f", 0, rights::FILE_RO, 0).unwrap();
    fd_sub(&mut g, at::DATA, 1, 1, fd);
    assert_eq!(
        poll(&mut g, 1).unwrap(),
        [(1, errno::NOTCAPABLE as u16, 1, 0, 0)]
    );
}

#[test]
fn poll_oneoff_rejects_bad_subscriptions() {
    let mut g = Guest::plain();
    assert_eq!(poll(&mut g, 0), Err(errno::INVAL));
    fd_sub(&mut g, at::DATA, 1, 3, 0);
    assert_eq!(poll(&mut g, 1), Err(errno::INVAL));
    clock_sub(&mut g, at::DATA, 5, 9, 0, false);
    assert_eq!(
        poll(&mut g, 1).unwrap(),
        [(5, errno::INVAL as u16, 0, 0, 0)]
    );
}

#[test]
fn rights_can_be_dropped_but_not_regained() {
    let dir = TempDir::new();
    let mut g = guest_with_dir(&dir);
    let fd = g.open(3, "f", oflags::CREAT, rights::FILE_RW, 0).unwrap();
    let (_, _, base, inheriting) = g.fdstat(fd).unwrap();
    assert_eq!(base as i64, rights::FILE_RW);
    assert_eq!(g.fd_write(fd, b"ok"), Ok(2));

    let reduced = base & !(rights::FD_WRITE as u64);
    assert_eq!(
        g.call(
            "fd_fdstat_set_rights",
            &[fd.into(), reduced as i64, inheriting as i64]
        ),
        0
    );
    assert_eq!(g.fdstat(fd).unwrap().2, reduced);
    assert_eq!(g.fd_write(fd, b"no"), Err(errno::NOTCAPABLE));
    assert_eq!(
        g.call(
            "fd_fdstat_set_rights",
            &[fd.into(), base as i64, inheriting as i64]
        ),
        errno::NOTCAPABLE
    );
    assert_eq!(g.fdstat(fd).unwrap().2, reduced);
    assert_eq!(
        g.call("fd_fdstat_set_rights", &[fd.into(), reduced as i64, -1]),
        errno::NOTCAPABLE
    );

    // Dropping PATH_OPEN from a preopen stops opening under it.
    let (_, _, base, inheriting) = g.fdstat(3).unwrap();
    let no_open = base & !(1 << 13);
    assert_eq!(
        g.call(
            "fd_fdstat_set_rights",
            &[3, no_open as i64, inheriting as i64]
        ),
        0
    );
    assert_eq!(
        g.open(3, "f", 0, rights::FILE_RO, 0),
        Err(errno::NOTCAPABLE)
    );
    // And stdout can give up writing.
    assert_eq!(g.call("fd_fdstat_set_rights", &[1, 0, 0]), 0);
    assert_eq!(g.fd_write(1, b"x"), Err(errno::NOTCAPABLE));
    assert_eq!(g.call("fd_fdstat_set_rights", &[77, 0, 0]), errno::BADF);
}

#[test]
fn fd_renumber_moves_a_descriptor() {
    let dir = TempDir::new();
    let stdout = MemoryOutputPipe::new(100);
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .preopened_dir(
                dir.path(),
                ".",
                strata_wasi::DirPerms::all(),
                strata_wasi::FilePerms::all(),
            )
            .unwrap()
            .build(),
    );
    let fd = g.open(3, "log", oflags::CREAT, rights::FILE_RW, 0).unwrap();
    assert_eq!(fd, 4);
    assert_eq!(g.call("fd_renumber", &[4, 1]), 0);
    assert_eq!(g.fd_write(1, b"to the file"), Ok(11));
    assert_eq!(g.fd_write(4, b"x"), Err(errno::BADF));
    assert_eq!(stdout.contents(), b"");
    assert_eq!(
        std::fs::read(dir.path().join("log")).unwrap(),
        b"to the file"
    );
    assert_eq!(g.call("fd_renumber", &[1, 1]), 0);
    assert_eq!(g.call("fd_renumber", &[1, 9]), errno::BADF);
    assert_eq!(g.call("fd_renumber", &[9, 1]), errno::BADF);
    // The freed number is reused.
    assert_eq!(g.open(3, "log", 0, rights::FILE_RO, 0), Ok(4));
    // A preopen can be renumbered too, and keeps its name.
    assert_eq!(g.call("fd_renumber", &[3, 0]), 0);
    assert_eq!(g.call("fd_prestat_get", &[0, at::OUT.into()]), 0);
    assert_eq!(g.call("fd_prestat_get", &[3, at::OUT.into()]), errno::BADF);
}

#[test]
fn builders_are_reusable_and_contexts_are_send() {
    fn send<T: Send>(_: &T) {}
    let mut builder = WasiCtxBuilder::default();
    builder.arg("first");
    let cx: WasiCtx = builder.build();
    send(&cx);
    let mut g = Guest::new(builder.build());
    g.call("args_sizes_get", &[at::OUT.into(), at::OUT2.into()]);
    assert_eq!(g.u32(at::OUT), 0, "build leaves the builder empty");
}
