//! The pooling instance allocator: memories and tables come from slots of one up-front
//! reservation, and freed slots are reset and reused instead of unmapped.
//!
//! ```text
//!  memory pool:  [ slot 0: capacity | guard ][ slot 1: capacity | guard ] ...
//!  table pool:   [ slot 0: table_elements pointers ][ slot 1 ] ...
//! ```
//!
//! A freed memory slot keeps its copy-on-write image mapped and its accessible size, so
//! the next instance of the same module (the allocator prefers the slot that module used
//! last) needs no `mmap` or `mprotect` at all. Resetting a slot touches only the pages
//! its occupant wrote (found with `PAGEMAP_SCAN`, see the `pagemap` module): they are
//! zeroed in place up to the keep-resident budget and decommitted with `madvise` beyond
//! it, so a slot nobody wrote costs no `madvise`. Slots are reset when freed, in
//! batches of [`PoolingConfig::decommit_batch_size`], outside the pool's locks but
//! before anyone else can get them. At most [`PoolingConfig::max_unused_warm_slots`]
//! freed slots stay warm; older ones are wiped back to plain reserved address space.
//!
//! The free lists are sharded by thread (see `Shards`), so threads instantiating at
//! once mostly work on locks and cache lines of their own.
//!
//! When a pool is full the allocator fails with [`PoolConcurrencyLimitError`], or, with
//! [`PoolingConfig::overflow_to_on_demand`], serves the request on demand instead.

use crate::allocator::InstanceSlot;
use crate::cow::same_image;
use crate::mmap::{self, Mmap};
use crate::pagemap::reset_dirty_pages;
use crate::shard::{CacheLine, home_shard, shard_count};
use crate::{InstanceAllocator, Memory, MemoryImage, OnDemandInstanceAllocator, Table, VmError};
use core::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use strata_environ::Tunables;

/// Tables up to this many bytes in use are checked for written elements by reading them,
/// which costs less than asking the kernel which pages were written (and takes no lock
/// that other threads' resets contend for). Lazily initialized tables that no code read
/// stay all zero.
const SMALL_TABLE_BYTES: usize = 1024;

/// The slot of the memory pool a pooled memory lives in. Each memory of an instance
/// has its own, so an instance with several memories holds several slots.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct MemoryAllocationIndex(pub(crate) u32);

/// The slot of the table pool a pooled table lives in, one per table.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TableAllocationIndex(pub(crate) u32);

/// Slot numbers are below `total_memories`/`total_tables`, which are `u32`s.
fn slot_number(index: usize) -> u32 {
    u32::try_from(index).expect("pool slot numbers fit in u32")
}

/// Sizes and limits of a [`PoolingInstanceAllocator`].
#[derive(Clone, Debug)]
pub struct PoolingConfig {
    /// Instances alive at once.
    pub total_core_instances: u32,
    /// Linear memories alive at once (the number of memory slots).
    pub total_memories: u32,
    /// Tables alive at once (the number of table slots).
    pub total_tables: u32,
    /// The most linear memories a module may define (imports do not count).
    pub max_memories_per_module: u32,
    /// The most tables a module may define (imports do not count).
    pub max_tables_per_module: u32,
    /// Fiber stacks alive at once (the number of stack slots; with `async`).
    pub total_stacks: u32,
    /// Usable bytes of each pooled fiber stack (with `async`).
    pub stack_size: usize,
    /// Whether a returned stack is zeroed before it is lent again (with `async`): its
    /// pages are given back to the system, to come back as zeros when next touched.
    pub stack_zeroing: bool,
    /// The most bytes a pooled memory may grow to.
    pub max_memory_size: usize,
    /// The most elements a pooled table may grow to.
    pub table_elements: usize,
    /// The most bytes an instance's header and vmctx may take.
    pub max_core_instance_size: usize,
    /// Bytes of a freed memory slot's written pages that are zeroed in place instead of
    /// given back to the system, so they stay resident for the next instance (slots
    /// without an image only).
    pub linear_memory_keep_resident: usize,
    /// Likewise for table slots.
    pub table_keep_resident: usize,
    /// Freed slots (per pool) that may keep their pages and image mapped for reuse.
    pub max_unused_warm_slots: u32,
    /// Freed slots reset together, with one round of `madvise` calls.
    pub decommit_batch_size: usize,
    /// Serve requests on demand when a pool is full, instead of failing.
    pub overflow_to_on_demand: bool,
}

