//! Resource limits: what a store's memories, tables and instances may use.

#[cfg(feature = "async")]
use crate::runtime::limiter::ResourceLimiterAsync;
use crate::runtime::limiter::{
    DEFAULT_INSTANCE_LIMIT, DEFAULT_MEMORY_LIMIT, DEFAULT_TABLE_LIMIT, ResourceLimiter,
};
use crate::runtime::store::{Limiter, StoreInner, StoreOpaque};
use crate::{Error, Result, Store};
use strata_vm::{Growth, UnwindReason};

/// A ready [`ResourceLimiter`]: fixed caps, built with [`StoreLimitsBuilder`].
#[derive(Clone, Debug)]
pub struct StoreLimits {
    memory_size: Option<usize>,
    table_elements: Option<usize>,
    instances: usize,
    tables: usize,
    memories: usize,
    trap_on_grow_failure: bool,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            memory_size: None,
            table_elements: None,
            instances: DEFAULT_INSTANCE_LIMIT,
            tables: DEFAULT_TABLE_LIMIT,
            memories: DEFAULT_MEMORY_LIMIT,
            trap_on_grow_failure: false,
        }
    }
}

/// Builds [`StoreLimits`]; every limit not set stays unlimited (or at the default
/// count).
#[derive(Clone, Debug, Default)]
pub struct StoreLimitsBuilder(StoreLimits);

impl StoreLimitsBuilder {
    /// No limits yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most bytes any one linear memory may have.
    pub fn memory_size(mut self, bytes: usize) -> Self {
        self.0.memory_size = Some(bytes);
        self
    }

    /// The most elements any one table may have.
    pub fn table_elements(mut self, elements: usize) -> Self {
        self.0.table_elements = Some(elements);
        self
    }

    /// The most instances.
    pub fn instances(mut self, n: usize) -> Self {
        self.0.instances = n;
        self
    }

    /// The most tables.
    pub fn tables(mut self, n: usize) -> Self {
        self.0.tables = n;
        self
    }

    /// The most memories.
    pub fn memories(mut self, n: usize) -> Self {
        self.0.memories = n;
        self
    }

    /// Whether a growth past a limit traps instead of failing with -1.
    pub fn trap_on_grow_failure(mut self, trap: bool) -> Self {
        self.0.trap_on_grow_failure = trap;
        self
    }

    /// The limits.
    pub fn build(self) -> StoreLimits {
        self.0
    }
}

impl StoreLimits {
    fn allow(&self, what: &str, desired: usize, limit: Option<usize>) -> Result<bool> {
        match limit {
            Some(limit) if desired > limit => {
                if self.trap_on_grow_failure {
                    Err(Error::msg(format!(
                        "{what} of {desired} exceeds the store's limit of {limit}"
                    )))
                } else {
                    Ok(false)
                }
            }
            _ => Ok(true),
        }
    }
}

impl ResourceLimiter for StoreLimits {
    fn memory_growing(&mut self, _: usize, desired: usize, _: Option<usize>) -> Result<bool> {
        self.allow("memory size", desired, self.memory_size)
    }

    fn memory_grow_failed(&mut self, error: Error) -> Result<()> {
        if self.trap_on_grow_failure {
            Err(error)
        } else {
            Ok(())
        }
    }

    fn table_growing(&mut self, _: usize, desired: usize, _: Option<usize>) -> Result<bool> {
        self.allow("table size", desired, self.table_elements)
    }

    fn table_grow_failed(&mut self, error: Error) -> Result<()> {
        self.memory_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}

impl<T> Store<T> {
    /// Makes `limiter` (which picks the limiter out of the store's data) decide on
    /// every memory and table growth and on the number of instances, memories and
    /// tables from now on.
    pub fn limiter(
        &mut self,
        limiter: impl (FnMut(&mut T) -> &mut dyn ResourceLimiter) + Send + Sync + 'static,
    ) {
        self.inner.limiter = Some(Limiter::Sync(Box::new(limiter)));
    }

