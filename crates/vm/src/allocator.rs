//! Instance allocators: where an instance's memories and tables come from.
//!
//! [`OnDemandInstanceAllocator`] maps each memory and allocates each table when asked;
//! the pooling allocator (feature `pooling-allocator`) hands out slots of one up-front
//! reservation instead.

use crate::cow::same_image;
use crate::memory::{FreedReservation, OwnedLayout};
use crate::shard::{CacheLine, home_shard, shard_count};
use crate::{Memory, MemoryImage, Table, VmError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use strata_environ::Tunables;

/// An instance's claim on its allocator, given back when the instance is freed.
#[derive(Debug, PartialEq, Eq)]
pub struct InstanceSlot {
    /// Whether the instance lives outside the allocator's pool (hybrid mode overflow).
    pub(crate) overflow: bool,
    /// Which of the allocator's instance counters counts it.
    pub(crate) shard: usize,
}

/// The single source of instances' memories and tables.
///
/// # Safety
/// Implementations must return memories and tables laid out as `tunables` say, because
/// compiled code relies on that layout for its bounds checks.
pub unsafe trait InstanceAllocator: Send + Sync {
    /// Checks, before anything is allocated for it, that an instance of `module` can
    /// come from this allocator at all (not merely that there is room right now).
    ///
    /// # Errors
    /// Fails if the module needs more memories or tables per instance than the
    /// allocator gives one instance.
    fn validate_module(&self, module: &strata_environ::Module) -> Result<(), VmError> {
        let _ = module;
        Ok(())
    }

    /// Accounts for one more live instance whose header and vmctx take `metadata_size`
    /// bytes.
    ///
    /// # Errors
    /// Fails if the allocator's instance limit is reached or the metadata is too big.
    fn allocate_instance(&self, metadata_size: usize) -> Result<InstanceSlot, VmError>;

    /// Accounts for one instance less.
    fn deallocate_instance(&self, slot: InstanceSlot);

    /// Creates a memory of type `ty` at its minimum size, with `image` (if any) mapped
    /// as its initial contents.
    ///
    /// # Errors
    /// Fails if memory cannot be had.
    fn allocate_memory(
        &self,
        ty: &strata_environ::Memory,
        tunables: &Tunables,
        image: Option<&Arc<MemoryImage>>,
    ) -> Result<Memory, VmError>;

    /// Takes back a memory made by [`InstanceAllocator::allocate_memory`].
    fn deallocate_memory(&self, memory: Memory);

    /// Creates a table of type `ty` at its minimum size, all null.
    ///
    /// # Errors
    /// Fails if the table is too large.
    fn allocate_table(&self, ty: &strata_environ::Table) -> Result<Table, VmError>;

    /// Takes back a table made by [`InstanceAllocator::allocate_table`].
    fn deallocate_table(&self, table: Table);

    /// A stack of at least `size` usable bytes, with a guard page below, for running
    /// wasm on a fiber.
    ///
    /// # Errors
    /// Fails if no stack can be had.
    #[cfg(feature = "async")]
    fn allocate_fiber_stack(&self, size: usize) -> Result<strata_fiber::FiberStack, VmError>;

    /// Takes back a stack made by [`InstanceAllocator::allocate_fiber_stack`].
    #[cfg(feature = "async")]
    fn deallocate_fiber_stack(&self, stack: strata_fiber::FiberStack);

    /// The number of live instances.
    fn live_instances(&self) -> usize;
}

/// Maps memory and allocates tables on demand for each instance; the default.
///
/// A few freed memories keep their address space for the next memory of the same
/// shape and image (see `ReservationCache`): mapping and unmapping take the process's
/// address-space lock for writing, and unmapping written pages interrupts every core
/// the process runs on, so threads instantiating at once would mostly wait on each
/// other. The pages a freed memory's instance wrote are still given back at once.
#[derive(Debug, Default)]
pub struct OnDemandInstanceAllocator {
    live: LiveCounters,
    reservations: ReservationCache,
}

/// Live instances, counted per thread shard so that threads instantiating at once do
/// not share the counter's cache line.
struct LiveCounters(Box<[CacheLine<AtomicUsize>]>);

impl Default for LiveCounters {
    fn default() -> Self {
        LiveCounters(
            (0..shard_count(usize::MAX))
                .map(|_| CacheLine(AtomicUsize::new(0)))
                .collect(),
        )
    }
}

impl core::fmt::Debug for LiveCounters {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("LiveCounters").field(&self.total()).finish()
    }
}

impl LiveCounters {
    fn total(&self) -> usize {
        self.0.iter().map(|c| c.0.load(Ordering::Relaxed)).sum()
    }
}

/// Freed memory reservations kept for reuse, a few per thread shard.
struct ReservationCache {
    shards: Box<[CacheLine<Mutex<Vec<FreedReservation>>>]>,
}

/// Reservations each shard of the cache keeps. Each is address space only (a static
/// memory reserves its 4 GiB plus guard); resident are just the page tables and the
/// image's shared file pages.
const RESERVATIONS_PER_SHARD: usize = 4;

impl Default for ReservationCache {
    fn default() -> Self {
        ReservationCache {
            shards: (0..shard_count(usize::MAX))
                .map(|_| CacheLine(Mutex::new(Vec::new())))
                .collect(),
        }
    }
}

