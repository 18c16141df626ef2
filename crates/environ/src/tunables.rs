//! Settings that change generated code and the runtime's memory layout.

use crate::{Memory, WASM_PAGE_SIZE};

/// Code- and layout-affecting settings that compiler and runtime must agree on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tunables {
    /// Bytes of address space reserved for each linear memory up front.
    pub memory_reservation: u64,
    /// Bytes of inaccessible address space after each memory's reservation.
    pub memory_guard_size: u64,
    /// Extra bytes reserved when a memory that may move has to be moved to grow.
    pub memory_reservation_for_growth: u64,
    /// Whether compiled code counts fuel (one unit per operator, see
    /// [`operator_fuel_cost`](crate::operator_fuel_cost)) and stops when it runs out.
    pub consume_fuel: bool,
    /// Whether compiled code checks the engine's epoch against the store's deadline at
    /// function entries and loop headers.
    pub epoch_interruption: bool,
    /// Whether relaxed SIMD instructions give their deterministic results on every
    /// host, instead of the host's fastest.
    pub relaxed_simd_deterministic: bool,
}

impl Tunables {
    /// Defaults for a 64-bit host.
    pub fn default_host() -> Tunables {
        Tunables {
            memory_reservation: 1 << 32,
            memory_guard_size: 32 << 20,
            memory_reservation_for_growth: 2 << 30,
            consume_fuel: false,
            epoch_interruption: false,
            relaxed_simd_deterministic: false,
        }
    }

    /// How a memory of type `memory` is laid out in the address space.
    pub fn memory_style(&self, memory: &Memory) -> MemoryStyle {
        let max_bytes = memory.maximum_pages().saturating_mul(memory.page_size());
        if !memory.memory64
            && memory.page_size() == WASM_PAGE_SIZE
            && max_bytes <= self.memory_reservation
        {
            MemoryStyle::Static {
                reservation: self.memory_reservation,
            }
        } else {
            MemoryStyle::Dynamic {
                reservation_for_growth: self.memory_reservation_for_growth,
            }
        }
    }
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables::default_host()
    }
}

/// How a linear memory is laid out in the address space.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MemoryStyle {
    /// The memory never moves: `reservation` bytes are reserved up front, enough for
    /// its maximum size, followed by the guard region. Its base address is constant.
    Static {
        /// Bytes reserved for the memory, not counting the guard.
        reservation: u64,
    },
    /// The memory may be moved to grow; compiled code reloads its base and bound after
    /// every call and checks every access explicitly.
    Dynamic {
        /// Extra bytes reserved beyond the new size when it moves.
        reservation_for_growth: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm32_memories_are_static_by_default() {
        let t = Tunables::default_host();
        let m = Memory {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: 16,
        };
        assert_eq!(
            t.memory_style(&m),
            MemoryStyle::Static {
                reservation: 1 << 32
            }
        );
        let small = Tunables {
            memory_reservation: 1 << 20,
            ..t
        };
        assert!(matches!(
            small.memory_style(&m),
            MemoryStyle::Dynamic { .. }
        ));
        let bounded = Memory {
            maximum: Some(16),
            ..m
        };
        assert!(matches!(
            small.memory_style(&bounded),
            MemoryStyle::Static { .. }
        ));
    }
}
