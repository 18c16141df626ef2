//! `sock_*` without sockets, and on a pre-opened TCP listener.

use crate::{Guest, TempDir, at, errno};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;
use strata_wasi::{DirPerms, FilePerms, WasiCtxBuilder};

fn recv(g: &mut Guest, fd: u32, len: u32, flags: i64) -> Result<Vec<u8>, i32> {
    g.write_u32(at::IOVS, at::DATA);
    g.write_u32(at::IOVS + 4, len);
    match g.call(
        "sock_recv",
        &[
            fd.into(),
            at::IOVS.into(),
            1,
            flags,
            at::OUT.into(),
            at::OUT2.into(),
        ],
    ) {
        0 => {
            assert_eq!(g.u16(at::OUT2), 0);
            let n = g.u32(at::OUT);
            Ok(g.read(at::DATA, n as usize))
        }
        errno => Err(errno),
    }
}

fn send(g: &mut Guest, fd: u32, bytes: &[u8]) -> Result<u32, i32> {
    g.write(at::DATA, bytes);
    g.write_u32(at::IOVS, at::DATA);
    g.write_u32(at::IOVS + 4, bytes.len() as u32);
    match g.call(
        "sock_send",
        &[fd.into(), at::IOVS.into(), 1, 0, at::OUT.into()],
    ) {
        0 => Ok(g.u32(at::OUT)),
        errno => Err(errno),
    }
}

#[test]
fn without_sockets_sock_calls_fail() {
    let dir = TempDir::new();
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .preopened_dir(dir.path(), ".", DirPerms::all(), FilePerms::all())
            .unwrap()
            .build(),
    );
    assert_eq!(
        g.call("sock_accept", &[0, 0, at::OUT.into()]),
        errno::NOTSUP
    );
    assert_eq!(
        g.call("sock_accept", &[3, 0, at::OUT.into()]),
        errno::NOTSUP
    );
    assert_eq!(g.call("sock_accept", &[99, 0, at::OUT.into()]), errno::BADF);
    assert_eq!(recv(&mut g, 0, 4, 0), Err(errno::NOTSUP));
    assert_eq!(recv(&mut g, 99, 4, 0), Err(errno::BADF));
    assert_eq!(send(&mut g, 1, b"x"), Err(errno::NOTSUP));
    assert_eq!(send(&mut g, 42, b"x"), Err(errno::BADF));
    assert_eq!(g.call("sock_shutdown", &[3, 3]), errno::NOTSUP);
    assert_eq!(g.call("sock_shutdown", &[99, 3]), errno::BADF);
}

#[test]
fn a_preopened_listener_accepts_and_talks() {
    let dir = TempDir::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .preopened_dir(dir.path(), ".", DirPerms::all(), FilePerms::all())
            .unwrap()
            .preopened_socket(listener)
            .build(),
    );
    // The socket comes after the preopen, and is no preopen itself.
    assert_eq!(g.fdstat(4).unwrap().0, 6);
    assert_eq!(g.call("fd_prestat_get", &[4, at::OUT.into()]), errno::BADF);
    assert_eq!(recv(&mut g, 4, 4, 0), Err(errno::NOTCONN));

    // Nothing is pending: a non-blocking listener says so.
    const NONBLOCK: i64 = 4;
    assert_eq!(g.call("fd_fdstat_set_flags", &[4, NONBLOCK]), 0);
    assert_eq!(g.fdstat(4).unwrap().1, 4);
    assert_eq!(g.call("sock_accept", &[4, 0, at::OUT.into()]), 6);
    assert_eq!(g.call("fd_fdstat_set_flags", &[4, 0]), 0);
    assert_eq!(g.call("sock_accept", &[4, 1, at::OUT.into()]), errno::INVAL);

    let mut host = TcpStream::connect(addr).unwrap();
    host.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(g.call("sock_accept", &[4, 0, at::OUT.into()]), 0);
    let conn = g.u32(at::OUT);
    assert_eq!(conn, 5);
    assert_eq!(g.fdstat(conn).unwrap().0, 6);
    assert_eq!(
        g.call("sock_accept", &[conn.into(), 0, at::OUT.into()]),
        errno::INVAL
    );

    host.write_all(b"ping").unwrap();
    // poll_oneoff sees the data arrive.
    g.write(at::DATA + 512, &[0; 48]);
    g.write_u64(at::DATA + 512, 77);
    g.write(at::DATA + 520, &[1]);
    g.write_u32(at::DATA + 528, conn);
    assert_eq!(
        g.call(
            "poll_oneoff",
            &[
                (at::DATA + 512).into(),
                (at::DATA + 1024).into(),
                1,
                at::OUT.into()
            ]
        ),
        0
    );
    assert_eq!(g.u32(at::OUT), 1);
    assert_eq!(g.u64(at::DATA + 1024), 77);
    assert_eq!(g.u16(at::DATA + 1032), 0);
    assert_eq!(g.u64(at::DATA + 1040), 4, "nbytes");

    const PEEK: i64 = 1;
    const WAITALL: i64 = 2;
    assert_eq!(recv(&mut g, conn, 16, PEEK).unwrap(), b"ping");
    assert_eq!(recv(&mut g, conn, 16, 0).unwrap(), b"ping");
    assert_eq!(send(&mut g, conn, b"pong"), Ok(4));
    let mut buf = [0; 4];
    host.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");

    // fd_read and fd_write work on the connection too.
    host.write_all(b"abc").unwrap();
    host.write_all(b"def").unwrap();
    assert_eq!(recv(&mut g, conn, 6, WAITALL).unwrap(), b"abcdef");
    assert_eq!(g.fd_write(conn, b"via fd_write"), Ok(12));
    let mut buf = [0; 12];
    host.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"via fd_write");
    host.write_all(b"xyz").unwrap();
    assert_eq!(g.fd_read(conn, 3).unwrap(), b"xyz");

    assert_eq!(g.call("sock_shutdown", &[conn.into(), 0]), errno::INVAL);
    assert_eq!(g.call("sock_shutdown", &[conn.into(), 2]), 0);
    assert_eq!(host.read(&mut buf).unwrap(), 0, "the guest closed its side");
    assert_eq!(g.call("sock_shutdown", &[4, 3]), errno::NOTCONN);
    assert_eq!(g.call("fd_close", &[conn.into()]), 0);
}

#[test]
fn recv_waitall_keeps_what_it_read_before_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut g = Guest::new(WasiCtxBuilder::new().preopened_socket(listener).build());
    let mut host = TcpStream::connect(addr).unwrap();
    // fd 3 is the listener; the connection is accepted non-blocking.
    const NONBLOCK: i64 = 4;
    const PEEK: i64 = 1;
    const WAITALL: i64 = 2;
    const AGAIN: i32 = 6;
    assert_eq!(g.call("sock_accept", &[3, NONBLOCK, at::OUT.into()]), 0);
    let conn = g.u32(at::OUT);
    assert_eq!(g.fdstat(conn).unwrap().1, NONBLOCK as u16);
    assert_eq!(recv(&mut g, conn, 100, 0), Err(AGAIN));

    host.write_all(b"0123456789").unwrap();
    let start = std::time::Instant::now();
    while recv(&mut g, conn, 100, PEEK).map_or(0, |b| b.len()) < 10 {
        assert!(start.elapsed() < Duration::from_secs(10), "no data arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    // The socket runs dry before the buffer is full: the bytes read so far come back
    // instead of `EAGAIN`.
    assert_eq!(recv(&mut g, conn, 100, WAITALL).unwrap(), b"0123456789");
    assert_eq!(recv(&mut g, conn, 100, WAITALL), Err(AGAIN));
}