impl Default for PoolingConfig {
    fn default() -> Self {
        PoolingConfig {
            total_core_instances: 1000,
            total_memories: 1000,
            total_tables: 1000,
            max_memories_per_module: 1,
            max_tables_per_module: 1,
            total_stacks: 1000,
            stack_size: 2 << 20,
            stack_zeroing: false,
            max_memory_size: 4 << 30,
            table_elements: 20_000,
            max_core_instance_size: 1 << 20,
            linear_memory_keep_resident: 0,
            table_keep_resident: 0,
            max_unused_warm_slots: 100,
            decommit_batch_size: 1,
            overflow_to_on_demand: false,
        }
    }
}

/// A pool had no free slot for an instance, memory or table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConcurrencyLimitError {
    kind: &'static str,
    limit: usize,
}

impl PoolConcurrencyLimitError {
    /// What ran out: `"core instance"`, `"memory"` or `"table"`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The pool's limit.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl core::fmt::Display for PoolConcurrencyLimitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "maximum concurrent {} limit of {} reached",
            self.kind, self.limit
        )
    }
}

impl std::error::Error for PoolConcurrencyLimitError {}

/// A snapshot of a pooling allocator's use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolingMetrics {
    /// Live instances, including overflow ones.
    pub core_instances: usize,
    /// Memory slots in use.
    pub memories: usize,
    /// Table slots in use.
    pub tables: usize,
    /// Freed memory slots that are still warm.
    pub unused_warm_memories: usize,
    /// Freed table slots that are still warm.
    pub unused_warm_tables: usize,
    /// Fiber stacks in use (with `async`).
    pub stacks: usize,
    /// Live instances beyond `total_core_instances` (hybrid mode).
    pub overflow_instances: usize,
    /// Live memories and tables allocated on demand because their pool was full.
    pub overflow_allocations: usize,
    /// Memories and tables ever allocated on demand because their pool was full.
    pub total_overflow_allocations: usize,
}

/// What a memory slot holds between uses.
#[derive(Default)]
struct MemorySlotState {
    /// Bytes from the base that are readable and writable.
    accessible: usize,
    /// The image mapped at the base, if any.
    image: Option<Arc<MemoryImage>>,
}

/// Free slots: warm ones (oldest first) keep their state, cold ones are plain
/// reservation; slots being reset wait in `pending` until their batch is flushed.
struct SlotLists<S> {
    states: States<S>,
    warm: Vec<usize>,
    cold: Vec<usize>,
    pending: Vec<usize>,
    in_use: usize,
    /// The most warm slots this list keeps.
    warm_limit: usize,
}

/// The states of the slots of one shard (`shard`, `shard + shards`, ...), indexed by
/// slot index.
struct States<S> {
    states: Vec<S>,
    shards: usize,
}

impl<S> core::ops::Index<usize> for States<S> {
    type Output = S;
    fn index(&self, slot: usize) -> &S {
        &self.states[slot / self.shards]
    }
}

impl<S> core::ops::IndexMut<usize> for States<S> {
    fn index_mut(&mut self, slot: usize) -> &mut S {
        &mut self.states[slot / self.shards]
    }
}

/// A pool's free lists, split into shards that each own every `shards`-th slot. A
/// thread allocates from its home shard first and a slot always returns to the shard
/// owning it, so threads working at once mostly touch different locks and cache
/// lines; a thread whose shard is empty takes a slot from another.
struct Shards<S> {
    shards: Box<[CacheLine<Mutex<SlotLists<S>>>]>,
}

impl<S: Default> Shards<S> {
    /// Lists for `count` slots in [`shard_count`] shards, sharing `warm_limit` warm
    /// slots.
    fn new(count: usize, warm_limit: usize) -> Self {
        let shards = shard_count(count);
        Shards {
            shards: (0..shards)
                .map(|shard| {
                    let owned = (shard..count).step_by(shards);
                    CacheLine(Mutex::new(SlotLists {
                        states: States {
                            states: owned.clone().map(|_| S::default()).collect(),
                            shards,
                        },
                        warm: Vec::new(),
                        // Hand out low slots first.
                        cold: owned.rev().collect(),
                        pending: Vec::new(),
                        in_use: 0,
                        warm_limit: warm_limit.div_ceil(shards),
                    }))
                })
                .collect(),
        }
    }
}

impl<S> Shards<S> {
    /// The lists of the shard owning `slot`.
    fn owner(&self, slot: usize) -> MutexGuard<'_, SlotLists<S>> {
        lock(&self.shards[slot % self.shards.len()].0)
    }

    /// Every shard's lists, this thread's home shard first.
    fn home_first(&self) -> impl Iterator<Item = &Mutex<SlotLists<S>>> {
        let n = self.shards.len();
        let home = home_shard(n);
        (0..n).map(move |i| &self.shards[(home + i) % n].0)
    }

    /// Slots in use and warm slots, over all shards.
    fn counts(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(used, warm), shard| {
            let lists = lock(&shard.0);
            (used + lists.in_use, warm + lists.warm.len())
        })
    }
}

