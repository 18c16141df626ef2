//! The little command-line parsing the benchmark binaries need.

use crate::Result;
use std::str::FromStr;

/// Which runtimes to run (`--runtime`), e.g. to profile one of them alone.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Which {
    /// Both, side by side (the default).
    Both,
    /// strata only.
    Strata,
    /// wasmtime only.
    Wasmtime,
}

impl Which {
    /// Whether strata runs.
    pub fn strata(self) -> bool {
        self != Which::Wasmtime
    }

    /// Whether wasmtime runs.
    pub fn wasmtime(self) -> bool {
        self != Which::Strata
    }
}

impl FromStr for Which {
    type Err = String;

    fn from_str(s: &str) -> Result<Which> {
        match s {
            "both" => Ok(Which::Both),
            "strata" => Ok(Which::Strata),
            "wasmtime" => Ok(Which::Wasmtime),
            _ => Err(format!(
                "unknown runtime `{s}`: expected both, strata or wasmtime"
            )),
        }
    }
}

/// Parses the value that follows `flag` on the command line.
///
/// # Errors
/// Fails if there is no value or it does not parse.
pub fn value<T: FromStr>(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let text = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
    text.parse()
        .map_err(|e| format!("bad value `{text}` for {flag}: {e}"))
}

/// Prints `message` and `usage` and exits with status 2.
pub fn usage_error(message: &str, usage: &str) -> ! {
    eprintln!("error: {message}\n\n{usage}");
    std::process::exit(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values() {
        let mut args = ["12", "x"].into_iter().map(String::from);
        assert_eq!(value::<u32>(&mut args, "--n"), Ok(12));
        assert!(value::<u32>(&mut args, "--n").is_err());
        assert!(value::<u32>(&mut args, "--n").is_err());
        assert_eq!("strata".parse(), Ok(Which::Strata));
    }
}
