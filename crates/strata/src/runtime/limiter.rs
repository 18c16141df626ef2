//! What decides a store's resource limits: the [`ResourceLimiter`] and
//! [`ResourceLimiterAsync`] traits, and the counts that hold without one.
//!
//! The store keeps the limiter it is given, so these sit below it; `limits.rs` applies
//! them to growth and instantiation and has the ready-made [`StoreLimits`].
//!
//! [`StoreLimits`]: crate::StoreLimits

use crate::{Error, Result};

/// Decides how far a store's memories and tables may grow and how many instances,
/// memories and tables it may hold. Set one with [`Store::limiter`].
///
/// Growth is asked for both by wasm (`memory.grow`, `table.grow`) and by the host
/// ([`Memory::grow`](crate::Memory::grow), [`Table::grow`](crate::Table::grow)), and
/// for the initial size of every memory and table an instantiation creates.
///
/// [`Store::limiter`]: crate::Store::limiter
pub trait ResourceLimiter {
    /// Whether a memory may grow from `current` to `desired` bytes; `maximum` is its
    /// declared maximum, if any. `Ok(false)` makes the growth fail (`memory.grow`
    /// returns -1); an error stops the wasm (or the instantiation) with that error.
    ///
    /// # Errors
    /// An error stops the running wasm and comes back from the call into it.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool>;

    /// Called when an allowed memory growth failed anyway; the default carries on.
    ///
    /// # Errors
    /// An error stops the running wasm.
    fn memory_grow_failed(&mut self, error: Error) -> Result<()> {
        let _ = error;
        Ok(())
    }

    /// Whether a table may grow from `current` to `desired` elements; as for
    /// [`ResourceLimiter::memory_growing`].
    ///
    /// # Errors
    /// An error stops the running wasm.
    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool>;

    /// Called when an allowed table growth failed anyway; the default carries on.
    ///
    /// # Errors
    /// An error stops the running wasm.
    fn table_grow_failed(&mut self, error: Error) -> Result<()> {
        let _ = error;
        Ok(())
    }

    /// The most instances the store may hold.
    fn instances(&self) -> usize {
        DEFAULT_INSTANCE_LIMIT
    }

    /// The most tables the store may hold.
    fn tables(&self) -> usize {
        DEFAULT_TABLE_LIMIT
    }

    /// The most memories the store may hold.
    fn memories(&self) -> usize {
        DEFAULT_MEMORY_LIMIT
    }
}

/// The default limit on instances per store.
pub const DEFAULT_INSTANCE_LIMIT: usize = 10_000;
/// The default limit on tables per store.
pub const DEFAULT_TABLE_LIMIT: usize = 10_000;
/// The default limit on memories per store.
pub const DEFAULT_MEMORY_LIMIT: usize = 10_000;

/// A [`ResourceLimiter`] whose growth decisions may wait, for example for a quota
/// service. Set one with [`Store::limiter_async`]; it is consulted only by wasm
/// running in async calls ([`Config::async_support`](crate::Config::async_support)),
/// which stays suspended on its fiber while a decision is pending. The methods mean
/// what they mean for [`ResourceLimiter`].
///
/// [`Store::limiter_async`]: crate::Store::limiter_async
#[cfg(feature = "async")]
#[async_trait::async_trait]
pub trait ResourceLimiterAsync: Send {
    /// Whether a memory may grow from `current` to `desired` bytes; see
    /// [`ResourceLimiter::memory_growing`].
    ///
    /// # Errors
    /// An error stops the running wasm and comes back from the call into it.
    async fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool>;

    /// See [`ResourceLimiter::memory_grow_failed`].
    ///
    /// # Errors
    /// An error stops the running wasm.
    fn memory_grow_failed(&mut self, error: Error) -> Result<()> {
        let _ = error;
        Ok(())
    }

    /// Whether a table may grow from `current` to `desired` elements; see
    /// [`ResourceLimiter::table_growing`].
    ///
    /// # Errors
    /// An error stops the running wasm.
    async fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool>;

    /// See [`ResourceLimiter::table_grow_failed`].
    ///
    /// # Errors
    /// An error stops the running wasm.
    fn table_grow_failed(&mut self, error: Error) -> Result<()> {
        let _ = error;
        Ok(())
    }

    /// The most instances the store may hold.
    fn instances(&self) -> usize {
        DEFAULT_INSTANCE_LIMIT
    }

    /// The most tables the store may hold.
    fn tables(&self) -> usize {
        DEFAULT_TABLE_LIMIT
    }

    /// The most memories the store may hold.
    fn memories(&self) -> usize {
        DEFAULT_MEMORY_LIMIT
    }
}