/// Slots of linear memory.
struct MemoryPool {
    mapping: Mmap,
    /// Bytes from one slot's base to the next.
    stride: usize,
    /// Bytes of a slot that may become accessible.
    capacity: usize,
    slots: Shards<MemorySlotState>,
}

/// Slots of table elements.
struct TablePool {
    mapping: Mmap,
    stride: usize,
    capacity: usize,
    /// Elements used by each pending slot, to know what to reset.
    slots: Shards<usize>,
}

/// Slots of fiber stacks, each a guard page and then the usable bytes. Stacks are
/// cleared between uses only when configured (`stack_zeroing`): wasm cannot read its
/// native stack, so what a previous call left there matters only to host code that
/// reads uninitialized stack memory.
#[cfg(feature = "async")]
struct StackPool {
    mapping: Mmap,
    stride: usize,
    free: Mutex<Vec<usize>>,
}

/// Hands out memories and tables from fixed pools; see the module documentation.
pub struct PoolingInstanceAllocator {
    config: PoolingConfig,
    memories: MemoryPool,
    tables: TablePool,
    #[cfg(feature = "async")]
    stacks: StackPool,
    /// Live pooled instances, counted in shards like the slot lists; shard `i` may
    /// count up to `instance_quotas[i]` of them.
    live_instances: Box<[CacheLine<AtomicUsize>]>,
    instance_quotas: Box<[usize]>,
    overflow_instances: AtomicUsize,
    overflow_live: AtomicUsize,
    overflow_total: AtomicUsize,
    on_demand: OnDemandInstanceAllocator,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn too_big(what: &str) -> VmError {
    VmError::Limit(format!(
        "the pooling allocator's {what} overflows the address space"
    ))
}

impl PoolingInstanceAllocator {
    /// Reserves the pools for `config`, with memory slots laid out as `tunables` say.
    ///
    /// # Errors
    /// Fails if the address space cannot be reserved.
    pub fn new(config: &PoolingConfig, tunables: &Tunables) -> Result<Self, VmError> {
        let page = crate::host_page_size();
        let reservation = usize::try_from(tunables.memory_reservation).unwrap_or(usize::MAX);
        let guard = usize::try_from(tunables.memory_guard_size).unwrap_or(usize::MAX);
        // Compiled code may skip bounds checks within `reservation + guard` of a static
        // memory's base, so every slot spans at least that much.
        let capacity = config
            .max_memory_size
            .max(reservation)
            .checked_next_multiple_of(page)
            .ok_or_else(|| too_big("memory slot"))?;
        let stride = capacity
            .checked_add(guard)
            .and_then(|s| s.checked_next_multiple_of(page))
            .ok_or_else(|| too_big("memory slot"))?;
        let memory_count = config.total_memories as usize;
        let memory_bytes = stride
            .checked_mul(memory_count)
            .ok_or_else(|| too_big("memory pool"))?;
        let memories = MemoryPool {
            mapping: Mmap::reserve(memory_bytes)?,
            stride,
            capacity: config.max_memory_size.min(capacity),
            slots: Shards::new(memory_count, config.max_unused_warm_slots as usize),
        };

        let table_stride = config
            .table_elements
            .checked_mul(size_of::<*mut u8>())
            .and_then(|b| b.checked_next_multiple_of(page))
            .ok_or_else(|| too_big("table slot"))?;
        let table_count = config.total_tables as usize;
        let table_bytes = table_stride
            .checked_mul(table_count)
            .ok_or_else(|| too_big("table pool"))?;
        let mut table_mapping = Mmap::reserve(table_bytes)?;
        table_mapping.make_accessible(0, table_bytes)?;
        let tables = TablePool {
            mapping: table_mapping,
            stride: table_stride,
            capacity: config.table_elements,
            slots: Shards::new(table_count, config.max_unused_warm_slots as usize),
        };

        #[cfg(feature = "async")]
        let stacks = {
            let stride = config
                .stack_size
                .checked_next_multiple_of(page)
                .and_then(|s| s.checked_add(page))
                .ok_or_else(|| too_big("stack slot"))?;
            let count = config.total_stacks as usize;
            let mut mapping = Mmap::reserve(
                stride
                    .checked_mul(count)
                    .ok_or_else(|| too_big("stack pool"))?,
            )?;
            for i in 0..count {
                mapping.make_accessible(i * stride + page, stride - page)?;
            }
            StackPool {
                mapping,
                stride,
                free: Mutex::new((0..count).rev().collect()),
            }
        };

        let instances = config.total_core_instances as usize;
        let instance_shards = shard_count(instances);
        Ok(PoolingInstanceAllocator {
            config: config.clone(),
            memories,
            tables,
            #[cfg(feature = "async")]
            stacks,
            live_instances: (0..instance_shards)
                .map(|_| CacheLine(AtomicUsize::new(0)))
                .collect(),
            instance_quotas: (0..instance_shards)
                .map(|i| instances / instance_shards + usize::from(i < instances % instance_shards))
                .collect(),
            overflow_instances: AtomicUsize::new(0),
            overflow_live: AtomicUsize::new(0),
            overflow_total: AtomicUsize::new(0),
            on_demand: OnDemandInstanceAllocator::default(),
        })
    }

