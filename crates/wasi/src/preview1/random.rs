//! `random_get`: bytes from the host's cryptographically secure generator.

use crate::ctx::WasiCtx;
use crate::errno::Errno;
use crate::memory::GuestMemory;
use cap_rand::TryRngCore;

/// `random_get`.
pub(crate) fn random_get(
    _cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    buf: u32,
    len: u32,
) -> Result<(), Errno> {
    let bytes = mem.slice_mut(buf, len)?;
    cap_rand::rngs::OsRng::default(cap_rand::ambient_authority())
        .try_fill_bytes(bytes)
        .map_err(|_| Errno::Io)
}
