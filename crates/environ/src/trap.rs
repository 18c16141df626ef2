//! The reasons compiled code stops: trap codes shared by compiler and runtime.

use core::fmt;

/// Why WebAssembly execution trapped.
///
/// The compiler records `trap as u8` in its trap table for each instruction that may
/// fault; the runtime maps a faulting address back to this code.
#[non_exhaustive]
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Trap {
    /// The call stack was exhausted.
    StackOverflow = 1,
    /// A load or store was out of bounds of its linear memory.
    MemoryOutOfBounds = 2,
    /// An atomic access was misaligned.
    HeapMisaligned = 3,
    /// A table access was out of bounds.
    TableOutOfBounds = 4,
    /// An indirect call went through a null table entry.
    IndirectCallToNull = 5,
    /// An indirect call's callee had another signature than expected.
    BadSignature = 6,
    /// An integer arithmetic operation overflowed.
    IntegerOverflow = 7,
    /// An integer division by zero.
    IntegerDivisionByZero = 8,
    /// A float to integer conversion of NaN.
    BadConversionToInteger = 9,
    /// The `unreachable` instruction was executed.
    UnreachableCodeReached = 10,
    /// Execution was interrupted (epoch deadline).
    Interrupt = 11,
    /// The store ran out of fuel.
    OutOfFuel = 12,
    /// A null reference was dereferenced.
    NullReference = 13,
    /// `call_ref` or `return_call_ref` of a null function reference.
    NullFunctionReference = 14,
}

impl Trap {
    /// Every trap code, in encoding order.
    pub const ALL: [Trap; 14] = [
        Trap::StackOverflow,
        Trap::MemoryOutOfBounds,
        Trap::HeapMisaligned,
        Trap::TableOutOfBounds,
        Trap::IndirectCallToNull,
        Trap::BadSignature,
        Trap::IntegerOverflow,
        Trap::IntegerDivisionByZero,
        Trap::BadConversionToInteger,
        Trap::UnreachableCodeReached,
        Trap::Interrupt,
        Trap::OutOfFuel,
        Trap::NullReference,
        Trap::NullFunctionReference,
    ];

    /// Decodes a trap code written by [`Trap::as_u8`].
    pub fn from_u8(byte: u8) -> Option<Trap> {
        Trap::ALL.into_iter().find(|t| t.as_u8() == byte)
    }

    /// The byte recorded in trap tables for this trap.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The message the WebAssembly specification's test suite uses for this trap.
    pub fn message(self) -> &'static str {
        match self {
            Trap::StackOverflow => "call stack exhausted",
            Trap::MemoryOutOfBounds => "out of bounds memory access",
            Trap::HeapMisaligned => "unaligned atomic",
            Trap::TableOutOfBounds => "undefined element: out of bounds table access",
            Trap::IndirectCallToNull => "uninitialized element",
            Trap::BadSignature => "indirect call type mismatch",
            Trap::IntegerOverflow => "integer overflow",
            Trap::IntegerDivisionByZero => "integer divide by zero",
            Trap::BadConversionToInteger => "invalid conversion to integer",
            Trap::UnreachableCodeReached => "unreachable",
            Trap::Interrupt => "interrupt",
            Trap::OutOfFuel => "all fuel consumed by WebAssembly",
            Trap::NullReference => "null reference",
            Trap::NullFunctionReference => "null function reference",
        }
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for Trap {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_u8() {
        for trap in Trap::ALL {
            assert_eq!(Trap::from_u8(trap.as_u8()), Some(trap));
        }
        assert_eq!(Trap::from_u8(0), None);
        assert_eq!(Trap::from_u8(200), None);
    }

    #[test]
    fn messages_use_the_spec_wording() {
        assert_eq!(
            Trap::IntegerDivisionByZero.to_string(),
            "integer divide by zero"
        );
        assert!(
            Trap::TableOutOfBounds
                .to_string()
                .contains("undefined element")
        );
    }
}