    /// Live instances counted by the pool (not the overflow).
    fn pooled_instances(&self) -> usize {
        self.live_instances
            .iter()
            .map(|c| c.0.load(Ordering::Relaxed))
            .sum()
    }

    /// Current use of the pools.
    pub fn metrics(&self) -> PoolingMetrics {
        let (memories, unused_warm_memories) = self.memories.slots.counts();
        let (tables, unused_warm_tables) = self.tables.slots.counts();
        PoolingMetrics {
            core_instances: self.live_instances(),
            memories,
            tables,
            unused_warm_memories,
            unused_warm_tables,
            #[cfg(feature = "async")]
            stacks: self.config.total_stacks as usize - lock(&self.stacks.free).len(),
            #[cfg(not(feature = "async"))]
            stacks: 0,
            overflow_instances: self.overflow_instances.load(Ordering::Relaxed),
            overflow_allocations: self.overflow_live.load(Ordering::Relaxed),
            total_overflow_allocations: self.overflow_total.load(Ordering::Relaxed),
        }
    }

    fn overflow<T>(
        &self,
        kind: &'static str,
        limit: u32,
        on_demand: impl FnOnce() -> Result<T, VmError>,
    ) -> Result<T, VmError> {
        if !self.config.overflow_to_on_demand {
            return Err(VmError::PoolLimit(PoolConcurrencyLimitError {
                kind,
                limit: limit as usize,
            }));
        }
        let value = on_demand()?;
        self.overflow_live.fetch_add(1, Ordering::Relaxed);
        self.overflow_total.fetch_add(1, Ordering::Relaxed);
        Ok(value)
    }

    fn memory_slot_base(&self, index: usize) -> *mut u8 {
        // SAFETY: `index` is below `total_memories`, so the slot lies in the mapping.
        unsafe {
            self.memories
                .mapping
                .as_ptr()
                .add(index * self.memories.stride)
        }
    }

    fn table_slot_base(&self, index: usize) -> *mut u8 {
        // SAFETY: as above, for the table pool.
        unsafe { self.tables.mapping.as_ptr().add(index * self.tables.stride) }
    }

    /// Resets freed memory slot `index`; `false` if it must be wiped instead.
    fn reset_memory_slot(&self, index: usize, accessible: usize, has_image: bool) -> bool {
        // Image pages must come back from the image, so only imageless slots keep
        // written pages resident (zeroed in place).
        let keep = if has_image {
            0
        } else {
            self.config.linear_memory_keep_resident
        };
        // SAFETY: the slot is ours (no memory refers to it while pending) and its first
        // `accessible` bytes are readable and writable.
        unsafe { reset_dirty_pages(self.memory_slot_base(index), accessible, keep) }.is_ok()
    }

    /// Makes reset memory slots warm (wiping those whose reset failed), then wipes the
    /// oldest warm slots beyond the warm limit.
    fn warm_memory_slots(
        &self,
        slots: &mut SlotLists<MemorySlotState>,
        reset: impl IntoIterator<Item = (usize, bool)>,
    ) {
        for (index, ok) in reset {
            if !ok {
                self.wipe_memory_slot(index, &mut slots.states[index]);
            }
            slots.warm.push(index);
        }
        while slots.warm.len() > slots.warm_limit {
            let index = slots.warm.remove(0);
            self.wipe_memory_slot(index, &mut slots.states[index]);
            slots.cold.push(index);
        }
    }

