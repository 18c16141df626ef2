//! [`GuestError`]: a strata error rendered for the terminal that still says whether
//! the guest trapped or asked to exit.

use std::fmt;

/// How a failed call into the guest ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The guest called `proc_exit` with this status.
    Exit(i32),
    /// The guest trapped (including running out of fuel or time).
    Trap,
    /// Anything else: a link error, a failing host function, ...
    Other,
}

/// A [`strata::Error`] as one link of an `anyhow` chain. Its text is the error's
/// `Debug` rendering, which includes the wasm backtrace; converting the strata error
/// to `anyhow` directly would drop the backtrace and repeat the trap message as a
/// separate cause.
#[derive(Debug)]
pub struct GuestError {
    /// The message and the wasm backtrace, if any.
    text: String,
    /// Whether it was a trap, an exit or something else.
    ending: Ending,
}

impl GuestError {
    /// How the guest ended, if `err` has a [`GuestError`] at its root.
    pub fn ending_of(err: &anyhow::Error) -> Option<Ending> {
        err.downcast_ref::<GuestError>().map(|e| e.ending)
    }
}

impl From<strata::Error> for GuestError {
    fn from(err: strata::Error) -> GuestError {
        let ending = match (err.i32_exit_status(), err.trap()) {
            (Some(status), _) => Ending::Exit(status),
            (None, Some(_)) => Ending::Trap,
            (None, None) => Ending::Other,
        };
        GuestError {
            text: format!("{err:?}").trim_end().to_string(),
            ending,
        }
    }
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for GuestError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_and_traps_are_recognized_under_context() {
        let ending = |err: strata::Error| {
            let err = anyhow::Error::new(GuestError::from(err)).context("while running");
            GuestError::ending_of(&err)
        };
        assert_eq!(
            ending(strata::Error::i32_exit(7).context("in _start")),
            Some(Ending::Exit(7))
        );
        assert_eq!(
            ending(strata::Error::from(strata::Trap::OutOfFuel)),
            Some(Ending::Trap)
        );
        assert_eq!(ending(strata::Error::msg("no")), Some(Ending::Other));
        assert_eq!(GuestError::ending_of(&anyhow::anyhow!("plain")), None);
    }
}
