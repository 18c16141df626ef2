//! [`GuestMemory`]: bounds-checked access to a guest's linear memory.
//!
//! Every pointer and length comes from the guest and is checked here: a range that ends
//! past the memory (sums are done in `u64`, so `ptr + len` cannot wrap) gives
//! [`Errno::Fault`] and never a panic.

use crate::abi::IOVEC_SIZE;
use crate::errno::Errno;

/// A guest's linear memory, borrowed for one host call.
pub(crate) struct GuestMemory<'a> {
    bytes: &'a mut [u8],
}

/// An array of iovecs whose every buffer was checked to lie in memory.
#[derive(Copy, Clone)]
pub(crate) struct Iovecs {
    ptr: u32,
    count: u32,
}

impl Iovecs {
    /// How many buffers.
    pub(crate) fn count(self) -> u32 {
        self.count
    }
}

impl<'a> GuestMemory<'a> {
    /// Wraps the bytes of a memory.
    pub(crate) fn new(bytes: &'a mut [u8]) -> GuestMemory<'a> {
        GuestMemory { bytes }
    }

    /// The byte range `ptr..ptr + len` as `usize`s, if it lies in memory.
    fn range(&self, ptr: u32, len: u64) -> Result<std::ops::Range<usize>, Errno> {
        let end = u64::from(ptr) + len;
        if end > self.bytes.len() as u64 {
            return Err(Errno::Fault);
        }
        // Both fit: `end` is at most the length of a slice.
        let start = usize::try_from(ptr).map_err(|_| Errno::Fault)?;
        let end = usize::try_from(end).map_err(|_| Errno::Fault)?;
        Ok(start..end)
    }

    /// Fails unless `len` bytes at `ptr` lie in memory; for output pointers that must be
    /// checked before an operation has side effects.
    pub(crate) fn check(&self, ptr: u32, len: u64) -> Result<(), Errno> {
        self.range(ptr, len).map(drop)
    }

    /// The `len` bytes at `ptr`.
    pub(crate) fn slice(&self, ptr: u32, len: u32) -> Result<&[u8], Errno> {
        let range = self.range(ptr, u64::from(len))?;
        Ok(&self.bytes[range])
    }

    /// The `len` bytes at `ptr`, mutably.
    pub(crate) fn slice_mut(&mut self, ptr: u32, len: u32) -> Result<&mut [u8], Errno> {
        let range = self.range(ptr, u64::from(len))?;
        Ok(&mut self.bytes[range])
    }

    /// The UTF-8 string of `len` bytes at `ptr`.
    ///
    /// Fails with [`Errno::Ilseq`] if it is not UTF-8.
    pub(crate) fn str(&self, ptr: u32, len: u32) -> Result<&str, Errno> {
        std::str::from_utf8(self.slice(ptr, len)?).map_err(|_| Errno::Ilseq)
    }

    fn array<const N: usize>(&self, ptr: u32) -> Result<[u8; N], Errno> {
        let range = self.range(ptr, N as u64)?;
        let mut out = [0; N];
        out.copy_from_slice(&self.bytes[range]);
        Ok(out)
    }

    /// The byte at `ptr`.
    pub(crate) fn read_u8(&self, ptr: u32) -> Result<u8, Errno> {
        Ok(self.array::<1>(ptr)?[0])
    }

    /// The `u16` at `ptr`.
    pub(crate) fn read_u16(&self, ptr: u32) -> Result<u16, Errno> {
        self.array(ptr).map(u16::from_le_bytes)
    }

    /// The `u32` at `ptr`.
    pub(crate) fn read_u32(&self, ptr: u32) -> Result<u32, Errno> {
        self.array(ptr).map(u32::from_le_bytes)
    }

    /// The `u64` at `ptr`.
    pub(crate) fn read_u64(&self, ptr: u32) -> Result<u64, Errno> {
        self.array(ptr).map(u64::from_le_bytes)
    }

    /// Copies `bytes` to `ptr`.
    pub(crate) fn write(&mut self, ptr: u32, bytes: &[u8]) -> Result<(), Errno> {
        let range = self.range(ptr, bytes.len() as u64)?;
        self.bytes[range].copy_from_slice(bytes);
        Ok(())
    }

    /// Writes a byte at `ptr`.
    pub(crate) fn write_u8(&mut self, ptr: u32, value: u8) -> Result<(), Errno> {
        self.write(ptr, &[value])
    }

    /// Writes a `u16` at `ptr`.
    pub(crate) fn write_u16(&mut self, ptr: u32, value: u16) -> Result<(), Errno> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// Writes a `u32` at `ptr`.
    pub(crate) fn write_u32(&mut self, ptr: u32, value: u32) -> Result<(), Errno> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// Writes a `u64` at `ptr`.
    pub(crate) fn write_u64(&mut self, ptr: u32, value: u64) -> Result<(), Errno> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// Checks the array of `count` iovecs at `ptr` and every buffer it names.
    ///
    /// Fails with `EFAULT` if any of them leaves memory, and with `EINVAL` if the
    /// buffers (which may overlap) add up to more than `u32::MAX` bytes.
    pub(crate) fn iovecs(&self, ptr: u32, count: u32) -> Result<Iovecs, Errno> {
        self.check(ptr, u64::from(count) * u64::from(IOVEC_SIZE))?;
        let iovecs = Iovecs { ptr, count };
        let mut total = 0u64;
        for i in 0..count {
            let (buf, len) = self.iovec(iovecs, i)?;
            self.check(buf, u64::from(len))?;
            total += u64::from(len);
        }
        if total > u64::from(u32::MAX) {
            return Err(Errno::Inval);
        }
        Ok(iovecs)
    }

    /// The pointer and length of iovec `i`.
    fn iovec(&self, iovecs: Iovecs, i: u32) -> Result<(u32, u32), Errno> {
        let at = u64::from(iovecs.ptr) + u64::from(i) * u64::from(IOVEC_SIZE);
        let at = u32::try_from(at).map_err(|_| Errno::Fault)?;
        Ok((self.read_u32(at)?, self.read_u32(at.wrapping_add(4))?))
    }

    /// Buffer `i` of checked iovecs (empty if `i` is out of range).
    pub(crate) fn buf(&self, iovecs: Iovecs, i: u32) -> &[u8] {
        match self.iovec(iovecs, i) {
            Ok((ptr, len)) if i < iovecs.count => self.slice(ptr, len).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Buffer `i` of checked iovecs, mutably (empty if `i` is out of range).
    pub(crate) fn buf_mut(&mut self, iovecs: Iovecs, i: u32) -> &mut [u8] {
        match self.iovec(iovecs, i) {
            Ok((ptr, len)) if i < iovecs.count => self.slice_mut(ptr, len).unwrap_or(&mut []),
            _ => &mut [],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_past_the_end_fault() {
        let mut bytes = vec![0u8; 16];
        let mem = GuestMemory::new(&mut bytes);
        assert!(mem.slice(0, 16).is_ok());
        assert_eq!(mem.slice(1, 16).err(), Some(Errno::Fault));
        assert_eq!(mem.slice(u32::MAX, 2).err(), Some(Errno::Fault));
        assert_eq!(mem.read_u64(9).err(), Some(Errno::Fault));
        assert_eq!(mem.check(16, 0), Ok(()));
        assert_eq!(mem.check(17, 0), Err(Errno::Fault));
    }

    #[test]
    fn integers_are_little_endian() {
        let mut bytes = vec![0u8; 16];
        let mut mem = GuestMemory::new(&mut bytes);
        mem.write_u32(4, 0x0403_0201).unwrap();
        mem.write_u16(8, 0x0605).unwrap();
        assert_eq!(mem.read_u8(4), Ok(1));
        assert_eq!(mem.read_u64(4), Ok(0x0605_0403_0201));
        assert_eq!(mem.read_u16(8), Ok(0x0605));
        assert_eq!(&bytes[4..10], &[1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn iovecs_check_every_buffer() {
        let mut bytes = vec![0u8; 64];
        let mut mem = GuestMemory::new(&mut bytes);
        // Two iovecs at 0: (32, 4) and (40, 0).
        mem.write_u32(0, 32).unwrap();
        mem.write_u32(4, 4).unwrap();
        mem.write_u32(8, 40).unwrap();
        mem.write_u32(12, 0).unwrap();
        let iovecs = mem.iovecs(0, 2).unwrap();
        assert_eq!(mem.buf(iovecs, 0).len(), 4);
        assert!(mem.buf(iovecs, 1).is_empty());
        assert!(mem.buf(iovecs, 2).is_empty());
        // A buffer whose end wraps around 2^32.
        mem.write_u32(12, u32::MAX).unwrap();
        assert_eq!(mem.iovecs(0, 2).err(), Some(Errno::Fault));
        // An array past the end.
        assert_eq!(mem.iovecs(60, 1).err(), Some(Errno::Fault));
        assert_eq!(mem.iovecs(0, u32::MAX).err(), Some(Errno::Fault));
    }
}