    /// Like [`Store::limiter`], with a limiter whose growth decisions are futures.
    /// Growth is then possible only where the wasm or host code can wait: in async
    /// calls, and with [`Memory::grow_async`](crate::Memory::grow_async) and
    /// [`Table::grow_async`](crate::Table::grow_async); elsewhere it fails with an
    /// error that says so.
    #[cfg(feature = "async")]
    pub fn limiter_async(
        &mut self,
        limiter: impl (FnMut(&mut T) -> &mut dyn ResourceLimiterAsync) + Send + Sync + 'static,
    ) {
        self.inner.limiter = Some(Limiter::Async(Box::new(limiter)));
    }
}

/// The counts a limiter allows: instances, memories, tables.
struct CountLimits {
    instances: usize,
    memories: usize,
    tables: usize,
}

impl<T> StoreInner<T> {
    /// Asks the limiter about `growth`.
    pub(crate) fn growing(&mut self, growth: Growth) -> Result<bool> {
        let Growth {
            memory,
            current,
            desired,
            maximum,
        } = growth;
        match &mut self.limiter {
            None => Ok(true),
            Some(Limiter::Sync(accessor)) => {
                let limiter = accessor(&mut self.data);
                if memory {
                    limiter.memory_growing(current, desired, maximum)
                } else {
                    limiter.table_growing(current, desired, maximum)
                }
            }
            #[cfg(feature = "async")]
            Some(Limiter::Async(accessor)) => {
                let cx = self.opaque.async_cx().map_err(|e| {
                    e.context(format!(
                        "the store's limiter is async and cannot decide on growing a {}",
                        kind(growth)
                    ))
                })?;
                let limiter = accessor(&mut self.data);
                let decision = if memory {
                    limiter.memory_growing(current, desired, maximum)
                } else {
                    limiter.table_growing(current, desired, maximum)
                };
                crate::runtime::fiber::block_on(cx, decision)?
            }
        }
    }

    /// Tells the limiter that `growth` failed.
    pub(crate) fn grow_failed(&mut self, growth: Growth) -> Result<()> {
        let what = kind(growth);
        let error = Error::msg(format!(
            "failed to grow {what} from {} to {}",
            growth.current, growth.desired
        ));
        match (&mut self.limiter, growth.memory) {
            (None, _) => Ok(()),
            (Some(Limiter::Sync(accessor)), true) => {
                accessor(&mut self.data).memory_grow_failed(error)
            }
            (Some(Limiter::Sync(accessor)), false) => {
                accessor(&mut self.data).table_grow_failed(error)
            }
            #[cfg(feature = "async")]
            (Some(Limiter::Async(accessor)), true) => {
                accessor(&mut self.data).memory_grow_failed(error)
            }
            #[cfg(feature = "async")]
            (Some(Limiter::Async(accessor)), false) => {
                accessor(&mut self.data).table_grow_failed(error)
            }
        }
    }

    /// The counts the limiter allows; without a limiter, the defaults (as in wasmtime,
    /// a store never holds more than 10,000 instances, memories or tables).
    fn count_limits(&mut self) -> CountLimits {
        let Some(limiter) = self.limiter.as_mut() else {
            return CountLimits {
                instances: DEFAULT_INSTANCE_LIMIT,
                memories: DEFAULT_MEMORY_LIMIT,
                tables: DEFAULT_TABLE_LIMIT,
            };
        };
        match limiter {
            Limiter::Sync(accessor) => {
                let limiter = accessor(&mut self.data);
                CountLimits {
                    instances: limiter.instances(),
                    memories: limiter.memories(),
                    tables: limiter.tables(),
                }
            }
            #[cfg(feature = "async")]
            Limiter::Async(accessor) => {
                let limiter = accessor(&mut self.data);
                CountLimits {
                    instances: limiter.instances(),
                    memories: limiter.memories(),
                    tables: limiter.tables(),
                }
            }
        }
    }

