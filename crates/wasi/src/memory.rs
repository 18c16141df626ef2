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

/// The most non-empty buffers of one iovec array a call uses (Linux's `IOV_MAX`); more
/// make the read or write short, as guests allow for.
pub(crate) const MAX_IOVECS: usize = 1024;

/// The buffers of an iovec array, read from guest memory once, before the call touches
/// any of them: a read that overwrites the array (which may lie inside its own buffers)
/// cannot change where the rest of the read goes.
///
/// Holds the first [`MAX_IOVECS`] non-empty buffers, each checked to lie in memory;
/// together they hold at most `u32::MAX` bytes.
#[derive(Debug)]
pub(crate) struct Iovecs {
    bufs: Vec<Iovec>,
}

/// One checked buffer of [`Iovecs`]: `len` bytes at `ptr`, never empty.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Iovec {
    ptr: u32,
    len: u32,
}

impl Iovecs {
    /// The non-empty buffers, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Iovec> + Clone + '_ {
        self.bufs.iter().copied()
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

    /// Reads the array of `count` iovecs at `ptr` and checks every buffer it names.
    ///
    /// Fails with `EFAULT` if the array or any buffer leaves memory, and with `EINVAL` if
    /// the buffers (which may overlap) add up to more than `u32::MAX` bytes. Every buffer
    /// is checked, but only the first [`MAX_IOVECS`] non-empty ones are kept.
    pub(crate) fn iovecs(&self, ptr: u32, count: u32) -> Result<Iovecs, Errno> {
        self.check(ptr, u64::from(count) * u64::from(IOVEC_SIZE))?;
        let mut bufs = Vec::new();
        let mut total = 0u64;
        for i in 0..count {
            // The whole array lies in memory, so neither address wraps.
            let at = ptr + i * IOVEC_SIZE;
            let iovec = Iovec {
                ptr: self.read_u32(at)?,
                len: self.read_u32(at + 4)?,
            };
            self.check(iovec.ptr, u64::from(iovec.len))?;
            total += u64::from(iovec.len);
            if iovec.len > 0 && bufs.len() < MAX_IOVECS {
                bufs.push(iovec);
            }
        }
        if total > u64::from(u32::MAX) {
            return Err(Errno::Inval);
        }
        Ok(Iovecs { bufs })
    }

    /// A buffer of [`Iovecs`] read from this memory.
    pub(crate) fn buf(&self, iovec: Iovec) -> &[u8] {
        // Checked when read, and a memory never shrinks during a call.
        self.slice(iovec.ptr, iovec.len).unwrap_or(&[])
    }

    /// A buffer of [`Iovecs`] read from this memory, mutably.
    pub(crate) fn buf_mut(&mut self, iovec: Iovec) -> &mut [u8] {
        self.slice_mut(iovec.ptr, iovec.len).unwrap_or(&mut [])
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
        // The empty buffer is left out.
        let bufs: Vec<_> = iovecs.iter().collect();
        assert_eq!(bufs, [Iovec { ptr: 32, len: 4 }]);
        assert_eq!(mem.buf(bufs[0]).len(), 4);
        // A buffer whose end wraps around 2^32.
        mem.write_u32(12, u32::MAX).unwrap();
        assert_eq!(mem.iovecs(0, 2).err(), Some(Errno::Fault));
        // An array past the end.
        assert_eq!(mem.iovecs(60, 1).err(), Some(Errno::Fault));
        assert_eq!(mem.iovecs(0, u32::MAX).err(), Some(Errno::Fault));
    }

    #[test]
    fn iovecs_are_copies() {
        let mut bytes = vec![0u8; 64];
        let mut mem = GuestMemory::new(&mut bytes);
        // Two iovecs at 0, the first buffer holding both: (0, 16) and (32, 4).
        mem.write_u32(0, 0).unwrap();
        mem.write_u32(4, 16).unwrap();
        mem.write_u32(8, 32).unwrap();
        mem.write_u32(12, 4).unwrap();
        let iovecs = mem.iovecs(0, 2).unwrap();
        let mut bufs = iovecs.iter();
        let first = bufs.next().unwrap();
        mem.buf_mut(first).fill(0xff);
        let second = bufs.next().unwrap();
        assert_eq!(second, Iovec { ptr: 32, len: 4 });
        assert_eq!(bufs.next(), None);
    }

    #[test]
    fn iovecs_may_not_add_up_past_u32() {
        // 4096 overlapping buffers of the whole mebibyte hold exactly 2^32 bytes.
        let size = 1 << 20;
        let mut bytes = vec![0u8; size as usize];
        let mut mem = GuestMemory::new(&mut bytes);
        for i in 0..4097 {
            mem.write_u32(i * 8, 0).unwrap();
            mem.write_u32(i * 8 + 4, size).unwrap();
        }
        assert_eq!(
            mem.iovecs(0, 4095).map(|v| v.iter().count()),
            Ok(MAX_IOVECS)
        );
        assert_eq!(mem.iovecs(0, 4096).err(), Some(Errno::Inval));
        // One byte less fits.
        mem.write_u32(4, size - 1).unwrap();
        assert_eq!(
            mem.iovecs(0, 4096).map(|v| v.iter().count()),
            Ok(MAX_IOVECS)
        );
        assert_eq!(mem.iovecs(0, 4097).err(), Some(Errno::Inval));
    }

    #[test]
    fn iovecs_keep_at_most_max_iovecs_buffers() {
        let count = MAX_IOVECS as u32 + 5;
        let mut bytes = vec![0u8; count as usize * 8 + 8];
        let mut mem = GuestMemory::new(&mut bytes);
        for i in 0..count {
            mem.write_u32(i * 8, 0).unwrap();
            mem.write_u32(i * 8 + 4, 1).unwrap();
        }
        let iovecs = mem.iovecs(0, count).unwrap();
        assert_eq!(iovecs.iter().count(), MAX_IOVECS);
        // Buffers past the kept ones are still checked.
        mem.write_u32((count - 1) * 8, u32::MAX).unwrap();
        assert_eq!(mem.iovecs(0, count).err(), Some(Errno::Fault));
    }
}
