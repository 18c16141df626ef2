//! In-memory stdio for embedders: [`MemoryInputPipe`] feeds a guest's stdin and
//! [`MemoryOutputPipe`] captures its stdout or stderr.

use crate::errno::Errno;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Bytes a guest reads as its stdin. Clones share the read position.
#[derive(Clone, Debug)]
pub struct MemoryInputPipe {
    inner: Arc<Mutex<InputState>>,
}

#[derive(Debug)]
struct InputState {
    bytes: Vec<u8>,
    pos: usize,
}

impl MemoryInputPipe {
    /// A pipe that yields `bytes`, then end of file.
    pub fn new(bytes: impl Into<Vec<u8>>) -> MemoryInputPipe {
        MemoryInputPipe {
            inner: Arc::new(Mutex::new(InputState {
                bytes: bytes.into(),
                pos: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, InputState> {
        // The state is a plain buffer and position; a panic elsewhere cannot break it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Copies unread bytes into `buf`; returns how many (0 at end of file).
    pub(crate) fn read(&self, buf: &mut [u8]) -> usize {
        let mut state = self.lock();
        let pos = state.pos;
        let rest = &state.bytes[pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        state.pos += n;
        n
    }

    /// How many bytes are left to read.
    pub(crate) fn remaining(&self) -> usize {
        let state = self.lock();
        state.bytes.len() - state.pos
    }
}

/// A bounded buffer that captures what a guest writes to stdout or stderr. Clones share
/// the buffer, so the embedder keeps one clone and reads it with
/// [`MemoryOutputPipe::contents`] after the run.
///
/// A write that would take the contents past the capacity writes nothing and fails with
/// the `ENOSPC` errno (51); it never panics.
#[derive(Clone, Debug)]
pub struct MemoryOutputPipe {
    capacity: usize,
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl MemoryOutputPipe {
    /// An empty pipe that holds at most `capacity` bytes.
    pub fn new(capacity: usize) -> MemoryOutputPipe {
        MemoryOutputPipe {
            capacity,
            buffer: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // Appends either happen whole or not at all; a poisoned lock holds valid bytes.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.lock().clone()
    }

    /// Appends all of `bufs` at once, or nothing if they do not fit.
    pub(crate) fn write_all<'b>(
        &self,
        bufs: impl Iterator<Item = &'b [u8]> + Clone,
    ) -> Result<usize, Errno> {
        let mut buffer = self.lock();
        let total = bufs
            .clone()
            .try_fold(0usize, |n, b| n.checked_add(b.len()))
            .ok_or(Errno::Nospc)?;
        if total > self.capacity - buffer.len() {
            return Err(Errno::Nospc);
        }
        buffer.reserve(total);
        for b in bufs {
            buffer.extend_from_slice(b);
        }
        Ok(total)
    }

    /// How many more bytes fit.
    pub(crate) fn room(&self) -> usize {
        self.capacity - self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_read_once_across_clones() {
        let pipe = MemoryInputPipe::new("hello");
        let other = pipe.clone();
        let mut buf = [0u8; 3];
        assert_eq!(pipe.read(&mut buf), 3);
        assert_eq!(&buf, b"hel");
        assert_eq!(other.remaining(), 2);
        assert_eq!(other.read(&mut buf), 2);
        assert_eq!(&buf[..2], b"lo");
        assert_eq!(pipe.read(&mut buf), 0);
    }

    #[test]
    fn output_refuses_writes_past_capacity() {
        let pipe = MemoryOutputPipe::new(8);
        let reader = pipe.clone();
        let parts: [&[u8]; 2] = [b"abc", b"de"];
        assert_eq!(pipe.write_all(parts.iter().copied()), Ok(5));
        assert_eq!(pipe.room(), 3);
        assert_eq!(
            pipe.write_all([&b"wxyz"[..]].into_iter()),
            Err(Errno::Nospc)
        );
        assert_eq!(pipe.write_all([&b"xyz"[..]].into_iter()), Ok(3));
        assert_eq!(pipe.write_all([&b"!"[..]].into_iter()), Err(Errno::Nospc));
        assert_eq!(reader.contents(), b"abcdexyz");
    }
}
