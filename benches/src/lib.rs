//! Benchmarks comparing strata with wasmtime on instantiation, wasm→host calls and
//! plain execution.
//!
//! This crate is its own Cargo workspace, so the main workspace never builds wasmtime.
//! [`strata_side`] and [`wasmtime_side`] have the same shape: each sets its runtime up
//! the same way (see [`Allocator`] and [`pool`]) and exposes the same operations, and
//! the binaries time them with the helpers in [`measure`]. See `README.md` for what each
//! binary measures and how to run it.

pub mod cli;
pub mod measure;
pub mod modules;
mod side;
pub mod sightglass;

/// The strata half of each benchmark.
pub mod strata_side {
    crate::runtime_side!(strata);
}

/// The wasmtime half of each benchmark, the same code as [`strata_side`].
pub mod wasmtime_side {
    crate::runtime_side!(wasmtime);
}

/// Errors are reported as text: the two runtimes have different error types.
pub type Result<T> = std::result::Result<T, String>;

/// Turns any runtime error into the benchmarks' error.
pub fn err(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

/// How the runtimes allocate instances.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Allocator {
    /// The default on-demand allocator, with copy-on-write memory initialization on.
    OnDemand,
    /// The pooling allocator configured with [`pool`]'s settings, copy-on-write on.
    Pooling,
}

impl Allocator {
    /// Both strategies, in the order the reports list them.
    pub const ALL: [Allocator; 2] = [Allocator::OnDemand, Allocator::Pooling];

    /// The name shown in reports.
    pub fn label(self) -> &'static str {
        match self {
            Allocator::OnDemand => "on-demand + CoW",
            Allocator::Pooling => "pooling + CoW",
        }
    }
}

impl std::str::FromStr for Allocator {
    type Err = String;

    fn from_str(s: &str) -> Result<Allocator> {
        match s {
            "on-demand" => Ok(Allocator::OnDemand),
            "pooling" => Ok(Allocator::Pooling),
            _ => Err(format!(
                "unknown allocator `{s}`: expected on-demand or pooling"
            )),
        }
    }
}

/// How running code can be stopped from outside.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Interruption {
    /// Neither fuel nor epochs.
    None,
    /// `consume_fuel`, with more fuel than the benchmark uses.
    Fuel,
    /// `epoch_interruption`, with a deadline the benchmark never reaches.
    Epoch,
}

impl Interruption {
    /// Every mode, in the order the reports list them.
    pub const ALL: [Interruption; 3] =
        [Interruption::None, Interruption::Fuel, Interruption::Epoch];

    /// The name shown in reports.
    pub fn label(self) -> &'static str {
        match self {
            Interruption::None => "plain",
            Interruption::Fuel => "fuel",
            Interruption::Epoch => "epochs",
        }
    }
}

/// Pooling allocator settings, given to both runtimes through their setters of the same
/// name. Apart from the pool sizes they are wasmtime 48's defaults, set explicitly so the
/// two runtimes cannot differ by default values.
pub mod pool {
    /// `total_core_instances`.
    pub const TOTAL_CORE_INSTANCES: u32 = 100;
    /// `total_memories`.
    pub const TOTAL_MEMORIES: u32 = 100;
    /// `total_tables`.
    pub const TOTAL_TABLES: u32 = 100;
    /// `max_memory_size`: 4 GiB, all of a 32-bit memory.
    pub const MAX_MEMORY_SIZE: usize = 1 << 32;
    /// `table_elements`.
    pub const TABLE_ELEMENTS: usize = 20_000;
    /// `linear_memory_keep_resident`: reset memory with `madvise`, not `memset`.
    pub const LINEAR_MEMORY_KEEP_RESIDENT: usize = 0;
    /// `table_keep_resident`.
    pub const TABLE_KEEP_RESIDENT: usize = 0;
    /// `max_unused_warm_slots`.
    pub const MAX_UNUSED_WARM_SLOTS: u32 = 100;
    /// `decommit_batch_size`: decommit at once, no batching.
    pub const DECOMMIT_BATCH_SIZE: usize = 1;
}

/// One runtime's engine and compiled [`modules::instantiation_module`], ready to be
/// instantiated from any number of threads.
pub trait Instantiate: Sync {
    /// Creates a store, instantiates the module in it with no imports, and drops the
    /// store (and with it the instance).
    ///
    /// # Errors
    /// Fails if instantiation fails.
    fn instantiate_once(&self) -> Result<()>;

    /// Instantiates once and checks the instance: exports, element segment, data
    /// segment and globals.
    ///
    /// # Errors
    /// Fails if instantiation fails or the instance is wrong.
    fn check(&self) -> Result<()>;
}
