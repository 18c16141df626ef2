//! Instance allocators: where an instance's memories and tables come from.
//!
//! [`OnDemandInstanceAllocator`] maps each memory and allocates each table when asked;
//! the pooling allocator (feature `pooling-allocator`) hands out slots of one up-front
//! reservation instead.

use crate::{Memory, MemoryImage, Table, VmError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
#[derive(Debug, Default)]
pub struct OnDemandInstanceAllocator {
    live: AtomicUsize,
}

// SAFETY: memories come from `Memory::with_image` with the caller's tunables.
unsafe impl InstanceAllocator for OnDemandInstanceAllocator {
    fn allocate_instance(&self, _metadata_size: usize) -> Result<InstanceSlot, VmError> {
        self.live.fetch_add(1, Ordering::Relaxed);
        Ok(InstanceSlot {
            overflow: false,
            shard: 0,
        })
    }

    fn deallocate_instance(&self, _slot: InstanceSlot) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    fn allocate_memory(
        &self,
        ty: &strata_environ::Memory,
        tunables: &Tunables,
        image: Option<&Arc<MemoryImage>>,
    ) -> Result<Memory, VmError> {
        Memory::with_image(ty, tunables, image)
    }

    fn deallocate_memory(&self, memory: Memory) {
        drop(memory);
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
        self.live.load(Ordering::Relaxed)
    }
}
