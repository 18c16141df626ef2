//! Stopping running wasm: fuel and epoch deadlines.

use crate::runtime::store::{
    EpochPolicy, StoreContextMut, StoreInner, StoreOpaque, UpdateDeadline,
};
use crate::{Error, Result, Store, Trap};
use strata_vm::{UnwindReason, VMStoreHooks};

impl<T> Store<T> {
    /// Gives the store `fuel` units of fuel, replacing what it had. Wasm code uses one
    /// unit per operator (see [`Config::consume_fuel`](crate::Config::consume_fuel))
    /// and traps with [`Trap::OutOfFuel`] when none is left.
    ///
    /// # Errors
    /// Fails if the engine was not configured to consume fuel.
    pub fn set_fuel(&mut self, fuel: u64) -> Result<()> {
        self.inner.opaque.set_fuel(fuel)
    }

    /// The fuel left.
    ///
    /// # Errors
    /// Fails if the engine was not configured to consume fuel.
    pub fn get_fuel(&self) -> Result<u64> {
        self.inner.opaque.get_fuel()
    }

    /// Sets the deadline `ticks` epochs past the engine's current epoch: wasm running in
    /// this store reaches it once [`Engine::increment_epoch`](crate::Engine::increment_epoch)
    /// has been called `ticks` times. A store's deadline starts at the current epoch,
    /// so with epoch interruption on, wasm stops at once until a deadline is set.
    pub fn set_epoch_deadline(&mut self, ticks: u64) {
        self.inner.opaque.set_epoch_deadline(ticks);
    }

    /// Makes a reached epoch deadline trap with [`Trap::Interrupt`] (the default).
    pub fn epoch_deadline_trap(&mut self) {
        self.inner.epoch_policy = EpochPolicy::Trap;
    }

    /// Makes wasm that reaches its epoch deadline yield to the executor, then go on
    /// with the deadline `delta` epochs past the engine's current epoch: async calls
    /// share their thread fairly, one epoch tick at a time. Only wasm in an async call
    /// can yield; wasm of this store that reaches the deadline elsewhere stops with
    /// an error that says so.
    #[cfg(feature = "async")]
    pub fn epoch_deadline_async_yield_and_update(&mut self, delta: u64) {
        self.inner.epoch_policy = EpochPolicy::Yield(delta);
    }

    /// Hands the running wasm its fuel in slices of at most `interval` units; each
    /// time a slice runs out, the wasm yields to the executor before going on with the
    /// next one, so that an async call does not keep its thread for longer than that
    /// much work. The total is unchanged: the wasm traps with [`Trap::OutOfFuel`]
    /// when all of [`Store::set_fuel`]'s fuel is used. `None` (the default) hands
    /// over all fuel at once and never yields.
    ///
    /// # Errors
    /// Fails if the engine consumes no fuel or has no async support, or if
    /// `interval` is `Some(0)`.
    #[cfg(feature = "async")]
    pub fn fuel_async_yield_interval(&mut self, interval: Option<u64>) -> Result<()> {
        let store = &mut self.inner.opaque;
        store.fuel_enabled()?;
        store.check_async("Store::fuel_async_yield_interval")?;
        let interval =
            match interval {
                None => None,
                Some(n) => Some(core::num::NonZeroU64::new(n).ok_or_else(|| {
                    Error::msg("the fuel yield interval must be at least one unit")
                })?),
            };
        let fuel = store.get_fuel()?;
        store.fuel_yield_interval = interval;
        store.set_fuel(fuel)
    }

    /// Makes a reached epoch deadline call `callback`, which decides whether the wasm
    /// stops or goes on with a new deadline. An error from the callback stops the wasm
    /// and comes back from the call into wasm unchanged.
    pub fn epoch_deadline_callback(
        &mut self,
        callback: impl FnMut(StoreContextMut<'_, T>) -> Result<UpdateDeadline> + Send + Sync + 'static,
    ) {
        self.inner.epoch_policy = EpochPolicy::Callback(Some(Box::new(callback)));
    }
}

impl StoreOpaque {
    pub(crate) fn fuel_enabled(&self) -> Result<()> {
        if self.engine.config().tunables.consume_fuel {
            Ok(())
        } else {
            Err(Error::msg(
                "fuel is not enabled for this engine (see `Config::consume_fuel`)",
            ))
        }
    }

    pub(crate) fn set_fuel(&mut self, fuel: u64) -> Result<()> {
        self.fuel_enabled()?;
        *self.vm_store_context.fuel_consumed.get_mut() = 0;
        self.fuel_reserve = fuel;
        self.refuel();
        Ok(())
    }

    pub(crate) fn get_fuel(&self) -> Result<u64> {
        self.fuel_enabled()?;
        // SAFETY: the store is borrowed, so no wasm of it runs on another thread; wasm
        // of it running below us on this thread saved the counter before calling out.
        let consumed = unsafe { *self.vm_store_context.fuel_consumed.get() };
        let active = if consumed >= 0 {
            0
        } else {
            consumed.unsigned_abs()
        };
        Ok(active.saturating_add(self.fuel_reserve))
    }