    /// Checks that an instance of `module` stays within the store's counts (the
    /// limiter's, or the defaults) and that the limiter allows the initial sizes of its
    /// memories and tables.
    pub(crate) fn limit_instantiation(&mut self, module: &strata_environ::Module) -> Result<()> {
        self.check_counts(module.num_defined_memories(), module.num_defined_tables())?;
        if self.limiter.is_none() {
            return Ok(());
        }
        // Creating a memory or table at its minimum size is growing it from nothing.
        let memories = module.memories.values().skip(module.num_imported_memories);
        let tables = module.tables.values().skip(module.num_imported_tables);
        let initial = memories
            .map(|ty| Growth::of_memory(ty, 0, ty.minimum))
            .chain(tables.map(|ty| Growth::of_table(ty, 0, ty.minimum)));
        for growth in initial {
            let growth = growth.ok_or_else(|| {
                Error::msg("a memory or table minimum size does not fit the address space")
            })?;
            if !self.growing(growth)? {
                let unit = if growth.memory { "bytes" } else { "elements" };
                let what = kind(growth);
                return Err(Error::msg(format!(
                    "{what} minimum size of {} {unit} exceeds the store's limit",
                    growth.desired
                )));
            }
        }
        Ok(())
    }

    /// Asks the limiter about growing by `delta` from `growth.current`, on behalf of
    /// the host: an error when refused.
    pub(crate) fn host_growing(&mut self, growth: Growth) -> Result<()> {
        if self.growing(growth)? {
            Ok(())
        } else {
            let what = kind(growth);
            Err(Error::msg(format!(
                "the store's limiter refused to grow the {what} from {} to {}",
                growth.current, growth.desired
            )))
        }
    }

    /// Checks that one more instance with `memories` memories and `tables` tables
    /// stays within the limiter's counts.
    fn check_counts(&mut self, memories: usize, tables: usize) -> Result<()> {
        let counts = self.opaque.counts;
        let limits = self.count_limits();
        let over = |what: &str, now: usize, more: usize, limit: usize| {
            if now.saturating_add(more) > limit {
                Err(Error::msg(format!(
                    "resource limit exceeded: {what} count too high at {}",
                    now + more
                )))
            } else {
                Ok(())
            }
        };
        over("instance", counts.instances, 1, limits.instances)?;
        over("memory", counts.memories, memories, limits.memories)?;
        over("table", counts.tables, tables, limits.tables)
    }
}

/// What grows: "memory" or "table", for messages.
fn kind(growth: Growth) -> &'static str {
    if growth.memory { "memory" } else { "table" }
}

impl StoreOpaque {
    /// Counts one more instance with `memories` memories and `tables` tables.
    pub(crate) fn count(&mut self, memories: usize, tables: usize) {
        self.counts.instances += 1;
        self.counts.memories += memories;
        self.counts.tables += tables;
    }
}

/// The `growing` hook: asks the store's limiter.
///
/// # Safety
/// `data` is the `StoreInner<T>` that registered the hooks, not borrowed elsewhere
/// while its wasm waits in the libcall.
pub(crate) unsafe fn growing_hook<T>(data: *mut (), growth: Growth) -> Result<bool, UnwindReason> {
    // SAFETY: per the contract.
    let store = unsafe { &mut *data.cast::<StoreInner<T>>() };
    store
        .growing(growth)
        .map_err(|e| UnwindReason::Host(Box::new(e)))
}

/// The `grow_failed` hook.
///
/// # Safety
/// As for [`growing_hook`].
pub(crate) unsafe fn grow_failed_hook<T>(
    data: *mut (),
    growth: Growth,
) -> Result<(), UnwindReason> {
    // SAFETY: per the contract.
    let store = unsafe { &mut *data.cast::<StoreInner<T>>() };
    store
        .grow_failed(growth)
        .map_err(|e| UnwindReason::Host(Box::new(e)))
}