impl core::fmt::Debug for ReservationCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReservationCache")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl ReservationCache {
    fn home(&self) -> std::sync::MutexGuard<'_, Vec<FreedReservation>> {
        let shard = &self.shards[home_shard(self.shards.len())].0;
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A kept reservation of `total` bytes with `image` mapped, if this thread's shard
    /// has one.
    fn take(&self, total: usize, image: Option<&Arc<MemoryImage>>) -> Option<FreedReservation> {
        let mut kept = self.home();
        let i = kept.iter().rposition(|r| {
            r.reservation.mmap.len() == total && same_image(image, r.reservation.image.as_ref())
        })?;
        Some(kept.swap_remove(i))
    }

    /// Resets the pages `freed`'s memory wrote (anonymous ones read as zero again,
    /// image ones as the image) and keeps it; the oldest kept one is unmapped if the
    /// shard is full. A reservation whose reset fails is unmapped instead.
    fn keep(&self, freed: FreedReservation) {
        // SAFETY: the reservation is ours alone now, and its first `accessible` bytes
        // are readable and writable.
        let reset = unsafe {
            crate::pagemap::reset_dirty_pages(freed.reservation.mmap.as_ptr(), freed.accessible, 0)
        };
        if reset.is_err() {
            return;
        }
        let evicted = {
            let mut kept = self.home();
            let evicted = (kept.len() == RESERVATIONS_PER_SHARD).then(|| kept.remove(0));
            kept.push(freed);
            evicted
        };
        // Unmapped here, outside the lock.
        drop(evicted);
    }
}

// SAFETY: memories come from `Memory::with_image` with the caller's tunables.
unsafe impl InstanceAllocator for OnDemandInstanceAllocator {
    fn allocate_instance(&self, _metadata_size: usize) -> Result<InstanceSlot, VmError> {
        let shard = home_shard(self.live.0.len());
        self.live.0[shard].0.fetch_add(1, Ordering::Relaxed);
        Ok(InstanceSlot {
            overflow: false,
            shard,
        })
    }

    fn deallocate_instance(&self, slot: InstanceSlot) {
        self.live.0[slot.shard].0.fetch_sub(1, Ordering::Relaxed);
    }

    fn allocate_memory(
        &self,
        ty: &strata_environ::Memory,
        tunables: &Tunables,
        image: Option<&Arc<MemoryImage>>,
    ) -> Result<Memory, VmError> {
        let layout = OwnedLayout::new(ty, tunables)?;
        let reuse = self.reservations.take(layout.total, image);
        Memory::owned(ty, &layout, image, reuse)
    }

    fn deallocate_memory(&self, memory: Memory) {
        if let Ok(freed) = memory.into_reservation() {
            self.reservations.keep(freed);
        }
    }

    fn allocate_table(&self, ty: &strata_environ::Table) -> Result<Table, VmError> {
        Table::new(ty, core::ptr::null_mut())
    }

    fn deallocate_table(&self, table: Table) {
        drop(table);
    }

    #[cfg(feature = "async")]
    fn allocate_fiber_stack(&self, size: usize) -> Result<strata_fiber::FiberStack, VmError> {
        strata_fiber::FiberStack::new(size, true).map_err(VmError::Mmap)
    }

    #[cfg(feature = "async")]
    fn deallocate_fiber_stack(&self, stack: strata_fiber::FiberStack) {
        drop(stack);
    }

    fn live_instances(&self) -> usize {
        self.live.total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(minimum: u64) -> strata_environ::Memory {
        strata_environ::Memory {
            minimum,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: 16,
        }
    }

    #[test]
    fn freed_memories_are_reused_reset() {
        let page = crate::host_page_size();
        let tunables = Tunables::default_host();
        let mut contents = vec![0u8; page];
        contents[..5].copy_from_slice(b"image");
        let image = Some(Arc::new(MemoryImage::from_bytes(page, &contents).unwrap()));
        let allocator = OnDemandInstanceAllocator::default();

        let mut memory = allocator
            .allocate_memory(&ty(1), &tunables, image.as_ref())
            .unwrap();
        let base = memory.base();
        memory.grow(1).unwrap();
        let bytes = memory.data_mut();
        bytes[10] = 1;
        bytes[page + 1] = 2;
        bytes[65536 + 5] = 3;
        allocator.deallocate_memory(memory);

        // The same shape and image on the same thread: the same reservation, back at
        // its minimum size and reading as initialized.
        let again = allocator
            .allocate_memory(&ty(1), &tunables, image.as_ref())
            .unwrap();
        assert_eq!(again.base(), base, "the reservation was reused");
        assert_eq!(again.byte_size(), 65536);
        assert_eq!(&again.data()[page..page + 5], b"image");
        assert_eq!(again.data()[10], 0);
        assert!(again.data()[page + 5..].iter().all(|&b| b == 0));
        allocator.deallocate_memory(again);

        // Without the image nothing is reused: a fresh reservation reads as zero.
        let plain = allocator.allocate_memory(&ty(1), &tunables, None).unwrap();
        assert_ne!(plain.base(), base);
        assert!(plain.data().iter().all(|&b| b == 0));
    }

    #[test]
    fn at_most_a_few_reservations_are_kept() {
        let tunables = Tunables::default_host();
        let allocator = OnDemandInstanceAllocator::default();
        let memories: Vec<Memory> = (0..RESERVATIONS_PER_SHARD + 3)
            .map(|_| allocator.allocate_memory(&ty(1), &tunables, None).unwrap())
            .collect();
        for memory in memories {
            allocator.deallocate_memory(memory);
        }
        let kept: usize = allocator
            .reservations
            .shards
            .iter()
            .map(|s| s.0.lock().unwrap().len())
            .sum();
        assert_eq!(kept, RESERVATIONS_PER_SHARD);
    }
}
