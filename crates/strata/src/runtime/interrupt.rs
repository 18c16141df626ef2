//! Stopping running wasm: fuel and epoch deadlines.

use crate::runtime::store::{StoreContextMut, StoreInner, StoreOpaque};
use crate::{Error, Result, Store, Trap};
use strata_vm::{UnwindReason, VMStoreHooks};

/// What to do when the engine's epoch reaches a store's deadline, as decided by the
/// callback given to [`Store::epoch_deadline_callback`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateDeadline {
    /// Stop the running wasm with [`Trap::Interrupt`].
    Interrupt,
    /// Keep running, with the deadline this many epochs past the current one.
    Continue(u64),
}

/// A store's answer to a reached epoch deadline.
pub(crate) enum EpochPolicy<T> {
    /// Trap with [`Trap::Interrupt`] (the default).
    Trap,
    /// Ask the embedder. `None` while the callback runs (it cannot reach itself).
    Callback(Option<EpochCallback<T>>),
}

type EpochCallback<T> =
    Box<dyn FnMut(StoreContextMut<'_, T>) -> Result<UpdateDeadline> + Send + Sync>;

impl<T> Store<T> {
    /// Gives the store `fuel` units of fuel (at most `i64::MAX`), replacing what it had.
    /// Wasm code uses one unit per operator (see [`Config::consume_fuel`](crate::Config::consume_fuel)) and
    /// traps with [`Trap::OutOfFuel`] when none is left.
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
    fn fuel_enabled(&self) -> Result<()> {
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
        // The counter is an `i64`: more than `i64::MAX` units is as good as that many.
        let consumed = -i64::try_from(fuel).unwrap_or(i64::MAX);
        *self.vm_store_context.fuel_consumed.get_mut() = consumed;
        Ok(())
    }

    pub(crate) fn get_fuel(&self) -> Result<u64> {
        self.fuel_enabled()?;
        // SAFETY: the store is borrowed, so no wasm of it runs on another thread; wasm
        // of it running below us on this thread saved the counter before calling out.
        let consumed = unsafe { *self.vm_store_context.fuel_consumed.get() };
        Ok(if consumed >= 0 {
            0
        } else {
            consumed.unsigned_abs()
        })
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
            out_of_gas,
            new_epoch: new_epoch::<T>,
            growing: crate::runtime::limits::growing_hook::<T>,
            grow_failed: crate::runtime::limits::grow_failed_hook::<T>,
        }
    }
}

/// Fuel ran out: stop. (A store that yields on async fuel will refill here instead.)
///
/// # Safety
/// None; `unsafe` to match the hook's type.
unsafe fn out_of_gas(_data: *mut ()) -> Result<(), UnwindReason> {
    Err(UnwindReason::Trap(Trap::OutOfFuel))
}

/// # Safety
/// `data` is the `StoreInner<T>` that registered these hooks, not borrowed elsewhere
/// while its wasm waits in the libcall.
unsafe fn new_epoch<T>(data: *mut ()) -> Result<(), UnwindReason> {
    // SAFETY: per the contract.
    let store = unsafe { &mut *data.cast::<StoreInner<T>>() };
    let EpochPolicy::Callback(slot) = &mut store.epoch_policy else {
        return Err(UnwindReason::Trap(Trap::Interrupt));
    };
    let Some(mut callback) = slot.take() else {
        return Err(UnwindReason::Host(
            "the epoch deadline was reached again inside the epoch callback".into(),
        ));
    };
    let decision = callback(StoreContextMut(store));
    // Put the callback back unless it replaced the policy itself.
    if let EpochPolicy::Callback(slot @ None) = &mut store.epoch_policy {
        *slot = Some(callback);
    }
    match decision {
        Ok(UpdateDeadline::Continue(ticks)) => {
            store.opaque.set_epoch_deadline(ticks);
            Ok(())
        }
        Ok(UpdateDeadline::Interrupt) => Err(UnwindReason::Trap(Trap::Interrupt)),
        Err(e) => Err(UnwindReason::Host(Box::new(e))),
    }
}
