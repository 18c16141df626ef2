//! The streams behind fds 0, 1 and 2: nothing, an in-memory pipe, or the host process's
//! own stdin, stdout and stderr.
//!
//! Inherited stdin is read straight from the host's fd 0 (no buffer in between, so
//! `poll_oneoff` sees what `fd_read` would get). Inherited stdout goes through the
//! process's `std::io::stdout()` and is flushed on every call, so guest and host output
//! interleave in the order they were written.

use crate::errno::Errno;
use crate::pipe::{MemoryInputPipe, MemoryOutputPipe};
use std::io::{IsTerminal, Write};

/// Where a guest's stdin comes from.
#[derive(Debug)]
pub(crate) enum Input {
    /// End of file at once.
    Empty,
    /// Bytes given by the embedder.
    Pipe(MemoryInputPipe),
    /// The host process's stdin.
    Inherit,
}

/// Where a guest's stdout or stderr goes.
#[derive(Debug)]
pub(crate) enum Output {
    /// Thrown away.
    Discard,
    /// Captured for the embedder.
    Pipe(MemoryOutputPipe),
    /// The host process's stdout.
    Stdout,
    /// The host process's stderr.
    Stderr,
}

impl Input {
    /// Whether reads may block, so that a read fills only one buffer.
    pub(crate) fn may_block(&self) -> bool {
        matches!(self, Input::Inherit)
    }

    /// Reads into `buf`; 0 means end of file.
    pub(crate) fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        match self {
            Input::Empty => Ok(0),
            Input::Pipe(pipe) => Ok(pipe.read(buf)),
            Input::Inherit => loop {
                match rustix::io::read(std::io::stdin(), &mut *buf) {
                    Err(rustix::io::Errno::INTR) => continue,
                    other => return other.map_err(Errno::from),
                }
            },
        }
    }

    /// Whether the guest sees a terminal.
    pub(crate) fn is_terminal(&self) -> bool {
        matches!(self, Input::Inherit) && std::io::stdin().is_terminal()
    }
}

impl Output {
    /// Writes all of `bufs`; returns how many bytes that was.
    pub(crate) fn write_all<'b>(
        &self,
        bufs: impl Iterator<Item = &'b [u8]> + Clone,
    ) -> Result<usize, Errno> {
        fn through<'c>(
            mut out: impl Write,
            bufs: impl Iterator<Item = &'c [u8]>,
        ) -> Result<usize, Errno> {
            let mut n = 0;
            for buf in bufs {
                out.write_all(buf)?;
                n += buf.len();
            }
            out.flush()?;
            Ok(n)
        }
        match self {
            Output::Discard => Ok(bufs.map(<[u8]>::len).sum()),
            Output::Pipe(pipe) => pipe.write_all(bufs),
            Output::Stdout => through(std::io::stdout().lock(), bufs),
            Output::Stderr => through(std::io::stderr().lock(), bufs),
        }
    }

    /// Pushes buffered output to the host (`fd_sync`).
    pub(crate) fn flush(&self) -> Result<(), Errno> {
        match self {
            Output::Discard | Output::Pipe(_) => Ok(()),
            Output::Stdout => Ok(std::io::stdout().flush()?),
            Output::Stderr => Ok(std::io::stderr().flush()?),
        }
    }

    /// Whether the guest sees a terminal.
    pub(crate) fn is_terminal(&self) -> bool {
        match self {
            Output::Discard | Output::Pipe(_) => false,
            Output::Stdout => std::io::stdout().is_terminal(),
            Output::Stderr => std::io::stderr().is_terminal(),
        }
    }
}