    /// Resets the pending memory slots under the lock, for an allocation that found no
    /// free slot.
    fn flush_memories(&self, slots: &mut SlotLists<MemorySlotState>) {
        let pending = core::mem::take(&mut slots.pending);
        let reset: Vec<(usize, bool)> = pending
            .into_iter()
            .map(|i| {
                let state = &slots.states[i];
                (
                    i,
                    self.reset_memory_slot(i, state.accessible, state.image.is_some()),
                )
            })
            .collect();
        self.warm_memory_slots(slots, reset);
    }

    /// Returns a memory slot to plain reserved address space.
    fn wipe_memory_slot(&self, index: usize, state: &mut MemorySlotState) {
        let base = self.memory_slot_base(index);
        // SAFETY: the slot is ours and nothing refers to it.
        let wiped = unsafe { mmap::reset_to_reserved(base, self.memories.capacity) };
        if wiped.is_ok() {
            *state = MemorySlotState::default();
        } else {
            // Fall back to making it inaccessible; it is reset again on reuse.
            // SAFETY: as above.
            let _ = unsafe { mmap::protect(base, state.accessible, libc::PROT_NONE) };
            state.accessible = 0;
        }
    }

    fn take_memory_slot(&self, image: Option<&Arc<MemoryImage>>) -> Option<(usize, usize, bool)> {
        self.memories
            .slots
            .home_first()
            .find_map(|shard| self.take_memory_slot_from(&mut lock(shard), image))
    }

    /// A memory slot from one shard's lists: its index, accessible bytes and whether
    /// `image` is mapped in it already.
    fn take_memory_slot_from(
        &self,
        slots: &mut SlotLists<MemorySlotState>,
        image: Option<&Arc<MemoryImage>>,
    ) -> Option<(usize, usize, bool)> {
        if slots.warm.is_empty() && slots.cold.is_empty() {
            self.flush_memories(slots);
        }
        // Prefer a warm slot that holds this image, then any slot without an image
        // mapped, then the oldest warm slot (whose image is replaced).
        let same = |s: &MemorySlotState| same_image(image, s.image.as_ref());
        let index = if let Some(i) = slots.warm.iter().rposition(|&i| same(&slots.states[i])) {
            slots.warm.remove(i)
        } else if let Some(i) = slots.cold.pop() {
            i
        } else if !slots.warm.is_empty() {
            slots.warm.remove(0)
        } else {
            return None;
        };
        slots.in_use += 1;
        let state = &mut slots.states[index];
        let image_mapped = same(state);
        if !image_mapped && state.image.is_some() {
            self.wipe_memory_slot(index, state);
        }
        Some((index, state.accessible, image_mapped && image.is_some()))
    }

    /// Resets freed table slot `index`, of which `used` elements were in use.
    fn reset_table_slot(&self, index: usize, used: usize) {
        let base = self.table_slot_base(index);
        if used * size_of::<usize>() <= SMALL_TABLE_BYTES {
            // SAFETY: the slot is ours (pending) and its first `used` elements are
            // readable; nobody writes them meanwhile.
            let elements = unsafe { core::slice::from_raw_parts(base.cast::<usize>(), used) };
            if elements.iter().all(|&e| e == 0) {
                return;
            }
        }
        let len = (used * size_of::<*mut u8>()).next_multiple_of(crate::host_page_size());
        // SAFETY: the slot is ours (pending) and readable and writable throughout.
        if unsafe { reset_dirty_pages(base, len, self.config.table_keep_resident) }.is_err() {
            // SAFETY: as above.
            unsafe { base.write_bytes(0, len) };
        }
    }

    /// Makes reset table slots warm, and the oldest beyond the warm limit cold.
    fn warm_table_slots(
        &self,
        slots: &mut SlotLists<usize>,
        reset: impl IntoIterator<Item = usize>,
    ) {
        for index in reset {
            slots.states[index] = 0;
            slots.warm.push(index);
        }
        while slots.warm.len() > slots.warm_limit {
            let index = slots.warm.remove(0);
            slots.cold.push(index);
        }
    }

    /// Resets the pending table slots under the lock, for an allocation that found no
    /// free slot.
    fn flush_tables(&self, slots: &mut SlotLists<usize>) {
        let pending = core::mem::take(&mut slots.pending);
        for &index in &pending {
            self.reset_table_slot(index, slots.states[index]);
        }
        self.warm_table_slots(slots, pending);
    }
}

// SAFETY: memory slots span `max(reservation, max_memory_size) + guard` bytes, so the
// layout promised by `tunables` holds; overflow requests use the on-demand allocator.
unsafe impl InstanceAllocator for PoolingInstanceAllocator {
    fn validate_module(&self, module: &strata_environ::Module) -> Result<(), VmError> {
        let limits = [
            (
                "memories",
                module.num_defined_memories(),
                self.config.max_memories_per_module,
                "max_memories_per_module",
            ),
            (
                "tables",
                module.num_defined_tables(),
                self.config.max_tables_per_module,
                "max_tables_per_module",
            ),
        ];
        for (what, count, limit, setting) in limits {
            if count > limit as usize {
                return Err(VmError::Limit(format!(
                    "the module defines {count} {what}, more than the pooling allocator's \
                     per-instance limit of {limit} (`PoolingAllocationConfig::{setting}`)"
                )));
            }
        }
        Ok(())
    }

