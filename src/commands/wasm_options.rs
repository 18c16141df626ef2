//! The `-W KEY=VALUE[,KEY=VALUE..]` options of `strata run` and `strata compile`: how
//! much fuel, memory and time the guest may use. The keys and value formats are those
//! of `wasmtime run -W`.

use std::time::Duration;

/// The keys `-W` understands, for error messages.
const KNOWN_KEYS: &str = "fuel, max-memory-size, timeout";

/// One setting given with `-W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WasmOption {
    /// `fuel=N`: the guest may run N fuel units (about one per operator).
    Fuel(u64),
    /// `max-memory-size=N`: no linear memory may grow beyond N bytes.
    MaxMemorySize(usize),
    /// `timeout=DURATION`: the guest is interrupted after this much wall-clock time.
    Timeout(Duration),
}

/// The settings of one `-W` argument (a comma-separated list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmOptionList(Vec<WasmOption>);

/// Every `-W` setting combined; a key given twice keeps its last value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WasmOptions {
    /// The fuel to give the store, with fuel consumption on.
    pub fuel: Option<u64>,
    /// The most bytes a linear memory may have.
    pub max_memory_size: Option<usize>,
    /// How long the guest may run before it is interrupted.
    pub timeout: Option<Duration>,
}

impl WasmOptions {
    /// Combines the `-W` arguments in command-line order.
    pub fn new(lists: &[WasmOptionList]) -> WasmOptions {
        let mut options = WasmOptions::default();
        for option in lists.iter().flat_map(|list| &list.0) {
            match *option {
                WasmOption::Fuel(n) => options.fuel = Some(n),
                WasmOption::MaxMemorySize(n) => options.max_memory_size = Some(n),
                WasmOption::Timeout(d) => options.timeout = Some(d),
            }
        }
        options
    }

    /// The engine configuration these options need. Fuel and timeouts change the
    /// generated code, so `strata compile` takes the same options as the `strata run`
    /// that loads its output.
    pub fn config(&self) -> strata::Config {
        let mut config = strata::Config::new();
        config.consume_fuel(self.fuel.is_some());
        config.epoch_interruption(self.timeout.is_some());
        config
    }
}

/// Parses the value of one `-W` argument; used as clap's value parser.
///
/// # Errors
/// Names the unknown key or the malformed value.
pub fn parse(arg: &str) -> Result<WasmOptionList, String> {
    arg.split(',')
        .map(parse_one)
        .collect::<Result<_, _>>()
        .map(WasmOptionList)
}

/// Parses one `KEY=VALUE` setting.
fn parse_one(setting: &str) -> Result<WasmOption, String> {
    let (key, value) = match setting.split_once('=') {
        Some((key, value)) => (key, Some(value)),
        None => (setting, None),
    };
    let need_value =
        |what: &str| value.ok_or_else(|| format!("-W {key} needs a value: `-W {key}={what}`"));
    let option = match key {
        "fuel" => WasmOption::Fuel(parse_integer(need_value("N")?)?),
        "max-memory-size" => {
            let bytes = parse_integer(need_value("BYTES")?)?;
            WasmOption::MaxMemorySize(
                usize::try_from(bytes).map_err(|_| format!("`{bytes}` bytes is too large"))?,
            )
        }
        "timeout" => WasmOption::Timeout(parse_duration(need_value("DURATION")?)?),
        _ => return Err(format!("unknown -W option `{key}` (known: {KNOWN_KEYS})")),
    };
    Ok(option)
}

/// Parses an unsigned integer, decimal or `0x` hexadecimal.
fn parse_integer(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|e| format!("invalid integer `{text}`: {e}"))
}

/// Parses a duration: an integer with an optional unit, `ns`, `us` (or `µs`), `ms`,
/// `s`, `m` or `h`; a bare integer counts seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration `{text}` (examples: 10s, 500ms, 2m, 1us, 3ns)");
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().map_err(|_| invalid())?;
    let seconds = |factor: u64| n.checked_mul(factor).map(Duration::from_secs);
    match unit {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "us" | "µs" | "μs" => Some(Duration::from_micros(n)),
        "ns" => Some(Duration::from_nanos(n)),
        "m" => seconds(60),
        "h" => seconds(3600),
        _ => None,
    }
    .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_every_unit_and_default_to_seconds() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1us"), Ok(Duration::from_micros(1)));
        assert_eq!(parse_duration("4µs"), Ok(Duration::from_micros(4)));
        assert_eq!(parse_duration("3ns"), Ok(Duration::from_nanos(3)));
        for bad in ["", "s", "1.5s", "10 s", "-1s", "3d", "ms10"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn lists_combine_and_later_settings_win() {
        let first = parse("fuel=10,timeout=1s").unwrap();
        let second = parse("max-memory-size=0x10000,fuel=20").unwrap();
        assert_eq!(
            WasmOptions::new(&[first, second]),
            WasmOptions {
                fuel: Some(20),
                max_memory_size: Some(65536),
                timeout: Some(Duration::from_secs(1)),
            }
        );
        assert_eq!(WasmOptions::new(&[]), WasmOptions::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = parse("fuel=1,frobnicate=2").unwrap_err();
        assert!(err.contains("unknown -W option `frobnicate`"), "{err}");
        assert!(parse("fuel").unwrap_err().contains("needs a value"));
        assert!(parse("fuel=lots").unwrap_err().contains("`lots`"));
        assert!(parse("timeout=soon").unwrap_err().contains("`soon`"));
    }
}