    /// Moves fuel from the reserve to the counter compiled code uses until the counter
    /// has some (at most a yield interval's worth, and at most what an `i64` holds);
    /// `false` if the reserve runs dry first.
    fn refuel(&mut self) -> bool {
        let slice = self.fuel_yield_interval.map_or(u64::MAX, u64::from);
        let consumed = self.vm_store_context.fuel_consumed.get_mut();
        while *consumed >= 0 {
            if self.fuel_reserve == 0 {
                return false;
            }
            let take = self.fuel_reserve.min(slice).min(i64::MAX.unsigned_abs());
            self.fuel_reserve -= take;
            // `take` fits an `i64` and the counter is not negative: no overflow.
            *consumed -= i64::try_from(take).unwrap_or(i64::MAX);
        }
        true
    }

    /// The counter ran out: refill it from the reserve, yielding first if the store
    /// asked to; stop when no fuel is left.
    fn out_of_gas(&mut self) -> Result<(), UnwindReason> {
        if !self.refuel() {
            return Err(UnwindReason::Trap(Trap::OutOfFuel));
        }
        if self.fuel_yield_interval.is_some() {
            self.yield_now()?;
        }
        Ok(())
    }

    /// Lets the executor of the async call running this store's wasm run other tasks.
    fn yield_now(&self) -> Result<(), UnwindReason> {
        #[cfg(feature = "async")]
        let outcome = self.async_cx().and_then(|cx| {
            crate::runtime::fiber::block_on(cx, crate::runtime::fiber::YieldOnce::default())
        });
        #[cfg(not(feature = "async"))]
        let outcome: Result<()> = Err(Error::msg(
            "wasm can yield only in async calls (the `async` feature)",
        ));
        outcome.map_err(|e| UnwindReason::Host(Box::new(e)))
    }

    pub(crate) fn set_epoch_deadline(&mut self, ticks: u64) {
        let now = self.engine.current_epoch();
        *self.vm_store_context.epoch_deadline.get_mut() = now.saturating_add(ticks);
    }
}

impl<T> StoreInner<T> {
    /// The hooks libcalls use to reach this store, which must stay at this address.
    pub(crate) fn hooks(&mut self) -> VMStoreHooks {
        VMStoreHooks {
            data: (self as *mut StoreInner<T>).cast(),
            out_of_gas: out_of_gas::<T>,
            new_epoch: new_epoch::<T>,
            growing: crate::runtime::limits::growing_hook::<T>,
            grow_failed: crate::runtime::limits::grow_failed_hook::<T>,
        }
    }
}

/// Fuel ran out: refill, yield, or stop.
///
/// # Safety
/// `data` is the `StoreInner<T>` that registered these hooks, not borrowed elsewhere
/// while its wasm waits in the libcall.
unsafe fn out_of_gas<T>(data: *mut ()) -> Result<(), UnwindReason> {
    // SAFETY: per the contract.
    let store = unsafe { &mut *data.cast::<StoreInner<T>>() };
    store.opaque.out_of_gas()
}

/// # Safety
/// As for [`out_of_gas`].
unsafe fn new_epoch<T>(data: *mut ()) -> Result<(), UnwindReason> {
    // SAFETY: per the contract.
    let store = unsafe { &mut *data.cast::<StoreInner<T>>() };
    let decision = match &mut store.epoch_policy {
        EpochPolicy::Trap => UpdateDeadline::Interrupt,
        #[cfg(feature = "async")]
        EpochPolicy::Yield(delta) => UpdateDeadline::Yield(*delta),
        EpochPolicy::Callback(slot) => {
            let Some(mut callback) = slot.take() else {
                return Err(UnwindReason::Host(
                    "the epoch deadline was reached again inside the epoch callback".into(),
                ));
            };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                callback(StoreContextMut(&mut *store))
            }));
            // Put the callback back unless it replaced the policy itself, also when it
            // panicked: the panic goes on to the caller, and the store keeps its policy.
            if let EpochPolicy::Callback(slot @ None) = &mut store.epoch_policy {
                *slot = Some(callback);
            }
            let decision = outcome.unwrap_or_else(|payload| std::panic::resume_unwind(payload));
            decision.map_err(|e| UnwindReason::Host(Box::new(e)))?
        }
    };
    let ticks = match decision {
        UpdateDeadline::Interrupt => return Err(UnwindReason::Trap(Trap::Interrupt)),
        UpdateDeadline::Continue(ticks) => ticks,
        UpdateDeadline::Yield(ticks) => {
            store.opaque.yield_now()?;
            ticks
        }
    };
    store.opaque.set_epoch_deadline(ticks);
    Ok(())
}