    fn allocate_instance(&self, metadata_size: usize) -> Result<InstanceSlot, VmError> {
        if metadata_size > self.config.max_core_instance_size {
            return Err(VmError::Limit(format!(
                "instance metadata (its vmctx: the pointers to its memories, tables and \
                 tags, its globals, function references and tag definitions) of \
                 {metadata_size} bytes exceeds the pooling allocator's per-instance limit \
                 of {} bytes (`PoolingAllocationConfig::max_core_instance_size`)",
                self.config.max_core_instance_size
            )));
        }
        let shards = self.live_instances.len();
        let home = home_shard(shards);
        let claimed = (0..shards).map(|i| (home + i) % shards).find(|&shard| {
            let quota = self.instance_quotas[shard];
            self.live_instances[shard]
                .0
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < quota).then_some(n + 1)
                })
                .is_ok()
        });
        if let Some(shard) = claimed {
            return Ok(InstanceSlot {
                overflow: false,
                shard,
            });
        }
        let limit = self.config.total_core_instances as usize;
        if !self.config.overflow_to_on_demand {
            return Err(VmError::PoolLimit(PoolConcurrencyLimitError {
                kind: "core instance",
                limit,
            }));
        }
        self.overflow_instances.fetch_add(1, Ordering::Relaxed);
        Ok(InstanceSlot {
            overflow: true,
            shard: 0,
        })
    }

    fn deallocate_instance(&self, slot: InstanceSlot) {
        if slot.overflow {
            self.overflow_instances.fetch_sub(1, Ordering::Relaxed);
        } else {
            self.live_instances[slot.shard]
                .0
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn allocate_memory(
        &self,
        ty: &strata_environ::Memory,
        tunables: &Tunables,
        image: Option<&Arc<MemoryImage>>,
    ) -> Result<Memory, VmError> {
        let Some((index, accessible, image_mapped)) = self.take_memory_slot(image) else {
            return self.overflow("memory", self.config.total_memories, || {
                self.on_demand.allocate_memory(ty, tunables, image)
            });
        };
        let base = NonNull::new(self.memory_slot_base(index)).expect("pool slots are not null");
        // SAFETY: the slot was just taken from the free lists, spans `capacity` bytes
        // plus a guard, and its state says how much of it is accessible.
        let memory = unsafe {
            Memory::in_slot(
                ty,
                tunables,
                base,
                self.memories.capacity,
                MemoryAllocationIndex(slot_number(index)),
                accessible,
                image,
                image_mapped,
            )
        };
        let mut slots = self.memories.slots.owner(index);
        match memory {
            Ok(memory) => {
                let state = &mut slots.states[index];
                state.accessible = memory.byte_size().next_multiple_of(crate::host_page_size());
                // A slot that holds this image already keeps it; only a new mapping
                // takes a reference (the slot's state owns the image, not the memory).
                if !image_mapped {
                    state.image = image.cloned();
                }
                Ok(memory)
            }
            Err(e) => {
                // Failed halfway: wipe the slot rather than trust its state.
                self.wipe_memory_slot(index, &mut slots.states[index]);
                slots.in_use -= 1;
                slots.cold.push(index);
                Err(e)
            }
        }
    }

    fn deallocate_memory(&self, memory: Memory) {
        let (index, accessible) = match memory.into_slot() {
            Ok((MemoryAllocationIndex(index), accessible)) => (index as usize, accessible),
            Err(on_demand) => {
                self.overflow_live.fetch_sub(1, Ordering::Relaxed);
                return self.on_demand.deallocate_memory(on_demand);
            }
        };
        let batch: Vec<(usize, usize, bool)> = {
            let mut slots = self.memories.slots.owner(index);
            slots.states[index].accessible = accessible;
            slots.in_use -= 1;
            slots.pending.push(index);
            if slots.pending.len() < self.config.decommit_batch_size.max(1) {
                return;
            }
            let pending = core::mem::take(&mut slots.pending);
            pending
                .into_iter()
                .map(|i| {
                    (
                        i,
                        slots.states[i].accessible,
                        slots.states[i].image.is_some(),
                    )
                })
                .collect()
        };
        // Reset outside the lock, so other threads allocate meanwhile: the batch is in
        // no free list, so nobody can take its slots before they are reset.
        let reset: Vec<(usize, bool)> = batch
            .into_iter()
            .map(|(i, accessible, has_image)| (i, self.reset_memory_slot(i, accessible, has_image)))
            .collect();
        self.warm_memory_slots(&mut self.memories.slots.owner(index), reset);
    }

    fn allocate_table(&self, ty: &strata_environ::Table) -> Result<Table, VmError> {
        let index = self.tables.slots.home_first().find_map(|shard| {
            let mut slots = lock(shard);
            if slots.warm.is_empty() && slots.cold.is_empty() {
                self.flush_tables(&mut slots);
            }
            let index = slots.warm.pop().or_else(|| slots.cold.pop())?;
            slots.in_use += 1;
            Some(index)
        });
        let Some(index) = index else {
            return self.overflow("table", self.config.total_tables, || {
                self.on_demand.allocate_table(ty)
            });
        };
        let base = NonNull::new(self.table_slot_base(index).cast::<*mut u8>())
            .expect("pool slots are not null");
        // SAFETY: the slot was just taken from the free lists and is readable and
        // writable for `capacity` elements.
        let table = unsafe {
            Table::in_slot(
                ty,
                base,
                self.tables.capacity,
                TableAllocationIndex(slot_number(index)),
                core::ptr::null_mut(),
            )
        };
        if table.is_err() {
            let mut slots = self.tables.slots.owner(index);
            slots.in_use -= 1;
            slots.cold.push(index);
        }
        table
    }

    fn deallocate_table(&self, table: Table) {
        let (index, used) = match table.into_slot() {
            Ok((TableAllocationIndex(index), used)) => (index as usize, used),
            Err(on_demand) => {
                self.overflow_live.fetch_sub(1, Ordering::Relaxed);
                return self.on_demand.deallocate_table(on_demand);
            }
        };
        let batch: Vec<(usize, usize)> = {
            let mut slots = self.tables.slots.owner(index);
            slots.states[index] = used;
            slots.in_use -= 1;
            slots.pending.push(index);
            if slots.pending.len() < self.config.decommit_batch_size.max(1) {
                return;
            }
            let pending = core::mem::take(&mut slots.pending);
            pending.into_iter().map(|i| (i, slots.states[i])).collect()
        };
        // Reset outside the lock, as for memories.
        for &(index, used) in &batch {
            self.reset_table_slot(index, used);
        }
        self.warm_table_slots(
            &mut self.tables.slots.owner(index),
            batch.into_iter().map(|(i, _)| i),
        );
    }

    #[cfg(feature = "async")]
    fn allocate_fiber_stack(&self, size: usize) -> Result<strata_fiber::FiberStack, VmError> {
        if size > self.config.stack_size {
            return Err(VmError::Limit(format!(
                "a fiber stack of {size} bytes exceeds the pool's stack size of {}",
                self.config.stack_size
            )));
        }
        let Some(index) = lock(&self.stacks.free).pop() else {
            return self.overflow("stack", self.config.total_stacks, || {
                self.on_demand.allocate_fiber_stack(size)
            });
        };
        // SAFETY: `index` is below `total_stacks`, so the slot lies in the mapping.
        let base = unsafe { self.stacks.mapping.as_ptr().add(index * self.stacks.stride) };
        let page = crate::host_page_size();
        // SAFETY: the slot's first page is inaccessible and the rest readable and
        // writable (set up in `new`), and it is ours until the stack comes back.
        unsafe { strata_fiber::FiberStack::from_raw_parts(base, self.stacks.stride, page) }
            .map_err(VmError::Mmap)
    }

    #[cfg(feature = "async")]
    fn deallocate_fiber_stack(&self, stack: strata_fiber::FiberStack) {
        if !stack.is_from_raw_parts() {
            self.overflow_live.fetch_sub(1, Ordering::Relaxed);
            return self.on_demand.deallocate_fiber_stack(stack);
        }
        let base = stack.guard_range().start as usize;
        let index = (base - self.stacks.mapping.as_ptr() as usize) / self.stacks.stride;
        if self.config.stack_zeroing {
            let usable = stack.range();
            // SAFETY: the stack's usable part lies in the pool's mapping and nothing runs
            // on it any more (its fiber is done); its pages read as zeros afterwards.
            if let Err(e) = unsafe { crate::mmap::decommit(usable.start as *mut u8, usable.len()) }
            {
                // A stack that could not be cleared is not lent again.
                tracing::warn!("a pooled fiber stack could not be zeroed and is retired: {e}");
                return;
            }
        }
        drop(stack);
        lock(&self.stacks.free).push(index);
    }

    fn live_instances(&self) -> usize {
        self.pooled_instances() + self.overflow_instances.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_pool(config: impl FnOnce(&mut PoolingConfig)) -> PoolingInstanceAllocator {
        let mut pool = PoolingConfig {
            total_core_instances: 2,
            total_memories: 2,
            total_tables: 2,
            total_stacks: 1,
            max_memory_size: 1 << 20,
            table_elements: 10,
            stack_size: 64 << 10,
            ..PoolingConfig::default()
        };
        config(&mut pool);
        PoolingInstanceAllocator::new(&pool, &Tunables::default_host()).unwrap()
    }

    #[test]
    fn instance_slots_run_out_with_a_pool_limit_error() {
        let pool = small_pool(|_| {});
        let a = pool.allocate_instance(1024).unwrap();
        let b = pool.allocate_instance(1024).unwrap();
        match pool.allocate_instance(1024) {
            Err(VmError::PoolLimit(e)) => assert_eq!((e.kind(), e.limit()), ("core instance", 2)),
            other => panic!("expected a pool limit, got {other:?}"),
        }
        pool.deallocate_instance(a);
        let c = pool.allocate_instance(1024).unwrap();
        assert!(matches!(
            pool.allocate_instance(1 << 30),
            Err(VmError::Limit(_))
        ));
        pool.deallocate_instance(b);
        pool.deallocate_instance(c);
        assert_eq!(pool.live_instances(), 0);
    }

    #[test]
    fn freed_table_slots_come_back_uninitialized() {
        let pool = small_pool(|_| {});
        let ty = strata_environ::Table {
            element: strata_environ::WasmRefType::FUNCREF,
            minimum: 4,
            maximum: None,
            table64: false,
        };
        let mut table = pool.allocate_table(&ty).unwrap();
        let marker = core::ptr::without_provenance_mut(8);
        table.fill(0..4, marker);
        assert_eq!(table.grow(6, marker), Some(4));
        assert_eq!(table.grow(1, marker), None, "the slot holds 10 elements");
        pool.deallocate_table(table);
        let table = pool.allocate_table(&ty).unwrap();
        assert!(table.raw().iter().all(|e| e.is_null()));
        assert_eq!(
            table.get(3),
            Some(None),
            "resolved from the new module's plan"
        );
        assert_eq!(pool.metrics().tables, 1);
        pool.deallocate_table(table);
    }

    #[cfg(feature = "async")]
    #[test]
    fn stacks_come_from_the_pool_then_overflow() {
        let pool = small_pool(|c| c.overflow_to_on_demand = true);
        let stack = pool.allocate_fiber_stack(32 << 10).unwrap();
        assert!(stack.is_from_raw_parts());
        // SAFETY: the usable part of a pooled stack is writable.
        unsafe { stack.top().sub(1).write(7) };
        let extra = pool.allocate_fiber_stack(32 << 10).unwrap();
        assert!(!extra.is_from_raw_parts(), "the second stack overflows");
        assert_eq!(pool.metrics().stacks, 1);
        assert_eq!(pool.metrics().overflow_allocations, 1);
        pool.deallocate_fiber_stack(extra);
        pool.deallocate_fiber_stack(stack);
        assert_eq!(pool.metrics().stacks, 0);
        assert!(
            pool.allocate_fiber_stack(1 << 20).is_err(),
            "bigger than a slot"
        );
    }

    #[cfg(feature = "async")]
    #[test]
    fn stacks_are_zeroed_on_reuse_only_when_configured() {
        for zeroing in [false, true] {
            let pool = small_pool(|c| c.stack_zeroing = zeroing);
            let stack = pool.allocate_fiber_stack(32 << 10).unwrap();
            let (low, high) = (stack.range().start as *mut u8, stack.top());
            // SAFETY: both bytes lie in the usable part of the pooled stack.
            unsafe {
                low.write(0xa5);
                high.sub(1).write(0x5a);
            }
            pool.deallocate_fiber_stack(stack);
            let again = pool.allocate_fiber_stack(32 << 10).unwrap();
            assert_eq!(again.top(), high, "the pool has one slot");
            // SAFETY: as above.
            let seen = unsafe { (low.read(), high.sub(1).read()) };
            let expected = if zeroing { (0, 0) } else { (0xa5, 0x5a) };
            assert_eq!(seen, expected, "zeroing: {zeroing}");
            pool.deallocate_fiber_stack(again);
        }
    }
}
