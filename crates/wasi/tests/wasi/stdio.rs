//! fds 0, 1 and 2: in-memory pipes and the defaults.

use crate::{Guest, at, errno, rights};
use strata_wasi::{MemoryInputPipe, MemoryOutputPipe, WasiCtxBuilder};

#[test]
fn fd_write_goes_to_captured_stdout_and_stderr() {
    let stdout = MemoryOutputPipe::new(1024);
    let stderr = MemoryOutputPipe::new(1024);
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build(),
    );
    // Two iovecs, the second one empty, the third one more text.
    g.write(at::DATA, b"hello, world\n");
    g.write_u32(at::IOVS, at::DATA);
    g.write_u32(at::IOVS + 4, 7);
    g.write_u32(at::IOVS + 8, at::DATA);
    g.write_u32(at::IOVS + 12, 0);
    g.write_u32(at::IOVS + 16, at::DATA + 7);
    g.write_u32(at::IOVS + 20, 6);
    assert_eq!(
        g.call("fd_write", &[1, at::IOVS.into(), 3, at::OUT.into()]),
        errno::SUCCESS
    );
    assert_eq!(g.u32(at::OUT), 13);
    assert_eq!(g.fd_write(2, b"oops"), Ok(4));
    assert_eq!(stdout.contents(), b"hello, world\n");
    assert_eq!(stderr.contents(), b"oops");
}

#[test]
fn default_stdio_is_empty_and_discarding() {
    let mut g = Guest::plain();
    assert_eq!(g.fd_write(1, b"thrown away"), Ok(11));
    assert_eq!(g.fd_write(2, b"also"), Ok(4));
    assert_eq!(g.fd_read(0, 16), Ok(Vec::new()));
}

#[test]
fn fd_read_drains_a_memory_input_pipe() {
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new("line one\nline two\n"))
            .build(),
    );
    assert_eq!(g.fd_read(0, 5).unwrap(), b"line ");
    // Two iovecs are filled in order.
    g.write_u32(at::IOVS, at::DATA);
    g.write_u32(at::IOVS + 4, 4);
    g.write_u32(at::IOVS + 8, at::DATA + 100);
    g.write_u32(at::IOVS + 12, 3);
    assert_eq!(
        g.call("fd_read", &[0, at::IOVS.into(), 2, at::OUT.into()]),
        errno::SUCCESS
    );
    assert_eq!(g.u32(at::OUT), 7);
    assert_eq!(g.read(at::DATA, 4), b"one\n");
    assert_eq!(g.read(at::DATA + 100, 3), b"lin");
    assert_eq!(g.fd_read(0, 100).unwrap(), b"e two\n");
    assert_eq!(g.fd_read(0, 100).unwrap(), b"");
}

#[test]
fn a_full_output_pipe_gives_enospc() {
    let stdout = MemoryOutputPipe::new(8);
    let mut g = Guest::new(WasiCtxBuilder::new().stdout(stdout.clone()).build());
    assert_eq!(g.fd_write(1, b"12345"), Ok(5));
    assert_eq!(g.fd_write(1, b"6789"), Err(errno::NOSPC));
    assert_eq!(g.fd_write(1, b"678"), Ok(3));
    assert_eq!(g.fd_write(1, b"9"), Err(errno::NOSPC));
    assert_eq!(stdout.contents(), b"12345678");
}

#[test]
fn stdio_has_stream_rights_only() {
    let mut g = Guest::plain();
    let (filetype, flags, base, inheriting) = g.fdstat(1).unwrap();
    // A pipe is no terminal: filetype unknown.
    assert_eq!((filetype, flags, inheriting), (0, 0, 0));
    assert_ne!(base as i64 & rights::FD_WRITE, 0);
    assert_eq!(
        base as i64 & (rights::FD_READ | rights::FD_SEEK | rights::FD_TELL),
        0
    );
    let (_, _, base, _) = g.fdstat(0).unwrap();
    assert_ne!(base as i64 & rights::FD_READ, 0);
    assert_eq!(base as i64 & rights::FD_WRITE, 0);
    // Stdin cannot be written, stdout cannot be read, neither can seek.
    assert_eq!(g.fd_write(0, b"x"), Err(errno::NOTCAPABLE));
    assert_eq!(g.fd_read(1, 1), Err(errno::NOTCAPABLE));
    assert_eq!(
        g.call("fd_seek", &[1, 0, 0, at::OUT.into()]),
        errno::NOTCAPABLE
    );
    assert_eq!(g.call("fd_tell", &[0, at::OUT.into()]), errno::NOTCAPABLE);
    assert_eq!(g.fdstat(7), Err(errno::BADF));
}

#[test]
fn stdio_can_be_closed_and_then_is_gone() {
    let mut g = Guest::plain();
    assert_eq!(g.call("fd_close", &[1]), errno::SUCCESS);
    assert_eq!(g.fd_write(1, b"x"), Err(errno::BADF));
    assert_eq!(g.call("fd_close", &[1]), errno::BADF);
}

#[test]
fn inherited_stdio_reaches_the_process() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    // The guest runs in a child process whose stdio this test owns.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "stdio::inherited_stdio_child",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"input data").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("host1 guest host2\n"), "{stdout}");
    assert!(stderr.contains("guest stderr"), "{stderr}");
}

/// Run by `inherited_stdio_reaches_the_process` with stdin holding "input data".
#[test]
#[ignore = "runs in a child process of inherited_stdio_reaches_the_process"]
fn inherited_stdio_child() {
    use std::io::Write;
    let mut g = Guest::new(WasiCtxBuilder::new().inherit_stdio().build());
    // Wait for stdin with poll_oneoff: fd 0 readable, or a 10 s clock.
    g.write(at::DATA, &[0; 96]);
    g.write_u64(at::DATA, 1);
    g.write(at::DATA + 8, &[1]);
    g.write_u32(at::DATA + 16, 0);
    g.write_u64(at::DATA + 48, 2);
    g.write_u32(at::DATA + 64, 1);
    g.write_u64(at::DATA + 72, 10_000_000_000);
    let events = at::DATA + 512;
    assert_eq!(
        g.call(
            "poll_oneoff",
            &[at::DATA.into(), events.into(), 2, at::OUT.into()]
        ),
        0
    );
    assert_eq!(g.u32(at::OUT), 1);
    assert_eq!(g.u64(events), 1, "stdin is ready before the clock");
    let mut input = Vec::new();
    loop {
        let chunk = g.fd_read(0, 4).unwrap();
        if chunk.is_empty() {
            break;
        }
        input.extend(chunk);
    }
    assert_eq!(input, b"input data");

    print!("host1 ");
    assert_eq!(g.fd_write(1, b"guest "), Ok(6));
    println!("host2");
    std::io::stdout().flush().unwrap();
    assert_eq!(g.fd_write(2, b"guest stderr\n"), Ok(13));
    assert_eq!(g.call("fd_sync", &[1]), errno::SUCCESS);
}
