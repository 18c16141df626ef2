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

/// The options every timing binary has.
pub struct Common {
    /// Timed rounds (`--rounds`); the median is reported.
    pub rounds: u32,
    /// The runtimes to run (`--runtime`).
    pub which: Which,
}

/// Parses the command line: `--rounds N`, `--runtime`, and `-h`/`--help` (which prints
/// `usage` and exits), and the binary's own flags through `own`, which is given each
/// other flag and the remaining arguments and says whether it knew the flag.
///
/// # Errors
/// Fails on an unknown flag, a bad value, or zero rounds.
pub fn parse(
    usage: &str,
    default_rounds: u32,
    mut own: impl FnMut(&str, &mut std::env::Args) -> Result<bool>,
) -> Result<Common> {
    let mut common = Common {
        rounds: default_rounds,
        which: Which::Both,
    };
    let mut args = std::env::args();
    args.next();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => common.rounds = value(&mut args, &arg)?,
            "--runtime" => common.which = value(&mut args, &arg)?,
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            _ if own(&arg, &mut args)? => {}
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    if common.rounds == 0 {
        return Err("--rounds must be positive".into());
    }
    Ok(common)
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
